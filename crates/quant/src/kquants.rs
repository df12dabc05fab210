//! K-quants: 256-element super-blocks with per-sub-block scales (Q2_K–Q6_K).
//! Element order and arithmetic follow gguf-py's reshapes step by step.

use super::{f16_at, fixed};

/// Q2_K: scales[16] | qs[64] | d | dmin. 16 sub-blocks of 16 with 2-bit values.
#[inline(always)]
pub(crate) fn q2_k(b: &[u8], out: &mut [f32]) {
    let Some((b, out)) = fixed::<84, 256>(b, out) else {
        return;
    };
    let (scales, qs) = (&b[0..16], &b[16..80]);
    let (d, dmin) = (f16_at(b, 80), f16_at(b, 82));
    let mut dl = [0f32; 16];
    let mut ml = [0f32; 16];
    for i in 0..16 {
        dl[i] = d * f32::from(scales[i] & 0x0f);
        ml[i] = dmin * f32::from(scales[i] >> 4);
    }
    // Element (g, s, l) = bits 2s of qs[32g + l], at index 128g + 32s + l.
    for g in 0..2 {
        for s in 0..4 {
            for l in 0..32 {
                let idx = 128 * g + 32 * s + l;
                let q = f32::from((qs[32 * g + l] >> (2 * s)) & 3);
                out[idx] = dl[idx / 16] * q - ml[idx / 16];
            }
        }
    }
}

/// Q3_K: hmask[32] | qs[64] | scales[12] | d. 6-bit signed scales, 3-bit values
/// whose high bit is stored inverted.
#[inline(always)]
pub(crate) fn q3_k(b: &[u8], out: &mut [f32]) {
    let Some((b, out)) = fixed::<110, 256>(b, out) else {
        return;
    };
    let (hmask, qs, sc) = (&b[0..32], &b[32..96], &b[96..108]);
    let d = f16_at(b, 108);
    let mut dl = [0f32; 16];
    for (i, v) in dl.iter_mut().enumerate() {
        let lo = (sc[i % 8] >> (4 * (i / 8))) & 0x0f;
        let hi = (sc[8 + i % 4] >> (2 * (i / 4))) & 0x03;
        *v = d * f32::from(((lo | (hi << 4)) as i8) - 32);
    }
    let (Some(out), Ok(hmask)) = (out.get_mut(..256), <&[u8; 32]>::try_from(hmask)) else {
        return;
    };
    // Element 128g + 32s + l: bits 2s of qs[32g + l], high bit (inverted)
    // bit 4g + s of hmask[l]; its scale is dl[(128g + 32s + l) / 16].
    for g in 0..2 {
        let Ok(lows) = <&[u8; 32]>::try_from(&qs[32 * g..32 * g + 32]) else {
            return;
        };
        for s in 0..4 {
            let base = 128 * g + 32 * s;
            let bit = 4 * g + s;
            let mut q = [0i8; 32];
            for ((q, &l), &h) in q.iter_mut().zip(lows).zip(hmask) {
                let ql = ((l >> (2 * s)) & 3) as i8;
                let qh = ((h >> bit) & 1) ^ 1;
                *q = ql - ((qh << 2) as i8);
            }
            let (d0, d1) = (dl[base / 16], dl[base / 16 + 1]);
            let (o0, o1) = out[base..base + 32].split_at_mut(16);
            for (o, &v) in o0.iter_mut().zip(&q[..16]) {
                *o = d0 * f32::from(v);
            }
            for (o, &v) in o1.iter_mut().zip(&q[16..]) {
                *o = d1 * f32::from(v);
            }
        }
    }
}

/// The 6-bit scales and mins of Q4_K/Q5_K, unpacked as gguf-py's `get_scale_min`.
fn scale_min(s: &[u8]) -> ([u8; 8], [u8; 8]) {
    let (d, m, md) = (&s[0..4], &s[4..8], &s[8..12]);
    let mut sc = [0u8; 8];
    let mut mn = [0u8; 8];
    for k in 0..4 {
        sc[k] = d[k] & 0x3f;
        sc[k + 4] = (md[k] & 0x0f) | ((d[k] >> 2) & 0x30);
        mn[k] = m[k] & 0x3f;
        mn[k + 4] = (md[k] >> 4) | ((m[k] >> 2) & 0x30);
    }
    (sc, mn)
}

/// Q4_K: d | dmin | scales[12] | qs[128]. 8 sub-blocks of 32 with 4-bit values.
#[inline(always)]
pub(crate) fn q4_k(b: &[u8], out: &mut [f32]) {
    let Some((b, out)) = fixed::<144, 256>(b, out) else {
        return;
    };
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let (sc, mn) = scale_min(&b[4..16]);
    let qs = &b[16..144];
    // Sub-blocks 2g and 2g + 1: the low and high nibbles of qs[32g..32g + 32],
    // both from one pass over those bytes (as Q4_0 does).
    for (g, (o, q)) in out.chunks_exact_mut(64).zip(qs.chunks_exact(32)).enumerate() {
        let (lo, hi) = o.split_at_mut(32);
        let (Ok(lo), Ok(hi), Ok(q)) = (
            <&mut [f32; 32]>::try_from(lo),
            <&mut [f32; 32]>::try_from(hi),
            <&[u8; 32]>::try_from(q),
        ) else {
            return;
        };
        let (d0, m0) = (d * f32::from(sc[2 * g]), dmin * f32::from(mn[2 * g]));
        let (d1, m1) = (d * f32::from(sc[2 * g + 1]), dmin * f32::from(mn[2 * g + 1]));
        for ((l, h), &x) in lo.iter_mut().zip(hi.iter_mut()).zip(q) {
            *l = d0 * f32::from(x & 0x0f) - m0;
            *h = d1 * f32::from(x >> 4) - m1;
        }
    }
}

/// `ds × v − dm` for a sub-block of 32 (its own loop, so it compiles to
/// vector code rather than being unrolled into scalar steps).
#[inline(always)]
fn scaled_shifted(ds: f32, dm: f32, v: &[u8; 32], out: &mut [f32; 32]) {
    for (o, &x) in out.iter_mut().zip(v) {
        *o = ds * f32::from(x) - dm;
    }
}

/// Q5_K: d | dmin | scales[12] | qh[32] | qs[128]. As Q4_K plus a fifth bit.
#[inline(always)]
pub(crate) fn q5_k(b: &[u8], out: &mut [f32]) {
    let Some((b, out)) = fixed::<176, 256>(b, out) else {
        return;
    };
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let (sc, mn) = scale_min(&b[4..16]);
    let (qh, qs) = (&b[16..48], &b[48..176]);
    let Ok(qh) = <&[u8; 32]>::try_from(qh) else { return };
    for (sub, o) in out.chunks_exact_mut(32).enumerate() {
        let (g, h) = (sub / 2, sub % 2);
        let (ds, dm) = (d * f32::from(sc[sub]), dmin * f32::from(mn[sub]));
        let (Ok(o), Ok(q)) = (
            <&mut [f32; 32]>::try_from(o),
            <&[u8; 32]>::try_from(&qs[32 * g..32 * g + 32]),
        ) else {
            return;
        };
        let shift = 4 * h as u32;
        let mut v = [0u8; 32];
        for ((v, &x), &hb) in v.iter_mut().zip(q).zip(qh) {
            *v = ((x >> shift) & 0x0f) | (((hb >> sub) & 1) << 4);
        }
        scaled_shifted(ds, dm, &v, o);
    }
}

/// Q6_K: ql[128] | qh[64] | scales[16] (i8) | d. 16 sub-blocks of 16, 6-bit values.
#[inline(always)]
pub(crate) fn q6_k(b: &[u8], out: &mut [f32]) {
    let Some((b, out)) = fixed::<210, 256>(b, out) else {
        return;
    };
    let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
    let d = f16_at(b, 208);
    // Element 128g + 64h + 32c + m: its low nibble is ql[64g + 32c + m] >> 4h,
    // its high bits qh[32g + m] >> 2(2h + c); each scale covers 16 elements.
    for (k, o) in out.chunks_exact_mut(32).enumerate() {
        let (g, h, c) = (k / 4, (k / 2) % 2, k % 2);
        let (Ok(lows), Ok(highs)) = (
            <&[u8; 32]>::try_from(&ql[64 * g + 32 * c..64 * g + 32 * c + 32]),
            <&[u8; 32]>::try_from(&qh[32 * g..32 * g + 32]),
        ) else {
            return;
        };
        let (lo_shift, hi_shift) = (4 * h as u32, 2 * (2 * h + c) as u32);
        let mut q = [0i8; 32];
        for ((q, &l), &hb) in q.iter_mut().zip(lows).zip(highs) {
            let lo = (l >> lo_shift) & 0x0f;
            let hi = (hb >> hi_shift) & 0x03;
            *q = ((lo | (hi << 4)) as i8) - 32;
        }
        let (d0, d1) = (d * f32::from(sc[2 * k] as i8), d * f32::from(sc[2 * k + 1] as i8));
        let (o0, o1) = o.split_at_mut(16);
        scaled(d0, &q[..16], o0);
        scaled(d1, &q[16..], o1);
    }
}

/// `d × q` for 16 values (fixed sizes: vector code, no bounds checks).
#[inline(always)]
fn scaled(d: f32, q: &[i8], out: &mut [f32]) {
    let (Ok(q), Ok(out)) = (<&[i8; 16]>::try_from(q), <&mut [f32; 16]>::try_from(out)) else {
        return;
    };
    for (o, &v) in out.iter_mut().zip(q) {
        *o = d * f32::from(v);
    }
}
