//! The precision torch computes in: every elementwise op on a bfloat16 or
//! float16 tensor is computed in float32 and rounded to the tensor's dtype
//! (round to nearest even), reductions accumulate in float32 and round once.
//! Values are held as `f32` that are exactly representable in the dtype.

use tensorcast_core::{cast, code, DType, Error, Result};

/// The dtype a merge computes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prec {
    /// float32: no rounding beyond f32's own.
    F32,
    /// bfloat16.
    Bf16,
    /// float16.
    F16,
}

impl Prec {
    /// The precision of `dtype`; other dtypes are refused.
    pub fn of(dtype: DType) -> Result<Prec> {
        match dtype {
            DType::F32 => Ok(Prec::F32),
            DType::BF16 => Ok(Prec::Bf16),
            DType::F16 => Ok(Prec::F16),
            other => Err(Error::unsupported(
                code::MERGE_CONFIG,
                format!("merging computes in float32, bfloat16 or float16, not {other}"),
            )),
        }
    }

    /// The dtype.
    pub fn dtype(self) -> DType {
        match self {
            Prec::F32 => DType::F32,
            Prec::Bf16 => DType::BF16,
            Prec::F16 => DType::F16,
        }
    }

    /// `x` rounded to this precision.
    #[inline]
    pub fn r(self, x: f32) -> f32 {
        match self {
            Prec::F32 => x,
            Prec::Bf16 => half::bf16::from_f32(x).to_f32(),
            Prec::F16 => half::f16::from_f32(x).to_f32(),
        }
    }

    /// torch's type promotion of two floating dtypes.
    pub fn promote(self, other: Prec) -> Prec {
        if self == other {
            self
        } else {
            Prec::F32
        }
    }
}

/// A tensor's elements as `f32` (exact for every float dtype up to f32).
pub fn to_f32(dtype: DType, bytes: &[u8]) -> Result<Vec<f32>> {
    // The merge dtypes directly, without an intermediate byte buffer.
    match dtype {
        DType::F32 => {
            return Ok(bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect())
        }
        DType::BF16 => {
            return Ok(bytes
                .chunks_exact(2)
                .map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16))
                .collect())
        }
        DType::F16 => {
            return Ok(bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect())
        }
        _ => {}
    }
    let mut out = Vec::new();
    cast::cast_slice(dtype, DType::F32, bytes, &mut out)
        .map_err(|e| Error::unsupported(code::CAST, format!("{e}")))?;
    Ok(out
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// `values` written as `dtype` (round to nearest even, as torch's `.to()`).
pub fn from_f32(values: &[f32], dtype: DType) -> Result<Vec<u8>> {
    match dtype {
        DType::F32 => return Ok(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
        DType::BF16 => {
            return Ok(values
                .iter()
                .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
                .collect())
        }
        DType::F16 => {
            return Ok(values
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect())
        }
        _ => {}
    }
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut out = Vec::new();
    cast::cast_slice(DType::F32, dtype, &raw, &mut out)
        .map_err(|e| Error::unsupported(code::CAST, format!("{e}")))?;
    Ok(out)
}

/// torch's `sign`: -1, 0 or 1 (0 for ±0).
#[inline]
pub fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}
