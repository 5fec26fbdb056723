//! `loopback`: the end-to-end benchmark over 127.0.0.1, every pairing side by side in one
//! run.
//!
//! ```text
//! cargo run --release -p upnode-bench --bin loopback -- [--calls N] [--window K]
//!     [--warmup W] [--runs R] [--only LIST] [--multi-thread] [--cull always|answers|never]
//! ```
//!
//! Pairings (client → server, each its own process):
//!
//! - `raw`: newline-delimited JSON echo over plain tokio TCP, no dnode (the ceiling);
//! - `rust`: upnode-tokio → upnode-tokio;
//! - `node`: Node upnode 0.6 → Node upnode 0.6;
//! - `rust-node`, `node-rust`: the mixed pairings.
//!
//! Every client, Rust or Node, does the same steps and times itself the same way (wall
//! clock around each loop): warm-up, `N` sequential calls (with per-call latency), `N`
//! calls with `K` in flight, one closing call. Every answer is checked against what was
//! sent, and every call must be answered; any mismatch aborts the whole run. The raw and
//! Node clients also fail on a repeated or stray answer (upnode-tokio keeps only a call's
//! first answer, so the Rust upnode client checks that its link never went down instead). Runs are interleaved
//! across pairings (all pairings once, then again) so that load from elsewhere on the
//! machine spreads over all of them; the table shows the median and range over runs.

mod clients;
mod procs;
mod servers;
mod stats;

use procs::Proc;
use stats::{Run, Spread};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: loopback [--calls N] [--window K] [--warmup W] [--runs R] \
[--only raw,rust,node,rust-node,node-rust] [--multi-thread] [--cull always|answers|never]";

/// How long any one client run or server start may take before the harness gives up.
const DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Side {
    Rust,
    Node,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Pairing {
    Raw,
    Upnode { client: Side, server: Side },
}

impl Pairing {
    const ALL: [(&'static str, Pairing); 5] = [
        ("raw", Pairing::Raw),
        ("rust", Pairing::up(Side::Rust, Side::Rust)),
        ("node", Pairing::up(Side::Node, Side::Node)),
        ("rust-node", Pairing::up(Side::Rust, Side::Node)),
        ("node-rust", Pairing::up(Side::Node, Side::Rust)),
    ];

    const fn up(client: Side, server: Side) -> Pairing {
        Pairing::Upnode { client, server }
    }

    fn label(self) -> &'static str {
        match self {
            Pairing::Raw => "raw JSON lines, Rust → Rust (ceiling)",
            Pairing::Upnode { client, server } => match (client, server) {
                (Side::Rust, Side::Rust) => "upnode Rust → Rust",
                (Side::Node, Side::Node) => "upnode Node → Node",
                (Side::Rust, Side::Node) => "upnode Rust → Node",
                (Side::Node, Side::Rust) => "upnode Node → Rust",
            },
        }
    }

    fn uses_node(self) -> bool {
        matches!(self, Pairing::Upnode { client, server } if client == Side::Node || server == Side::Node)
    }
}

struct Opts {
    calls: usize,
    window: usize,
    warmup: usize,
    runs: usize,
    pairings: Vec<Pairing>,
    multi_thread: bool,
}

impl Opts {
    fn parse(args: &[String]) -> Result<Opts, String> {
        let mut o = Opts {
            calls: 5_000,
            window: 32,
            warmup: 0,
            runs: 5,
            pairings: Pairing::ALL.iter().map(|&(_, p)| p).collect(),
            multi_thread: false,
        };
        let mut warmup = None;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
            let mut number = || -> Result<usize, String> {
                let v = value()?;
                v.parse::<usize>()
                    .map_err(|_| format!("{a} wants a whole number, not {v:?}"))
            };
            match a.as_str() {
                "--calls" => o.calls = number()?,
                "--window" => o.window = number()?,
                "--warmup" => warmup = Some(number()?),
                "--runs" => o.runs = number()?,
                "--only" => {
                    let list = value()?;
                    o.pairings = list
                        .split(',')
                        .map(|name| {
                            Pairing::ALL
                                .iter()
                                .find(|(n, _)| *n == name.trim())
                                .map(|&(_, p)| p)
                                .ok_or_else(|| format!("no pairing called {name:?}"))
                        })
                        .collect::<Result<_, _>>()?;
                }
                "--multi-thread" => o.multi_thread = true,
                // Read by the Rust upnode server process (see servers::upnode_server).
                "--cull" => match value()?.as_str() {
                    "always" | "answers" | "never" => {}
                    v => return Err(format!("--cull wants always, answers or never, not {v:?}")),
                },
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if o.calls == 0 || o.window == 0 || o.runs == 0 {
            return Err("--calls, --window and --runs must be at least 1".into());
        }
        o.warmup = warmup.unwrap_or((o.calls / 5).max(200));
        Ok(o)
    }
}

/// The runtime every Rust process of the benchmark uses: one thread, as a Node process has
/// one event loop, unless `--multi-thread` asks for tokio's default (a worker per core).
fn runtime_with(multi_thread: bool) -> tokio::runtime::Runtime {
    let mut b = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    b.enable_all().build().expect("a tokio runtime")
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    runtime_with(std::env::args().any(|a| a == "--multi-thread"))
}

fn bench_node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node")
}

fn node_command(script: &str) -> Command {
    let mut cmd = Command::new("node");
    cmd.arg(bench_node_dir().join(script))
        .env("NODE_PATH", upnode_tests::node_dir().join("node_modules"));
    cmd
}

fn rust_server(mode: &str, multi_thread: bool) -> (Proc, u16) {
    let exe = std::env::current_exe().expect("the path of this program");
    let mut cmd = Command::new(exe);
    cmd.arg(mode);
    if multi_thread {
        cmd.arg("--multi-thread");
    }
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--cull") {
        cmd.args(&args[i..(i + 2).min(args.len())]);
    }
    Proc::server(&format!("loopback {mode}"), cmd, DEADLINE)
}

/// The running servers, started once and shared by every run.
struct Servers {
    raw: Option<(Proc, u16)>,
    rust: Option<(Proc, u16)>,
    node: Option<(Proc, u16)>,
}

impl Servers {
    fn start(o: &Opts) -> Servers {
        let wants = |f: fn(&Pairing) -> bool| o.pairings.iter().any(f);
        Servers {
            raw: wants(|p| *p == Pairing::Raw).then(|| rust_server("serve-raw", o.multi_thread)),
            rust: wants(|p| {
                matches!(
                    p,
                    Pairing::Upnode {
                        server: Side::Rust,
                        ..
                    }
                )
            })
            .then(|| rust_server("serve-upnode", o.multi_thread)),
            node: wants(|p| {
                matches!(
                    p,
                    Pairing::Upnode {
                        server: Side::Node,
                        ..
                    }
                )
            })
            .then(|| {
                Proc::server(
                    "node echo_server.js",
                    node_command("echo_server.js"),
                    DEADLINE,
                )
            }),
        }
    }

    fn port(&self, p: Pairing) -> u16 {
        let s = match p {
            Pairing::Raw => &self.raw,
            Pairing::Upnode {
                server: Side::Rust, ..
            } => &self.rust,
            Pairing::Upnode {
                server: Side::Node, ..
            } => &self.node,
        };
        s.as_ref().expect("the server was started").1
    }
}

/// One client run of `p` against a server on `port`.
fn run_once(p: Pairing, port: u16, o: &Opts, rt: &tokio::runtime::Runtime) -> Run {
    let (calls, window, warmup) = (o.calls, o.window, o.warmup);
    let run = match p {
        Pairing::Raw => rt.block_on(within_deadline(async move {
            let mut e = clients::RawEcho::connect(port).await;
            clients::run(&mut e, calls, window, warmup).await
        })),
        Pairing::Upnode {
            client: Side::Rust, ..
        } => rt.block_on(within_deadline(async move {
            let mut e = clients::UpnodeEcho::connect(port).await;
            let run = clients::run(&mut e, calls, window, warmup).await;
            e.close().await;
            run
        })),
        Pairing::Upnode {
            client: Side::Node, ..
        } => node_client(port, o),
    };
    // Whoever measured, it must have done what was asked.
    assert_eq!(
        (
            run.sequential.calls,
            run.pipelined.calls,
            run.pipelined.window
        ),
        (calls, calls, window),
        "{}: the client ran something else",
        p.label()
    );
    run
}

async fn within_deadline<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, f)
        .await
        .unwrap_or_else(|_| panic!("a Rust client run took longer than {DEADLINE:?}"))
}

fn node_client(port: u16, o: &Opts) -> Run {
    let mut cmd = node_command("echo_client.js");
    for n in [port as usize, o.calls, o.window, o.warmup] {
        cmd.arg(n.to_string());
    }
    let p = Proc::spawn("node echo_client.js", cmd);
    let (status, lines, stderr) = p.finish(DEADLINE);
    assert!(
        status.success(),
        "node echo_client.js failed ({status}); stdout {lines:?}\n--- its stderr:\n{stderr}"
    );
    let last = lines.last().map(String::as_str).unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| {
        panic!("node echo_client.js printed {lines:?}, not a result line: {e}\n{stderr}")
    })
}

fn node_version() -> String {
    Command::new("node")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "?".into())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve-raw") => servers::serve(servers::Kind::Raw),
        Some("serve-upnode") => servers::serve(servers::Kind::Upnode),
        _ => {}
    }
    let o = Opts::parse(&args).unwrap_or_else(|e| {
        eprintln!("loopback: {e}\n{USAGE}");
        std::process::exit(2)
    });
    if o.pairings.iter().any(|p| p.uses_node()) {
        upnode_tests::ensure_node_modules();
    }

    let began = Instant::now();
    let servers = Servers::start(&o);
    let rt = runtime_with(o.multi_thread);
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); o.pairings.len()];
    for r in 1..=o.runs {
        for (i, &p) in o.pairings.iter().enumerate() {
            let run = run_once(p, servers.port(p), &o, &rt);
            eprintln!(
                "run {r}/{}  {:<40} sequential {:>8.0}/s  p50 {:>6.1} µs  p99 {:>7.1} µs  pipelined {:>8.0}/s",
                o.runs,
                p.label(),
                run.seq_rate(),
                run.sequential.p50_us,
                run.sequential.p99_us,
                run.pipe_rate()
            );
            runs[i].push(run);
        }
    }
    drop(servers);

    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "Loopback echo on 127.0.0.1: {} calls per loop, window {}, {} warm-up calls, \
{} runs; node {}, {} CPUs, {} tokio runtime. Figures: median (min–max) over runs.",
        o.calls,
        o.window,
        o.warmup,
        o.runs,
        node_version(),
        cpus,
        if o.multi_thread {
            "multi-thread"
        } else {
            "current-thread"
        }
    );
    println!();
    println!(
        "| client → server | sequential calls/s | p50 µs | p99 µs | pipelined calls/s (window {}) |",
        o.window
    );
    println!("|---|---:|---:|---:|---:|");
    for (p, rs) in o.pairings.iter().zip(&runs) {
        println!(
            "| {} | {} | {} | {} | {} |",
            p.label(),
            Spread::of(rs.iter().map(Run::seq_rate)).show(),
            Spread::of(rs.iter().map(|r| r.sequential.p50_us)).show(),
            Spread::of(rs.iter().map(|r| r.sequential.p99_us)).show(),
            Spread::of(rs.iter().map(Run::pipe_rate)).show(),
        );
    }
    println!();
    println!(
        "Every answer checked ({} calls per client run); total time {:.1} s.",
        2 * (o.calls + o.warmup) + 1,
        began.elapsed().as_secs_f64()
    );
}
