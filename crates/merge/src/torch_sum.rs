//! torch's CPU float sum, in its order: where mergekit reduces a whole
//! tensor in float32 (sce's mean squares), the last bits of the result
//! depend on the order the additions were made in, and so do the merged
//! weights. torch (`aten/src/ATen/native/cpu/SumKernel.cpp`, `cascade_sum`)
//! sums a contiguous row of `n` values as follows, all in float32:
//!
//! - the row is read as `n / W` vectors of `W` lanes (`W` = 8, AVX2's and
//!   torch's default `Vectorized<float>`; AVX-512 builds use 16 and give
//!   other bits), the vectors in groups of 4 (instruction-level
//!   parallelism), the groups summed lane-wise into 4 accumulators in
//!   cascading levels: every `2^p` groups (`p = max(4, ceil_log2(groups) /
//!   4)`) level 0 is added into level 1, and on up while the group count is
//!   a multiple of the next level's span;
//! - the levels are then folded into level 0, the vectors left over after
//!   the last whole group are added to accumulator 0, and accumulators 1–3
//!   into accumulator 0;
//! - the values left over after the last whole vector are summed from 0,
//!   then the `W` lanes are added to that one by one.
//!
//! A row shorter than `W` takes the same path with one lane. Reducing every
//! row of a `(k, n)` tensor (`mean(dim=1)`) gives each row this sum whatever
//! torch's thread count; one whole-tensor sum of 32768 or more values
//! (`k = 1`) would split across threads, which no caller here needs.

/// Lanes of torch's `Vectorized<float>` on AVX2 (and without AVX).
pub const LANES: usize = 8;

/// Groups of vectors summed side by side (`ilp_factor`).
const ILP: usize = 4;

/// Cascade levels (`num_levels`).
const LEVELS: usize = 4;

/// One row's sum, fed its values in order ([`CascadeSum::push`]).
#[derive(Clone, Debug)]
pub struct CascadeSum {
    n: u64,
    lanes: usize,
    /// Vectors in whole groups (`size_ilp * ILP`), and all whole vectors.
    grouped: u64,
    vectors: u64,
    level_power: u32,
    /// `acc[level][k][lane]`.
    acc: [[[f32; LANES]; ILP]; LEVELS],
    /// The lane sums once the groups are folded (`partial_sums`).
    partial: [[f32; LANES]; ILP],
    /// The values after the last whole vector, summed from 0.
    tail: f32,
    /// Values pushed so far.
    at: u64,
    /// Whether the levels were folded into `partial`.
    folded: bool,
}

fn ceil_log2(x: u64) -> u32 {
    if x <= 2 {
        1
    } else {
        64 - (x - 1).leading_zeros()
    }
}

impl CascadeSum {
    /// The sum of a row of `n` values.
    pub fn new(n: u64) -> CascadeSum {
        let lanes = if n >= LANES as u64 { LANES } else { 1 };
        let vectors = n / lanes as u64;
        let groups = vectors / ILP as u64;
        CascadeSum {
            n,
            lanes,
            grouped: groups * ILP as u64,
            vectors,
            level_power: (ceil_log2(groups) / LEVELS as u32).max(4),
            acc: [[[0.0; LANES]; ILP]; LEVELS],
            partial: [[0.0; LANES]; ILP],
            tail: 0.0,
            at: 0,
            folded: false,
        }
    }

    /// Adds the next value of the row. Values past the row's `n` are ignored.
    #[inline]
    pub fn push(&mut self, x: f32) {
        if self.at >= self.n {
            return;
        }
        let lanes = self.lanes as u64;
        let (vector, lane) = (self.at / lanes, (self.at % lanes) as usize);
        self.at += 1;
        if vector < self.grouped {
            let k = (vector % ILP as u64) as usize;
            self.acc[0][k][lane] += x;
            if k == ILP - 1 && lane == self.lanes - 1 {
                self.group_done(vector / ILP as u64 + 1);
            }
            return;
        }
        if !self.folded {
            self.fold_levels();
        }
        if vector < self.vectors {
            self.partial[0][lane] += x;
        } else {
            self.tail += x;
        }
    }

    /// After `groups` whole groups: the cascade, when they end a block.
    fn group_done(&mut self, groups: u64) {
        let step = 1u64 << self.level_power;
        if !groups.is_multiple_of(step) {
            return;
        }
        let mask = step - 1;
        for j in 1..LEVELS {
            for k in 0..ILP {
                for l in 0..self.lanes {
                    self.acc[j][k][l] += self.acc[j - 1][k][l];
                    self.acc[j - 1][k][l] = 0.0;
                }
            }
            if groups & (mask << (j as u32 * self.level_power)) != 0 {
                break;
            }
        }
    }

    /// The levels added into level 0: the groups' lane sums.
    fn fold_levels(&mut self) {
        for k in 0..ILP {
            for l in 0..self.lanes {
                let mut s = self.acc[0][k][l];
                for j in 1..LEVELS {
                    s += self.acc[j][k][l];
                }
                self.partial[k][l] = s;
            }
        }
        self.folded = true;
    }

    /// The row's sum (values never pushed count as zeros).
    pub fn finish(mut self) -> f32 {
        while self.at < self.n {
            self.push(0.0);
        }
        if !self.folded {
            self.fold_levels();
        }
        let mut lanes = self.partial[0];
        for k in 1..ILP {
            for (l, v) in lanes.iter_mut().enumerate().take(self.lanes) {
                *v += self.partial[k][l];
            }
        }
        let mut total = self.tail;
        for v in lanes.iter().take(self.lanes) {
            total += v;
        }
        total
    }
}

/// torch's sum of a short float32 vector (`torch.sum(weights)`).
pub fn sum(values: &[f32]) -> f32 {
    let mut s = CascadeSum::new(values.len() as u64);
    for &v in values {
        s.push(v);
    }
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Row `salt` of the reference: `v = ((i + salt) * 2654435761 mod
    /// 1000003) / 997 - 500`, then `v^3 / 1e4`, every op in float32 (wide
    /// magnitudes, so the order of the additions shows in the bits).
    fn row(n: u64, salt: u64) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let v = (((i + salt) * 2_654_435_761) % 1_000_003) as f32 / 997.0 - 500.0;
                v * v * v / 1e4
            })
            .collect()
    }

    /// `torch.from_numpy(np.stack([row(n, 0), row(n, 7)])).sum(dim=1)` as
    /// torch 2.15.0 printed it on an AVX2 machine (two threads), as bits:
    /// short rows (one lane), a single vector with a tail, whole groups,
    /// and rows long enough for the cascade's levels.
    #[test]
    fn rows_sum_to_torch_s_bits() {
        let torch: [(u64, [u32; 2]); 11] = [
            (3, [0xc5f82606, 0x46822fb3]),
            (5, [0xc5f93164, 0x4680c0b1]),
            (7, [0xc6455ae7, 0x4635467f]),
            (8, [0xc39baf80, 0x46b7c3c6]),
            (9, [0xc3b1ef80, 0x46b75665]),
            (31, [0x4705321a, 0x47562612]),
            (100, [0x47895c92, 0x479fbf1c]),
            (1000, [0x47ddd41c, 0x47fa4760]),
            (4096, [0x487c6569, 0x48881ee0]),
            (65537, [0x4a1a25f5, 0x4a1a395f]),
            (300001, [0x4b2f2218, 0x4b2f35a3]),
        ];
        for (n, bits) in torch {
            for (salt, want) in [0, 7].into_iter().zip(bits) {
                assert_eq!(sum(&row(n, salt)).to_bits(), want, "n = {n}, salt {salt}");
            }
        }
    }

    /// Left to right differs from torch's order on such rows (the test
    /// above can fail).
    #[test]
    fn the_order_is_not_left_to_right() {
        let v = row(300001, 0);
        let naive = v.iter().fold(0.0f32, |a, &x| a + x);
        assert_ne!(naive.to_bits(), 0x4b2f2218);
    }

    #[test]
    fn values_not_pushed_count_as_zeros() {
        let v = row(1000, 0);
        let mut s = CascadeSum::new(1200);
        v.iter().for_each(|&x| s.push(x));
        let mut padded = v.clone();
        padded.resize(1200, 0.0);
        assert_eq!(s.finish().to_bits(), sum(&padded).to_bits());
        assert_eq!(CascadeSum::new(0).finish(), 0.0);
    }
}
