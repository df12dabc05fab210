//! Quantization with an importance matrix: ggml's `quantize_row_*_impl`
//! paths, which `ggml_quantize_chunk` takes when `llama_model_quantize` has
//! imatrix data for a tensor. Each function takes one row and the row's
//! weights (one per column). K-quants and IQ4 blocks weigh their values
//! against their own super-block's spread; the legacy types against the
//! whole row's, so they work a row at a time.

use super::groups::sum_sq;
use super::kquants::{self, q2_finish, q3_finish, q4_finish, q5_finish, stored, ScaleMins};
use super::search::{make_qkx2_quants, make_qp_quants, make_qx_quants, Qkx2};
use super::{ggml_f16, legacy};
use super::{iq1, iq2, iq3, iq4};

/// `make_qkx3_quants(…, -0.9, 0.05, 36, false)`: with weights given it is
/// `make_qkx2_quants` with these settings (its `max <= min` test and
/// `make_qkx2_quants`' `max == min` agree, as max ≥ min).
fn qkx3(nmax: i32) -> Qkx2 {
    Qkx2 {
        nmax,
        rmin: -0.9,
        rdelta: 0.05,
        nstep: 36,
        use_mad: false,
    }
}

/// `qw[i] · sqrt(sigma2 + x[i]²)` into `w`, and their sum.
fn importance<const N: usize>(x: &[f32; N], qw: &[f32], sigma2: f32, w: &mut [f32; N]) -> f32 {
    let mut sum = 0f32;
    for ((w, &v), &q) in w.iter_mut().zip(x).zip(qw) {
        *w = q * (sigma2 + v * v).sqrt();
    }
    for &v in w.iter() {
        sum += v;
    }
    sum
}

fn q2_k(x: &[f32], qw: &[f32], out: &mut Vec<u8>) {
    let mut l = [0u8; 256];
    let sigma2 = sum_sq(x) / 256.0;
    let (mut scales, mut mins, mut sw) = ([0f32; 16], [0f32; 16], [0f32; 16]);
    let mut w = [0f32; 16];
    let (l16, _) = l.as_chunks_mut::<16>();
    for (j, (xs, lj)) in x.as_chunks::<16>().0.iter().zip(l16).enumerate() {
        sw[j] = importance(xs, &qw[16 * j..], sigma2, &mut w);
        (scales[j], mins[j]) = make_qkx2_quants(&qkx3(3), xs, &w, lj);
    }
    let (mut ls, mut lm) = ([0u8; 16], [0u8; 16]);
    let dm = make_qp_quants(15, &scales, &mut ls, &sw);
    let mm = make_qp_quants(15, &mins, &mut lm, &sw);
    let mut sc = [0u8; 16];
    for j in 0..16 {
        sc[j] = ls[j] | (lm[j] << 4);
    }
    q2_finish(x, &sc, stored(dm), stored(mm), &mut l, out);
}

fn q3_k(x: &[f32], qw: &[f32], out: &mut Vec<u8>) {
    let mut li = [0i8; 256];
    let sigma2 = 2.0 * sum_sq(x) / 256.0;
    let (mut scales, mut sw) = ([0f32; 16], [0f32; 16]);
    let mut w = [0f32; 16];
    let (l16, _) = li.as_chunks_mut::<16>();
    for (j, (xs, lj)) in x.as_chunks::<16>().0.iter().zip(l16).enumerate() {
        sw[j] = importance(xs, &qw[16 * j..], sigma2, &mut w);
        scales[j] = make_qx_quants(4, xs, lj, 1, Some(&w));
    }
    let mut ls = [0i8; 16];
    let d_block = make_qx_quants(32, &scales, &mut ls, 1, Some(&sw));
    let mut sc = [0u8; 12];
    for j in 0..16 {
        let l = ls[j] as u8;
        if j < 8 {
            sc[j] = l & 0xf;
        } else {
            sc[j - 8] |= (l & 0xf) << 4;
        }
        sc[j % 4 + 8] |= (l >> 4) << (2 * (j / 4));
    }
    q3_finish(x, &sc, ggml_f16(d_block), &mut li, out);
}

/// Q4_K and Q5_K: weighted sub-block searches, then the scales and
/// minimums themselves quantized by `make_qp_quants`.
fn q45_k(x: &[f32], qw: &[f32], nmax: i32, clamp63: bool, l: &mut [u8; 256]) -> ScaleMins {
    let sigma2 = 2.0 * sum_sq(x) / 256.0;
    let (mut scales, mut mins, mut sw) = ([0f32; 8], [0f32; 8], [0f32; 8]);
    let mut w = [0f32; 32];
    let (l32, _) = l.as_chunks_mut::<32>();
    for (j, (xs, lj)) in x.as_chunks::<32>().0.iter().zip(l32).enumerate() {
        sw[j] = importance(xs, &qw[32 * j..], sigma2, &mut w);
        (scales[j], mins[j]) = make_qkx2_quants(&qkx3(nmax), xs, &w, lj);
    }
    let (mut ls, mut lm) = ([0u8; 8], [0u8; 8]);
    let d_block = make_qp_quants(63, &scales, &mut ls, &sw);
    let m_block = make_qp_quants(63, &mins, &mut lm, &sw);
    let mut q = [0u8; 12];
    for j in 0..8 {
        // Q5_K clamps to 63 here; Q4_K does not (make_qp_quants' levels are ≤ 63).
        let (a, b) = if clamp63 {
            (ls[j].min(63), lm[j].min(63))
        } else {
            (ls[j], lm[j])
        };
        if j < 4 {
            q[j] = a;
            q[j + 4] = b;
        } else {
            q[j + 4] = (a & 0xf) | ((b & 0xf) << 4);
            q[j - 4] |= (a >> 4) << 6;
            q[j] |= (b >> 4) << 6;
        }
    }
    ScaleMins {
        packed: q,
        d: stored(d_block),
        dmin: stored(m_block),
    }
}

fn q4_k(x: &[f32], qw: &[f32], out: &mut Vec<u8>) {
    let mut l = [0u8; 256];
    let s = q45_k(x, qw, 15, false, &mut l);
    q4_finish(x, &s, &mut l, out);
}

fn q5_k(x: &[f32], qw: &[f32], out: &mut Vec<u8>) {
    let mut l = [0u8; 256];
    let s = q45_k(x, qw, 31, true, &mut l);
    q5_finish(x, &s, &mut l, out);
}

fn q6_k(x: &[f32], qw: &[f32], out: &mut Vec<u8>) {
    kquants::q6_k_weighted(x, Some(qw), out);
}

/// The legacy types: every block of the row weighed against the row's spread.
fn legacy_row(q: &str, row: &[f32], qw: &[f32], out: &mut Vec<u8>) {
    let sigma2 = sum_sq(row) / row.len() as f32;
    let mut w = [0f32; 32];
    let (blocks, _) = row.as_chunks::<32>();
    for (ib, xb) in blocks.iter().enumerate() {
        importance(xb, &qw[32 * ib..], sigma2, &mut w);
        match q {
            "Q4_0" | "Q5_0" => {
                let nmax = if q == "Q4_0" { 8 } else { 16 };
                let mut l = [0i8; 32];
                let d = make_qx_quants(nmax, xb, &mut l, 1, Some(&w));
                out.extend_from_slice(&ggml_f16(d).to_le_bytes());
                let l = l.map(|v| v as u8);
                if q == "Q4_0" {
                    out.extend((0..16).map(|j| l[j] | (l[j + 16] << 4)));
                } else {
                    legacy::pack5(|j| l[j], out);
                }
            }
            _ => {
                let nmax = if q == "Q4_1" { 15 } else { 31 };
                let mut l = [0u8; 32];
                let (d, the_min) = make_qkx2_quants(&qkx3(nmax), xb, &w, &mut l);
                out.extend_from_slice(&ggml_f16(d).to_le_bytes());
                out.extend_from_slice(&ggml_f16(-the_min).to_le_bytes());
                if q == "Q4_1" {
                    out.extend((0..16).map(|j| l[j] | (l[j + 16] << 4)));
                } else {
                    legacy::pack5(|j| l[j], out);
                }
            }
        }
    }
}

/// Quantizes one row with its importance weights (`qw.len() == row.len()`,
/// a whole number of blocks). `None` for types without a weighted path here.
pub(crate) fn quantize_row(q: &str, row: &[f32], qw: &[f32], out: &mut Vec<u8>) -> Option<()> {
    let per_block: fn(&[f32], &[f32], &mut Vec<u8>) = match q {
        "Q2_K" => q2_k,
        "Q3_K" => q3_k,
        "Q4_K" => q4_k,
        "Q5_K" => q5_k,
        "Q6_K" => q6_k,
        "IQ2_XXS" => iq2::iq2_xxs,
        "IQ2_XS" => iq2::iq2_xs,
        "IQ2_S" => |x, w, out| iq2::iq2_s(x, Some(w), out),
        "IQ1_S" => iq1::iq1_s,
        "IQ1_M" => |x, w, out| iq1::iq1_m(x, Some(w), out),
        "IQ3_XXS" => |x, w, out| iq3::iq3_xxs(x, Some(w), out),
        "IQ3_S" => |x, w, out| iq3::iq3_s(x, Some(w), out),
        "IQ4_NL" => iq4::iq4_nl_weighted,
        "IQ4_XS" => iq4::iq4_xs_weighted,
        "Q4_0" | "Q4_1" | "Q5_0" | "Q5_1" => {
            legacy_row(q, row, qw, out);
            return Some(());
        }
        _ => return None,
    };
    let block = if q == "IQ4_NL" { 32 } else { 256 };
    for (x, w) in row.chunks_exact(block).zip(qw.chunks_exact(block)) {
        per_block(x, w, out);
    }
    Some(())
}
