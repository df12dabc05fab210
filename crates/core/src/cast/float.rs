//! Scalar conversions between float formats, bit-identical to PyTorch 2.15's
//! CPU `Tensor.to(dtype)` on its vectorized path.
//!
//! Every finite value, infinity, signed zero and subnormal follows IEEE
//! round-to-nearest-even, as in torch. NaN payloads are where torch is not
//! uniform: its scalar tail loop and its vectorized loop disagree for some
//! pairs (e.g. f16→f32 yields 0x7FFFFFFF in the scalar loop but a quieted,
//! payload-preserving NaN in the vector loop). We follow the vectorized loop,
//! which converts every element of a tensor whose length is a multiple of the
//! vector width; the per-function notes say what torch produced when probed.
//!
//! Overflow: f16, bf16 and f8_e5m2 go to ±inf; f8_e4m3fn (no infinity)
//! saturates to ±448, as torch 2.15 does.

/// f16 bits → f32. NaN: quieted, payload kept (torch's vector loop, like F16C).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = match (exp, man) {
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, m) => sign | 0x7fc0_0000 | (m << 13),
        (0, 0) => sign,
        // Subnormal: man × 2^-24, exact in f32.
        (0, m) => sign | (m as f32 * f32::from_bits(0x3380_0000)).to_bits(),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// bf16 bits → f32: the top half of an f32, NaN payload kept.
pub fn bf16_to_f32(b: u16) -> f32 {
    f32::from_bits(u32::from(b) << 16)
}

/// f8_e4m3fn bits → f32. Its only NaNs (0x7F/0xFF) become ±0x7FF00000, as in torch.
pub fn e4m3_to_f32(b: u8) -> f32 {
    let sign = u32::from(b & 0x80) << 24;
    let exp = u32::from((b >> 3) & 0x0f);
    let man = u32::from(b & 0x07);
    let bits = match (exp, man) {
        (0x0f, 0x07) => sign | 0x7ff0_0000,
        (0, 0) => sign,
        // Subnormal: man × 2^-9.
        (0, m) => sign | (m as f32 * f32::from_bits(0x3b00_0000)).to_bits(),
        (e, m) => sign | ((e + 120) << 23) | (m << 20),
    };
    f32::from_bits(bits)
}

/// f8_e5m2 bits → f32: an e5m2 byte is the top byte of an f16.
pub fn e5m2_to_f32(b: u8) -> f32 {
    f16_to_f32(u16::from(b) << 8)
}

/// f32 → f64, exact. NaN: quieted, payload kept (as the hardware widening does).
pub fn f32_to_f64(x: f32) -> f64 {
    let bits = x.to_bits();
    if bits & 0x7fff_ffff > 0x7f80_0000 {
        let sign = u64::from(bits >> 31) << 63;
        let man = u64::from(bits & 0x007f_ffff);
        f64::from_bits(sign | 0x7ff8_0000_0000_0000 | (man << 29))
    } else {
        f64::from(x)
    }
}

/// f64 → f32, round to nearest even. NaN: quieted, top payload bits kept.
pub fn f64_to_f32(x: f64) -> f32 {
    let bits = x.to_bits();
    if bits & 0x7fff_ffff_ffff_ffff > 0x7ff0_0000_0000_0000 {
        let sign = ((bits >> 63) as u32) << 31;
        let man = ((bits >> 29) & 0x007f_ffff) as u32;
        f32::from_bits(sign | 0x7fc0_0000 | man)
    } else {
        x as f32
    }
}

/// f32 → f16 bits, round to nearest even. NaN: quieted, payload kept.
pub fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let abs = bits & 0x7fff_ffff;
    if abs > 0x7f80_0000 {
        return sign | 0x7e00 | ((abs & 0x007f_ffff) >> 13) as u16;
    }
    if abs >= 0x4780_0000 {
        // ≥ 65536 (and inf): beyond the last rounding boundary.
        return sign | 0x7c00;
    }
    if abs < 0x3880_0000 {
        // Below the smallest normal (2^-14): adding 0.5 lets the FPU round the
        // subnormal mantissa into the low bits.
        const MAGIC: u32 = 126 << 23;
        let r = (f32::from_bits(abs) + f32::from_bits(MAGIC)).to_bits() - MAGIC;
        return sign | r as u16;
    }
    let odd = (abs >> 13) & 1;
    let r = abs.wrapping_add(((15u32.wrapping_sub(127)) << 23).wrapping_add(0xfff) + odd) >> 13;
    sign | r as u16
}

/// f32 → bf16 bits, round to nearest even. NaN becomes `nan` (torch's vector
/// loop gives 0xFFFF from f32/f64 sources, its scalar path 0x7FC0 otherwise).
pub fn f32_to_bf16(x: f32, nan: u16) -> u16 {
    let bits = x.to_bits();
    if bits & 0x7fff_ffff > 0x7f80_0000 {
        return nan;
    }
    let odd = (bits >> 16) & 1;
    (bits.wrapping_add(0x7fff + odd) >> 16) as u16
}

/// f32 → f8_e4m3fn bits, round to nearest even, saturating at ±448. NaN: ±0x7F.
pub fn f32_to_e4m3(x: f32) -> u8 {
    let bits = x.to_bits();
    let sign = ((bits >> 24) & 0x80) as u8;
    let abs = bits & 0x7fff_ffff;
    if abs > 0x7f80_0000 {
        return sign | 0x7f;
    }
    if abs >= 0x43e0_0000 {
        return sign | 0x7e;
    }
    if abs < (121 << 23) {
        // Below 2^-6, the smallest normal.
        const MAGIC: u32 = 141 << 23;
        let r = (f32::from_bits(abs) + f32::from_bits(MAGIC)).to_bits() - MAGIC;
        return sign | r as u8;
    }
    let odd = (abs >> 20) & 1;
    let r = abs.wrapping_add((7u32.wrapping_sub(127) << 23).wrapping_add(0x7ffff) + odd) >> 20;
    sign | r as u8
}

/// f32 → f8_e5m2 bits, round to nearest even, overflow to ±inf. NaN: ±0x7F.
pub fn f32_to_e5m2(x: f32) -> u8 {
    let bits = x.to_bits();
    let sign = ((bits >> 24) & 0x80) as u8;
    let abs = bits & 0x7fff_ffff;
    if abs > 0x7f80_0000 {
        return sign | 0x7f;
    }
    if abs >= (143 << 23) {
        return sign | 0x7c;
    }
    if abs < (113 << 23) {
        // Below 2^-14, the smallest normal.
        const MAGIC: u32 = 134 << 23;
        let r = (f32::from_bits(abs) + f32::from_bits(MAGIC)).to_bits() - MAGIC;
        return sign | r as u8;
    }
    let odd = (abs >> 21) & 1;
    let r = abs.wrapping_add((15u32.wrapping_sub(127) << 23).wrapping_add(0xfffff) + odd) >> 21;
    sign | r as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_round_trips_every_non_nan_value() {
        for h in 0..=u16::MAX {
            let f = f16_to_f32(h);
            if f.is_nan() {
                continue;
            }
            assert_eq!(f32_to_f16(f), h, "{h:#06x}");
        }
    }

    #[test]
    fn fp8_round_trips_every_non_nan_value() {
        for b in 0..=u8::MAX {
            let f = e4m3_to_f32(b);
            if !f.is_nan() {
                assert_eq!(f32_to_e4m3(f), b, "e4m3 {b:#04x}");
            }
            let f = e5m2_to_f32(b);
            if !f.is_nan() {
                assert_eq!(f32_to_e5m2(f), b, "e5m2 {b:#04x}");
            }
        }
    }

    #[test]
    fn bf16_round_trips_every_non_nan_value() {
        for b in 0..=u16::MAX {
            let f = bf16_to_f32(b);
            if !f.is_nan() {
                assert_eq!(f32_to_bf16(f, 0xffff), b);
            }
        }
    }

    #[test]
    fn f64_f32_nan_payloads() {
        let n = f32::from_bits(0x7fa1_2345);
        assert_eq!(f32_to_f64(n).to_bits(), 0x7ffc_2468_a000_0000);
        assert_eq!(f64_to_f32(f32_to_f64(n)).to_bits(), 0x7fe1_2345);
    }
}
