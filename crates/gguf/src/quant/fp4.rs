//! MXFP4 and NVFP4: E2M1 values (stored doubled) with a shared scale.

use super::grids::KVALUES_FP4;

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
    let d = e8m0_half(b[0]);
    for l in 0..16 {
        out[l] = d * f32::from(KVALUES_FP4[(b[1 + l] & 0x0f) as usize]);
        out[16 + l] = d * f32::from(KVALUES_FP4[(b[1 + l] >> 4) as usize]);
    }
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
    for i in 0..4 {
        let d = ue4m3_half(b[i]);
        let qs = &b[4 + 8 * i..12 + 8 * i];
        for k in 0..8 {
            out[16 * i + k] = d * f32::from(KVALUES_FP4[(qs[k] & 0x0f) as usize]);
            out[16 * i + 8 + k] = d * f32::from(KVALUES_FP4[(qs[k] >> 4) as usize]);
        }
    }
}
