//! Chunk manifests for virtual Zarr v3 arrays (VirtualiZarr's parsers): each
//! tensor that lies raw in its file as a variable whose chunks are byte
//! ranges of that file, described as plain values for a front end to build
//! its manifest objects from (no JSON in between).
//!
//! Unlike the kerchunk refs ([`crate::references`], Zarr v2), elements Zarr
//! has no type for are still ranges: ggml blocks, bf16 and fp8 become float32
//! variables whose chunks a codec decodes (`tensorcast.decode`), chunked by
//! whole rows so every chunk is whole blocks of the file.

use crate::refs::{beside, check_dimensions, chunk_rows, not_a_variable, not_virtual_reason};
use std::collections::HashMap;
use tensorcast_core::code;
use tensorcast_core::{DType, Error, Metadata, Result, Source, TensorInfo};

/// What [`zarr_manifest`] should describe, and how.
#[derive(Clone, Debug)]
pub struct ManifestOptions {
    /// How chunk paths name the input (a URL); files beside it (shards,
    /// split parts) by replacing its last component.
    pub url: String,
    /// Dimension names by tensor name (default `NAME_dim_0`, ...).
    pub dims: HashMap<String, Vec<String>>,
    /// Tensors to leave out.
    pub skip: Vec<String>,
    /// Split tensors larger than this many stored bytes along their first
    /// axis (whole rows: whole blocks for ggml types).
    pub chunk_bytes: u64,
    /// Tensors that are not byte ranges to read and decode into memory
    /// ([`ZarrManifest::loaded`]), so a front end can serve them eagerly.
    pub load: Load,
    /// The formats, to ask how each spells its dtypes.
    pub registry: crate::Registry,
}

/// Which tensors that are not byte ranges [`zarr_manifest`] decodes.
#[derive(Clone, Debug, Default)]
pub enum Load {
    /// None: they are only listed.
    #[default]
    Nothing,
    /// These, by name.
    Named(Vec<String>),
    /// Every one.
    All,
}

impl Load {
    fn wants(&self, name: &str) -> bool {
        match self {
            Load::Nothing => false,
            Load::Named(names) => names.iter().any(|n| n == name),
            Load::All => true,
        }
    }
}

/// A tensor read and decoded whole: its elements as the variable holds them.
#[derive(Clone, Debug)]
pub struct LoadedArray {
    /// The tensor's name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<u64>,
    /// The Zarr v3 data type of `bytes` (float32 for decoded kinds).
    pub data_type: &'static str,
    /// Little-endian elements, row-major.
    pub bytes: Vec<u8>,
    /// Attributes: the original dtype and why it was loaded.
    pub attrs: Vec<(String, String)>,
}

impl ManifestOptions {
    /// Options naming the input `url`, everything else at its default.
    pub fn new(url: impl Into<String>) -> ManifestOptions {
        ManifestOptions {
            url: url.into(),
            dims: HashMap::new(),
            skip: Vec::new(),
            chunk_bytes: crate::DEFAULT_CHUNK_BYTES,
            load: Load::Nothing,
            registry: crate::Registry::builtin(),
        }
    }
}

/// How a variable's stored bytes become its elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Little-endian elements of the variable's own Zarr data type.
    Plain,
    /// Elements of the named tensorcast dtype (`BF16`, `F8_E4M3`, `Q4_K`…)
    /// that the `tensorcast.decode` codec turns into float32 exactly (ggml
    /// blocks as gguf-py dequantizes them).
    Decode(String),
}

/// One virtual variable.
#[derive(Clone, Debug)]
pub struct VirtualArray {
    /// The tensor's name.
    pub name: String,
    /// Its shape (row-major, slowest axis first).
    pub shape: Vec<u64>,
    /// The Zarr v3 data type of its elements as read (`float32`, `int8`…).
    pub data_type: &'static str,
    /// How the stored bytes become elements.
    pub encoding: Encoding,
    /// The chunk shape: whole rows along the first axis.
    pub chunk_shape: Vec<u64>,
    /// Dimension names.
    pub dims: Vec<String>,
    /// Chunks in order along the first axis: (URL, offset, length). Empty
    /// for a tensor without elements.
    pub chunks: Vec<(String, u64, u64)>,
    /// Attributes: the original dtype as the format spells it.
    pub attrs: Vec<(String, String)>,
}

/// A file's virtual variables.
#[derive(Debug)]
pub struct ZarrManifest {
    /// The variables, in file order.
    pub arrays: Vec<VirtualArray>,
    /// Tensors that are not byte ranges of the files, with the reason.
    pub not_virtual: Vec<(String, String)>,
    /// Those of them [`ManifestOptions::load`] asked for, decoded.
    pub loaded: Vec<LoadedArray>,
    /// The file's metadata (group attributes).
    pub metadata: Metadata,
    /// The format read.
    pub format: &'static str,
}

/// The Zarr v3 data type of `dtype`'s elements as stored, when Zarr has it.
fn plain_type(dtype: DType) -> Option<&'static str> {
    Some(match dtype {
        DType::Bool => "bool",
        DType::U8 => "uint8",
        DType::I8 => "int8",
        DType::I16 => "int16",
        DType::U16 => "uint16",
        DType::F16 => "float16",
        DType::I32 => "int32",
        DType::U32 => "uint32",
        DType::F32 => "float32",
        DType::C64 => "complex64",
        DType::C128 => "complex128",
        DType::F64 => "float64",
        DType::I64 => "int64",
        DType::U64 => "uint64",
        _ => return None,
    })
}

/// Whether the codec decodes `dtype` to float32 (what `decode_to_f32` takes).
pub fn decodable(dtype: DType) -> bool {
    match dtype {
        DType::BF16
        | DType::F8E4M3
        | DType::F8E5M2
        | DType::F8E4M3Fnuz
        | DType::F8E5M2Fnuz
        | DType::F8E8M0 => true,
        DType::Quant(q) => tensorcast_quant::can_dequantize(q),
        _ => false,
    }
}

/// How many elements `nbytes` stored bytes of `dtype` hold, when they are
/// whole elements (whole blocks for ggml types).
pub fn elements_in(dtype: DType, nbytes: u64) -> Option<u64> {
    match dtype {
        DType::Quant(q) => {
            let (bytes, elems) = (u64::from(q.block_bytes()), u64::from(q.block_elems()));
            (bytes > 0 && nbytes.is_multiple_of(bytes)).then(|| (nbytes / bytes).checked_mul(elems))?
        }
        d => {
            let one = d
                .storage_bytes(1)
                .filter(|&b| b > 0 && d.storage_bytes(8) == Some(8 * b))?;
            nbytes.is_multiple_of(one).then_some(nbytes / one)
        }
    }
}

/// Decodes `count` elements of `dtype` stored in `bytes` to float32: the
/// codec's work. ggml blocks are dequantized bit-identically to gguf-py;
/// bf16 and fp8 widen exactly.
pub fn decode_to_f32(dtype: DType, bytes: &[u8], count: u64) -> Result<Vec<f32>> {
    let bad = |why: String| {
        Error::unsupported(
            code::BAD_DATA,
            format!("tensorcast.decode ({}): {why}", dtype.name()),
        )
    };
    if !decodable(dtype) {
        return Err(bad("not a dtype this codec decodes".into()));
    }
    let expected = dtype.storage_bytes(count);
    if expected != Some(bytes.len() as u64) {
        return Err(bad(format!(
            "{} bytes cannot hold exactly {count} elements",
            bytes.len()
        )));
    }
    let n = usize::try_from(count).map_err(|_| bad("too many elements".into()))?;
    match dtype {
        DType::Quant(q) => {
            let mut out = vec![0f32; n];
            tensorcast_quant::dequantize(q, bytes, &mut out).map_err(bad)?;
            Ok(out)
        }
        _ => {
            let mut out = Vec::with_capacity(bytes.len() * 4);
            tensorcast_core::cast::cast_slice(dtype, DType::F32, bytes, &mut out)
                .map_err(|e| bad(e.to_string()))?;
            Ok(out
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect())
        }
    }
}

/// The virtual variables of `source` (opened without adapters: tensors as
/// the file stores them).
pub fn zarr_manifest(source: &dyn Source, opts: &ManifestOptions) -> Result<ZarrManifest> {
    let format = source.format();
    let mut out = ZarrManifest {
        arrays: Vec::new(),
        not_virtual: Vec::new(),
        loaded: Vec::new(),
        metadata: source.metadata().clone(),
        format,
    };
    check_dimensions(source.tensors(), &opts.dims)?;
    for (index, info) in source.tensors().iter().enumerate() {
        if opts.skip.contains(&info.name) {
            continue;
        }
        if let Some(why) = not_a_variable(info) {
            out.not_virtual.push((info.name.clone(), why));
            continue;
        }
        let (data_type, encoding) = match plain_type(info.dtype) {
            Some(t) => (t, Encoding::Plain),
            None if decodable(info.dtype) => ("float32", Encoding::Decode(info.dtype.name().to_string())),
            None => {
                out.not_virtual.push((
                    info.name.clone(),
                    format!("{} elements have no Zarr type or decoder", info.dtype.name()),
                ));
                continue;
            }
        };
        let loc = match source.raw_location(index) {
            Some(loc) if info.sparse.is_none() => loc,
            _ => {
                let reason = not_virtual_reason(source, index, info);
                if opts.load.wants(&info.name) && info.sparse.is_none() {
                    out.loaded
                        .push(load(source, index, info, data_type, &encoding, &reason, opts)?);
                }
                out.not_virtual.push((info.name.clone(), reason));
                continue;
            }
        };
        let url = loc
            .file
            .map_or_else(|| opts.url.clone(), |f| beside(&opts.url, f));
        out.arrays
            .push(array(info, data_type, encoding, url, loc.offset, format, opts)?);
    }
    Ok(out)
}

/// Reads tensor `index` whole (the reader undoes compression, strides and
/// byte order) and decodes it as its variable holds it.
fn load(
    source: &dyn Source,
    index: usize,
    info: &TensorInfo,
    data_type: &'static str,
    encoding: &Encoding,
    reason: &str,
    opts: &ManifestOptions,
) -> Result<LoadedArray> {
    let raw = source.tensor_data(index)?.into_vec()?;
    let bytes = match encoding {
        Encoding::Plain => raw,
        Encoding::Decode(_) => decode_to_f32(info.dtype, &raw, info.numel())?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
    };
    let (key, value) = match opts.registry.get(source.format()) {
        Some(f) => f.dtype_attribute(info.dtype),
        None => ("original_dtype", info.dtype.name().into()),
    };
    Ok(LoadedArray {
        name: info.name.clone(),
        shape: info.shape.clone(),
        data_type,
        bytes,
        attrs: vec![
            (key.to_string(), value),
            (
                "tensorcast_loaded".into(),
                format!("{reason}; decoded into memory by the parser"),
            ),
        ],
    })
}

/// One variable's chunking, dims and attributes.
fn array(
    info: &TensorInfo,
    data_type: &'static str,
    encoding: Encoding,
    url: String,
    offset: u64,
    format: &str,
    opts: &ManifestOptions,
) -> Result<VirtualArray> {
    let name = &info.name;
    let shape = info.shape.clone();
    let dims = match opts.dims.get(name) {
        Some(d) if d.len() == shape.len() => d.clone(),
        Some(d) => {
            return Err(Error::usage(
                code::BAD_OPTION,
                format!(
                    "dimension_names for '{name}' name {} dimensions; the tensor has {}",
                    d.len(),
                    shape.len()
                ),
            ))
        }
        None => (0..shape.len()).map(|i| format!("{name}_dim_{i}")).collect(),
    };
    // Rows along the first axis: a row's stored bytes are whole elements
    // (whole blocks: a ggml row is whole blocks), so any run of rows is a
    // byte range that decodes alone.
    let rows_total = shape.first().copied().unwrap_or(1);
    let row_bytes = info.nbytes.checked_div(rows_total).unwrap_or(0);
    // A 1-D tensor of blocks is one row of them: it stays one chunk.
    let blocks = matches!(info.dtype, DType::Quant(_));
    let rows = if row_bytes > 0 && info.nbytes > opts.chunk_bytes && !(blocks && shape.len() == 1) {
        chunk_rows(rows_total, opts.chunk_bytes / row_bytes)
    } else {
        rows_total.max(1)
    };
    let mut chunk_shape: Vec<u64> = shape.iter().map(|&d| d.max(1)).collect();
    if let Some(first) = chunk_shape.first_mut() {
        *first = rows;
    }
    let chunks = if info.numel() == 0 {
        Vec::new()
    } else if shape.is_empty() {
        vec![(url, offset, info.nbytes)]
    } else {
        let len = rows * row_bytes;
        (0..rows_total.div_ceil(rows))
            .map(|i| (url.clone(), offset + i * len, len))
            .collect()
    };
    let (key, value) = match opts.registry.get(format) {
        Some(f) => f.dtype_attribute(info.dtype),
        None => ("original_dtype", info.dtype.name().into()),
    };
    Ok(VirtualArray {
        name: name.clone(),
        shape,
        data_type,
        encoding,
        chunk_shape,
        dims,
        chunks,
        attrs: vec![(key.to_string(), value)],
    })
}
