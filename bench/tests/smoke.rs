//! The whole `loopback` table at tiny sizes, so that no peer (raw, raw dnode lines, tarpc,
//! jsonrpsee, upnode Rust on tokio, smol and async-std, upnode Node) and no phase rots
//! unnoticed. It runs in `cargo test --workspace` (and so in CI, which installs the Node
//! peers) in a few seconds; the figures mean nothing here, only that every pairing ran every
//! phase with every answer checked.

use std::process::Command;
use std::time::Instant;

#[test]
fn every_pairing_runs_every_phase_at_tiny_sizes() {
    let began = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_loopback"))
        .args([
            "--calls",
            "200",
            "--window",
            "20",
            "--sequential",
            "50",
            "--long-calls",
            "400",
            "--flush-calls",
            "100",
            "--warmup",
            "20",
            "--runs",
            "1",
            "--deadline",
            "60",
            "--only",
            "raw,raw-dnode,tarpc-bincode,tarpc-json,jsonrpsee,rust,smol,async-std,node,rust-node,node-rust",
        ])
        .output()
        .expect("run loopback");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "loopback failed ({}):\n{stdout}\n--- stderr:\n{stderr}",
        out.status
    );
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("| ")).collect();
    // The header and one row per pairing.
    assert_eq!(rows.len(), 12, "{stdout}");
    let cells = |row: &str| -> Vec<String> {
        row.trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_owned())
            .collect()
    };
    let head = cells(rows[0]);
    assert_eq!(head.len(), 12, "a column per measurement: {head:?}");
    for row in &rows[1..] {
        let c = cells(row);
        assert_eq!(c.len(), head.len(), "{row}");
        let upnode = c[0].starts_with("upnode");
        // Every measurement but the flush is there for everyone (the CPU columns too: each
        // process's time read from `/proc/<pid>/stat`, Rust or Node); the flush only for
        // upnode.
        for (h, v) in head.iter().zip(&c).skip(1) {
            let expect_na = h.starts_with("flush") && !upnode;
            assert_eq!(v == "n/a", expect_na, "{h} of {row}");
        }
    }
    // The upnode adapters each have their row (the labels tell them apart).
    for label in [
        "upnode Rust → Rust",
        "upnode Rust → Rust, smol",
        "upnode Rust → Rust, async-std",
    ] {
        assert!(
            rows.iter().any(|r| cells(r)[0] == label),
            "no row {label:?}: {stdout}"
        );
    }
    assert!(
        stdout.contains("Pinned:") || stdout.contains("Pinning skipped:"),
        "{stdout}"
    );
    eprintln!(
        "{stdout}\n(smoke run took {:.1} s)",
        began.elapsed().as_secs_f64()
    );
}

#[test]
fn bad_flags_print_the_usage() {
    for args in [
        &["--calls", "many"][..],
        &["--phases", "pipelined,nap"],
        &["--only", "grpc"],
        &["--window"],
        &["--frobnicate"],
        &["client", "raw"],
        &["flush-client"],
        &["flush-client", "raw", "7000", "10"],
        &["flush-client", "7000", "10"],
        &["serve-nothing"],
        &["serve-node"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_loopback"))
            .args(args)
            .output()
            .expect("run loopback");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("usage:"), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
