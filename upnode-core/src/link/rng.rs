//! A small seeded pseudo-random number generator: SplitMix64.
//!
//! The core never uses a global or OS-seeded generator. Everything random (reconnect jitter,
//! and a simulation's fault plan if it wants one) comes from a [`SplitMix64`] built from a
//! seed the caller chooses, so the same seed always gives the same sequence, on every
//! platform.
//!
//! SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators",
//! OOPSLA 2014) walks a 64-bit counter by a fixed odd increment and passes each counter value
//! through a bijective mixing function. It is not cryptographic; it is fast, has a full
//! 2^64 period, and every seed (zero included) is a good one.

/// The SplitMix64 increment: 2^64 divided by the golden ratio, rounded to odd.
const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// A deterministic 64-bit generator, seeded by the caller.
///
/// ```
/// use upnode_core::link::rng::SplitMix64;
///
/// let mut a = SplitMix64::new(42);
/// let mut b = SplitMix64::new(42);
/// assert_eq!(a.next_u64(), b.next_u64());
/// let roll = a.range_inclusive(1, 6);
/// assert!((1..=6).contains(&roll));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose sequence is fixed by `seed`. Any value is a good seed.
    ///
    /// ```
    /// let mut g = upnode_core::link::rng::SplitMix64::new(0);
    /// assert_ne!(g.next_u64(), g.next_u64());
    /// ```
    pub const fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 uniformly distributed bits.
    ///
    /// ```
    /// let mut g = upnode_core::link::rng::SplitMix64::new(7);
    /// let x: u64 = g.next_u64();
    /// # let _ = x;
    /// ```
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniformly distributed value in `0..n`, without modulo bias; `0` when `n` is `0`.
    ///
    /// Uses a widening multiply and rejects the few raw values that would make some results
    /// more likely than others, so it draws one value almost always and a few more very
    /// rarely.
    ///
    /// ```
    /// let mut g = upnode_core::link::rng::SplitMix64::new(1);
    /// assert!(g.below(10) < 10);
    /// assert_eq!(g.below(0), 0);
    /// ```
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // The high half of x * n is uniform over 0..n except that some results get one extra
        // preimage; those preimages are exactly the products whose low half falls below
        // 2^64 mod n, and we draw again for them.
        let mut wide = u128::from(self.next_u64()) * u128::from(n);
        if (wide as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (wide as u64) < threshold {
                wide = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (wide >> 64) as u64
    }

    /// A uniformly distributed value in `lo..=hi`. If `hi < lo` the two are swapped.
    ///
    /// ```
    /// let mut g = upnode_core::link::rng::SplitMix64::new(3);
    /// assert_eq!(g.range_inclusive(5, 5), 5);
    /// let x = g.range_inclusive(0, u64::MAX);
    /// # let _ = x;
    /// ```
    pub fn range_inclusive(&mut self, lo: u64, hi: u64) -> u64 {
        let (lo, hi) = if hi < lo { (hi, lo) } else { (lo, hi) };
        match (hi - lo).checked_add(1) {
            Some(span) => lo + self.below(span),
            None => self.next_u64(),
        }
    }

    /// A uniformly distributed `f64` in `[0, 1)`, with 53 random bits.
    ///
    /// ```
    /// let mut g = upnode_core::link::rng::SplitMix64::new(9);
    /// let x = g.next_f64();
    /// assert!((0.0..1.0).contains(&x));
    /// ```
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = SplitMix64::new(12345);
        let mut b = SplitMix64::new(12345);
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn different_seeds_differ() {
        let a: Vec<u64> = {
            let mut g = SplitMix64::new(1);
            (0..8).map(|_| g.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut g = SplitMix64::new(2);
            (0..8).map(|_| g.next_u64()).collect()
        };
        assert_ne!(a, b);
    }

    #[test]
    fn seed_zero_is_not_degenerate() {
        let mut g = SplitMix64::new(0);
        let xs: Vec<u64> = (0..4).map(|_| g.next_u64()).collect();
        assert!(xs.iter().all(|&x| x != 0));
        assert_ne!(xs[0], xs[1]);
    }

    #[test]
    fn output_is_pinned() {
        // Pinning the first outputs guards the promise that a seed replays identically
        // across versions and platforms.
        let mut g = SplitMix64::new(0);
        let first: Vec<u64> = (0..3).map(|_| g.next_u64()).collect();
        let mut again = SplitMix64::new(0);
        let second: Vec<u64> = (0..3).map(|_| again.next_u64()).collect();
        assert_eq!(first, second);
        assert_eq!(first, PINNED_SEED_0.to_vec());
    }

    /// First three outputs for seed 0; these are the widely quoted SplitMix64 reference
    /// values, so they also check the algorithm itself.
    const PINNED_SEED_0: [u64; 3] = [
        0xe220_a839_7b1d_cdaf,
        0x6e78_9e6a_a1b9_65f4,
        0x06c4_5d18_8009_454f,
    ];

    #[test]
    fn below_stays_below_and_covers() {
        let mut g = SplitMix64::new(99);
        let mut seen = [false; 7];
        for _ in 0..10_000 {
            let x = g.below(7);
            assert!(x < 7);
            seen[x as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn below_is_roughly_uniform() {
        let mut g = SplitMix64::new(2024);
        let mut counts = [0u32; 10];
        let n = 100_000;
        for _ in 0..n {
            counts[g.below(10) as usize] += 1;
        }
        for c in counts {
            // Expected 10_000 each; 5 sigma is about 475.
            assert!((9_500..=10_500).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn below_huge_bound_is_in_range() {
        let mut g = SplitMix64::new(5);
        let n = u64::MAX / 2 + 7;
        for _ in 0..10_000 {
            assert!(g.below(n) < n);
        }
    }

    #[test]
    fn range_inclusive_edges() {
        let mut g = SplitMix64::new(8);
        assert_eq!(g.range_inclusive(3, 3), 3);
        for _ in 0..1000 {
            let x = g.range_inclusive(10, 12);
            assert!((10..=12).contains(&x));
            let y = g.range_inclusive(12, 10);
            assert!((10..=12).contains(&y));
            let z = g.range_inclusive(u64::MAX - 1, u64::MAX);
            assert!(z >= u64::MAX - 1);
        }
        let _ = g.range_inclusive(0, u64::MAX);
    }

    #[test]
    fn next_f64_in_unit_interval() {
        let mut g = SplitMix64::new(77);
        for _ in 0..10_000 {
            let x = g.next_f64();
            assert!((0.0..1.0).contains(&x));
        }
    }
}
