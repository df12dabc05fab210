//! Metadata arrays stored as chunks in the data area (spec §2.3, 1.3): a
//! 262 144-token vocabulary is a few MB of packed bytes read in bulk, not
//! 262 144 JSON strings to escape, compress, decompress and parse on every
//! write and every `inspect`.

use crate::chunk::Chunk;
use crate::rules;
use std::borrow::Cow;
use tensorcast_core::{Array, DType, FormatError, Strings, ValueKind};

/// Top-level bulk arrays whose packed bytes reach this size are stored as
/// chunks; smaller ones stay in the manifest's JSON, readable by eye.
pub const STORE_FROM: usize = 64 * 1024;

/// A top-level metadata array held in chunks: the manifest's
/// `{"t": "arr", "e": E, "n": N, "chunks": [...]}`.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredArray {
    /// The metadata key.
    pub key: String,
    /// Element kind (a scalar kind other than null).
    pub kind: ValueKind,
    /// Element count.
    pub len: u64,
    /// Its chunks in order.
    pub chunks: Vec<Chunk>,
}

impl StoredArray {
    /// The bytes its chunks decode to (their sum was checked not to
    /// overflow when the manifest was parsed).
    pub fn packed_len(&self) -> u64 {
        self.chunks.iter().map(|c| c.decoded_len).sum()
    }
}

/// Bytes per element of a stored array of `kind`; `None` for strings (whose
/// size is their lengths' sum) and for kinds that cannot be stored.
pub fn element_bytes(kind: ValueKind) -> Option<u64> {
    Some(match kind {
        ValueKind::Bool | ValueKind::U8 | ValueKind::I8 => 1,
        ValueKind::U16 | ValueKind::I16 => 2,
        ValueKind::U32 | ValueKind::I32 | ValueKind::F32 => 4,
        ValueKind::U64 | ValueKind::I64 | ValueKind::F64 => 8,
        _ => return None,
    })
}

/// Whether arrays of `kind` may take the stored form.
pub fn storable_kind(kind: ValueKind) -> bool {
    kind == ValueKind::Str || element_bytes(kind).is_some()
}

/// The dtype a stored array's chunks are cut and compressed as: floats
/// take the float codecs, strings and the rest are bytes or integers.
pub fn chunk_dtype(kind: ValueKind) -> DType {
    match kind {
        ValueKind::U16 | ValueKind::I16 => DType::U16,
        ValueKind::U32 | ValueKind::I32 => DType::U32,
        ValueKind::U64 | ValueKind::I64 => DType::U64,
        ValueKind::F32 => DType::F32,
        ValueKind::F64 => DType::F64,
        _ => DType::U8,
    }
}

/// The packed bytes of `array` (§2.3), when it is a packed array of a
/// storable kind at least [`STORE_FROM`] bytes long.
pub fn packed_bytes(array: &Array) -> Option<Cow<'_, [u8]>> {
    fn le<T: Copy, const N: usize>(v: &[T], to: fn(T) -> [u8; N]) -> Cow<'_, [u8]> {
        Cow::Owned(v.iter().flat_map(|&x| to(x)).collect())
    }
    let size = match array {
        Array::Str(s) => 8 * s.len() + s.text_len(),
        Array::Values(..) => return None,
        a => a.len() * element_bytes(a.kind())? as usize,
    };
    if size < STORE_FROM {
        return None;
    }
    Some(match array {
        Array::Bool(v) => Cow::Owned(v.iter().map(|&b| u8::from(b)).collect()),
        Array::U8(v) => Cow::Borrowed(v),
        Array::I8(v) => le(v, i8::to_le_bytes),
        Array::U16(v) => le(v, u16::to_le_bytes),
        Array::I16(v) => le(v, i16::to_le_bytes),
        Array::U32(v) => le(v, u32::to_le_bytes),
        Array::I32(v) => le(v, i32::to_le_bytes),
        Array::U64(v) => le(v, u64::to_le_bytes),
        Array::I64(v) => le(v, i64::to_le_bytes),
        Array::F32(v) => le(v, |x: f32| x.to_bits().to_le_bytes()),
        Array::F64(v) => le(v, |x: f64| x.to_bits().to_le_bytes()),
        Array::Str(s) => {
            let (text, ends) = s.parts();
            let mut out = Vec::with_capacity(size);
            let mut start = 0;
            for &end in ends {
                out.extend_from_slice(&((end - start) as u64).to_le_bytes());
                start = end;
            }
            out.extend_from_slice(text.as_bytes());
            Cow::Owned(out)
        }
        // Mixed values (and kinds newer than this writer) stay in the manifest.
        _ => return None,
    })
}

fn bad(detail: impl Into<String>) -> FormatError {
    FormatError::new(crate::FORMAT, rules::STORED_ARRAY, detail)
}

/// The array of `kind` and `len` elements whose packed bytes are `bytes`
/// (T18: the size fits, strings are UTF-8 and their lengths add up, booleans
/// are 0 or 1).
pub fn unpack(kind: ValueKind, len: u64, bytes: Vec<u8>) -> Result<Array, FormatError> {
    if kind == ValueKind::Str {
        return unpack_strings(len, bytes);
    }
    let width = element_bytes(kind).ok_or_else(|| bad("not an element type a stored array may have"))?;
    if len.checked_mul(width) != Some(bytes.len() as u64) {
        return Err(bad(format!(
            "{len} elements of {width} bytes are not the {} bytes its chunks decode to",
            bytes.len()
        )));
    }
    fn each<const N: usize, T>(b: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
        b.chunks_exact(N)
            .map(|c| f(c.try_into().expect("chunks_exact")))
            .collect()
    }
    Ok(match kind {
        ValueKind::Bool => {
            if let Some(at) = bytes.iter().position(|&b| b > 1) {
                return Err(bad(format!("element {at} is the byte {}, not 0 or 1", bytes[at])));
            }
            Array::Bool(bytes.iter().map(|&b| b == 1).collect())
        }
        ValueKind::U8 => Array::U8(bytes),
        ValueKind::I8 => Array::I8(each(&bytes, i8::from_le_bytes)),
        ValueKind::U16 => Array::U16(each(&bytes, u16::from_le_bytes)),
        ValueKind::I16 => Array::I16(each(&bytes, i16::from_le_bytes)),
        ValueKind::U32 => Array::U32(each(&bytes, u32::from_le_bytes)),
        ValueKind::I32 => Array::I32(each(&bytes, i32::from_le_bytes)),
        ValueKind::U64 => Array::U64(each(&bytes, u64::from_le_bytes)),
        ValueKind::I64 => Array::I64(each(&bytes, i64::from_le_bytes)),
        ValueKind::F32 => Array::F32(each(&bytes, |b| f32::from_bits(u32::from_le_bytes(b)))),
        ValueKind::F64 => Array::F64(each(&bytes, |b| f64::from_bits(u64::from_le_bytes(b)))),
        _ => return Err(bad("not an element type a stored array may have")),
    })
}

/// `len` little-endian u64 byte lengths, then the strings' bytes back to back.
fn unpack_strings(len: u64, mut bytes: Vec<u8>) -> Result<Array, FormatError> {
    let table = len
        .checked_mul(8)
        .filter(|&t| t <= bytes.len() as u64)
        .ok_or_else(|| {
            bad(format!(
                "{len} string lengths do not fit in the {} bytes its chunks decode to",
                bytes.len()
            ))
        })? as usize;
    let text_len = (bytes.len() - table) as u64;
    let mut ends = Vec::with_capacity(len as usize);
    let mut at = 0u64;
    for (i, l) in bytes[..table].chunks_exact(8).enumerate() {
        let l = u64::from_le_bytes(l.try_into().expect("chunks_exact"));
        at = at.checked_add(l).filter(|&a| a <= text_len).ok_or_else(|| {
            bad(format!(
                "string {i}'s length runs past the {text_len} bytes of text"
            ))
        })?;
        ends.push(at as usize);
    }
    if at != text_len {
        return Err(bad(format!(
            "the string lengths add up to {at} bytes; the text has {text_len}"
        )));
    }
    bytes.drain(..table);
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let i = ends.partition_point(|&end| end <= at);
        bad(format!("string {i} is not UTF-8"))
    })?;
    // Every boundary on a character boundary: each string is UTF-8 itself.
    let i = ends.iter().position(|&end| !text.is_char_boundary(end));
    if let Some(i) = i {
        return Err(bad(format!("string {i} ends inside a character (not UTF-8)")));
    }
    Strings::from_parts(text, ends)
        .map(|s| Array::Str(Box::new(s)))
        .ok_or_else(|| bad("string ends out of order"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big<T: Clone>(x: T) -> Vec<T> {
        vec![x; STORE_FROM]
    }

    #[test]
    fn every_storable_kind_packs_and_unpacks_to_the_same_array() {
        let mut words = Strings::new();
        for i in 0..20_000 {
            words.push(&format!("tok{i}é"));
        }
        words.push("");
        let arrays = [
            Array::Bool(big(true)),
            Array::U8(big(7)),
            Array::I8(big(-3)),
            Array::U16(big(65535)),
            Array::I16(big(-2)),
            Array::U32(big(1 << 31)),
            Array::I32(big(-5)),
            Array::U64(big(u64::MAX)),
            Array::I64(big(i64::MIN)),
            Array::F32(big(f32::from_bits(0x7fc0_0001))),
            Array::F64(big(-0.0)),
            Array::Str(Box::new(words)),
        ];
        for a in arrays {
            let bytes = packed_bytes(&a).expect("large enough").into_owned();
            let back = unpack(a.kind(), a.len() as u64, bytes).unwrap();
            assert_eq!(back.kind(), a.kind());
            assert_eq!(back.len(), a.len());
            // Bit-exact, NaN payloads and -0.0 included.
            assert_eq!(packed_bytes(&back), packed_bytes(&a), "{:?}", a.kind());
        }
        assert!(packed_bytes(&Array::U8(vec![1; STORE_FROM - 1])).is_none());
    }

    #[test]
    fn broken_packed_bytes_are_refused_under_t18() {
        let strings = |lens: &[u64], text: &[u8]| {
            let mut b: Vec<u8> = lens.iter().flat_map(|l| l.to_le_bytes()).collect();
            b.extend_from_slice(text);
            b
        };
        let cases = [
            (ValueKind::Str, 2, strings(&[1, 1], b"ab"), None),
            (ValueKind::Str, 2, strings(&[1, 2], b"ab"), Some("runs past")),
            (ValueKind::Str, 2, strings(&[1, 0], b"ab"), Some("add up")),
            (ValueKind::Str, 1, strings(&[2], b"a\xff"), Some("not UTF-8")),
            (
                ValueKind::Str,
                2,
                strings(&[1, 1], "é".as_bytes()),
                Some("inside a character"),
            ),
            (ValueKind::Str, 3, strings(&[1, 1], b"ab"), Some("do not fit")),
            (ValueKind::U32, 3, vec![0; 8], Some("are not the 8 bytes")),
            (ValueKind::Bool, 2, vec![1, 2], Some("not 0 or 1")),
            (ValueKind::Map, 0, vec![], Some("element type")),
        ];
        for (kind, len, bytes, want) in cases {
            match (unpack(kind, len, bytes), want) {
                (Ok(_), None) => {}
                (Err(e), Some(w)) => {
                    assert_eq!(e.rule, rules::STORED_ARRAY);
                    assert!(e.to_string().contains(w), "{e} lacks {w}");
                }
                (r, w) => panic!("{kind:?} {len}: {r:?}, wanted {w:?}"),
            }
        }
    }
}
