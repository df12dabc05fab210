//! IQ4_NL and IQ4_XS: 4-bit indices into a non-linear 16-value codebook,
//! as `quantize_iq4_nl` / `quantize_iq4_xs` run without an importance
//! matrix (weights x², seven trial scales each side).

use super::ggml_f16;
use super::search::{nearest_int, GROUP_MAX_EPS};

/// ggml's `kvalues_iq4nl`.
const VALUES: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// The trial scales on each side of the first guess (`ntry`).
const NTRY: i32 = 7;

/// ggml's `best_index_int8`: the codebook entry nearest `x` (the upper one on ties).
fn best_index(x: f32) -> u8 {
    let val = |i: usize| f32::from(VALUES[i]);
    if x <= val(0) {
        return 0;
    }
    if x >= val(15) {
        return 15;
    }
    let (mut ml, mut mu) = (0usize, 15usize);
    while mu - ml > 1 {
        let mav = (ml + mu) / 2;
        if x < val(mav) {
            mu = mav;
        } else {
            ml = mav;
        }
    }
    if x - val(mu - 1) < val(mu) - x {
        (mu - 1) as u8
    } else {
        mu as u8
    }
}

/// x² per value: the weights without an importance matrix.
fn squares(xb: &[f32]) -> [f32; 32] {
    let mut weight = [0f32; 32];
    for (w, &v) in weight.iter_mut().zip(xb) {
        *w = v * v;
    }
    weight
}

/// `qw · sqrt(sigma2 + x²)` per value, `sigma2` being twice the mean x² of
/// the super-block (`super_block` values from `sb`).
fn importance<'a>(sb: &'a [f32], qw: &'a [f32]) -> impl Fn(usize) -> [f32; 32] + 'a {
    let mut sigma2 = 0f32;
    for &v in sb {
        sigma2 += v * v;
    }
    sigma2 *= 2.0 / sb.len() as f32;
    move |ib| {
        let mut weight = [0f32; 32];
        for j in 0..32 {
            let v = sb[32 * ib + j];
            weight[j] = qw[32 * ib + j] * (sigma2 + v * v).sqrt();
        }
        weight
    }
}

/// The best scale of one 32-value block under `weight`, its levels written to `l`.
fn block_scale(xb: &[f32], weight: &[f32; 32], l: &mut [u8]) -> f32 {
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in xb {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        return 0.0;
    }
    let v0 = f32::from(VALUES[0]);
    let mut d = -max / v0;
    let id = 1.0 / d;
    let (mut sumqx, mut sumq2) = (0f32, 0f32);
    for ((lj, &v), &w) in l.iter_mut().zip(xb).zip(weight) {
        let i = best_index(id * v);
        *lj = i;
        let q = f32::from(VALUES[usize::from(i)]);
        sumqx += w * q * v;
        sumq2 += w * q * q;
    }
    d = if sumq2 > 0.0 { sumqx / sumq2 } else { 0.0 };
    let mut best = d * sumqx;
    for itry in -NTRY..=NTRY {
        let id = (itry + i32::from(VALUES[0])) as f32 / max;
        let (mut sumqx, mut sumq2) = (0f32, 0f32);
        for (&v, &w) in xb.iter().zip(weight) {
            let q = f32::from(VALUES[usize::from(best_index(id * v))]);
            sumqx += w * q * v;
            sumq2 += w * q * q;
        }
        if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    d
}

/// Packs levels: byte `16i + j` holds values `32i + j` and `32i + 16 + j`.
fn pack(l: &[u8], out: &mut Vec<u8>) {
    for b in l.chunks_exact(32) {
        out.extend((0..16).map(|j| b[j] | (b[16 + j] << 4)));
    }
}

/// IQ4_NL: d | qs[16], one 32-value block.
pub(crate) fn iq4_nl(x: &[f32], out: &mut Vec<u8>) {
    nl_block(x, &squares(x), out);
}

/// IQ4_NL weighted by importance `qw`.
pub(crate) fn iq4_nl_weighted(x: &[f32], qw: &[f32], out: &mut Vec<u8>) {
    nl_block(x, &importance(x, qw)(0), out);
}

fn nl_block(x: &[f32], weight: &[f32; 32], out: &mut Vec<u8>) {
    let mut l = [0u8; 32];
    let d = block_scale(x, weight, &mut l);
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    for (lj, &v) in l.iter_mut().zip(x) {
        *lj = best_index(id * v);
    }
    out.extend_from_slice(&ggml_f16(d).to_le_bytes());
    pack(&l, out);
}

/// IQ4_XS: d | scales_h (u16) | scales_l[4] | qs[128], 256 values in
/// eight blocks of 32 with 6-bit block scales.
pub(crate) fn iq4_xs(x: &[f32], out: &mut Vec<u8>) {
    xs_block(x, |ib| squares(&x[32 * ib..32 * ib + 32]), out);
}

/// IQ4_XS weighted by importance `qw`.
pub(crate) fn iq4_xs_weighted(x: &[f32], qw: &[f32], out: &mut Vec<u8>) {
    xs_block(x, importance(x, qw), out);
}

fn xs_block(x: &[f32], weights: impl Fn(usize) -> [f32; 32], out: &mut Vec<u8>) {
    let mut l = [0u8; 256];
    let mut scales = [0f32; 8];
    let (mut max_scale, mut amax_scale) = (0f32, 0f32);
    for ib in 0..8 {
        scales[ib] = block_scale(
            &x[32 * ib..32 * ib + 32],
            &weights(ib),
            &mut l[32 * ib..32 * ib + 32],
        );
        if scales[ib].abs() > amax_scale {
            amax_scale = scales[ib].abs();
            max_scale = scales[ib];
        }
    }
    let d = -max_scale / 32.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let (mut scales_h, mut scales_l) = (0u16, [0u8; 4]);
    for ib in 0..8 {
        let ls = nearest_int(id * scales[ib]).clamp(-32, 31);
        let dl = d * ls as f32;
        let idl = if dl != 0.0 { 1.0 / dl } else { 0.0 };
        for (lj, &v) in l[32 * ib..32 * ib + 32].iter_mut().zip(&x[32 * ib..]) {
            *lj = best_index(idl * v);
        }
        let ls = (ls + 32) as u8;
        scales_l[ib / 2] |= (ls & 0xf) << (4 * (ib % 2));
        scales_h |= u16::from(ls >> 4) << (2 * ib);
    }
    out.extend_from_slice(&ggml_f16(d).to_le_bytes());
    out.extend_from_slice(&scales_h.to_le_bytes());
    out.extend_from_slice(&scales_l);
    pack(&l, out);
}
