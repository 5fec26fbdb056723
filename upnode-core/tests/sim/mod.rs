//! A deterministic simulation of the upnode link.
//!
//! One [`ClientLink`](upnode_core::link::ClientLink) and the [`ServerConn`]s of a server
//! (one per accepted connection, exporting `time`, `echo`, `auth`) are joined by a virtual
//! network in virtual time: one base `Instant` is captured once and every instant handed to
//! the core is `base + offset`. A seeded [`plan::Plan`] says which faults happen and what
//! the client does; [`world::World`] drives everything by the documented driving contract
//! (drain `poll_event`/`poll_transmit` after every call, advance time to the earliest of
//! the `poll_timeout()`s and the network's deliveries, call `handle_timeout` exactly then;
//! when several things are due at one instant the seed picks the order) and records a full
//! event log; [`check::check`] walks the log afterwards against a model of the link's
//! promises.
//!
//! Faults, each drawn per seed (and most per connection): refused connects; connects that
//! never complete; cuts at a byte offset in one direction (both sides get FIN); a newline
//! injected into one direction (bad JSON); chunking down to byte by byte; per-chunk latency,
//! in order per direction; black holes toward one side or both (nothing arrives, not even
//! FIN); server restarts (connects refused, connections ended); `auth` that is slow, fails
//! (the driver calls `fail_connect_step`), hangs (connect step timeout) or whose call times
//! out; slow server answers; reports for closed transports still made (the link must ignore
//! them); spurious `handle_timeout` calls; "coarse" runs whose times share a quantum, so
//! deadlines of different kinds fall on one instant.
//!
//! Workload: transactions at random times, some with a wait limit, some with retry; when
//! ready each calls `time`, `echo` or the `beep` of the up value with a tracked callback
//! (some with a call time limit) and, for retry ones, `finish`es on the answer; random
//! `cancel`s; sometimes a transaction made inside the `Remote` handler; `close()` near the
//! end, in whatever state the link is.
//!
//! Invariants: see [`check`] (transactions resolve exactly once and in FIFO order, timeouts
//! exact, Up/Down alternate and Up follows Remote, every call resolves exactly once and none
//! is pending at Down/Closed, reconnect delays within the policy's bounds and attempts
//! counted right, `max_attempts` honoured, dead links found in time, server connections and
//! transports all closed at the end, nothing after Closed) and the checks in
//! `World::drain_client`/`drain_server` (made whenever a state machine is quiet).
//!
//! [`ServerConn`]: upnode_core::link::ServerConn

pub mod check;
pub mod plan;
pub mod world;

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
