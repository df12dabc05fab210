//! IQ2_XXS, IQ2_XS and IQ2_S: groups of eight magnitudes `2l + 1` (l in
//! 0..3) from 256-, 512- and 1024-entry grids, signs apart, as ggml's
//! `quantize_row_iq2_{xxs,xs,s}_impl` choose them. IQ2_XXS and IQ2_XS need
//! importance weights (ggml asserts without); IQ2_S falls back to
//! `sigma2 / 4 + x²`.

use super::ggml_f16;
use super::grid::NeighbourGrid;
use super::groups::{magnitudes, max_of, sigma2, sum_sq};
use super::search::{make_qp_quants, nearest_int, GROUP_MAX_EPS};
use crate::grids::{IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID};
use std::sync::OnceLock;

type Grid2 = NeighbourGrid<8>;

/// Codes of eight 2-bit levels up to all-2 (ggml's `kmap_size`).
const CODES: usize = 43692;

/// A dequantization grid ({8, 25, 43} per value, level 0..3) in `2l + 1`.
fn levels_grid(g: &[[i8; 8]]) -> Vec<[i8; 8]> {
    g.iter()
        .map(|row| {
            row.map(|v| match v {
                8 => 1,
                25 => 3,
                _ => 5,
            })
        })
        .collect()
}

fn grid_xxs() -> &'static Grid2 {
    static G: OnceLock<Grid2> = OnceLock::new();
    G.get_or_init(|| Grid2::build(levels_grid(&IQ2XXS_GRID), 2, CODES, 2))
}

fn grid_xs() -> &'static Grid2 {
    static G: OnceLock<Grid2> = OnceLock::new();
    G.get_or_init(|| Grid2::build(levels_grid(&IQ2XS_GRID), 2, CODES, 2))
}

fn grid_s() -> &'static Grid2 {
    static G: OnceLock<Grid2> = OnceLock::new();
    G.get_or_init(|| Grid2::build(levels_grid(&IQ2S_GRID), 2, CODES, 1))
}

/// Σ w·x·q and Σ w·q² for levels `l` (q = 2l + 1).
fn sums<const N: usize>(weight: &[f32; N], xval: &[f32; N], l: &[i8; N]) -> (f32, f32) {
    let (mut sumqx, mut sumq2) = (0f32, 0f32);
    for i in 0..N {
        let (w, q) = (weight[i], f32::from(2 * l[i] + 1));
        sumqx += w * xval[i] * q;
        sumq2 += w * q * q;
    }
    (sumqx, sumq2)
}

/// Levels of each group at inverse scale `id`, snapped to the grid (off-grid
/// groups to their best neighbour at `scale`); returns which were on it.
fn snap<const N: usize, const G: usize>(
    g: &Grid2,
    xval: &[f32; N],
    waux: &[f32; N],
    id: f32,
    scale: f32,
    l: &mut [i8; N],
    only: Option<&[bool; G]>,
) -> [bool; G] {
    let mut on = [true; G];
    for k in 0..G {
        if only.is_some_and(|o| o[k]) {
            continue;
        }
        for i in 0..8 {
            l[8 * k + i] = nearest_int(0.5 * (id * xval[8 * k + i] - 1.0)).clamp(0, 2) as i8;
        }
        let code = Grid2::code(&l[8 * k..8 * k + 8], 2);
        if g.map[code] < 0 {
            on[k] = false;
            g.best_neighbour(
                code,
                &xval[8 * k..],
                &waux[8 * k..],
                scale,
                &mut l[8 * k..8 * k + 8],
            );
        }
    }
    on
}

/// IQ2_XXS: d | 8 × (u32 of four grid indices, u32 of four 7-bit sign groups and a 4-bit scale).
pub(super) fn iq2_xxs(x: &[f32], qw: &[f32], out: &mut Vec<u8>) {
    let g = grid_xxs();
    let sigma2 = sum_sq(x) / 256.0;
    let mut q2 = [0u32; 16];
    let mut scales = [0f32; 8];
    let mut max_scale = 0f32;
    for ib in 0..8 {
        let xb = &x[32 * ib..32 * ib + 32];
        let mut weight = [0f32; 32];
        for i in 0..32 {
            weight[i] = qw[32 * ib + i] * (sigma2 + xb[i] * xb[i]).sqrt();
        }
        let waux = weight.map(f32::sqrt);
        let mut xval = [0f32; 32];
        let mut signs = [0u8; 4];
        magnitudes(xb, &weight, true, &mut xval, &mut signs);
        let max = max_of(&xval);
        if max < GROUP_MAX_EPS {
            scales[ib] = 0.0;
            continue;
        }
        let mut lq = [0u8; 32];
        let mut scale = make_qp_quants(4, &xval, &mut lq, &weight);
        let mut l = lq.map(|v| v as i8);
        let eff_max = scale * 3.0;
        if eff_max <= 0.0 {
            scales[ib] = 0.0;
            continue;
        }
        let mut best = 0f32;
        let mut laux = [0i8; 32];
        for is in -6..=6 {
            let id = (5.0 + is as f32 * 0.1) / eff_max;
            snap::<32, 4>(g, &xval, &waux, id, 1.0 / id, &mut laux, None);
            let (sumqx, sumq2) = sums(&weight, &xval, &laux);
            if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
                scale = sumqx / sumq2;
                best = scale * sumqx;
                l = laux;
            }
        }
        if scale > 0.0 {
            let id = 1.0 / scale;
            snap::<32, 4>(g, &xval, &waux, id, scale, &mut l, None);
            // Every group is re-read from its grid entry.
            for k in 0..4 {
                let pg = &g.grid[g.index(&l[8 * k..8 * k + 8], 2)];
                for i in 0..8 {
                    l[8 * k + i] = (pg[i] - 1) / 2;
                }
            }
            let (sumqx, sumq2) = sums(&weight, &xval, &l);
            if sumq2 > 0.0 {
                scale = sumqx / sumq2;
            }
        }
        if scale < 0.0 {
            scale = -scale;
            for s in &mut signs {
                *s = !*s & 127;
            }
        }
        for k in 0..4 {
            q2[2 * ib] |= (g.index(&l[8 * k..8 * k + 8], 2) as u32) << (8 * k);
            q2[2 * ib + 1] |= u32::from(signs[k]) << (7 * k);
        }
        scales[ib] = scale;
        max_scale = if max_scale > scale { max_scale } else { scale };
    }
    if max_scale == 0.0 {
        out.extend_from_slice(&[0u8; 66]);
        return;
    }
    let d = max_scale / 31.0;
    out.extend_from_slice(&ggml_f16(d).to_le_bytes());
    let id = 1.0 / d;
    for ib in 0..8 {
        let l = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 15);
        q2[2 * ib + 1] |= (l as u32) << 28;
    }
    for v in q2 {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// The search of IQ2_XS and IQ2_S over one 16-value block: returns the
/// scale (and levels in `l`).
fn search16(g: &Grid2, xval: &[f32; 16], weight: &[f32; 16], max: f32, l: &mut [i8; 16]) -> f32 {
    let waux = weight.map(f32::sqrt);
    let mut best = 0f32;
    let mut scale = max / 5.0;
    let mut on_grid = [true; 2];
    let mut laux = [0i8; 16];
    for is in -9..=9 {
        let id = (5.0 + is as f32 * 0.1) / max;
        let on = snap::<16, 2>(g, xval, &waux, id, 1.0 / id, &mut laux, None);
        let (sumqx, sumq2) = sums(weight, xval, &laux);
        if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
            scale = sumqx / sumq2;
            best = scale * sumqx;
            *l = laux;
            on_grid = on;
        }
    }
    if on_grid.iter().any(|&o| !o) && scale > 0.0 {
        let id = 1.0 / scale;
        snap::<16, 2>(g, xval, &waux, id, scale, l, Some(&on_grid));
        let (sumqx, sumq2) = sums(weight, xval, l);
        if sumq2 > 0.0 {
            scale = sumqx / sumq2;
        }
    }
    scale
}

/// The 4-bit block scales of 16 blocks against `d = max_scale / 31`.
fn nibble_scales(scales: &[f32; 16], d: f32) -> [u8; 8] {
    let id = 1.0 / d;
    let mut sc = [0u8; 8];
    for ib in 0..16 {
        let l = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 15) as u8;
        if ib % 2 == 0 {
            sc[ib / 2] = l;
        } else {
            sc[ib / 2] |= l << 4;
        }
    }
    sc
}

/// IQ2_XS: d | 32 × u16 (9-bit grid index, 7 sign bits) | scales[8].
pub(super) fn iq2_xs(x: &[f32], qw: &[f32], out: &mut Vec<u8>) {
    let g = grid_xs();
    let sigma2 = sum_sq(x) / 256.0;
    let mut q2 = [0u16; 32];
    let mut scales = [0f32; 16];
    let mut max_scale = 0f32;
    for ib in 0..16 {
        let xb = &x[16 * ib..16 * ib + 16];
        let mut weight = [0f32; 16];
        for i in 0..16 {
            weight[i] = qw[16 * ib + i] * (sigma2 + xb[i] * xb[i]).sqrt();
        }
        let mut xval = [0f32; 16];
        let mut signs = [0u8; 2];
        magnitudes(xb, &weight, true, &mut xval, &mut signs);
        let max = max_of(&xval);
        if max < GROUP_MAX_EPS {
            scales[ib] = 0.0;
            continue;
        }
        let mut l = [0i8; 16];
        let mut scale = search16(g, &xval, &weight, max, &mut l);
        if scale < 0.0 {
            scale = -scale;
            for s in &mut signs {
                *s = !*s & 127;
            }
        }
        for k in 0..2 {
            q2[2 * ib + k] = g.index(&l[8 * k..8 * k + 8], 2) as u16 | (u16::from(signs[k]) << 9);
        }
        scales[ib] = scale;
        max_scale = if max_scale > scale { max_scale } else { scale };
    }
    if max_scale == 0.0 {
        out.extend_from_slice(&[0u8; 74]);
        return;
    }
    let d = max_scale / 31.0;
    out.extend_from_slice(&ggml_f16(d).to_le_bytes());
    for v in q2 {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&nibble_scales(&scales, d));
}

/// IQ2_S: d | qs[32] grid low bytes | signs[32] | qh[8] | scales[8].
pub(super) fn iq2_s(x: &[f32], qw: Option<&[f32]>, out: &mut Vec<u8>) {
    let g = grid_s();
    let sigma2 = sigma2(x);
    let mut y = [0u8; 82];
    let mut scales = [0f32; 16];
    let mut max_scale = 0f32;
    for ib in 0..16 {
        let xb = &x[16 * ib..16 * ib + 16];
        let mut weight = [0f32; 16];
        for i in 0..16 {
            weight[i] = match qw {
                Some(q) => q[16 * ib + i] * (sigma2 + xb[i] * xb[i]).sqrt(),
                None => 0.25 * sigma2 + xb[i] * xb[i],
            };
        }
        let mut xval = [0f32; 16];
        let mut signs = [0u8; 2];
        magnitudes(xb, &weight, false, &mut xval, &mut signs);
        let max = max_of(&xval);
        if max < 1e-8 {
            scales[ib] = 0.0;
            continue;
        }
        let mut l = [0i8; 16];
        let mut scale = search16(g, &xval, &weight, max, &mut l);
        if scale < 0.0 {
            scale = -scale;
            for s in &mut signs {
                *s = !*s;
            }
        }
        for k in 0..2 {
            let gi = g.index(&l[8 * k..8 * k + 8], 2);
            let i8 = 2 * ib + k;
            y[2 + i8] = (gi & 255) as u8;
            y[2 + 64 + i8 / 4] |= ((gi >> 8) << (2 * (i8 % 4))) as u8;
            y[2 + 32 + i8] = signs[k];
        }
        scales[ib] = scale;
        max_scale = if max_scale > scale { max_scale } else { scale };
    }
    if max_scale != 0.0 {
        let d = max_scale / 31.0;
        y[..2].copy_from_slice(&ggml_f16(d * 0.9875).to_le_bytes());
        y[74..82].copy_from_slice(&nibble_scales(&scales, d));
    }
    out.extend_from_slice(&y);
}
