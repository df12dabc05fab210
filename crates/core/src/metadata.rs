//! Typed, ordered metadata.
//!
//! GGUF key/values carry a width and signedness per value and PyTorch
//! checkpoints carry arbitrary nested values; both pass through here without
//! losing their types, where the target format can hold them.

use crate::{Array, Strings};
use serde_json::{Map as JsonMap, Number, Value as Json};

/// One metadata value, with its exact type.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// No value (JSON `null`, Python `None`).
    Null,
    /// Boolean.
    Bool(bool),
    /// Unsigned 8-bit integer.
    U8(u8),
    /// Signed 8-bit integer.
    I8(i8),
    /// Unsigned 16-bit integer.
    U16(u16),
    /// Signed 16-bit integer.
    I16(i16),
    /// Unsigned 32-bit integer.
    U32(u32),
    /// Signed 32-bit integer.
    I32(i32),
    /// Unsigned 64-bit integer.
    U64(u64),
    /// Signed 64-bit integer.
    I64(i64),
    /// 32-bit float.
    F32(f32),
    /// 64-bit float.
    F64(f64),
    /// UTF-8 string.
    Str(String),
    /// An array, packed when its elements are of one scalar kind or strings
    /// (GGUF arrays are typed, so even an empty one keeps its element type).
    Array(Array),
    /// A nested ordered map.
    Map(Metadata),
}

/// The type of a [`Value`], used for array element types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
#[non_exhaustive]
pub enum ValueKind {
    Null,
    Bool,
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
    Str,
    Array,
    Map,
    /// Elements of differing kinds (JSON and Python lists).
    Mixed,
}

impl Value {
    /// This value's kind.
    pub fn kind(&self) -> ValueKind {
        match self {
            Value::Null => ValueKind::Null,
            Value::Bool(_) => ValueKind::Bool,
            Value::U8(_) => ValueKind::U8,
            Value::I8(_) => ValueKind::I8,
            Value::U16(_) => ValueKind::U16,
            Value::I16(_) => ValueKind::I16,
            Value::U32(_) => ValueKind::U32,
            Value::I32(_) => ValueKind::I32,
            Value::U64(_) => ValueKind::U64,
            Value::I64(_) => ValueKind::I64,
            Value::F32(_) => ValueKind::F32,
            Value::F64(_) => ValueKind::F64,
            Value::Str(_) => ValueKind::Str,
            Value::Array(..) => ValueKind::Array,
            Value::Map(_) => ValueKind::Map,
        }
    }

    /// The value as JSON. Non-finite floats, which JSON cannot spell, become
    /// the strings `"NaN"`, `"inf"` and `"-inf"`.
    pub fn to_json(&self) -> Json {
        fn float(f: f64) -> Json {
            match Number::from_f64(f) {
                Some(n) => Json::Number(n),
                None if f.is_nan() => Json::String("NaN".into()),
                None if f > 0.0 => Json::String("inf".into()),
                None => Json::String("-inf".into()),
            }
        }
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::U8(v) => Json::from(*v),
            Value::I8(v) => Json::from(*v),
            Value::U16(v) => Json::from(*v),
            Value::I16(v) => Json::from(*v),
            Value::U32(v) => Json::from(*v),
            Value::I32(v) => Json::from(*v),
            Value::U64(v) => Json::from(*v),
            Value::I64(v) => Json::from(*v),
            Value::F32(v) => float(f64::from(*v)),
            Value::F64(v) => float(*v),
            Value::Str(s) => Json::String(s.clone()),
            Value::Array(a) => Json::Array(a.iter().map(|v| v.to_json()).collect()),
            Value::Map(m) => m.to_json(),
        }
    }

    /// The value as a string the way safetensors' `__metadata__` holds it:
    /// strings as-is, anything else as its JSON text.
    pub fn to_metadata_string(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            // Written straight from the value (no JSON tree); writing into
            // a String cannot fail.
            other => serde_json::to_string(other).unwrap_or_default(),
        }
    }

    /// A value from JSON: integers become I64 (U64 above `i64::MAX`), other
    /// numbers F64, arrays keep a common kind when they have one.
    pub fn from_json(json: &Json) -> Value {
        match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::I64(i)
                } else if let Some(u) = n.as_u64() {
                    Value::U64(u)
                } else {
                    Value::F64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Json::String(s) => Value::Str(s.clone()),
            Json::Array(items) => Value::array(items.iter().map(Value::from_json).collect()),
            Json::Object(map) => Value::Map(Metadata::from_json_object(map)),
        }
    }

    /// An array value whose element kind is inferred: the common kind of the
    /// items, or [`ValueKind::Mixed`]; packed when that kind is a scalar.
    pub fn array(items: Vec<Value>) -> Value {
        let kind = match items.first() {
            None => ValueKind::Mixed,
            Some(first) => {
                let k = first.kind();
                if items.iter().all(|v| v.kind() == k) {
                    k
                } else {
                    ValueKind::Mixed
                }
            }
        };
        Value::Array(Array::from_values(kind, items))
    }
}

/// Ordered key → [`Value`] pairs, in the order the source gave them.
///
/// Keys live in one buffer and the whole is shared: cloning (a plan, a
/// writer keeping it until its footer) costs nothing, and a copy is made
/// only when a shared value is changed. A GGUF with millions of keys is held
/// once, at about the size of its values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    inner: std::sync::Arc<Entries>,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Entries {
    keys: Strings,
    values: Vec<Value>,
}

impl Metadata {
    /// Empty metadata.
    pub fn new() -> Self {
        Self::default()
    }

    /// Empty metadata with room for `count` keys.
    pub fn with_capacity(count: usize) -> Self {
        Metadata {
            inner: std::sync::Arc::new(Entries {
                keys: Strings::with_capacity(count, 0),
                values: Vec::with_capacity(count),
            }),
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.inner.values.len()
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.inner.values.is_empty()
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.inner.keys.iter().position(|k| k == key)
    }

    /// The value for `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.position(key).map(|i| &self.inner.values[i])
    }

    /// Sets `key`, replacing an existing value in place or appending.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        match self.position(&key) {
            Some(i) => std::sync::Arc::make_mut(&mut self.inner).values[i] = value,
            None => self.push_unchecked(key, value),
        }
    }

    /// Removes `key`, returning its value; the other keys keep their order.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.position(key)?;
        let e = std::sync::Arc::make_mut(&mut self.inner);
        let mut keys = crate::Strings::with_capacity(e.keys.len(), e.keys.text_len());
        for (j, k) in e.keys.iter().enumerate() {
            if j != i {
                keys.push(k);
            }
        }
        e.keys = keys;
        Some(e.values.remove(i))
    }

    /// Appends without checking for an existing key; readers that already
    /// refused duplicates use this to stay linear in the key count.
    pub fn push_unchecked(&mut self, key: String, value: Value) {
        self.push_str(&key, value);
    }

    /// [`Metadata::push_unchecked`] with a borrowed key.
    pub fn push_str(&mut self, key: &str, value: Value) {
        let e = std::sync::Arc::make_mut(&mut self.inner);
        e.keys.push(key);
        e.values.push(value);
    }

    /// The pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.inner.keys.iter().zip(self.inner.values.iter())
    }

    /// As a JSON object, keys in order.
    pub fn to_json(&self) -> Json {
        let mut map = JsonMap::new();
        for (k, v) in self.iter() {
            map.insert(k.to_string(), v.to_json());
        }
        Json::Object(map)
    }

    /// From a JSON object, keys in the object's order.
    pub fn from_json_object(map: &JsonMap<String, Json>) -> Metadata {
        let mut m = Metadata::with_capacity(map.len());
        for (k, v) in map {
            m.push_str(k, Value::from_json(v));
        }
        m
    }
}

impl FromIterator<(String, Value)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        let mut m = Metadata::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_strings_stay_strings_others_become_json() {
        assert_eq!(Value::Str("pt".into()).to_metadata_string(), "pt");
        assert_eq!(Value::U32(7).to_metadata_string(), "7");
        assert_eq!(Value::F32(f32::NAN).to_metadata_string(), "\"NaN\"");
        let arr = Value::array(vec![Value::I32(1), Value::I32(-2)]);
        assert_eq!(arr.kind(), ValueKind::Array);
        assert_eq!(arr.to_metadata_string(), "[1,-2]");
    }

    #[test]
    fn insert_replaces_in_place() {
        let mut m = Metadata::new();
        m.insert("a", Value::Bool(true));
        m.insert("b", Value::Null);
        m.insert("a", Value::Bool(false));
        let keys: Vec<_> = m.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(m.get("a"), Some(&Value::Bool(false)));
    }
}
