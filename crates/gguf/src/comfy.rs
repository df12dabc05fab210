//! ComfyUI-GGUF's reshaped tensors (FLUX, SD3 and other diffusion models):
//! its converter stores a tensor whose last dimension does not divide into
//! quantization blocks as `[numel / 256, 256]` and records the original
//! shape in `comfy.gguf.orig_shape.NAME` (an INT32 array), which its loader
//! restores after decoding. Converted to a format without blocks, the
//! tensors get their original shapes back, as that loader gives them.

use tensorcast_core::{DType, Metadata, Result, Source, TensorData, TensorInfo, Value};

/// The metadata key prefix of a recorded original shape.
pub const ORIG_SHAPE: &str = "comfy.gguf.orig_shape.";

/// `source` with the original shapes its metadata records, for every
/// tensor whose elements are no longer blocks and whose element count the
/// recorded shape keeps; the source itself when it records none.
pub fn restore_shapes(source: Box<dyn Source>) -> Result<Box<dyn Source>> {
    let mut tensors = source.tensors().to_vec();
    let mut restored = 0usize;
    for t in &mut tensors {
        let Some(Value::Array(shape)) = source.metadata().get(&format!("{ORIG_SHAPE}{}", t.name)) else {
            continue;
        };
        let dims: Option<Vec<u64>> = shape
            .iter()
            .map(|v| match v {
                Value::I32(d) => u64::try_from(d).ok(),
                Value::I64(d) => u64::try_from(d).ok(),
                Value::U32(d) => Some(u64::from(d)),
                _ => None,
            })
            .collect();
        let Some(dims) = dims else { continue };
        let numel = dims.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
        if matches!(t.dtype, DType::Quant(_)) || numel != Some(t.numel()) || dims == t.shape {
            continue;
        }
        t.shape = dims;
        restored += 1;
    }
    if restored == 0 {
        return Ok(source);
    }
    let mut warnings = source.warnings().to_vec();
    warnings.push(format!(
        "restored the original shapes of {restored} tensors from {ORIG_SHAPE}* (ComfyUI-GGUF's reshaped tensors), as its loader restores them"
    ));
    Ok(Box::new(Restored {
        inner: source,
        tensors,
        warnings,
    }))
}

/// A source with some tensors' shapes replaced (their bytes unchanged).
struct Restored {
    inner: Box<dyn Source>,
    tensors: Vec<TensorInfo>,
    warnings: Vec<String>,
}

impl Source for Restored {
    fn format(&self) -> &'static str {
        self.inner.format()
    }

    fn metadata(&self) -> &Metadata {
        self.inner.metadata()
    }

    fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        self.inner.tensor_data(index)
    }
}
