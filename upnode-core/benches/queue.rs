// Benchmarks take one real instant to offset from; the library itself never reads a clock.
#![allow(clippy::disallowed_methods)]
//! `TxQueue` at a million entries: filling, emptying by `pop_front` and by `expire`, and
//! single operations on a queue that stays a million long.
//!
//! ```text
//! cargo bench -p upnode-core --bench queue
//! ```

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use std::hint::black_box;
use std::time::{Duration, Instant};
use upnode_core::link::queue::TxQueue;
use upnode_core::link::rng::SplitMix64;

const N: usize = 1_000_000;

/// `base + i µs` for entry `i`: what a fixed per-transaction timeout gives.
fn increasing(base: Instant) -> Vec<Option<Instant>> {
    (0..N as u64)
        .map(|i| Some(base + Duration::from_micros(i)))
        .collect()
}

/// Random deadlines within an hour of `base`.
fn random(base: Instant) -> Vec<Option<Instant>> {
    let mut rng = SplitMix64::new(7);
    (0..N)
        .map(|_| Some(base + Duration::from_nanos(rng.below(3_600_000_000_000))))
        .collect()
}

fn filled(deadlines: &[Option<Instant>]) -> TxQueue<u64> {
    let mut q = TxQueue::with_capacity_limit(N + 1);
    for (i, d) in deadlines.iter().enumerate() {
        q.push(i as u64, *d).unwrap();
    }
    q
}

fn bulk(c: &mut Criterion) {
    let base = Instant::now();
    let inc = increasing(base);
    let rnd = random(base);
    let late = base + Duration::from_secs(7200);

    let mut g = c.benchmark_group("queue_1m");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(N as u64));

    g.bench_function("push_increasing_deadlines", |b| {
        b.iter_batched(
            || TxQueue::with_capacity_limit(N),
            |mut q| {
                for (i, d) in inc.iter().enumerate() {
                    q.push(i as u64, *d).unwrap();
                }
                q
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("push_random_deadlines", |b| {
        b.iter_batched(
            || TxQueue::with_capacity_limit(N),
            |mut q| {
                for (i, d) in rnd.iter().enumerate() {
                    q.push(i as u64, *d).unwrap();
                }
                q
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("pop_front_all", |b| {
        b.iter_batched(
            || filled(&inc),
            |mut q| {
                while let Some(e) = q.pop_front() {
                    black_box(e);
                }
                q
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("expire_all_increasing", |b| {
        b.iter_batched(
            || filled(&inc),
            |mut q| {
                for e in q.expire(late) {
                    black_box(e);
                }
                q
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("expire_all_random", |b| {
        b.iter_batched(
            || filled(&rnd),
            |mut q| {
                for e in q.expire(late) {
                    black_box(e);
                }
                q
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// One operation at a time on a queue that holds a million entries throughout.
fn steady(c: &mut Criterion) {
    let base = Instant::now();
    let rnd = random(base);
    let mut g = c.benchmark_group("queue_at_1m");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    let mut q = filled(&rnd);
    let mut rng = SplitMix64::new(11);
    g.bench_function("push_then_pop_front", |b| {
        b.iter(|| {
            let d = base + Duration::from_nanos(rng.below(3_600_000_000_000));
            q.push(1, Some(d)).unwrap();
            black_box(q.pop_front())
        })
    });

    let mut q = filled(&rnd);
    let mut rng = SplitMix64::new(12);
    g.bench_function("push_then_remove_it", |b| {
        b.iter(|| {
            let d = base + Duration::from_nanos(rng.below(3_600_000_000_000));
            let id = q.push(1, Some(d)).unwrap();
            black_box(q.remove(id))
        })
    });

    let mut q = filled(&rnd);
    let mut rng = SplitMix64::new(13);
    // Deadlines keep moving forward so each expire takes out about one entry.
    let mut now = base;
    g.bench_function("push_then_expire_one", |b| {
        b.iter(|| {
            let d = now + Duration::from_nanos(rng.below(3_600_000_000_000));
            q.push(1, Some(d)).unwrap();
            now = q.next_deadline().unwrap();
            black_box(q.expire(now).next())
        })
    });
    g.finish();
}

criterion_group!(benches, bulk, steady);
criterion_main!(benches);
