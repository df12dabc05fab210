//! Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: 32-element blocks with an f16 scale
//! (and minimum), dequantized exactly as gguf-py does (their quantizers are
//! in `quantize::legacy`).

use super::{f16_at, fixed, u32_at};

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

#[cfg(test)]
mod tests {
    use super::*;
    use tensorcast_core::QuantType;

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
            crate::quantize(q, &x, &mut bytes).unwrap();
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
