//! How long the link waits before each reconnect attempt.
//!
//! A [`ReconnectPolicy`] says how delays grow ([`Backoff`]) and how many attempts are allowed
//! before the link gives up. A [`BackoffState`] walks a policy one attempt at a time, drawing
//! jitter from a seeded [`SplitMix64`], so the same policy and seed always give the same
//! delays.
//!
//! The default is upnode 0.6's: a fixed 1 s before every attempt, forever.
//!
//! ```
//! use std::time::Duration;
//! use upnode_core::config::{Backoff, Exponential, Jitter, ReconnectPolicy};
//! use upnode_core::link::backoff::BackoffState;
//!
//! let policy = ReconnectPolicy::new(Backoff::Exponential(Exponential {
//!     min: Duration::from_millis(100),
//!     max: Duration::from_secs(1),
//!     factor: 2.0,
//!     jitter: Jitter::None,
//! }))
//! .with_max_attempts(Some(6));
//! let mut state = BackoffState::new(policy, 7).unwrap();
//! let delays: Vec<u64> = std::iter::from_fn(|| state.next_delay())
//!     .map(|d| d.as_millis() as u64)
//!     .collect();
//! assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
//! // Attempts are used up: the link closes with an error.
//! assert_eq!(state.next_delay(), None);
//! ```

use super::rng::SplitMix64;
use crate::config::{Backoff, PolicyError, ReconnectPolicy};
use std::time::Duration;

/// A policy being walked: which attempt comes next, and the seeded generator behind jitter.
///
/// The link asks [`next_delay`](Self::next_delay) each time a connection fails or drops,
/// waits that long (by its injected clock), then tries again; once a connection has stayed
/// up long enough it calls [`reset`](Self::reset). The same policy and seed always give the
/// same delays.
///
/// ```
/// use std::time::Duration;
/// use upnode_core::config::ReconnectPolicy;
/// use upnode_core::link::backoff::BackoffState;
///
/// let mut s = BackoffState::new(ReconnectPolicy::exponential(), 2024).unwrap();
/// for _ in 0..20 {
///     let (lo, hi) = s.bounds(s.attempt());
///     let d = s.next_delay().unwrap();
///     assert!(lo <= d && d <= hi);
/// }
/// assert_eq!(s.attempt(), 20);
/// s.reset();
/// assert_eq!(s.attempt(), 0);
/// assert!(s.next_delay().unwrap() <= Duration::from_millis(100));
/// ```
/// A duration in whole nanoseconds, saturating at `u64::MAX`.
#[derive(Debug, Clone)]
pub struct BackoffState {
    policy: ReconnectPolicy,
    rng: SplitMix64,
    attempt: u32,
}

impl BackoffState {
    /// Starts walking `policy` at attempt 0, with jitter drawn from `seed`. Fails if the
    /// policy is invalid ([`ReconnectPolicy::validate`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use upnode_core::config::ReconnectPolicy;
    /// use upnode_core::link::backoff::BackoffState;
    /// let mut s = BackoffState::new(ReconnectPolicy::default(), 0).unwrap();
    /// assert_eq!(s.next_delay(), Some(Duration::from_secs(1)));
    /// ```
    pub fn new(policy: ReconnectPolicy, seed: u64) -> Result<Self, PolicyError> {
        policy.validate()?;
        Ok(BackoffState {
            policy,
            rng: SplitMix64::new(seed),
            attempt: 0,
        })
    }

    /// The delay before the next attempt, and counts that attempt; `None` once
    /// `max_attempts` delays have been handed out since the last reset (the counter then
    /// stays put). The delay lies within [`bounds`](Self::bounds)`(self.attempt())` as it
    /// was before the call. Without a limit the counter saturates at `u32::MAX`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use upnode_core::config::ReconnectPolicy;
    /// use upnode_core::link::backoff::BackoffState;
    /// let p = ReconnectPolicy::default().with_max_attempts(Some(2));
    /// let mut s = BackoffState::new(p, 0).unwrap();
    /// assert_eq!(s.next_delay(), Some(Duration::from_secs(1)));
    /// assert_eq!(s.next_delay(), Some(Duration::from_secs(1)));
    /// assert_eq!(s.next_delay(), None);
    /// assert_eq!(s.attempt(), 2);
    /// ```
    pub fn next_delay(&mut self) -> Option<Duration> {
        if self.is_exhausted() {
            return None;
        }
        let delay = sample(&self.policy.backoff, self.attempt, &mut self.rng);
        self.attempt = self.attempt.saturating_add(1);
        Some(delay)
    }

    /// How many delays [`next_delay`](Self::next_delay) has handed out since creation or
    /// the last reset; also the index of the next attempt.
    ///
    /// ```
    /// let s = upnode_core::link::backoff::BackoffState::new(Default::default(), 0).unwrap();
    /// assert_eq!(s.attempt(), 0);
    /// ```
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Whether `max_attempts` is used up, so the next [`next_delay`](Self::next_delay) is
    /// `None`.
    ///
    /// ```
    /// use upnode_core::config::ReconnectPolicy;
    /// use upnode_core::link::backoff::BackoffState;
    /// let s = BackoffState::new(ReconnectPolicy::default().with_max_attempts(Some(0)), 0).unwrap();
    /// assert!(s.is_exhausted());
    /// ```
    pub fn is_exhausted(&self) -> bool {
        self.policy
            .max_attempts
            .is_some_and(|max| self.attempt >= max)
    }

    /// Starts over at attempt 0 (the base delay goes back to `min`, and the attempt limit
    /// is renewed). The generator is not reseeded: later jitter continues the same seeded
    /// sequence rather than repeating it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use upnode_core::config::{Backoff, Exponential, Jitter, ReconnectPolicy};
    /// use upnode_core::link::backoff::BackoffState;
    /// let e = Exponential { jitter: Jitter::None, ..Exponential::default() };
    /// let mut s = BackoffState::new(ReconnectPolicy::new(Backoff::Exponential(e)), 0).unwrap();
    /// s.next_delay();
    /// s.next_delay();
    /// s.reset();
    /// assert_eq!(s.next_delay(), Some(Duration::from_millis(100)));
    /// ```
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The inclusive range any delay of attempt `attempt` falls in; see
    /// [`ReconnectPolicy::bounds`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = upnode_core::link::backoff::BackoffState::new(Default::default(), 0).unwrap();
    /// assert_eq!(s.bounds(0), (Duration::from_secs(1), Duration::from_secs(1)));
    /// ```
    pub fn bounds(&self, attempt: u32) -> (Duration, Duration) {
        self.policy.bounds(attempt)
    }

    /// The policy being walked.
    ///
    /// ```
    /// let s = upnode_core::link::backoff::BackoffState::new(Default::default(), 0).unwrap();
    /// assert_eq!(s.policy().max_attempts, None);
    /// ```
    pub fn policy(&self) -> &ReconnectPolicy {
        &self.policy
    }
}

/// Draws the delay of `attempt` from the policy's range.
fn sample(backoff: &Backoff, attempt: u32, rng: &mut SplitMix64) -> Duration {
    match backoff {
        Backoff::Fixed(d) => *d,
        Backoff::Exponential(e) => {
            let (lo, hi) = e.range_nanos(attempt);
            if lo == hi {
                Duration::from_nanos(lo)
            } else {
                Duration::from_nanos(rng.range_inclusive(lo, hi))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn exp(min: u64, max: u64, factor: f64, jitter: Jitter) -> ReconnectPolicy {
        ReconnectPolicy::new(Backoff::Exponential(Exponential {
            min: ms(min),
            max: ms(max),
            factor,
            jitter,
        }))
    }

    fn delays(s: &mut BackoffState, n: usize) -> Vec<Duration> {
        (0..n).map(|_| s.next_delay().unwrap()).collect()
    }

    #[test]
    fn default_is_fixed_one_second_forever() {
        let p = ReconnectPolicy::default();
        assert_eq!(p, ReconnectPolicy::fixed(DEFAULT_RECONNECT_DELAY));
        let mut s = BackoffState::new(p, 123).unwrap();
        for _ in 0..1000 {
            assert_eq!(s.next_delay(), Some(Duration::from_secs(1)));
        }
        assert_eq!(s.attempt(), 1000);
        assert!(!s.is_exhausted());
    }

    #[test]
    fn fixed_ignores_seed() {
        for seed in 0..50 {
            let mut s = BackoffState::new(ReconnectPolicy::fixed(ms(1000)), seed).unwrap();
            assert_eq!(delays(&mut s, 5), vec![ms(1000); 5]);
        }
    }

    #[test]
    fn fixed_zero_is_allowed() {
        let mut s = BackoffState::new(ReconnectPolicy::fixed(Duration::ZERO), 0).unwrap();
        assert_eq!(s.next_delay(), Some(Duration::ZERO));
    }

    #[test]
    fn exponential_defaults() {
        let e = Exponential::default();
        assert_eq!(e.min, DEFAULT_BACKOFF_MIN);
        assert_eq!(e.max, DEFAULT_BACKOFF_MAX);
        assert_eq!(e.factor, DEFAULT_BACKOFF_FACTOR);
        assert_eq!(e.jitter, DEFAULT_BACKOFF_JITTER);
        assert_eq!(
            ReconnectPolicy::exponential().backoff,
            Backoff::Exponential(e)
        );
    }

    #[test]
    fn exponential_without_jitter_doubles_then_caps() {
        let mut s = BackoffState::new(exp(100, 30_000, 2.0, Jitter::None), 0).unwrap();
        let got: Vec<u128> = delays(&mut s, 12).iter().map(|d| d.as_millis()).collect();
        assert_eq!(
            got,
            [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000]
        );
    }

    #[test]
    fn exponential_non_integer_factor() {
        let mut s = BackoffState::new(exp(1000, 10_000, 1.5, Jitter::None), 0).unwrap();
        let got: Vec<u128> = delays(&mut s, 7).iter().map(|d| d.as_millis()).collect();
        assert_eq!(got, [1000, 1500, 2250, 3375, 5062, 7593, 10_000]);
    }

    #[test]
    fn factor_one_is_constant() {
        let mut s = BackoffState::new(exp(250, 1000, 1.0, Jitter::None), 0).unwrap();
        assert_eq!(delays(&mut s, 10), vec![ms(250); 10]);
        assert_eq!(s.bounds(u32::MAX), (ms(250), ms(250)));
    }

    #[test]
    fn huge_attempts_saturate_at_max() {
        for jitter in [Jitter::None, Jitter::Full, Jitter::Proportional(0.3)] {
            for factor in [1.0000001, 1.5, 2.0, 1e300, f64::MAX] {
                let p = exp(100, 30_000, factor, jitter);
                for attempt in [64, 1_000, 1 << 20, u32::MAX - 1, u32::MAX] {
                    let (lo, hi) = p.bounds(attempt);
                    assert!(lo <= hi);
                    assert!(hi <= ms(30_000), "{factor} {attempt} {hi:?}");
                }
                let mut s = BackoffState::new(p, 1).unwrap();
                s.attempt = u32::MAX - 2;
                for _ in 0..5 {
                    let d = s.next_delay().unwrap();
                    assert!(d <= ms(30_000));
                }
                assert_eq!(s.attempt(), u32::MAX);
            }
        }
        let e = Exponential {
            factor: 2.0,
            ..Exponential::default()
        };
        assert_eq!(e.base_delay(u32::MAX), DEFAULT_BACKOFF_MAX);
        assert_eq!(e.base_delay(1 << 31), DEFAULT_BACKOFF_MAX);
    }

    #[test]
    fn max_as_large_as_allowed() {
        let max = Duration::from_nanos(u64::MAX);
        let p = ReconnectPolicy::new(Backoff::Exponential(Exponential {
            min: Duration::from_nanos(1),
            max,
            factor: 2.0,
            jitter: Jitter::Proportional(1.0),
        }));
        let mut s = BackoffState::new(p, 9).unwrap();
        s.attempt = 60;
        for _ in 0..10 {
            let d = s.next_delay().unwrap();
            assert!(d <= max);
        }
        assert_eq!(p.bounds(u32::MAX).1, max);
    }

    #[test]
    fn proportional_range_is_clamped() {
        // Base 100 ms: [50, 150] ms clamped to min 100 ms.
        let p = exp(100, 1000, 2.0, Jitter::Proportional(0.5));
        assert_eq!(p.bounds(0), (ms(100), ms(150)));
        assert_eq!(p.bounds(1), (ms(100), ms(300)));
        assert_eq!(p.bounds(2), (ms(200), ms(600)));
        // Base capped at 1000 ms: [500, 1500] clamped to max.
        assert_eq!(p.bounds(4), (ms(500), ms(1000)));
        assert_eq!(p.bounds(40), (ms(500), ms(1000)));
        let zero = exp(100, 1000, 2.0, Jitter::Proportional(0.0));
        assert_eq!(zero.bounds(1), (ms(200), ms(200)));
    }

    #[test]
    fn full_jitter_range() {
        let p = exp(100, 1000, 2.0, Jitter::Full);
        assert_eq!(p.bounds(0), (Duration::ZERO, ms(100)));
        assert_eq!(p.bounds(3), (Duration::ZERO, ms(800)));
        assert_eq!(p.bounds(9), (Duration::ZERO, ms(1000)));
    }

    #[test]
    fn jitter_actually_varies_and_spreads() {
        let mut s = BackoffState::new(exp(100, 30_000, 2.0, Jitter::Full), 5).unwrap();
        let mut lo_half = 0;
        let n = 2000;
        for _ in 0..n {
            s.attempt = 20; // base capped at 30 s: range [0, 30 s]
            if s.next_delay().unwrap() < Duration::from_secs(15) {
                lo_half += 1;
            }
        }
        assert!((850..=1150).contains(&lo_half), "{lo_half}");
    }

    #[test]
    fn same_seed_same_sequence_different_seed_differs() {
        for jitter in [Jitter::Full, Jitter::Proportional(0.2)] {
            let p = exp(100, 30_000, 2.0, jitter);
            let run = |seed| delays(&mut BackoffState::new(p, seed).unwrap(), 30);
            assert_eq!(run(42), run(42));
            assert_ne!(run(42), run(43));
            assert_ne!(run(0), run(1));
        }
    }

    #[test]
    fn max_attempts_exhausts_then_none() {
        let p = ReconnectPolicy::exponential().with_max_attempts(Some(3));
        let mut s = BackoffState::new(p, 0).unwrap();
        for i in 0..3 {
            assert_eq!(s.attempt(), i);
            assert!(!s.is_exhausted());
            assert!(s.next_delay().is_some());
        }
        assert!(s.is_exhausted());
        for _ in 0..5 {
            assert_eq!(s.next_delay(), None);
            assert_eq!(s.attempt(), 3);
        }
        s.reset();
        assert!(!s.is_exhausted());
        assert!(s.next_delay().is_some());
    }

    #[test]
    fn zero_max_attempts_never_reconnects() {
        let p = ReconnectPolicy::default().with_max_attempts(Some(0));
        let mut s = BackoffState::new(p, 0).unwrap();
        assert_eq!(s.next_delay(), None);
        assert_eq!(s.attempt(), 0);
    }

    #[test]
    fn reset_restarts_at_min() {
        let mut s = BackoffState::new(exp(100, 30_000, 2.0, Jitter::None), 0).unwrap();
        assert_eq!(delays(&mut s, 5).last(), Some(&ms(1600)));
        s.reset();
        assert_eq!(s.attempt(), 0);
        assert_eq!(delays(&mut s, 3), [ms(100), ms(200), ms(400)]);
    }

    #[test]
    fn reset_does_not_replay_jitter() {
        let p = exp(100, 30_000, 2.0, Jitter::Full);
        let mut s = BackoffState::new(p, 77).unwrap();
        let first = delays(&mut s, 10);
        s.reset();
        let second = delays(&mut s, 10);
        assert_ne!(first, second);
        for (i, d) in second.iter().enumerate() {
            let (lo, hi) = p.bounds(i as u32);
            assert!(lo <= *d && *d <= hi);
        }
    }

    #[test]
    fn invalid_policies_rejected() {
        let base = Exponential::default();
        let cases = [
            (
                Exponential {
                    min: Duration::ZERO,
                    ..base
                },
                PolicyError::ZeroMin,
            ),
            (
                Exponential {
                    min: ms(2000),
                    max: ms(1000),
                    ..base
                },
                PolicyError::MinAboveMax {
                    min: ms(2000),
                    max: ms(1000),
                },
            ),
            (
                Exponential {
                    max: Duration::MAX,
                    ..base
                },
                PolicyError::MaxTooLong { max: Duration::MAX },
            ),
            (
                Exponential {
                    factor: 0.99,
                    ..base
                },
                PolicyError::BadFactor { factor: 0.99 },
            ),
            (
                Exponential {
                    factor: f64::INFINITY,
                    ..base
                },
                PolicyError::BadFactor {
                    factor: f64::INFINITY,
                },
            ),
            (
                Exponential {
                    factor: -2.0,
                    ..base
                },
                PolicyError::BadFactor { factor: -2.0 },
            ),
            (
                Exponential {
                    jitter: Jitter::Proportional(1.01),
                    ..base
                },
                PolicyError::BadJitter { p: 1.01 },
            ),
            (
                Exponential {
                    jitter: Jitter::Proportional(-0.1),
                    ..base
                },
                PolicyError::BadJitter { p: -0.1 },
            ),
        ];
        for (e, want) in cases {
            let p = ReconnectPolicy::new(Backoff::Exponential(e));
            assert_eq!(p.validate(), Err(want));
            assert_eq!(BackoffState::new(p, 0).unwrap_err(), want);
            // Bounds of an invalid policy still do not panic.
            let _ = p.bounds(0);
            let _ = p.bounds(u32::MAX);
        }
        // NaN cannot be compared with ==, so check these by shape.
        let nan_factor = ReconnectPolicy::new(Backoff::Exponential(Exponential {
            factor: f64::NAN,
            ..base
        }));
        assert!(matches!(
            nan_factor.validate(),
            Err(PolicyError::BadFactor { .. })
        ));
        let _ = nan_factor.bounds(7);
        let nan_jitter = ReconnectPolicy::new(Backoff::Exponential(Exponential {
            jitter: Jitter::Proportional(f64::NAN),
            ..base
        }));
        assert!(matches!(
            nan_jitter.validate(),
            Err(PolicyError::BadJitter { .. })
        ));
        let _ = nan_jitter.bounds(7);
        // Edges that are valid.
        for e in [
            Exponential {
                min: ms(5),
                max: ms(5),
                ..base
            },
            Exponential {
                factor: 1.0,
                ..base
            },
            Exponential {
                jitter: Jitter::Proportional(0.0),
                ..base
            },
            Exponential {
                jitter: Jitter::Proportional(1.0),
                ..base
            },
            Exponential {
                max: Duration::from_nanos(u64::MAX),
                ..base
            },
        ] {
            assert_eq!(Backoff::Exponential(e).validate(), Ok(()));
        }
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            PolicyError::BadFactor { factor: 0.5 }.to_string(),
            "backoff factor 0.5 must be finite and at least 1"
        );
        assert_eq!(
            PolicyError::ZeroMin.to_string(),
            "exponential backoff min must be above zero"
        );
    }

    fn arb_exponential() -> impl Strategy<Value = Exponential> {
        (
            1u64..=10_000_000_000,
            0u64..=100_000_000_000,
            1.0f64..16.0,
            prop_oneof![
                Just(Jitter::None),
                Just(Jitter::Full),
                (0.0f64..=1.0).prop_map(Jitter::Proportional),
            ],
        )
            .prop_map(|(min, extra, factor, jitter)| Exponential {
                min: Duration::from_nanos(min),
                max: Duration::from_nanos(min + extra),
                factor,
                jitter,
            })
    }

    proptest! {
        #[test]
        fn every_delay_within_bounds(e in arb_exponential(), seed in any::<u64>(), start in prop_oneof![Just(0u32), any::<u32>()]) {
            let p = ReconnectPolicy::new(Backoff::Exponential(e));
            let mut s = BackoffState::new(p, seed).unwrap();
            s.attempt = start;
            for _ in 0..64 {
                let a = s.attempt();
                let (lo, hi) = s.bounds(a);
                prop_assert!(lo <= hi);
                prop_assert!(hi <= e.max);
                if e.jitter != Jitter::Full {
                    prop_assert!(lo >= e.min);
                }
                let d = s.next_delay().unwrap();
                prop_assert!(lo <= d && d <= hi, "attempt {} delay {:?} bounds {:?}", a, d, (lo, hi));
            }
        }

        #[test]
        fn base_delay_never_shrinks(e in arb_exponential(), a in any::<u32>()) {
            prop_assert!(e.base_delay(a) <= e.base_delay(a.saturating_add(1)));
            prop_assert!(e.base_delay(a) >= e.min && e.base_delay(a) <= e.max);
        }

        #[test]
        fn replay_is_exact(e in arb_exponential(), seed in any::<u64>()) {
            let p = ReconnectPolicy::new(Backoff::Exponential(e));
            let mut a = BackoffState::new(p, seed).unwrap();
            let mut b = BackoffState::new(p, seed).unwrap();
            for _ in 0..40 {
                prop_assert_eq!(a.next_delay(), b.next_delay());
            }
        }
    }
}
