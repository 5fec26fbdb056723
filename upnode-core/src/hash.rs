//! The hash maps of the core: foldhash (several times faster than std's SipHash on the small
//! integer keys of the callback and call tables), keyed with a secret drawn once per process
//! from std's own OS-seeded `RandomState`, and a seed of each map's own. Peers choose some of
//! the keys (their callback ids), so the hash stays unpredictable to them: no precomputed set
//! of colliding ids slows a connection down.

use foldhash::fast::{FoldHasher, SeedableRandomState};
use foldhash::SharedSeed;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static SECRET: OnceLock<SharedSeed> = OnceLock::new();
static NEXT_SEED: AtomicU64 = AtomicU64::new(0);

/// A map's hash state: the process's secret and the map's own seed.
#[derive(Clone, Debug)]
pub(crate) struct Seeded(SeedableRandomState);

impl Default for Seeded {
    fn default() -> Self {
        let secret = SECRET.get_or_init(|| {
            SharedSeed::from_u64(std::collections::hash_map::RandomState::new().hash_one(0u64))
        });
        let seed = NEXT_SEED.fetch_add(1, Ordering::Relaxed);
        Seeded(SeedableRandomState::with_seed(seed, secret))
    }
}

impl BuildHasher for Seeded {
    type Hasher = FoldHasher<'static>;

    fn build_hasher(&self) -> Self::Hasher {
        self.0.build_hasher()
    }
}

/// A `HashMap` with the core's hash state.
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, Seeded>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_maps_hash_the_same_key_differently() {
        let (a, b) = (Seeded::default(), Seeded::default());
        assert_ne!(a.hash_one(42u64), b.hash_one(42u64));
        assert_eq!(a.hash_one(42u64), a.hash_one(42u64));
    }
}
