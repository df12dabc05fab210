//! Q2_K–Q6_K quantizers: ggml's `quantize_row_q{2..6}_K_ref`, which is what
//! `ggml_quantize_chunk` (and so `llama_model_quantize`) runs without an
//! importance matrix. Each function takes one 256-value super-block.

use super::search::{make_q3_quants, make_qkx2_quants, make_qx_quants, nearest_int, Qkx2, GROUP_MAX_EPS};
use super::{f16_value, ggml_f16};

/// The f16 bits of `v` and the f32 they stand for (ggml re-reads its
/// stored scales before choosing the final levels).
pub(super) fn stored(v: f32) -> (u16, f32) {
    let h = ggml_f16(v);
    (h, f16_value(h))
}

/// Packs 2-bit levels: byte `j/4 + l` of each 128 holds values l, l+32, l+64, l+96.
fn pack2(l: &[u8; 256], qs: &mut [u8]) {
    for j in (0..256).step_by(128) {
        for i in 0..32 {
            qs[j / 4 + i] = l[j + i] | (l[j + i + 32] << 2) | (l[j + i + 64] << 4) | (l[j + i + 96] << 6);
        }
    }
}

/// Q2_K: scales[16] | qs[64] | d | dmin.
pub(crate) fn q2_k(x: &[f32], out: &mut Vec<u8>) {
    let mut l = [0u8; 256];
    let mut weights = [0f32; 16];
    let (mut scales, mut mins) = ([0f32; 16], [0f32; 16]);
    let p = Qkx2 {
        nmax: 3,
        rmin: -0.5,
        rdelta: 0.1,
        nstep: 15,
        use_mad: true,
    };
    let (mut max_scale, mut max_min) = (0f32, 0f32);
    let (l16, _) = l.as_chunks_mut::<16>();
    for (j, (xs, lj)) in x.as_chunks::<16>().0.iter().zip(l16).enumerate() {
        for (w, v) in weights.iter_mut().zip(xs) {
            *w = v.abs();
        }
        (scales[j], mins[j]) = make_qkx2_quants(&p, xs, &weights, lj);
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }
    let mut sc = [0u8; 16];
    let (dh, d) = if max_scale > 0.0 {
        let iscale = 15.0 / max_scale;
        for j in 0..16 {
            sc[j] = nearest_int(iscale * scales[j]) as u8;
        }
        stored(max_scale / 15.0)
    } else {
        stored(0.0)
    };
    let (mh, dmin) = if max_min > 0.0 {
        let iscale = 15.0 / max_min;
        for j in 0..16 {
            sc[j] |= (nearest_int(iscale * mins[j]) << 4) as u8;
        }
        stored(max_min / 15.0)
    } else {
        stored(0.0)
    };
    q2_finish(x, &sc, (dh, d), (mh, dmin), &mut l, out);
}

/// Q2_K's final levels against the stored scales, and the block's bytes.
pub(super) fn q2_finish(
    x: &[f32],
    sc: &[u8; 16],
    (dh, d): (u16, f32),
    (mh, dmin): (u16, f32),
    l: &mut [u8; 256],
    out: &mut Vec<u8>,
) {
    for j in 0..16 {
        let dl = d * f32::from(sc[j] & 0xf);
        if dl == 0.0 {
            continue;
        }
        let dm = dmin * f32::from(sc[j] >> 4);
        for ii in 0..16 {
            l[16 * j + ii] = nearest_int((x[16 * j + ii] + dm) / dl).clamp(0, 3) as u8;
        }
    }
    let mut qs = [0u8; 64];
    pack2(l, &mut qs);
    out.extend_from_slice(sc);
    out.extend_from_slice(&qs);
    out.extend_from_slice(&dh.to_le_bytes());
    out.extend_from_slice(&mh.to_le_bytes());
}

/// Q3_K: hmask[32] | qs[64] | scales[12] | d.
pub(crate) fn q3_k(x: &[f32], out: &mut Vec<u8>) {
    let mut li = [0i8; 256];
    let mut scales = [0f32; 16];
    let (mut max_scale, mut amax) = (0f32, 0f32);
    let (l16, _) = li.as_chunks_mut::<16>();
    for (j, (xs, lj)) in x.as_chunks::<16>().0.iter().zip(l16).enumerate() {
        scales[j] = make_q3_quants(4, xs, lj, true);
        let s = scales[j].abs();
        if s > amax {
            amax = s;
            max_scale = scales[j];
        }
    }
    let mut sc = [0u8; 12];
    let dh = if max_scale != 0.0 {
        let iscale = -32.0 / max_scale;
        for j in 0..16 {
            let l = ((nearest_int(iscale * scales[j]) as i8).clamp(-32, 31) + 32) as u8;
            if j < 8 {
                sc[j] = l & 0xf;
            } else {
                sc[j - 8] |= (l & 0xf) << 4;
            }
            sc[j % 4 + 8] |= (l >> 4) << (2 * (j / 4));
        }
        ggml_f16(1.0 / iscale)
    } else {
        ggml_f16(0.0)
    };
    q3_finish(x, &sc, dh, &mut li, out);
}

/// Q3_K's final levels against the stored scales, and the block's bytes.
pub(super) fn q3_finish(x: &[f32], sc: &[u8; 12], dh: u16, li: &mut [i8; 256], out: &mut Vec<u8>) {
    let d_all = f16_value(dh);
    for j in 0..16 {
        let low = if j < 8 { sc[j] & 0xf } else { sc[j - 8] >> 4 };
        let s = (low | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) as i8 - 32;
        let d = d_all * f32::from(s);
        if d == 0.0 {
            continue;
        }
        let mut q = [0f32; 16];
        for (q, &v) in q.iter_mut().zip(&x[16 * j..16 * j + 16]) {
            *q = v / d;
        }
        for (l, &q) in li[16 * j..16 * j + 16].iter_mut().zip(&q) {
            *l = nearest_int(q).clamp(-4, 3) as i8 + 4;
        }
    }
    let mut hmask = [0u8; 32];
    let mut l = [0u8; 256];
    for j in 0..256 {
        // Branch-free: the high bit of a 3-bit level is a coin flip.
        let v = li[j] as u8;
        let high = u8::from(v > 3);
        hmask[j % 32] |= high << (j / 32);
        l[j] = v - 4 * high;
    }
    let mut qs = [0u8; 64];
    pack2(&l, &mut qs);
    out.extend_from_slice(&hmask);
    out.extend_from_slice(&qs);
    out.extend_from_slice(sc);
    out.extend_from_slice(&dh.to_le_bytes());
}

/// The 6-bit scales and minimums of Q4_K/Q5_K's eight sub-blocks, packed
/// into 12 bytes, and the two f16 super-scales.
pub(super) struct ScaleMins {
    pub packed: [u8; 12],
    pub d: (u16, f32),
    pub dmin: (u16, f32),
}

/// ggml's `get_scale_min_k4`.
fn scale_min(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Searches each 32-value sub-block (`make_qkx2_quants` with weights
/// `sqrt(mean x²) + |x|`) and packs the scales, filling `l` with the levels.
fn search_sub_blocks(x: &[f32], p: &Qkx2, l: &mut [u8; 256]) -> ScaleMins {
    let (mut scales, mut mins) = ([0f32; 8], [0f32; 8]);
    let mut weights = [0f32; 32];
    let (mut max_scale, mut max_min) = (0f32, 0f32);
    let (l32, _) = l.as_chunks_mut::<32>();
    for (j, (xs, lj)) in x.as_chunks::<32>().0.iter().zip(l32).enumerate() {
        let mut sum_x2 = 0f32;
        for &v in xs {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        for (w, v) in weights.iter_mut().zip(xs) {
            *w = av_x + v.abs();
        }
        (scales[j], mins[j]) = make_qkx2_quants(p, xs, &weights, lj);
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }
    let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let mut q = [0u8; 12];
    for j in 0..8 {
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        if j < 4 {
            q[j] = ls;
            q[j + 4] = lm;
        } else {
            q[j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
            q[j - 4] |= (ls >> 4) << 6;
            q[j] |= (lm >> 4) << 6;
        }
    }
    ScaleMins {
        packed: q,
        d: stored(max_scale / 63.0),
        dmin: stored(max_min / 63.0),
    }
}

/// Final levels `0..=nmax` of each sub-block against its stored scale and minimum.
fn requantize(x: &[f32], s: &ScaleMins, nmax: i32, l: &mut [u8; 256]) {
    for j in 0..8 {
        let (sc, m) = scale_min(j, &s.packed);
        let d = s.d.1 * f32::from(sc);
        if d == 0.0 {
            continue;
        }
        let dm = s.dmin.1 * f32::from(m);
        let mut q = [0f32; 32];
        for (q, &v) in q.iter_mut().zip(&x[32 * j..32 * j + 32]) {
            *q = (v + dm) / d;
        }
        for (l, &q) in l[32 * j..32 * j + 32].iter_mut().zip(&q) {
            *l = nearest_int(q).clamp(0, nmax) as u8;
        }
    }
}

/// Q4_K: d | dmin | scales[12] | qs[128].
pub(crate) fn q4_k(x: &[f32], out: &mut Vec<u8>) {
    let mut l = [0u8; 256];
    let p = Qkx2 {
        nmax: 15,
        rmin: -1.0,
        rdelta: 0.1,
        nstep: 20,
        use_mad: false,
    };
    let s = search_sub_blocks(x, &p, &mut l);
    q4_finish(x, &s, &mut l, out);
}

/// Q4_K's final levels against the stored scales, and the block's bytes.
pub(super) fn q4_finish(x: &[f32], s: &ScaleMins, l: &mut [u8; 256], out: &mut Vec<u8>) {
    requantize(x, s, 15, l);
    out.extend_from_slice(&s.d.0.to_le_bytes());
    out.extend_from_slice(&s.dmin.0.to_le_bytes());
    out.extend_from_slice(&s.packed);
    for j in (0..256).step_by(64) {
        out.extend((0..32).map(|i| l[j + i] | (l[j + i + 32] << 4)));
    }
}

/// Q5_K: d | dmin | scales[12] | qh[32] | qs[128].
pub(crate) fn q5_k(x: &[f32], out: &mut Vec<u8>) {
    let mut l = [0u8; 256];
    let p = Qkx2 {
        nmax: 31,
        rmin: -0.5,
        rdelta: 0.1,
        nstep: 15,
        use_mad: false,
    };
    let s = search_sub_blocks(x, &p, &mut l);
    q5_finish(x, &s, &mut l, out);
}

/// Q5_K's final levels against the stored scales, and the block's bytes.
pub(super) fn q5_finish(x: &[f32], s: &ScaleMins, l: &mut [u8; 256], out: &mut Vec<u8>) {
    requantize(x, s, 31, l);
    let mut qh = [0u8; 32];
    let mut qs = [0u8; 128];
    for (pair, n) in (0..256).step_by(64).enumerate() {
        let (m1, m2) = (1u8 << (2 * pair), 2u8 << (2 * pair));
        for j in 0..32 {
            let (mut l1, mut l2) = (l[n + j], l[n + j + 32]);
            if l1 > 15 {
                l1 -= 16;
                qh[j] |= m1;
            }
            if l2 > 15 {
                l2 -= 16;
                qh[j] |= m2;
            }
            qs[32 * pair + j] = l1 | (l2 << 4);
        }
    }
    out.extend_from_slice(&s.d.0.to_le_bytes());
    out.extend_from_slice(&s.dmin.0.to_le_bytes());
    out.extend_from_slice(&s.packed);
    out.extend_from_slice(&qh);
    out.extend_from_slice(&qs);
}

/// Q6_K: ql[128] | qh[64] | scales[16] (i8) | d.
pub(crate) fn q6_k(x: &[f32], out: &mut Vec<u8>) {
    q6_k_weighted(x, None, out);
}

/// Q6_K, its sub-block searches weighted by `qw` (importance) when given.
pub(super) fn q6_k_weighted(x: &[f32], qw: Option<&[f32]>, out: &mut Vec<u8>) {
    let mut li = [0i8; 256];
    let mut scales = [0f32; 16];
    let (mut max_scale, mut max_abs) = (0f32, 0f32);
    let (l16, _) = li.as_chunks_mut::<16>();
    let qw16 = qw.map(|w| w.as_chunks::<16>().0);
    for (ib, (xs, lb)) in x.as_chunks::<16>().0.iter().zip(l16).enumerate() {
        let s = make_qx_quants(32, xs, lb, 1, qw16.and_then(|w| w.get(ib)));
        scales[ib] = s;
        if s.abs() > max_abs {
            max_abs = s.abs();
            max_scale = s;
        }
    }
    if max_abs < GROUP_MAX_EPS {
        out.extend_from_slice(&[0u8; 210]);
        return;
    }
    let iscale = -128.0 / max_scale;
    let (dh, d_all) = stored(1.0 / iscale);
    let mut sc = [0i8; 16];
    for ib in 0..16 {
        sc[ib] = nearest_int(iscale * scales[ib]).min(127) as i8;
    }
    for j in 0..16 {
        let d = d_all * f32::from(sc[j]);
        if d == 0.0 {
            continue;
        }
        let mut q = [0f32; 16];
        for (q, &v) in q.iter_mut().zip(&x[16 * j..16 * j + 16]) {
            *q = v / d;
        }
        for (l, &q) in li[16 * j..16 * j + 16].iter_mut().zip(&q) {
            *l = nearest_int(q).clamp(-32, 31) as i8 + 32;
        }
    }
    let l = li.map(|v| v as u8);
    let mut ql = [0u8; 128];
    let mut qh = [0u8; 64];
    for (half, j) in (0..256).step_by(128).enumerate() {
        let (ql, qh) = (&mut ql[64 * half..], &mut qh[32 * half..]);
        for i in 0..32 {
            let q = [l[j + i], l[j + i + 32], l[j + i + 64], l[j + i + 96]];
            ql[i] = (q[0] & 0xf) | ((q[2] & 0xf) << 4);
            ql[i + 32] = (q[1] & 0xf) | ((q[3] & 0xf) << 4);
            qh[i] = (q[0] >> 4) | ((q[1] >> 4) << 2) | ((q[2] >> 4) << 4) | ((q[3] >> 4) << 6);
        }
    }
    out.extend_from_slice(&ql);
    out.extend_from_slice(&qh);
    out.extend(sc.iter().map(|&s| s as u8));
    out.extend_from_slice(&dh.to_le_bytes());
}
