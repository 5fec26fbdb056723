//! A set of ids met while reading or writing one message, in the order first met: scanned
//! while it holds few (what almost every message has), indexed by a hash set once it holds
//! more, so a message carrying many functions costs linear time, not quadratic.

use crate::hash::Seeded;
use std::collections::HashSet;
use std::hash::Hash;

/// Up to this many ids are found by a scan; past it, through the index.
const SCAN: usize = 16;

/// Ids in the order first inserted, each once.
#[derive(Debug)]
pub(crate) struct IdSet<T> {
    items: Vec<T>,
    /// Built once `items` holds more than [`SCAN`].
    index: Option<HashSet<T, Seeded>>,
}

impl<T> Default for IdSet<T> {
    fn default() -> Self {
        IdSet {
            items: Vec::new(),
            index: None,
        }
    }
}

impl<T: Copy + Eq + Hash> IdSet<T> {
    /// Adds `x`; whether it was not there yet.
    pub fn insert(&mut self, x: T) -> bool {
        if self.contains(&x) {
            return false;
        }
        self.items.push(x);
        match &mut self.index {
            Some(index) => {
                index.insert(x);
            }
            None if self.items.len() > SCAN => {
                self.index = Some(self.items.iter().copied().collect());
            }
            None => {}
        }
        true
    }

    /// How many ids the set holds.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether `x` is in the set.
    pub fn contains(&self, x: &T) -> bool {
        match &self.index {
            Some(index) => index.contains(x),
            None => self.items.contains(x),
        }
    }

    /// The ids, in the order first inserted.
    #[cfg(test)]
    pub fn as_slice(&self) -> &[T] {
        &self.items
    }

    /// Empties the set, keeping the room of up to `keep` ids (the index is dropped).
    pub fn clear(&mut self, keep: usize) {
        self.items.clear();
        self.items.shrink_to(keep);
        self.index = None;
    }

    /// The ids, in the order first inserted.
    pub fn into_vec(self) -> Vec<T> {
        self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_kept_once_each_in_the_order_first_met_below_and_past_the_scan_limit() {
        for n in [3u64, SCAN as u64, 40, 10_000] {
            let mut s = IdSet::default();
            // Every id three times, interleaved: 0, 1, .., n-1, n-1, .., 0, 0, 1, ..
            let order: Vec<u64> = (0..n).chain((0..n).rev()).chain(0..n).collect();
            let fresh = order.iter().filter(|&&x| s.insert(x)).count();
            assert_eq!(fresh as u64, n);
            assert_eq!(s.as_slice(), (0..n).collect::<Vec<_>>());
            assert_eq!(s.index.is_some(), n as usize > SCAN);
            assert!((0..n).all(|x| s.contains(&x)) && !s.contains(&n));
            s.clear(8);
            assert!(s.as_slice().is_empty() && s.index.is_none() && !s.contains(&0));
            assert!(s.insert(7));
        }
    }
}
