//! TQ1_0 and TQ2_0: ternary weights {-1, 0, 1} times an f16 scale.

use super::f16_at;

/// TQ1_0: qs[48] | qh[4] | d. Five (or four) base-3 digits per byte,
/// recovered by multiplying by powers of 3 with 8-bit wrap-around.
#[inline(always)]
pub(crate) fn tq1_0(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 52);
    let Some(out) = out.get_mut(..256) else { return };
    // Output order: qs[0..32] by each power, then qs[32..48], then qh[0..4] (4 powers).
    let (first, rest) = out.split_at_mut(160);
    let (second, third) = rest.split_at_mut(80);
    section::<32>(d, &b[0..32], &POW3, first);
    section::<16>(d, &b[32..48], &POW3, second);
    section::<4>(d, &b[48..52], &POW3[..4], third);
}

const POW3: [u8; 5] = [1, 3, 9, 27, 81];

/// One run of `N` bytes times each power, into `N` outputs per power (fixed
/// sizes, so the loop compiles to vector code without bounds checks).
#[inline(always)]
fn section<const N: usize>(d: f32, bytes: &[u8], powers: &[u8], dst: &mut [f32]) {
    let Ok(bytes) = <&[u8; N]>::try_from(bytes) else {
        return;
    };
    for (o, &p) in dst.chunks_exact_mut(N).zip(powers) {
        let Ok(o) = <&mut [f32; N]>::try_from(o) else {
            return;
        };
        for (o, &x) in o.iter_mut().zip(bytes) {
            let v = x.wrapping_mul(p);
            *o = d * f32::from((((u16::from(v) * 3) >> 8) as i8) - 1);
        }
    }
}

/// TQ2_0: qs[64] | d. Four 2-bit values per byte, minus one.
#[inline(always)]
pub(crate) fn tq2_0(b: &[u8], out: &mut [f32]) {
    let Some((b, out)) = super::fixed::<66, 256>(b, out) else {
        return;
    };
    let d = f16_at(b, 64);
    // Element 128g + 32s + l: bits 2s of qs[32g + l]; each byte read once
    // for its four values.
    for (o, q) in out.chunks_exact_mut(128).zip(b[..64].chunks_exact(32)) {
        let (o01, o23) = o.split_at_mut(64);
        let ((o0, o1), (o2, o3)) = (o01.split_at_mut(32), o23.split_at_mut(32));
        let (Ok(o0), Ok(o1), Ok(o2), Ok(o3), Ok(q)) = (
            <&mut [f32; 32]>::try_from(o0),
            <&mut [f32; 32]>::try_from(o1),
            <&mut [f32; 32]>::try_from(o2),
            <&mut [f32; 32]>::try_from(o3),
            <&[u8; 32]>::try_from(q),
        ) else {
            return;
        };
        for l in 0..32 {
            let x = q[l];
            o0[l] = d * f32::from((x & 3) as i8 - 1);
            o1[l] = d * f32::from(((x >> 2) & 3) as i8 - 1);
            o2[l] = d * f32::from(((x >> 4) & 3) as i8 - 1);
            o3[l] = d * f32::from((x >> 6) as i8 - 1);
        }
    }
}
