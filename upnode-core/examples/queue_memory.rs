// This example measures wall time; the library itself never reads a clock.
#![allow(clippy::disallowed_methods)]
//! Measures what a `TxQueue` costs at a million entries: heap bytes per entry (counted by a
//! wrapping global allocator) and the time to push them all, then expire or pop them all.
//!
//! ```text
//! cargo run --release -p upnode-core --example queue_memory [entries]
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};
use upnode_core::link::queue::TxQueue;
use upnode_core::link::rng::SplitMix64;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

#[derive(Clone, Copy)]
enum Deadlines {
    /// `now + i µs`: what a fixed per-transaction timeout gives.
    Increasing,
    /// Shuffled: each entry gets a random deadline within an hour.
    Random,
    /// No deadline at all.
    None,
}

fn run<T>(n: usize, kind: Deadlines, label: &str, make: impl Fn(u64) -> T) {
    let base = Instant::now();
    let mut rng = SplitMix64::new(1);
    let deadlines: Vec<Option<Instant>> = (0..n as u64)
        .map(|i| match kind {
            Deadlines::Increasing => Some(base + Duration::from_micros(i)),
            Deadlines::Random => Some(base + Duration::from_nanos(rng.below(3_600_000_000_000))),
            Deadlines::None => None,
        })
        .collect();

    let before = counting_alloc::live();
    counting_alloc::reset_peak();
    let mut q: TxQueue<T> = TxQueue::with_capacity_limit(n);

    let t = Instant::now();
    for (i, d) in deadlines.iter().enumerate() {
        q.push(make(i as u64), *d).expect("under the limit");
    }
    let push = t.elapsed();
    let held = counting_alloc::live() - before;
    let peak = counting_alloc::peak() - before;
    assert_eq!(q.len(), n);

    // Empty it by expiring (what has a deadline), then popping the rest.
    let t = Instant::now();
    let expired = match kind {
        Deadlines::None => 0,
        _ => q.expire(base + Duration::from_secs(7200)).fold(0, |n, e| {
            black_box(e);
            n + 1
        }),
    };
    let expire = t.elapsed();
    let t = Instant::now();
    let popped = std::iter::from_fn(|| q.pop_front()).fold(0, |n, e| {
        black_box(e);
        n + 1
    });
    let pop_rest = t.elapsed();
    assert_eq!(expired + popped, n);
    // An emptied B-tree keeps its (empty) root node; nothing else may remain.
    let residual = counting_alloc::live() - before;
    assert!(
        residual < 4096,
        "an empty queue still holds {residual} bytes"
    );

    // Fill it again the same way, and time emptying it by popping alone.
    for (i, d) in deadlines.iter().enumerate() {
        q.push(make(i as u64), *d).expect("under the limit");
    }
    let t = Instant::now();
    let popped = std::iter::from_fn(|| q.pop_front()).fold(0, |n, e| {
        black_box(e);
        n + 1
    });
    let pop = t.elapsed();
    assert_eq!(popped, n);

    let per = |d: Duration| d.as_nanos() as f64 / n as f64;
    println!("{label}");
    println!(
        "  heap held: {held} bytes = {:.1} bytes/entry (peak {:.1} bytes/entry)",
        held as f64 / n as f64,
        peak as f64 / n as f64,
    );
    println!("  push all:   {push:>10.2?} ({:.0} ns/entry)", per(push));
    if expired > 0 {
        println!(
            "  expire all: {expire:>10.2?} ({:.0} ns/entry)",
            per(expire)
        );
    } else {
        println!(
            "  pop (nothing to expire): {pop_rest:>10.2?} ({:.0} ns/entry)",
            per(pop_rest)
        );
    }
    println!("  pop all:    {pop:>10.2?} ({:.0} ns/entry)", per(pop));
    println!("  held once emptied: {residual} bytes");
}

/// The whole link: `ClientLink::transact` with a timeout while the link is down, so every
/// transaction waits in the queue (and in the link's index of waiting transactions).
fn run_link(n: usize) {
    use upnode_core::config::ClientConfig;
    use upnode_core::link::{ClientLink, LinkEvent};
    use upnode_core::Value;
    let base = Instant::now();
    let mut link = ClientLink::new(ClientConfig::default(), Value::Null, base).expect("valid");
    while link.poll_event().is_some() {}
    let before = counting_alloc::live();
    let t = Instant::now();
    for i in 0..n {
        let timeout = Duration::from_secs(3600) + Duration::from_micros(i as u64);
        link.transact(base, Some(timeout), false)
            .expect("below the cap");
    }
    let push = t.elapsed();
    let bytes = counting_alloc::live() - before;
    let t = Instant::now();
    link.handle_timeout(base + Duration::from_secs(7200));
    let mut timed_out = 0usize;
    while let Some(ev) = link.poll_event() {
        if matches!(ev, LinkEvent::TransactionTimedOut { .. }) {
            timed_out += 1;
        }
    }
    let expire = t.elapsed();
    assert_eq!(timed_out, n);
    println!("ClientLink::transact, {n} waiting with timeouts:");
    println!(
        "  {:.1} bytes per transaction; transact all {:?}; time all out {:?}",
        bytes as f64 / n as f64,
        push,
        expire
    );
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("entries: a number"))
        .unwrap_or(1_000_000);
    println!(
        "TxQueue, {n} entries (Instant is {} bytes)",
        std::mem::size_of::<Instant>()
    );
    run(
        n,
        Deadlines::Increasing,
        "u64 payload, deadlines increasing (a fixed timeout):",
        |i| i,
    );
    run(
        n,
        Deadlines::Random,
        "u64 payload, deadlines random within an hour:",
        |i| i,
    );
    run(n, Deadlines::None, "u64 payload, no deadlines:", |i| i);
    run(
        n,
        Deadlines::Increasing,
        "64-byte payload, deadlines increasing:",
        |i| [i; 8],
    );
    run_link(n);
}
