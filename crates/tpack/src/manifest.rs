//! The manifest (spec §2): tensors with their chunks, and typed metadata, as JSON.

use crate::codec::Codec;
use crate::format::DATA_START;
use crate::rules;
use crate::stored::StoredArray;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value as Json;
use tensorcast_core::sparse::{Sparse, SparseLayout};
use tensorcast_core::{Array, DType, FormatError, Metadata, TensorInfo, Value, ValueKind};

pub use crate::chunk::Chunk;

/// One tensor's entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Name, dtype, shape, nbytes.
    pub info: TensorInfo,
    /// Its chunks in order.
    pub chunks: Vec<Chunk>,
}

/// The whole manifest.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Manifest {
    /// Typed metadata in order.
    pub metadata: Metadata,
    /// Tensors in order.
    pub tensors: Vec<Entry>,
    /// Top-level metadata arrays held in chunks (§2.3), by key: written
    /// in the stored form. Their values sit in `metadata` as well once
    /// read from the file ([`TpackFile`](crate::TpackFile) does); after
    /// [`Manifest::parse`] alone they are empty arrays of their kind.
    pub stored: Vec<StoredArray>,
}

pub(crate) fn err(rule: &'static str, detail: impl Into<String>) -> FormatError {
    FormatError::new(crate::FORMAT, rule, detail)
}

impl Manifest {
    /// The JSON text, written straight from the entries (no JSON tree).
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_json(&mut out)
            .expect("JSON of plain values into memory");
        out
    }

    /// The JSON text written into `out` as it is produced.
    pub fn write_json<W: std::io::Write>(&self, out: W) -> std::io::Result<()> {
        let mut ser = serde_json::Serializer::new(out);
        let mut m = ser.serialize_map(Some(2))?;
        m.serialize_entry("metadata", &TopPairs(&self.metadata, &self.stored))?;
        m.serialize_entry("tensors", &Tensors(&self.tensors))?;
        SerializeMap::end(m)?;
        Ok(())
    }

    /// Sets `key`'s value, which is no longer the array stored for it.
    pub fn set_metadata(&mut self, key: &str, value: Value) {
        self.stored.retain(|s| s.key != key);
        self.metadata.insert(key, value);
    }
}

/// A tensor's chunks as read: five integers each, and the index of the
/// first entry that was not five integers.
#[derive(Default)]
pub(crate) struct RawChunks {
    pub(crate) chunks: Vec<[u64; 5]>,
    pub(crate) first_bad: Option<usize>,
}

/// A chunk list's rows checked one by one (T9 whole units, T10 range, T13
/// codec, T14 raw length, T16 size), with the bytes they decode to in all.
pub(crate) fn parse_chunks(
    raw: &RawChunks,
    unit: u64,
    committed_len: u64,
) -> Result<(Vec<Chunk>, u64), FormatError> {
    let bad = |rule, what: String| err(rule, what);
    let mut chunks = Vec::with_capacity(raw.chunks.len());
    let mut total = 0u64;
    for (i, c) in raw
        .chunks
        .iter()
        .chain(raw.first_bad.map(|_| &[0u64; 5]))
        .enumerate()
    {
        if raw.first_bad == Some(i) {
            return Err(bad(
                rules::MANIFEST,
                "a chunk is not [offset, stored, decoded, codec, crc]".into(),
            ));
        }
        let [offset, stored_len, decoded_len, codec, crc] = c;
        let codec = u32::try_from(*codec)
            .ok()
            .and_then(Codec::from_id)
            .ok_or_else(|| bad(rules::CODEC, format!("unknown codec {codec}")))?;
        let end = offset.checked_add(*stored_len);
        if *offset < DATA_START || end.is_none_or(|e| e > committed_len) {
            return Err(bad(
                rules::CHUNK_RANGE,
                format!("chunk [{offset}, +{stored_len}) outside the data area (committed length {committed_len})"),
            ));
        }
        if codec == Codec::Raw && stored_len != decoded_len {
            return Err(bad(
                rules::RAW_LEN,
                "a raw chunk whose stored and decoded lengths differ".into(),
            ));
        }
        crate::codec::check_decoded_len(codec, *decoded_len)?;
        let whole = decoded_len % unit == 0 && decoded_len % codec.plane_width() as u64 == 0;
        if !whole {
            return Err(bad(
                rules::CHUNK_SIZES,
                format!("a chunk of {decoded_len} bytes splits an element"),
            ));
        }
        total = total
            .checked_add(*decoded_len)
            .ok_or_else(|| bad(rules::CHUNK_SIZES, "sizes overflow".into()))?;
        chunks.push(Chunk {
            offset: *offset,
            stored_len: *stored_len,
            decoded_len: *decoded_len,
            codec,
            crc: u32::try_from(*crc).map_err(|_| bad(rules::MANIFEST, "crc is not 32-bit".into()))?,
        });
    }
    Ok((chunks, total))
}

/// The `dtype` of a sparse tensor's entry, by layout (T17).
pub(crate) const SPARSE_COO: &str = "SPARSE_COO";
/// See [`SPARSE_COO`].
pub(crate) const SPARSE_CSR: &str = "SPARSE_CSR";

/// A sparse entry's `sparse` object: `{"values", "index", "nnz", "sparse_dims"}`.
pub(crate) fn sparse_fields(layout: SparseLayout, field: Option<&Json>) -> Result<(DType, Sparse), String> {
    let obj = field
        .and_then(Json::as_object)
        .ok_or("a sparse tensor without a \"sparse\" object")?;
    let dtype = |key: &str| -> Result<DType, String> {
        obj.get(key)
            .and_then(Json::as_str)
            .ok_or_else(|| format!("sparse.{key} is not a dtype name"))?
            .parse()
    };
    let int = |key: &str| {
        obj.get(key)
            .and_then(Json::as_u64)
            .ok_or(format!("sparse.{key} is not an integer"))
    };
    let values = dtype("values")?;
    if matches!(values, DType::Quant(_)) {
        return Err(format!("sparse values of {values}"));
    }
    let sparse = Sparse {
        layout,
        index: dtype("index")?,
        nnz: int("nnz")?,
        sparse_dims: int("sparse_dims")?,
    };
    Ok((values, sparse))
}

/// The unit chunks must not split: an element, a ggml block, or a byte for sub-byte types.
pub fn unit_bytes(dtype: DType) -> u64 {
    match dtype {
        DType::Quant(q) => u64::from(q.block_bytes()),
        other => other.byte_size().map_or(1, |b| b as u64),
    }
}

pub(crate) fn kind_name(k: ValueKind) -> &'static str {
    match k {
        ValueKind::Null => "null",
        ValueKind::Bool => "bool",
        ValueKind::U8 => "u8",
        ValueKind::I8 => "i8",
        ValueKind::U16 => "u16",
        ValueKind::I16 => "i16",
        ValueKind::U32 => "u32",
        ValueKind::I32 => "i32",
        ValueKind::U64 => "u64",
        ValueKind::I64 => "i64",
        ValueKind::F32 => "f32",
        ValueKind::F64 => "f64",
        ValueKind::Str => "str",
        ValueKind::Array => "arr",
        ValueKind::Map => "map",
        ValueKind::Mixed => "mixed",
        // A kind newer than this writer: no reader of spec 1.3 knows it,
        // and T6 refuses an unknown tag rather than guessing.
        _ => "unknown",
    }
}

pub(crate) fn kind_by_name(s: &str) -> Option<ValueKind> {
    use ValueKind::*;
    [
        Null, Bool, U8, I8, U16, I16, U32, I32, U64, I64, F32, F64, Str, Array, Map, Mixed,
    ]
    .into_iter()
    .find(|&k| kind_name(k) == s)
}

/// A metadata value serialized as typed JSON (§2.1), straight to text: a
/// vocabulary of 262 144 strings never becomes a tree of JSON values.
struct Typed<'a>(&'a Value);

/// A scalar's bare `v` (the table of §2.1); containers never reach here.
struct Bare<'a>(&'a Value);

/// A list of values, bare (bulk form) or typed.
struct Items<'a>(&'a [Value], bool);

/// An ordered map as `[key, typed value]` pairs.
struct Pairs<'a>(&'a Metadata);

/// The tensor list, each entry `{name, dtype, shape, nbytes, chunks}`.
struct Tensors<'a>(&'a [Entry]);

/// One chunk as `[offset, stored, decoded, codec, crc]`.
struct ChunkRow<'a>(&'a Chunk);

impl Serialize for Tensors<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for e in self.0 {
            seq.serialize_element(&TensorEntry(e))?;
        }
        seq.end()
    }
}

struct TensorEntry<'a>(&'a Entry);

impl Serialize for TensorEntry<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("name", &e.info.name)?;
        match &e.info.sparse {
            None => m.serialize_entry("dtype", e.info.dtype.name())?,
            Some(sp) => {
                let kind = match sp.layout {
                    SparseLayout::Coo => SPARSE_COO,
                    SparseLayout::Csr => SPARSE_CSR,
                    other => {
                        return Err(serde::ser::Error::custom(format!(
                            "tensor '{}': tpack has no {} layout",
                            e.info.name,
                            other.name()
                        )))
                    }
                };
                m.serialize_entry("dtype", kind)?;
                m.serialize_entry("sparse", &SparseFields(e.info.dtype, sp))?;
            }
        }
        m.serialize_entry("shape", &e.info.shape)?;
        m.serialize_entry("nbytes", &e.info.nbytes)?;
        m.serialize_entry("chunks", &ChunkList(&e.chunks))?;
        m.end()
    }
}

/// A sparse entry's `sparse` object (T17).
struct SparseFields<'a>(DType, &'a Sparse);

impl Serialize for SparseFields<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("values", self.0.name())?;
        m.serialize_entry("index", self.1.index.name())?;
        m.serialize_entry("nnz", &self.1.nnz)?;
        m.serialize_entry("sparse_dims", &self.1.sparse_dims)?;
        m.end()
    }
}

struct ChunkList<'a>(&'a [Chunk]);

impl Serialize for ChunkList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(ChunkRow))
    }
}

impl Serialize for ChunkRow<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        (c.offset, c.stored_len, c.decoded_len, c.codec.id(), c.crc).serialize(s)
    }
}

impl Serialize for Typed<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("t", kind_name(self.0.kind()))?;
        match self.0 {
            // Arrays of one scalar type (a vocabulary) take the bulk form:
            // one type for all, the bare values, no per-element object.
            Value::Array(a) => {
                let kind = a.kind();
                m.serialize_entry("e", kind_name(kind))?;
                match a {
                    Array::Values(_, items) if is_scalar(kind) && items.iter().all(|x| x.kind() == kind) => {
                        m.serialize_entry("b", &Items(items, true))?
                    }
                    Array::Values(_, items) => m.serialize_entry("v", &Items(items, false))?,
                    packed => m.serialize_entry("b", &PackedItems(packed))?,
                }
            }
            Value::Map(md) => m.serialize_entry("v", &Pairs(md))?,
            scalar => m.serialize_entry("v", &Bare(scalar))?,
        }
        m.end()
    }
}

impl Serialize for Bare<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Bool(b) => s.serialize_bool(*b),
            Value::U8(x) => s.serialize_u8(*x),
            Value::I8(x) => s.serialize_i8(*x),
            Value::U16(x) => s.serialize_u16(*x),
            Value::I16(x) => s.serialize_i16(*x),
            Value::U32(x) => s.serialize_u32(*x),
            Value::I32(x) => s.serialize_i32(*x),
            Value::U64(x) => s.serialize_u64(*x),
            Value::I64(x) => s.serialize_i64(*x),
            Value::F32(x) => Bits::f32(*x).serialize(s),
            Value::F64(x) => Bits::f64(*x).serialize(s),
            Value::Str(x) => s.serialize_str(x),
            // Containers (and kinds newer than this writer) are not bare
            // scalars; callers write them through their own forms.
            _ => s.serialize_unit(),
        }
    }
}

/// A float's bit pattern as §2.1 writes it (`0x` and 8 or 16 lowercase hex
/// digits), formatted on the stack: a vocabulary's 262 144 scores were as
/// many `format!` strings.
struct Bits {
    text: [u8; 18],
    len: usize,
}

impl Bits {
    fn f32(x: f32) -> Bits {
        Bits::new(u64::from(x.to_bits()), 8)
    }

    fn f64(x: f64) -> Bits {
        Bits::new(x.to_bits(), 16)
    }

    fn new(bits: u64, digits: usize) -> Bits {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 18];
        text[..2].copy_from_slice(b"0x");
        for i in 0..digits {
            let nibble = (bits >> (4 * (digits - 1 - i))) & 0xf;
            text[2 + i] = HEX[nibble as usize];
        }
        Bits {
            text,
            len: 2 + digits,
        }
    }
}

impl Serialize for Bits {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // ASCII by construction.
        s.serialize_str(std::str::from_utf8(&self.text[..self.len]).unwrap_or_default())
    }
}

/// A packed array's elements, bare (the bulk form), one at a time.
struct PackedItems<'a>(&'a Array);

impl Serialize for PackedItems<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Floats go as their bit patterns (§2.1); every other kind is
        // written bare exactly as core's metadata JSON writes it.
        match self.0 {
            Array::F32(v) => s.collect_seq(v.iter().map(|&x| Bits::f32(x))),
            Array::F64(v) => s.collect_seq(v.iter().map(|&x| Bits::f64(x))),
            other => other.serialize(s),
        }
    }
}

impl Serialize for Items<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for v in self.0 {
            if self.1 {
                seq.serialize_element(&Bare(v))?;
            } else {
                seq.serialize_element(&Typed(v))?;
            }
        }
        seq.end()
    }
}

/// The top-level metadata list: arrays held in chunks take the stored form
/// (§2.3) `{"t": "arr", "e": E, "n": N, "chunks": [...]}`.
struct TopPairs<'a>(&'a Metadata, &'a [StoredArray]);

/// A stored array's manifest entry.
struct StoredForm<'a>(&'a StoredArray);

impl Serialize for TopPairs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (k, v) in self.0.iter() {
            match self.1.iter().find(|a| a.key == k) {
                Some(a) => seq.serialize_element(&(k, StoredForm(a)))?,
                None => seq.serialize_element(&(k, Typed(v)))?,
            }
        }
        seq.end()
    }
}

impl Serialize for StoredForm<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("t", "arr")?;
        m.serialize_entry("e", kind_name(self.0.kind))?;
        m.serialize_entry("n", &self.0.len)?;
        m.serialize_entry("chunks", &ChunkList(&self.0.chunks))?;
        m.end()
    }
}

impl Serialize for Pairs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (k, v) in self.0.iter() {
            seq.serialize_element(&(k, Typed(v)))?;
        }
        seq.end()
    }
}

/// Kinds whose values are written bare in a bulk array.
pub(crate) fn is_scalar(k: ValueKind) -> bool {
    !matches!(k, ValueKind::Array | ValueKind::Map | ValueKind::Mixed)
}

pub(crate) fn malformed(j: &Json) -> FormatError {
    err(rules::METADATA, format!("malformed typed value {}", truncate(j)))
}

/// [`scalar`] for an owned value: a string moves instead of being copied.
pub(crate) fn owned_scalar(kind: ValueKind, v: Json) -> Result<Value, FormatError> {
    match (kind, v) {
        (ValueKind::Str, Json::String(s)) => Ok(Value::Str(s)),
        (kind, v) => scalar(kind, &v).ok_or_else(|| malformed(&v)),
    }
}

/// The bit pattern a float of `kind` (F32 or F64) is written as (§2.1):
/// `0x` and exactly 8 or 16 hex digits.
pub(crate) fn float_bits(text: &str, kind: ValueKind) -> Option<u64> {
    let digits = text.strip_prefix("0x")?;
    let width = match kind {
        ValueKind::F32 => 8,
        ValueKind::F64 => 16,
        _ => return None,
    };
    if digits.len() != width {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// A bare scalar of `kind` (§2.1's `v`), or `None` when it is not of that form.
fn scalar(kind: ValueKind, v: &Json) -> Option<Value> {
    let int = |lo: i128, hi: i128| -> Option<i128> {
        let x = v
            .as_i64()
            .map(i128::from)
            .or_else(|| v.as_u64().map(i128::from))?;
        (lo..=hi).contains(&x).then_some(x)
    };
    Some(match kind {
        ValueKind::Null if v.is_null() => Value::Null,
        ValueKind::Bool => Value::Bool(v.as_bool()?),
        ValueKind::U8 => Value::U8(int(0, u8::MAX.into())? as u8),
        ValueKind::I8 => Value::I8(int(i8::MIN.into(), i8::MAX.into())? as i8),
        ValueKind::U16 => Value::U16(int(0, u16::MAX.into())? as u16),
        ValueKind::I16 => Value::I16(int(i16::MIN.into(), i16::MAX.into())? as i16),
        ValueKind::U32 => Value::U32(int(0, u32::MAX.into())? as u32),
        ValueKind::I32 => Value::I32(int(i32::MIN.into(), i32::MAX.into())? as i32),
        ValueKind::U64 => Value::U64(int(0, u64::MAX.into())? as u64),
        ValueKind::I64 => Value::I64(int(i64::MIN.into(), i64::MAX.into())? as i64),
        ValueKind::F32 => Value::F32(f32::from_bits(float_bits(v.as_str()?, kind)? as u32)),
        ValueKind::F64 => Value::F64(f64::from_bits(float_bits(v.as_str()?, kind)?)),
        ValueKind::Str => Value::Str(v.as_str()?.to_string()),
        _ => return None,
    })
}

fn truncate(j: &Json) -> String {
    let mut s = j.to_string();
    if s.len() > 80 {
        let cut = (0..=80).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_bits_are_written_as_format_writes_them_and_read_back() {
        for b in [
            0u32,
            1,
            0x3f80_0000,
            0x7fc0_0001,
            0x8000_0000,
            0xffff_ffff,
            0x0123_4567,
        ] {
            let text = serde_json::to_string(&Bits::f32(f32::from_bits(b))).unwrap();
            assert_eq!(text, format!("\"{b:#010x}\""));
            assert_eq!(
                float_bits(text.trim_matches('"'), ValueKind::F32),
                Some(u64::from(b))
            );
        }
        for b in [0u64, 1, 0x3ff0_0000_0000_0000, 0xfff8_0000_0000_0001, u64::MAX] {
            let text = serde_json::to_string(&Bits::f64(f64::from_bits(b))).unwrap();
            assert_eq!(text, format!("\"{b:#018x}\""));
            assert_eq!(float_bits(text.trim_matches('"'), ValueKind::F64), Some(b));
        }
        for bad in ["3f800000", "0x3f80000", "0x3f8000000", "0xg0000000"] {
            assert_eq!(float_bits(bad, ValueKind::F32), None, "{bad}");
        }
    }

    #[test]
    fn a_manifest_that_is_not_utf8_is_refused_under_t6() {
        let mut text = br#"{"metadata": [["k", {"t": "str", "v": "ab"}]], "tensors": []}"#.to_vec();
        assert!(Manifest::parse(&text, 1 << 20).is_ok());
        let at = text.iter().position(|&b| b == b'a').unwrap();
        text[at] = 0xff;
        let e = Manifest::parse(&text, 1 << 20).unwrap_err();
        assert_eq!(e.rule, rules::MANIFEST, "{e}");
        assert!(e.to_string().contains("UTF-8"), "{e}");
    }

    #[test]
    fn typed_metadata_round_trips_exactly() {
        let mut m = Metadata::new();
        m.insert("nan", Value::F32(f32::from_bits(0x7fc0_0001)));
        m.insert("neg0", Value::F64(-0.0));
        m.insert("u64", Value::U64(u64::MAX));
        m.insert("i8", Value::I8(-128));
        m.insert("arr", Value::Array(Array::U16(vec![1, 65535])));
        m.insert("empty", Value::Array(Array::empty(ValueKind::Str)));
        let mut inner = Metadata::new();
        inner.insert("b", Value::Bool(true));
        m.insert("map", Value::Map(inner));
        let manifest = Manifest {
            metadata: m.clone(),
            tensors: vec![],
            stored: vec![],
        };
        let back = Manifest::parse(&manifest.to_json(), 1 << 20).unwrap();
        // Compare bit patterns (NaN != NaN).
        assert_eq!(format!("{:?}", back.metadata), format!("{m:?}"));
        match back.metadata.get("nan") {
            Some(Value::F32(f)) => assert_eq!(f.to_bits(), 0x7fc0_0001),
            other => panic!("{other:?}"),
        }
    }

    fn parse_metadata(text: &str) -> Result<Metadata, FormatError> {
        Manifest::parse(text.as_bytes(), 1 << 20).map(|m| m.metadata)
    }

    #[test]
    fn scalar_arrays_take_the_bulk_form_and_nested_ones_do_not() {
        let mut m = Metadata::new();
        m.insert(
            "tokens",
            Value::Array(Array::from(
                ["a", "Ġb"].into_iter().collect::<tensorcast_core::Strings>(),
            )),
        );
        m.insert("scores", Value::Array(Array::F32(vec![-1.5])));
        let nested = Value::Array(Array::U8(vec![1]));
        m.insert(
            "nested",
            Value::Array(Array::Values(ValueKind::Array, vec![nested])),
        );
        let text = String::from_utf8(
            Manifest {
                metadata: m.clone(),
                tensors: vec![],
                stored: vec![],
            }
            .to_json(),
        )
        .unwrap();
        assert!(text.contains(r#"{"t":"arr","e":"str","b":["a","Ġb"]}"#), "{text}");
        assert!(
            text.contains(r#"{"t":"arr","e":"f32","b":["0xbfc00000"]}"#),
            "{text}"
        );
        assert!(
            text.contains(r#"{"t":"arr","e":"arr","v":[{"t":"arr","e":"u8","b":[1]}]}"#),
            "{text}"
        );
        assert_eq!(format!("{:?}", parse_metadata(&text).unwrap()), format!("{m:?}"));
    }

    #[test]
    fn the_per_element_array_form_of_earlier_files_still_reads() {
        let text = r#"{"metadata":[["k",{"t":"arr","e":"u16","v":[{"t":"u16","v":7}]}]],"tensors":[]}"#;
        let m = parse_metadata(text).unwrap();
        assert_eq!(m.get("k"), Some(&Value::Array(Array::U16(vec![7]))));
    }

    #[test]
    fn a_body_before_its_type_is_read_the_same() {
        // JSON objects have no order: `b`/`v` may come before `t` and `e`.
        let text = br#"{"tensors":[],"metadata":[["k",{"b":[1,65535],"e":"u16","t":"arr"}],
            ["m",{"v":[["x",{"v":"0x3fc00000","t":"f32"}]],"t":"map"}],["s",{"x":[1,2],"v":"hi","t":"str"}]]}"#;
        let m = Manifest::parse(text, 1 << 20).unwrap().metadata;
        assert_eq!(m.get("k"), Some(&Value::Array(Array::U16(vec![1, 65535]))));
        let Some(Value::Map(inner)) = m.get("m") else {
            panic!("{m:?}")
        };
        assert_eq!(inner.get("x"), Some(&Value::F32(1.5)));
        assert_eq!(m.get("s"), Some(&Value::Str("hi".into())));
        for both in [
            br#"{"metadata":[["k",{"t":"arr","e":"u8","b":[1],"v":[]}]],"tensors":[]}"#.as_slice(),
            br#"{"metadata":[["k",{"b":[1],"v":[],"e":"u8","t":"arr"}]],"tensors":[]}"#.as_slice(),
        ] {
            assert_eq!(
                Manifest::parse(both, 1 << 20).err().unwrap().rule,
                rules::METADATA
            );
        }
    }

    #[test]
    fn bulk_arrays_are_checked_element_by_element() {
        for bad in [
            r#"{"t":"arr","e":"u8","b":[1,256]}"#,    // out of range
            r#"{"t":"arr","e":"f32","b":["0x1"]}"#,   // wrong width
            r#"{"t":"arr","e":"str","b":[1]}"#,       // not a string
            r#"{"t":"arr","e":"map","b":[]}"#,        // containers are never bulk
            r#"{"t":"arr","e":"u8","b":[1],"v":[]}"#, // both forms
        ] {
            let text = format!(r#"{{"metadata":[["k",{bad}]],"tensors":[]}}"#);
            let e = parse_metadata(&text).unwrap_err();
            assert_eq!(e.rule, rules::METADATA, "{bad}");
        }
    }
}
