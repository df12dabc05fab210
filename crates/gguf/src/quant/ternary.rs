//! TQ1_0 and TQ2_0: ternary weights {-1, 0, 1} times an f16 scale.

use super::f16_at;

/// TQ1_0: qs[48] | qh[4] | d. Five (or four) base-3 digits per byte,
/// recovered by multiplying by powers of 3 with 8-bit wrap-around.
#[inline(always)]
pub(crate) fn tq1_0(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 52);
    const POW3: [u8; 5] = [1, 3, 9, 27, 81];
    // Output order: qs[0..32] by each power, then qs[32..48], then qh[0..4] (4 powers).
    let (first, rest) = out[..256].split_at_mut(160);
    let (second, third) = rest.split_at_mut(80);
    let sections: [(&mut [f32], &[u8], usize); 3] = [
        (first, &b[0..32], 5),
        (second, &b[32..48], 5),
        (third, &b[48..52], 4),
    ];
    for (dst, bytes, powers) in sections {
        for (o, &p) in dst.chunks_exact_mut(bytes.len()).zip(&POW3[..powers]) {
            for (o, &x) in o.iter_mut().zip(bytes) {
                let v = x.wrapping_mul(p);
                *o = d * f32::from((((u16::from(v) * 3) >> 8) as i8) - 1);
            }
        }
    }
}

/// TQ2_0: qs[64] | d. Four 2-bit values per byte, minus one.
#[inline(always)]
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
