//! The GGUF writer: v3, little-endian, tensors packed in plan order at the
//! alignment (the layout ggml's loader insists on), typed metadata.

use crate::types::ggml_type_id;
use crate::value::{encode, encode_str, type_of, writable};
use std::path::Path;
use tensorcast_core::code;
use tensorcast_core::{
    check_size, DType, Error, FileTarget, Metadata, Plan, Result, Sink, TensorData, TensorInfo, Value,
    WriteTarget,
};

/// ggml refuses tensor names of 64 bytes or more.
const MAX_NAME: usize = 63;

/// Writes one GGUF v3 file.
pub struct GgufWriter {
    /// The output until `begin` starts writing it.
    target: Option<Box<dyn WriteTarget>>,
    file: Option<Box<dyn WriteTarget>>,
    tensors: Vec<TensorInfo>,
    alignment: u64,
    next: usize,
}

impl GgufWriter {
    /// A writer that will produce the local file `target`.
    pub fn new(target: &Path) -> Self {
        Self::to_target(Box::new(FileTarget::new(target)))
    }

    /// A writer into `target`.
    pub fn to_target(target: Box<dyn WriteTarget>) -> Self {
        GgufWriter {
            target: Some(target),
            file: None,
            tensors: Vec::new(),
            alignment: 32,
            next: 0,
        }
    }
}

fn unsupported(code: &'static str, msg: String) -> Error {
    Error::unsupported(code, msg)
}

/// The writer driven out of its call order.
fn usage(msg: String) -> Error {
    Error::usage(code::CALL_ORDER, msg)
}

/// `general.alignment` as ggml reads it (a U32 power of two), accepting the
/// string form a safetensors round trip leaves.
fn alignment(metadata: &Metadata) -> Result<Option<u32>> {
    let Some(v) = metadata.get("general.alignment") else {
        return Ok(None);
    };
    let n: Option<u64> = match v {
        Value::U8(x) => Some(u64::from(*x)),
        Value::U16(x) => Some(u64::from(*x)),
        Value::U32(x) => Some(u64::from(*x)),
        Value::U64(x) => Some(*x),
        Value::I32(x) => u64::try_from(*x).ok(),
        Value::I64(x) => u64::try_from(*x).ok(),
        Value::Str(s) => s.trim().parse().ok(),
        _ => None,
    };
    match n {
        Some(a) if a.is_power_of_two() && a <= u64::from(u32::MAX) => Ok(Some(a as u32)),
        _ => Err(unsupported(
            code::VALUE_NOT_HELD,
            format!("general.alignment {v:?} is not a power of two ggml can use"),
        )),
    }
}

fn validate(t: &TensorInfo) -> Result<u32> {
    if t.name.len() > MAX_NAME {
        return Err(unsupported(
            code::NAME_NOT_HELD,
            format!(
                "tensor '{}': name is {} bytes; ggml refuses names longer than {MAX_NAME}",
                t.name,
                t.name.len()
            ),
        ));
    }
    if t.shape.len() > 4 {
        return Err(unsupported(
            code::SHAPE_NOT_HELD,
            format!(
                "tensor '{}': {} dimensions; GGUF allows at most 4",
                t.name,
                t.shape.len()
            ),
        ));
    }
    let id = ggml_type_id(t.dtype).ok_or_else(|| {
        let fix = if t.dtype.is_float() && t.dtype != DType::C64 {
            "cast it to f32, f16 or bf16 first"
        } else {
            "write safetensors, tpack or npz instead, or leave the tensor out"
        };
        unsupported(
            code::DTYPE_NOT_HELD,
            format!("tensor '{}': GGUF has no {} type; {fix}", t.name, t.dtype),
        )
    })?;
    if let DType::Quant(q) = t.dtype {
        let inner = t.shape.last().copied().unwrap_or(1);
        if inner % u64::from(q.block_elems()) != 0 {
            return Err(unsupported(
                code::SHAPE_NOT_HELD,
                format!(
                    "tensor '{}': innermost dimension {inner} is not a multiple of the {} block size",
                    t.name,
                    q.name()
                ),
            ));
        }
    }
    Ok(id)
}

/// Writes the header (key/values, tensor infos, padding) into `f` in
/// pieces of about a megabyte: a header of millions of keys is never one
/// buffer. Every tensor is validated before the first byte is written.
fn write_header(plan: &Plan, alignment: u64, align_key: Option<u32>, f: &mut dyn WriteTarget) -> Result<()> {
    let ids = plan.tensors.iter().map(validate).collect::<Result<Vec<u32>>>()?;
    const PIECE: usize = 1 << 20;
    let mut h = Vec::with_capacity(PIECE + 4096);
    let mut written = 0u64;
    let mut flush = |h: &mut Vec<u8>, f: &mut dyn WriteTarget, at_least: usize| -> Result<()> {
        if h.len() >= at_least {
            f.write_all(h)?;
            written += h.len() as u64;
            h.clear();
        }
        Ok(())
    };
    h.extend_from_slice(b"GGUF");
    h.extend_from_slice(&3u32.to_le_bytes());
    h.extend_from_slice(&(plan.tensors.len() as u64).to_le_bytes());
    h.extend_from_slice(&(plan.metadata.len() as u64).to_le_bytes());
    for (key, value) in plan.metadata.iter() {
        encode_str(key, &mut h);
        let value = match (key, align_key) {
            ("general.alignment", Some(a)) => Value::U32(a),
            _ => writable(value),
        };
        let ty = match &value {
            Value::Array(..) => 9,
            v => type_of(v.kind()).unwrap_or(8),
        };
        h.extend_from_slice(&ty.to_le_bytes());
        encode(&value, &mut h);
        flush(&mut h, f, PIECE)?;
    }
    let mut offset = 0u64;
    for (t, id) in plan.tensors.iter().zip(ids) {
        encode_str(&t.name, &mut h);
        h.extend_from_slice(&(t.shape.len() as u32).to_le_bytes());
        for d in t.shape.iter().rev() {
            h.extend_from_slice(&d.to_le_bytes());
        }
        h.extend_from_slice(&id.to_le_bytes());
        h.extend_from_slice(&offset.to_le_bytes());
        offset = (offset + t.nbytes).next_multiple_of(alignment);
        flush(&mut h, f, PIECE)?;
    }
    flush(&mut h, f, 0)?;
    let pad = written.next_multiple_of(alignment) - written;
    f.write_all(&vec![0u8; pad as usize])?;
    Ok(())
}

impl Sink for GgufWriter {
    fn begin(&mut self, plan: &Plan) -> Result<()> {
        tensorcast_core::sparse::refuse_sparse(&plan.tensors, "GGUF")?;
        let mut names = std::collections::HashSet::new();
        for t in &plan.tensors {
            if !names.insert(t.name.as_str()) {
                return Err(unsupported(
                    code::NAME_NOT_HELD,
                    format!("tensor '{}' appears twice; GGUF names must be unique", t.name),
                ));
            }
        }
        let align_key = alignment(&plan.metadata)?;
        self.alignment = u64::from(align_key.unwrap_or(32));
        let mut f = self
            .target
            .take()
            .ok_or_else(|| usage("GGUF writer begun twice".into()))?;
        write_header(plan, self.alignment, align_key, &mut *f)?;
        self.file = Some(f);
        self.tensors = plan.tensors.clone();
        self.next = 0;
        Ok(())
    }

    fn write_tensor(&mut self, index: usize, data: TensorData<'_>) -> Result<()> {
        let (Some(f), true) = (
            self.file.as_mut(),
            index == self.next && index < self.tensors.len(),
        ) else {
            return Err(usage(format!("GGUF writer got tensor #{index} out of order")));
        };
        let written = f.write_data(data)?;
        check_size(&self.tensors[index], written)?;
        // Pad after every tensor, the last included, as gguf-py does.
        let pad = written.next_multiple_of(self.alignment) - written;
        f.write_all(&vec![0u8; pad as usize])?;
        self.next += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        if self.next != self.tensors.len() {
            return Err(usage(format!(
                "GGUF writer finished after {} of {} tensors",
                self.next,
                self.tensors.len()
            )));
        }
        self.file
            .take()
            .ok_or_else(|| usage("GGUF writer finished twice".into()))?
            .commit()
    }
}
