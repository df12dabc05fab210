//! The lookup tables ggml's IQ quantizers search (`iq2xs_init_impl`,
//! `iq3xs_init_impl`): for every code of `W` levels (`BITS` bits each) the
//! grid index when the code is on the grid, and otherwise its neighbours:
//! the grid entries at the `nwant` smallest squared distances, ordered by
//! (distance, index) as ggml's qsort orders them.

use rayon::prelude::*;

/// A grid of `W`-value groups (values `2l + 1`) and its tables.
pub(super) struct NeighbourGrid<const W: usize> {
    /// Values `2l + 1` per entry.
    pub grid: Vec<[i8; W]>,
    /// Code → grid index, or −(offset + 1) into `neighbours`.
    pub map: Vec<i32>,
    /// At each offset: a count n, then n grid indices.
    pub neighbours: Vec<u16>,
}

impl<const W: usize> NeighbourGrid<W> {
    /// Builds the tables over codes `0..codes` of `bits`-bit levels.
    pub fn build(grid: Vec<[i8; W]>, bits: u32, codes: usize, nwant: usize) -> Self {
        let mask = (1usize << bits) - 1;
        let code_of = |g: &[i8; W]| -> usize {
            (0..W)
                .map(|i| (((g[i] - 1) / 2) as usize) << (bits as usize * i))
                .sum()
        };
        let mut map = vec![-1i32; codes];
        for (k, g) in grid.iter().enumerate() {
            if let Some(m) = map.get_mut(code_of(g)) {
                *m = k as i32;
            }
        }
        // Each off-grid code's list, computed in parallel, laid out in code order.
        let lists: Vec<Option<Vec<u16>>> = (0..codes)
            .into_par_iter()
            .map(|i| {
                if map[i] >= 0 {
                    return None;
                }
                let pos: [i32; W] =
                    std::array::from_fn(|k| 2 * ((i >> (bits as usize * k)) & mask) as i32 + 1);
                let d2: Vec<i32> = grid
                    .iter()
                    .map(|g| (0..W).map(|k| (i32::from(g[k]) - pos[k]).pow(2)).sum())
                    .collect();
                // The nwant smallest distinct distances.
                let mut smallest: Vec<i32> = Vec::with_capacity(nwant + 1);
                for &d in &d2 {
                    if smallest.contains(&d) {
                        continue;
                    }
                    let at = smallest.partition_point(|&s| s < d);
                    if at < nwant {
                        smallest.insert(at, d);
                        smallest.truncate(nwant);
                    }
                }
                let limit = smallest.last().copied().unwrap_or(i32::MAX);
                let mut near: Vec<(i32, usize)> = d2
                    .iter()
                    .enumerate()
                    .filter(|&(_, &d)| d <= limit)
                    .map(|(j, &d)| (d, j))
                    .collect();
                near.sort_unstable();
                Some(near.into_iter().map(|(_, j)| j as u16).collect())
            })
            .collect();
        let mut neighbours = Vec::new();
        for (i, list) in lists.into_iter().enumerate() {
            if let Some(list) = list {
                map[i] = -(neighbours.len() as i32 + 1);
                neighbours.push(list.len() as u16);
                neighbours.extend(list);
            }
        }
        NeighbourGrid {
            grid,
            map,
            neighbours,
        }
    }

    /// The code of `levels` (each below 2^bits).
    pub fn code(levels: &[i8], bits: u32) -> usize {
        (0..W).map(|i| (levels[i] as usize) << (bits as usize * i)).sum()
    }

    /// The neighbours of off-grid `code`.
    pub fn neighbours_of(&self, code: usize) -> &[u16] {
        let at = (-self.map[code] - 1) as usize;
        let n = usize::from(self.neighbours[at]);
        &self.neighbours[at + 1..at + 1 + n]
    }

    /// `iq*_find_best_neighbour`: the neighbour of off-grid `code` nearest
    /// `xval` under `weight` at `scale` (the first on ties); its levels go to `l`.
    pub fn best_neighbour(
        &self,
        code: usize,
        xval: &[f32],
        weight: &[f32],
        scale: f32,
        l: &mut [i8],
    ) -> usize {
        let (mut best_d2, mut best) = (f32::MAX, None);
        for &j in self.neighbours_of(code) {
            let pg = &self.grid[usize::from(j)];
            let mut d2 = 0f32;
            for i in 0..W {
                let diff = scale * f32::from(pg[i]) - xval[i];
                d2 += weight[i] * diff * diff;
            }
            if d2 < best_d2 {
                best_d2 = d2;
                best = Some(usize::from(j));
            }
        }
        // ggml asserts here when every distance is NaN or infinite; the
        // first neighbour stands in.
        let best = best.unwrap_or_else(|| usize::from(self.neighbours_of(code)[0]));
        let pg = &self.grid[best];
        for i in 0..W {
            l[i] = (pg[i] - 1) / 2;
        }
        best
    }

    /// The grid index of an on-grid group of levels (0 if, impossibly, off it).
    pub fn index(&self, levels: &[i8], bits: u32) -> usize {
        self.map[Self::code(levels, bits)].max(0) as usize
    }
}
