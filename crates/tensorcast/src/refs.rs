//! Virtual references: a kerchunk reference set (version 1, Zarr v2 keys)
//! describing a file's tensors as chunks of byte ranges in the file itself,
//! so fsspec, zarr and xarray open it as a Zarr store without a copy.

use base64::Engine as _;
use serde_json::{json, Map as JsonMap, Value as Json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tensorcast_core::code;
use tensorcast_core::{DType, Error, FileTarget, Result, Source, TensorInfo, WriteTarget};

/// Default largest chunk: tensors above it are split along their first axis.
pub const DEFAULT_CHUNK_BYTES: u64 = 64 << 20;

/// The most tensor bytes one refs file inlines (base64 in its JSON).
pub const INLINE_CAP: u64 = 64 << 20;

/// What [`references`] should describe, and how.
#[derive(Clone, Debug)]
pub struct RefsOptions {
    /// How the refs name the input (a path or URL, as given); files beside
    /// it (shards, split parts) are named by replacing its last component.
    pub url: String,
    /// Dimension names by tensor name (default `NAME_dim_0`, ...).
    pub dims: HashMap<String, Vec<String>>,
    /// Tensors whose bytes are embedded in the refs instead of referenced.
    pub inline: Vec<String>,
    /// Embed every tensor smaller than this many bytes.
    pub inline_below: Option<u64>,
    /// Split tensors larger than this along their first axis.
    pub chunk_bytes: u64,
    /// Write the tensors that are not byte ranges of the input (decoded:
    /// decompressed, dequantized to F32, gathered) into this sidecar file,
    /// named in the refs by the second element, and reference them there.
    pub materialize: Option<(PathBuf, String)>,
    /// The formats to open the input with and to ask how each spells its
    /// dtypes ([`tensorcast_core::Format::dtype_attribute`]).
    pub registry: crate::Registry,
}

impl RefsOptions {
    /// Options naming the input `url`, everything else at its default.
    pub fn new(url: impl Into<String>) -> RefsOptions {
        RefsOptions {
            url: url.into(),
            dims: HashMap::new(),
            inline: Vec::new(),
            inline_below: None,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            materialize: None,
            registry: crate::Registry::builtin(),
        }
    }
}

/// A finished reference set.
#[derive(Debug)]
pub struct Refs {
    /// `{"version": 1, "refs": {...}}`.
    pub json: Json,
    /// Tensors left out, with the reason, in file order.
    pub not_virtualizable: Vec<(String, String)>,
    /// Variables described.
    pub variables: usize,
    /// Chunk references (byte ranges) written.
    pub chunks: usize,
    /// Variables embedded in the refs.
    pub inlined: usize,
    /// Variables written to the sidecar file.
    pub materialized: usize,
}

/// The Zarr v2 dtype of `dtype`'s stored bytes, and a note when the bytes
/// are another type's bit patterns (Zarr v2 has no bfloat16 or fp8).
fn zarr_dtype(dtype: DType) -> Option<(&'static str, Option<&'static str>)> {
    Some(match dtype {
        DType::Bool => ("|b1", None),
        DType::U8 => ("|u1", None),
        DType::I8 => ("|i1", None),
        DType::I16 => ("<i2", None),
        DType::U16 => ("<u2", None),
        DType::F16 => ("<f2", None),
        DType::I32 => ("<i4", None),
        DType::U32 => ("<u4", None),
        DType::F32 => ("<f4", None),
        DType::C64 => ("<c8", None),
        DType::C128 => ("<c16", None),
        DType::F64 => ("<f8", None),
        DType::I64 => ("<i8", None),
        DType::U64 => ("<u8", None),
        DType::BF16 => ("<u2", Some("bfloat16")),
        DType::F8E4M3 => ("|u1", Some("float8_e4m3fn")),
        DType::F8E5M2 => ("|u1", Some("float8_e5m2")),
        DType::F8E4M3Fnuz => ("|u1", Some("float8_e4m3fnuz")),
        DType::F8E5M2Fnuz => ("|u1", Some("float8_e5m2fnuz")),
        DType::F8E8M0 => ("|u1", Some("float8_e8m0fnu")),
        // Sub-byte floats, ggml blocks and kinds newer than this table.
        _ => return None,
    })
}

/// Whether `name` can be a Zarr array key in a flat group.
fn zarr_name_ok(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && !name.starts_with('.') && !name.starts_with("__")
}

/// The largest divisor of `n` that is at most `max` (at least 1), so every
/// chunk is whole: uncompressed Zarr chunks must hold exactly their shape.
fn rows_per_chunk(n: u64, max: u64) -> u64 {
    let max = max.max(1);
    if n <= max {
        return n.max(1);
    }
    let mut best = 1;
    let mut d = 1u64;
    while d.saturating_mul(d) <= n {
        if n.is_multiple_of(d) {
            for c in [d, n / d] {
                if c <= max && c > best {
                    best = c;
                }
            }
        }
        d += 1;
    }
    best
}

/// Rows per chunk for `n` rows when `max` fit the chunk size: a divisor of
/// `n` near `max`, or all `n` rows in one chunk when `n` has none (a prime
/// row count would otherwise give one reference per row: a 64 MiB byte
/// tensor of prime length, 64 million references).
pub(crate) fn chunk_rows(n: u64, max: u64) -> u64 {
    let rows = rows_per_chunk(n, max);
    if rows.saturating_mul(4) < max.min(n) {
        n.max(1)
    } else {
        rows
    }
}

/// `url` with its last path component replaced by `file`.
pub(crate) fn beside(url: &str, file: &str) -> String {
    match url.rfind('/') {
        Some(i) => format!("{}{}", &url[..=i], file),
        None => file.to_string(),
    }
}

/// How one variable's bytes are reached.
enum Place {
    /// At `offset` of the file `url`.
    Range { url: String, offset: u64 },
    /// Embedded.
    Inline(Vec<u8>),
}

/// Builds the reference set of `source` (opened without adapters, so its
/// tensors are as the file stores them). With a sidecar, ggml blocks are
/// materialized dequantized to F32.
pub fn references(source: Box<dyn Source>, opts: &RefsOptions) -> Result<Refs> {
    let originals = source.tensors().to_vec();
    let format = source.format();
    let source: Box<dyn Source> = match opts.materialize {
        Some(_) if originals.iter().any(|t| matches!(t.dtype, DType::Quant(_))) => {
            Box::new(tensorcast_quant::Dequantize::keeping_undecodable(source)?)
        }
        _ => source,
    };
    // Zarr has no sparse arrays: a sparse tensor is its dense form, which
    // only inlining or materializing can give (it is in no file as such).
    let source: Box<dyn Source> = if originals.iter().any(|t| t.sparse.is_some()) {
        Box::new(tensorcast_core::sparse::Densify::new(source, Default::default())?)
    } else {
        source
    };
    let mut refs = JsonMap::new();
    refs.insert(
        ".zgroup".into(),
        Json::String(json!({"zarr_format": 2}).to_string()),
    );
    refs.insert(
        ".zattrs".into(),
        Json::String(source.metadata().to_json().to_string()),
    );
    let mut out = Refs {
        json: Json::Null,
        not_virtualizable: Vec::new(),
        variables: 0,
        chunks: 0,
        inlined: 0,
        materialized: 0,
    };
    check_dimensions(source.tensors(), &opts.dims)?;
    let mut inlined_bytes = 0u64;
    let mut sidecar = Sidecar::new(opts.materialize.as_ref());
    for (index, (info, original)) in source.tensors().iter().zip(&originals).enumerate() {
        if let Some(why) = not_a_variable(info) {
            out.not_virtualizable.push((info.name.clone(), why));
            continue;
        }
        let named = opts.inline.contains(&info.name);
        let mut inline = named || opts.inline_below.is_some_and(|b| info.nbytes < b);
        // Inlined bytes live in memory several times over (the tensor, its
        // base64, the JSON text): their total is capped. A tensor named for
        // inlining past the cap is refused; one only under --inline-below's
        // size is referenced instead, as it would be without inlining.
        if inline && inlined_bytes.saturating_add(info.nbytes) > INLINE_CAP {
            if named {
                return Err(Error::unsupported(
                    code::TOO_LARGE,
                    format!(
                        "tensor '{}': inlining its {} bytes would take the inlined data past {INLINE_CAP} bytes; reference it, or materialize it into a sidecar",
                        info.name, info.nbytes
                    ),
                ));
            }
            inline = false;
        }
        if inline {
            inlined_bytes += info.nbytes;
        }
        let place = match (zarr_dtype(info.dtype), source.raw_location(index)) {
            (None, _) => {
                out.not_virtualizable
                    .push((info.name.clone(), not_elements(info)));
                continue;
            }
            (Some(_), _) if inline => Place::Inline(source.tensor_data(index)?.into_vec()?),
            (Some(_), Some(loc)) => {
                let url = loc
                    .file
                    .map_or_else(|| opts.url.clone(), |f| beside(&opts.url, f));
                Place::Range {
                    url,
                    offset: loc.offset,
                }
            }
            (Some(_), None) => match sidecar.write(&*source, index, info)? {
                Some(place) => place,
                None => {
                    out.not_virtualizable
                        .push((info.name.clone(), not_virtual_reason(&*source, index, original)));
                    continue;
                }
            },
        };
        if matches!(place, Place::Inline(_)) {
            out.inlined += 1;
        } else if sidecar.owns(&place) {
            out.materialized += 1;
        }
        out.chunks += variable(&mut refs, format, original, info, place, opts)?;
        out.variables += 1;
    }
    sidecar.commit()?;
    out.json = json!({"version": 1, "refs": Json::Object(refs)});
    Ok(out)
}

/// Why a tensor can be no Zarr variable at all, whatever its bytes: a name
/// Zarr cannot key, or elements tensorcast does not read.
pub(crate) fn not_a_variable(info: &TensorInfo) -> Option<String> {
    if !zarr_name_ok(&info.name) {
        return Some("the name cannot be a Zarr array key".into());
    }
    info.unreadable
        .as_ref()
        .map(|kind| format!("{kind} elements, which tensorcast does not read"))
}

/// Why tensor `index` of `source` (as `original` describes it before any
/// densifying) is not a byte range of its file.
pub(crate) fn not_virtual_reason(source: &dyn Source, index: usize, original: &TensorInfo) -> String {
    let sparse = original.sparse.as_ref().map(|s| {
        format!(
            "{}: Zarr has no sparse arrays; inlining or materializing gives its dense form",
            s.describe()
        )
    });
    sparse
        .or_else(|| {
            source
                .storage_note(index)
                .map(|n| format!("stored {n}, not as raw bytes"))
        })
        .unwrap_or_else(|| {
            "its bytes are not stored raw in the file (compressed, byte-swapped or strided)".into()
        })
}

/// Why a tensor has no Zarr element type.
fn not_elements(info: &TensorInfo) -> String {
    match info.dtype {
        DType::Quant(q) => format!(
            "{} blocks are not array elements (materialize to reference them dequantized to F32)",
            q.name()
        ),
        d => format!(
            "{} is packed below one byte per element, which Zarr v2 cannot express",
            d.name()
        ),
    }
}

/// The dimension names every variable will get, checked as xarray will
/// read them: one name is one length everywhere, a variable repeats no
/// name, and a name that is also a variable's is that variable's own single
/// dimension (xarray takes it as the coordinate). Refs breaking these
/// opened nowhere; they are refused before any is written.
pub(crate) fn check_dimensions(
    tensors: &[TensorInfo],
    all_dims: &HashMap<String, Vec<String>>,
) -> Result<()> {
    let bad = |msg: String| Error::usage(code::BAD_OPTION, msg);
    let mut lengths: HashMap<String, (u64, &str)> = HashMap::new();
    let names: HashMap<&str, &TensorInfo> = tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    for t in tensors {
        let Some(dims) = all_dims.get(&t.name) else {
            continue;
        };
        if dims.len() != t.shape.len() {
            // variable() says so with the tensor's name.
            continue;
        }
        for (i, (d, &len)) in dims.iter().zip(&t.shape).enumerate() {
            if dims[..i].contains(d) {
                return Err(bad(format!("dims for '{}' name '{d}' twice", t.name)));
            }
            match lengths.get(d.as_str()) {
                Some(&(other, by)) if other != len => {
                    return Err(bad(format!(
                        "dimension '{d}' is {other} long in '{by}' and {len} in '{}'",
                        t.name
                    )))
                }
                _ => {
                    lengths.insert(d.clone(), (len, &t.name));
                }
            }
            if let Some(v) = names.get(d.as_str()).filter(|v| v.name != t.name) {
                let own = all_dims
                    .get(&v.name)
                    .is_some_and(|vd| vd.len() == 1 && vd[0] == *d);
                if !own || v.shape != [len] {
                    return Err(bad(format!(
                        "dimension '{d}' of '{}' is also the name of a variable that is not its 1-D coordinate",
                        t.name
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Writes one variable's `.zarray`, `.zattrs` and chunk keys; returns the
/// number of chunk references.
///
/// (Dimension names are checked across all variables first by
/// [`check_dimensions`].)
fn variable(
    refs: &mut JsonMap<String, Json>,
    format: &str,
    original: &TensorInfo,
    stored: &TensorInfo,
    place: Place,
    opts: &RefsOptions,
) -> Result<usize> {
    let name = &stored.name;
    let Some((dtype, note)) = zarr_dtype(stored.dtype) else {
        return Err(Error::unsupported(
            code::DTYPE_NOT_HELD,
            format!("tensor '{name}' has no Zarr dtype"),
        ));
    };
    let shape = &stored.shape;
    let dims = match opts.dims.get(name) {
        Some(d) if d.len() == shape.len() => d.clone(),
        Some(d) => {
            return Err(Error::usage(
                code::BAD_OPTION,
                format!(
                    "dims for '{name}' name {} dimensions; the tensor has {}",
                    d.len(),
                    shape.len()
                ),
            ))
        }
        None => (0..shape.len()).map(|i| format!("{name}_dim_{i}")).collect(),
    };
    let (rows, row_bytes) = match (shape.first(), &place) {
        (Some(&d0), Place::Range { .. }) if d0 > 0 && stored.nbytes > opts.chunk_bytes => {
            let row_bytes = stored.nbytes / d0;
            (chunk_rows(d0, opts.chunk_bytes / row_bytes.max(1)), row_bytes)
        }
        (Some(&d0), _) => (d0.max(1), stored.nbytes.checked_div(d0).unwrap_or(0)),
        (None, _) => (1, stored.nbytes),
    };
    let mut chunk_shape: Vec<u64> = shape.iter().map(|&d| d.max(1)).collect();
    if let Some(first) = chunk_shape.first_mut() {
        *first = rows;
    }
    let zarray = json!({
        "chunks": chunk_shape,
        "compressor": null,
        "dtype": dtype,
        "fill_value": null,
        "filters": null,
        "order": "C",
        "shape": shape,
        "zarr_format": 2,
    });
    let mut attrs = JsonMap::new();
    attrs.insert("_ARRAY_DIMENSIONS".into(), json!(dims));
    let (key, value) = match opts.registry.get(format) {
        Some(f) => f.dtype_attribute(original.dtype),
        None => ("original_dtype", original.dtype.name().into()),
    };
    attrs.insert(key.into(), json!(value));
    if let Some(real) = note {
        attrs.insert(
            "tensorcast_stored_as".into(),
            json!(format!(
                "{real} values as their {dtype} bit patterns (Zarr v2 has no {real}): view as {real}"
            )),
        );
    }
    if original.dtype != stored.dtype {
        attrs.insert(
            "tensorcast_materialized".into(),
            json!(format!(
                "{} decoded to {}",
                original.dtype.name(),
                stored.dtype.name()
            )),
        );
    }
    refs.insert(format!("{name}/.zarray"), Json::String(zarray.to_string()));
    refs.insert(
        format!("{name}/.zattrs"),
        Json::String(Json::Object(attrs).to_string()),
    );
    let tail = ".0".repeat(shape.len().saturating_sub(1));
    match place {
        Place::Inline(bytes) => {
            if stored.numel() > 0 {
                let key = if shape.is_empty() {
                    "0".to_string()
                } else {
                    format!("0{tail}")
                };
                let text = format!(
                    "base64:{}",
                    base64::engine::general_purpose::STANDARD.encode(bytes)
                );
                refs.insert(format!("{name}/{key}"), Json::String(text));
            }
            Ok(0)
        }
        Place::Range { url, offset } => {
            if stored.numel() == 0 {
                return Ok(0);
            }
            if shape.is_empty() {
                refs.insert(format!("{name}/0"), json!([url, offset, stored.nbytes]));
                return Ok(1);
            }
            let count = shape[0].div_ceil(rows);
            let len = rows * row_bytes;
            for i in 0..count {
                refs.insert(format!("{name}/{i}{tail}"), json!([url, offset + i * len, len]));
            }
            Ok(count as usize)
        }
    }
}

/// Opens the local file `input` and writes its reference set into `output`
/// (JSON, appearing only once complete), creating the sidecar's folder when
/// `opts.materialize` asks for one. Refuses an existing output or sidecar
/// unless `force`.
pub fn references_file(
    input: impl Into<tensorcast_core::Location>,
    output: &Path,
    open: &tensorcast_core::Options,
    opts: &RefsOptions,
    force: bool,
) -> Result<Refs> {
    let sidecar = opts.materialize.as_ref().map(|(p, _)| p.as_path());
    for path in std::iter::once(output).chain(sidecar) {
        if !force && crate::occupied(path) {
            return Err(Error::usage(
                code::OUTPUT_EXISTS,
                format!("{} already exists", path.display()),
            ));
        }
    }
    if let Some(dir) = sidecar
        .and_then(Path::parent)
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let input = input.into();
    // A folder opens through its entry file, and its sources name the
    // files they read beside that entry: the refs' URL is the entry's.
    let entry = opts
        .registry
        .folder_format(&input)?
        .and_then(|f| f.folder_entry());
    let opts = match entry {
        Some(entry) => std::borrow::Cow::Owned(RefsOptions {
            url: format!("{}/{entry}", opts.url.trim_end_matches('/')),
            ..opts.clone()
        }),
        None => std::borrow::Cow::Borrowed(opts),
    };
    let refs = references(opts.registry.open(&input, open)?, &opts)?;
    let mut target = FileTarget::new(output);
    target.write_all(refs.json.to_string().as_bytes())?;
    Box::new(target).commit()?;
    Ok(refs)
}

/// The `--materialize` file: decoded tensors appended, 64-byte aligned.
struct Sidecar {
    target: Option<(Box<dyn WriteTarget>, String)>,
    written: u64,
}

impl Sidecar {
    fn new(spec: Option<&(PathBuf, String)>) -> Sidecar {
        Sidecar {
            target: spec.map(|(path, url)| {
                (
                    Box::new(FileTarget::new(path)) as Box<dyn WriteTarget>,
                    url.clone(),
                )
            }),
            written: 0,
        }
    }

    fn owns(&self, place: &Place) -> bool {
        matches!((place, &self.target), (Place::Range { url, .. }, Some((_, own))) if url == own)
    }

    /// Appends tensor `index`'s decoded bytes; `None` without a sidecar.
    fn write(&mut self, source: &dyn Source, index: usize, info: &TensorInfo) -> Result<Option<Place>> {
        if self.target.is_none() {
            return Ok(None);
        }
        let offset = self.pad()?;
        let Some((target, url)) = self.target.as_mut() else {
            return Ok(None);
        };
        let n = source
            .tensor_data(index)?
            .for_each_chunk(|c| target.write_all(c))?;
        if n != info.nbytes {
            return Err(Error::unsupported(
                code::INTERNAL,
                format!(
                    "tensor '{}': {n} bytes decoded, {} expected",
                    info.name, info.nbytes
                ),
            ));
        }
        self.written += n;
        Ok(Some(Place::Range {
            url: url.clone(),
            offset,
        }))
    }

    /// Pads to the next 64-byte boundary; returns the offset reached.
    fn pad(&mut self) -> Result<u64> {
        if let Some((target, _)) = self.target.as_mut() {
            let pad = (64 - self.written % 64) % 64;
            if pad > 0 && self.written > 0 {
                target.write_all(&vec![0u8; pad as usize])?;
                self.written += pad;
            }
        }
        Ok(self.written)
    }

    fn commit(self) -> Result<()> {
        match self.target {
            Some((target, _)) if self.written > 0 => target.commit(),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_hold_whole_rows_and_divide_the_first_axis() {
        assert_eq!(rows_per_chunk(64, 8), 8);
        assert_eq!(rows_per_chunk(21, 10), 7);
        assert_eq!(rows_per_chunk(13, 5), 1); // a prime: one row per chunk
        assert_eq!(rows_per_chunk(262_144, 100_000), 65_536);
        assert_eq!(rows_per_chunk(151_936, 40_000), 37_984);
        assert_eq!(rows_per_chunk(7, 100), 7);
        assert_eq!(rows_per_chunk(0, 4), 1);
    }

    #[test]
    fn a_row_count_without_a_fitting_divisor_stays_one_chunk() {
        assert_eq!(chunk_rows(64, 8), 8);
        assert_eq!(chunk_rows(151_936, 40_000), 37_984);
        // 67,108,879 is prime: one chunk, not one reference per row.
        assert_eq!(chunk_rows(67_108_879, 16 << 20), 67_108_879);
        assert_eq!(chunk_rows(2 * 67_108_879, 64 << 20), 2 * 67_108_879);
    }

    #[test]
    fn files_beside_keep_the_inputs_spelling() {
        assert_eq!(
            beside("s3://b/m/index.json", "a.safetensors"),
            "s3://b/m/a.safetensors"
        );
        assert_eq!(beside("index.json", "a.safetensors"), "a.safetensors");
        assert_eq!(beside("/abs/x.gguf", "x-2.gguf"), "/abs/x-2.gguf");
    }

    #[test]
    fn zarr_keys_refuse_nesting_and_reserved_names() {
        assert!(zarr_name_ok("model.layers.0.weight"));
        for bad in ["", "a/b", ".zarray", "__metadata__"] {
            assert!(!zarr_name_ok(bad), "{bad}");
        }
    }
}
