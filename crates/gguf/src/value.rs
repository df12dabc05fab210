//! GGUF metadata values: a bounds-checked cursor over the header and the 13
//! value types, read into (and written from) the IR's typed [`Value`].

use crate::{rules, FORMAT};
use tensorcast_core::{Array, FormatError, Strings, Value, ValueKind};

/// Deepest array nesting accepted (ggml accepts none; gguf-py writes none).
pub(crate) const MAX_DEPTH: usize = 8;

/// A reader over header bytes that checks every length against what is left.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pub(crate) pos: usize,
    big_endian: bool,
    /// Version 1 stores counts, lengths and dims as u32.
    v1: bool,
}

pub(crate) fn err(rule: &'static str, detail: impl Into<String>) -> FormatError {
    FormatError::new(FORMAT, rule, detail)
}

macro_rules! num {
    ($name:ident, $t:ty) => {
        pub(crate) fn $name(&mut self) -> Result<$t, FormatError> {
            let b = self.take(std::mem::size_of::<$t>() as u64)?;
            let a = b.try_into().unwrap_or_default();
            Ok(if self.big_endian {
                <$t>::from_be_bytes(a)
            } else {
                <$t>::from_le_bytes(a)
            })
        }
    };
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8], pos: usize, big_endian: bool, v1: bool) -> Self {
        Cursor {
            buf,
            pos,
            big_endian,
            v1,
        }
    }

    pub(crate) fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    pub(crate) fn take(&mut self, n: u64) -> Result<&'a [u8], FormatError> {
        if n > self.remaining() {
            return Err(err(
                rules::TRUNCATED,
                format!("needs {n} bytes but only {} remain", self.remaining()),
            )
            .at(self.pos as u64));
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.buf[start..self.pos])
    }

    num!(u8, u8);
    num!(i8, i8);
    num!(u16, u16);
    num!(i16, i16);
    num!(u32, u32);
    num!(i32, i32);
    num!(u64, u64);
    num!(i64, i64);
    num!(f32, f32);
    num!(f64, f64);

    /// A count or length: u32 in version 1, u64 after.
    pub(crate) fn len(&mut self) -> Result<u64, FormatError> {
        if self.v1 {
            self.u32().map(u64::from)
        } else {
            self.u64()
        }
    }

    /// Bytes a length field takes.
    pub(crate) fn len_size(&self) -> u64 {
        if self.v1 {
            4
        } else {
            8
        }
    }

    pub(crate) fn string(&mut self) -> Result<String, FormatError> {
        self.str().map(str::to_string)
    }

    /// A string, borrowed from the header.
    pub(crate) fn str(&mut self) -> Result<&'a str, FormatError> {
        let at = self.pos as u64;
        let n = self.len()?;
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes)
            .map_err(|e| err(rules::STRING_NOT_UTF8, format!("string is not UTF-8: {e}")).at(at))
    }

    /// `count` elements of GGUF type `elem`, packed into one typed buffer.
    fn array(&mut self, elem: u32, count: usize, depth: usize) -> Result<Array, FormatError> {
        macro_rules! each {
            ($read:ident) => {
                (0..count)
                    .map(|_| self.$read())
                    .collect::<Result<Vec<_>, _>>()?
            };
        }
        Ok(match elem {
            0 => Array::U8(self.take(count as u64)?.to_vec()),
            1 => Array::I8(each!(i8)),
            2 => Array::U16(each!(u16)),
            3 => Array::I16(each!(i16)),
            4 => Array::U32(each!(u32)),
            5 => Array::I32(each!(i32)),
            6 => Array::F32(each!(f32)),
            7 => {
                let mut out = Vec::with_capacity(count);
                for _ in 0..count {
                    let at = self.pos as u64;
                    out.push(match self.u8()? {
                        0 => false,
                        1 => true,
                        b => {
                            return Err(
                                err(rules::BAD_BOOL, format!("BOOL value byte is {b}, not 0 or 1")).at(at),
                            )
                        }
                    });
                }
                Array::Bool(out)
            }
            8 => {
                let mut out = Strings::with_capacity(count, 0);
                for _ in 0..count {
                    out.push(self.str()?);
                }
                Array::from(out)
            }
            10 => Array::U64(each!(u64)),
            11 => Array::I64(each!(i64)),
            12 => Array::F64(each!(f64)),
            _ => {
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(self.value(elem, depth + 1)?);
                }
                Array::Values(kind_of(elem).unwrap_or(ValueKind::Mixed), items)
            }
        })
    }

    /// Smallest encoding of a value of `ty`, to bound counts before allocating.
    fn min_size(&self, ty: u32) -> u64 {
        match ty {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            8 => self.len_size(),
            9 => 4 + self.len_size(),
            _ => 8,
        }
    }

    /// Reads one value of GGUF type `ty`.
    pub(crate) fn value(&mut self, ty: u32, depth: usize) -> Result<Value, FormatError> {
        let at = self.pos as u64;
        Ok(match ty {
            0 => Value::U8(self.u8()?),
            1 => Value::I8(self.i8()?),
            2 => Value::U16(self.u16()?),
            3 => Value::I16(self.i16()?),
            4 => Value::U32(self.u32()?),
            5 => Value::I32(self.i32()?),
            6 => Value::F32(self.f32()?),
            7 => match self.u8()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                // ggml reads any non-zero byte as true; a byte that is neither 0
                // nor 1 means a writer bug or corruption, so we refuse it.
                b => return Err(err(rules::BAD_BOOL, format!("BOOL value byte is {b}, not 0 or 1")).at(at)),
            },
            8 => Value::Str(self.string()?),
            9 => {
                if depth >= MAX_DEPTH {
                    return Err(err(
                        rules::NESTING_TOO_DEEP,
                        format!("arrays nested deeper than {MAX_DEPTH}"),
                    )
                    .at(at));
                }
                let elem = self.u32()?;
                let kind = kind_of(elem).ok_or_else(|| {
                    err(
                        rules::BAD_VALUE_TYPE,
                        format!("array element type {elem} is not 0-12"),
                    )
                    .at(at)
                })?;
                let count = self.len()?;
                if count.saturating_mul(self.min_size(elem)) > self.remaining() {
                    return Err(err(
                        rules::COUNT_TOO_LARGE,
                        format!(
                            "array of {count} elements cannot fit in the {} bytes left",
                            self.remaining()
                        ),
                    )
                    .at(at));
                }
                let _ = kind;
                Value::Array(self.array(elem, count as usize, depth)?)
            }
            10 => Value::U64(self.u64()?),
            11 => Value::I64(self.i64()?),
            12 => Value::F64(self.f64()?),
            t => return Err(err(rules::BAD_VALUE_TYPE, format!("value type {t} is not 0-12")).at(at)),
        })
    }
}

/// The IR kind for GGUF value type `ty`.
fn kind_of(ty: u32) -> Option<ValueKind> {
    Some(match ty {
        0 => ValueKind::U8,
        1 => ValueKind::I8,
        2 => ValueKind::U16,
        3 => ValueKind::I16,
        4 => ValueKind::U32,
        5 => ValueKind::I32,
        6 => ValueKind::F32,
        7 => ValueKind::Bool,
        8 => ValueKind::Str,
        9 => ValueKind::Array,
        10 => ValueKind::U64,
        11 => ValueKind::I64,
        12 => ValueKind::F64,
        _ => return None,
    })
}

/// The GGUF type id for a value kind that GGUF can hold as an array element
/// or scalar (no maps, nulls, mixed or nested arrays: ggml refuses those).
pub(crate) fn type_of(kind: ValueKind) -> Option<u32> {
    Some(match kind {
        ValueKind::U8 => 0,
        ValueKind::I8 => 1,
        ValueKind::U16 => 2,
        ValueKind::I16 => 3,
        ValueKind::U32 => 4,
        ValueKind::I32 => 5,
        ValueKind::F32 => 6,
        ValueKind::Bool => 7,
        ValueKind::Str => 8,
        ValueKind::U64 => 10,
        ValueKind::I64 => 11,
        ValueKind::F64 => 12,
        _ => return None,
    })
}

/// Appends `value` (whose GGUF type is `type_of(value.kind())` or an array of
/// such) in little-endian GGUF v3 encoding, without its type id.
pub(crate) fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::U8(v) => out.push(*v),
        Value::I8(v) => out.push(*v as u8),
        Value::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Bool(v) => out.push(u8::from(*v)),
        Value::Str(s) => encode_str(s, out),
        Value::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Array(a) => {
            out.extend_from_slice(&type_of(a.kind()).unwrap_or(8).to_le_bytes());
            out.extend_from_slice(&(a.len() as u64).to_le_bytes());
            encode_items(a, out);
        }
        // Callers turn these (nulls, maps, kinds newer than this writer)
        // into strings first (see `writable`).
        _ => encode_str(&value.to_metadata_string(), out),
    }
}

/// An array's elements, back to back.
fn encode_items(a: &Array, out: &mut Vec<u8>) {
    macro_rules! le {
        ($v:expr) => {
            $v.iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes()))
        };
    }
    match a {
        Array::U8(v) => out.extend_from_slice(v),
        Array::I8(v) => le!(v),
        Array::Bool(v) => out.extend(v.iter().map(|&b| u8::from(b))),
        Array::U16(v) => le!(v),
        Array::I16(v) => le!(v),
        Array::U32(v) => le!(v),
        Array::I32(v) => le!(v),
        Array::U64(v) => le!(v),
        Array::I64(v) => le!(v),
        Array::F32(v) => le!(v),
        Array::F64(v) => le!(v),
        Array::Str(s) => s.iter().for_each(|x| encode_str(x, out)),
        Array::Values(_, items) => items.iter().for_each(|v| encode(v, out)),
        other => other.iter().for_each(|v| encode(&v, out)),
    }
}

pub(crate) fn encode_str(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// `value` as GGUF can hold it: scalars and flat typed arrays stay as they
/// are; maps, nulls, mixed and nested arrays become their JSON text.
pub(crate) fn writable(value: &Value) -> Value {
    match value {
        Value::Null | Value::Map(_) => Value::Str(value.to_metadata_string()),
        Value::Array(a) if type_of(a.kind()).is_none() => Value::Str(value.to_metadata_string()),
        other => other.clone(),
    }
}
