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
    for g in 0..4 {
        for h in 0..2 {
            let sub = 2 * g + h;
            let (ds, dm) = (d * f32::from(sc[sub]), dmin * f32::from(mn[sub]));
            for l in 0..32 {
                let q = f32::from((qs[32 * g + l] >> (4 * h)) & 0x0f);
                out[32 * sub + l] = ds * q - dm;
            }
        }
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
    for g in 0..4 {
        for h in 0..2 {
            let sub = 2 * g + h;
            let (ds, dm) = (d * f32::from(sc[sub]), dmin * f32::from(mn[sub]));
            for l in 0..32 {
                let lo = (qs[32 * g + l] >> (4 * h)) & 0x0f;
                let hi = (qh[l] >> sub) & 1;
                out[32 * sub + l] = ds * f32::from(lo | (hi << 4)) - dm;
            }
        }
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
    let out = &mut out[..256];
    // Element 128g + 64h + 32c + m: its low nibble is ql[64g + 32c + m] >> 4h,
    // its high bits qh[32g + m] >> 2(2h + c); each scale covers 16 elements.
    for g in 0..2 {
        for h in 0..2 {
            for c in 0..2 {
                let base = 128 * g + 64 * h + 32 * c;
                let lows = &ql[64 * g + 32 * c..][..32];
                let highs = &qh[32 * g..][..32];
                let mut q = [0i8; 32];
                for ((q, &l), &hb) in q.iter_mut().zip(lows).zip(highs) {
                    let lo = (l >> (4 * h)) & 0x0f;
                    let hi = (hb >> (2 * (2 * h + c))) & 0x03;
                    *q = ((lo | (hi << 4)) as i8) - 32;
                }
                let (d0, d1) = (
                    d * f32::from(sc[base / 16] as i8),
                    d * f32::from(sc[base / 16 + 1] as i8),
                );
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
}
