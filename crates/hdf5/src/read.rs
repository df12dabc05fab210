//! An HDF5 file as a [`Source`]: the group tree walked once at open (every
//! dataset's name, type and shape from its object header), each dataset's
//! elements decoded when asked for.

use crate::rules;
use hdf5_reader::{ByteOrder, Datatype};
use std::path::{Path, PathBuf};
use tensorcast_core::code;
use tensorcast_core::{
    Array, Bytes, DType, Error, FormatError, Limits, Metadata, Result, Source, TensorData, TensorInfo, Value,
    ValueKind,
};

fn err(rule: &'static str, detail: impl Into<String>) -> FormatError {
    FormatError::new(crate::FORMAT, rule, detail)
}

/// Bytes the decoder reads from: ours, shared without a copy.
struct Shared(Bytes);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Deflate's best case, about 1032:1 (the bound the zip readers use too).
const MAX_DEFLATE_RATIO: u64 = 1032;

/// One dataset the walk found.
struct Entry {
    /// Its path in the file (`/group/weight`).
    path: String,
    /// Whether its elements are stored big-endian.
    big_endian: bool,
}

/// An open HDF5 file.
pub struct Hdf5File {
    path: PathBuf,
    file: hdf5_reader::Hdf5File,
    tensors: Vec<TensorInfo>,
    entries: Vec<Entry>,
    metadata: Metadata,
    limits: Limits,
    warnings: Vec<String>,
    /// The file's length, bounding what its datasets can decode to.
    file_len: u64,
}

/// The tensorcast dtype of an HDF5 element type, and whether it is stored
/// big-endian; the type's description when tensorcast does not hold it.
fn dtype_of(dt: &Datatype) -> std::result::Result<(DType, bool), String> {
    let big = |o: &ByteOrder| matches!(o, ByteOrder::BigEndian);
    match dt {
        Datatype::FixedPoint {
            size,
            signed,
            byte_order,
        } => {
            let d = match (size, signed) {
                (1, true) => DType::I8,
                (1, false) => DType::U8,
                (2, true) => DType::I16,
                (2, false) => DType::U16,
                (4, true) => DType::I32,
                (4, false) => DType::U32,
                (8, true) => DType::I64,
                (8, false) => DType::U64,
                _ => return Err(format!("a {size}-byte integer")),
            };
            Ok((d, big(byte_order)))
        }
        Datatype::FloatingPoint { size, byte_order } => {
            let d = match size {
                2 => DType::F16,
                4 => DType::F32,
                8 => DType::F64,
                _ => return Err(format!("a {size}-byte float")),
            };
            Ok((d, big(byte_order)))
        }
        // h5py stores numpy's bool as an enum of one byte, FALSE = 0, TRUE = 1.
        Datatype::Enum { base, members } => {
            let is_bool = members.len() == 2
                && members
                    .iter()
                    .any(|m| m.name == "FALSE" && m.value.iter().all(|&b| b == 0))
                && members
                    .iter()
                    .any(|m| m.name == "TRUE" && m.value.first() == Some(&1));
            match (is_bool, base.as_ref()) {
                (true, Datatype::FixedPoint { size: 1, .. }) => Ok((DType::Bool, false)),
                // Other enums hold their base integers.
                (_, base @ Datatype::FixedPoint { .. }) => dtype_of(base),
                _ => Err("an enum over a non-integer type".into()),
            }
        }
        // h5py's complex numbers: a compound of two floats named r and i.
        Datatype::Compound { size, fields } => {
            if let [r, i] = fields.as_slice() {
                if r.name == "r" && i.name == "i" && r.byte_offset == 0 && r.datatype == i.datatype {
                    if let Datatype::FloatingPoint { size: f, byte_order } = &r.datatype {
                        if u32::from(*f) == i.byte_offset && *size == 2 * u32::from(*f) {
                            match f {
                                4 => return Ok((DType::C64, big(byte_order))),
                                8 => return Ok((DType::C128, big(byte_order))),
                                _ => {}
                            }
                        }
                    }
                }
            }
            Err("a compound type".into())
        }
        Datatype::String { .. } => Err("a fixed-length string".into()),
        Datatype::VarLen { .. } => Err("variable-length data".into()),
        Datatype::Reference { .. } => Err("an object or region reference".into()),
        Datatype::Opaque { tag, .. } => Err(format!("an opaque type ('{tag}')")),
        Datatype::Bitfield { .. } => Err("a bitfield".into()),
        Datatype::Array { .. } => Err("an array type".into()),
    }
}

/// A root attribute as a metadata value, when it is a string or numbers
/// (scalars, or a one-dimensional array as an array).
fn attribute_value(a: &hdf5_reader::Attribute) -> Option<Value> {
    if let Ok(s) = a.read_string() {
        return Some(Value::Str(s));
    }
    let numbers = |kind: ValueKind, values: Vec<Value>| {
        if a.shape.is_empty() && values.len() == 1 {
            values.into_iter().next()
        } else {
            Some(Value::Array(Array::from_values(kind, values)))
        }
    };
    match &a.datatype {
        Datatype::FixedPoint {
            size,
            signed,
            byte_order,
        } => {
            let width = usize::from(*size);
            if !matches!(width, 1 | 2 | 4 | 8) || !a.raw_data.len().is_multiple_of(width) {
                return None;
            }
            let values = a.raw_data.chunks_exact(width).map(|e| {
                let mut b = [0u8; 8];
                b[..width].copy_from_slice(e);
                if matches!(byte_order, ByteOrder::BigEndian) {
                    b[..width].reverse();
                }
                let raw = u64::from_le_bytes(b);
                if *signed {
                    let shift = 64 - 8 * width as u32;
                    Value::I64(((raw << shift) as i64) >> shift)
                } else {
                    Value::U64(raw)
                }
            });
            let kind = if *signed { ValueKind::I64 } else { ValueKind::U64 };
            numbers(kind, values.collect())
        }
        Datatype::FloatingPoint { size, byte_order } => {
            let width = usize::from(*size);
            if !matches!(width, 4 | 8) || !a.raw_data.len().is_multiple_of(width) {
                return None;
            }
            let values = a.raw_data.chunks_exact(width).map(|e| {
                let mut b = e.to_vec();
                if matches!(byte_order, ByteOrder::BigEndian) {
                    b.reverse();
                }
                Value::F64(match width {
                    4 => f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                    _ => f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
                })
            });
            numbers(ValueKind::F64, values.collect())
        }
        _ => a
            .read_strings()
            .ok()
            .map(|v| Value::Array(Array::from(v.iter().collect::<tensorcast_core::Strings>()))),
    }
}

impl Hdf5File {
    /// Opens the HDF5 file whose bytes are `bytes` (called `path` in errors);
    /// `extra` metadata (a Keras archive's config) comes first.
    pub fn from_bytes(path: &Path, bytes: Bytes, limits: &Limits, extra: Metadata) -> Result<Hdf5File> {
        let fail = |e: FormatError| Error::from(e.in_file(path));
        let file_len = bytes.len() as u64;
        let cap = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let options = hdf5_reader::OpenOptions {
            // Each dataset is read once: no chunk is worth keeping.
            chunk_cache_bytes: 0,
            max_object_header_bytes: cap(limits.max_header_bytes),
            max_read_bytes: cap(limits.max_alloc_bytes),
            max_chunk_bytes: hdf5_reader::DEFAULT_MAX_CHUNK_BYTES.min(cap(limits.max_alloc_bytes)),
            ..Default::default()
        };
        let file = hdf5_reader::Hdf5File::from_owner(Shared(bytes), options)
            .map_err(|e| fail(err(rules::STRUCTURE, format!("not a readable HDF5 file: {e}"))))?;
        let root = file
            .root_group()
            .map_err(|e| fail(err(rules::STRUCTURE, format!("root group: {e}"))))?;
        let mut found = Vec::new();
        walk(&root, "/", &mut Vec::new(), &mut found, limits).map_err(fail)?;
        let mut metadata = extra;
        let mut warnings = Vec::new();
        for a in root
            .attributes()
            .map_err(|e| fail(err(rules::STRUCTURE, format!("root attributes: {e}"))))?
        {
            match attribute_value(&a) {
                Some(v) => {
                    metadata.insert(a.name.clone(), v);
                }
                None => warnings.push(format!(
                    "{}: root attribute '{}' is neither text nor numbers; not kept as metadata",
                    path.display(),
                    a.name
                )),
            }
        }
        let mut tensors = Vec::with_capacity(found.len());
        let mut entries = Vec::with_capacity(found.len());
        for (name, ds) in found {
            let shape = ds.shape().to_vec();
            let tensor_name = name.trim_start_matches('/').to_string();
            let (info, big_endian) = match dtype_of(ds.dtype()) {
                Ok((dtype, big)) => {
                    let info = TensorInfo::new(&tensor_name, dtype, shape.clone()).ok_or_else(|| {
                        fail(err(rules::SIZE, format!("shape {shape:?} overflows")).tensor(&tensor_name))
                    })?;
                    (info, big)
                }
                Err(kind) => {
                    let mut info = TensorInfo::new(&tensor_name, DType::U8, vec![0])
                        .expect("an empty tensor has a size");
                    info.shape = shape;
                    info.unreadable = Some(format!("HDF5 {kind}"));
                    (info, false)
                }
            };
            tensors.push(info);
            entries.push(Entry {
                path: name,
                big_endian,
            });
        }
        Ok(Hdf5File {
            path: path.to_path_buf(),
            file,
            tensors,
            entries,
            metadata,
            limits: limits.clone(),
            warnings,
            file_len,
        })
    }
}

/// Collects every dataset under `group` (named `prefix`), groups and
/// datasets in name order. `ancestors` are the object addresses of the
/// groups above: a hard link back to one of them is a cycle.
fn walk(
    group: &hdf5_reader::group::Group,
    prefix: &str,
    ancestors: &mut Vec<u64>,
    found: &mut Vec<(String, hdf5_reader::Dataset)>,
    limits: &Limits,
) -> std::result::Result<(), FormatError> {
    if ancestors.len() > limits.max_depth {
        return Err(err(
            rules::DEPTH,
            format!("groups nested deeper than {} at '{prefix}'", limits.max_depth),
        ));
    }
    if ancestors.contains(&group.address()) {
        return Err(err(
            rules::DEPTH,
            format!("group '{prefix}' links back to a group above it (a cycle)"),
        ));
    }
    ancestors.push(group.address());
    let (mut groups, mut datasets) = group
        .members()
        .map_err(|e| err(rules::STRUCTURE, format!("group '{prefix}': {e}")))?;
    datasets.sort_by(|a, b| a.name().cmp(b.name()));
    groups.sort_by(|a, b| a.name().cmp(b.name()));
    for ds in datasets {
        if found.len() as u64 >= limits.max_tensors {
            return Err(err(
                rules::COUNT,
                format!("more than {} datasets (max_tensors)", limits.max_tensors),
            )
            .limit("max_tensors"));
        }
        found.push((format!("{prefix}{}", ds.name()), ds));
    }
    for g in groups {
        let name = format!("{prefix}{}/", g.name());
        walk(&g, &name, ancestors, found, limits)?;
    }
    ancestors.pop();
    Ok(())
}

impl Source for Hdf5File {
    fn format(&self) -> &'static str {
        crate::FORMAT
    }

    fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        let (Some(info), Some(entry)) = (self.tensors.get(index), self.entries.get(index)) else {
            return Err(Error::usage(
                code::CALL_ORDER,
                format!("{}: no tensor #{index}", self.path.display()),
            ));
        };
        let fail = |e: FormatError| Error::from(e.tensor(&info.name).in_file(&self.path));
        if let Some(kind) = &info.unreadable {
            return Err(fail(err(
                rules::DTYPE,
                format!("{kind} is not numbers tensorcast holds"),
            )));
        }
        // Chunked and filtered datasets decode whole: bounded by max_alloc.
        self.limits
            .check_alloc(info.nbytes, "this HDF5 dataset decoded whole")
            .map_err(|d| fail(err(rules::ALLOC_LIMIT, d).limit("max_alloc_bytes")))?;
        // And by what the file can hold: deflate's best ratio over every
        // byte of it. A truncated or damaged file declaring more is refused
        // before the decoder allocates the dataset's buffer.
        let most = self
            .file_len
            .saturating_mul(MAX_DEFLATE_RATIO)
            .saturating_add(1 << 20);
        if info.nbytes > most {
            return Err(fail(err(
                rules::SIZE,
                format!(
                    "declares {} bytes, more than a {}-byte file can hold even deflated (an unwritten dataset of fill values this large is refused too)",
                    info.nbytes, self.file_len
                ),
            )));
        }
        let ds = self
            .file
            .dataset(&entry.path)
            .map_err(|e| fail(err(rules::READ, e.to_string())))?;
        let mut bytes = ds
            .read_raw_bytes()
            .map_err(|e| fail(err(rules::READ, e.to_string())))?;
        if bytes.len() as u64 != info.nbytes {
            return Err(fail(err(
                rules::SIZE,
                format!(
                    "decoded {} bytes, its type and shape say {}",
                    bytes.len(),
                    info.nbytes
                ),
            )));
        }
        if entry.big_endian {
            info.dtype.swap_byte_order(&mut bytes);
        }
        Ok(TensorData::Chunks(Box::new(std::iter::once(Ok(bytes)))))
    }
}
