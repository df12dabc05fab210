//! Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: ggml's `quantize_row_*_ref`, 32 values a
//! block. gguf-py's `gguf.quants.quantize` mirrors these and gives the same
//! bytes except where C's float-to-integer conversions meet values numpy
//! handles otherwise (all-zero blocks of −0.0, f32 subnormals whose inverse
//! scale is infinite); the C semantics are kept, as llama-quantize writes them.

use super::ggml_f16;

/// C's `(int8_t)f` (and `(uint8_t)f`) as x86-64 compiles it: truncation to
/// a 32-bit integer, `INT_MIN` for NaN and out-of-range values, then the
/// low byte.
fn c_byte(f: f32) -> u8 {
    let i = if f.is_nan() || !(-2_147_483_648.0..2_147_483_648.0).contains(&f) {
        i32::MIN
    } else {
        f as i32
    };
    i as u8
}

/// `MIN(hi, (int8_t)f)` stored into a `uint8_t`.
fn level(f: f32, hi: i8) -> u8 {
    (c_byte(f) as i8).min(hi) as u8
}

/// The first value of greatest magnitude (0 when all are ±0).
fn signed_absmax(x: &[f32]) -> f32 {
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    max
}

/// `d ? 1/d : 0`.
fn inverse(d: f32) -> f32 {
    if d != 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

/// The minimum and maximum, starting from ∓FLT_MAX (NaNs never win).
fn min_max(x: &[f32]) -> (f32, f32) {
    let (mut min, mut max) = (f32::MAX, -f32::MAX);
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

pub(crate) fn q8_0(x: &[f32], out: &mut Vec<u8>) {
    let amax = x.iter().fold(0f32, |m, v| if m > v.abs() { m } else { v.abs() });
    let d = amax / 127.0;
    let id = inverse(d);
    out.extend_from_slice(&ggml_f16(d).to_le_bytes());
    out.extend(x.iter().map(|&v| c_byte((v * id).round())));
}

pub(crate) fn q4_0(x: &[f32], out: &mut Vec<u8>) {
    let d = signed_absmax(x) / -8.0;
    let id = inverse(d);
    out.extend_from_slice(&ggml_f16(d).to_le_bytes());
    out.extend((0..16).map(|j| level(x[j] * id + 8.5, 15) | (level(x[j + 16] * id + 8.5, 15) << 4)));
}

pub(crate) fn q4_1(x: &[f32], out: &mut Vec<u8>) {
    let (min, max) = min_max(x);
    let d = (max - min) / 15.0;
    let id = inverse(d);
    let l = |v: f32| level((v - min) * id + 0.5, 15);
    out.extend_from_slice(&ggml_f16(d).to_le_bytes());
    out.extend_from_slice(&ggml_f16(min).to_le_bytes());
    out.extend((0..16).map(|j| l(x[j]) | (l(x[j + 16]) << 4)));
}

/// Five-bit levels: the fifth bits as a little-endian u32, then nibbles.
pub(super) fn pack5(levels: impl Fn(usize) -> u8, out: &mut Vec<u8>) {
    let mut qh = 0u32;
    let mut qs = [0u8; 16];
    for (j, q) in qs.iter_mut().enumerate() {
        let (a, b) = (levels(j), levels(j + 16));
        *q = (a & 0x0f) | ((b & 0x0f) << 4);
        qh |= u32::from((a & 0x10) >> 4) << j;
        qh |= u32::from((b & 0x10) >> 4) << (j + 16);
    }
    out.extend_from_slice(&qh.to_le_bytes());
    out.extend_from_slice(&qs);
}

pub(crate) fn q5_0(x: &[f32], out: &mut Vec<u8>) {
    let d = signed_absmax(x) / -16.0;
    let id = inverse(d);
    out.extend_from_slice(&ggml_f16(d).to_le_bytes());
    pack5(|j| level(x[j] * id + 16.5, 31), out);
}

pub(crate) fn q5_1(x: &[f32], out: &mut Vec<u8>) {
    let (min, max) = min_max(x);
    let d = (max - min) / 31.0;
    let id = inverse(d);
    out.extend_from_slice(&ggml_f16(d).to_le_bytes());
    out.extend_from_slice(&ggml_f16(min).to_le_bytes());
    // No MIN here in ggml: the level is the plain `(uint8_t)` conversion.
    pack5(|j| c_byte((x[j] - min) * id + 0.5), out);
}
