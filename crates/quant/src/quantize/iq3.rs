//! IQ3_XXS and IQ3_S: groups of four magnitudes `2l + 1` (l in 0..8) drawn
//! from a 256- or 512-entry grid, signs apart, as ggml's
//! `quantize_row_iq3_xxs_impl` / `quantize_row_iq3_s_impl` choose them: a
//! scale search where each group off the grid takes its nearest grid
//! neighbours (tables built as `iq3xs_init_impl` builds them).

use super::ggml_f16;
use super::grid::NeighbourGrid;
use super::groups::{magnitudes, max_of, sigma2};
use super::search::nearest_int;
use crate::grids::{IQ3S_GRID, IQ3XXS_GRID};
use std::sync::OnceLock;

type Grid3 = NeighbourGrid<4>;

/// IQ3_S's grid: the dequantization grid already holds `2l + 1`.
fn grid_s() -> &'static Grid3 {
    static G: OnceLock<Grid3> = OnceLock::new();
    G.get_or_init(|| Grid3::build(IQ3S_GRID.to_vec(), 3, 4096, 3))
}

/// IQ3_XXS's grid: its dequantization values {4, 12, …, 52, 62} are level
/// l's; the quantizer works in `2l + 1`.
fn grid_xxs() -> &'static Grid3 {
    static G: OnceLock<Grid3> = OnceLock::new();
    G.get_or_init(|| {
        const VALUES: [i8; 8] = [4, 12, 20, 28, 36, 44, 52, 62];
        let grid = IQ3XXS_GRID
            .iter()
            .map(|g| g.map(|v| 2 * VALUES.iter().position(|&x| x == v).unwrap_or(0) as i8 + 1))
            .collect();
        Grid3::build(grid, 3, 4096, 2)
    })
}

/// One 32-value block's search, shared by both types: returns the scale
/// and fills `l` (levels 0..8); `trials` is the half-width of the scale
/// search, `refine_all` whether the final pass revisits on-grid groups.
#[allow(clippy::too_many_arguments)]
fn search_block(
    g: &Grid3,
    xval: &[f32; 32],
    weight: &[f32; 32],
    max: f32,
    trials: i32,
    on_grid_start: bool,
    refine_all: bool,
    l: &mut [i8; 32],
) -> f32 {
    let mut waux = [0f32; 32];
    for (a, &w) in waux.iter_mut().zip(weight) {
        *a = w.sqrt();
    }
    let mut best = 0f32;
    let mut scale = max / 15.0;
    let mut on_grid = [on_grid_start; 8];
    let mut laux = [0i8; 32];
    let mut on_grid_aux = [true; 8];
    for is in -trials..=trials {
        let id = (15.0 + is as f32 * 0.2) / max;
        let this_scale = 1.0 / id;
        for k in 0..8 {
            for i in 0..4 {
                laux[4 * k + i] = nearest_int(0.5 * (id * xval[4 * k + i] - 1.0)).clamp(0, 7) as i8;
            }
            let code: usize = (0..4).map(|i| (laux[4 * k + i] as usize) << (3 * i)).sum();
            on_grid_aux[k] = g.map[code] >= 0;
            if !on_grid_aux[k] {
                g.best_neighbour(
                    code,
                    &xval[4 * k..],
                    &waux[4 * k..],
                    this_scale,
                    &mut laux[4 * k..4 * k + 4],
                );
            }
        }
        let (mut sumqx, mut sumq2) = (0f32, 0f32);
        for i in 0..32 {
            let (w, q) = (weight[i], f32::from(2 * laux[i] + 1));
            sumqx += w * xval[i] * q;
            sumq2 += w * q * q;
        }
        if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
            scale = sumqx / sumq2;
            best = scale * sumqx;
            *l = laux;
            on_grid = on_grid_aux;
        }
    }
    if on_grid.iter().any(|&o| !o) && scale > 0.0 {
        let id = 1.0 / scale;
        for k in 0..8 {
            if !refine_all && on_grid[k] {
                continue;
            }
            let code: usize = (0..4)
                .map(|i| (nearest_int(0.5 * (id * xval[4 * k + i] - 1.0)).clamp(0, 7) as usize) << (3 * i))
                .sum();
            let gi = if g.map[code] >= 0 {
                g.map[code] as usize
            } else {
                g.best_neighbour(
                    code,
                    &xval[4 * k..],
                    &waux[4 * k..],
                    scale,
                    &mut l[4 * k..4 * k + 4],
                )
            };
            let pg = &g.grid[gi];
            for i in 0..4 {
                l[4 * k + i] = (pg[i] - 1) / 2;
            }
        }
        let (mut sumqx, mut sumq2) = (0f32, 0f32);
        for i in 0..32 {
            let (w, q) = (weight[i], f32::from(2 * l[i] + 1));
            sumqx += w * xval[i] * q;
            sumq2 += w * q * q;
        }
        if sumq2 > 0.0 {
            scale = sumqx / sumq2;
        }
    }
    scale
}

/// The weights of block `ib`: importance against the super-block's spread, or x².
fn block_weights(xb: &[f32], qw: Option<&[f32]>, sigma2: f32) -> [f32; 32] {
    let mut w = [0f32; 32];
    for i in 0..32 {
        w[i] = match qw {
            Some(q) => q[i] * (sigma2 + xb[i] * xb[i]).sqrt(),
            None => xb[i] * xb[i],
        };
    }
    w
}

/// IQ3_XXS: d | 64 grid indices | 8 × u32 (four 7-bit sign groups, 4-bit scale).
pub(super) fn iq3_xxs(x: &[f32], qw: Option<&[f32]>, out: &mut Vec<u8>) {
    let g = grid_xxs();
    let sigma2 = sigma2(x);
    let mut q3 = [0u8; 64];
    let mut sas = [0u32; 8];
    let mut scales = [0f32; 8];
    let mut max_scale = 0f32;
    for ib in 0..8 {
        let xb = &x[32 * ib..32 * ib + 32];
        let weight = block_weights(xb, qw.map(|q| &q[32 * ib..]), sigma2);
        let mut xval = [0f32; 32];
        let mut signs = [0u8; 4];
        magnitudes(xb, &weight, true, &mut xval, &mut signs);
        let max = max_of(&xval);
        if max < 1e-8 {
            scales[ib] = 0.0;
            continue;
        }
        let mut l = [0i8; 32];
        let mut scale = search_block(g, &xval, &weight, max, 15, true, false, &mut l);
        if scale < 0.0 {
            scale = -scale;
            for s in &mut signs {
                *s = !*s & 127;
            }
        }
        for k in 0..8 {
            q3[8 * ib + k] = g.index(&l[4 * k..4 * k + 4], 3) as u8;
        }
        sas[ib] = u32::from(signs[0])
            | (u32::from(signs[1]) << 7)
            | (u32::from(signs[2]) << 14)
            | (u32::from(signs[3]) << 21);
        scales[ib] = scale;
        max_scale = if max_scale > scale { max_scale } else { scale };
    }
    if max_scale == 0.0 {
        out.extend_from_slice(&[0u8; 98]);
        return;
    }
    let d = max_scale / 31.0;
    out.extend_from_slice(&ggml_f16(d * 1.0125).to_le_bytes());
    let id = 1.0 / d;
    for ib in 0..8 {
        let l = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 15);
        sas[ib] |= (l as u32) << 28;
    }
    out.extend_from_slice(&q3);
    for s in sas {
        out.extend_from_slice(&s.to_le_bytes());
    }
}

/// IQ3_S: d | qs[64] | qh[8] | signs[32] | scales[4].
pub(super) fn iq3_s(x: &[f32], qw: Option<&[f32]>, out: &mut Vec<u8>) {
    let g = grid_s();
    let sigma2 = sigma2(x);
    let mut y = [0u8; 110];
    let (qs_at, qh_at, signs_at, scales_at) = (2, 66, 74, 106);
    // ggml advances its qs and signs pointers only past non-zero blocks
    // (a zero block's `continue` skips the step), so later blocks land earlier.
    let (mut qs, mut sg) = (qs_at, signs_at);
    let mut scales = [0f32; 8];
    let mut max_scale = 0f32;
    for ib in 0..8 {
        let xb = &x[32 * ib..32 * ib + 32];
        let weight = block_weights(xb, qw.map(|q| &q[32 * ib..]), sigma2);
        let mut xval = [0f32; 32];
        let mut signs = [0u8; 4];
        magnitudes(xb, &weight, false, &mut xval, &mut signs);
        let max = max_of(&xval);
        if max == 0.0 {
            scales[ib] = 0.0;
            continue;
        }
        let mut l = [0i8; 32];
        let mut scale = search_block(g, &xval, &weight, max, 9, false, true, &mut l);
        if scale < 0.0 {
            scale = -scale;
            for s in &mut signs {
                *s = !*s;
            }
        }
        for k in 0..8 {
            let gi = g.index(&l[4 * k..4 * k + 4], 3);
            y[qs + k] = (gi & 255) as u8;
            y[qh_at + (ib * 8 + k) / 8] |= ((gi >> 8) << ((ib * 8 + k) % 8)) as u8;
        }
        qs += 8;
        y[sg..sg + 4].copy_from_slice(&signs);
        sg += 4;
        scales[ib] = scale;
        max_scale = if max_scale > scale { max_scale } else { scale };
    }
    if max_scale != 0.0 {
        let d = max_scale / 31.0;
        y[..2].copy_from_slice(&ggml_f16(d * 1.033).to_le_bytes());
        let id = 1.0 / d;
        for ib in (0..8).step_by(2) {
            let l1 = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 15);
            let l2 = nearest_int(0.5 * (id * scales[ib + 1] - 1.0)).clamp(0, 15);
            y[scales_at + ib / 2] = (l1 | (l2 << 4)) as u8;
        }
    }
    out.extend_from_slice(&y);
}
