//! A map for keys we hand out in sequence (call ids, our wire ids): no hashing and no key
//! stored for the keys that are still close together.
//!
//! Such keys are mostly removed in about the order they were made, so the live ones sit in
//! a window indexed by `key - base`. The window's empty slots at the front are dropped as
//! they appear. A key that stays live while those after it go (an export, a call never
//! answered) would hold the window open: once the window is more than twice as long as the
//! entries in it (plus a small constant), its front entries move to a hash map of
//! stragglers. A key further past the window's end than it holds entries (or `SLACK`, 64)
//! moves the whole window there and starts a new one, so the empty slots filling a gap are
//! never more than the entries already there: keys handed out with large strides cost no
//! more than a hash map. So memory stays proportional to the entries held, whatever the
//! order of insertions and removals, and every operation is amortised O(1). The window's
//! buffer, and the stragglers' table, are given back when they are mostly unused.

use crate::hash::HashMap;
use std::collections::VecDeque;

/// Empty slots tolerated in the window beyond the number of entries in it.
const SLACK: usize = 64;

/// When a growable table holding `len` entries in room for `capacity` is mostly unused
/// (room for more than four times its entries, plus a little), the capacity to shrink it
/// to: twice its entries, plus a little. The core's tables that grow with a burst (this
/// map's, the deadlines') give their memory back this way once the burst is over; each
/// shrink halves the room at least, so its cost is spread over the removals before it.
pub(crate) fn spare_room(capacity: usize, len: usize) -> Option<usize> {
    (capacity > 4 * len + 4 * SLACK).then_some(2 * len + SLACK)
}

/// A map from keys handed out in sequence to values.
///
/// The core keeps its calls in flight and its wire ids in these; a driver can do the same
/// with ids it hands out itself (`upnode-async` keeps its calls' reply slots in one).
///
/// ```
/// use upnode_core::seq_map::SeqMap;
/// let mut m = SeqMap::default();
/// for k in 0..1000u64 {
///     m.insert(k, k * 2);
/// }
/// assert_eq!(m.remove(10), Some(20));
/// assert_eq!(m.get(11), Some(&22));
/// assert_eq!(m.len(), 999);
/// ```
#[derive(Debug)]
pub struct SeqMap<V> {
    /// The key of `window[0]`.
    base: u64,
    window: VecDeque<Option<V>>,
    /// Entries in `window`.
    in_window: usize,
    /// Entries whose keys fell behind the window.
    far: HashMap<u64, V>,
    /// Empty slots ever added to fill gaps (for the tests' bound).
    #[cfg(test)]
    padded: usize,
}

impl<V> Default for SeqMap<V> {
    fn default() -> Self {
        SeqMap {
            base: 0,
            window: VecDeque::new(),
            in_window: 0,
            far: HashMap::default(),
            #[cfg(test)]
            padded: 0,
        }
    }
}

impl<V> SeqMap<V> {
    /// Entries held.
    pub fn len(&self) -> usize {
        self.in_window + self.far.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The slot index of `k` in the window, if `k` is at or past its base.
    fn index(&self, k: u64) -> Option<usize> {
        k.checked_sub(self.base)
            .and_then(|i| usize::try_from(i).ok())
    }

    /// Inserts `v` under `k`; the value it replaces, if any.
    pub fn insert(&mut self, k: u64, v: V) -> Option<V> {
        let Some(i) = self.index(k) else {
            return self.far.insert(k, v);
        };
        let end = self.window.len();
        if i >= end {
            // A gap wider than what the window holds is not filled: a new window starts.
            if i - end > SLACK.max(self.in_window) {
                self.restart_at(k);
            } else {
                #[cfg(test)]
                {
                    self.padded += i - end;
                }
                self.window.resize_with(i, || None);
            }
            self.window.push_back(Some(v));
            self.in_window += 1;
            self.trim();
            return None;
        }
        let old = self.window[i].replace(v);
        if old.is_none() {
            self.in_window += 1;
        }
        old
    }

    /// Moves every entry of the window to `far` and starts an empty one at `k`.
    fn restart_at(&mut self, k: u64) {
        let base = self.base;
        for (i, slot) in self.window.drain(..).enumerate() {
            if let Some(v) = slot {
                self.far.insert(base + i as u64, v);
            }
        }
        self.in_window = 0;
        self.base = k;
    }

    /// The value under `k`.
    pub fn get(&self, k: u64) -> Option<&V> {
        match self.index(k) {
            Some(i) => self.window.get(i)?.as_ref(),
            None => self.far.get(&k),
        }
    }

    /// The value under `k`, to change it.
    pub fn get_mut(&mut self, k: u64) -> Option<&mut V> {
        match self.index(k) {
            Some(i) => self.window.get_mut(i)?.as_mut(),
            None => self.far.get_mut(&k),
        }
    }

    /// Whether a value is held under `k`.
    pub fn contains_key(&self, k: u64) -> bool {
        self.get(k).is_some()
    }

    /// Takes the entry under `k` out.
    pub fn remove(&mut self, k: u64) -> Option<V> {
        let Some(i) = self.index(k) else {
            let v = self.far.remove(&k);
            if let Some(room) = spare_room(self.far.capacity(), self.far.len()) {
                self.far.shrink_to(room);
            }
            return v;
        };
        let v = self.window.get_mut(i)?.take()?;
        self.in_window -= 1;
        self.trim();
        Some(v)
    }

    /// Drops the window's empty front slots; while the window is sparse, moves its front
    /// entries to `far`; gives back a buffer that is mostly unused.
    fn trim(&mut self) {
        loop {
            match self.window.front() {
                Some(None) => {}
                Some(Some(_)) if self.window.len() > 2 * self.in_window + SLACK => {
                    if let Some(Some(v)) = self.window.pop_front() {
                        self.far.insert(self.base, v);
                        self.in_window -= 1;
                        self.base += 1;
                    }
                    continue;
                }
                _ => break,
            }
            self.window.pop_front();
            self.base += 1;
        }
        if let Some(room) = spare_room(self.window.capacity(), self.window.len()) {
            self.window.shrink_to(room);
        }
    }

    /// Takes every entry out, in key order.
    pub fn take_all(&mut self) -> Vec<(u64, V)> {
        let mut all: Vec<(u64, V)> = self.far.drain().collect();
        all.sort_unstable_by_key(|(k, _)| *k);
        let base = self.base;
        all.extend(
            self.window
                .drain(..)
                .enumerate()
                .filter_map(|(i, slot)| slot.map(|v| (base + i as u64, v))),
        );
        self.in_window = 0;
        self.window.shrink_to(SLACK);
        all
    }

    /// Forgets every entry.
    pub fn clear(&mut self) {
        self.far.clear();
        self.window.clear();
        self.window.shrink_to(SLACK);
        self.in_window = 0;
    }

    /// Slots the window holds, empty ones included (for the tests' bound).
    #[cfg(test)]
    fn window_len(&self) -> usize {
        self.window.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_million_keys_removed_in_order_behind_one_that_stays_keep_the_window_small() {
        let mut m = SeqMap::default();
        m.insert(0, 0u64);
        for k in 1..1_000_000u64 {
            m.insert(k, k);
            if k >= 100 {
                assert_eq!(
                    m.remove(k - 100),
                    if k == 100 { Some(0) } else { Some(k - 100) }
                );
            }
            assert!(
                m.window_len() <= 2 * 100 + SLACK + 1,
                "window of {}",
                m.window_len()
            );
        }
        assert_eq!(m.len(), 100);
        assert!(m.window.capacity() <= 4 * (2 * 100 + SLACK) + 4 * SLACK);
    }

    #[test]
    fn keys_handed_out_with_large_strides_fill_no_gaps() {
        let mut m = SeqMap::default();
        for n in 0..100_000u64 {
            m.insert(n * 4000, n);
            if n > 0 {
                assert_eq!(m.remove((n - 1) * 4000), Some(n - 1));
            }
        }
        assert_eq!(m.padded, 0, "no empty slot was added for a gap");
        assert_eq!(m.len(), 1);
        // Small strides are still filled in place (every other key: the window stays
        // dense enough to keep them all).
        let mut m = SeqMap::default();
        for n in 0..100_000u64 {
            m.insert(n * 2, n);
        }
        assert_eq!(m.padded, 100_000 - 1);
        assert!(m.far.is_empty(), "all in the window");
    }

    #[test]
    fn the_stragglers_table_is_given_back_once_emptied() {
        let mut m = SeqMap::default();
        for k in 0..100_000u64 {
            m.insert(k, k);
        }
        // Three in four go: the window turns sparse and its front moves to the stragglers.
        for k in (0..100_000u64).filter(|k| k % 4 != 0) {
            assert_eq!(m.remove(k), Some(k));
        }
        assert!(m.far.len() > 1000, "{} stragglers", m.far.len());
        for k in (0..100_000u64).filter(|k| k % 4 == 0) {
            assert_eq!(m.remove(k), Some(k));
        }
        assert_eq!(m.len(), 0);
        assert!(m.far.capacity() <= 4 * SLACK, "{}", m.far.capacity());
        assert!(
            m.window.capacity() <= 4 * SLACK + SLACK,
            "{}",
            m.window.capacity()
        );
    }

    #[test]
    fn a_key_far_ahead_starts_a_new_window_and_the_old_entries_stay_found() {
        let mut m = SeqMap::default();
        for k in 0..10u64 {
            m.insert(k, k);
        }
        m.insert(1 << 40, 7);
        assert!(m.window_len() <= 1);
        for k in 0..10u64 {
            assert_eq!(m.get(k), Some(&k));
        }
        assert_eq!(m.get(1 << 40), Some(&7));
        assert_eq!(m.len(), 11);
        let all = m.take_all();
        assert_eq!(all.len(), 11);
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "in key order");
        assert_eq!(m.len(), 0);
        assert_eq!(m.get(3), None);
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Insert the next key in sequence, `skip` keys after the last one.
        Next { skip: u16 },
        /// Insert any key.
        Any(u64),
        /// Remove the `n`-th live key (modulo how many there are).
        RemoveLive(usize),
        /// Remove any key.
        Remove(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u16..3).prop_map(|skip| Op::Next { skip }),
            1 => prop_oneof![0u64..300, any::<u64>(), 4000u64..9000].prop_map(Op::Any),
            6 => any::<usize>().prop_map(Op::RemoveLive),
            1 => (0u64..400).prop_map(Op::Remove),
        ]
    }

    proptest! {
        #[test]
        fn any_sequence_of_operations_matches_an_ordered_map_and_keeps_the_window_bounded(
            ops in proptest::collection::vec(op(), 1..400),
        ) {
            let mut m = SeqMap::default();
            let mut model = BTreeMap::new();
            let mut next = 0u64;
            for (n, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Next { skip } => {
                        next += u64::from(skip);
                        prop_assert_eq!(m.insert(next, n), model.insert(next, n));
                        next += 1;
                    }
                    Op::Any(k) => prop_assert_eq!(m.insert(k, n), model.insert(k, n)),
                    Op::RemoveLive(i) => {
                        if let Some(&k) = model.keys().nth(i % model.len().max(1)) {
                            prop_assert_eq!(m.remove(k), model.remove(&k));
                        }
                    }
                    Op::Remove(k) => prop_assert_eq!(m.remove(k), model.remove(&k)),
                }
                prop_assert_eq!(m.len(), model.len());
                prop_assert!(
                    m.window_len() <= 2 * m.in_window + SLACK + 1,
                    "window {} for {} entries", m.window_len(), m.in_window
                );
                for (k, v) in &model {
                    prop_assert_eq!(m.get(*k), Some(v));
                }
            }
            for k in 0..500 {
                prop_assert_eq!(m.contains_key(k), model.contains_key(&k));
            }
            let all = m.take_all();
            prop_assert_eq!(all, model.into_iter().collect::<Vec<_>>());
            m.insert(next, 1);
            m.clear();
            prop_assert_eq!(m.len(), 0);
            prop_assert_eq!(m.get(next), None);
        }
    }
}
