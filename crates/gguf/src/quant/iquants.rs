//! The IQ ("importance") quants: grid lookups with sign patterns (IQ2_*,
//! IQ3_*), ternary grids with a shift (IQ1_*), and non-linear 4-bit levels
//! (IQ4_*). Grids come from gguf-py (see grids.rs).

use super::grids::*;
use super::{f16_at, fixed, nibble_lookup, u16_at, u32_at, widen16};

/// +1 or -1 for bit `j` of a sign byte.
#[inline(always)]
fn sign(bits: u8, j: usize) -> f32 {
    if (bits >> j) & 1 == 0 {
        1.0
    } else {
        -1.0
    }
}

/// IQ2_XXS: d | 8 × (u32 grid indices, u32 signs+scale). 8 sub-blocks of 32.
#[inline(always)]
pub(crate) fn iq2_xxs(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 0);
    for ib in 0..8 {
        let aux0 = u32_at(b, 2 + 8 * ib);
        let aux1 = u32_at(b, 6 + 8 * ib);
        let db = d * (0.5 + (aux1 >> 28) as f32) * 0.25;
        for g in 0..4 {
            let grid = &IQ2XXS_GRID[((aux0 >> (8 * g)) & 0xff) as usize];
            let signs = KSIGNS[((aux1 >> (7 * g)) & 0x7f) as usize];
            for j in 0..8 {
                out[32 * ib + 8 * g + j] = db * f32::from(grid[j]) * sign(signs, j);
            }
        }
    }
}

/// 16 four-bit scales from 8 bytes, low nibble first.
fn nibble_scales(s: &[u8]) -> [u8; 16] {
    let mut v = [0u8; 16];
    for k in 0..8 {
        v[2 * k] = s[k] & 0x0f;
        v[2 * k + 1] = s[k] >> 4;
    }
    v
}

/// IQ2_XS: d | qs u16[32] (9-bit grid index, 7-bit sign index) | scales[8].
#[inline(always)]
pub(crate) fn iq2_xs(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 0);
    let scales = nibble_scales(&b[66..74]);
    for (i, &s) in scales.iter().enumerate() {
        let db = d * (0.5 + f32::from(s)) * 0.25;
        for g in 0..2 {
            let q = u16_at(b, 2 + 2 * (2 * i + g));
            let grid = &IQ2XS_GRID[(q & 511) as usize];
            let signs = KSIGNS[(q >> 9) as usize];
            for j in 0..8 {
                out[16 * i + 8 * g + j] = db * f32::from(grid[j]) * sign(signs, j);
            }
        }
    }
}

/// IQ2_S: d | qs[32] | signs[32] | qh[8] | scales[8]. 10-bit grid indices.
#[inline(always)]
pub(crate) fn iq2_s(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 0);
    let (qs, signs, qh) = (&b[2..34], &b[34..66], &b[66..74]);
    let scales = nibble_scales(&b[74..82]);
    for (i, &s) in scales.iter().enumerate() {
        let db = d * (0.5 + f32::from(s)) * 0.25;
        for g in 0..2 {
            let k = 2 * i + g;
            let high = u16::from((qh[k / 4] >> (2 * (k % 4))) & 3);
            let grid = &IQ2S_GRID[(u16::from(qs[k]) | (high << 8)) as usize];
            for j in 0..8 {
                out[16 * i + 8 * g + j] = db * f32::from(grid[j]) * sign(signs[k], j);
            }
        }
    }
}

/// IQ3_XXS: d | qs[64] (grid indices) | u32[8] (signs + 4-bit scale).
#[inline(always)]
pub(crate) fn iq3_xxs(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 0);
    let qs = &b[2..66];
    for ib in 0..8 {
        let sc = u32_at(b, 66 + 4 * ib);
        let db = d * (0.5 + (sc >> 28) as f32) * 0.5;
        for g in 0..4 {
            let signs = KSIGNS[((sc >> (7 * g)) & 0x7f) as usize];
            let g1 = &IQ3XXS_GRID[qs[8 * ib + 2 * g] as usize];
            let g2 = &IQ3XXS_GRID[qs[8 * ib + 2 * g + 1] as usize];
            for j in 0..8 {
                let v = if j < 4 { g1[j] } else { g2[j - 4] };
                out[32 * ib + 8 * g + j] = db * f32::from(v) * sign(signs, j);
            }
        }
    }
}

/// IQ3_S: d | qs[64] | qh[8] | signs[32] | scales[4]. 9-bit grid indices.
#[inline(always)]
pub(crate) fn iq3_s(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 0);
    let (qs, qh, signs, sc) = (&b[2..66], &b[66..74], &b[74..106], &b[106..110]);
    let index = |k: usize| usize::from(qs[k]) | (usize::from((qh[k / 8] >> (k % 8)) & 1) << 8);
    for ib in 0..8 {
        let s = (sc[ib / 2] >> (4 * (ib % 2))) & 0x0f;
        // gguf-py computes 1 + 2s in uint8, then scales.
        let db = d * f32::from(1 + 2 * s);
        for g in 0..4 {
            let g1 = &IQ3S_GRID[index(8 * ib + 2 * g)];
            let g2 = &IQ3S_GRID[index(8 * ib + 2 * g + 1)];
            for j in 0..8 {
                let v = if j < 4 { g1[j] } else { g2[j - 4] };
                out[32 * ib + 8 * g + j] = db * f32::from(v) * sign(signs[4 * ib + g], j);
            }
        }
    }
}

const IQ1_DELTA: f32 = 0.125;

/// IQ1_S: d | qs[32] | qh u16[8] (3-bit scale, delta sign, 4 × 3 index bits).
#[inline(always)]
pub(crate) fn iq1_s(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 0);
    let qs = &b[2..34];
    for ib in 0..8 {
        let qh = u16_at(b, 34 + 2 * ib);
        let dl = d * f32::from(2 * ((qh >> 12) & 7) + 1);
        let delta = if qh & 0x8000 == 0 { IQ1_DELTA } else { -IQ1_DELTA };
        for g in 0..4 {
            let idx = usize::from(qs[4 * ib + g]) | (usize::from((qh >> (3 * g)) & 7) << 8);
            let grid = &IQ1S_GRID[idx];
            for j in 0..8 {
                out[32 * ib + 8 * g + j] = dl * (f32::from(grid[j]) + delta);
            }
        }
    }
}

/// IQ1_M: qs[32] | qh[16] | scales u16[4] (3-bit scales; the f16 super-scale
/// is spread over their top nibbles).
#[inline(always)]
pub(crate) fn iq1_m(b: &[u8], out: &mut [f32]) {
    let (qs, qh) = (&b[0..32], &b[32..48]);
    let sc = [u16_at(b, 48), u16_at(b, 50), u16_at(b, 52), u16_at(b, 54)];
    let bits =
        ((sc[0] & 0xf000) >> 12) | ((sc[1] & 0xf000) >> 8) | ((sc[2] & 0xf000) >> 4) | (sc[3] & 0xf000);
    let d = tensorcast_core::cast::float::f16_to_f32(bits);
    for i in 0..16 {
        // Scale i covers elements 16i .. 16i + 16.
        let s = (sc[i / 4] >> (3 * (i % 4))) & 7;
        let dl = d * f32::from(2 * s + 1);
        for g2 in 0..2 {
            let k = 2 * i + g2;
            let v = qh[k / 2] >> (4 * (k % 2));
            let idx = usize::from(qs[k]) | (usize::from(v & 7) << 8);
            let delta = if v & 0x08 == 0 { IQ1_DELTA } else { -IQ1_DELTA };
            let grid = &IQ1S_GRID[idx];
            for j in 0..8 {
                out[16 * i + 8 * g2 + j] = dl * (f32::from(grid[j]) + delta);
            }
        }
    }
}

/// IQ4_NL: d | qs[16]; low nibbles are elements 0–15, high 16–31.
#[inline(always)]
pub(crate) fn iq4_nl(b: &[u8], out: &mut [f32]) {
    let Some((b, out)) = fixed::<18, 32>(b, out) else {
        return;
    };
    let (lo, hi) = out.split_at_mut(16);
    nibble_lookup::<16>(f16_at(b, 0), &IQ4NL, &b[2..18], lo, hi);
}

/// The IQ4_NL/IQ4_XS codebook as f32.
const IQ4NL: [f32; 16] = widen16(&KVALUES_IQ4NL);

/// IQ4_XS: d | scales_h u16 | scales_l[4] | qs[128]. 8 sub-blocks of 32 with
/// 6-bit signed scales.
#[inline(always)]
pub(crate) fn iq4_xs(b: &[u8], out: &mut [f32]) {
    let Some((b, out)) = fixed::<136, 256>(b, out) else {
        return;
    };
    let d = f16_at(b, 0);
    let sh = u16_at(b, 2);
    let (sl, qs) = (&b[4..8], &b[8..136]);
    for (i, o) in out.chunks_exact_mut(32).enumerate() {
        let lo = (sl[i / 2] >> (4 * (i % 2))) & 0x0f;
        let hi = ((sh >> (2 * i)) & 3) as u8;
        let dl = d * f32::from(((lo | (hi << 4)) as i8) - 32);
        let (l, h) = o.split_at_mut(16);
        nibble_lookup::<16>(dl, &IQ4NL, &qs[16 * i..16 * i + 16], l, h);
    }
}
