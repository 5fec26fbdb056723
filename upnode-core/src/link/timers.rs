//! Every deadline of one connection's link state in one table.
//!
//! Each [`Timer`] is armed or not; [`TimerTable::next`] is the earliest armed one and
//! [`TimerTable::first_expired`] the first due one in [`Timer::ALL`] order, which is the
//! order in which a due timer wins when several are due at once. Per-call and
//! per-transaction deadlines live with their tables; [`earliest`] merges them with this one.

use std::time::{Duration, Instant};

/// A deadline of the link or of its current connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Opening the transport (client).
    Connect,
    /// The peer's `methods`.
    Handshake,
    /// The client's connect step signalling up.
    ConnectStep,
    /// The next reconnect attempt (client).
    Reconnect,
    /// The output has been over its cap for the whole stall timeout.
    OutputStall,
    /// The answer to the outstanding ping.
    PingAnswer,
    /// The next ping.
    PingDue,
}

impl Timer {
    /// Every timer, in the order a due one is handled first.
    pub const ALL: [Timer; 7] = [
        Timer::Connect,
        Timer::Handshake,
        Timer::ConnectStep,
        Timer::Reconnect,
        Timer::OutputStall,
        Timer::PingAnswer,
        Timer::PingDue,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// When each [`Timer`] fires, if armed.
#[derive(Debug, Clone, Default)]
pub(crate) struct TimerTable {
    at: [Option<Instant>; Timer::ALL.len()],
}

/// The instant `d` after `now`, or `None` (never) when the clock cannot hold it: every
/// deadline made from a user-given duration goes through here, so a limit of
/// `Duration::MAX` means no limit rather than an overflow.
pub(crate) fn after(now: Instant, d: Duration) -> Option<Instant> {
    now.checked_add(d)
}

impl TimerTable {
    /// Arms `timer` `d` after `now`, or disarms it when that is never (see [`after`]).
    pub fn set_after(&mut self, timer: Timer, now: Instant, d: Duration) {
        self.set_or_stop(timer, after(now, d));
    }

    /// Arms `timer` at `at`, or disarms it with `None`.
    pub fn set_or_stop(&mut self, timer: Timer, at: Option<Instant>) {
        self.at[timer.index()] = at;
    }

    /// Disarms `timer`.
    pub fn stop(&mut self, timer: Timer) {
        self.at[timer.index()] = None;
    }

    /// Disarms every timer.
    pub fn stop_all(&mut self) {
        self.at = Default::default();
    }

    /// When `timer` fires, if armed.
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.at[timer.index()]
    }

    /// The earliest armed timer's deadline.
    pub fn next(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }

    /// The first timer, in [`Timer::ALL`] order, due at `now`.
    pub fn first_expired(&self, now: Instant) -> Option<Timer> {
        Timer::ALL
            .into_iter()
            .find(|t| self.get(*t).is_some_and(|at| at <= now))
    }
}

/// The earliest of several optional deadlines.
pub(crate) fn earliest(deadlines: impl IntoIterator<Item = Option<Instant>>) -> Option<Instant> {
    deadlines.into_iter().flatten().min()
}

#[cfg(test)]
mod tests {
    // A test needs some instant to start from; the timers never read the clock.
    #![allow(clippy::disallowed_methods)]
    use super::*;

    #[test]
    fn the_first_due_timer_in_table_order_wins() {
        let t0 = Instant::now();
        let mut t = TimerTable::default();
        assert_eq!(t.next(), None);
        assert_eq!(t.first_expired(t0), None);
        t.set_or_stop(Timer::PingDue, Some(t0));
        t.set_after(Timer::Handshake, t0, Duration::from_secs(1));
        assert_eq!(t.next(), Some(t0));
        assert_eq!(t.first_expired(t0), Some(Timer::PingDue));
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(t.first_expired(t1), Some(Timer::Handshake));
        t.stop(Timer::Handshake);
        assert_eq!(t.first_expired(t1), Some(Timer::PingDue));
        t.set_or_stop(Timer::PingDue, None);
        assert_eq!(t.next(), None);
        t.set_or_stop(Timer::Reconnect, Some(t1));
        t.stop_all();
        assert_eq!(t.get(Timer::Reconnect), None);
    }

    #[test]
    fn a_duration_too_long_for_the_clock_disarms_the_timer_and_never_panics() {
        let t0 = Instant::now();
        let mut t = TimerTable::default();
        t.set_after(Timer::PingDue, t0, Duration::from_secs(1));
        t.set_after(Timer::PingDue, t0, Duration::MAX);
        assert_eq!(t.get(Timer::PingDue), None);
        assert_eq!(t.next(), None);
    }

    #[test]
    fn earliest_ignores_unset_deadlines() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(1);
        assert_eq!(earliest([None, Some(t1), Some(t0), None]), Some(t0));
        assert_eq!(earliest([None, None]), None);
    }
}
