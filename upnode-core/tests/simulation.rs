//! The deterministic simulation of the link: a `ClientLink` and the server's `ServerConn`s
//! joined by a virtual network in virtual time, under a seeded fault plan, with every run's
//! log checked against the link's promises (see `sim/check.rs`).
//!
//! - `cargo test -p upnode-core --test simulation` runs `DEFAULT_SEEDS` seeds and the
//!   scenario tests.
//! - `UPNODE_SIM_SEEDS=100000` runs more seeds; `UPNODE_SIM_FIRST_SEED=n` starts elsewhere.
//! - `UPNODE_SIM_SEED=1234 cargo test -p upnode-core --test simulation -- replay_one_seed
//!   --nocapture` replays one seed and prints its plan and full event log.

mod sim;

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Seeds run by default (split over the `random_seeds_*` tests, which run in parallel).
const DEFAULT_SEEDS: u64 = 10_000;
/// How many tests the seeds are split over.
const PARTS: u64 = 4;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {v:?}"))
    })
}

/// Runs this part's share of the seeds; fails listing every failing seed with its replay
/// command.
fn run_part(part: u64) {
    let total = env_u64("UPNODE_SIM_SEEDS").unwrap_or(DEFAULT_SEEDS);
    let first = env_u64("UPNODE_SIM_FIRST_SEED").unwrap_or(0);
    let mut failures = Vec::new();
    let mut seed = first + part;
    while seed < first + total {
        match catch_unwind(AssertUnwindSafe(|| sim::run_seed(seed))) {
            Ok((_, v)) if v.is_empty() => {}
            Ok((_, v)) => failures.push(format!(
                "seed {seed}: {} violation(s), first: {}\n  replay: {}",
                v.len(),
                v[0],
                sim::replay_line(seed)
            )),
            Err(_) => failures.push(format!(
                "seed {seed}: panicked\n  replay: {}",
                sim::replay_line(seed)
            )),
        }
        if failures.len() >= 20 {
            break;
        }
        seed += PARTS;
    }
    assert!(
        failures.is_empty(),
        "{} failing seed(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn random_seeds_part_0() {
    run_part(0);
}

#[test]
fn random_seeds_part_1() {
    run_part(1);
}

#[test]
fn random_seeds_part_2() {
    run_part(2);
}

#[test]
fn random_seeds_part_3() {
    run_part(3);
}

/// Replays `UPNODE_SIM_SEED` (0 if unset), printing its plan and log.
#[test]
fn replay_one_seed() {
    let seed = env_u64("UPNODE_SIM_SEED").unwrap_or(0);
    let (w, v) = sim::run_seed(seed);
    println!("plan: {:#?}", w.plan);
    println!("{}", w.render_log());
    println!("steps: {}, end: {:?}", w.steps, w.now);
    for x in &v {
        println!("VIOLATION {x}");
    }
    assert!(v.is_empty(), "seed {seed}: {} violation(s): {v:#?}", v.len());
}

// ---- regressions: seeds that found bugs ------------------------------------------------------

/// Runs `seed`, requires it clean, and hands back its log for a targeted assertion (so a
/// change to the plan generator that stops the seed from reaching the old bug is noticed).
fn regression(seed: u64) -> sim::world::World {
    let (w, v) = sim::run_seed(seed);
    assert!(
        v.is_empty(),
        "seed {seed}: {v:#?}\nreplay: {}",
        sim::replay_line(seed)
    );
    w
}

/// Seed 4: `close()` while up with a call in flight reported `Down` before the call's
/// `CallFailed { Closed }`, so the driver saw the link down with a call still pending.
#[test]
fn regression_seed_4_close_while_up_fails_calls_before_down() {
    use sim::world::{Act, Entry};
    use upnode_core::link::{CallFailure, LinkEvent};
    let w = regression(4);
    let close = w
        .log
        .iter()
        .position(|e| matches!(e, Entry::Act { act: Act::Close, .. }))
        .expect("seed 4 closes");
    let after: Vec<&LinkEvent> = w.log[close..]
        .iter()
        .filter_map(|e| match e {
            Entry::Client { ev, .. } => Some(ev),
            _ => None,
        })
        .collect();
    let failed = after.iter().position(|e| {
        matches!(
            e,
            LinkEvent::CallFailed {
                reason: CallFailure::Closed,
                ..
            }
        )
    });
    let down = after
        .iter()
        .position(|e| matches!(e, LinkEvent::Down { .. }));
    assert!(
        matches!((failed, down), (Some(f), Some(d)) if f < d),
        "seed 4 no longer closes while up with a call in flight: {after:?}"
    );
}
