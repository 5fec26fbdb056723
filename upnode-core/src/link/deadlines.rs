//! The deadlines of calls in flight: a min-heap whose entries are dropped lazily.
//!
//! Most calls are answered long before their deadline, so removing each answered call's
//! entry from an ordered set (a `BTreeSet`, O(log n) with node allocations) is wasted
//! work. Here an answered call's entry simply goes stale. The owner keeps two promises
//! after every change, through [`settle`](Deadlines::settle):
//!
//! - the top entry is live, so [`next`](Deadlines::next) is exact;
//! - stale entries are at most as many as live ones (plus a small constant): when they
//!   exceed that, the heap is rebuilt from the live ones. Memory stays proportional to the
//!   calls in flight, and the rebuild's cost is spread over the removals that made it
//!   necessary (amortised O(1) each).
//!
//! Call ids are never reused, so an entry is live exactly when its call is still known.

use super::ids::CallId;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Stale entries tolerated beyond the number of live ones before a rebuild.
const SLACK: usize = 64;

/// Deadlines of calls, earliest first.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    heap: BinaryHeap<Reverse<(Instant, CallId)>>,
}

impl Deadlines {
    /// Adds a call's deadline.
    pub fn push(&mut self, deadline: Instant, call: CallId) {
        self.heap.push(Reverse((deadline, call)));
    }

    /// The earliest deadline (exact once [`settle`](Self::settle) has run since the last
    /// removal).
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((d, _))| *d)
    }

    /// The call of the earliest deadline if it is at or before `now`, taken out.
    pub fn pop_due(&mut self, now: Instant) -> Option<CallId> {
        match self.heap.peek() {
            Some(Reverse((d, _))) if *d <= now => self.heap.pop().map(|Reverse((_, c))| c),
            _ => None,
        }
    }

    /// Restores the promises after calls were removed: drops stale entries from the top,
    /// and rebuilds the heap from the live entries when the stale ones outnumber them.
    /// `live` says whether a call is still known; `count` is how many calls are.
    pub fn settle(&mut self, count: usize, live: impl Fn(CallId) -> bool) {
        if self.heap.len() > count.saturating_mul(2).saturating_add(SLACK) {
            self.heap.retain(|Reverse((_, c))| live(*c));
        }
        while let Some(Reverse((_, c))) = self.heap.peek() {
            if live(*c) {
                break;
            }
            self.heap.pop();
        }
    }

    /// Entries held, stale ones included.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.heap.clear();
    }
}

#[cfg(test)]
mod tests {
    // A fixed origin for the deadlines: the tests' own clock.
    #![allow(clippy::disallowed_methods)]
    use super::*;
    use std::collections::BTreeSet;
    use std::time::Duration;

    #[test]
    fn answered_calls_leave_the_top_and_stale_entries_stay_bounded() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        let mut live = BTreeSet::new();
        // One call that is never answered, then a million answered in order: the heap
        // never holds more than twice the live calls plus the slack.
        d.push(t0, CallId(0));
        live.insert(0);
        for i in 1..1_000_000u64 {
            d.push(t0 + Duration::from_millis(i), CallId(i));
            live.insert(i);
            if i > 10 {
                live.remove(&(i - 10));
                d.settle(live.len(), |c| live.contains(&c.0));
            }
            assert!(d.len() <= 2 * live.len() + SLACK + 1);
        }
        assert_eq!(d.next(), Some(t0));
        live.remove(&0);
        d.settle(live.len(), |c| live.contains(&c.0));
        let first_live = *live.first().unwrap();
        assert_eq!(
            d.next(),
            Some(t0 + Duration::from_millis(first_live)),
            "the top is the earliest live call once the stale ones are dropped"
        );
    }

    #[test]
    fn due_calls_come_out_in_deadline_order_whatever_the_order_they_were_pushed() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        for (i, ms) in [30u64, 10, 20, 10].into_iter().enumerate() {
            d.push(t0 + Duration::from_millis(ms), CallId(i as u64));
        }
        let mut out = Vec::new();
        while let Some(c) = d.pop_due(t0 + Duration::from_millis(20)) {
            out.push(c.0);
        }
        assert_eq!(out, vec![1, 3, 2]);
        assert_eq!(d.next(), Some(t0 + Duration::from_millis(30)));
    }
}
