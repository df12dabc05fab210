//! Dtype casts bit-identical to PyTorch's `Tensor.to(dtype)` on CPU, and the
//! [`CastSource`] adapter that applies them tensor by tensor.
//!
//! Paths mirror torch's: every float target except f64 is reached through
//! f32 (so f64→f16 and i64→bf16 round twice, as torch does), f64 targets are
//! reached directly. Integer targets from floats truncate toward zero; a NaN
//! or out-of-range value is refused (torch's result there is C++ undefined
//! behaviour). Integer↔integer casts wrap like C++ `static_cast`.

pub mod float;
mod kernels;

pub use kernels::{can_cast, cast_slice, CastError};

use crate::code;
use crate::{Error, Result, Source, TensorData, TensorInfo, CHUNK_BYTES};

/// A source whose tensors are cast to new dtypes on the way out.
pub struct CastSource<S> {
    inner: S,
    tensors: Vec<TensorInfo>,
    from: Vec<crate::DType>,
}

impl<S: Source> CastSource<S> {
    /// Casts each tensor to `target(info)`, or leaves it when that is `None`.
    /// Refuses up front, naming the tensor, when a cast is not defined.
    pub fn new(inner: S, target: impl Fn(&TensorInfo) -> Option<crate::DType>) -> Result<Self> {
        let mut tensors = Vec::with_capacity(inner.tensors().len());
        let mut from = Vec::with_capacity(inner.tensors().len());
        for info in inner.tensors() {
            let mut out = info.clone();
            if let Some(to) = target(info).filter(|&to| to != info.dtype) {
                if !can_cast(info.dtype, to) {
                    return Err(Error::unsupported(
                        code::CAST,
                        format!("tensor '{}': cannot cast {} to {}", info.name, info.dtype, to),
                    ));
                }
                out.dtype = to;
                out.nbytes = match &info.sparse {
                    // Only the values part changes type.
                    Some(sp) => {
                        crate::sparse::sparse_info(&info.name, to, info.shape.clone(), (**sp).clone())
                            .map(|t| t.nbytes)
                            .ok()
                    }
                    None => to.storage_bytes(info.numel()),
                }
                .ok_or_else(|| {
                    Error::unsupported(
                        code::TOO_LARGE,
                        format!("tensor '{}': size overflows as {to}", info.name),
                    )
                })?;
                out.file_offset = None;
            }
            from.push(info.dtype);
            tensors.push(out);
        }
        Ok(CastSource { inner, tensors, from })
    }

    /// The `--dtype` policy: floating-point tensors become `dtype`; integer,
    /// bool and block-quantized tensors keep theirs.
    pub fn floats_to(inner: S, dtype: crate::DType) -> Result<Self> {
        Self::new(inner, |t| t.dtype.is_float().then_some(dtype))
    }
}

impl<S: Source> Source for CastSource<S> {
    crate::forward_to_inner!();

    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        let (Some(info), Some(&from)) = (self.tensors.get(index), self.from.get(index)) else {
            return Err(Error::usage(code::CALL_ORDER, format!("no tensor #{index}")));
        };
        let to = info.dtype;
        let data = self.inner.tensor_data(index)?;
        if from == to {
            return Ok(data);
        }
        // Cast dtypes are whole-byte (can_cast refuses the packed ones).
        let name = info.name.clone();
        if let Some(sp) = &info.sparse {
            // Sparse bytes are collected by their readers already: the
            // index parts pass, the values (the last part) are cast.
            let parts = sp
                .parts(from, &info.shape)
                .map_err(|e| Error::unsupported(code::BAD_DATA, e))?;
            let index_bytes: u64 = parts.iter().rev().skip(1).map(|p| p.nbytes).sum();
            let mut bytes = data.into_vec()?;
            let values = bytes.split_off((index_bytes as usize).min(bytes.len()));
            cast_slice(from, to, &values, &mut bytes).map_err(|e| {
                Error::unsupported(code::CAST, format!("tensor '{name}': cast {from} to {to}: {e}"))
            })?;
            return Ok(TensorData::Chunks(Box::new(std::iter::once(Ok(bytes)))));
        }
        let elem = from.byte_size().unwrap_or(1);
        let chunks = data.aligned_chunks(elem, CHUNK_BYTES).map(move |piece| {
            let piece = piece?;
            let mut out = Vec::new();
            cast_slice(from, to, &piece, &mut out).map_err(|e| {
                Error::unsupported(code::CAST, format!("tensor '{name}': cast {from} to {to}: {e}"))
            })?;
            Ok(out)
        });
        Ok(TensorData::Chunks(Box::new(chunks)))
    }
}
