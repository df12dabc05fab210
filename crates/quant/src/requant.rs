//! [`Quantize`]: an adapter that writes a source as a `llama-quantize` file
//! type (Q4_K_M, Q8_0, IQ4_XS, F16 …).
//!
//! A model (its metadata names `general.architecture` and its block count) gets llama.cpp's
//! per-tensor plan, its tensors in the loader's order, and the keys
//! `llama_model_quantize` writes: every input key but `split.*`, then
//! `general.quantization_version` and `general.file_type` last. Other files
//! get the file type's block type on every float tensor of two or more
//! dimensions (llama-quantize's `--pure`), with the same fallbacks.
//!
//! Tensors are streamed a piece at a time; the blocks of a piece are
//! quantized on rayon's threads and come out in order, so the bytes do not
//! depend on the thread count.

use crate::plan::{plan, pure_target, requires_imatrix, ModelShape, PlanTensor};
use crate::{can_dequantize, dequantize, quantize, quantize_weighted, FileType, Imatrix};
use rayon::prelude::*;
use std::sync::Arc;
use tensorcast_core::cast::{can_cast, cast_slice};
use tensorcast_core::{
    code, DType, Error, Metadata, RawLocation, Result, Source, TensorData, TensorInfo, Value, CHUNK_BYTES,
};

/// A source written as a `llama-quantize` file type.
pub struct Quantize<S> {
    inner: S,
    /// The output tensors, in the order they are written.
    tensors: Vec<TensorInfo>,
    /// For each output tensor, its index in `inner`.
    from: Vec<usize>,
    metadata: Option<Metadata>,
    warnings: Vec<String>,
    /// Per output tensor: its importance weights (ne0 per expert), if any.
    weights: Vec<Option<Arc<[f32]>>>,
}

/// Keys the output must not copy: llama-quantize writes one file and sets
/// the last two itself.
const DROPPED_KEYS: [&str; 5] = [
    "split.no",
    "split.count",
    "split.tensors.count",
    "general.quantization_version",
    "general.file_type",
];

/// ggml's `GGML_QNT_VERSION`.
const QUANTIZATION_VERSION: u32 = 2;

/// An unsigned key value (the first element of a per-layer array).
fn uint(v: &Value) -> Option<u64> {
    use tensorcast_core::Array;
    Some(match v {
        Value::U8(x) => u64::from(*x),
        Value::U16(x) => u64::from(*x),
        Value::U32(x) => u64::from(*x),
        Value::U64(x) => *x,
        Value::I8(x) => u64::try_from(*x).ok()?,
        Value::I16(x) => u64::try_from(*x).ok()?,
        Value::I32(x) => u64::try_from(*x).ok()?,
        Value::I64(x) => u64::try_from(*x).ok()?,
        Value::Array(Array::U32(a)) => u64::from(*a.first()?),
        Value::Array(Array::I32(a)) => u64::try_from(*a.first()?).ok()?,
        _ => return None,
    })
}

/// The model's hyper-parameters, when its metadata describes a model: an
/// architecture and its block count (a plain tensor file written as GGUF
/// is given an architecture name, but no blocks: llama.cpp cannot load it).
fn model_shape(meta: &Metadata) -> Option<ModelShape> {
    let Some(Value::Str(arch)) = meta.get("general.architecture") else {
        return None;
    };
    let key = |k: &str| meta.get(&format!("{arch}.{k}")).and_then(uint);
    let n = |k: &str| key(k).and_then(|v| u32::try_from(v).ok());
    let n_head = n("attention.head_count").unwrap_or(0);
    Some(ModelShape {
        arch: arch.clone(),
        n_layer: n("block_count")?,
        n_head,
        n_head_kv: n("attention.head_count_kv").unwrap_or(n_head),
        n_expert: n("expert_count").unwrap_or(0),
    })
}

/// True when `from` can be turned into f32 values (floats, or blocks ggml decodes).
fn decodable(from: DType) -> bool {
    match from {
        DType::Quant(q) => can_dequantize(q),
        d => d.is_float() && can_cast(d, DType::F32),
    }
}

/// The keys llama-quantize adds after `general.file_type` when given an
/// importance matrix (its strings cut to 127 bytes, as its 128-byte
/// override buffers do).
fn imatrix_keys(im: &Imatrix) -> Vec<(&'static str, Value)> {
    let cut = |s: &str| {
        let mut end = s.len().min(127);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s[..end].to_string()
    };
    let mut keys = vec![("quantize.imatrix.file", Value::Str(cut(&im.file)))];
    if let Some(d) = im.datasets.first() {
        keys.push(("quantize.imatrix.dataset", Value::Str(cut(d))));
    }
    let entries = u32::try_from(im.entries.len()).unwrap_or(u32::MAX);
    keys.push(("quantize.imatrix.entries_count", Value::U32(entries)));
    if im.chunk_count > 0 {
        keys.push(("quantize.imatrix.chunks_count", Value::U32(im.chunk_count)));
    }
    keys
}

impl<S: Source> Quantize<S> {
    /// Wraps `inner`; refuses file types tensorcast cannot write yet.
    pub fn new(inner: S, ft: FileType) -> Result<Self> {
        Self::with_imatrix(inner, ft, None)
    }

    /// Wraps `inner`, quantizing with importance data `imatrix` where it has
    /// an entry for a tensor (as llama-quantize's `--imatrix`).
    pub fn with_imatrix(inner: S, ft: FileType, imatrix: Option<Arc<Imatrix>>) -> Result<Self> {
        if let Some((c, why)) = ft.unsupported_reason(imatrix.is_some()) {
            return Err(Error::unsupported(c, why));
        }
        let inputs = inner.tensors();
        // convert_hf_to_gguf.py's own --outtype q8_0 is what a model folder
        // converted with Q8_0 is compared against: it keeps the converter's
        // order and keys.
        let shape =
            model_shape(inner.metadata()).filter(|_| !(inner.format() == "hf" && ft.name() == "Q8_0"));
        let (from, targets, metadata, fallbacks) = match &shape {
            Some(shape) => {
                let plan_tensors: Vec<PlanTensor> = inputs
                    .iter()
                    .map(|t| PlanTensor {
                        name: &t.name,
                        ne: t.shape.iter().rev().copied().collect(),
                        dtype: t.dtype,
                    })
                    .collect();
                let p = plan(ft, shape, &plan_tensors, imatrix.is_some())?;
                let extra = imatrix.as_deref().map(imatrix_keys).unwrap_or_default();
                let mut meta = Metadata::new();
                for (k, v) in inner.metadata().iter() {
                    if !DROPPED_KEYS.contains(&k) && !extra.iter().any(|(e, _)| *e == k) {
                        meta.push_str(k, v.clone());
                    }
                }
                meta.push_str("general.quantization_version", Value::U32(QUANTIZATION_VERSION));
                meta.push_str("general.file_type", Value::U32(ft.id()));
                for (k, v) in extra {
                    meta.push_str(k, v);
                }
                (p.order, p.targets, Some(meta), p.fallbacks)
            }
            None => {
                let default = ft.default_type();
                let targets = inputs
                    .iter()
                    .map(|t| {
                        let ne0 = t.shape.last().copied().unwrap_or(1);
                        let target = pure_target(default, ne0);
                        // A fallback to F16 leaves the tensor as it is in a pure run.
                        let eligible = t.sparse.is_none() && t.dtype.is_float() && t.shape.len() >= 2;
                        if eligible && !(matches!(default, DType::Quant(_)) && target == DType::F16) {
                            target
                        } else {
                            t.dtype
                        }
                    })
                    .collect();
                ((0..inputs.len()).collect(), targets, None, 0)
            }
        };
        // A plan may pick types the file type's default is not (IQ3_XXS's
        // mix puts IQ2_S on attention K and Q).
        for (t, target) in inputs.iter().zip(&targets) {
            if let DType::Quant(q) = target {
                if *target != t.dtype && decodable(t.dtype) && !crate::can_quantize(*q) {
                    return Err(Error::unsupported(
                        code::BLOCK_TYPE,
                        format!(
                            "{} puts tensor '{}' in {}, which tensorcast cannot quantize yet",
                            ft.name(),
                            t.name,
                            q.name()
                        ),
                    ));
                }
            }
        }
        let mut tensors = Vec::with_capacity(from.len());
        let mut weights = Vec::with_capacity(from.len());
        let mut requantized = 0;
        for &i in &from {
            let mut t = inputs[i].clone();
            let target = targets[i];
            let changes = target != t.dtype && t.sparse.is_none() && decodable(t.dtype);
            let w = match (&imatrix, changes && matches!(target, DType::Quant(_))) {
                (Some(im), true) => tensor_weights(im, &t)?,
                _ => None,
            };
            if changes && w.is_none() && shape.is_some() && requires_imatrix(&t.name, target, ft) {
                return Err(Error::unsupported(
                    code::NEEDS_IMATRIX,
                    format!(
                        "tensor '{}': {} needs importance data for it, which the imatrix does not hold",
                        t.name,
                        ft.name()
                    ),
                ));
            }
            weights.push(w);
            if changes {
                requantized += usize::from(matches!(t.dtype, DType::Quant(_)));
                t.nbytes = target.storage_bytes(t.numel()).ok_or_else(|| {
                    Error::unsupported(code::TOO_LARGE, format!("tensor '{}' too large", t.name))
                })?;
                t.dtype = target;
                t.file_offset = None;
            }
            tensors.push(t);
        }
        let mut warnings = inner.warnings().to_vec();
        if fallbacks > 0 {
            warnings.push(format!(
                "{fallbacks} tensor(s) took {}'s fallback type: their rows do not divide into the planned blocks (as llama-quantize does)",
                ft.name()
            ));
        }
        if requantized > 0 {
            warnings.push(format!(
                "{requantized} quantized tensor(s) were dequantized and quantized again (as llama-quantize does when allowed to requantize)"
            ));
        }
        Ok(Quantize {
            inner,
            tensors,
            from,
            weights,
            metadata,
            warnings,
        })
    }
}

/// Tensor `t`'s importance weights: its entry when it holds one weight per
/// column and expert; none when there is no entry (llama-quantize goes on
/// without) or, for the token embeddings, when the size differs; a refusal
/// for any other size, as llama-quantize's.
fn tensor_weights(im: &Imatrix, t: &TensorInfo) -> Result<Option<Arc<[f32]>>> {
    let Some(w) = im.entries.get(&t.name) else {
        return Ok(None);
    };
    let ne: Vec<u64> = t.shape.iter().rev().copied().collect();
    let want = ne.first().copied().unwrap_or(1) * ne.get(2).copied().unwrap_or(1);
    if w.len() as u64 == want {
        return Ok(Some(Arc::from(w.as_slice())));
    }
    if t.name == "token_embd.weight" || t.name == "per_layer_token_embd.weight" {
        return Ok(None);
    }
    Err(Error::unsupported(
        code::MODEL_INCONSISTENT,
        format!(
            "tensor '{}': the imatrix {} holds {} weights for it, not {want} (one per column and expert)",
            t.name,
            im.file,
            w.len()
        ),
    ))
}

/// The f32 values of `piece` (whole blocks of `from`, or elements).
fn to_f32(from: DType, piece: &[u8]) -> std::result::Result<Vec<f32>, String> {
    if let DType::Quant(q) = from {
        let n = piece.len() / q.block_bytes() as usize * q.block_elems() as usize;
        let mut vals = vec![0f32; n];
        dequantize(q, piece, &mut vals)?;
        return Ok(vals);
    }
    let mut bytes = Vec::with_capacity(piece.len() / from.byte_size().unwrap_or(1) * 4);
    cast_slice(from, DType::F32, piece, &mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// `vals` written as `to`: quantized (blocks in parallel, in order) or cast.
fn encode(to: DType, vals: &[f32]) -> std::result::Result<Vec<u8>, String> {
    let DType::Quant(q) = to else {
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut out = Vec::with_capacity(vals.len() * to.byte_size().unwrap_or(4));
        cast_slice(DType::F32, to, &bytes, &mut out).map_err(|e| e.to_string())?;
        return Ok(out);
    };
    // 16 blocks a task: enough work per task to keep the scheduling cheap.
    let per_task = q.block_elems() as usize * 16;
    let parts: Vec<Vec<u8>> = vals
        .par_chunks(per_task)
        .map(|part| {
            let mut out = Vec::new();
            quantize(q, part, &mut out);
            out
        })
        .collect();
    Ok(parts.concat())
}

/// Rows `first..` of a tensor quantized with importance weights `w`
/// (`ne0` per expert; `rows_per_expert` rows each), rows in parallel, in order.
fn encode_rows(
    q: tensorcast_core::QuantType,
    vals: &[f32],
    ne0: usize,
    first: usize,
    rows_per_expert: usize,
    w: &[f32],
) -> std::result::Result<Vec<u8>, String> {
    let parts: Vec<Option<Vec<u8>>> = vals
        .par_chunks(ne0.max(1))
        .enumerate()
        .map(|(i, row)| {
            let expert = (first + i) / rows_per_expert;
            let weights = w.get(expert * ne0..(expert + 1) * ne0)?;
            let mut out = Vec::new();
            quantize_weighted(q, row, ne0, weights, &mut out)?;
            Some(out)
        })
        .collect();
    let mut out = Vec::new();
    for p in parts {
        out.extend(p.ok_or("the imatrix holds fewer experts than the tensor")?);
    }
    Ok(out)
}

impl<S: Source> Source for Quantize<S> {
    fn format(&self) -> &'static str {
        self.inner.format()
    }

    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    fn metadata(&self) -> &Metadata {
        self.metadata.as_ref().unwrap_or_else(|| self.inner.metadata())
    }

    fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn raw_location(&self, index: usize) -> Option<RawLocation<'_>> {
        self.tensors.get(index)?.file_offset?;
        self.inner.raw_location(*self.from.get(index)?)
    }

    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        let (Some(&at), Some(out)) = (self.from.get(index), self.tensors.get(index)) else {
            return Err(Error::unsupported(code::INTERNAL, format!("no tensor {index}")));
        };
        let from = self.inner.tensors()[at].dtype;
        let data = self.inner.tensor_data(at)?;
        let to = out.dtype;
        if to == from {
            return Ok(data);
        }
        // A unit is one output block's worth of input: whole input blocks
        // (every block size divides 256) and whole output blocks.
        let elems = match (from, to) {
            (DType::Quant(a), DType::Quant(b)) => a.block_elems().max(b.block_elems()),
            (DType::Quant(a), _) => a.block_elems(),
            (_, DType::Quant(b)) => b.block_elems(),
            _ => 1,
        } as usize;
        let unit = match from {
            DType::Quant(a) => elems / a.block_elems() as usize * a.block_bytes() as usize,
            d => elems * d.byte_size().unwrap_or(4),
        };
        let name = out.name.clone();
        if let (Some(w), DType::Quant(q)) = (self.weights.get(index).cloned().flatten(), to) {
            // Weighted rows: whole rows a piece, each expert's rows with its
            // own slice of the weights.
            let ne0 = out.shape.last().copied().unwrap_or(1) as usize;
            let rows_per_expert = out.shape.iter().rev().nth(1).copied().unwrap_or(1).max(1) as usize;
            let row_bytes = ne0 / elems * unit;
            let piece = (CHUNK_BYTES / row_bytes.max(1)).max(1) * row_bytes;
            let mut row = 0usize;
            let chunks = data.aligned_chunks(row_bytes, piece).map(move |p| {
                let p = p?;
                let fail = |e: String| Error::unsupported(code::BAD_DATA, format!("tensor '{name}': {e}"));
                let vals = to_f32(from, &p).map_err(fail)?;
                let first = row;
                row += vals.len() / ne0.max(1);
                encode_rows(q, &vals, ne0, first, rows_per_expert, &w).map_err(fail)
            });
            return Ok(TensorData::Chunks(Box::new(chunks)));
        }
        let piece = (CHUNK_BYTES / unit).max(1) * unit;
        let chunks = data.aligned_chunks(unit, piece).map(move |p| {
            let p = p?;
            let fail = |e: String| Error::unsupported(code::BAD_DATA, format!("tensor '{name}': {e}"));
            let vals = to_f32(from, &p).map_err(fail)?;
            encode(to, &vals).map_err(fail)
        });
        Ok(TensorData::Chunks(Box::new(chunks)))
    }
}
