//! What one connection has written for the peer and the transport has not taken yet: when
//! it is too much, the connection stops reading and holds calls back, and when it stays too
//! much for too long, the connection is given up.

use super::calls::Calls;
use super::timers::{after, Timer, TimerTable};
use crate::config::OutputLimits;
use std::time::{Duration, Instant};

/// The unsent-output state of one connection, as the driver reports it.
#[derive(Debug, Clone)]
pub(crate) struct Backlog {
    limits: OutputLimits,
    unsent: usize,
    /// Since when it has been at or over the cap.
    full_since: Option<Instant>,
}

impl Backlog {
    pub fn new(limits: OutputLimits) -> Backlog {
        Backlog {
            limits,
            unsent: 0,
            full_since: None,
        }
    }

    /// Reports `unsent`, holds `calls` back while the output is full and arms
    /// [`Timer::OutputStall`] for when it would have been full too long. Returns whether it
    /// just stopped being full (the held calls may go now).
    pub fn report_and_hold(
        &mut self,
        now: Instant,
        unsent: usize,
        calls: &mut Calls,
        timers: &mut TimerTable,
    ) -> bool {
        let was_full = self.is_full();
        self.report(now, unsent);
        let full = self.is_full();
        calls.hold(full);
        timers.set_or_stop(Timer::OutputStall, self.deadline());
        was_full && !full
    }

    /// The driver's count of bytes not yet taken by the transport.
    pub fn report(&mut self, now: Instant, unsent: usize) {
        self.unsent = unsent;
        if self.is_full() {
            self.full_since.get_or_insert(now);
        } else {
            self.full_since = None;
        }
    }

    /// The last reported count.
    pub fn unsent(&self) -> usize {
        self.unsent
    }

    /// At or over the cap: stop reading, hold calls back.
    pub fn is_full(&self) -> bool {
        self.unsent >= self.limits.max_unsent.max(1)
    }

    /// When the connection is given up if it stays full.
    pub fn deadline(&self) -> Option<Instant> {
        self.full_since
            .and_then(|t| after(t, self.limits.stall_timeout))
    }

    /// Full for the whole stall timeout at `now`: how much is unsent, and for how long.
    pub fn stalled(&self, now: Instant) -> Option<(usize, Duration)> {
        let since = self.full_since?;
        let d = now.saturating_duration_since(since);
        (d >= self.limits.stall_timeout).then_some((self.unsent, d))
    }
}
