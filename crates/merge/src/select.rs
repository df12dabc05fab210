//! Which elements of a task vector are kept: mergekit's sparsifiers
//! (`sparsify.py`), found without holding the tensor. Magnitudes are
//! compared as float32 bits, as mergekit sorts them on the CPU; elements are
//! ordered by (magnitude, index), so where magnitudes tie exactly at a cut
//! the lower index comes first (torch's unstable sort decides there; this
//! choice is deterministic). A sparsifier keeps a range of ascending ranks;
//! the magnitudes at its ends are found in two streaming passes, a
//! histogram of the high 16 bits, then of the low 16 bits in the buckets
//! that hold the ends.

/// Ascending ranks `lo..hi` of `n` magnitudes to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ranks {
    /// First kept rank.
    pub lo: u64,
    /// One past the last kept rank.
    pub hi: u64,
}

impl Ranks {
    /// `magnitude`: the `max(1, int(density * n))` largest; None = keep all.
    pub fn magnitude(n: u64, density: f64) -> Option<Ranks> {
        if density >= 1.0 {
            return None;
        }
        if density <= 0.0 || n == 0 {
            return Some(Ranks { lo: n, hi: n });
        }
        let k = ((density * n as f64) as u64).clamp(1, n);
        Some(Ranks { lo: n - k, hi: n })
    }

    /// `magnitude_outliers`: without the `int(gamma * n)` largest, keeping
    /// `int(density * n)` below them; None = keep all.
    pub fn outliers(n: u64, density: f64, gamma: f64) -> Option<Ranks> {
        if density >= 1.0 {
            return None;
        }
        let target = ((density * n as f64) as u64).min(n);
        let top = (gamma * n as f64) as u64;
        let lo = n.saturating_sub(target + top);
        Some(Ranks { lo, hi: lo + target })
    }
}

/// The magnitude key: `|x|` as f32 bits (their order is the magnitudes').
#[inline]
pub fn key(x: f32) -> u32 {
    x.abs().to_bits()
}

/// Finds the keys at ranks `lo` and `hi - 1` of a stream of keys.
pub struct Finder {
    ranks: [u64; 2],
    high: Vec<u64>,
    /// Per end: its bucket, the count below the bucket, and the low
    /// histogram of that bucket.
    ends: Vec<(u32, u64, Vec<u64>)>,
}

impl Finder {
    /// For `ranks` (non-empty).
    pub fn new(ranks: Ranks) -> Finder {
        Finder {
            ranks: [ranks.lo, ranks.hi - 1],
            high: vec![0; 1 << 16],
            ends: Vec::new(),
        }
    }

    /// The same high histogram for other ranks (known only after pass 1).
    pub fn with_ranks(mut self, ranks: Ranks) -> Finder {
        self.ranks = [ranks.lo, ranks.hi - 1];
        self.ends.clear();
        self.end_high();
        self
    }

    /// Pass 1: every key.
    pub fn count_high(&mut self, key: u32) {
        self.high[(key >> 16) as usize] += 1;
    }

    /// Between the passes: the buckets holding the two ends.
    pub fn end_high(&mut self) {
        for r in self.ranks {
            let mut below = 0u64;
            for (bucket, &count) in self.high.iter().enumerate() {
                if r < below + count {
                    self.ends.push((bucket as u32, below, vec![0; 1 << 16]));
                    break;
                }
                below += count;
            }
        }
    }

    /// Pass 2: every key again.
    pub fn count_low(&mut self, key: u32) {
        for (bucket, _, low) in &mut self.ends {
            if key >> 16 == *bucket {
                low[(key & 0xffff) as usize] += 1;
            }
        }
    }

    /// After pass 2: the keeper of the ranks. With `first_ties`, the ties
    /// at the low end that are kept are the first in index order (a stable
    /// descending sort's choice, for `magnitude`'s largest-k), otherwise the
    /// last (a stable ascending sort's, for `magnitude_outliers`).
    pub fn keeper(self, first_ties: bool) -> Keeper {
        let mut found = [(0u32, 0u64, 0u64); 2];
        for (i, (r, (bucket, below, low))) in self.ranks.iter().zip(&self.ends).enumerate() {
            let mut under = *below;
            for (l, &count) in low.iter().enumerate() {
                if *r < under + count {
                    found[i] = ((bucket << 16) | l as u32, under, count);
                    break;
                }
                under += count;
            }
        }
        Keeper {
            lo: self.ranks[0],
            hi: self.ranks[1] + 1,
            lo_key: found[0].0,
            lo_below: found[0].1,
            hi_key: found[1].0,
            hi_below: found[1].1,
            seen_lo: 0,
            seen_hi: 0,
            lo_first: first_ties.then(|| found[0].1 + found[0].2 - self.ranks[0]),
            lo_count: found[0].2,
            hi_count: found[1].2,
        }
    }
}

/// Decides, element by element in index order, whether an element's rank
/// falls in the kept range.
#[derive(Clone, Debug)]
pub struct Keeper {
    lo: u64,
    hi: u64,
    lo_key: u32,
    lo_below: u64,
    hi_key: u32,
    hi_below: u64,
    seen_lo: u64,
    seen_hi: u64,
    /// Ties at the low end kept from the first, when so chosen.
    lo_first: Option<u64>,
    /// How many elements have the key at each end.
    lo_count: u64,
    hi_count: u64,
}

impl Keeper {
    /// Moves past elements of keys `keys` as [`Keeper::keep`] would, so a
    /// copy can decide a later part of the tensor.
    pub fn advance(&mut self, keys: impl Iterator<Item = u32>) {
        for k in keys {
            if k == self.lo_key {
                self.seen_lo += 1;
            } else if k == self.hi_key {
                self.seen_hi += 1;
            }
        }
    }

    /// Whether every decision follows from the key alone: no cut falls
    /// inside a run of equal keys, so no count of those seen so far matters.
    pub fn order_free(&self) -> bool {
        let low = match self.lo_first {
            Some(m) => m >= self.lo_count,
            None => {
                self.lo_below >= self.lo
                    && (self.lo_key != self.hi_key || self.lo_below + self.lo_count <= self.hi)
            }
        };
        low && (self.lo_key == self.hi_key || self.hi_below + self.hi_count <= self.hi)
    }

    /// Whether the next element (in index order), of magnitude key `k`, is kept.
    pub fn keep(&mut self, k: u32) -> bool {
        if k < self.lo_key || k > self.hi_key {
            return false;
        }
        if k == self.lo_key {
            let (seen, rank) = (self.seen_lo, self.lo_below + self.seen_lo);
            self.seen_lo += 1;
            return match self.lo_first {
                Some(m) => seen < m,
                None => rank >= self.lo && rank < self.hi,
            };
        }
        if k == self.hi_key {
            let rank = self.hi_below + self.seen_hi;
            self.seen_hi += 1;
            return rank < self.hi;
        }
        true
    }
}

/// [`random_at`] for elements `0..n`.
#[cfg(test)]
pub fn random(n: usize, density: f64, seed: u64, stream: u64) -> Vec<bool> {
    (0..n as u64)
        .map(|i| random_at(i, density, seed, stream))
        .collect()
}

/// DARE's random drop: element `i` is kept with probability `density`,
/// drawn from a counter-based generator (SplitMix64 of the seed, the
/// tensor's and model's key and `i`), so the mask depends on nothing but
/// those: not the thread count, not the chunking.
#[inline]
pub fn random_at(i: u64, density: f64, seed: u64, stream: u64) -> bool {
    if density >= 1.0 {
        return true;
    }
    let u = splitmix(seed ^ splitmix(stream) ^ splitmix(i.wrapping_add(0x9e37_79b9_7f4a_7c15)));
    // 53 random bits as a double in [0, 1).
    ((u >> 11) as f64) * (1.0 / (1u64 << 53) as f64) < density
}

/// SplitMix64's output function.
pub fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a of a name: the per-tensor part of a DARE stream key.
pub fn name_key(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(v: &[f32], ranks: Ranks, first: bool) -> Vec<bool> {
        let mut f = Finder::new(ranks);
        v.iter().for_each(|&x| f.count_high(key(x)));
        f.end_high();
        v.iter().for_each(|&x| f.count_low(key(x)));
        let mut k = f.keeper(first);
        v.iter().map(|&x| k.keep(key(x))).collect()
    }

    #[test]
    fn magnitude_keeps_the_largest_and_outliers_the_middle() {
        let v = [0.5f32, -3.0, 1.0, -0.25, 2.0];
        assert_eq!(
            kept(&v, Ranks::magnitude(5, 0.4).unwrap(), true),
            [false, true, false, false, true]
        );
        assert_eq!(
            kept(&v, Ranks::magnitude(5, 0.01).unwrap(), true),
            [false, true, false, false, false]
        );
        // n = 5, density 0.6 -> 3 kept, gamma 0.2 -> the largest dropped.
        assert_eq!(
            kept(&v, Ranks::outliers(5, 0.6, 0.2).unwrap(), false),
            [true, false, true, false, true]
        );
        // Ties at the cut: the lower index first.
        let t = [1.0f32, 2.0, -1.0, 1.0, 3.0];
        assert_eq!(
            kept(&t, Ranks::magnitude(5, 0.6).unwrap(), true),
            [true, true, false, false, true]
        );
        // Ascending: 1 (0), 1 (2), 1 (3), 2 (1), 3 (4); ranks 2 and 3 kept.
        assert_eq!(
            kept(&t, Ranks::outliers(5, 0.4, 0.2).unwrap(), false),
            [false, true, false, true, false]
        );
    }

    #[test]
    fn a_cut_inside_a_run_of_ties_is_not_order_free() {
        let keeper = |v: &[f32], ranks: Ranks, first: bool| {
            let mut f = Finder::new(ranks);
            v.iter().for_each(|&x| f.count_high(key(x)));
            f.end_high();
            v.iter().for_each(|&x| f.count_low(key(x)));
            f.keeper(first)
        };
        let t = [1.0f32, 2.0, -1.0, 1.0, 3.0];
        // The two largest: no tie at the cut.
        assert!(keeper(&t, Ranks::magnitude(5, 0.4).unwrap(), true).order_free());
        // The three largest: one of the three 1s.
        assert!(!keeper(&t, Ranks::magnitude(5, 0.6).unwrap(), true).order_free());
        // The same ranks, ties counted from the last: none at the cut.
        assert!(keeper(&t, Ranks::magnitude(5, 0.4).unwrap(), false).order_free());
        // Ranks 2..4 of the ascending order: two of the 1s.
        assert!(!keeper(&t, Ranks::outliers(5, 0.4, 0.2).unwrap(), false).order_free());
        // Ranks 3..5 with the top one dropped: the 2 only (not the 3).
        assert!(keeper(&t, Ranks::outliers(5, 0.2, 0.2).unwrap(), false).order_free());
    }

    #[test]
    fn random_masks_depend_only_on_their_keys() {
        let a = random(10_000, 0.3, 7, 11);
        assert_eq!(a, random(10_000, 0.3, 7, 11));
        assert_ne!(a, random(10_000, 0.3, 8, 11));
        let kept = a.iter().filter(|&&k| k).count() as f64;
        // Within 4 standard deviations of n * p.
        let sd = (10_000.0f64 * 0.3 * 0.7).sqrt();
        assert!((kept - 3000.0).abs() < 4.0 * sd, "{kept}");
    }
}
