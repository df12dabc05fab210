//! [`Quantize`]: an adapter that quantizes float weight matrices to a legacy
//! ggml block type, byte-identical to `gguf.quants.quantize`.

use super::quantize::{can_quantize, quantize};
use tensorcast_core::cast::cast_slice;
use tensorcast_core::code;
use tensorcast_core::{DType, Error, QuantType, Result, Source, TensorData, TensorInfo, CHUNK_BYTES};

/// A source whose float tensors with at least two dimensions and an
/// innermost dimension divisible by 32 come out quantized to one type; other
/// tensors (norms, biases, embeddings of odd width, integers) pass through,
/// as llama.cpp's converters keep them.
pub struct Quantize<S> {
    inner: S,
    tensors: Vec<TensorInfo>,
    chosen: Vec<bool>,
    q: QuantType,
}

impl<S: Source> Quantize<S> {
    /// Wraps `inner`; refuses types other than Q4_0, Q4_1, Q5_0, Q5_1, Q8_0.
    pub fn new(inner: S, q: QuantType) -> Result<Self> {
        if !can_quantize(q) {
            return Err(Error::unsupported(
                code::BLOCK_TYPE,
                format!(
                    "quantizing supports Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0, not {}",
                    q.name()
                ),
            ));
        }
        let mut tensors = inner.tensors().to_vec();
        let mut chosen = Vec::with_capacity(tensors.len());
        for t in &mut tensors {
            let eligible = t.sparse.is_none()
                && t.dtype.is_float()
                && tensorcast_core::cast::can_cast(t.dtype, DType::F32)
                && t.shape.len() >= 2
                && t.shape
                    .last()
                    .is_some_and(|&d| d % u64::from(q.block_elems()) == 0);
            if eligible {
                t.dtype = DType::Quant(q);
                t.nbytes = DType::Quant(q).storage_bytes(t.numel()).unwrap_or(0);
                t.file_offset = None;
            }
            chosen.push(eligible);
        }
        Ok(Quantize {
            inner,
            tensors,
            chosen,
            q,
        })
    }
}

impl<S: Source> Source for Quantize<S> {
    tensorcast_core::forward_to_inner!();

    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        let data = self.inner.tensor_data(index)?;
        if !self.chosen.get(index).copied().unwrap_or(false) {
            return Ok(data);
        }
        let from = self.inner.tensors()[index].dtype;
        let size = from.byte_size().unwrap_or(4);
        let q = self.q;
        let block = q.block_elems() as usize;
        let name = self.tensors[index].name.clone();
        let chunks = data.aligned_chunks(size * block, CHUNK_BYTES).map(move |piece| {
            let piece = piece?;
            let mut f32s = Vec::with_capacity(piece.len() / size * 4);
            cast_slice(from, DType::F32, &piece, &mut f32s)
                .map_err(|e| Error::unsupported(code::BAD_DATA, format!("tensor '{name}': {e}")))?;
            let vals: Vec<f32> = f32s
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            let mut out = Vec::with_capacity(vals.len() / block * q.block_bytes() as usize);
            quantize(q, &vals, &mut out);
            Ok(out)
        });
        Ok(TensorData::Chunks(Box::new(chunks)))
    }
}
