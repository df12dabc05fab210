//! IQ1_S and IQ1_M: groups of eight ternary values (−1, 0, 1, shifted by
//! ±1/8) from a 2048-entry grid, as ggml's `quantize_row_iq1_{s,m}_impl`
//! choose them: an exhaustive split of each block's sorted values into
//! three levels, then the grid. IQ1_S needs importance weights (ggml
//! asserts without); IQ1_M falls back to x².

use super::ggml_f16;
use super::grid::NeighbourGrid;
use super::groups::sigma2;
use super::search::nearest_int;
use crate::grids::IQ1S_GRID;
use std::sync::OnceLock;

type Grid1 = NeighbourGrid<8>;

/// Codes of eight 2-bit levels up to all-2 (ggml's `kmap_size`).
const CODES: usize = 43692;
const DELTA: f32 = 0.125;
const X_P: [f32; 3] = [-1.0 + DELTA, DELTA, 1.0 + DELTA];
const X_M: [f32; 3] = [-1.0 - DELTA, -DELTA, 1.0 - DELTA];

/// The grid in `2l + 1` (its dequantization values −1, 0, 1 are levels 0..3).
fn grid() -> &'static Grid1 {
    static G: OnceLock<Grid1> = OnceLock::new();
    G.get_or_init(|| {
        let g = IQ1S_GRID.iter().map(|row| row.map(|v| 2 * (v + 1) + 1)).collect();
        Grid1::build(g, 2, CODES, 3)
    })
}

/// Positions of `xb` sorted by value, ties in their original order (glibc's
/// qsort, a merge sort, keeps them so); NaNs compare equal to everything.
fn sorted_positions<const N: usize>(xb: &[f32]) -> [usize; N] {
    let mut idx: [usize; N] = std::array::from_fn(|i| i);
    for i in 1..N {
        let mut j = i;
        while j > 0 && xb[idx[j]] < xb[idx[j - 1]] {
            idx.swap(j, j - 1);
            j -= 1;
        }
    }
    idx
}

/// `iq1_find_best_neighbour2`: the neighbour of off-grid `code` nearest
/// `xb` in the shifted values `xx` at `scale`; its levels go to `l`.
fn best_neighbour2(
    g: &Grid1,
    code: usize,
    xb: &[f32],
    weight: &[f32],
    scale: f32,
    xx: &[f32; 3],
    l: &mut [i8],
) -> usize {
    let (mut best, mut at) = (f32::MAX, None);
    for &j in g.neighbours_of(code) {
        let pg = &g.grid[usize::from(j)];
        let mut d2 = 0f32;
        for i in 0..8 {
            let q = xx[((pg[i] - 1) / 2) as usize];
            let diff = scale * q - xb[i];
            d2 += weight[i] * diff * diff;
        }
        if d2 < best {
            best = d2;
            at = Some(usize::from(j));
        }
    }
    // ggml then tries the whole grid, reading past its block (a bug that
    // only NaN distances reach) and asserts; the first neighbour stands in.
    let gi = at.unwrap_or_else(|| usize::from(g.neighbours_of(code)[0]));
    for (l, &v) in l.iter_mut().zip(&g.grid[gi]) {
        *l = (v - 1) / 2;
    }
    gi
}

/// The shifted values of group `k` for IQ1_M's shift choice `best_k`.
fn shifted(best_k: i32, k: usize) -> &'static [f32; 3] {
    let plus = if k == 0 { best_k < 2 } else { best_k % 2 == 0 };
    if plus {
        &X_P
    } else {
        &X_M
    }
}

/// Levels 0, 1, 2 for the values at sorted positions below `b1`, below
/// `b2`, and the rest.
fn split_levels<const N: usize>(idx: &[usize; N], b1: i32, b2: i32) -> [i8; N] {
    let mut l = [0i8; N];
    for (j, &i) in idx.iter().enumerate() {
        let j = j as i32;
        l[i] = if j < b1 {
            0
        } else if j < b2 {
            1
        } else {
            2
        };
    }
    l
}

fn abs_max(xb: &[f32]) -> f32 {
    let mut max = xb[0].abs();
    for &v in &xb[1..] {
        max = if max > v.abs() { max } else { v.abs() };
    }
    max
}

/// IQ1_S: d | qs[32] grid low bytes | 8 × u16 (grid high bits, 3-bit scale, shift sign).
pub(super) fn iq1_s(x: &[f32], qw: &[f32], out: &mut Vec<u8>) {
    let g = grid();
    let sigma2 = sigma2(x);
    let mut qs = [0u8; 32];
    let mut qh = [0u16; 8];
    let mut scales = [0f32; 8];
    let mut shifts = [1i8; 8];
    let mut max_scale = 0f32;
    for ib in 0..8 {
        let xb = &x[32 * ib..32 * ib + 32];
        let mut weight = [0f32; 32];
        for i in 0..32 {
            weight[i] = qw[32 * ib + i] * (sigma2 + xb[i] * xb[i]).sqrt();
        }
        if abs_max(xb) < 1e-12 {
            scales[ib] = 0.0;
            shifts[ib] = 1;
            continue;
        }
        let idx: [usize; 32] = sorted_positions(xb);
        let (mut sumx, mut sumw) = ([0f32; 33], [0f32; 33]);
        for j in 0..32 {
            let i = idx[j];
            sumx[j + 1] = sumx[j] + weight[i] * xb[i];
            sumw[j + 1] = sumw[j] + weight[i];
        }
        let (mut best_score, mut scale) = (-f32::MAX, abs_max(xb));
        let (mut b1, mut b2, mut best_shift) = (-1i32, -1i32, 0i32);
        for i1 in 0..=32 {
            for i2 in i1..=32 {
                for (xs, shift) in [(&X_P, 1), (&X_M, -1)] {
                    let sumqx = (sumx[i1] - sumx[0]) * xs[0]
                        + (sumx[i2] - sumx[i1]) * xs[1]
                        + (sumx[32] - sumx[i2]) * xs[2];
                    let sumq2 = (sumw[i1] - sumw[0]) * xs[0] * xs[0]
                        + (sumw[i2] - sumw[i1]) * xs[1] * xs[1]
                        + (sumw[32] - sumw[i2]) * xs[2] * xs[2];
                    if sumq2 > 0.0 && sumqx * sumqx > best_score * sumq2 {
                        scale = sumqx / sumq2;
                        best_score = scale * sumqx;
                        (b1, b2, best_shift) = (i1 as i32, i2 as i32, shift);
                    }
                }
            }
        }
        if b1 < 0 || b2 < 0 || best_shift == 0 {
            scales[ib] = 0.0;
            shifts[ib] = 1;
            continue;
        }
        let mut l: [i8; 32] = split_levels(&idx, b1, b2);
        if scale < 0.0 {
            for v in &mut l {
                *v = 2 - *v;
            }
            scale = -scale;
            best_shift = -best_shift;
        }
        let xx = if best_shift == 1 { &X_P } else { &X_M };
        let mut index = [0usize; 4];
        let mut all_on_grid = true;
        for k in 0..4 {
            let code = Grid1::code(&l[8 * k..8 * k + 8], 2);
            index[k] = if g.map[code] >= 0 {
                g.map[code] as usize
            } else {
                all_on_grid = false;
                best_neighbour2(
                    g,
                    code,
                    &xb[8 * k..],
                    &weight[8 * k..],
                    scale,
                    xx,
                    &mut l[8 * k..8 * k + 8],
                )
            };
        }
        if !all_on_grid {
            let (mut sumqx, mut sumq2) = (0f32, 0f32);
            for k in 0..4 {
                let pg = &g.grid[index[k]];
                for j in 0..8 {
                    let (w, q) = (weight[8 * k + j], xx[((pg[j] - 1) / 2) as usize]);
                    sumqx += w * q * xb[8 * k + j];
                    sumq2 += w * q * q;
                }
            }
            if sumqx > 0.0 && sumq2 > 0.0 {
                scale = sumqx / sumq2;
            }
        }
        let mut h = 0u16;
        for k in 0..4 {
            qs[4 * ib + k] = (index[k] & 255) as u8;
            h |= ((index[k] >> 8) << (3 * k)) as u16;
        }
        qh[ib] = h;
        scales[ib] = scale;
        shifts[ib] = best_shift as i8;
        max_scale = if max_scale > scale { max_scale } else { scale };
    }
    let mut dh = 0u16;
    if max_scale != 0.0 {
        let d = max_scale / 15.0;
        dh = ggml_f16(d * 1.125);
        let id = 1.0 / d;
        for ib in 0..8 {
            let mut l = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 7);
            if shifts[ib] == -1 {
                l |= 8;
            }
            qh[ib] |= (l << 12) as u16;
        }
    }
    out.extend_from_slice(&dh.to_le_bytes());
    out.extend_from_slice(&qs);
    for v in qh {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// IQ1_M: qs[32] | qh[16] | scales[8] (3-bit block scales, the f16 super-scale in the top nibbles).
pub(super) fn iq1_m(x: &[f32], qw: Option<&[f32]>, out: &mut Vec<u8>) {
    let g = grid();
    let sigma2 = sigma2(x);
    let mut qs = [0u8; 32];
    let mut qh = [0u8; 16];
    let mut sc = [0u16; 4];
    let mut scales = [0f32; 16];
    let mut shifts = [0i32; 16];
    let mut max_scale = 0f32;
    let weights_of = |ib: usize| -> [f32; 16] {
        let xb = &x[16 * ib..16 * ib + 16];
        std::array::from_fn(|i| match qw {
            Some(q) => q[16 * ib + i] * (sigma2 + xb[i] * xb[i]).sqrt(),
            None => xb[i] * xb[i],
        })
    };
    for ib in 0..16 {
        let xb = &x[16 * ib..16 * ib + 16];
        let weight = weights_of(ib);
        if abs_max(xb) < 1e-7 {
            scales[ib] = 0.0;
            shifts[ib] = 0;
            continue;
        }
        let idx: [usize; 16] = sorted_positions(xb);
        let (mut px, mut pw) = ([[0f32; 17]; 2], [[0f32; 17]; 2]);
        for j in 0..16 {
            let i = idx[j];
            let h = usize::from(i >= 8);
            px[h][j + 1] = px[h][j] + weight[i] * xb[i];
            px[1 - h][j + 1] = px[1 - h][j];
            pw[h][j + 1] = pw[h][j] + weight[i];
            pw[1 - h][j + 1] = pw[1 - h][j];
        }
        let txs = [px[0][16], px[1][16]];
        let tws = [pw[0][16], pw[1][16]];
        let (p2, m2) = (X_P[2], X_M[2]);
        let cp1 = X_P[0] * X_P[0] - X_P[1] * X_P[1];
        let cp2 = X_P[1] * X_P[1] - X_P[2] * X_P[2];
        let cm1 = X_M[0] * X_M[0] - X_M[1] * X_M[1];
        let cm2 = X_M[1] * X_M[1] - X_M[2] * X_M[2];
        let (mut best_score, mut scale) = (-f32::MAX, abs_max(xb));
        let (mut b1, mut b2, mut best_k) = (-1i32, -1i32, -1i32);
        for i1 in 0..=16 {
            for i2 in i1..=16 {
                let (mut qx_p, mut qx_m, mut q2_p, mut q2_m) = ([0f32; 2], [0f32; 2], [0f32; 2], [0f32; 2]);
                for h in 0..2 {
                    let sx = px[h][i1] + px[h][i2];
                    qx_p[h] = txs[h] * p2 - sx;
                    qx_m[h] = txs[h] * m2 - sx;
                    q2_p[h] = tws[h] * p2 * p2 + pw[h][i1] * cp1 + pw[h][i2] * cp2;
                    q2_m[h] = tws[h] * m2 * m2 + pw[h][i1] * cm1 + pw[h][i2] * cm2;
                }
                let sumqx = [
                    qx_p[0] + qx_p[1],
                    qx_p[0] + qx_m[1],
                    qx_m[0] + qx_p[1],
                    qx_m[0] + qx_m[1],
                ];
                let sumq2 = [
                    q2_p[0] + q2_p[1],
                    q2_p[0] + q2_m[1],
                    q2_m[0] + q2_p[1],
                    q2_m[0] + q2_m[1],
                ];
                for k in 0..4 {
                    if sumq2[k] > 0.0 && sumqx[k] * sumqx[k] > best_score * sumq2[k] {
                        scale = sumqx[k] / sumq2[k];
                        best_score = scale * sumqx[k];
                        (b1, b2, best_k) = (i1 as i32, i2 as i32, k as i32);
                    }
                }
            }
        }
        if b1 < 0 || b2 < 0 || best_k < 0 {
            scales[ib] = 0.0;
            shifts[ib] = 0;
            continue;
        }
        let mut l: [i8; 16] = split_levels(&idx, b1, b2);
        if scale < 0.0 {
            for v in &mut l {
                *v = 2 - *v;
            }
            scale = -scale;
            best_k = 3 - best_k;
        }
        let mut index = [0usize; 2];
        let mut all_on_grid = true;
        for k in 0..2 {
            let xx = shifted(best_k, k);
            let code = Grid1::code(&l[8 * k..8 * k + 8], 2);
            index[k] = if g.map[code] >= 0 {
                g.map[code] as usize
            } else {
                all_on_grid = false;
                best_neighbour2(
                    g,
                    code,
                    &xb[8 * k..],
                    &weight[8 * k..],
                    scale,
                    xx,
                    &mut l[8 * k..8 * k + 8],
                )
            };
        }
        if !all_on_grid {
            let (mut sumqx, mut sumq2) = (0f32, 0f32);
            for k in 0..2 {
                let xx = shifted(best_k, k);
                let pg = &g.grid[index[k]];
                for j in 0..8 {
                    let (w, q) = (weight[8 * k + j], xx[((pg[j] - 1) / 2) as usize]);
                    sumqx += w * q * xb[8 * k + j];
                    sumq2 += w * q * q;
                }
            }
            if sumqx > 0.0 && sumq2 > 0.0 {
                scale = sumqx / sumq2;
            }
        }
        qs[2 * ib] = (index[0] & 255) as u8;
        qs[2 * ib + 1] = (index[1] & 255) as u8;
        qh[ib] = ((index[0] >> 8) | ((index[1] >> 8) << 4)) as u8;
        scales[ib] = scale;
        shifts[ib] = best_k;
        max_scale = if max_scale > scale { max_scale } else { scale };
    }
    if max_scale != 0.0 {
        const MASKS: [u8; 4] = [0x00, 0x80, 0x08, 0x88];
        let mut d = max_scale / 15.0;
        let id = 1.0 / d;
        let (mut sumqx, mut sumq2) = (0f32, 0f32);
        for ib in 0..16 {
            let l = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 7);
            sc[ib / 4] |= (l << (3 * (ib % 4))) as u16;
            qh[ib] |= MASKS[shifts[ib] as usize & 3];
            let weight = weights_of(ib);
            let xb = &x[16 * ib..16 * ib + 16];
            for k in 0..2 {
                let xx = shifted(shifts[ib], k);
                let gi = usize::from(qs[2 * ib + k]) + ((usize::from(qh[ib]) << (8 - 4 * k)) & 0x700);
                let pg = &g.grid[gi];
                for j in 0..8 {
                    let w = weight[8 * k + j];
                    let q = xx[((pg[j] - 1) / 2) as usize] * (2 * l + 1) as f32;
                    sumqx += w * q * xb[8 * k + j];
                    sumq2 += w * q * q;
                }
            }
        }
        if sumq2 > 0.0 {
            d = sumqx / sumq2;
        }
        let s = ggml_f16(d * 1.1125);
        sc[0] |= (s & 0x000f) << 12;
        sc[1] |= (s & 0x00f0) << 8;
        sc[2] |= (s & 0x0f00) << 4;
        sc[3] |= s & 0xf000;
    }
    out.extend_from_slice(&qs);
    out.extend_from_slice(&qh);
    for v in sc {
        out.extend_from_slice(&v.to_le_bytes());
    }
}
