//! ggml blocks decoded to plain f32 where a transform moves elements
//! (transposes, interleaved experts, per-head splits): blocks cannot be
//! rearranged as they are, so those tensors leave GGUF as f32.

use std::borrow::Cow;
use tensorcast_core::{code, DType, Error, Result};

/// The element type a tensor of `dtype` has once decoded.
pub(crate) fn plain(dtype: DType) -> DType {
    match dtype {
        DType::Quant(_) => DType::F32,
        d => d,
    }
}

/// `numel` elements of tensor `name` as plain little-endian values: the
/// bytes as they are for a plain dtype, decoded to f32 for blocks.
pub(crate) fn elements<'a>(bytes: &'a [u8], dtype: DType, numel: u64, name: &str) -> Result<Cow<'a, [u8]>> {
    let DType::Quant(q) = dtype else {
        return Ok(Cow::Borrowed(bytes));
    };
    let mut out = vec![0f32; usize::try_from(numel).unwrap_or(0)];
    tensorcast_quant::dequantize(q, bytes, &mut out)
        .map_err(|e| Error::unsupported(code::BLOCK_TYPE, format!("tensor '{name}': {e}")))?;
    Ok(Cow::Owned(out.iter().flat_map(|v| v.to_le_bytes()).collect()))
}

/// As [`elements`], keeping `bytes` itself for a plain dtype.
pub(crate) fn owned_elements(bytes: Vec<u8>, dtype: DType, numel: u64, name: &str) -> Result<Vec<u8>> {
    match dtype {
        DType::Quant(_) => Ok(elements(&bytes, dtype, numel, name)?.into_owned()),
        _ => Ok(bytes),
    }
}
