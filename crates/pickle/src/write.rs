//! Writing PyTorch checkpoints: the zip archive `torch.save` writes for a
//! flat state dict, loadable by `torch.load(weights_only=True)`.
//!
//! Records are stored (uncompressed), each storage's data 64-byte aligned as
//! torch aligns them (padding in the local header's extra field), streamed
//! with data descriptors so nothing written is ever rewritten (the output can
//! be an upload). The storages come first and `data.pkl` last: torch finds
//! records through the central directory and names the archive after the
//! first record's folder, so order is free, and writing the pickle last lets
//! tensors handed out from the same bytes (tied weights) point at one
//! storage. The pickle is protocol 2 and uses only globals the weights-only
//! unpickler allows: `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`
//! (v3 for dtypes that need an untyped storage), storage classes and dtypes.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use tensorcast_core::code;
use tensorcast_core::{
    check_size, DType, Error, FileTarget, Plan, Result, Sink, SourceId, TargetWriter, TensorData, TensorInfo,
    WriteTarget,
};
use zip::write::{SimpleFileOptions, StreamWriter};
use zip::{CompressionMethod, ZipWriter};

/// What `torch.save` puts in its `.storage_alignment` record.
const ALIGNMENT: u16 = 64;

/// How a dtype is stored: a typed storage class counting elements, or an
/// untyped storage counting bytes with the dtype given to `_rebuild_tensor_v3`.
enum Storage {
    Typed(&'static str),
    Untyped(&'static str),
}

fn storage_of(dtype: DType) -> Option<Storage> {
    use Storage::*;
    Some(match dtype {
        DType::F64 => Typed("DoubleStorage"),
        DType::F32 => Typed("FloatStorage"),
        DType::F16 => Typed("HalfStorage"),
        DType::BF16 => Typed("BFloat16Storage"),
        DType::C64 => Typed("ComplexFloatStorage"),
        DType::C128 => Typed("ComplexDoubleStorage"),
        DType::I64 => Typed("LongStorage"),
        DType::I32 => Typed("IntStorage"),
        DType::I16 => Typed("ShortStorage"),
        DType::I8 => Typed("CharStorage"),
        DType::U8 => Typed("ByteStorage"),
        DType::Bool => Typed("BoolStorage"),
        // Dtypes newer than torch's typed storages: an untyped storage and
        // the dtype by name.
        other => Untyped(other.torch_name()?),
    })
}

type Zip = ZipWriter<StreamWriter<TargetWriter>>;

/// A [`Sink`] writing a PyTorch zip checkpoint.
pub struct PytorchWriter {
    target: Option<Box<dyn WriteTarget>>,
    zip: Option<Zip>,
    /// The folder every record sits in (the output's stem, as torch names it).
    folder: String,
    plan: Vec<TensorInfo>,
    /// Storage key of each tensor written.
    keys: Vec<usize>,
    /// Storages written, by where their bytes came from and their length.
    seen: HashMap<((SourceId, u64), u64), usize>,
    storages: usize,
}

impl PytorchWriter {
    /// A writer for the local file `target`.
    pub fn new(target: &Path) -> PytorchWriter {
        Self::to_target(Box::new(FileTarget::new(target)))
    }

    /// A writer into `target`.
    pub fn to_target(target: Box<dyn WriteTarget>) -> PytorchWriter {
        let stem = target
            .name()
            .file_name()
            .and_then(|n| n.to_str())
            .map(|n| n.split('.').next().unwrap_or(n))
            .filter(|s| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            })
            .unwrap_or("archive")
            .to_string();
        PytorchWriter {
            target: Some(target),
            zip: None,
            folder: stem,
            plan: Vec::new(),
            keys: Vec::new(),
            seen: HashMap::new(),
            storages: 0,
        }
    }

    fn zip(&mut self) -> Result<&mut Zip> {
        self.zip
            .as_mut()
            .ok_or_else(|| Error::usage(code::CALL_ORDER, "PyTorch writer not begun"))
    }

    fn record(&mut self, name: &str, size: u64, aligned: bool) -> Result<()> {
        let mut options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .large_file(size >= u64::from(u32::MAX))
            .last_modified_time(zip::DateTime::default());
        if aligned {
            options = options.with_alignment(ALIGNMENT);
        }
        let path = format!("{}/{name}", self.folder);
        let zip = self.zip()?;
        zip.start_file(path.clone(), options)
            .map_err(|e| zip_error(&path, e))
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        let zip = self.zip()?;
        zip.write_all(bytes).map_err(|e| match e.downcast::<Error>() {
            Ok(e) => e,
            Err(e) => Error::io("<pytorch output>", e),
        })
    }
}

fn zip_error(what: &str, e: zip::result::ZipError) -> Error {
    match e {
        zip::result::ZipError::Io(io) => Error::io(what, io),
        other => Error::io(what, std::io::Error::other(other.to_string())),
    }
}

impl Sink for PytorchWriter {
    fn begin(&mut self, plan: &Plan) -> Result<()> {
        tensorcast_core::sparse::refuse_sparse(&plan.tensors, "this PyTorch writer")?;
        let mut seen = std::collections::HashSet::with_capacity(plan.tensors.len());
        for t in &plan.tensors {
            // A state dict is a dict: torch would keep only the last of two.
            if t.name.is_empty() || !seen.insert(t.name.as_str()) {
                return Err(Error::usage(
                    code::NAME_NOT_HELD,
                    format!(
                        "tensor '{}' is empty or appears twice; state dict keys are unique",
                        t.name
                    ),
                ));
            }
            // Our reader refuses names past this length (they grow with
            // nesting); writing one would make a file we cannot read back.
            if t.name.len() > crate::flatten::MAX_NAME_BYTES {
                let shown: String = t.name.chars().take(80).collect();
                return Err(Error::usage(
                    code::NAME_NOT_HELD,
                    format!(
                        "tensor '{shown}…': its {}-byte name is longer than the {} bytes a PyTorch checkpoint name may have here",
                        t.name.len(),
                        crate::flatten::MAX_NAME_BYTES
                    ),
                ));
            }
            if storage_of(t.dtype).is_none() {
                return Err(Error::unsupported(code::DTYPE_NOT_HELD, format!(
                    "tensor '{}': a PyTorch checkpoint written here has no {} storage; cast it or write gguf/safetensors",
                    t.name, t.dtype
                )));
            }
        }
        self.plan = plan.tensors.clone();
        let target = self
            .target
            .take()
            .ok_or_else(|| Error::usage(code::CALL_ORDER, "PyTorch writer begun twice"))?;
        self.zip = Some(ZipWriter::new_stream(TargetWriter(target)));
        Ok(())
    }

    fn write_tensor(&mut self, index: usize, data: TensorData<'_>) -> Result<()> {
        if index != self.keys.len() || index >= self.plan.len() {
            return Err(Error::usage(
                code::CALL_ORDER,
                format!("PyTorch writer got tensor #{index} out of order"),
            ));
        }
        let info = self.plan[index].clone();
        // The same bytes handed out twice (tied weights): one storage.
        let origin = match &data {
            TensorData::Located { origin, .. } if info.nbytes > 0 => Some((origin.key(), info.nbytes)),
            _ => None,
        };
        if let Some(&key) = origin.as_ref().and_then(|o| self.seen.get(o)) {
            self.keys.push(key);
            return data.for_each_chunk(|_| Ok(())).map(|_| ());
        }
        let key = self.storages;
        self.storages += 1;
        self.record(&format!("data/{key}"), info.nbytes, true)?;
        let written = data.for_each_chunk(|chunk| self.put(chunk))?;
        check_size(&info, written)?;
        if let Some(o) = origin {
            self.seen.insert(o, key);
        }
        self.keys.push(key);
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        let pickle = state_dict_pickle(&self.plan, &self.keys)?;
        let records: [(&str, &[u8]); 6] = [
            ("data.pkl", &pickle),
            (".format_version", b"1"),
            (".storage_alignment", b"64"),
            ("byteorder", b"little"),
            ("version", b"3\n"),
            // torch writes a random id; a fixed one keeps outputs reproducible.
            (
                ".data/serialization_id",
                b"0000000000000000000000000000000000000000",
            ),
        ];
        for (name, bytes) in records {
            self.record(name, bytes.len() as u64, name == "data.pkl")?;
            self.put(bytes)?;
        }
        let zip = self
            .zip
            .take()
            .ok_or_else(|| Error::usage(code::CALL_ORDER, "PyTorch writer not begun"))?;
        let out = zip.finish().map_err(|e| zip_error("<pytorch output>", e))?;
        out.into_inner().0.commit()
    }
}

/// `data.pkl`: an `OrderedDict` of every tensor, rebuilt from its storage.
fn state_dict_pickle(plan: &[TensorInfo], keys: &[usize]) -> Result<Vec<u8>> {
    let mut p = Pickle(vec![0x80, 2]);
    p.global("collections", "OrderedDict");
    p.0.extend_from_slice(b")R");
    p.0.push(b'(');
    for (t, &key) in plan.iter().zip(keys) {
        let storage = storage_of(t.dtype)
            .ok_or_else(|| Error::unsupported(code::DTYPE_NOT_HELD, format!("tensor '{}'", t.name)))?;
        let elem = t.dtype.storage_bytes(1).unwrap_or(1).max(1);
        let numel = t.nbytes / elem;
        p.string(&t.name);
        let untyped = match storage {
            Storage::Typed(class) => {
                p.global("torch._utils", "_rebuild_tensor_v2");
                p.0.extend_from_slice(b"((");
                p.string("storage");
                p.global("torch", class);
                None
            }
            Storage::Untyped(dtype) => {
                p.global("torch._utils", "_rebuild_tensor_v3");
                p.0.extend_from_slice(b"((");
                p.string("storage");
                p.global("torch.storage", "UntypedStorage");
                Some(dtype)
            }
        };
        p.string(&key.to_string());
        p.string("cpu");
        // Typed storages count elements, untyped ones bytes.
        p.int(if untyped.is_some() { t.nbytes } else { numel });
        p.0.extend_from_slice(b"tQ");
        p.int(0);
        p.tuple(&t.shape);
        // Contiguous strides, in elements.
        let mut strides = vec![0u64; t.shape.len()];
        let mut step = 1u64;
        for (s, &d) in strides.iter_mut().zip(&t.shape).rev() {
            *s = step;
            step = step.saturating_mul(d.max(1));
        }
        p.tuple(&strides);
        p.0.push(0x89); // NEWFALSE: requires_grad
        p.global("collections", "OrderedDict");
        p.0.extend_from_slice(b")R"); // backward hooks
        if let Some(dtype) = untyped {
            p.global("torch", dtype);
        }
        p.0.extend_from_slice(b"tR");
    }
    p.0.extend_from_slice(b"u.");
    Ok(p.0)
}

/// Protocol-2 opcodes, as `pickle` spells them.
struct Pickle(Vec<u8>);

impl Pickle {
    fn global(&mut self, module: &str, name: &str) {
        self.0.push(b'c');
        self.0.extend_from_slice(module.as_bytes());
        self.0.push(b'\n');
        self.0.extend_from_slice(name.as_bytes());
        self.0.push(b'\n');
    }

    fn string(&mut self, s: &str) {
        self.0.push(b'X');
        self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
    }

    fn int(&mut self, v: u64) {
        if v < 256 {
            self.0.extend_from_slice(&[b'K', v as u8]);
        } else if v < 65536 {
            self.0.push(b'M');
            self.0.extend_from_slice(&(v as u16).to_le_bytes());
        } else if v < (1 << 31) {
            self.0.push(b'J');
            self.0.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            // LONG1: little-endian two's complement, here always positive.
            let mut b = v.to_le_bytes().to_vec();
            while b.len() > 1 && b[b.len() - 1] == 0 && b[b.len() - 2] & 0x80 == 0 {
                b.pop();
            }
            if b[b.len() - 1] & 0x80 != 0 {
                b.push(0);
            }
            self.0.extend_from_slice(&[0x8a, b.len() as u8]);
            self.0.extend_from_slice(&b);
        }
    }

    fn tuple(&mut self, items: &[u64]) {
        match items.len() {
            0 => self.0.push(b')'),
            1..=3 => {
                for &v in items {
                    self.int(v);
                }
                self.0.push([0x85, 0x86, 0x87][items.len() - 1]);
            }
            _ => {
                self.0.push(b'(');
                for &v in items {
                    self.int(v);
                }
                self.0.push(b't');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorcast_core::{MemoryStore, Metadata};

    #[test]
    fn duplicate_and_empty_names_are_refused_before_writing() {
        let store = MemoryStore::new();
        for names in [&["a", "a"][..], &[""]] {
            let plan = Plan {
                tensors: names
                    .iter()
                    .map(|n| TensorInfo::new(*n, DType::F32, vec![1]).unwrap())
                    .collect(),
                metadata: Metadata::new(),
            };
            let mut w = PytorchWriter::to_target(Box::new(store.target("o.pt")));
            assert!(w.begin(&plan).is_err(), "{names:?}");
        }
        assert!(store.names().is_empty());
    }
}
