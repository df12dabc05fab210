//! Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: 32-element blocks with an f16 scale
//! (and minimum), dequantized and quantized exactly as gguf-py does.

use super::{f16_at, fixed, u32_at};
use tensorcast_core::cast::float::f32_to_f16;
use tensorcast_core::QuantType;

#[inline(always)]
pub(crate) fn q4_0(b: &[u8], out: &mut [f32]) {
    let Some((b, out)) = fixed::<18, 32>(b, out) else {
        return;
    };
    let d = f16_at(b, 0);
    for j in 0..16 {
        let x = b[2 + j];
        out[j] = d * f32::from((x & 0x0f) as i8 - 8);
        out[j + 16] = d * f32::from((x >> 4) as i8 - 8);
    }
}

#[inline(always)]
pub(crate) fn q4_1(b: &[u8], out: &mut [f32]) {
    let Some((b, out)) = fixed::<20, 32>(b, out) else {
        return;
    };
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    for j in 0..16 {
        let x = b[4 + j];
        out[j] = d * f32::from(x & 0x0f) + m;
        out[j + 16] = d * f32::from(x >> 4) + m;
    }
}

/// The 32 five-bit values of a Q5 block: nibbles from `qs`, fifth bits from `qh`.
#[inline(always)]
fn q5_values(qh: u32, qs: &[u8]) -> [u8; 32] {
    let Ok(qs) = <&[u8; 16]>::try_from(&qs[..16]) else {
        return [0; 32];
    };
    let mut q = [0u8; 32];
    let (lo, hi) = q.split_at_mut(16);
    // Bit j of qh is the fifth bit of value j: tested against a constant
    // mask per lane (a compare, where shifting qh by j was a shift per value).
    for (j, ((l, h), &x)) in lo.iter_mut().zip(hi.iter_mut()).zip(qs).enumerate() {
        *l = (x & 0x0f) | if qh & (1u32 << j) != 0 { 0x10 } else { 0 };
        *h = (x >> 4) | if qh & (1u32 << (j + 16)) != 0 { 0x10 } else { 0 };
    }
    q
}

#[inline(always)]
pub(crate) fn q5_0(b: &[u8], out: &mut [f32]) {
    let Some((b, out)) = fixed::<22, 32>(b, out) else {
        return;
    };
    let d = f16_at(b, 0);
    let q = q5_values(u32_at(b, 2), &b[6..22]);
    for (o, &v) in out[..32].iter_mut().zip(&q) {
        *o = d * f32::from(v as i8 - 16);
    }
}

#[inline(always)]
pub(crate) fn q5_1(b: &[u8], out: &mut [f32]) {
    let Some((b, out)) = fixed::<24, 32>(b, out) else {
        return;
    };
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    let q = q5_values(u32_at(b, 4), &b[8..24]);
    for (o, &v) in out[..32].iter_mut().zip(&q) {
        *o = d * f32::from(v) + m;
    }
}

#[inline(always)]
pub(crate) fn q8_0(b: &[u8], out: &mut [f32]) {
    let Some((b, out)) = fixed::<34, 32>(b, out) else {
        return;
    };
    let d = f16_at(b, 0);
    for j in 0..32 {
        out[j] = f32::from(b[2 + j] as i8) * d;
    }
}

/// True for the types [`quantize`] produces.
pub fn can_quantize(q: QuantType) -> bool {
    matches!(q.name(), "Q4_0" | "Q4_1" | "Q5_0" | "Q5_1" | "Q8_0")
}

/// Quantizes `values` (a whole number of 32-element blocks) to `q`, appending
/// bytes identical to `gguf.quants.quantize`. `None` for other types.
pub fn quantize(q: QuantType, values: &[f32], out: &mut Vec<u8>) -> Option<()> {
    let f: fn(&[f32], &mut Vec<u8>) = match q.name() {
        "Q4_0" => quantize_q4_0,
        "Q4_1" => quantize_q4_1,
        "Q5_0" => quantize_q5_0,
        "Q5_1" => quantize_q5_1,
        "Q8_0" => quantize_q8_0,
        _ => return None,
    };
    for block in values.chunks_exact(32) {
        f(block, out);
    }
    Some(())
}

/// numpy's `where(d == 0, 0, 1 / d)`.
fn inverse(d: f32) -> f32 {
    if d == 0.0 {
        0.0
    } else {
        1.0 / d
    }
}

/// gguf-py's `np_roundf`: round half away from zero, in its float steps.
fn roundf(n: f32) -> f32 {
    let a = n.abs();
    let floored = a.floor();
    let b = floored + (2.0 * (a - floored)).floor();
    let sign = if n > 0.0 {
        1.0
    } else if n < 0.0 {
        -1.0
    } else {
        0.0
    };
    sign * b
}

/// The first element of greatest magnitude (numpy's `argmax` of `abs`), signed.
fn signed_absmax(v: &[f32]) -> f32 {
    let mut best = v[0];
    for &x in &v[1..] {
        if x.abs() > best.abs() {
            best = x;
        }
    }
    best
}

/// numpy's float32 → uint8 `astype` of a truncated value, then `clip(0, hi)`.
fn to_level(t: f32, hi: u8) -> u8 {
    // Values reaching here are in [0, hi + 1]; a NaN input leaves 0.
    (t as i32).clamp(0, i32::from(hi)) as u8
}

fn quantize_q8_0(x: &[f32], out: &mut Vec<u8>) {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = inverse(d);
    out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
    out.extend(x.iter().map(|&v| roundf(v * id) as i8 as u8));
}

fn quantize_q4_0(x: &[f32], out: &mut Vec<u8>) {
    let d = signed_absmax(x) / -8.0;
    let id = inverse(d);
    let q: Vec<u8> = x.iter().map(|&v| to_level((v * id + 8.5).trunc(), 15)).collect();
    out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
    out.extend((0..16).map(|j| q[j] | (q[j + 16] << 4)));
}

fn quantize_q4_1(x: &[f32], out: &mut Vec<u8>) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let min = x.iter().fold(f32::INFINITY, |m, &v| m.min(v));
    let d = (max - min) / 15.0;
    let id = inverse(d);
    let q: Vec<u8> = x
        .iter()
        .map(|&v| to_level(((v - min) * id + 0.5).trunc(), 15))
        .collect();
    out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
    out.extend_from_slice(&f32_to_f16(min).to_le_bytes());
    out.extend((0..16).map(|j| q[j] | (q[j + 16] << 4)));
}

fn pack5(q: &[u8], out: &mut Vec<u8>) {
    let qh = q
        .iter()
        .enumerate()
        .fold(0u32, |h, (i, &v)| h | (u32::from(v >> 4) << i));
    out.extend_from_slice(&qh.to_le_bytes());
    out.extend((0..16).map(|j| (q[j] & 0x0f) | (q[j + 16] << 4)));
}

fn quantize_q5_0(x: &[f32], out: &mut Vec<u8>) {
    let d = signed_absmax(x) / -16.0;
    let id = inverse(d);
    let q: Vec<u8> = x.iter().map(|&v| to_level((v * id + 16.5).trunc(), 31)).collect();
    out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
    pack5(&q, out);
}

fn quantize_q5_1(x: &[f32], out: &mut Vec<u8>) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let min = x.iter().fold(f32::INFINITY, |m, &v| m.min(v));
    let d = (max - min) / 31.0;
    let id = inverse(d);
    let q: Vec<u8> = x
        .iter()
        .map(|&v| to_level(((v - min) * id + 0.5).trunc(), 31))
        .collect();
    out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
    out.extend_from_slice(&f32_to_f16(min).to_le_bytes());
    pack5(&q, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundf_rounds_half_away_from_zero() {
        assert_eq!(roundf(2.5), 3.0);
        assert_eq!(roundf(-2.5), -3.0);
        assert_eq!(roundf(1.49), 1.0);
        assert_eq!(roundf(0.0), 0.0);
    }

    #[test]
    fn quantized_blocks_dequantize_close_to_input() {
        let x: Vec<f32> = (0..32).map(|i| (i as f32 - 15.5) * 0.1).collect();
        for (name, f) in [
            ("Q4_0", q4_0 as fn(&[u8], &mut [f32])),
            ("Q8_0", q8_0),
            ("Q5_1", q5_1),
        ] {
            let q = QuantType::from_name(name).unwrap();
            let mut bytes = Vec::new();
            quantize(q, &x, &mut bytes).unwrap();
            assert_eq!(bytes.len(), q.block_bytes() as usize);
            let mut back = [0f32; 32];
            f(&bytes, &mut back);
            let err = x
                .iter()
                .zip(back)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(err < 0.25, "{name}: {err}");
        }
    }
}
