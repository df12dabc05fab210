//! A `.zt` file opened as a [`Source`]: dense objects and `zt.sparse_csr/1`
//! objects (as sparse CSR tensors, their data checked when read).

use crate::cbor::{self, Cbor};
use crate::{dtypes, name_ok, rules, ALIGN, FOOTER, FORMAT, MAGIC};
use std::path::{Path, PathBuf};
use tensorcast_core::code;
use tensorcast_core::{
    Bytes, DType, Error, FormatError, Limits, Metadata, Result, Source, TensorData, TensorInfo, Value,
    CHUNK_BYTES,
};

/// The spec's cap on a manifest, before parsing.
const MAX_MANIFEST: u64 = 1 << 30;
/// The one encoding read here besides raw.
pub(crate) const ZSTD_SEEKABLE: &str = "zt.zstd-seekable/1";

fn err(rule: &'static str, detail: impl Into<String>) -> FormatError {
    FormatError::new(FORMAT, rule, detail)
}

/// Where a part's bytes are and how to check them.
struct Part {
    offset: u64,
    length: u64,
    /// Bytes once decoded.
    decoded: u64,
    /// Element type (with the logical type applied).
    dtype: DType,
    zstd: bool,
    /// XXH3-64 of the decoded bytes, when the manifest gives one.
    digest: Option<u64>,
}

/// A validated `.zt` file; raw parts are borrowed from its mapping.
pub struct ZtFile {
    path: PathBuf,
    bytes: Bytes,
    tensors: Vec<TensorInfo>,
    /// Each tensor's parts in the order of its bytes (one for dense; CSR:
    /// indptr, indices, values, as the IR lays sparse bytes out).
    parts: Vec<Vec<Part>>,
    metadata: Metadata,
    limits: Limits,
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default())
}

/// The manifest's (offset, length) from the footer, checked (steps 1–4 of
/// the spec's reading procedure, before the hash).
pub(crate) fn footer(b: &[u8], limits: &Limits) -> std::result::Result<(u64, u64, u64), FormatError> {
    let len = b.len() as u64;
    if b.starts_with(b"ZTEN1000") || b.starts_with(b"ZTEN0001") {
        return Err(err(
            rules::VERSION,
            "a zTensor v1 (or v0.1) file: only container v2 (ztensor 2.x) is read",
        ));
    }
    if len < 48 || b[..8] != MAGIC || b[b.len() - 8..] != MAGIC {
        return Err(err(
            rules::MAGIC,
            "not a zTensor v2 file (magic at the start or end missing, or under 48 bytes)",
        ));
    }
    let f = b.len() - FOOTER as usize;
    let (offset, length, hash) = (u64_at(b, f), u64_at(b, f + 8), u64_at(b, f + 16));
    let version = u32::from_le_bytes(b[f + 24..f + 28].try_into().unwrap_or_default());
    if version != 2 {
        return Err(err(
            rules::VERSION,
            format!("footer version {version}; this reader knows 2"),
        ));
    }
    if length == 0 {
        return Err(err(
            rules::MANIFEST,
            "a data shard (no manifest): it only holds another model's blobs",
        ));
    }
    if length > MAX_MANIFEST || length > limits.max_header_bytes {
        return Err(err(
            rules::MANIFEST,
            format!(
                "a {length}-byte manifest exceeds the {}-byte limit",
                limits.max_header_bytes.min(MAX_MANIFEST)
            ),
        )
        .limit("max_header_bytes"));
    }
    check_blob(offset, length, len)?;
    Ok((offset, length, hash))
}

/// §2.4: aligned, not before 4096, inside the data region.
fn check_blob(offset: u64, length: u64, file_len: u64) -> std::result::Result<(), FormatError> {
    if !offset.is_multiple_of(ALIGN) || offset < ALIGN {
        return Err(err(
            rules::BLOB,
            format!("blob at {offset} is not a multiple of 4096 at or after 4096"),
        )
        .at(offset));
    }
    if offset
        .checked_add(length)
        .is_none_or(|e| e > file_len.saturating_sub(FOOTER))
    {
        return Err(err(
            rules::BLOB,
            format!("blob {offset}..+{length} runs into the footer or past the end"),
        )
        .at(offset));
    }
    Ok(())
}

impl ZtFile {
    /// Maps and validates the file at `path`.
    pub fn open(path: &Path, limits: &Limits) -> Result<ZtFile> {
        Self::from_bytes(path, Bytes::open(path)?, limits)
    }

    /// Validates bytes in hand; `path` names them in errors.
    pub fn from_bytes(path: &Path, bytes: Bytes, limits: &Limits) -> Result<ZtFile> {
        let (tensors, parts, metadata) = parse(&bytes, limits).map_err(|e| Error::from(e.in_file(path)))?;
        Ok(ZtFile {
            path: path.to_path_buf(),
            bytes,
            tensors,
            parts,
            metadata,
            limits: limits.clone(),
        })
    }

    /// Every part's digest checked over its decoded bytes: one line per
    /// part that fails.
    pub fn verify(&self) -> Vec<String> {
        let mut damage = Vec::new();
        for (i, t) in self.tensors.iter().enumerate() {
            let before = damage.len();
            for part in &self.parts[i] {
                let mut h = xxhash_rust::xxh3::Xxh3Default::new();
                let read = self.part_data(t, part).and_then(|d| {
                    d.for_each_chunk(|c| {
                        h.update(c);
                        Ok(())
                    })
                });
                match (read, part.digest) {
                    (Err(e), _) => damage.push(format!("tensor '{}': {e}", t.name)),
                    (Ok(_), Some(want)) if h.digest() != want => damage.push(format!(
                        "tensor '{}': its bytes do not match their xxh3 digest {want:016x} [rule {FORMAT}/{}]",
                        t.name,
                        rules::DIGEST
                    )),
                    _ => {}
                }
            }
            // A CSR object whose digests hold: its indices must too.
            if t.sparse.is_some() && damage.len() == before {
                if let Err(e) = self.tensor_data(i).and_then(|d| d.for_each_chunk(|_| Ok(()))) {
                    damage.push(format!("tensor '{}': {e}", t.name));
                }
            }
        }
        damage
    }
}

type Parsed = (Vec<TensorInfo>, Vec<Vec<Part>>, Metadata);

fn parse(b: &[u8], limits: &Limits) -> std::result::Result<Parsed, FormatError> {
    let (m_off, m_len, hash) = footer(b, limits)?;
    let manifest = &b[m_off as usize..(m_off + m_len) as usize];
    if xxhash_rust::xxh3::xxh3_64(manifest) != hash {
        return Err(err(
            rules::MANIFEST_HASH,
            "the manifest does not match the footer's XXH3-64",
        )
        .at(m_off));
    }
    // Decoded items cost ~32 bytes each whatever their encoding: the same
    // limit that bounds the manifest's bytes bounds them (one item per 32
    // bytes of that limit).
    let max_items = limits.max_header_bytes / 32;
    let root = cbor::parse(manifest, max_items).map_err(|d| {
        let e = err(rules::SCHEMA, format!("manifest: {d}"));
        if d.starts_with("more items") {
            e.limit("max_header_bytes")
        } else {
            e
        }
    })?;
    if !matches!(root, Cbor::Map(_)) {
        return Err(err(rules::SCHEMA, "the manifest is not a map"));
    }
    if root.get("shards").is_some() {
        return Err(err(
            rules::UNSUPPORTED,
            "multi-file (sharded) .zt models are not read yet",
        ));
    }
    let Some(Cbor::Map(objects)) = root.get("objects") else {
        return Err(err(rules::SCHEMA, "the manifest has no objects map"));
    };
    if objects.len() as u64 > limits.max_tensors {
        return Err(
            err(rules::SCHEMA, format!("more than {} objects", limits.max_tensors)).limit("max_tensors"),
        );
    }
    let metadata = match root.get("attributes") {
        Some(a) => attributes(a)?,
        None => Metadata::new(),
    };
    let file_len = b.len() as u64;
    let mut blobs = vec![(m_off, m_len)];
    let (mut tensors, mut parts) = (
        Vec::with_capacity(objects.len()),
        Vec::with_capacity(objects.len()),
    );
    for (key, obj) in objects {
        let name = key
            .text()
            .filter(|n| name_ok(n))
            .ok_or_else(|| err(rules::NAME, "an object name that is not a valid name"))?;
        let (info, ps) = object(name, obj, file_len).map_err(|e| e.tensor(name))?;
        blobs.extend(ps.iter().map(|p| (p.offset, p.length)));
        tensors.push(info);
        parts.push(ps);
    }
    // §2.4: every two references identical or disjoint.
    blobs.retain(|&(_, l)| l > 0);
    blobs.sort_unstable();
    let mut reach = 0u64;
    let mut prev: Option<(u64, u64)> = None;
    for &(o, l) in &blobs {
        if prev != Some((o, l)) && o < reach {
            return Err(err(rules::BLOB, format!("blob {o}..+{l} partially overlaps another")).at(o));
        }
        reach = reach.max(o + l);
        prev = Some((o, l));
    }
    Ok((tensors, parts, metadata))
}

/// The CSR layout profile ztensor writes (parts `indptr`, `indices`, `values`).
pub(crate) const CSR: &str = "zt.sparse_csr/1";

fn object(
    name: &str,
    obj: &Cbor,
    file_len: u64,
) -> std::result::Result<(TensorInfo, Vec<Part>), FormatError> {
    let schema = |d: &str| err(rules::SCHEMA, d.to_string());
    let Some(Cbor::Array(dims)) = obj.get("shape") else {
        return Err(schema("no shape"));
    };
    if dims.len() > 64 {
        return Err(err(rules::SHAPE, format!("rank {} is over 64", dims.len())));
    }
    let shape: Vec<u64> = dims
        .iter()
        .map(Cbor::uint)
        .collect::<Option<_>>()
        .ok_or_else(|| schema("a dimension that is not an unsigned integer"))?;
    let layout = obj
        .get("layout")
        .and_then(Cbor::text)
        .ok_or_else(|| schema("no layout"))?;
    let Some(Cbor::Map(ps)) = obj.get("parts") else {
        return Err(schema("no parts"));
    };
    let named = |want: &str| {
        ps.iter()
            .find(|(k, _)| k.text() == Some(want))
            .map(|(_, v)| v)
            .ok_or_else(|| schema(&format!("a {layout} object without a '{want}' part")))
    };
    match layout {
        "dense" => {
            if ps.len() != 1 {
                return Err(schema("a dense object has exactly one part, 'data'"));
            }
            let data = named("data")?;
            // A type this reader has no dtype for: listed, never read.
            let storage = data.get("dtype").and_then(Cbor::text);
            let logical = data.get("type").and_then(Cbor::text);
            if let (Some(st), Err(_)) = (storage, dtypes::from_zt(storage.unwrap_or(""), logical)) {
                let kind = match logical {
                    Some(l) => format!("zt {l}"),
                    None => format!("zt {st}"),
                };
                let info = TensorInfo::unreadable(name, shape, kind)
                    .ok_or_else(|| err(rules::SHAPE, "the element count overflows"))?;
                return Ok((info, Vec::new()));
            }
            let data = part(data, file_len)?;
            let count = tensorcast_core::element_count(&shape)
                .ok_or_else(|| err(rules::SHAPE, "the element count overflows"))?;
            let nbytes = data
                .dtype
                .storage_bytes(count)
                .ok_or_else(|| err(rules::SHAPE, "the byte size overflows"))?;
            if data.decoded != nbytes {
                return Err(err(
                    rules::SIZE,
                    format!(
                        "the part decodes to {} bytes; {shape:?} of {} is {nbytes}",
                        data.decoded, data.dtype
                    ),
                ));
            }
            let info = TensorInfo {
                name: name.to_string(),
                dtype: data.dtype,
                shape,
                nbytes,
                file_offset: (!data.zstd).then_some(data.offset),
                sparse: None,
                unreadable: None,
            };
            Ok((info, vec![data]))
        }
        CSR => {
            if ps.len() != 3 {
                return Err(schema(
                    "a CSR object has exactly the parts indptr, indices and values",
                ));
            }
            let (indptr, indices, values) = (
                part(named("indptr")?, file_len)?,
                part(named("indices")?, file_len)?,
                part(named("values")?, file_len)?,
            );
            csr(name, shape, [indptr, indices, values])
        }
        other => Err(err(
            rules::UNSUPPORTED,
            format!("layout '{other}' is not read (dense and {CSR} are)"),
        )),
    }
}

/// A `zt.sparse_csr/1` object as a sparse CSR tensor: the parts' sizes must
/// agree with the shape (its data rules are checked when it is read).
fn csr(
    name: &str,
    shape: Vec<u64>,
    parts: [Part; 3],
) -> std::result::Result<(TensorInfo, Vec<Part>), FormatError> {
    let [indptr, indices, values] = &parts;
    // The profile's index parts: plain u32 or u64, both of one type.
    for (what, p) in [("indptr", indptr), ("indices", indices)] {
        if !matches!(p.dtype, DType::U32 | DType::U64) || p.zstd {
            return Err(err(
                rules::CSR,
                format!(
                    "CSR {what} must be plain u32 or u64, not {}{}",
                    p.dtype,
                    if p.zstd { " (encoded)" } else { "" }
                ),
            ));
        }
    }
    if indptr.dtype != indices.dtype {
        return Err(err(
            rules::CSR,
            format!(
                "CSR indptr of {} and indices of {}: the profile wants one type",
                indptr.dtype, indices.dtype
            ),
        ));
    }
    let elem = values.dtype.byte_size().unwrap_or(1) as u64;
    let sparse = tensorcast_core::sparse::Sparse {
        layout: tensorcast_core::sparse::SparseLayout::Csr,
        index: indptr.dtype,
        nnz: values.decoded / elem,
        sparse_dims: 2,
    };
    let info = tensorcast_core::sparse::sparse_info(name, values.dtype, shape, sparse)
        .map_err(|d| err(rules::UNSUPPORTED, format!("a CSR object: {d}")))?;
    let want = info
        .sparse
        .as_ref()
        .and_then(|s| s.parts(info.dtype, &info.shape).ok())
        .unwrap_or_default();
    for (p, w) in parts.iter().zip(&want) {
        if p.decoded != w.nbytes {
            return Err(err(
                rules::SIZE,
                format!(
                    "CSR part {} decodes to {} bytes; a {:?} CSR tensor of {} values needs {}",
                    match w.name {
                        "crow_indices" => "indptr",
                        "col_indices" => "indices",
                        n => n,
                    },
                    p.decoded,
                    info.shape,
                    values.decoded / elem,
                    w.nbytes
                ),
            ));
        }
    }
    Ok((info, parts.into()))
}

/// One part's entry: its type, blob, encoding and digest.
fn part(part: &Cbor, file_len: u64) -> std::result::Result<Part, FormatError> {
    let schema = |d: &str| err(rules::SCHEMA, d.to_string());
    let dtype_name = part
        .get("dtype")
        .and_then(Cbor::text)
        .ok_or_else(|| schema("a part without a dtype"))?;
    let logical = match part.get("type") {
        None => None,
        Some(t) => Some(t.text().ok_or_else(|| schema("a type that is not text"))?),
    };
    let dtype = dtypes::from_zt(dtype_name, logical).map_err(|d| err(rules::UNSUPPORTED, d))?;
    let Some(Cbor::Array(blob)) = part.get("blob") else {
        return Err(schema("a part without a blob"));
    };
    let (Some(offset), Some(length), 2) = (
        blob.first().and_then(Cbor::uint),
        blob.get(1).and_then(Cbor::uint),
        blob.len(),
    ) else {
        return Err(schema("a blob that is not [offset, length]"));
    };
    if part.get("shard").is_some() {
        return Err(err(rules::UNSUPPORTED, "a part in another shard"));
    }
    let encoding = match part.get("encoding") {
        None => None,
        Some(e) => Some(e.text().ok_or_else(|| schema("an encoding that is not text"))?),
    };
    let decoded = match (encoding, part.get("decoded_length")) {
        (None, None) => length,
        (Some(_), Some(d)) => d
            .uint()
            .ok_or_else(|| schema("a decoded_length that is not an unsigned integer"))?,
        _ => return Err(schema("decoded_length must be present exactly when encoding is")),
    };
    let zstd = match encoding {
        None => false,
        Some(ZSTD_SEEKABLE) => true,
        Some(other) => return Err(err(rules::UNSUPPORTED, format!("encoding '{other}' is not read"))),
    };
    let digest = match part.get("digest") {
        None => None,
        Some(d) => {
            let d = d.text().ok_or_else(|| schema("a digest that is not text"))?;
            match d.split_once(':') {
                Some(("xxh3", hex)) if hex.len() == 16 => Some(
                    u64::from_str_radix(hex, 16)
                        .map_err(|_| schema("an xxh3 digest that is not 16 hex digits"))?,
                ),
                // Accepted, not checked here (no SHA-256 in tensorcast).
                Some(("sha256", _)) => None,
                _ => return Err(schema("a digest that is not xxh3:<hex> or sha256:<hex>")),
            }
        }
    };
    check_blob(offset, length, file_len)?;
    Ok(Part {
        offset,
        length,
        decoded,
        dtype,
        zstd,
        digest,
    })
}

/// File attributes as typed metadata: scalars as they are, arrays of
/// scalars as arrays, anything nested as its diagnostic text.
fn attributes(a: &Cbor) -> std::result::Result<Metadata, FormatError> {
    let Cbor::Map(entries) = a else {
        return Err(err(rules::SCHEMA, "attributes is not a map"));
    };
    let mut m = Metadata::with_capacity(entries.len());
    for (k, v) in entries {
        let key = k
            .text()
            .filter(|n| name_ok(n))
            .ok_or_else(|| err(rules::NAME, "an attribute key that is not a valid name"))?;
        m.insert(key, value(v));
    }
    Ok(m)
}

fn value(v: &Cbor) -> Value {
    match v {
        Cbor::Uint(n) => i64::try_from(*n).map_or(Value::U64(*n), Value::I64),
        // CBOR's negative range reaches -2^64; past i64 it stays text.
        Cbor::Neg(n) => i64::try_from(*n).map_or(Value::Str(format!("-1-{n}")), |n| Value::I64(-1 - n)),
        Cbor::Text(t) => Value::Str(t.clone()),
        Cbor::Bytes(b) => Value::Array(tensorcast_core::Array::U8(b.clone())),
        Cbor::Bool(b) => Value::Bool(*b),
        Cbor::Null => Value::Null,
        Cbor::Float(f) => Value::F64(*f),
        Cbor::Array(items) => {
            let vals: Vec<Value> = items.iter().map(value).collect();
            let kind = vals.first().map_or(tensorcast_core::ValueKind::Null, Value::kind);
            Value::Array(tensorcast_core::Array::from_values(kind, vals))
        }
        Cbor::Map(entries) => {
            let mut m = Metadata::with_capacity(entries.len());
            for (k, v) in entries {
                match k.text() {
                    Some(k) => m.insert(k, value(v)),
                    None => m.insert(format!("{k:?}"), value(v)),
                }
            }
            Value::Map(m)
        }
    }
}

impl Source for ZtFile {
    fn format(&self) -> &'static str {
        FORMAT
    }

    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        let (info, parts) = self
            .tensors
            .get(index)
            .zip(self.parts.get(index))
            .ok_or_else(|| {
                Error::usage(
                    code::CALL_ORDER,
                    format!("{}: no tensor #{index}", self.path.display()),
                )
            })?;
        if let Some(kind) = &info.unreadable {
            return Err(Error::from(
                err(
                    rules::UNSUPPORTED,
                    format!("{kind} elements have no tensorcast dtype"),
                )
                .tensor(&info.name)
                .in_file(&self.path),
            ));
        }
        match parts.as_slice() {
            [one] => self.part_data(info, one),
            // A CSR object: its parts in the IR's order, then its indices checked.
            several => {
                let read = several.iter().map(|p| self.part_data(info, p));
                tensorcast_core::sparse::checked_parts(info, read, &self.limits, FORMAT, rules::CSR)
                    .map_err(|e| e.in_file(&self.path))
            }
        }
    }
}

impl ZtFile {
    /// One part's bytes (decoded, bools checked) of tensor `info`.
    fn part_data(&self, info: &TensorInfo, part: &Part) -> Result<TensorData<'_>> {
        let fail = |e: FormatError| Error::from(e.tensor(&info.name).in_file(&self.path));
        if !part.zstd {
            let data = self
                .bytes
                .tensor_data(part.offset, part.decoded)
                .ok_or_else(|| Error::usage(code::CALL_ORDER, "blob outside the file"))?;
            if part.dtype == DType::Bool {
                if let TensorData::Located { bytes, .. } | TensorData::Borrowed(bytes) = &data {
                    if bytes.iter().any(|&b| b > 1) {
                        return Err(fail(err(rules::BOOL, "a bool element other than 0 or 1")));
                    }
                }
            }
            return Ok(data);
        }
        let stored = self
            .bytes
            .read_range(part.offset, part.length)
            .ok_or_else(|| Error::usage(code::CALL_ORDER, "blob outside the file"))??;
        let decoder = zstd::stream::read::Decoder::new(std::io::Cursor::new(stored))
            .map_err(|e| fail(err(rules::DIGEST, format!("zstd: {e}"))))?;
        Ok(TensorData::Chunks(Box::new(Decode {
            decoder,
            left: part.decoded,
            done: false,
            name: info.name.clone(),
            path: self.path.clone(),
            bool_check: part.dtype == DType::Bool,
        })))
    }
}

type ZstdReader<'a> =
    zstd::stream::read::Decoder<'static, std::io::BufReader<std::io::Cursor<std::borrow::Cow<'a, [u8]>>>>;

/// A zstd part decoded a chunk at a time, to exactly its decoded length.
struct Decode<'a> {
    decoder: ZstdReader<'a>,
    left: u64,
    done: bool,
    name: String,
    path: PathBuf,
    bool_check: bool,
}

impl Iterator for Decode<'_> {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Result<Vec<u8>>> {
        use std::io::Read;
        if self.done {
            return None;
        }
        let fail = |d: String| {
            Some(Err(Error::from(
                err(rules::DIGEST, d).tensor(&self.name).in_file(&self.path),
            )))
        };
        if self.left == 0 {
            self.done = true;
            // Nothing may follow the decoded length.
            let mut probe = [0u8; 1];
            return match self.decoder.read(&mut probe) {
                Ok(0) => None,
                Ok(_) => fail("the zstd part decodes to more than its decoded_length".into()),
                Err(e) => fail(format!("zstd: {e}")),
            };
        }
        let n = self.left.min(CHUNK_BYTES as u64) as usize;
        let mut buf = vec![0u8; n];
        let mut got = 0;
        while got < n {
            match self.decoder.read(&mut buf[got..]) {
                Ok(0) => {
                    self.done = true;
                    return fail("the zstd part decodes to less than its decoded_length".into());
                }
                Ok(k) => got += k,
                Err(e) => {
                    self.done = true;
                    return fail(format!("zstd: {e}"));
                }
            }
        }
        self.left -= n as u64;
        if self.bool_check && buf.iter().any(|&b| b > 1) {
            self.done = true;
            return Some(Err(Error::from(
                err(rules::BOOL, "a bool element other than 0 or 1")
                    .tensor(&self.name)
                    .in_file(&self.path),
            )));
        }
        Some(Ok(buf))
    }
}
