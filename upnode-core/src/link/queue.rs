//! The transactional queue: work waiting for the link to be up.
//!
//! A [`TxQueue`] holds transactions in the order they were made. Each may carry a deadline
//! (an [`Instant`] the caller computes; the queue never reads a clock). When the link comes
//! up the link takes them out front first with [`TxQueue::pop_front`]; when time passes it
//! takes out the late ones with [`TxQueue::expire`]; on close it takes out the rest with
//! [`TxQueue::drain`]. Whatever goes in comes out exactly once, through one of those or
//! [`TxQueue::remove`], and a push to a full queue hands the payload straight back.
//!
//! Every operation costs O(log n): entries live in a B-tree keyed by an increasing sequence
//! number (which is also the FIFO order), and deadlines in a second B-tree keyed by
//! `(deadline, sequence)`.
//!
//! Memory, measured at a million entries by `examples/queue_memory.rs` (payload included):
//! about 113 bytes per entry for a `u64` payload with a deadline, 64 without one, and 215 for
//! a 64-byte payload with a deadline. An emptied queue keeps only the two B-trees' empty
//! root nodes.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use upnode_core::link::queue::TxQueue;
//!
//! let t0 = Instant::now(); // the driver's clock, not the queue's
//! let mut q = TxQueue::new();
//! let a = q.push("a", None).unwrap();
//! let b = q.push("b", Some(t0 + Duration::from_secs(5))).unwrap();
//! let c = q.push("c", Some(t0 + Duration::from_secs(1))).unwrap();
//!
//! // The driver sleeps until the earliest deadline, then expires what is due.
//! assert_eq!(q.next_deadline(), Some(t0 + Duration::from_secs(1)));
//! let late: Vec<_> = q.expire(t0 + Duration::from_secs(1)).collect();
//! assert_eq!(late, [(c, "c")]);
//!
//! // The link is up: flush FIFO.
//! assert_eq!(q.pop_front(), Some((a, "a")));
//! assert_eq!(q.pop_front(), Some((b, "b")));
//! assert!(q.is_empty());
//! ```

use crate::config::DEFAULT_QUEUE_CAP;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::iter::FusedIterator;
use std::time::Instant;

/// Names one entry of one [`TxQueue`]: where a transaction waits (the transaction itself
/// is named by the link's [`TxId`](crate::link::TxId)).
///
/// Ids are handed out in push order and never reused by the same queue, so comparing two
/// ids of one queue compares their push order. Ids of different queues are unrelated.
///
/// ```
/// let mut q = upnode_core::link::queue::TxQueue::new();
/// let a = q.push((), None).unwrap();
/// let b = q.push((), None).unwrap();
/// assert!(a < b);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId(u64);

impl EntryId {
    /// The id as a number, for logs and tables; the first push of a queue gets 0.
    ///
    /// ```
    /// let mut q = upnode_core::link::queue::TxQueue::new();
    /// assert_eq!(q.push('x', None).unwrap().as_u64(), 0);
    /// ```
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// The id numbered `n`, for [`TxQueue::insert`].
    ///
    /// ```
    /// let id = upnode_core::link::queue::EntryId::from_u64(5);
    /// assert_eq!(id.as_u64(), 5);
    /// ```
    pub fn from_u64(n: u64) -> EntryId {
        EntryId(n)
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tx{}", self.0)
    }
}

/// A push found the queue at its capacity limit. The payload is handed back untouched.
///
/// ```
/// use upnode_core::link::queue::TxQueue;
/// let mut q = TxQueue::with_capacity_limit(1);
/// q.push(String::from("first"), None).unwrap();
/// let full = q.push(String::from("second"), None).unwrap_err();
/// assert_eq!(full.limit(), 1);
/// assert_eq!(full.to_string(), "transaction queue is full (limit 1)");
/// assert_eq!(full.into_payload(), "second");
/// ```
pub struct QueueFull<T> {
    payload: T,
    limit: usize,
}

impl<T> QueueFull<T> {
    /// The payload that was not queued.
    ///
    /// ```
    /// let mut q = upnode_core::link::queue::TxQueue::with_capacity_limit(0);
    /// assert_eq!(*q.push(7, None).unwrap_err().payload(), 7);
    /// ```
    pub fn payload(&self) -> &T {
        &self.payload
    }

    /// Takes the payload back.
    ///
    /// ```
    /// let mut q = upnode_core::link::queue::TxQueue::with_capacity_limit(0);
    /// assert_eq!(q.push(7, None).unwrap_err().into_payload(), 7);
    /// ```
    pub fn into_payload(self) -> T {
        self.payload
    }

    /// The capacity limit in force.
    ///
    /// ```
    /// let mut q = upnode_core::link::queue::TxQueue::with_capacity_limit(0);
    /// assert_eq!(q.push(7, None).unwrap_err().limit(), 0);
    /// ```
    pub fn limit(&self) -> usize {
        self.limit
    }
}

// By hand, so that payloads need not be `Debug` (closures, channels).
impl<T> fmt::Debug for QueueFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueFull")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for QueueFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "transaction queue is full (limit {})", self.limit)
    }
}

impl<T> std::error::Error for QueueFull<T> {}

struct Entry<T> {
    payload: T,
    deadline: Option<Instant>,
}

/// Transactions in FIFO order, each with an optional deadline, up to a capacity limit.
///
/// See the [module documentation](self) for how the link uses it. Every method costs
/// O(log n) or less; [`expire`](Self::expire) and [`drain`](Self::drain) cost O(log n) per
/// entry they yield.
///
/// ```
/// use std::time::{Duration, Instant};
/// use upnode_core::link::queue::TxQueue;
///
/// let now = Instant::now();
/// let mut q: TxQueue<u32> = TxQueue::default();
/// q.push(1, Some(now + Duration::from_millis(10))).unwrap();
/// q.push(2, None).unwrap();
/// assert_eq!(q.len(), 2);
/// assert_eq!(q.expire(now).count(), 0); // not due yet
/// let closed: Vec<u32> = q.drain().map(|(_, v)| v).collect();
/// assert_eq!(closed, [1, 2]);
/// ```
pub struct TxQueue<T> {
    /// Every queued entry by sequence number: the FIFO order.
    entries: BTreeMap<u64, Entry<T>>,
    /// `(deadline, sequence)` of every queued entry that has a deadline.
    deadlines: BTreeSet<(Instant, u64)>,
    next_seq: u64,
    limit: usize,
}

impl<T> Default for TxQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for TxQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TxQueue")
            .field("len", &self.len())
            .field("with_deadline", &self.deadlines.len())
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<T> TxQueue<T> {
    /// An empty queue holding at most [`DEFAULT_QUEUE_CAP`] (one million) entries.
    ///
    /// ```
    /// let q = upnode_core::link::queue::TxQueue::<()>::new();
    /// assert_eq!(q.capacity_limit(), upnode_core::config::DEFAULT_QUEUE_CAP);
    /// ```
    pub fn new() -> Self {
        Self::with_capacity_limit(DEFAULT_QUEUE_CAP)
    }

    /// An empty queue holding at most `limit` entries (`0` refuses every push). Nothing is
    /// allocated up front.
    ///
    /// ```
    /// let q = upnode_core::link::queue::TxQueue::<()>::with_capacity_limit(10);
    /// assert_eq!(q.capacity_limit(), 10);
    /// ```
    pub fn with_capacity_limit(limit: usize) -> Self {
        TxQueue {
            entries: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            next_seq: 0,
            limit,
        }
    }

    /// The most entries this queue holds.
    ///
    /// ```
    /// assert_eq!(upnode_core::link::queue::TxQueue::<u8>::with_capacity_limit(3).capacity_limit(), 3);
    /// ```
    pub fn capacity_limit(&self) -> usize {
        self.limit
    }

    /// How many entries are queued.
    ///
    /// ```
    /// let mut q = upnode_core::link::queue::TxQueue::new();
    /// q.push("x", None).unwrap();
    /// assert_eq!(q.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is queued.
    ///
    /// ```
    /// assert!(upnode_core::link::queue::TxQueue::<u8>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Queues `payload` at the back, due by `deadline` if given, and returns its id. A
    /// full queue hands the payload back in the error; nothing is ever dropped silently.
    ///
    /// A deadline already in the past is accepted: the next [`expire`](Self::expire) with
    /// that time or later yields it.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let mut q = upnode_core::link::queue::TxQueue::with_capacity_limit(2);
    /// let id = q.push("call", Some(Instant::now() + Duration::from_secs(5))).unwrap();
    /// assert!(q.contains(id));
    /// q.push("other", None).unwrap();
    /// assert_eq!(q.push("third", None).unwrap_err().into_payload(), "third");
    /// ```
    pub fn push(&mut self, payload: T, deadline: Option<Instant>) -> Result<EntryId, QueueFull<T>> {
        if self.entries.len() >= self.limit {
            return Err(QueueFull {
                payload,
                limit: self.limit,
            });
        }
        // 2^64 pushes are out of reach (centuries at a push per nanosecond).
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(at) = deadline {
            self.deadlines.insert((at, seq));
        }
        self.entries.insert(seq, Entry { payload, deadline });
        Ok(EntryId(seq))
    }

    /// Queues `payload` under an id the caller chose, due by `deadline` if given: the queue
    /// keeps entries in id order, so ids that grow with time keep it FIFO (the link uses
    /// its transaction numbers). An entry already under `id` is replaced and its payload
    /// returned; a full queue hands the payload back in the error.
    ///
    /// ```
    /// use upnode_core::link::queue::{EntryId, TxQueue};
    /// let mut q = TxQueue::new();
    /// assert!(matches!(q.insert(EntryId::from_u64(7), 'b', None), Ok(None)));
    /// assert!(matches!(q.insert(EntryId::from_u64(3), 'a', None), Ok(None)));
    /// assert_eq!(q.pop_front(), Some((EntryId::from_u64(3), 'a')));
    /// assert!(matches!(q.insert(EntryId::from_u64(7), 'c', None), Ok(Some('b'))));
    /// ```
    pub fn insert(
        &mut self,
        id: EntryId,
        payload: T,
        deadline: Option<Instant>,
    ) -> Result<Option<T>, QueueFull<T>> {
        let old = self.remove(id);
        if old.is_none() && self.entries.len() >= self.limit {
            return Err(QueueFull {
                payload,
                limit: self.limit,
            });
        }
        let seq = id.0;
        self.next_seq = self.next_seq.max(seq.saturating_add(1));
        if let Some(at) = deadline {
            self.deadlines.insert((at, seq));
        }
        self.entries.insert(seq, Entry { payload, deadline });
        Ok(old)
    }

    /// Takes out the oldest entry.
    ///
    /// ```
    /// let mut q = upnode_core::link::queue::TxQueue::new();
    /// let a = q.push('a', None).unwrap();
    /// q.push('b', None).unwrap();
    /// assert_eq!(q.pop_front(), Some((a, 'a')));
    /// ```
    pub fn pop_front(&mut self) -> Option<(EntryId, T)> {
        let (seq, entry) = self.entries.pop_first()?;
        if let Some(at) = entry.deadline {
            self.deadlines.remove(&(at, seq));
        }
        Some((EntryId(seq), entry.payload))
    }

    /// The oldest entry, left in place.
    ///
    /// ```
    /// let mut q = upnode_core::link::queue::TxQueue::new();
    /// let a = q.push('a', None).unwrap();
    /// assert_eq!(q.front(), Some((a, &'a')));
    /// assert_eq!(q.len(), 1);
    /// ```
    pub fn front(&self) -> Option<(EntryId, &T)> {
        self.entries
            .first_key_value()
            .map(|(&seq, e)| (EntryId(seq), &e.payload))
    }

    /// Takes out one entry by id, wherever it is; `None` if it is no longer queued (already
    /// popped, expired, drained or removed).
    ///
    /// ```
    /// let mut q = upnode_core::link::queue::TxQueue::new();
    /// let a = q.push('a', None).unwrap();
    /// assert_eq!(q.remove(a), Some('a'));
    /// assert_eq!(q.remove(a), None);
    /// ```
    pub fn remove(&mut self, id: EntryId) -> Option<T> {
        let entry = self.entries.remove(&id.0)?;
        if let Some(at) = entry.deadline {
            self.deadlines.remove(&(at, id.0));
        }
        Some(entry.payload)
    }

    /// Whether the entry is still queued.
    ///
    /// ```
    /// let mut q = upnode_core::link::queue::TxQueue::new();
    /// let a = q.push((), None).unwrap();
    /// assert!(q.contains(a));
    /// q.pop_front();
    /// assert!(!q.contains(a));
    /// ```
    pub fn contains(&self, id: EntryId) -> bool {
        self.entries.contains_key(&id.0)
    }

    /// The payload of a queued entry.
    ///
    /// ```
    /// let mut q = upnode_core::link::queue::TxQueue::new();
    /// let a = q.push(5, None).unwrap();
    /// assert_eq!(q.get(a), Some(&5));
    /// ```
    pub fn get(&self, id: EntryId) -> Option<&T> {
        self.entries.get(&id.0).map(|e| &e.payload)
    }

    /// The payload of a queued entry, to change in place.
    ///
    /// ```
    /// let mut q = upnode_core::link::queue::TxQueue::new();
    /// let a = q.push(5, None).unwrap();
    /// *q.get_mut(a).unwrap() += 1;
    /// assert_eq!(q.remove(a), Some(6));
    /// ```
    pub fn get_mut(&mut self, id: EntryId) -> Option<&mut T> {
        self.entries.get_mut(&id.0).map(|e| &mut e.payload)
    }

    /// The deadline of a queued entry: `None` if it has none or is not queued.
    ///
    /// ```
    /// use std::time::Instant;
    /// let at = Instant::now();
    /// let mut q = upnode_core::link::queue::TxQueue::new();
    /// let a = q.push((), Some(at)).unwrap();
    /// assert_eq!(q.deadline(a), Some(at));
    /// ```
    pub fn deadline(&self, id: EntryId) -> Option<Instant> {
        self.entries.get(&id.0).and_then(|e| e.deadline)
    }

    /// The earliest deadline among queued entries: when the driver should next call
    /// [`expire`](Self::expire).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let t = Instant::now();
    /// let mut q = upnode_core::link::queue::TxQueue::new();
    /// assert_eq!(q.next_deadline(), None);
    /// q.push((), Some(t + Duration::from_secs(9))).unwrap();
    /// q.push((), Some(t + Duration::from_secs(3))).unwrap();
    /// q.push((), None).unwrap();
    /// assert_eq!(q.next_deadline(), Some(t + Duration::from_secs(3)));
    /// ```
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(at, _)| at)
    }

    /// Takes out, one by one, every entry whose deadline is at or before `now`, earliest
    /// deadline first and FIFO among equal deadlines.
    ///
    /// The iterator is lazy: each `next` takes out one entry. Entries it has not yielded
    /// when dropped stay queued (a later `expire` yields them), so nothing is lost by
    /// stopping early.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let t = Instant::now();
    /// let mut q = upnode_core::link::queue::TxQueue::new();
    /// q.push('a', Some(t + Duration::from_secs(2))).unwrap();
    /// q.push('b', Some(t + Duration::from_secs(1))).unwrap();
    /// q.push('c', Some(t + Duration::from_secs(1))).unwrap();
    /// q.push('d', None).unwrap();
    /// let due: Vec<char> = q.expire(t + Duration::from_secs(2)).map(|(_, v)| v).collect();
    /// assert_eq!(due, ['b', 'c', 'a']);
    /// assert_eq!(q.len(), 1);
    /// ```
    pub fn expire(&mut self, now: Instant) -> Expired<'_, T> {
        Expired { queue: self, now }
    }

    /// Takes out every entry, oldest first: what a closing link fails.
    ///
    /// The iterator is lazy like [`expire`](Self::expire): entries it has not yielded when
    /// dropped stay queued.
    ///
    /// ```
    /// let mut q = upnode_core::link::queue::TxQueue::new();
    /// for v in 0..3 { q.push(v, None).unwrap(); }
    /// let all: Vec<i32> = q.drain().map(|(_, v)| v).collect();
    /// assert_eq!(all, [0, 1, 2]);
    /// assert!(q.is_empty());
    /// ```
    pub fn drain(&mut self) -> Drain<'_, T> {
        Drain { queue: self }
    }

    /// Looks at every entry, oldest first, without taking any out.
    ///
    /// ```
    /// let mut q = upnode_core::link::queue::TxQueue::new();
    /// q.push("a", None).unwrap();
    /// q.push("b", None).unwrap();
    /// let seen: Vec<&str> = q.iter().map(|(_, v)| *v).collect();
    /// assert_eq!(seen, ["a", "b"]);
    /// ```
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (EntryId, &T)> + ExactSizeIterator + '_ {
        self.entries
            .iter()
            .map(|(&seq, e)| (EntryId(seq), &e.payload))
    }

    fn pop_expired(&mut self, now: Instant) -> Option<(EntryId, T)> {
        let &(at, seq) = self.deadlines.first()?;
        if at > now {
            return None;
        }
        self.deadlines.pop_first();
        let entry = self
            .entries
            .remove(&seq)
            .expect("every deadline belongs to a queued entry");
        Some((EntryId(seq), entry.payload))
    }
}

/// Entries whose deadline has passed, from [`TxQueue::expire`].
///
/// Each `next` takes one entry out of the queue; entries not yet yielded stay queued.
#[must_use = "expire takes nothing out until iterated"]
pub struct Expired<'a, T> {
    queue: &'a mut TxQueue<T>,
    now: Instant,
}

impl<T> Iterator for Expired<'_, T> {
    type Item = (EntryId, T);

    fn next(&mut self) -> Option<Self::Item> {
        self.queue.pop_expired(self.now)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let due = self
            .queue
            .deadlines
            .first()
            .is_some_and(|&(at, _)| at <= self.now);
        (usize::from(due), Some(self.queue.deadlines.len()))
    }
}

impl<T> FusedIterator for Expired<'_, T> {}

impl<T> fmt::Debug for Expired<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Expired")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// Every entry, oldest first, from [`TxQueue::drain`].
///
/// Each `next` takes one entry out of the queue; entries not yet yielded stay queued.
#[must_use = "drain takes nothing out until iterated"]
pub struct Drain<'a, T> {
    queue: &'a mut TxQueue<T>,
}

impl<T> Iterator for Drain<'_, T> {
    type Item = (EntryId, T);

    fn next(&mut self) -> Option<Self::Item> {
        self.queue.pop_front()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.queue.len();
        (n, Some(n))
    }
}

impl<T> ExactSizeIterator for Drain<'_, T> {}

impl<T> FusedIterator for Drain<'_, T> {}

impl<T> fmt::Debug for Drain<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drain")
            .field("remaining", &self.queue.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    // Tests need one real instant to offset from; the library itself never reads a clock.
    #![allow(clippy::disallowed_methods)]
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;
    use std::time::Duration;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn insert_keeps_id_order_replaces_and_respects_the_limit() {
        let mut q = TxQueue::with_capacity_limit(2);
        assert!(matches!(
            q.insert(EntryId::from_u64(9), 'b', None),
            Ok(None)
        ));
        assert!(matches!(
            q.insert(EntryId::from_u64(4), 'a', None),
            Ok(None)
        ));
        // Full: a new id is refused and handed back, an existing one is replaced.
        let full = q.insert(EntryId::from_u64(5), 'x', None).unwrap_err();
        assert_eq!(full.into_payload(), 'x');
        assert!(matches!(
            q.insert(EntryId::from_u64(9), 'c', None),
            Ok(Some('b'))
        ));
        let order: Vec<(u64, char)> = q.drain().map(|(id, v)| (id.as_u64(), v)).collect();
        assert_eq!(order, [(4, 'a'), (9, 'c')]);
        // Later pushes come after the highest id inserted.
        assert_eq!(q.push('d', None).unwrap().as_u64(), 10);
    }

    #[test]
    fn fifo_order() {
        let mut q = TxQueue::new();
        let ids: Vec<EntryId> = (0..100).map(|v| q.push(v, None).unwrap()).collect();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(q.pop_front(), Some((*id, i)));
        }
        assert_eq!(q.pop_front(), None);
        assert!(q.is_empty());
    }

    #[test]
    fn fifo_order_ignores_deadlines() {
        let t = Instant::now();
        let mut q = TxQueue::new();
        let a = q.push('a', Some(at(t, 30))).unwrap();
        let b = q.push('b', None).unwrap();
        let c = q.push('c', Some(at(t, 10))).unwrap();
        assert_eq!(q.pop_front(), Some((a, 'a')));
        assert_eq!(q.pop_front(), Some((b, 'b')));
        assert_eq!(q.pop_front(), Some((c, 'c')));
        assert_eq!(q.next_deadline(), None);
    }

    #[test]
    fn expire_boundary_is_inclusive() {
        let t = Instant::now();
        let d = at(t, 100);
        let mut q = TxQueue::new();
        let on_time = q.push("due", Some(d)).unwrap();
        let later = q
            .push("not yet", Some(d + Duration::from_nanos(1)))
            .unwrap();
        assert_eq!(q.expire(d - Duration::from_nanos(1)).count(), 0);
        let got: Vec<_> = q.expire(d).collect();
        assert_eq!(got, [(on_time, "due")]);
        assert_eq!(q.next_deadline(), Some(d + Duration::from_nanos(1)));
        assert!(q.contains(later));
        let got: Vec<_> = q.expire(d + Duration::from_nanos(1)).collect();
        assert_eq!(got, [(later, "not yet")]);
        assert!(q.is_empty());
    }

    #[test]
    fn expire_orders_by_deadline_then_fifo() {
        let t = Instant::now();
        let mut q = TxQueue::new();
        let e = q.push('e', Some(at(t, 50))).unwrap();
        let a = q.push('a', Some(at(t, 10))).unwrap();
        let n = q.push('n', None).unwrap();
        let b = q.push('b', Some(at(t, 10))).unwrap();
        let f = q.push('f', Some(at(t, 99))).unwrap();
        let got: Vec<_> = q.expire(at(t, 50)).collect();
        assert_eq!(got, [(a, 'a'), (b, 'b'), (e, 'e')]);
        assert_eq!(q.iter().map(|(id, _)| id).collect::<Vec<_>>(), [n, f]);
        assert_eq!(q.next_deadline(), Some(at(t, 99)));
    }

    #[test]
    fn expire_never_takes_entries_without_deadline() {
        let t = Instant::now();
        let mut q = TxQueue::new();
        q.push(1, None).unwrap();
        q.push(2, None).unwrap();
        assert_eq!(q.expire(t + Duration::from_secs(1_000_000)).count(), 0);
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn past_deadline_is_accepted_and_expires() {
        let t = Instant::now();
        let mut q = TxQueue::new();
        let id = q.push((), Some(t)).unwrap();
        assert_eq!(q.expire(at(t, 5)).collect::<Vec<_>>(), [(id, ())]);
    }

    #[test]
    fn partial_expire_leaves_the_rest() {
        let t = Instant::now();
        let mut q = TxQueue::new();
        for i in 0..5 {
            q.push(i, Some(at(t, i))).unwrap();
        }
        let first: Vec<u64> = q.expire(at(t, 10)).take(2).map(|(_, v)| v).collect();
        assert_eq!(first, [0, 1]);
        assert_eq!(q.len(), 3);
        let rest: Vec<u64> = q.expire(at(t, 10)).map(|(_, v)| v).collect();
        assert_eq!(rest, [2, 3, 4]);
    }

    #[test]
    fn removed_and_expired_never_come_back() {
        let t = Instant::now();
        let mut q = TxQueue::new();
        let a = q.push('a', Some(at(t, 10))).unwrap();
        let b = q.push('b', Some(at(t, 20))).unwrap();
        let c = q.push('c', None).unwrap();
        assert_eq!(q.remove(b), Some('b'));
        assert_eq!(q.remove(b), None);
        assert_eq!(q.deadline(b), None);
        assert_eq!(q.expire(at(t, 100)).collect::<Vec<_>>(), [(a, 'a')]);
        assert_eq!(q.remove(a), None);
        assert!(!q.contains(a));
        assert_eq!(q.expire(at(t, 1000)).count(), 0);
        assert_eq!(q.next_deadline(), None);
        assert_eq!(q.drain().collect::<Vec<_>>(), [(c, 'c')]);
        assert_eq!(q.remove(c), None);
        assert_eq!(q.pop_front(), None);
    }

    #[test]
    fn remove_from_the_middle_keeps_order_and_deadlines() {
        let t = Instant::now();
        let mut q = TxQueue::new();
        let ids: Vec<EntryId> = (0..10)
            .map(|i| q.push(i, Some(at(t, i))))
            .map(Result::unwrap)
            .collect();
        assert_eq!(q.remove(ids[0]), Some(0));
        assert_eq!(q.remove(ids[5]), Some(5));
        assert_eq!(q.next_deadline(), Some(at(t, 1)));
        let rest: Vec<u64> = q.drain().map(|(_, v)| v).collect();
        assert_eq!(rest, [1, 2, 3, 4, 6, 7, 8, 9]);
    }

    #[test]
    fn full_queue_returns_payload() {
        let mut q = TxQueue::with_capacity_limit(2);
        q.push(vec![1], None).unwrap();
        q.push(vec![2], Some(Instant::now())).unwrap();
        let err = q.push(vec![3], None).unwrap_err();
        assert_eq!(err.limit(), 2);
        assert_eq!(err.payload(), &vec![3]);
        assert_eq!(format!("{err:?}"), "QueueFull { limit: 2, .. }");
        assert_eq!(err.into_payload(), vec![3]);
        assert_eq!(q.len(), 2);
        // Room again after one leaves.
        q.pop_front();
        assert!(q.push(vec![4], None).is_ok());
        // The error works as a boxed error.
        let boxed: Box<dyn std::error::Error> = Box::new(q.push(vec![5], None).unwrap_err());
        assert_eq!(boxed.to_string(), "transaction queue is full (limit 2)");
    }

    #[test]
    fn zero_limit_refuses_everything() {
        let mut q = TxQueue::with_capacity_limit(0);
        assert_eq!(q.push('x', None).unwrap_err().into_payload(), 'x');
        assert!(q.is_empty());
    }

    #[test]
    fn failed_push_uses_no_id() {
        let mut q = TxQueue::with_capacity_limit(1);
        let a = q.push(0, None).unwrap();
        q.push(1, None).unwrap_err();
        q.pop_front();
        let b = q.push(2, None).unwrap();
        assert_eq!(b.as_u64(), a.as_u64() + 1);
    }

    #[test]
    fn default_limit() {
        let q = TxQueue::<u8>::default();
        assert_eq!(q.capacity_limit(), DEFAULT_QUEUE_CAP);
    }

    #[test]
    fn drain_is_fifo_and_exact_size() {
        let t = Instant::now();
        let mut q = TxQueue::new();
        for i in 0..10u64 {
            q.push(
                i,
                if i % 2 == 0 {
                    Some(at(t, 100 - i))
                } else {
                    None
                },
            )
            .unwrap();
        }
        let mut d = q.drain();
        assert_eq!(d.len(), 10);
        assert_eq!(d.next().map(|(_, v)| v), Some(0));
        assert_eq!(d.len(), 9);
        let rest: Vec<u64> = d.map(|(_, v)| v).collect();
        assert_eq!(rest, (1..10).collect::<Vec<_>>());
        assert!(q.is_empty());
        assert_eq!(q.next_deadline(), None);
    }

    #[test]
    fn dropped_drain_keeps_the_rest() {
        let mut q = TxQueue::new();
        for i in 0..4 {
            q.push(i, None).unwrap();
        }
        assert_eq!(q.drain().next().map(|(_, v)| v), Some(0));
        assert_eq!(q.len(), 3);
        assert_eq!(q.front().map(|(_, v)| *v), Some(1));
    }

    #[test]
    fn ids_unique_and_increasing() {
        let mut q = TxQueue::new();
        let mut seen = HashSet::new();
        let mut last = None;
        for round in 0..100 {
            let id = q.push(round, None).unwrap();
            assert!(seen.insert(id));
            assert!(last < Some(id));
            last = Some(id);
            if round % 3 == 0 {
                q.pop_front();
            }
        }
        assert_eq!(format!("{}", EntryId(7)), "tx7");
    }

    #[test]
    fn get_and_get_mut() {
        let mut q = TxQueue::new();
        let a = q.push(String::from("a"), None).unwrap();
        q.get_mut(a).unwrap().push('!');
        assert_eq!(q.get(a).map(String::as_str), Some("a!"));
        q.remove(a);
        assert_eq!(q.get(a), None);
        assert!(q.get_mut(a).is_none());
    }

    #[test]
    fn debug_does_not_need_debug_payloads() {
        struct Opaque;
        let mut q = TxQueue::new();
        q.push(Opaque, None).unwrap();
        assert_eq!(
            format!("{q:?}"),
            "TxQueue { len: 1, with_deadline: 0, limit: 1000000, .. }"
        );
    }

    #[test]
    fn payloads_are_dropped_with_the_queue() {
        use std::rc::Rc;
        let token = Rc::new(());
        {
            let mut q = TxQueue::new();
            for _ in 0..10 {
                q.push(Rc::clone(&token), Some(Instant::now())).unwrap();
            }
            assert_eq!(Rc::strong_count(&token), 11);
        }
        assert_eq!(Rc::strong_count(&token), 1);
    }

    /// The reference the property test compares against: a plain vector in push order.
    #[derive(Default)]
    struct Model {
        entries: Vec<(EntryId, u32, Option<Instant>)>,
        next: u64,
        limit: usize,
    }

    impl Model {
        fn push(&mut self, v: u32, d: Option<Instant>) -> Result<EntryId, u32> {
            if self.entries.len() >= self.limit {
                return Err(v);
            }
            let id = EntryId(self.next);
            self.next += 1;
            self.entries.push((id, v, d));
            Ok(id)
        }
        fn pop_front(&mut self) -> Option<(EntryId, u32)> {
            if self.entries.is_empty() {
                None
            } else {
                let (id, v, _) = self.entries.remove(0);
                Some((id, v))
            }
        }
        fn remove(&mut self, id: EntryId) -> Option<u32> {
            let i = self.entries.iter().position(|e| e.0 == id)?;
            Some(self.entries.remove(i).1)
        }
        fn next_deadline(&self) -> Option<Instant> {
            self.entries.iter().filter_map(|e| e.2).min()
        }
        fn expire(&mut self, now: Instant, take: usize) -> Vec<(EntryId, u32)> {
            let mut due: Vec<(Instant, EntryId, u32)> = self
                .entries
                .iter()
                .filter_map(|&(id, v, d)| d.filter(|&d| d <= now).map(|d| (d, id, v)))
                .collect();
            due.sort_by_key(|&(d, id, _)| (d, id));
            due.truncate(take);
            for (_, id, _) in &due {
                self.remove(*id);
            }
            due.into_iter().map(|(_, id, v)| (id, v)).collect()
        }
        fn drain(&mut self, take: usize) -> Vec<(EntryId, u32)> {
            let n = take.min(self.entries.len());
            self.entries.drain(..n).map(|(id, v, _)| (id, v)).collect()
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(u32, Option<u64>),
        PopFront,
        Remove(usize),
        RemoveUnknown(u64),
        NextDeadline,
        Expire(u64, usize),
        Drain(usize),
        Get(usize),
        Front,
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (any::<u32>(), proptest::option::of(0u64..50)).prop_map(|(v, d)| Op::Push(v, d)),
            2 => Just(Op::PopFront),
            2 => any::<usize>().prop_map(Op::Remove),
            1 => any::<u64>().prop_map(Op::RemoveUnknown),
            1 => Just(Op::NextDeadline),
            2 => (0u64..60, prop_oneof![Just(usize::MAX), 0usize..4]).prop_map(|(t, k)| Op::Expire(t, k)),
            1 => prop_oneof![Just(usize::MAX), 0usize..4].prop_map(Op::Drain),
            1 => any::<usize>().prop_map(Op::Get),
            1 => Just(Op::Front),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn matches_vec_model(limit in 0usize..24, ops in proptest::collection::vec(arb_op(), 0..200)) {
            let base = Instant::now();
            // Deadlines are whole nanoseconds from base, so equal deadlines are common.
            let t = |n: u64| base + Duration::from_nanos(n);
            let mut q = TxQueue::with_capacity_limit(limit);
            let mut m = Model { limit, ..Model::default() };
            // Every id ever handed out, to pick removals from (including gone ones).
            let mut issued: Vec<EntryId> = Vec::new();
            let mut resolved: HashSet<EntryId> = HashSet::new();
            for op in ops {
                match op {
                    Op::Push(v, d) => {
                        let got = q.push(v, d.map(t)).map_err(QueueFull::into_payload);
                        let want = m.push(v, d.map(t));
                        prop_assert_eq!(got, want);
                        if let Ok(id) = got {
                            issued.push(id);
                        }
                    }
                    Op::PopFront => {
                        let got = q.pop_front();
                        prop_assert_eq!(got, m.pop_front());
                        if let Some((id, _)) = got {
                            prop_assert!(resolved.insert(id));
                        }
                    }
                    Op::Remove(i) => {
                        if !issued.is_empty() {
                            let id = issued[i % issued.len()];
                            let got = q.remove(id);
                            prop_assert_eq!(got, m.remove(id));
                            if got.is_some() {
                                prop_assert!(resolved.insert(id));
                            }
                        }
                    }
                    Op::RemoveUnknown(n) => {
                        let id = EntryId(n.max(q.next_seq));
                        prop_assert_eq!(q.remove(id), None);
                    }
                    Op::NextDeadline => prop_assert_eq!(q.next_deadline(), m.next_deadline()),
                    Op::Expire(now, take) => {
                        let got: Vec<_> = q.expire(t(now)).take(take).collect();
                        prop_assert_eq!(&got, &m.expire(t(now), take));
                        for (id, _) in got {
                            prop_assert!(resolved.insert(id));
                        }
                    }
                    Op::Drain(take) => {
                        let got: Vec<_> = q.drain().take(take).collect();
                        prop_assert_eq!(&got, &m.drain(take));
                        for (id, _) in got {
                            prop_assert!(resolved.insert(id));
                        }
                    }
                    Op::Get(i) => {
                        if !issued.is_empty() {
                            let id = issued[i % issued.len()];
                            let want = m.entries.iter().find(|e| e.0 == id);
                            prop_assert_eq!(q.get(id), want.map(|e| &e.1));
                            prop_assert_eq!(q.deadline(id), want.and_then(|e| e.2));
                            prop_assert_eq!(q.contains(id), want.is_some());
                        }
                    }
                    Op::Front => {
                        prop_assert_eq!(q.front(), m.entries.first().map(|e| (e.0, &e.1)));
                    }
                }
                prop_assert_eq!(q.len(), m.entries.len());
                prop_assert_eq!(q.is_empty(), m.entries.is_empty());
                prop_assert_eq!(q.deadlines.len(), m.entries.iter().filter(|e| e.2.is_some()).count());
                let order: Vec<EntryId> = q.iter().map(|(id, _)| id).collect();
                let want: Vec<EntryId> = m.entries.iter().map(|e| e.0).collect();
                prop_assert_eq!(order, want);
            }
            // Whatever is left comes out on drain; then every pushed id resolved exactly once.
            for (id, _) in q.drain() {
                prop_assert!(resolved.insert(id));
            }
            prop_assert_eq!(resolved.len(), issued.len());
        }
    }
}
