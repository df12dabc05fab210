//! The IQ ("importance") quants: grid lookups with sign patterns (IQ2_*,
//! IQ3_*), ternary grids with a shift (IQ1_*), and non-linear 4-bit levels
//! (IQ4_*). Grids come from gguf-py (see grids.rs).

use super::grids::*;
use super::{f16_at, fixed, nibble_lookup, u16_at, u32_at, widen16};

/// `db × grid[j] × ±1` for a group of 8, the sign − where bit j of `signs`
/// is set (a multiply by −1 as in gguf-py, not a sign flip: NaN keeps its
/// sign). Fixed sizes, so the group is one vector step.
#[inline(always)]
fn signed_group(db: f32, grid: &[i8; 8], signs: u8, out: &mut [f32]) {
    let Ok(out) = <&mut [f32; 8]>::try_from(out) else {
        return;
    };
    for (j, (o, &g)) in out.iter_mut().zip(grid).enumerate() {
        let s = if signs & (1 << j) == 0 { 1.0 } else { -1.0 };
        *o = db * f32::from(g) * s;
    }
}

/// Two 4-value grid rows as one group of 8 (the IQ3 layouts).
#[inline(always)]
fn joined(a: &[i8; 4], b: &[i8; 4]) -> [i8; 8] {
    [a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]]
}

/// IQ2_XXS: d | 8 × (u32 grid indices, u32 signs+scale). 8 sub-blocks of 32.
#[inline(always)]
pub(crate) fn iq2_xxs(b: &[u8], out: &mut [f32]) {
    let Some((b, out)) = fixed::<66, 256>(b, out) else {
        return;
    };
    let d = f16_at(b, 0);
    for (ib, sub) in out.chunks_exact_mut(32).enumerate() {
        let aux0 = u32_at(b, 2 + 8 * ib);
        let aux1 = u32_at(b, 6 + 8 * ib);
        let db = d * (0.5 + (aux1 >> 28) as f32) * 0.25;
        for (g, o) in sub.chunks_exact_mut(8).enumerate() {
            let grid = &IQ2XXS_GRID[((aux0 >> (8 * g)) & 0xff) as usize];
            let signs = KSIGNS[((aux1 >> (7 * g)) & 0x7f) as usize];
            signed_group(db, grid, signs, o);
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
    let Some((b, out)) = fixed::<74, 256>(b, out) else {
        return;
    };
    let d = f16_at(b, 0);
    let scales = nibble_scales(&b[66..74]);
    for (k, o) in out.chunks_exact_mut(8).enumerate() {
        let db = d * (0.5 + f32::from(scales[k / 2])) * 0.25;
        let q = u16_at(b, 2 + 2 * k);
        let grid = &IQ2XS_GRID[usize::from(q & 511)];
        signed_group(db, grid, KSIGNS[usize::from(q >> 9)], o);
    }
}

/// IQ2_S: d | qs[32] | signs[32] | qh[8] | scales[8]. 10-bit grid indices.
#[inline(always)]
pub(crate) fn iq2_s(b: &[u8], out: &mut [f32]) {
    let Some((b, out)) = fixed::<82, 256>(b, out) else {
        return;
    };
    let d = f16_at(b, 0);
    let (qs, signs, qh) = (&b[2..34], &b[34..66], &b[66..74]);
    let scales = nibble_scales(&b[74..82]);
    for (k, o) in out.chunks_exact_mut(8).enumerate() {
        let db = d * (0.5 + f32::from(scales[k / 2])) * 0.25;
        let high = u16::from((qh[k / 4] >> (2 * (k % 4))) & 3);
        let grid = &IQ2S_GRID[usize::from(u16::from(qs[k]) | (high << 8))];
        signed_group(db, grid, signs[k], o);
    }
}

/// IQ3_XXS: d | qs[64] (grid indices) | u32[8] (signs + 4-bit scale).
#[inline(always)]
pub(crate) fn iq3_xxs(b: &[u8], out: &mut [f32]) {
    let Some((b, out)) = fixed::<98, 256>(b, out) else {
        return;
    };
    let d = f16_at(b, 0);
    let qs = &b[2..66];
    for (ib, sub) in out.chunks_exact_mut(32).enumerate() {
        let sc = u32_at(b, 66 + 4 * ib);
        let db = d * (0.5 + (sc >> 28) as f32) * 0.5;
        for (g, o) in sub.chunks_exact_mut(8).enumerate() {
            let signs = KSIGNS[((sc >> (7 * g)) & 0x7f) as usize];
            let g1 = &IQ3XXS_GRID[usize::from(qs[8 * ib + 2 * g])];
            let g2 = &IQ3XXS_GRID[usize::from(qs[8 * ib + 2 * g + 1])];
            signed_group(db, &joined(g1, g2), signs, o);
        }
    }
}

/// IQ3_S: d | qs[64] | qh[8] | signs[32] | scales[4]. 9-bit grid indices.
#[inline(always)]
pub(crate) fn iq3_s(b: &[u8], out: &mut [f32]) {
    let Some((b, out)) = fixed::<110, 256>(b, out) else {
        return;
    };
    let d = f16_at(b, 0);
    let (qs, qh, signs, sc) = (&b[2..66], &b[66..74], &b[74..106], &b[106..110]);
    let index = |k: usize| usize::from(qs[k]) | (usize::from((qh[k / 8] >> (k % 8)) & 1) << 8);
    for (ib, sub) in out.chunks_exact_mut(32).enumerate() {
        let s = (sc[ib / 2] >> (4 * (ib % 2))) & 0x0f;
        // gguf-py computes 1 + 2s in uint8, then scales.
        let db = d * f32::from(1 + 2 * s);
        for (g, o) in sub.chunks_exact_mut(8).enumerate() {
            let g1 = &IQ3S_GRID[index(8 * ib + 2 * g)];
            let g2 = &IQ3S_GRID[index(8 * ib + 2 * g + 1)];
            signed_group(db, &joined(g1, g2), signs[4 * ib + g], o);
        }
    }
}

const IQ1_DELTA: f32 = 0.125;

/// `dl × (grid[j] + delta)` for a group of 8.
#[inline(always)]
fn shifted_group(dl: f32, grid: &[i8; 8], delta: f32, out: &mut [f32]) {
    let Ok(out) = <&mut [f32; 8]>::try_from(out) else {
        return;
    };
    for (o, &g) in out.iter_mut().zip(grid) {
        *o = dl * (f32::from(g) + delta);
    }
}

/// IQ1_S: d | qs[32] | qh u16[8] (3-bit scale, delta sign, 4 × 3 index bits).
#[inline(always)]
pub(crate) fn iq1_s(b: &[u8], out: &mut [f32]) {
    let Some((b, out)) = fixed::<50, 256>(b, out) else {
        return;
    };
    let d = f16_at(b, 0);
    let qs = &b[2..34];
    for (ib, sub) in out.chunks_exact_mut(32).enumerate() {
        let qh = u16_at(b, 34 + 2 * ib);
        let dl = d * f32::from(2 * ((qh >> 12) & 7) + 1);
        let delta = if qh & 0x8000 == 0 { IQ1_DELTA } else { -IQ1_DELTA };
        for (g, o) in sub.chunks_exact_mut(8).enumerate() {
            let idx = usize::from(qs[4 * ib + g]) | (usize::from((qh >> (3 * g)) & 7) << 8);
            shifted_group(dl, &IQ1S_GRID[idx], delta, o);
        }
    }
}

/// IQ1_M: qs[32] | qh[16] | scales u16[4] (3-bit scales; the f16 super-scale
/// is spread over their top nibbles).
#[inline(always)]
pub(crate) fn iq1_m(b: &[u8], out: &mut [f32]) {
    let Some((b, out)) = fixed::<56, 256>(b, out) else {
        return;
    };
    let (qs, qh) = (&b[0..32], &b[32..48]);
    let sc = [u16_at(b, 48), u16_at(b, 50), u16_at(b, 52), u16_at(b, 54)];
    let bits =
        ((sc[0] & 0xf000) >> 12) | ((sc[1] & 0xf000) >> 8) | ((sc[2] & 0xf000) >> 4) | (sc[3] & 0xf000);
    let d = tensorcast_core::cast::float::f16_to_f32(bits);
    // Group k (8 values) has scale k / 4 of the 3-bit fields, counted
    // across the four u16s; its index high bits and delta sign are nibble
    // k of qh. Worked out for all groups first, so the second loop is one
    // vector step per group (mixed in one loop, LLVM vectorized across
    // groups with byte-by-byte gathers).
    let mut dl = [0f32; 32];
    let mut row = [0usize; 32];
    let mut delta = [0f32; 32];
    for k in 0..32 {
        let i = k / 2;
        dl[k] = d * f32::from(2 * ((sc[i / 4] >> (3 * (i % 4))) & 7) + 1);
        let v = qh[k / 2] >> (4 * (k % 2));
        row[k] = usize::from(qs[k]) | (usize::from(v & 7) << 8);
        delta[k] = if v & 0x08 == 0 { IQ1_DELTA } else { -IQ1_DELTA };
    }
    for (k, o) in out.chunks_exact_mut(8).enumerate() {
        shifted_group(dl[k], &IQ1S_GRID[row[k] & 2047], delta[k], o);
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
