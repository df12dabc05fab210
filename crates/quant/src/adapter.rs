//! [`Dequantize`]: an adapter that turns block-quantized tensors into F32.

use super::{can_dequantize, dequantize};
use tensorcast_core::code;
use tensorcast_core::{DType, Error, Result, Source, TensorData, TensorInfo, CHUNK_BYTES};

/// A source whose block-quantized tensors come out as F32 (bit-identical to
/// gguf-py); other tensors pass through untouched.
pub struct Dequantize<S> {
    inner: S,
    tensors: Vec<TensorInfo>,
}

impl<S: Source> Dequantize<S> {
    /// Wraps `inner`. Refuses up front, naming the tensor, when a tensor's
    /// block type has no reference dequantizer.
    pub fn new(inner: S) -> Result<Self> {
        Self::build(inner, false)
    }

    /// Wraps `inner`, leaving tensors whose block type has no reference
    /// dequantizer as blocks (for readers that refuse them one at a time).
    pub fn keeping_undecodable(inner: S) -> Result<Self> {
        Self::build(inner, true)
    }

    fn build(inner: S, keep_undecodable: bool) -> Result<Self> {
        let mut tensors = inner.tensors().to_vec();
        for t in &mut tensors {
            if let DType::Quant(q) = t.dtype {
                if !can_dequantize(q) {
                    if keep_undecodable {
                        continue;
                    }
                    return Err(no_dequantizer(&t.name, q));
                }
                t.dtype = DType::F32;
                t.nbytes = t.numel().checked_mul(4).ok_or_else(|| {
                    Error::unsupported(code::TOO_LARGE, format!("tensor '{}' too large", t.name))
                })?;
                t.file_offset = None;
            }
        }
        Ok(Dequantize { inner, tensors })
    }
}

/// The refusal for tensor `name` of block type `q`, which ggml gives no dequantizer.
pub fn no_dequantizer(name: &str, q: tensorcast_core::QuantType) -> Error {
    Error::unsupported(code::BLOCK_TYPE, format!(
        "tensor '{name}': {} has no reference dequantizer (ggml defines none); keep it quantized in a GGUF or tpack output",
        q.name()
    ))
}

impl<S: Source> Source for Dequantize<S> {
    tensorcast_core::forward_to_inner!();

    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    fn raw_location(&self, index: usize) -> Option<tensorcast_core::RawLocation<'_>> {
        // Blocks turned into F32 are computed; everything else is the inner's.
        self.tensors.get(index)?.file_offset?;
        self.inner.raw_location(index)
    }

    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        let data = self.inner.tensor_data(index)?;
        let DType::Quant(q) = self.inner.tensors()[index].dtype else {
            return Ok(data);
        };
        if matches!(self.tensors[index].dtype, DType::Quant(_)) {
            // Kept as blocks by `keeping_undecodable`.
            return Ok(data);
        }
        let (bb, be) = (q.block_bytes() as usize, q.block_elems() as usize);
        // Input pieces sized so each decoded piece is about CHUNK_BYTES.
        let piece = (CHUNK_BYTES / (be * 4)).max(1) * bb;
        let name = self.tensors[index].name.clone();
        let chunks = data.aligned_chunks(bb, piece).map(move |blocks| {
            let blocks = blocks?;
            let n = blocks.len() / bb * be;
            let fail = |e: String| Error::unsupported(code::BAD_DATA, format!("tensor '{name}': {e}"));
            // Decoded straight into the bytes handed on (little-endian and
            // aligned for f32, as allocations of this size are), not into
            // f32s copied after: a copy of every output byte, and a second
            // 4 MiB buffer per chunk in flight.
            let mut out = vec![0u8; n * 4];
            if cfg!(target_endian = "little") {
                if let Ok(vals) = bytemuck::try_cast_slice_mut::<u8, f32>(&mut out) {
                    dequantize(q, &blocks, vals).map_err(fail)?;
                    return Ok(out);
                }
            }
            let mut vals = vec![0f32; n];
            dequantize(q, &blocks, &mut vals).map_err(fail)?;
            Ok(f32_le_bytes(vals))
        });
        Ok(TensorData::Chunks(Box::new(chunks)))
    }
}

/// The values as little-endian bytes.
fn f32_le_bytes(vals: Vec<f32>) -> Vec<u8> {
    if cfg!(target_endian = "little") {
        bytemuck::cast_slice::<f32, u8>(&vals).to_vec()
    } else {
        vals.iter().flat_map(|v| v.to_le_bytes()).collect()
    }
}
