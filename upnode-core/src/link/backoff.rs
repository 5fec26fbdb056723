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
//! use upnode_core::link::backoff::{Backoff, BackoffState, Exponential, Jitter, ReconnectPolicy};
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

use crate::config::{
    DEFAULT_BACKOFF_FACTOR, DEFAULT_BACKOFF_JITTER, DEFAULT_BACKOFF_MAX, DEFAULT_BACKOFF_MIN,
    DEFAULT_MAX_RECONNECT_ATTEMPTS, DEFAULT_RECONNECT_DELAY,
};
use crate::link::rng::SplitMix64;
use std::time::Duration;
use thiserror::Error;

/// How an exponential delay is randomised.
///
/// Each attempt `n` (counted from 0) has a base delay `d = min(min · factorⁿ, max)` (see
/// [`Exponential`]); the jitter turns it into the range the actual delay is drawn from,
/// uniformly, in whole nanoseconds, both ends included:
///
/// | jitter | range |
/// |---|---|
/// | `None` | exactly `d` |
/// | `Full` | `[0, d]` (may go below `min`) |
/// | `Proportional(p)` | `[⌊d·(1−p)⌋, ⌊d·(1+p)⌋]`, each end then clamped into `[min, max]` |
///
/// Proportional jitter clamps the range before drawing, not the drawn value, so the delays
/// stay uniform over what is left and never pile up on `max` (a pile on `max` would bring
/// back the synchronised reconnects jitter is there to prevent). The products are computed
/// in `f64` and truncated toward zero.
///
/// ```
/// use upnode_core::link::backoff::Jitter;
/// assert_eq!(upnode_core::config::DEFAULT_BACKOFF_JITTER, Jitter::Full);
/// let _ten_percent = Jitter::Proportional(0.1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Jitter {
    /// No randomness: every delay is the base delay.
    None,
    /// Uniform over `[0, d]`.
    Full,
    /// Uniform over `[d·(1−p), d·(1+p)]` clamped into `[min, max]`; `p` must be within
    /// `0..=1`.
    Proportional(f64),
}

/// Delays that grow geometrically from `min` up to `max`, with optional jitter.
///
/// The base delay of attempt `n` (counted from 0 since the last reset) is
/// `min(min · factorⁿ, max)`, computed in `f64` nanoseconds (the power by repeated squaring,
/// so every platform gets the same bits) and truncated to whole nanoseconds. It never
/// overflows: once the product passes `max`, including at `u32::MAX` attempts, it stays at
/// `max`. [`Jitter`] then says which range the actual delay is drawn from.
///
/// Valid when `0 < min <= max`, `max` is at most 2⁶⁴−1 ns (about 584 years), and `factor` is
/// finite and at least 1; see [`PolicyError`].
///
/// ```
/// use std::time::Duration;
/// use upnode_core::link::backoff::{Exponential, Jitter};
///
/// let e = Exponential { min: Duration::from_millis(50), max: Duration::from_secs(5), factor: 3.0, jitter: Jitter::None };
/// assert_eq!(e.base_delay(0), Duration::from_millis(50));
/// assert_eq!(e.base_delay(2), Duration::from_millis(450));
/// assert_eq!(e.base_delay(u32::MAX), Duration::from_secs(5));
/// assert_eq!(Exponential::default().max, upnode_core::config::DEFAULT_BACKOFF_MAX);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exponential {
    /// Base delay of the first attempt; must be above zero.
    pub min: Duration,
    /// Cap on the base delay, and on every delay.
    pub max: Duration,
    /// Growth per attempt; finite and at least 1.
    pub factor: f64,
    /// How the base delay is randomised.
    pub jitter: Jitter,
}

impl Default for Exponential {
    /// [`DEFAULT_BACKOFF_MIN`] (100 ms) doubling ([`DEFAULT_BACKOFF_FACTOR`]) up to
    /// [`DEFAULT_BACKOFF_MAX`] (30 s), with [`DEFAULT_BACKOFF_JITTER`] (full).
    fn default() -> Self {
        Exponential {
            min: DEFAULT_BACKOFF_MIN,
            max: DEFAULT_BACKOFF_MAX,
            factor: DEFAULT_BACKOFF_FACTOR,
            jitter: DEFAULT_BACKOFF_JITTER,
        }
    }
}

impl Exponential {
    /// The delay of attempt `attempt` before jitter: `min(min · factorᵃᵗᵗᵉᵐᵖᵗ, max)`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let e = upnode_core::link::backoff::Exponential::default();
    /// assert_eq!(e.base_delay(3), Duration::from_millis(800));
    /// assert_eq!(e.base_delay(1_000), Duration::from_secs(30));
    /// ```
    pub fn base_delay(&self, attempt: u32) -> Duration {
        Duration::from_nanos(self.base_nanos(attempt))
    }

    fn base_nanos(&self, attempt: u32) -> u64 {
        let min = nanos(self.min);
        let max = nanos(self.max);
        let scaled = min as f64 * pow_u32(self.factor, attempt);
        // NaN (only from an invalid factor) compares false and casts to 0; the clamp below
        // keeps even an invalid policy from panicking.
        let base = if scaled >= max as f64 {
            max
        } else {
            scaled as u64
        };
        base.max(min).min(max)
    }

    /// The inclusive range, in nanoseconds, that the delay of `attempt` is drawn from.
    fn range_nanos(&self, attempt: u32) -> (u64, u64) {
        let base = self.base_nanos(attempt);
        let (lo, hi) = match self.jitter {
            Jitter::None => (base, base),
            Jitter::Full => (0, base),
            Jitter::Proportional(p) => {
                let min = nanos(self.min);
                let max = nanos(self.max);
                let clamp = |x: f64| (x as u64).max(min).min(max);
                (
                    clamp(base as f64 * (1.0 - p)),
                    clamp(base as f64 * (1.0 + p)),
                )
            }
        };
        (lo.min(hi), lo.max(hi))
    }

    fn validate(&self) -> Result<(), PolicyError> {
        if self.min.is_zero() {
            return Err(PolicyError::ZeroMin);
        }
        if self.min > self.max {
            return Err(PolicyError::MinAboveMax {
                min: self.min,
                max: self.max,
            });
        }
        if self.max.as_nanos() > u128::from(u64::MAX) {
            return Err(PolicyError::MaxTooLong { max: self.max });
        }
        if !(self.factor.is_finite() && self.factor >= 1.0) {
            return Err(PolicyError::BadFactor {
                factor: self.factor,
            });
        }
        if let Jitter::Proportional(p) = self.jitter {
            if !(0.0..=1.0).contains(&p) {
                return Err(PolicyError::BadJitter { p });
            }
        }
        Ok(())
    }
}

/// How delays grow from one reconnect attempt to the next.
///
/// ```
/// use std::time::Duration;
/// use upnode_core::link::backoff::Backoff;
/// assert_eq!(Backoff::default(), Backoff::Fixed(Duration::from_secs(1)));
/// assert_eq!(Backoff::Fixed(Duration::from_secs(1)).bounds(9), (Duration::from_secs(1), Duration::from_secs(1)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Backoff {
    /// The same delay before every attempt, without jitter (upnode 0.6's behaviour). Any
    /// duration is valid, zero included.
    Fixed(Duration),
    /// Geometric growth with a cap and optional jitter.
    Exponential(Exponential),
}

impl Default for Backoff {
    /// `Fixed(`[`DEFAULT_RECONNECT_DELAY`]`)`: 1 s, as upnode 0.6.
    fn default() -> Self {
        Backoff::Fixed(DEFAULT_RECONNECT_DELAY)
    }
}

impl Backoff {
    /// The inclusive range any delay of attempt `attempt` (counted from 0 since the last
    /// reset) falls in. Never panics, even for an invalid policy.
    ///
    /// ```
    /// use std::time::Duration;
    /// use upnode_core::link::backoff::{Backoff, Exponential};
    /// let b = Backoff::Exponential(Exponential::default()); // full jitter
    /// assert_eq!(b.bounds(0), (Duration::ZERO, Duration::from_millis(100)));
    /// assert_eq!(b.bounds(u32::MAX), (Duration::ZERO, Duration::from_secs(30)));
    /// ```
    pub fn bounds(&self, attempt: u32) -> (Duration, Duration) {
        match self {
            Backoff::Fixed(d) => (*d, *d),
            Backoff::Exponential(e) => {
                let (lo, hi) = e.range_nanos(attempt);
                (Duration::from_nanos(lo), Duration::from_nanos(hi))
            }
        }
    }

    /// Checks the parameters; see [`PolicyError`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use upnode_core::link::backoff::{Backoff, Exponential, PolicyError};
    /// let bad = Backoff::Exponential(Exponential { factor: 0.5, ..Exponential::default() });
    /// assert_eq!(bad.validate(), Err(PolicyError::BadFactor { factor: 0.5 }));
    /// assert_eq!(Backoff::Fixed(Duration::ZERO).validate(), Ok(()));
    /// ```
    pub fn validate(&self) -> Result<(), PolicyError> {
        match self {
            Backoff::Fixed(_) => Ok(()),
            Backoff::Exponential(e) => e.validate(),
        }
    }

    fn sample(&self, attempt: u32, rng: &mut SplitMix64) -> Duration {
        match self {
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
}

/// A backoff plus a limit on attempts: everything the link needs to decide when, and
/// whether, to try again.
///
/// Attempts are counted from the last [`BackoffState::reset`] (which the link calls once a
/// connection has stayed up long enough); the very first connect is not an attempt. With
/// `max_attempts: Some(n)`, after `n` delays [`BackoffState::next_delay`] returns `None` and
/// the link closes with an error. `Some(0)` means never reconnect.
///
/// ```
/// use std::time::Duration;
/// use upnode_core::link::backoff::{Backoff, ReconnectPolicy};
///
/// let p = ReconnectPolicy::default();
/// assert_eq!(p.backoff, Backoff::Fixed(Duration::from_secs(1)));
/// assert_eq!(p.max_attempts, None);
///
/// let p = ReconnectPolicy::exponential().with_max_attempts(Some(10));
/// assert!(p.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct ReconnectPolicy {
    /// How delays grow.
    pub backoff: Backoff,
    /// Attempts allowed between resets; `None` for no limit.
    pub max_attempts: Option<u32>,
}

impl ReconnectPolicy {
    /// This backoff, with [`DEFAULT_MAX_RECONNECT_ATTEMPTS`] (no limit).
    ///
    /// ```
    /// use std::time::Duration;
    /// use upnode_core::link::backoff::{Backoff, ReconnectPolicy};
    /// let p = ReconnectPolicy::new(Backoff::Fixed(Duration::from_millis(250)));
    /// assert_eq!(p.max_attempts, None);
    /// ```
    pub const fn new(backoff: Backoff) -> Self {
        ReconnectPolicy {
            backoff,
            max_attempts: DEFAULT_MAX_RECONNECT_ATTEMPTS,
        }
    }

    /// A fixed delay before every attempt, no limit.
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = upnode_core::link::backoff::ReconnectPolicy::fixed(Duration::from_secs(2));
    /// assert_eq!(p.bounds(0), (Duration::from_secs(2), Duration::from_secs(2)));
    /// ```
    pub const fn fixed(delay: Duration) -> Self {
        Self::new(Backoff::Fixed(delay))
    }

    /// The default [`Exponential`] backoff (100 ms doubling to 30 s, full jitter), no limit.
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = upnode_core::link::backoff::ReconnectPolicy::exponential();
    /// assert_eq!(p.bounds(2), (Duration::ZERO, Duration::from_millis(400)));
    /// ```
    pub fn exponential() -> Self {
        Self::new(Backoff::Exponential(Exponential::default()))
    }

    /// The same policy with this limit on attempts (`None` for none).
    ///
    /// ```
    /// let p = upnode_core::link::backoff::ReconnectPolicy::default().with_max_attempts(Some(3));
    /// assert_eq!(p.max_attempts, Some(3));
    /// ```
    pub const fn with_max_attempts(mut self, max_attempts: Option<u32>) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Checks the backoff's parameters; see [`PolicyError`]. [`BackoffState::new`] calls it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use upnode_core::link::backoff::{Backoff, Exponential, PolicyError, ReconnectPolicy};
    /// let e = Exponential { min: Duration::from_secs(2), max: Duration::from_secs(1), ..Exponential::default() };
    /// assert!(matches!(ReconnectPolicy::new(Backoff::Exponential(e)).validate(), Err(PolicyError::MinAboveMax { .. })));
    /// ```
    pub fn validate(&self) -> Result<(), PolicyError> {
        self.backoff.validate()
    }

    /// The inclusive range any delay of attempt `attempt` (counted from 0 since the last
    /// reset) falls in, whatever the seed; meant for invariant checks. It does not look at
    /// `max_attempts`. Never panics, even for an invalid policy.
    ///
    /// ```
    /// use std::time::Duration;
    /// use upnode_core::link::backoff::{Backoff, Exponential, Jitter, ReconnectPolicy};
    /// let p = ReconnectPolicy::new(Backoff::Exponential(Exponential {
    ///     jitter: Jitter::Proportional(0.5),
    ///     ..Exponential::default()
    /// }));
    /// // Base 100 ms; [50 ms, 150 ms] clamped into [100 ms, 30 s].
    /// assert_eq!(p.bounds(0), (Duration::from_millis(100), Duration::from_millis(150)));
    /// ```
    pub fn bounds(&self, attempt: u32) -> (Duration, Duration) {
        self.backoff.bounds(attempt)
    }
}

/// Why a reconnect policy was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// An exponential backoff's `min` was zero, so it could never grow.
    #[error("exponential backoff min must be above zero")]
    ZeroMin,
    /// An exponential backoff's `min` was above its `max`.
    #[error("exponential backoff min {min:?} is above max {max:?}")]
    MinAboveMax {
        /// The `min` given.
        min: Duration,
        /// The `max` given.
        max: Duration,
    },
    /// An exponential backoff's `max` was longer than 2⁶⁴−1 nanoseconds.
    #[error("exponential backoff max {max:?} is longer than 2^64-1 ns")]
    MaxTooLong {
        /// The `max` given.
        max: Duration,
    },
    /// The growth factor was below 1, infinite or NaN.
    #[error("backoff factor {factor} must be finite and at least 1")]
    BadFactor {
        /// The factor given.
        factor: f64,
    },
    /// Proportional jitter outside `0..=1`, or NaN.
    #[error("proportional jitter {p} must be within 0..=1")]
    BadJitter {
        /// The proportion given.
        p: f64,
    },
}

/// A policy being walked: which attempt comes next, and the seeded generator behind jitter.
///
/// The link asks [`next_delay`](Self::next_delay) each time a connection fails or drops,
/// waits that long (by its injected clock), then tries again; once a connection has stayed
/// up long enough it calls [`reset`](Self::reset). The same policy and seed always give the
/// same delays.
///
/// ```
/// use std::time::Duration;
/// use upnode_core::link::backoff::{BackoffState, ReconnectPolicy};
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
    /// use upnode_core::link::backoff::{BackoffState, ReconnectPolicy};
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
    /// use upnode_core::link::backoff::{BackoffState, ReconnectPolicy};
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
        let delay = self.policy.backoff.sample(self.attempt, &mut self.rng);
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
    /// use upnode_core::link::backoff::{BackoffState, ReconnectPolicy};
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
    /// use upnode_core::link::backoff::{Backoff, BackoffState, Exponential, Jitter, ReconnectPolicy};
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

/// A duration in whole nanoseconds, saturating at `u64::MAX`.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// `base` raised to `exp` by repeated squaring: plain IEEE multiplications, so the result is
/// the same on every platform (unlike `powf`/`powi`, which may differ in the last bit).
fn pow_u32(mut base: f64, mut exp: u32) -> f64 {
    let mut acc = 1.0;
    while exp > 0 {
        if exp & 1 == 1 {
            acc *= base;
        }
        exp >>= 1;
        if exp > 0 {
            base *= base;
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[test]
    fn pow_matches_small_cases() {
        assert_eq!(pow_u32(2.0, 0), 1.0);
        assert_eq!(pow_u32(2.0, 10), 1024.0);
        assert_eq!(pow_u32(3.0, 5), 243.0);
        assert_eq!(pow_u32(1.0, u32::MAX), 1.0);
        assert_eq!(pow_u32(2.0, u32::MAX), f64::INFINITY);
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
