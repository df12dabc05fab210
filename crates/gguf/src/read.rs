//! A GGUF file opened as a [`Source`].

use crate::types::{dtype_of, REMOVED};
use crate::value::{err, Cursor};
use crate::{rules, FORMAT};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use tensorcast_core::code;
use tensorcast_core::{
    element_count, Bytes, DType, Error, FormatError, Limits, Metadata, Result, Source, TensorData,
    TensorInfo, Value, CHUNK_BYTES,
};

/// A validated GGUF file. Little-endian tensor bytes are borrowed from the
/// mmap; big-endian ones are byte-swapped chunk by chunk.
pub struct GgufFile {
    path: PathBuf,
    bytes: Bytes,
    parsed: Parsed,
}

/// Everything the header says, validated.
pub(crate) struct Parsed {
    pub(crate) version: u32,
    pub(crate) big_endian: bool,
    pub(crate) alignment: u64,
    pub(crate) tensors: Vec<TensorInfo>,
    /// Absolute offset of each tensor's bytes.
    offsets: Vec<u64>,
    pub(crate) metadata: Metadata,
    /// Where the metadata and tensor infos end.
    pub(crate) header_end: u64,
    /// Where each key/value entry starts, in order, and where the last ends
    /// (the tensor infos start there): an edit copies untouched entries as
    /// their bytes.
    pub(crate) kv_bounds: Vec<usize>,
}

impl GgufFile {
    /// Maps and validates the file at `path`.
    pub fn open(path: &Path, limits: &Limits) -> Result<GgufFile> {
        Self::from_bytes(path, Bytes::open(path)?, limits)
    }

    /// Validates bytes already in hand; `path` only names them in errors.
    pub fn from_bytes(path: &Path, bytes: Bytes, limits: &Limits) -> Result<GgufFile> {
        let parsed = parse(&bytes, limits).map_err(|e| e.in_file(path))?;
        Ok(GgufFile {
            path: path.to_path_buf(),
            bytes,
            parsed,
        })
    }

    /// The GGUF version (1, 2 or 3).
    pub fn version(&self) -> u32 {
        self.parsed.version
    }

    /// True for a byte-swapped (big-endian) file.
    pub fn is_big_endian(&self) -> bool {
        self.parsed.big_endian
    }

    /// The data alignment (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.parsed.alignment
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Where the metadata and tensor infos of `buf` end, parsing them: for a
/// ranged object, whose header is fetched until it is all there (the parse
/// reads front to back, so an end inside the bytes fetched means nothing
/// outside them was read).
pub(crate) fn header_end(buf: &[u8], limits: &Limits) -> Result<u64, FormatError> {
    parse(buf, limits).map(|p| p.header_end)
}

pub(crate) fn parse(buf: &[u8], limits: &Limits) -> Result<Parsed, FormatError> {
    if buf.len() < 4 || &buf[..4] != b"GGUF" {
        return Err(err(rules::BAD_MAGIC, "file does not start with the GGUF magic").at(0));
    }
    let mut c = Cursor::new(buf, 4, false, false);
    let raw = c.u32()?;
    // No byte-order marker exists: a version whose low half is zero was written big-endian.
    let big_endian = raw & 0xffff == 0;
    let version = if big_endian { raw.swap_bytes() } else { raw };
    if !(1..=3).contains(&version) {
        return Err(err(rules::BAD_VERSION, format!("version {version} is not 1, 2 or 3")).at(4));
    }
    let mut c = Cursor::new(buf, 8, big_endian, version == 1);
    let tensor_count = c.len()?;
    let kv_count = c.len()?;
    // Smallest possible tensor info and key/value: bounds both counts by the bytes present.
    let (min_info, min_kv) = (c.len_size() + 4 + 4 + 8, c.len_size() + 4 + 1);
    if tensor_count > limits.max_tensors || tensor_count.saturating_mul(min_info) > c.remaining() {
        return Err(err(
            rules::COUNT_TOO_LARGE,
            format!("{tensor_count} tensors cannot fit in the file"),
        )
        .limit("max_tensors")
        .at(8));
    }
    if kv_count.saturating_mul(min_kv) > c.remaining() {
        return Err(err(
            rules::COUNT_TOO_LARGE,
            format!("{kv_count} metadata keys cannot fit in the file"),
        )
        .at(8));
    }

    // `kv_count` is bounded by the file's size (checked above), so room for
    // every key is reserved once instead of regrown; keys are borrowed from
    // the header for the duplicate check, never copied twice.
    let mut metadata = Metadata::with_capacity(kv_count as usize);
    let mut keys = HashSet::with_capacity(kv_count as usize);
    let mut kv_bounds = Vec::with_capacity(kv_count as usize + 1);
    for _ in 0..kv_count {
        kv_bounds.push(c.pos);
        let key = c.str()?;
        let ty = c.u32().map_err(|e| e.key(key))?;
        let value = c.value(ty, 0).map_err(|e| e.key(key))?;
        if !keys.insert(key) {
            return Err(err(rules::DUPLICATE_KEY, "appears more than once").key(key));
        }
        metadata.push_str(key, value);
    }
    drop(keys);
    kv_bounds.push(c.pos);
    let alignment = alignment(&metadata)?;

    let mut infos = Vec::with_capacity(tensor_count as usize);
    let mut names = HashSet::new();
    for _ in 0..tensor_count {
        let at = c.pos as u64;
        let name = c.string()?;
        let info = tensor_info(&mut c, limits).map_err(|e| e.tensor(&name))?;
        if !names.insert(name.clone()) {
            return Err(err(rules::DUPLICATE_TENSOR, "appears more than once")
                .tensor(name)
                .at(at));
        }
        if info.1 % alignment != 0 {
            return Err(err(
                rules::MISALIGNED_OFFSET,
                format!("offset {} is not a multiple of the alignment {alignment}", info.1),
            )
            .tensor(name));
        }
        if big_endian && matches!(info.0.dtype, DType::Quant(_)) {
            return Err(err(
                rules::BIG_ENDIAN_QUANTIZED,
                format!(
                    "big-endian {} blocks are byte-swapped inconsistently by different tools; refusing",
                    info.0.dtype
                ),
            )
            .tensor(name));
        }
        let (mut t, rel) = info;
        t.name = name;
        // Relative for now; made absolute once the data section is known.
        t.file_offset = Some(rel);
        infos.push(t);
    }
    let end = c.pos as u64;
    if end > limits.max_header_bytes {
        return Err(err(
            rules::HEADER_TOO_LARGE,
            format!(
                "metadata and tensor infos take {end} bytes, over the {}-byte limit",
                limits.max_header_bytes
            ),
        )
        .limit("max_header_bytes"));
    }
    let data_start = end
        .checked_next_multiple_of(alignment)
        .ok_or_else(|| err(rules::TENSOR_OUT_OF_BOUNDS, "data section offset overflows"))?;
    let file_len = buf.len() as u64;

    // Offsets are relative to the data section; check bounds, then overlaps in offset order.
    let mut offsets = Vec::with_capacity(infos.len());
    for t in &mut infos {
        let rel = t.file_offset.unwrap_or(0);
        let abs = data_start.checked_add(rel);
        match abs.and_then(|a| a.checked_add(t.nbytes)) {
            Some(e) if e <= file_len => {}
            _ => {
                return Err(err(
                    rules::TENSOR_OUT_OF_BOUNDS,
                    format!(
                        "{} bytes at data offset {rel} run past the end of the {file_len}-byte file",
                        t.nbytes
                    ),
                )
                .tensor(&t.name))
            }
        }
        let abs = abs.unwrap_or(0);
        offsets.push(abs);
        // Only little-endian bytes can be handed out as they sit in the file.
        t.file_offset = (!big_endian).then_some(abs);
    }
    let mut order: Vec<usize> = (0..infos.len()).collect();
    order.sort_by_key(|&i| (offsets[i], infos[i].nbytes));
    for w in order.windows(2) {
        let (a, b) = (w[0], w[1]);
        if offsets[a] + infos[a].nbytes > offsets[b] && infos[b].nbytes > 0 {
            return Err(err(
                rules::TENSOR_OVERLAP,
                format!("its bytes overlap those of '{}'", infos[a].name),
            )
            .tensor(&infos[b].name));
        }
    }
    Ok(Parsed {
        version,
        big_endian,
        alignment,
        tensors: infos,
        offsets,
        metadata,
        header_end: end,
        kv_bounds,
    })
}

/// Reads one tensor info after its name: (descriptor, offset relative to the data section).
fn tensor_info(c: &mut Cursor, limits: &Limits) -> Result<(TensorInfo, u64), FormatError> {
    let at = c.pos as u64;
    let n_dims = c.u32()?;
    if n_dims > 4 || n_dims as usize > limits.max_dims {
        return Err(err(
            rules::TOO_MANY_DIMS,
            format!("{n_dims} dimensions; ggml allows at most 4"),
        )
        .at(at));
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        dims.push(c.len()?);
    }
    let ty = c.u32()?;
    let offset = c.u64()?;
    let dtype = match dtype_of(ty) {
        Some(d) => d,
        None if REMOVED.contains(&ty) => {
            return Err(err(
                rules::REMOVED_TYPE,
                format!("ggml type {ty} was removed from ggml"),
            )
            .at(at))
        }
        None => return Err(err(rules::UNKNOWN_TYPE, format!("unknown ggml type {ty}")).at(at)),
    };
    if let DType::Quant(q) = dtype {
        let first = dims.first().copied().unwrap_or(1);
        if first % u64::from(q.block_elems()) != 0 {
            return Err(err(
                rules::PARTIAL_BLOCK,
                format!(
                    "first dimension {first} is not a multiple of the {} block size {}",
                    q.name(),
                    q.block_elems()
                ),
            )
            .at(at));
        }
    }
    // GGUF lists the fastest-varying dimension first; the IR is row-major.
    let shape: Vec<u64> = dims.iter().rev().copied().collect();
    let nbytes = element_count(&shape)
        .and_then(|n| dtype.storage_bytes(n))
        .ok_or_else(|| {
            err(
                rules::SHAPE_OVERFLOW,
                format!("shape {shape:?} of {dtype} overflows"),
            )
            .at(at)
        })?;
    Ok((
        TensorInfo {
            name: String::new(),
            dtype,
            shape,
            nbytes,
            file_offset: None,
            sparse: None,
            unreadable: None,
        },
        offset,
    ))
}

/// `general.alignment`: an unsigned integer that is a non-zero power of two; default 32.
fn alignment(metadata: &Metadata) -> Result<u64, FormatError> {
    let Some(v) = metadata.get("general.alignment") else {
        return Ok(32);
    };
    let a = match v {
        Value::U8(x) => u64::from(*x),
        Value::U16(x) => u64::from(*x),
        Value::U32(x) => u64::from(*x),
        Value::U64(x) => *x,
        _ => 0,
    };
    if a == 0 || !a.is_power_of_two() {
        return Err(err(
            rules::BAD_ALIGNMENT,
            format!("general.alignment {v:?} is not a non-zero power of two"),
        )
        .key("general.alignment"));
    }
    Ok(a)
}

impl Source for GgufFile {
    fn format(&self) -> &'static str {
        FORMAT
    }

    fn tensors(&self) -> &[TensorInfo] {
        &self.parsed.tensors
    }

    fn metadata(&self) -> &Metadata {
        &self.parsed.metadata
    }

    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        let (Some(info), Some(&offset)) = (self.parsed.tensors.get(index), self.parsed.offsets.get(index))
        else {
            return Err(Error::usage(
                code::CALL_ORDER,
                format!("{}: no tensor #{index}", self.path.display()),
            ));
        };
        let data = self.bytes.tensor_data(offset, info.nbytes).ok_or_else(|| {
            Error::usage(
                code::CALL_ORDER,
                format!("{}: tensor '{}' out of bounds", self.path.display(), info.name),
            )
        })?;
        if !self.parsed.big_endian {
            return Ok(data);
        }
        // Plain types only (quantized ones were refused): swap each element.
        let size = info.dtype.byte_size().unwrap_or(1);
        let chunks = data.aligned_chunks(size, CHUNK_BYTES).map(move |piece| {
            let mut v = piece?.into_owned();
            info.dtype.swap_byte_order(&mut v);
            Ok(v)
        });
        Ok(TensorData::Chunks(Box::new(chunks)))
    }
}
