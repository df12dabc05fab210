//! TQ1_0, TQ2_0 (ternary: −1, 0, 1 times the block's absolute maximum) and
//! MXFP4 (E2M1 values under a shared power-of-two exponent), as ggml's
//! reference quantizers write them.

use super::ggml_f16;

/// `lroundf(v * id) + 1` as C stores it in a byte: −1, 0, 1 become 0, 1, 2.
/// Past `long`'s range (infinities, NaN: a block of subnormals has an
/// infinite inverse) x86-64's `lroundf` gives `LONG_MIN`, whose low byte
/// plus one is 1.
fn trit(v: f32, id: f32) -> u8 {
    let r = v * id;
    let l = if r.abs() < 9.2e18 {
        r.round() as i64
    } else {
        i64::MIN
    };
    l.wrapping_add(1) as u8
}

/// The absolute maximum of a 256-value block and its inverse (0 for 0).
fn amax_inverse(x: &[f32]) -> (f32, f32) {
    let amax = x.iter().fold(0f32, |m, v| if m > v.abs() { m } else { v.abs() });
    (amax, if amax != 0.0 { 1.0 / amax } else { 0.0 })
}

/// Five (or four, shifted up one trit) base-3 digits as a byte: the fraction
/// `q / 243` scaled to 256 and rounded up.
fn trits_byte(q: u8) -> u8 {
    (u16::from(q) * 256).div_ceil(243) as u8
}

/// TQ1_0: qs[48] | qh[4] | d.
pub(crate) fn tq1_0(x: &[f32], out: &mut Vec<u8>) {
    let (d, id) = amax_inverse(x);
    let mut at = 0;
    // 32 bytes of five values 32 apart, then 16 of five 16 apart.
    for width in [32usize, 16] {
        for m in 0..width {
            let q = (0..5).fold(0u8, |q, n| {
                q.wrapping_mul(3).wrapping_add(trit(x[at + m + n * width], id))
            });
            out.push(trits_byte(q));
        }
        at += 5 * width;
    }
    for j in 0..4 {
        let q = (0..4).fold(0u8, |q, m| {
            q.wrapping_mul(3).wrapping_add(trit(x[at + j + m * 4], id))
        });
        out.push(trits_byte(q.wrapping_mul(3)));
    }
    out.extend_from_slice(&ggml_f16(d).to_le_bytes());
}

/// TQ2_0: qs[64] | d, four 2-bit values 32 apart per byte.
pub(crate) fn tq2_0(x: &[f32], out: &mut Vec<u8>) {
    let (d, id) = amax_inverse(x);
    for j in (0..256).step_by(128) {
        for m in 0..32 {
            let q = (0..4).fold(0u8, |q, n| q | ((trit(x[j + m + n * 32], id) & 3) << (2 * n)));
            out.push(q);
        }
    }
    out.extend_from_slice(&ggml_f16(d).to_le_bytes());
}

/// E2M1 values doubled (ggml's `kvalues_mxfp4`).
const FP4: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/// MXFP4: e (E8M0) | qs[16], 32 values; value j and j + 16 share byte j.
pub(crate) fn mxfp4(x: &[f32], out: &mut Vec<u8>) {
    let amax = x.iter().fold(0f32, |m, v| if m < v.abs() { v.abs() } else { m });
    // C converts the float to uint8_t; x86-64 truncates through a 32-bit
    // integer, so a negative exponent wraps rather than saturating.
    let e = if amax > 0.0 {
        ((amax.log2().floor() - 2.0 + 127.0) as i32) as u8
    } else {
        0
    };
    // ggml_e8m0_to_fp32_half: 2^(e − 128), subnormal below e = 2.
    let d = f32::from_bits(if e < 2 {
        0x0020_0000 << e
    } else {
        u32::from(e - 1) << 23
    });
    let best = |v: f32| {
        let mut best = (0u8, (f32::from(FP4[0]) * d - v).abs());
        for (i, &k) in FP4.iter().enumerate().skip(1) {
            let err = (f32::from(k) * d - v).abs();
            if err < best.1 {
                best = (i as u8, err);
            }
        }
        best.0
    };
    out.push(e);
    out.extend((0..16).map(|j| best(x[j]) | (best(x[j + 16]) << 4)));
}
