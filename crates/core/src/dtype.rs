//! Element types: every safetensors dtype, plus opaque block-quantized types.

use crate::quant::QuantType;
use std::fmt;
use std::str::FromStr;

/// The element type of a tensor.
///
/// Scalar dtypes carry a bit size; [`DType::Quant`] covers ggml's block types,
/// whose bytes are opaque blocks of a fixed number of elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DType {
    /// Boolean, one byte per element (0 or 1).
    Bool,
    /// Unsigned 8-bit integer.
    U8,
    /// Signed 8-bit integer.
    I8,
    /// 8-bit float, 5 exponent bits, 2 mantissa bits, with infinities (OCP E5M2).
    F8E5M2,
    /// 8-bit float, 4 exponent bits, 3 mantissa bits, no infinities (torch `float8_e4m3fn`).
    F8E4M3,
    /// 8-bit exponent-only scale (torch `float8_e8m0fnu`).
    F8E8M0,
    /// 8-bit float E4M3 with negative-zero as NaN (torch `float8_e4m3fnuz`).
    F8E4M3Fnuz,
    /// 8-bit float E5M2 with negative-zero as NaN (torch `float8_e5m2fnuz`).
    F8E5M2Fnuz,
    /// Signed 16-bit integer.
    I16,
    /// Unsigned 16-bit integer.
    U16,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    BF16,
    /// Signed 32-bit integer.
    I32,
    /// Unsigned 32-bit integer.
    U32,
    /// IEEE single precision.
    F32,
    /// Complex number made of two f32.
    C64,
    /// complex128: two f64 (real, imaginary). No safetensors or GGUF
    /// name; tpack, npz, PyTorch and .zt hold it.
    C128,
    /// IEEE double precision.
    F64,
    /// Signed 64-bit integer.
    I64,
    /// Unsigned 64-bit integer.
    U64,
    /// 4-bit float E2M1 (two per byte; shapes count 4-bit elements).
    F4,
    /// 6-bit float E2M3 (packed).
    F6E2M3,
    /// 6-bit float E3M2 (packed).
    F6E3M2,
    /// A ggml block-quantized type: opaque blocks of elements.
    Quant(QuantType),
}

/// Every scalar dtype, in the order the safetensors reference lists them.
pub const SCALAR_DTYPES: [DType; 22] = [
    DType::Bool,
    DType::F4,
    DType::F6E2M3,
    DType::F6E3M2,
    DType::U8,
    DType::I8,
    DType::F8E5M2,
    DType::F8E4M3,
    DType::F8E8M0,
    DType::F8E4M3Fnuz,
    DType::F8E5M2Fnuz,
    DType::I16,
    DType::U16,
    DType::F16,
    DType::BF16,
    DType::I32,
    DType::U32,
    DType::F32,
    DType::C64,
    DType::F64,
    DType::I64,
    DType::U64,
];

impl DType {
    /// Canonical name, spelled as safetensors spells it (`F8_E4M3`, `BF16`), or
    /// the ggml name for block types (`Q4_K`).
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "BOOL",
            DType::U8 => "U8",
            DType::I8 => "I8",
            DType::F8E5M2 => "F8_E5M2",
            DType::F8E4M3 => "F8_E4M3",
            DType::F8E8M0 => "F8_E8M0",
            DType::F8E4M3Fnuz => "F8_E4M3FNUZ",
            DType::F8E5M2Fnuz => "F8_E5M2FNUZ",
            DType::I16 => "I16",
            DType::U16 => "U16",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::I32 => "I32",
            DType::U32 => "U32",
            DType::F32 => "F32",
            DType::C64 => "C64",
            DType::C128 => "C128",
            DType::F64 => "F64",
            DType::I64 => "I64",
            DType::U64 => "U64",
            DType::F4 => "F4",
            DType::F6E2M3 => "F6_E2M3",
            DType::F6E3M2 => "F6_E3M2",
            DType::Quant(q) => q.name(),
        }
    }

    /// Bits per element for scalar dtypes; `None` for block types.
    pub fn bits(self) -> Option<u64> {
        Some(match self {
            DType::F4 => 4,
            DType::F6E2M3 | DType::F6E3M2 => 6,
            DType::Bool
            | DType::U8
            | DType::I8
            | DType::F8E5M2
            | DType::F8E4M3
            | DType::F8E8M0
            | DType::F8E4M3Fnuz
            | DType::F8E5M2Fnuz => 8,
            DType::I16 | DType::U16 | DType::F16 | DType::BF16 => 16,
            DType::I32 | DType::U32 | DType::F32 => 32,
            DType::C64 | DType::F64 | DType::I64 | DType::U64 => 64,
            DType::C128 => 128,
            DType::Quant(_) => return None,
        })
    }

    /// Whole bytes per element, for dtypes whose elements are byte-aligned.
    pub fn byte_size(self) -> Option<usize> {
        match self.bits() {
            Some(b) if b % 8 == 0 => Some((b / 8) as usize),
            _ => None,
        }
    }

    /// Reverses the byte order of every element in `buf` (a complex number
    /// part by part): big-endian storage into the little-endian order the IR
    /// uses. One-byte and packed types are left as they are.
    pub fn swap_byte_order(self, buf: &mut [u8]) {
        let word = match self {
            DType::C64 => 4,
            DType::C128 => 8,
            other => other.byte_size().unwrap_or(1),
        };
        if word > 1 {
            buf.chunks_exact_mut(word).for_each(<[u8]>::reverse);
        }
    }

    /// True for real floating-point dtypes (the ones `--dtype` casts).
    pub fn is_float(self) -> bool {
        matches!(
            self,
            DType::F8E5M2
                | DType::F8E4M3
                | DType::F8E8M0
                | DType::F8E4M3Fnuz
                | DType::F8E5M2Fnuz
                | DType::F16
                | DType::BF16
                | DType::F32
                | DType::F64
                | DType::F4
                | DType::F6E2M3
                | DType::F6E3M2
        )
    }

    /// True for integer dtypes (signed or unsigned).
    pub fn is_int(self) -> bool {
        matches!(
            self,
            DType::U8
                | DType::I8
                | DType::I16
                | DType::U16
                | DType::I32
                | DType::U32
                | DType::I64
                | DType::U64
        )
    }

    /// Bytes needed to store `numel` elements, or `None` when that is not a
    /// whole number of bytes (odd F4 counts, partial blocks) or overflows.
    pub fn storage_bytes(self, numel: u64) -> Option<u64> {
        match self {
            DType::Quant(q) => {
                let elems = u64::from(q.block_elems());
                if !numel.is_multiple_of(elems) {
                    return None;
                }
                (numel / elems).checked_mul(u64::from(q.block_bytes()))
            }
            _ => {
                let bits = numel.checked_mul(self.bits()?)?;
                (bits % 8 == 0).then_some(bits / 8)
            }
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// PyTorch's names for the dtypes the IR holds: the canonical spelling
/// (`torch.float16`'s `float16`) first, then its aliases (`half`). The one
/// table the pickle reader and writer, virtual references and model configs
/// share.
const TORCH_NAMES: &[(DType, &str)] = &[
    (DType::F64, "float64"),
    (DType::F64, "double"),
    (DType::F32, "float32"),
    (DType::F32, "float"),
    (DType::F16, "float16"),
    (DType::F16, "half"),
    (DType::BF16, "bfloat16"),
    (DType::I64, "int64"),
    (DType::I64, "long"),
    (DType::I32, "int32"),
    (DType::I32, "int"),
    (DType::I16, "int16"),
    (DType::I16, "short"),
    (DType::I8, "int8"),
    (DType::U8, "uint8"),
    (DType::U16, "uint16"),
    (DType::U32, "uint32"),
    (DType::U64, "uint64"),
    (DType::Bool, "bool"),
    (DType::C64, "complex64"),
    (DType::C64, "cfloat"),
    (DType::C128, "complex128"),
    (DType::C128, "cdouble"),
    (DType::F8E4M3, "float8_e4m3fn"),
    (DType::F8E5M2, "float8_e5m2"),
    (DType::F8E4M3Fnuz, "float8_e4m3fnuz"),
    (DType::F8E5M2Fnuz, "float8_e5m2fnuz"),
    (DType::F8E8M0, "float8_e8m0fnu"),
];

impl DType {
    /// PyTorch's name (`torch.<name>`) for this dtype, where torch has one.
    pub fn torch_name(self) -> Option<&'static str> {
        TORCH_NAMES.iter().find(|(d, _)| *d == self).map(|(_, n)| *n)
    }

    /// The dtype PyTorch calls `name` (without `torch.`; aliases such as
    /// `half` included); `None` for names the IR has no dtype for.
    pub fn from_torch_name(name: &str) -> Option<DType> {
        TORCH_NAMES.iter().find(|(_, n)| *n == name).map(|(d, _)| *d)
    }
}

impl FromStr for DType {
    type Err = String;

    /// Parses a canonical name (`BF16`, `F8_E4M3`, `Q4_K`), its lowercase
    /// spelling (`bf16`, `f8_e4m3`), or PyTorch's (`bfloat16`, `float16`,
    /// `torch.float8_e4m3fn`, ...).
    fn from_str(s: &str) -> Result<Self, String> {
        let torch = s.strip_prefix("torch.").unwrap_or(s);
        if let Some(d) = DType::from_torch_name(torch) {
            return Ok(d);
        }
        let upper = s.to_ascii_uppercase();
        if let Some(d) = SCALAR_DTYPES.iter().find(|d| d.name() == upper) {
            return Ok(*d);
        }
        if upper == "C128" {
            return Ok(DType::C128);
        }
        if let Some(q) = QuantType::from_name(&upper) {
            return Ok(DType::Quant(q));
        }
        Err(format!("unknown dtype '{s}'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in SCALAR_DTYPES {
            assert_eq!(d.name().parse::<DType>().unwrap(), d);
            assert_eq!(d.name().to_lowercase().parse::<DType>().unwrap(), d);
        }
        assert!("F33".parse::<DType>().is_err());
        for (torch, d) in [
            ("bfloat16", DType::BF16),
            ("torch.float16", DType::F16),
            ("float32", DType::F32),
            ("float8_e4m3fn", DType::F8E4M3),
            ("torch.float8_e8m0fnu", DType::F8E8M0),
        ] {
            assert_eq!(torch.parse::<DType>().unwrap(), d, "{torch}");
        }
        // Every dtype torch names reads back from its canonical name.
        for d in SCALAR_DTYPES {
            if let Some(n) = d.torch_name() {
                assert_eq!(DType::from_torch_name(n), Some(d), "{n}");
                assert_eq!(format!("torch.{n}").parse::<DType>().unwrap(), d);
            }
        }
        assert_eq!(DType::BF16.torch_name(), Some("bfloat16"));
        assert_eq!(DType::F4.torch_name(), None);
        assert_eq!(DType::from_torch_name("half"), Some(DType::F16));
    }

    #[test]
    fn storage_bytes_checks_partial_bytes_and_overflow() {
        assert_eq!(DType::F4.storage_bytes(3), None);
        assert_eq!(DType::F4.storage_bytes(4), Some(2));
        assert_eq!(DType::F6E2M3.storage_bytes(4), Some(3));
        assert_eq!(DType::F32.storage_bytes(u64::MAX), None);
        assert_eq!(DType::BF16.storage_bytes(0), Some(0));
    }
}
