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
#[inline]
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    // Normal numbers (all but zero, subnormals, infinities and NaN) in one
    // branch: the exponent rebiased by 112 in place (a block scale is
    // converted per block, so this is on the dequantizers' path).
    let e = h & 0x7c00;
    if e != 0 && e != 0x7c00 {
        return f32::from_bits(sign | ((u32::from(h & 0x7fff) << 13) + (112 << 23)));
    }
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

/// f8_e4m3fnuz bits → f32 (bias 8, no infinity, no -0). Its NaN (0x80)
/// becomes 0x7F800001, as torch produces.
pub fn e4m3fnuz_to_f32(b: u8) -> f32 {
    fnuz_to_f32(b, 3, 8)
}

/// f8_e5m2fnuz bits → f32 (bias 16). Its NaN (0x80) becomes 0x7F800001.
pub fn e5m2fnuz_to_f32(b: u8) -> f32 {
    fnuz_to_f32(b, 2, 16)
}

fn fnuz_to_f32(b: u8, man_bits: u32, bias: u32) -> f32 {
    if b == 0x80 {
        return f32::from_bits(0x7f80_0001);
    }
    let sign = u32::from(b & 0x80) << 24;
    let exp = (u32::from(b) & 0x7f) >> man_bits;
    let man = u32::from(b) & ((1 << man_bits) - 1);
    let bits = if exp == 0 {
        // Subnormal: man × 2^(1 - bias - man_bits), exact in f32.
        let unit = f32::from_bits((128 - bias - man_bits) << 23);
        sign | (man as f32 * unit).to_bits()
    } else {
        sign | ((exp + 127 - bias) << 23) | (man << (23 - man_bits))
    };
    f32::from_bits(bits)
}

/// f8_e8m0fnu bits → f32: 2^(b - 127); 0xFF (NaN) becomes 0x7F800001.
pub fn e8m0_to_f32(b: u8) -> f32 {
    match b {
        0xff => f32::from_bits(0x7f80_0001),
        // 2^-127 is an f32 subnormal.
        0 => f32::from_bits(0x0040_0000),
        e => f32::from_bits(u32::from(e) << 23),
    }
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

/// f32 → f8_e4m3fnuz bits: round to nearest even; overflow, infinities and
/// NaN all give the single NaN 0x80; there is no -0.
pub fn f32_to_e4m3fnuz(x: f32) -> u8 {
    f32_to_fnuz(x, 3, 8)
}

/// f32 → f8_e5m2fnuz bits, as [`f32_to_e4m3fnuz`] with 2 mantissa bits, bias 16.
pub fn f32_to_e5m2fnuz(x: f32) -> u8 {
    f32_to_fnuz(x, 2, 16)
}

fn f32_to_fnuz(x: f32, man_bits: u32, bias: u32) -> u8 {
    let bits = x.to_bits();
    let sign = ((bits >> 24) & 0x80) as u8;
    let abs = bits & 0x7fff_ffff;
    // First magnitude that rounds past the largest finite value: 2^(16 - bias)
    // × 2 for both layouts (256 for e4m3fnuz, 65536 for e5m2fnuz). NaN and
    // infinities are above it too.
    let max = (127 + (1 << (7 - man_bits)) - bias) << 23;
    if abs >= max {
        return 0x80;
    }
    let shift = 23 - man_bits;
    let r = if abs < (128 - bias) << 23 {
        // Below the smallest normal: adding a power of two lets the FPU round
        // the subnormal mantissa into the low bits.
        let magic = (127 + 23 - man_bits + 1 - bias) << 23;
        let r = (f32::from_bits(abs) + f32::from_bits(magic)).to_bits() - magic;
        if r == 0 {
            return 0; // no negative zero in fnuz formats
        }
        r
    } else {
        let odd = (abs >> shift) & 1;
        let rebias = ((127 - bias) << 23).wrapping_neg();
        abs.wrapping_add(rebias)
            .wrapping_add((1 << (shift - 1)) - 1)
            .wrapping_add(odd)
            >> shift
    };
    sign | r as u8
}

/// f32 → f8_e8m0fnu bits: the exponent, rounded to nearest even on the
/// mantissa; the sign is ignored; NaN, infinities and overflow give 0xFF.
pub fn f32_to_e8m0(x: f32) -> u8 {
    let bits = x.to_bits();
    let exp = (bits >> 23) & 0xff;
    if exp == 0xff {
        return 0xff;
    }
    let guard = bits & 0x0040_0000 != 0;
    let round = bits & 0x0020_0000 != 0;
    let sticky = bits & 0x001f_ffff != 0;
    // The implied leading bit (the "LSB" of an exponent-only format) is 1 for normals.
    let lsb = exp > 0;
    let up = guard && (round || sticky || lsb);
    (exp + u32::from(up)) as u8
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
    fn f16_normals_take_their_defined_value() {
        for h in 0..=u16::MAX {
            let (e, m) = (i32::from((h >> 10) & 0x1f), f64::from(h & 0x3ff));
            if e == 0 || e == 31 {
                continue;
            }
            let sign = if h & 0x8000 == 0 { 1.0 } else { -1.0 };
            let want = sign * 2f64.powi(e - 15) * (1.0 + m / 1024.0);
            assert_eq!(f64::from(f16_to_f32(h)), want, "{h:#06x}");
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
    fn fnuz_and_e8m0_round_trip_every_non_nan_value() {
        for b in 0..=u8::MAX {
            if b != 0x80 {
                assert_eq!(f32_to_e4m3fnuz(e4m3fnuz_to_f32(b)), b, "e4m3fnuz {b:#04x}");
                assert_eq!(f32_to_e5m2fnuz(e5m2fnuz_to_f32(b)), b, "e5m2fnuz {b:#04x}");
            }
            assert_eq!(f32_to_e8m0(e8m0_to_f32(b)), b, "e8m0 {b:#04x}");
        }
        // Probed from torch 2.15.
        assert_eq!(f32_to_e4m3fnuz(248.0), 0x80);
        assert_eq!(f32_to_e4m3fnuz(-(2f32.powi(-11))), 0x00);
        assert_eq!(f32_to_e5m2fnuz(-248.0), 0xe0);
        assert_eq!(f32_to_e8m0(-3.0), 0x81);
        assert_eq!(f32_to_e8m0(1.5 * 2f32.powi(127)), 0xff);
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
