//! TQ1_0 and TQ2_0: ternary weights {-1, 0, 1} times an f16 scale.

use super::f16_at;

/// TQ1_0: qs[48] | qh[4] | d. Five (or four) base-3 digits per byte,
/// recovered by multiplying by powers of 3 with 8-bit wrap-around.
pub(crate) fn tq1_0(b: &[u8], out: &mut [f32]) {
    let (qs, qh) = (&b[0..48], &b[48..52]);
    let d = f16_at(b, 52);
    const POW3: [u8; 5] = [1, 3, 9, 27, 81];
    let digit = |x: u8, p: u8| -> f32 {
        let v = x.wrapping_mul(p);
        f32::from((((u16::from(v) * 3) >> 8) as i8) - 1)
    };
    let mut idx = 0;
    // qs[0..32] then qs[32..48], each expanded power by power; then qh.
    for (bytes, width) in [(&qs[0..32], 32), (&qs[32..48], 16)] {
        for p in POW3 {
            for &x in &bytes[..width] {
                out[idx] = d * digit(x, p);
                idx += 1;
            }
        }
    }
    for &p in &POW3[..4] {
        for &x in qh {
            out[idx] = d * digit(x, p);
            idx += 1;
        }
    }
}

/// TQ2_0: qs[64] | d. Four 2-bit values per byte, minus one.
pub(crate) fn tq2_0(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 64);
    for g in 0..2 {
        for s in 0..4 {
            for l in 0..32 {
                let q = ((b[32 * g + l] >> (2 * s)) & 3) as i8 - 1;
                out[128 * g + 32 * s + l] = d * f32::from(q);
            }
        }
    }
}
