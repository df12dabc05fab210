//! MXFP4 and NVFP4: E2M1 values (stored doubled) with a shared scale.

use super::grids::KVALUES_FP4;
use super::{fixed, nibble_lookup, widen16};

/// The doubled E2M1 levels as f32.
const FP4: [f32; 16] = widen16(&KVALUES_FP4);

/// ggml's `e8m0_to_fp32_half`: 2^(e - 128) as f32 bits (half the E8M0 value,
/// compensating for the doubled E2M1 levels).
fn e8m0_half(e: u8) -> f32 {
    let bits = if e < 2 {
        0x0020_0000u32 << e
    } else {
        u32::from(e - 1) << 23
    };
    f32::from_bits(bits)
}

/// MXFP4: e (E8M0) | qs[16]. Low nibbles are elements 0–15, high 16–31.
#[inline(always)]
pub(crate) fn mxfp4(b: &[u8], out: &mut [f32]) {
    let Some((b, out)) = fixed::<17, 32>(b, out) else {
        return;
    };
    let (lo, hi) = out.split_at_mut(16);
    nibble_lookup::<16>(e8m0_half(b[0]), &FP4, &b[1..17], lo, hi);
}

/// gguf-py's `NVFP4.ue4m3_to_fp32`: unsigned E4M3 (bias 7), halved; 0 and
/// 0x7F decode to 0. The same float steps, so the same bits.
fn ue4m3_half(x: u8) -> f32 {
    if x == 0 || x == 0x7f {
        return 0.0;
    }
    let exp = i32::from((x >> 3) & 0x0f);
    let man = f32::from(x & 0x07);
    let raw = if exp == 0 {
        man * f32::from_bits(0x3b00_0000) // 2^-9
    } else {
        (1.0 + man / 8.0) * 2f32.powi(exp - 7)
    };
    raw * 0.5
}

/// NVFP4: 4 UE4M3 scales | qs[32]; four sub-blocks of 16, each 8 bytes whose
/// low nibbles come first.
#[inline(always)]
pub(crate) fn nvfp4(b: &[u8], out: &mut [f32]) {
    let Some((b, out)) = fixed::<36, 64>(b, out) else {
        return;
    };
    for (i, o) in out.chunks_exact_mut(16).enumerate() {
        let (lo, hi) = o.split_at_mut(8);
        nibble_lookup::<8>(ue4m3_half(b[i]), &FP4, &b[4 + 8 * i..12 + 8 * i], lo, hi);
    }
}
