//! Metadata arrays held packed: a vocabulary of 262,144 tokens is one string
//! buffer and one offset table, and a 20-million-element byte array is 20 MB,
//! not a tree of per-element values (32+ bytes each).

use crate::{Value, ValueKind};

/// Strings stored back to back in one buffer, with the end of each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Strings {
    text: String,
    ends: Vec<usize>,
}

impl Strings {
    /// No strings.
    pub fn new() -> Strings {
        Strings::default()
    }

    /// Room for `count` strings of `bytes` bytes in all.
    pub fn with_capacity(count: usize, bytes: usize) -> Strings {
        Strings {
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(count),
        }
    }

    /// Appends `s`.
    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(self.text.len());
    }

    /// Number of strings.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// String `i`.
    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.text.get(start..end)
    }

    /// Every string in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.ends.len()).map(move |i| self.get(i).unwrap_or(""))
    }

    /// Total bytes of text.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// Strings given as one text and the end of each, as a packed store
    /// holds them; `None` unless the ends never decrease, the last is the
    /// text's length, and each falls on a character boundary.
    pub fn from_parts(text: String, ends: Vec<usize>) -> Option<Strings> {
        let mut at = 0;
        for &end in &ends {
            if end < at || !text.is_char_boundary(end) {
                return None;
            }
            at = end;
        }
        (at == text.len()).then_some(Strings { text, ends })
    }

    /// The text and the end of each string in it.
    pub fn parts(&self) -> (&str, &[usize]) {
        (&self.text, &self.ends)
    }
}

impl From<Strings> for Array {
    fn from(s: Strings) -> Array {
        Array::Str(Box::new(s))
    }
}

impl<S: AsRef<str>> FromIterator<S> for Strings {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut out = Strings::new();
        for s in iter {
            out.push(s.as_ref());
        }
        out
    }
}

/// An array value: one typed buffer for arrays of one scalar kind or of
/// strings (every GGUF array, tpack's bulk arrays), one value per element
/// only for nested, mixed or null-holding arrays.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
#[non_exhaustive]
pub enum Array {
    Bool(Vec<bool>),
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    /// Strings, boxed: it keeps every array value, and so every [`Value`], small.
    Str(Box<Strings>),
    /// Elements that are arrays, maps or nulls, or of differing kinds; the
    /// kind is the common one, or [`ValueKind::Mixed`].
    Values(ValueKind, Vec<Value>),
}

impl Array {
    /// An empty array whose elements are of `kind`.
    pub fn empty(kind: ValueKind) -> Array {
        match kind {
            ValueKind::Bool => Array::Bool(Vec::new()),
            ValueKind::U8 => Array::U8(Vec::new()),
            ValueKind::I8 => Array::I8(Vec::new()),
            ValueKind::U16 => Array::U16(Vec::new()),
            ValueKind::I16 => Array::I16(Vec::new()),
            ValueKind::U32 => Array::U32(Vec::new()),
            ValueKind::I32 => Array::I32(Vec::new()),
            ValueKind::U64 => Array::U64(Vec::new()),
            ValueKind::I64 => Array::I64(Vec::new()),
            ValueKind::F32 => Array::F32(Vec::new()),
            ValueKind::F64 => Array::F64(Vec::new()),
            ValueKind::Str => Array::from(Strings::new()),
            other => Array::Values(other, Vec::new()),
        }
    }

    /// From values whose common kind is `kind`: packed when `kind` is a
    /// scalar or string kind that every element has.
    pub fn from_values(kind: ValueKind, items: Vec<Value>) -> Array {
        if !items.iter().all(|v| v.kind() == kind) {
            return Array::Values(ValueKind::Mixed, items);
        }
        let mut out = Array::empty(kind);
        if matches!(out, Array::Values(..)) {
            return Array::Values(kind, items);
        }
        for v in items {
            out.push(v);
        }
        out
    }

    /// Appends `v`, which must be of this array's element kind for packed
    /// arrays (anything else turns the array into per-element values).
    pub fn push(&mut self, v: Value) {
        match (&mut *self, v) {
            (Array::Bool(a), Value::Bool(x)) => a.push(x),
            (Array::U8(a), Value::U8(x)) => a.push(x),
            (Array::I8(a), Value::I8(x)) => a.push(x),
            (Array::U16(a), Value::U16(x)) => a.push(x),
            (Array::I16(a), Value::I16(x)) => a.push(x),
            (Array::U32(a), Value::U32(x)) => a.push(x),
            (Array::I32(a), Value::I32(x)) => a.push(x),
            (Array::U64(a), Value::U64(x)) => a.push(x),
            (Array::I64(a), Value::I64(x)) => a.push(x),
            (Array::F32(a), Value::F32(x)) => a.push(x),
            (Array::F64(a), Value::F64(x)) => a.push(x),
            (Array::Str(a), Value::Str(x)) => a.push(&x),
            (Array::Values(kind, items), x) => {
                if x.kind() != *kind {
                    *kind = ValueKind::Mixed;
                }
                items.push(x);
            }
            (_, x) => {
                let mut items: Vec<Value> = self.iter().collect();
                items.push(x);
                *self = Array::Values(ValueKind::Mixed, items);
            }
        }
    }

    /// The elements' kind.
    pub fn kind(&self) -> ValueKind {
        match self {
            Array::Bool(_) => ValueKind::Bool,
            Array::U8(_) => ValueKind::U8,
            Array::I8(_) => ValueKind::I8,
            Array::U16(_) => ValueKind::U16,
            Array::I16(_) => ValueKind::I16,
            Array::U32(_) => ValueKind::U32,
            Array::I32(_) => ValueKind::I32,
            Array::U64(_) => ValueKind::U64,
            Array::I64(_) => ValueKind::I64,
            Array::F32(_) => ValueKind::F32,
            Array::F64(_) => ValueKind::F64,
            Array::Str(_) => ValueKind::Str,
            Array::Values(kind, _) => *kind,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Array::Bool(a) => a.len(),
            Array::U8(a) => a.len(),
            Array::I8(a) => a.len(),
            Array::U16(a) => a.len(),
            Array::I16(a) => a.len(),
            Array::U32(a) => a.len(),
            Array::I32(a) => a.len(),
            Array::U64(a) => a.len(),
            Array::I64(a) => a.len(),
            Array::F32(a) => a.len(),
            Array::F64(a) => a.len(),
            Array::Str(a) => a.len(),
            Array::Values(_, a) => a.len(),
        }
    }

    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` as a value (strings copied).
    pub fn get(&self, i: usize) -> Option<Value> {
        Some(match self {
            Array::Bool(a) => Value::Bool(*a.get(i)?),
            Array::U8(a) => Value::U8(*a.get(i)?),
            Array::I8(a) => Value::I8(*a.get(i)?),
            Array::U16(a) => Value::U16(*a.get(i)?),
            Array::I16(a) => Value::I16(*a.get(i)?),
            Array::U32(a) => Value::U32(*a.get(i)?),
            Array::I32(a) => Value::I32(*a.get(i)?),
            Array::U64(a) => Value::U64(*a.get(i)?),
            Array::I64(a) => Value::I64(*a.get(i)?),
            Array::F32(a) => Value::F32(*a.get(i)?),
            Array::F64(a) => Value::F64(*a.get(i)?),
            Array::Str(a) => Value::Str(a.get(i)?.to_string()),
            Array::Values(_, a) => a.get(i)?.clone(),
        })
    }

    /// Every element as a value, in order (strings copied one at a time).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Value> + '_ {
        (0..self.len()).map(move |i| self.get(i).unwrap_or(Value::Null))
    }

    /// The strings, when this is a string array.
    pub fn strings(&self) -> Option<&Strings> {
        match self {
            Array::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Element `i` as an integer, for integer and boolean arrays.
    pub fn int(&self, i: usize) -> Option<i128> {
        Some(match self {
            Array::Bool(a) => i128::from(*a.get(i)?),
            Array::U8(a) => i128::from(*a.get(i)?),
            Array::I8(a) => i128::from(*a.get(i)?),
            Array::U16(a) => i128::from(*a.get(i)?),
            Array::I16(a) => i128::from(*a.get(i)?),
            Array::U32(a) => i128::from(*a.get(i)?),
            Array::I32(a) => i128::from(*a.get(i)?),
            Array::U64(a) => i128::from(*a.get(i)?),
            Array::I64(a) => i128::from(*a.get(i)?),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_from_parts_take_only_ends_that_split_the_text_into_strings() {
        let s = Strings::from_parts("aébc".into(), vec![1, 3, 3, 5]).unwrap();
        assert_eq!(s.iter().collect::<Vec<_>>(), ["a", "é", "", "bc"]);
        assert_eq!(s.parts(), ("aébc", &[1usize, 3, 3, 5][..]));
        assert!(
            Strings::from_parts("aé".into(), vec![2, 3]).is_none(),
            "inside a character"
        );
        assert!(
            Strings::from_parts("abc".into(), vec![2, 1, 3]).is_none(),
            "decreasing"
        );
        assert!(
            Strings::from_parts("abc".into(), vec![2]).is_none(),
            "text left over"
        );
        assert!(
            Strings::from_parts("abc".into(), vec![4]).is_none(),
            "past the end"
        );
        assert!(Strings::from_parts(String::new(), vec![]).unwrap().is_empty());
    }

    #[test]
    fn strings_are_one_buffer_and_index_back() {
        let s: Strings = ["a", "", "Ġb", "ü"].into_iter().collect();
        assert_eq!(s.len(), 4);
        assert_eq!(s.iter().collect::<Vec<_>>(), ["a", "", "Ġb", "ü"]);
        assert_eq!(s.get(2), Some("Ġb"));
        assert_eq!(s.get(4), None);
        assert_eq!(s.text_len(), 1 + 3 + 2);
    }

    #[test]
    fn values_of_one_scalar_kind_pack_and_mixed_ones_do_not() {
        let a = Array::from_values(ValueKind::U16, vec![Value::U16(1), Value::U16(65535)]);
        assert_eq!(a, Array::U16(vec![1, 65535]));
        assert_eq!(a.get(1), Some(Value::U16(65535)));
        let m = Array::from_values(ValueKind::Mixed, vec![Value::U8(1), Value::Str("x".into())]);
        assert!(matches!(m, Array::Values(ValueKind::Mixed, _)));
        let mut p = Array::empty(ValueKind::I32);
        p.push(Value::I32(3));
        p.push(Value::Str("odd".into()));
        assert_eq!(p.kind(), ValueKind::Mixed);
        assert_eq!(
            p.iter().collect::<Vec<_>>(),
            [Value::I32(3), Value::Str("odd".into())]
        );
    }
}
