//! Reconnect policies: how long a client link waits before each reconnect attempt, and how
//! many attempts it makes. The link walks a policy with its own backoff state, drawing jitter
//! from a seeded generator, so the same policy and seed always give the same delays.
//!
//! The default is upnode 0.6's: a fixed 1 s before every attempt, forever.

use super::{
    DEFAULT_BACKOFF_FACTOR, DEFAULT_BACKOFF_JITTER, DEFAULT_BACKOFF_MAX, DEFAULT_BACKOFF_MIN,
    DEFAULT_MAX_RECONNECT_ATTEMPTS, DEFAULT_RECONNECT_DELAY,
};
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
/// use upnode_core::config::Jitter;
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
/// use upnode_core::config::{Exponential, Jitter};
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
    /// let e = upnode_core::config::Exponential::default();
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
    pub(crate) fn range_nanos(&self, attempt: u32) -> (u64, u64) {
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
/// use upnode_core::config::Backoff;
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
    /// use upnode_core::config::{Backoff, Exponential};
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
    /// use upnode_core::config::{Backoff, Exponential, PolicyError};
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
}

/// A backoff plus a limit on attempts: everything the link needs to decide when, and
/// whether, to try again.
///
/// Attempts are counted from the last backoff reset (which the link calls once a
/// connection has stayed up long enough); the very first connect is not an attempt. With
/// `max_attempts: Some(n)`, after `n` delays the link's backoff returns `None` and
/// the link closes with an error. `Some(0)` means never reconnect.
///
/// ```
/// use std::time::Duration;
/// use upnode_core::config::{Backoff, ReconnectPolicy};
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
    /// use upnode_core::config::{Backoff, ReconnectPolicy};
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
    /// let p = upnode_core::config::ReconnectPolicy::fixed(Duration::from_secs(2));
    /// assert_eq!(p.bounds(0), (Duration::from_secs(2), Duration::from_secs(2)));
    /// ```
    pub const fn fixed(delay: Duration) -> Self {
        Self::new(Backoff::Fixed(delay))
    }

    /// The default [`Exponential`] backoff (100 ms doubling to 30 s, full jitter), no limit.
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = upnode_core::config::ReconnectPolicy::exponential();
    /// assert_eq!(p.bounds(2), (Duration::ZERO, Duration::from_millis(400)));
    /// ```
    pub fn exponential() -> Self {
        Self::new(Backoff::Exponential(Exponential::default()))
    }

    /// The same policy with this limit on attempts (`None` for none).
    ///
    /// ```
    /// let p = upnode_core::config::ReconnectPolicy::default().with_max_attempts(Some(3));
    /// assert_eq!(p.max_attempts, Some(3));
    /// ```
    pub const fn with_max_attempts(mut self, max_attempts: Option<u32>) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Checks the backoff's parameters; see [`PolicyError`]. `BackoffState::new` (in the link) calls it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use upnode_core::config::{Backoff, Exponential, PolicyError, ReconnectPolicy};
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
    /// use upnode_core::config::{Backoff, Exponential, Jitter, ReconnectPolicy};
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

    #[test]
    fn pow_matches_small_cases() {
        assert_eq!(pow_u32(2.0, 0), 1.0);
        assert_eq!(pow_u32(2.0, 10), 1024.0);
        assert_eq!(pow_u32(3.0, 5), 243.0);
        assert_eq!(pow_u32(1.0, u32::MAX), 1.0);
        assert_eq!(pow_u32(2.0, u32::MAX), f64::INFINITY);
    }
}
