//! Metadata as JSON text, written straight from the values: a 262,144-token
//! vocabulary or a 20-million-element array never becomes a tree of JSON
//! values (72 bytes per element) on its way to an output or a listing.

use crate::{Array, Metadata, Value};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;

/// A float as JSON: a number, or `"NaN"`, `"inf"`, `"-inf"` (JSON has none).
fn float<S: Serializer>(f: f64, s: S) -> Result<S::Ok, S::Error> {
    if f.is_finite() {
        s.serialize_f64(f)
    } else if f.is_nan() {
        s.serialize_str("NaN")
    } else if f > 0.0 {
        s.serialize_str("inf")
    } else {
        s.serialize_str("-inf")
    }
}

struct F32(f32);
impl Serialize for F32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        float(f64::from(self.0), s)
    }
}

struct F64(f64);
impl Serialize for F64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        float(self.0, s)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::U8(v) => s.serialize_u8(*v),
            Value::I8(v) => s.serialize_i8(*v),
            Value::U16(v) => s.serialize_u16(*v),
            Value::I16(v) => s.serialize_i16(*v),
            Value::U32(v) => s.serialize_u32(*v),
            Value::I32(v) => s.serialize_i32(*v),
            Value::U64(v) => s.serialize_u64(*v),
            Value::I64(v) => s.serialize_i64(*v),
            Value::F32(v) => float(f64::from(*v), s),
            Value::F64(v) => float(*v, s),
            Value::Str(v) => s.serialize_str(v),
            Value::Array(a) => a.serialize(s),
            Value::Map(m) => m.serialize(s),
        }
    }
}

impl Serialize for Array {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len()))?;
        macro_rules! each {
            ($v:expr) => {
                for x in $v {
                    seq.serialize_element(x)?;
                }
            };
        }
        match self {
            Array::Bool(v) => each!(v),
            Array::U8(v) => each!(v),
            Array::I8(v) => each!(v),
            Array::U16(v) => each!(v),
            Array::I16(v) => each!(v),
            Array::U32(v) => each!(v),
            Array::I32(v) => each!(v),
            Array::U64(v) => each!(v),
            Array::I64(v) => each!(v),
            Array::F32(v) => {
                for &x in v {
                    seq.serialize_element(&F32(x))?;
                }
            }
            Array::F64(v) => {
                for &x in v {
                    seq.serialize_element(&F64(x))?;
                }
            }
            Array::Str(v) => each!(v.iter()),
            Array::Values(_, items) => each!(items),
        }
        seq.end()
    }
}

impl Serialize for Metadata {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// A writer that keeps the first `max` bytes and then refuses more, so a
/// preview of a huge value stops serializing as soon as it is long enough.
struct Limited {
    buf: Vec<u8>,
    max: usize,
}

impl std::io::Write for Limited {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = self.max.saturating_sub(self.buf.len());
        if room == 0 {
            return Err(std::io::Error::other("preview full"));
        }
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Value {
    /// The first `max` bytes (cut at a character boundary, `…` appended
    /// when cut) of [`Value::to_metadata_string`], without producing the rest.
    pub fn preview(&self, max: usize) -> String {
        if let Value::Str(s) = self {
            let head = &s.as_bytes()[..s.len().min(max)];
            return cut(head.to_vec(), max, s.len() > max);
        }
        let mut w = Limited {
            buf: Vec::new(),
            max: max + 1,
        };
        let full = serde_json::to_writer(&mut w, self).is_err() || w.buf.len() > max;
        cut(w.buf, max, full)
    }
}

fn cut(mut bytes: Vec<u8>, max: usize, more: bool) -> String {
    if !more {
        return String::from_utf8_lossy(&bytes).into_owned();
    }
    bytes.truncate(max);
    // Back off to a character boundary (at most 3 bytes of a split character).
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let mut b = e.into_bytes();
            b.truncate(valid);
            String::from_utf8(b).unwrap_or_default()
        }
    };
    text + "…"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_equals_the_json_tree_and_previews_stop_early() {
        let mut m = Metadata::new();
        m.insert(
            "a",
            Value::Array(Array::F32(vec![1.5, f32::NAN, f32::NEG_INFINITY])),
        );
        m.insert(
            "s",
            Value::Array(Array::from(
                ["x", "\"q\""].into_iter().collect::<crate::Strings>(),
            )),
        );
        m.insert(
            "n",
            Value::Map(Metadata::from_iter([("k".to_string(), Value::U64(u64::MAX))])),
        );
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(text, m.to_json().to_string());
        let big = Value::Array(Array::U8(vec![7; 10_000_000]));
        let p = big.preview(20);
        assert_eq!(p, "[7,7,7,7,7,7,7,7,7,7…");
        assert_eq!(Value::Str("héllo".into()).preview(2), "h…");
        assert_eq!(Value::U32(5).preview(10), "5");
    }
}
