//! Reading GGUF key/values as a model needs them: integers of any width
//! (writers differ), floats, strings and string arrays.

use tensorcast_core::{Array, Metadata, Value};

/// An integer value of any GGUF width.
pub fn int(metadata: &Metadata, key: &str) -> Option<i64> {
    Some(match metadata.get(key)? {
        Value::U8(x) => i64::from(*x),
        Value::I8(x) => i64::from(*x),
        Value::U16(x) => i64::from(*x),
        Value::I16(x) => i64::from(*x),
        Value::U32(x) => i64::from(*x),
        Value::I32(x) => i64::from(*x),
        Value::U64(x) => i64::try_from(*x).ok()?,
        Value::I64(x) => *x,
        _ => return None,
    })
}

/// A float value (F32 widened exactly to f64, as numpy does for transformers).
pub fn float(metadata: &Metadata, key: &str) -> Option<f64> {
    match metadata.get(key)? {
        Value::F32(x) => Some(f64::from(*x)),
        Value::F64(x) => Some(*x),
        _ => int(metadata, key).map(|i| i as f64),
    }
}

/// A string value.
pub fn string<'a>(metadata: &'a Metadata, key: &str) -> Option<&'a str> {
    match metadata.get(key)? {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

/// A boolean value.
pub fn boolean(metadata: &Metadata, key: &str) -> Option<bool> {
    match metadata.get(key)? {
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

/// An array's elements.
pub fn array<'a>(metadata: &'a Metadata, key: &str) -> Option<&'a Array> {
    match metadata.get(key)? {
        Value::Array(a) => Some(a),
        _ => None,
    }
}

/// A 32-bit integer array (llama.cpp's per-layer counts: head counts, FFN
/// widths) as i64s, `None` if it is not one.
pub fn ints(metadata: &Metadata, key: &str) -> Option<Vec<i64>> {
    match array(metadata, key)? {
        Array::I32(v) => Some(v.iter().map(|&x| i64::from(x)).collect()),
        Array::U32(v) => Some(v.iter().map(|&x| i64::from(x)).collect()),
        _ => None,
    }
}

/// A string array, `None` if it is not one.
pub fn strings<'a>(metadata: &'a Metadata, key: &str) -> Option<Vec<&'a str>> {
    Some(array(metadata, key)?.strings()?.iter().collect())
}
