//! The deadlines of calls in flight, earliest first, with entries dropped lazily.
//!
//! Most calls are answered long before their deadline, so removing each answered call's
//! entry from an ordered set (a `BTreeSet`, O(log n) with node allocations) is wasted
//! work. Here an answered call's entry simply goes stale. And most calls take the same
//! time limit, made at a clock that only goes forward: their deadlines come in order. Those
//! go to a queue (O(1) at both ends, in memory order); a deadline earlier than the last one
//! queued goes to a min-heap beside it. The owner keeps two promises after every change,
//! through [`settle`](Deadlines::settle):
//!
//! - the first entry of each is live, so [`next`](Deadlines::next) is exact;
//! - stale entries are at most as many as live ones (plus a small constant): when they
//!   exceed that, both are rebuilt from the live ones. Memory stays proportional to the
//!   calls in flight, and the rebuild's cost is spread over the removals that made it
//!   necessary (amortised O(1) each).
//!
//! Call ids are never reused, so an entry is live exactly when its call is still known.
//!
//! A deadline is held as signed nanoseconds from the table's first one: 16 bytes an entry
//! with its call, where an `Instant` alone takes 16 (a hundred thousand calls in flight
//! hold one entry each). Deadlines more than 292 years apart compare equal.

use super::ids::CallId;
use crate::seq_map::spare_room;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

/// Stale entries tolerated beyond the number of live ones before a rebuild.
const SLACK: usize = 64;

/// A deadline: nanoseconds after the table's origin (before it, if negative).
type Nanos = i64;

/// Deadlines of calls, earliest first.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    /// What the [`Nanos`] count from: the first deadline pushed.
    origin: Option<Instant>,
    /// Deadlines pushed in order (each at or after the one before).
    queue: VecDeque<(Nanos, CallId)>,
    /// The others.
    heap: BinaryHeap<Reverse<(Nanos, CallId)>>,
}

impl Deadlines {
    /// `t` as nanoseconds from `origin`, saturating.
    fn nanos(origin: Instant, t: Instant) -> Nanos {
        match t.checked_duration_since(origin) {
            Some(after) => Nanos::try_from(after.as_nanos()).unwrap_or(Nanos::MAX),
            None => Nanos::try_from(origin.duration_since(t).as_nanos()).map_or(Nanos::MIN, |n| -n),
        }
    }

    /// The instant `n` stands for.
    fn instant(origin: Instant, n: Nanos) -> Instant {
        let d = Duration::from_nanos(n.unsigned_abs());
        let t = if n >= 0 {
            origin.checked_add(d)
        } else {
            origin.checked_sub(d)
        };
        // Only an instant the platform cannot hold fails: the origin is the nearest one.
        t.unwrap_or(origin)
    }

    /// Adds a call's deadline.
    pub fn push(&mut self, deadline: Instant, call: CallId) {
        let origin = *self.origin.get_or_insert(deadline);
        let deadline = Self::nanos(origin, deadline);
        match self.queue.back() {
            Some(last) if (deadline, call) < *last => self.heap.push(Reverse((deadline, call))),
            _ => self.queue.push_back((deadline, call)),
        }
    }

    /// The earliest entry, and whether it is the queue's.
    fn first(&self) -> Option<((Nanos, CallId), bool)> {
        match (self.queue.front(), self.heap.peek()) {
            (Some(q), Some(Reverse(h))) if h < q => Some((*h, false)),
            (Some(q), _) => Some((*q, true)),
            (None, Some(Reverse(h))) => Some((*h, false)),
            (None, None) => None,
        }
    }

    /// The earliest deadline (exact once [`settle`](Self::settle) has run since the last
    /// removal).
    pub fn next(&self) -> Option<Instant> {
        let origin = self.origin?;
        self.first().map(|((d, _), _)| Self::instant(origin, d))
    }

    /// The call of the earliest deadline if it is at or before `now`, taken out.
    pub fn pop_due(&mut self, now: Instant) -> Option<CallId> {
        let now = Self::nanos(self.origin?, now);
        match self.first() {
            Some(((d, c), in_queue)) if d <= now => {
                if in_queue {
                    self.queue.pop_front();
                } else {
                    self.heap.pop();
                }
                Some(c)
            }
            _ => None,
        }
    }

    /// Restores the promises after calls were removed: drops stale entries from the front of
    /// each, and rebuilds both from the live entries when the stale ones outnumber them.
    /// `live` says whether a call is still known; `count` is how many calls are.
    pub fn settle(&mut self, count: usize, live: impl Fn(CallId) -> bool) {
        if self.len() > count.saturating_mul(2).saturating_add(SLACK) {
            self.queue.retain(|(_, c)| live(*c));
            self.heap.retain(|Reverse((_, c))| live(*c));
        }
        while self.queue.front().is_some_and(|(_, c)| !live(*c)) {
            self.queue.pop_front();
        }
        while self.heap.peek().is_some_and(|Reverse((_, c))| !live(*c)) {
            self.heap.pop();
        }
        // After a burst, the room it took goes back.
        if let Some(room) = spare_room(self.queue.capacity(), self.queue.len()) {
            self.queue.shrink_to(room);
        }
        if let Some(room) = spare_room(self.heap.capacity(), self.heap.len()) {
            self.heap.shrink_to(room);
        }
    }

    /// Entries held, stale ones included.
    fn len(&self) -> usize {
        self.queue.len() + self.heap.len()
    }

    /// Forgets everything, and the room it took.
    pub fn clear(&mut self) {
        *self = Deadlines::default();
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
    fn deadlines_before_and_long_after_the_first_keep_their_order_and_exact_instants() {
        assert_eq!(
            std::mem::size_of::<(Nanos, CallId)>(),
            16,
            "an entry is two words"
        );
        let t0 = Instant::now() + Duration::from_secs(3600);
        let mut d = Deadlines::default();
        let at = [
            t0,
            t0 - Duration::from_secs(3599),
            t0 + Duration::from_secs(86_400 * 365 * 100),
            t0 + Duration::from_nanos(1),
            t0 - Duration::from_nanos(1),
        ];
        for (i, t) in at.iter().enumerate() {
            d.push(*t, CallId(i as u64));
        }
        let mut want: Vec<(Instant, u64)> = at.iter().zip(0..).map(|(t, i)| (*t, i)).collect();
        want.sort();
        for (t, i) in want {
            assert_eq!(d.next(), Some(t), "the exact instant comes back");
            assert_eq!(
                d.pop_due(t - Duration::from_nanos(1)),
                None,
                "not due a nanosecond early"
            );
            assert_eq!(d.pop_due(t), Some(CallId(i)));
        }
        assert_eq!(d.next(), None);
    }

    #[test]
    fn the_room_a_burst_took_goes_back_once_its_calls_are_answered() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        let mut live = BTreeSet::new();
        // 100 000 calls at once, in order and (every tenth) out of order.
        for i in 0..100_000u64 {
            let ms = if i % 10 == 9 { i / 2 } else { i };
            d.push(t0 + Duration::from_millis(ms), CallId(i));
            live.insert(i);
        }
        assert!(d.queue.capacity() >= 90_000 && d.heap.capacity() >= 10_000);
        for i in 0..100_000u64 {
            live.remove(&i);
            d.settle(live.len(), |c| live.contains(&c.0));
        }
        assert_eq!(d.next(), None);
        assert!(d.queue.capacity() <= 4 * SLACK, "{}", d.queue.capacity());
        assert!(d.heap.capacity() <= 4 * SLACK, "{}", d.heap.capacity());
    }

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
    fn in_order_and_out_of_order_deadlines_come_out_merged_and_stale_ones_are_skipped() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut d = Deadlines::default();
        // Calls 0..6 with deadlines 10, 20, 5, 30, 20, 1: 5, 20 (the second) and 1 are out
        // of order.
        for (i, ms) in [10u64, 20, 5, 30, 20, 1].into_iter().enumerate() {
            d.push(at(ms), CallId(i as u64));
        }
        assert_eq!(d.next(), Some(at(1)));
        // Call 5 (1 ms) and call 0 (10 ms) are answered.
        let live = |c: CallId| ![0, 5].contains(&c.0);
        d.settle(4, live);
        assert_eq!(d.next(), Some(at(5)));
        let mut out = Vec::new();
        while let Some(c) = d.pop_due(at(25)) {
            if live(c) {
                out.push(c.0);
            }
        }
        assert_eq!(
            out,
            vec![2, 1, 4],
            "5 ms, then the two at 20 ms in id order"
        );
        assert_eq!(d.next(), Some(at(30)));
    }

    /// One step of a sequence run against a model.
    #[derive(Debug, Clone)]
    enum Op {
        /// A call with a time limit of this many ms.
        Push(u64),
        /// The k-th (modulo) call still known is answered.
        Answer(usize),
        /// The clock moves on this many ms and the due calls expire.
        Advance(u64),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (0u64..200).prop_map(Op::Push),
            3 => any::<usize>().prop_map(Op::Answer),
            1 => (0u64..100).prop_map(Op::Advance),
        ]
    }

    proptest::proptest! {
        /// Against an ordered set of the calls still known: the earliest deadline is exact
        /// after every step, due calls expire in deadline order, and stale entries stay
        /// within twice the live ones plus the slack.
        #[test]
        fn any_sequence_of_calls_answers_and_expiries_matches_an_ordered_set(
            ops in proptest::collection::vec(op(), 1..400)
        ) {
            let t0 = Instant::now();
            let mut now = t0;
            let mut d = Deadlines::default();
            let mut model: BTreeSet<(Instant, CallId)> = BTreeSet::new();
            let mut next_id = 0u64;
            for op in ops {
                match op {
                    Op::Push(ms) => {
                        let at = now + Duration::from_millis(ms);
                        d.push(at, CallId(next_id));
                        model.insert((at, CallId(next_id)));
                        next_id += 1;
                    }
                    Op::Answer(k) => {
                        if let Some(&e) = model.iter().nth(k % model.len().max(1)) {
                            model.remove(&e);
                            let live: BTreeSet<CallId> = model.iter().map(|(_, c)| *c).collect();
                            d.settle(live.len(), |c| live.contains(&c));
                        }
                    }
                    Op::Advance(ms) => {
                        now += Duration::from_millis(ms);
                        let mut expired = Vec::new();
                        while let Some(c) = d.pop_due(now) {
                            if let Some(&e) = model.iter().find(|(_, x)| *x == c) {
                                model.remove(&e);
                                expired.push(e);
                            }
                        }
                        let live: BTreeSet<CallId> = model.iter().map(|(_, c)| *c).collect();
                        d.settle(live.len(), |c| live.contains(&c));
                        proptest::prop_assert!(
                            expired.windows(2).all(|w| w[0] <= w[1]),
                            "expired out of order: {:?}", expired
                        );
                        proptest::prop_assert!(
                            model.first().is_none_or(|(at, _)| *at > now),
                            "a due call did not expire"
                        );
                    }
                }
                proptest::prop_assert_eq!(d.next(), model.first().map(|(at, _)| *at));
                proptest::prop_assert!(d.len() <= 2 * model.len() + SLACK);
            }
        }
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
