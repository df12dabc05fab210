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

/// torch's sum over the rows of a contiguous `(rows, cols)` float32 tensor
/// (`x.sum(dim=0)`, and so `x.mean(dim=0)`: SumKernel.cpp's outer
/// reduction), fed a row at a time. Columns in whole blocks of 32 (4
/// vectors of 8 lanes, `vectorized_outer_sum`; of 4 when there are fewer
/// than 8 columns, `scalar_outer_sum`) sum their rows in
/// `multi_row_sum`'s cascade: every `2^p` rows (`p = max(4,
/// ceil_log2(rows) / 4)`) level 0 goes into level 1, and on up while the
/// row count is a multiple of the next level's span; the rows after the
/// last whole step go to level 0; the levels are then added into level 0 in
/// turn. The other columns take `row_sum`'s path: the rows interleaved 4
/// ways (row `i` into partial `i % 4`) through the same cascade over
/// `rows / 4` steps, the rows left over into partial 0, then partials 1–3
/// into it. Threads split the columns at multiples of 32, which changes no
/// column's order.
#[derive(Clone, Debug)]
pub struct ColumnSums {
    rows: u64,
    /// Columns summed in the plain cascade (the rest interleaved).
    blocked: usize,
    power: u32,
    /// Per blocked column, its levels.
    acc: Vec<[f32; LEVELS]>,
    /// The interleaved columns' cascade: steps of 4 rows.
    steps: u64,
    step_power: u32,
    ilp: Vec<[[f32; ILP]; LEVELS]>,
    partial: Vec<[f32; ILP]>,
    folded: bool,
    at: u64,
}

impl ColumnSums {
    /// Sums over `rows` rows of `cols` values.
    pub fn new(rows: u64, cols: usize) -> ColumnSums {
        // Fewer columns than a vector: `scalar_outer_sum`, blocks of 4.
        let block = if cols >= LANES { ILP * LANES } else { ILP };
        let blocked = cols - cols % block;
        let steps = rows / ILP as u64;
        ColumnSums {
            rows,
            blocked,
            power: (ceil_log2(rows) / LEVELS as u32).max(4),
            acc: vec![[0.0; LEVELS]; blocked],
            steps,
            step_power: (ceil_log2(steps) / LEVELS as u32).max(4),
            ilp: vec![[[0.0; ILP]; LEVELS]; cols - blocked],
            partial: vec![[0.0; ILP]; cols - blocked],
            folded: false,
            at: 0,
        }
    }

    /// One cascade step over `levels` after `count` steps of `power`.
    fn cascade<const N: usize>(levels: &mut [[f32; N]; LEVELS], count: u64, power: u32) {
        let mask = (1u64 << power) - 1;
        for j in 1..LEVELS {
            let (lower, upper) = levels.split_at_mut(j);
            for (up, low) in upper[0].iter_mut().zip(lower[j - 1].iter_mut()) {
                *up += *low;
                *low = 0.0;
            }
            if count & (mask << (j as u32 * power)) != 0 {
                break;
            }
        }
    }

    /// Adds the next row (`cols` values); rows past `rows` are ignored.
    pub fn push_row(&mut self, row: &[f32]) {
        if self.at >= self.rows {
            return;
        }
        let i = self.at;
        self.at += 1;
        let (head, tail) = row.split_at(self.blocked.min(row.len()));
        let step = 1u64 << self.power;
        let whole = self.rows / step * step;
        for (acc, &x) in self.acc.iter_mut().zip(head) {
            let mut levels = acc.map(|v| [v]);
            levels[0][0] += x;
            if i < whole && (i + 1).is_multiple_of(step) {
                Self::cascade(&mut levels, i + 1, self.power);
            }
            *acc = levels.map(|[v]| v);
        }
        let (r, k) = (i / ILP as u64, (i % ILP as u64) as usize);
        if r < self.steps {
            let step = 1u64 << self.step_power;
            let whole = self.steps / step * step;
            for (levels, &x) in self.ilp.iter_mut().zip(tail) {
                levels[0][k] += x;
                if k == ILP - 1 && r < whole && (r + 1).is_multiple_of(step) {
                    Self::cascade(levels, r + 1, self.step_power);
                }
            }
        } else {
            self.fold();
            for (p, &x) in self.partial.iter_mut().zip(tail) {
                p[0] += x;
            }
        }
    }

    /// The interleaved columns' levels added into their partials.
    fn fold(&mut self) {
        if self.folded {
            return;
        }
        for (p, levels) in self.partial.iter_mut().zip(&self.ilp) {
            for k in 0..ILP {
                let mut v = levels[0][k];
                for level in levels.iter().skip(1) {
                    v += level[k];
                }
                p[k] = v;
            }
        }
        self.folded = true;
    }

    /// Every column's sum (rows never pushed count as zeros).
    pub fn finish(mut self) -> Vec<f32> {
        let zeros = vec![0.0; self.blocked + self.ilp.len()];
        while self.at < self.rows {
            self.push_row(&zeros);
        }
        self.fold();
        let mut out: Vec<f32> = self
            .acc
            .iter()
            .map(|levels| {
                let mut v = levels[0];
                for l in &levels[1..] {
                    v += l;
                }
                v
            })
            .collect();
        out.extend(self.partial.iter().map(|p| {
            let mut v = p[0];
            for x in &p[1..] {
                v += x;
            }
            v
        }));
        out
    }
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

    /// `torch.from_numpy(row(rows * cols, 3).reshape(rows, cols))` summed
    /// over its rows (`sum(dim=0)`, and `mean(dim=0)`), as torch 2.15.0
    /// printed it (AVX2, two threads), at the first, middle and last
    /// column: whole blocks of 32 columns, a block and 8 interleaved, all
    /// interleaved, and rows enough for the levels.
    #[test]
    fn columns_sum_to_torch_s_bits() {
        // ((rows, cols), sums, means) at the three columns.
        type Case = ((u64, usize), [u32; 3], [u32; 3]);
        let torch: [Case; 5] = [
            (
                (403, 64),
                [0x46a5c7e8, 0x469971ca, 0x45c4b65e],
                [0x42529eb1, 0x4242f264, 0x4179eade],
            ),
            (
                (1000, 40),
                [0x47500f68, 0x47075e78, 0x4777eed3],
                [0x42550dba, 0x420a9e2d, 0x427de220],
            ),
            (
                (37, 5),
                [0xc5a84488, 0xc65b3f5b, 0x46b4c6d2],
                [0xc3118761, 0xc3bd9e94, 0x441c58ed],
            ),
            (
                (20000, 33),
                [0x494729d3, 0x4932a9cb, 0x493421de],
                [0x42232796, 0x42125c66, 0x4213907b],
            ),
            (
                (70000, 2),
                [0x4a1ac64c, 0x4a2d9b90, 0x4a2d9b90],
                [0x4210e787, 0x42228955, 0x42228955],
            ),
        ];
        for ((rows, cols), sums, means) in torch {
            let x = row(rows * cols as u64, 3);
            let mut s = ColumnSums::new(rows, cols);
            x.chunks(cols).for_each(|r| s.push_row(r));
            let got = s.finish();
            for (k, c) in [0, cols / 2, cols - 1].into_iter().enumerate() {
                assert_eq!(got[c].to_bits(), sums[k], "{rows}x{cols} column {c}");
                assert_eq!(
                    (got[c] / rows as f32).to_bits(),
                    means[k],
                    "{rows}x{cols} mean {c}"
                );
            }
        }
    }
}
