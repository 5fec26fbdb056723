//! A deterministic simulation of the upnode link.
//!
//! One [`ClientLink`](upnode_core::link::ClientLink) and the [`ServerConn`]s of a server
//! (one per accepted connection) are joined by a virtual network ([`world::Net`]) in virtual
//! time: one base `Instant` is captured once and every instant handed to the core is
//! `base + offset`. A seeded [`plan::Plan`] says which faults happen and what the client
//! does; [`world::World`] drives everything by the documented driving contract and records
//! a full event log; [`check::check`] walks the log afterwards and reports every broken
//! invariant.
//!
//! [`ServerConn`]: upnode_core::link::ServerConn

pub mod check;
pub mod plan;
pub mod world;

use std::sync::OnceLock;
use std::time::Instant;

/// The one real instant every virtual instant is offset from.
pub fn base_instant() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    // Test code needs one real instant to offset from; nothing else reads a clock.
    #[allow(clippy::disallowed_methods)]
    *BASE.get_or_init(Instant::now)
}

/// Runs one seed: builds its plan, simulates, checks. Returns the world (with its log) and
/// the violations found.
pub fn run_seed(seed: u64) -> (world::World, Vec<String>) {
    let plan = plan::Plan::random(seed);
    run_plan(plan)
}

/// Simulates a plan to the end and checks the result.
pub fn run_plan(plan: plan::Plan) -> (world::World, Vec<String>) {
    let mut w = world::World::new(plan);
    w.run();
    let v = check::check(&w);
    (w, v)
}

/// The line that replays a seed with its log printed.
pub fn replay_line(seed: u64) -> String {
    format!(
        "UPNODE_SIM_SEED={seed} cargo test -p upnode-core --test simulation -- replay_one_seed --nocapture"
    )
}
