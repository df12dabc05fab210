//! Reading a manifest's JSON as a stream (T6–T14): each metadata array and
//! each tensor's chunk list is converted element by element as the parser
//! reaches it, so a manifest listing 2 million chunks or a 20-million-element
//! array never exists as a JSON tree (70+ bytes per element). Parsing goes on
//! after the first broken rule and reports it only if the text is valid JSON,
//! so errors keep the precedence of a parse-then-check reader.

use crate::manifest::{
    err, float_bits, is_scalar, kind_by_name, kind_name, malformed, owned_scalar, parse_chunks,
    sparse_fields, unit_bytes, Entry, Manifest, RawChunks, SPARSE_COO, SPARSE_CSR,
};
use crate::rules;
use crate::stored::{element_bytes, StoredArray};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map as JsonMap, Value as Json};
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use tensorcast_core::sparse::{sparse_info, SparseLayout};
use tensorcast_core::{element_count, Array, DType, FormatError, Metadata, TensorInfo, Value, ValueKind};

/// The first broken rule seen while the stream goes on.
type FirstError<'a> = &'a RefCell<Option<FormatError>>;

fn note(first: FirstError<'_>, e: FormatError) {
    let mut slot = first.borrow_mut();
    if slot.is_none() {
        *slot = Some(e);
    }
}

/// Visitor methods for every JSON shape a visitor does not expect: the value
/// is consumed and `$other` returned, so the stream continues.
macro_rules! otherwise {
    ($other:expr) => {
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok($other)
        }
    };
}

/// Parses and validates a manifest whose chunks must lie below `committed_len`.
pub(crate) fn parse(text: &[u8], committed_len: u64) -> Result<Manifest, FormatError> {
    let first = RefCell::new(None);
    // UTF-8 checked once over the whole text: reading from bytes, serde_json
    // checks each string on its own, a sixth of an inspect of a 262k-token
    // vocabulary.
    let text = std::str::from_utf8(text).map_err(|e| {
        err(
            rules::MANIFEST,
            format!("manifest is not JSON: invalid UTF-8 ({e})"),
        )
    })?;
    let mut de = serde_json::Deserializer::from_str(text);
    let top = de
        .deserialize_any(TopVisitor {
            first: &first,
            committed_len,
        })
        .and_then(|top| de.end().map(|()| top))
        .map_err(|e| err(rules::MANIFEST, format!("manifest is not JSON: {e}")))?;
    let shape_err = |what: &str| err(rules::MANIFEST, format!("manifest: {what}"));
    let Some(top) = top else {
        return Err(shape_err("no metadata list"));
    };
    // Metadata rules come before tensor rules, as in the file's own order.
    match top.metadata {
        None => return Err(shape_err("no metadata list")),
        Some(Err(e)) => return Err(e),
        Some(Ok(_)) => {}
    }
    if top.tensors.is_none() {
        return Err(shape_err("no tensor list"));
    }
    if let Some(e) = first.into_inner() {
        return Err(e);
    }
    let stored = stored_arrays(top.stored, committed_len)?;
    Ok(Manifest {
        metadata: top.metadata.and_then(Result::ok).unwrap_or_default(),
        tensors: top.tensors.unwrap_or_default(),
        stored,
    })
}

/// The stored arrays' chunk lists checked (T9–T16 as for a tensor's, cut at
/// whole elements) and their sizes against their element counts (T18).
fn stored_arrays(raw: Vec<RawStored>, committed_len: u64) -> Result<Vec<StoredArray>, FormatError> {
    let mut out: Vec<StoredArray> = Vec::with_capacity(raw.len());
    for r in raw {
        let key = r.key.unwrap_or_default();
        let t18 = |what: String| err(rules::STORED_ARRAY, what).key(&key);
        if out.iter().any(|s| s.key == key) {
            return Err(t18("the key is stored twice".into()));
        }
        let width = element_bytes(r.kind);
        let (chunks, total) =
            parse_chunks(&r.chunks, width.unwrap_or(1), committed_len).map_err(|e| e.key(&key))?;
        let fits = match width {
            Some(w) => r.len.checked_mul(w) == Some(total),
            None => r.len.checked_mul(8).is_some_and(|t| t <= total),
        };
        if !fits {
            return Err(t18(format!(
                "{} elements of {} do not make the {total} bytes its chunks decode to",
                r.len,
                kind_name(r.kind)
            )));
        }
        out.push(StoredArray {
            key,
            kind: r.kind,
            len: r.len,
            chunks,
        });
    }
    Ok(out)
}

struct Top {
    metadata: Option<Result<Metadata, FormatError>>,
    tensors: Option<Vec<Entry>>,
    stored: Vec<RawStored>,
}

/// A top-level array in the stored form (§2.3) as read, before its chunk
/// list is checked against the file.
pub(crate) struct RawStored {
    /// Set by the pair once the value is read.
    key: Option<String>,
    kind: ValueKind,
    len: u64,
    chunks: RawChunks,
}

/// The stored arrays met so far in the top-level metadata list.
type StoredSink<'a> = &'a RefCell<Vec<RawStored>>;

struct TopVisitor<'a> {
    first: FirstError<'a>,
    committed_len: u64,
}

impl<'de> Visitor<'de> for TopVisitor<'_> {
    type Value = Option<Top>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a manifest object")
    }

    otherwise!(None);

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut top = Top {
            metadata: None,
            tensors: None,
            stored: Vec::new(),
        };
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "metadata" => {
                    let own = RefCell::new(None);
                    let stored = RefCell::new(Vec::new());
                    let pairs = map.next_value_seed(PairsSeed {
                        first: &own,
                        depth: 0,
                        top: true,
                        stored: Some(&stored),
                    })?;
                    top.stored = stored.into_inner();
                    top.metadata = pairs.map(|m| match own.into_inner() {
                        Some(e) => Err(e),
                        None => Ok(m),
                    });
                }
                "tensors" => {
                    top.tensors = map.next_value_seed(TensorsSeed {
                        first: self.first,
                        committed_len: self.committed_len,
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(top))
    }
}

/// A list of `[key, typed value]` pairs; `None` when it is not a list.
struct PairsSeed<'a> {
    first: FirstError<'a>,
    depth: usize,
    /// The top-level list, whose malformed pairs have their own message.
    top: bool,
    /// Where the top-level list's stored arrays go (none below it).
    stored: Option<StoredSink<'a>>,
}

impl<'de> DeserializeSeed<'de> for PairsSeed<'_> {
    type Value = Option<Metadata>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PairsSeed<'_> {
    type Value = Option<Metadata>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of [key, value] pairs")
    }

    otherwise!(None);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut m = Metadata::new();
        while let Some(pair) = seq.next_element_seed(PairSeed {
            first: self.first,
            depth: self.depth,
            stored: self.stored,
        })? {
            match pair {
                Some((key, Ok(value))) => m.push_unchecked(key, value),
                Some((key, Err(e))) => note(self.first, e.key(key)),
                None if self.top => note(
                    self.first,
                    err(rules::MANIFEST, "manifest: metadata entries are [key, value]"),
                ),
                None => note(
                    self.first,
                    err(rules::METADATA, "malformed typed value (not a [key, value] pair)"),
                ),
            }
        }
        Ok(Some(m))
    }
}

/// One `[key, typed value]` pair; `None` when it is not one.
struct PairSeed<'a> {
    first: FirstError<'a>,
    depth: usize,
    stored: Option<StoredSink<'a>>,
}

type Pair = Option<(String, Result<Value, FormatError>)>;

impl<'de> DeserializeSeed<'de> for PairSeed<'_> {
    type Value = Pair;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PairSeed<'_> {
    type Value = Pair;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a [key, value] pair")
    }

    otherwise!(None);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let key = match seq.next_element::<Json>()? {
            Some(Json::String(k)) => k,
            Some(_) => {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                return Ok(None);
            }
            None => return Ok(None),
        };
        let value = seq.next_element_seed(TypedSeed {
            first: self.first,
            depth: self.depth,
            stored: self.stored,
        })?;
        // A stored array just read is this key's.
        if let Some(sink) = self.stored {
            if let Some(last) = sink.borrow_mut().last_mut().filter(|l| l.key.is_none()) {
                last.key = Some(key.clone());
            }
        }
        if seq.next_element::<IgnoredAny>()?.is_some() {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(None);
        }
        Ok(value.map(|v| (key, v)))
    }
}

/// A typed value (§2.1): `{"t": ..., "e": ..., "b"|"v": ...}`. The values of
/// an array are streamed when its type comes before them (as writers put
/// it); otherwise the object is gathered and read as before.
struct TypedSeed<'a> {
    first: FirstError<'a>,
    depth: usize,
    /// Set for a top-level value, which may take the stored form.
    stored: Option<StoredSink<'a>>,
}

impl<'de> DeserializeSeed<'de> for TypedSeed<'_> {
    type Value = Result<Value, FormatError>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TypedSeed<'_> {
    type Value = Result<Value, FormatError>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a typed value")
    }

    otherwise!(Err(malformed(&Json::Null)));

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Err(malformed(&Json::Null)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        if self.depth > 64 {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(Err(err(rules::METADATA, "metadata nested deeper than 64 levels")));
        }
        // `t` and `e` say how to read `b`/`v`; a body that comes before
        // them is kept as its raw text (borrowed, never a tree) and read
        // once they are known. Unknown fields are skipped unparsed.
        let (mut t, mut e): (Option<Json>, Option<Json>) = (None, None);
        let mut body: Option<Result<Value, FormatError>> = None;
        let mut forms: Vec<&'static str> = Vec::new();
        let mut deferred: Vec<(&'static str, &'de serde_json::value::RawValue)> = Vec::new();
        // The stored form's fields (§2.3): `chunks` present at all, and as read.
        let (mut n, mut chunks): (Option<Json>, Option<Option<RawChunks>>) = (None, None);
        while let Some(key) = map.next_key::<String>()? {
            let form = match key.as_str() {
                "t" => {
                    t = Some(map.next_value()?);
                    continue;
                }
                "e" => {
                    e = Some(map.next_value()?);
                    continue;
                }
                "n" => {
                    n = Some(map.next_value()?);
                    continue;
                }
                "chunks" => {
                    chunks = Some(map.next_value_seed(ChunksSeed)?);
                    continue;
                }
                "b" => "b",
                "v" => "v",
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            forms.push(form);
            let shape = Shape::of(t.as_ref(), e.as_ref());
            match shape {
                Some(shape) if body.is_none() && shape.reads(form) => {
                    body = Some(map.next_value_seed(BodySeed {
                        shape,
                        form,
                        first: self.first,
                        depth: self.depth,
                    })?);
                }
                Some(_) => {
                    map.next_value::<IgnoredAny>()?;
                }
                None => deferred.push((form, map.next_value()?)),
            }
        }
        let whole = || {
            let mut j = JsonMap::new();
            j.extend(t.clone().map(|t| ("t".to_string(), t)));
            j.extend(e.clone().map(|e| ("e".to_string(), e)));
            malformed(&Json::Object(j))
        };
        if let Some(chunks) = chunks {
            return Ok(self.stored_form(t.as_ref(), e.as_ref(), n, chunks, !forms.is_empty()));
        }
        let Some(shape) = Shape::of(t.as_ref(), e.as_ref()) else {
            return Ok(Err(whole()));
        };
        for (form, raw) in deferred {
            if body.is_none() && shape.reads(form) {
                let mut de = serde_json::Deserializer::from_str(raw.get());
                let seed = BodySeed {
                    shape,
                    form,
                    first: self.first,
                    depth: self.depth,
                };
                body = Some(seed.deserialize(&mut de).unwrap_or_else(|_| Err(whole())));
            }
        }
        // An array takes exactly one of the two forms; others read `v`.
        let one_form = !matches!(shape, Shape::Array(_)) || forms.len() == 1;
        Ok(match body {
            Some(v) if one_form => v,
            _ => Err(whole()),
        })
    }
}

impl TypedSeed<'_> {
    /// A value with a `chunks` field: an array in the stored form (§2.3),
    /// kept for the caller to read from the file; its value is an empty
    /// array of its kind until then.
    fn stored_form(
        &self,
        t: Option<&Json>,
        e: Option<&Json>,
        n: Option<Json>,
        chunks: Option<RawChunks>,
        has_body: bool,
    ) -> Result<Value, FormatError> {
        let bad = |what: &str| Err(err(rules::STORED_ARRAY, format!("stored array: {what}")));
        let Some(sink) = self.stored.filter(|_| self.depth == 0) else {
            return bad("only a top-level metadata value may be stored in chunks");
        };
        let kind = match Shape::of(t, e) {
            Some(Shape::Array(k)) if crate::stored::storable_kind(k) => k,
            _ => return bad("`t` is not \"arr\" with a scalar `e` other than null"),
        };
        if has_body {
            return bad("it has `b` or `v` as well as `chunks`");
        }
        let Some(len) = n.as_ref().and_then(Json::as_u64) else {
            return bad("`n` is not an element count");
        };
        let Some(chunks) = chunks else {
            return bad("`chunks` is not a list");
        };
        sink.borrow_mut().push(RawStored {
            key: None,
            kind,
            len,
            chunks,
        });
        Ok(Value::Array(Array::empty(kind)))
    }
}

/// What a typed value's `t` (and `e`) make of its body.
#[derive(Clone, Copy)]
enum Shape {
    /// `arr` of element kind `e`.
    Array(ValueKind),
    /// `map`.
    Map,
    /// A scalar of this kind.
    Scalar(ValueKind),
}

impl Shape {
    fn of(t: Option<&Json>, e: Option<&Json>) -> Option<Shape> {
        match t?.as_str()? {
            "arr" => Some(Shape::Array(e?.as_str().and_then(kind_by_name)?)),
            "map" => Some(Shape::Map),
            other => kind_by_name(other).filter(|&k| is_scalar(k)).map(Shape::Scalar),
        }
    }

    /// Whether the body field `form` is the one this shape reads (`b` only
    /// for arrays of scalars).
    fn reads(self, form: &str) -> bool {
        match self {
            Shape::Array(k) => form == "v" || is_scalar(k),
            _ => form == "v",
        }
    }
}

/// A typed value's body (`b` or `v`), read as its shape says.
struct BodySeed<'a> {
    shape: Shape,
    /// `b` (bare values) or `v` (typed values, or a map's pairs, or a scalar).
    form: &'static str,
    first: FirstError<'a>,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for BodySeed<'_> {
    type Value = Result<Value, FormatError>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Ok(match self.shape {
            Shape::Array(k) if self.form == "b" => BulkSeed { kind: k }.deserialize(d)?.map(Value::Array),
            Shape::Array(k) => ItemsSeed {
                first: self.first,
                depth: self.depth + 1,
            }
            .deserialize(d)?
            .map(|v| Value::Array(Array::from_values(k, v))),
            Shape::Map => {
                let own = RefCell::new(None);
                let m = PairsSeed {
                    stored: None,
                    first: &own,
                    depth: self.depth + 1,
                    top: false,
                }
                .deserialize(d)?;
                match (m, own.into_inner()) {
                    (_, Some(e)) => Err(e),
                    (Some(m), None) => Ok(Value::Map(m)),
                    (None, None) => Err(malformed(&Json::Null)),
                }
            }
            Shape::Scalar(k) => match <StrOrOther<'de> as serde::Deserialize>::deserialize(d)? {
                StrOrOther::Str(s) => owned_scalar(k, Json::String(s.into_owned())),
                StrOrOther::Other(j) => owned_scalar(k, j),
            },
        })
    }
}

/// A bulk array's bare values (§2.1), packed one element at a time.
struct BulkSeed {
    kind: ValueKind,
}

impl<'de> DeserializeSeed<'de> for BulkSeed {
    type Value = Result<Array, FormatError>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BulkSeed {
    type Value = Result<Array, FormatError>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of bare values")
    }

    otherwise!(Err(malformed(&Json::Null)));

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Err(malformed(&Json::Null)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Array::empty(self.kind);
        let mut bad = None;
        if let Array::Str(strings) = &mut out {
            // A vocabulary: each string goes from the text into the buffer,
            // borrowed where it has no escapes, never a String of its own.
            while let Some(x) = seq.next_element::<StrOrOther<'de>>()? {
                match (x, &bad) {
                    (_, Some(_)) => {}
                    (StrOrOther::Str(s), None) => strings.push(&s),
                    (StrOrOther::Other(j), None) => bad = Some(malformed(&j)),
                }
            }
            return Ok(bad.map_or(Ok(out), Err));
        }
        if let Array::F32(_) | Array::F64(_) = &out {
            // Scores: bit patterns read from the borrowed text, never a
            // String per element.
            while let Some(x) = seq.next_element::<StrOrOther<'de>>()? {
                if bad.is_some() {
                    continue;
                }
                let text = match x {
                    StrOrOther::Str(s) => s,
                    StrOrOther::Other(j) => {
                        bad = Some(malformed(&j));
                        continue;
                    }
                };
                match (&mut out, float_bits(&text, self.kind)) {
                    (Array::F32(v), Some(b)) => v.push(f32::from_bits(b as u32)),
                    (Array::F64(v), Some(b)) => v.push(f64::from_bits(b)),
                    _ => bad = Some(malformed(&Json::String(text.into_owned()))),
                }
            }
            return Ok(bad.map_or(Ok(out), Err));
        }
        while let Some(x) = seq.next_element::<Json>()? {
            if bad.is_some() {
                continue;
            }
            match owned_scalar(self.kind, x) {
                Ok(v) => out.push(v),
                Err(e) => bad = Some(e),
            }
        }
        Ok(bad.map_or(Ok(out), Err))
    }
}

/// A bulk string array's element: the string, or what stood there instead.
enum StrOrOther<'de> {
    Str(std::borrow::Cow<'de, str>),
    Other(Json),
}

impl<'de> serde::Deserialize<'de> for StrOrOther<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrOrOtherVisitor)
    }
}

struct StrOrOtherVisitor;

impl<'de> Visitor<'de> for StrOrOtherVisitor {
    type Value = StrOrOther<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(StrOrOther::Str(std::borrow::Cow::Borrowed(v)))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(StrOrOther::Str(std::borrow::Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(StrOrOther::Str(std::borrow::Cow::Owned(v)))
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(StrOrOther::Other(Json::Bool(v)))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(StrOrOther::Other(Json::from(v)))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(StrOrOther::Other(Json::from(v)))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(StrOrOther::Other(Json::from(v)))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(StrOrOther::Other(Json::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(StrOrOther::Other(Json::Array(Vec::new())))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(StrOrOther::Other(Json::Object(JsonMap::new())))
    }
}

/// An array's typed values.
struct ItemsSeed<'a> {
    first: FirstError<'a>,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_> {
    type Value = Result<Vec<Value>, FormatError>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_> {
    type Value = Result<Vec<Value>, FormatError>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of typed values")
    }

    otherwise!(Err(malformed(&Json::Null)));

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Err(malformed(&Json::Null)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        let mut bad = None;
        while let Some(v) = seq.next_element_seed(TypedSeed {
            stored: None,
            first: self.first,
            depth: self.depth,
        })? {
            match v {
                Ok(v) if bad.is_none() => items.push(v),
                Ok(_) => {}
                Err(e) => {
                    bad.get_or_insert(e);
                }
            }
        }
        Ok(bad.map_or(Ok(items), Err))
    }
}

/// The tensor list: each entry checked as soon as it is read.
struct TensorsSeed<'a> {
    first: FirstError<'a>,
    committed_len: u64,
}

impl<'de> DeserializeSeed<'de> for TensorsSeed<'_> {
    type Value = Option<Vec<Entry>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TensorsSeed<'_> {
    type Value = Option<Vec<Entry>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of tensors")
    }

    otherwise!(None);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut tensors = Vec::new();
        let mut names = HashSet::new();
        while let Some(raw) = seq.next_element_seed(EntrySeed)? {
            match parse_entry_parts(raw, self.committed_len) {
                Ok(entry) if !names.insert(entry.info.name.clone()) => note(
                    self.first,
                    err(rules::NAMES, "duplicate tensor name").tensor(&entry.info.name),
                ),
                Ok(entry) => tensors.push(entry),
                Err(e) => note(self.first, e),
            }
        }
        Ok(Some(tensors))
    }
}

/// One tensor entry's fields as read; the chunk list arrives converted.
#[derive(Default)]
pub(crate) struct RawEntry {
    pub(crate) name: Option<Json>,
    pub(crate) dtype: Option<Json>,
    pub(crate) shape: Option<Json>,
    pub(crate) nbytes: Option<Json>,
    pub(crate) sparse: Option<Json>,
    pub(crate) chunks: Option<RawChunks>,
}

struct EntrySeed;

impl<'de> DeserializeSeed<'de> for EntrySeed {
    type Value = RawEntry;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EntrySeed {
    type Value = RawEntry;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a tensor entry")
    }

    otherwise!(RawEntry::default());

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(RawEntry::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut raw = RawEntry::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "name" => raw.name = Some(map.next_value()?),
                "dtype" => raw.dtype = Some(map.next_value()?),
                "shape" => raw.shape = Some(map.next_value()?),
                "nbytes" => raw.nbytes = Some(map.next_value()?),
                "sparse" => raw.sparse = Some(map.next_value()?),
                "chunks" => raw.chunks = map.next_value_seed(ChunksSeed)?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(raw)
    }
}

/// A chunk list, each chunk `[offset, stored, decoded, codec, crc]` kept as
/// five integers, and where the first one that is not sits.
pub(crate) struct ChunksSeed;

impl<'de> DeserializeSeed<'de> for ChunksSeed {
    type Value = Option<RawChunks>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ChunksSeed {
    type Value = Option<RawChunks>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of chunks")
    }

    otherwise!(None);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = RawChunks::default();
        while let Some(c) = seq.next_element::<Json>()? {
            if out.first_bad.is_some() {
                continue;
            }
            let f: Option<Vec<u64>> = c.as_array().and_then(|a| a.iter().map(Json::as_u64).collect());
            match f.as_deref() {
                Some(&[a, b, c, d, e]) => out.chunks.push([a, b, c, d, e]),
                _ => out.first_bad = Some(out.chunks.len()),
            }
        }
        Ok(Some(out))
    }
}

impl Manifest {
    /// Parses and validates (T6–T14) a manifest whose chunks must lie
    /// below `committed_len`, streaming.
    pub fn parse(text: &[u8], committed_len: u64) -> Result<Manifest, FormatError> {
        let manifest = parse(text, committed_len)?;
        check_overlaps(&manifest.tensors, &manifest.stored)?;
        Ok(manifest)
    }
}

/// T10: two chunks are the same chunk (tied tensors) or disjoint; a partial
/// overlap would let one tensor's damage or append rewrite another's bytes.
/// A stored array's chunks are held to the same rule: never the same as, or
/// overlapping, anyone else's (only tied tensors share).
fn check_overlaps(tensors: &[Entry], stored: &[StoredArray]) -> Result<(), FormatError> {
    /// Who lists a chunk: a tensor, or a stored array (by key).
    #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Owner<'a> {
        Tensor(&'a str),
        Array(&'a str),
    }
    let blame = |e: FormatError, owner: Owner<'_>| match owner {
        Owner::Tensor(name) => e.tensor(name),
        Owner::Array(key) => e.key(key),
    };
    let lists = tensors
        .iter()
        .map(|e| (Owner::Tensor(&e.info.name), &e.chunks))
        .chain(stored.iter().map(|s| (Owner::Array(&s.key), &s.chunks)));
    // Sharing is for tied tensors: within one tensor a chunk listed twice
    // would make a small file decode into huge amounts of one chunk.
    for (owner, chunks) in lists.clone() {
        let mut offsets: Vec<u64> = chunks
            .iter()
            .filter(|c| c.stored_len > 0)
            .map(|c| c.offset)
            .collect();
        offsets.sort_unstable();
        if let Some(w) = offsets.windows(2).find(|w| w[0] == w[1]) {
            let e = err(
                rules::CHUNK_RANGE,
                format!("the chunk at offset {} appears twice in this list", w[0]),
            );
            return Err(blame(e, owner));
        }
    }
    let mut ranges: Vec<(u64, u64, Owner<'_>)> = lists
        .flat_map(|(owner, chunks)| {
            chunks
                .iter()
                .filter(|c| c.stored_len > 0)
                .map(move |c| (c.offset, c.stored_len, owner))
        })
        .collect();
    ranges.sort_unstable();
    let stored_owner = |o: Owner<'_>| matches!(o, Owner::Array(_));
    for w in ranges.windows(2) {
        let ((a, a_len, a_owner), (b, b_len, b_owner)) = (w[0], w[1]);
        let same = a == b && a_len == b_len;
        // Offsets and lengths were checked against the committed length: no overflow.
        let clash = if same {
            stored_owner(a_owner) || stored_owner(b_owner)
        } else {
            b < a + a_len
        };
        if clash {
            let whose = match a_owner {
                Owner::Tensor(name) => format!("tensor '{name}'"),
                Owner::Array(key) => format!("metadata array '{key}'"),
            };
            let how = if same { "is also" } else { "partly overlaps" };
            let e = err(
                rules::CHUNK_RANGE,
                format!("chunk [{b}, +{b_len}) {how} chunk [{a}, +{a_len}) of {whose}"),
            );
            return Err(blame(e, b_owner));
        }
    }
    Ok(())
}

pub(crate) fn parse_entry_parts(t: RawEntry, committed_len: u64) -> Result<Entry, FormatError> {
    let name = t
        .name
        .as_ref()
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();
    if name.is_empty() {
        return Err(err(rules::NAMES, "a tensor without a name"));
    }
    let bad = |rule, what: String| err(rule, what).tensor(&name);
    let dtype_name = t
        .dtype
        .as_ref()
        .and_then(Json::as_str)
        .ok_or_else(|| bad(rules::MANIFEST, "no dtype".into()))?;
    let shape: Vec<u64> = t
        .shape
        .as_ref()
        .and_then(Json::as_array)
        .and_then(|a| a.iter().map(Json::as_u64).collect())
        .ok_or_else(|| bad(rules::MANIFEST, "shape is not a list of integers".into()))?;
    let nbytes = t
        .nbytes
        .as_ref()
        .and_then(Json::as_u64)
        .ok_or_else(|| bad(rules::MANIFEST, "no nbytes".into()))?;
    let sparse_layout = match dtype_name {
        SPARSE_COO => Some(SparseLayout::Coo),
        SPARSE_CSR => Some(SparseLayout::Csr),
        _ => None,
    };
    let (dtype, sparse) = match sparse_layout {
        None => {
            let dtype: DType = dtype_name.parse().map_err(|e: String| bad(rules::DTYPE, e))?;
            let expect = element_count(&shape).and_then(|n| dtype.storage_bytes(n));
            if expect != Some(nbytes) {
                return Err(bad(
                    rules::DTYPE,
                    format!("{dtype} {shape:?} does not make {nbytes} bytes"),
                ));
            }
            (dtype, None)
        }
        Some(layout) => {
            let (dtype, sparse) =
                sparse_fields(layout, t.sparse.as_ref()).map_err(|d| bad(rules::SPARSE, d))?;
            let info =
                sparse_info(name.clone(), dtype, shape.clone(), sparse).map_err(|d| bad(rules::SPARSE, d))?;
            if info.nbytes != nbytes {
                return Err(bad(
                    rules::SPARSE,
                    format!("sparse parts make {} bytes, nbytes says {nbytes}", info.nbytes),
                ));
            }
            (dtype, info.sparse)
        }
    };
    // A sparse tensor's parts have different element sizes: its chunks
    // are cut at bytes.
    let unit = if sparse.is_some() { 1 } else { unit_bytes(dtype) };
    let raw = t.chunks.ok_or_else(|| bad(rules::MANIFEST, "no chunks".into()))?;
    let (chunks, total) = parse_chunks(&raw, unit, committed_len).map_err(|e| e.tensor(&name))?;
    if total != nbytes {
        return Err(bad(
            rules::CHUNK_SIZES,
            format!("chunks decode to {total} bytes, the tensor has {nbytes}"),
        ));
    }
    let mut info = TensorInfo::new(name.clone(), dtype, shape)
        .ok_or_else(|| bad(rules::DTYPE, "size overflows".into()))?;
    info.file_offset = None;
    if sparse.is_some() {
        info.nbytes = nbytes;
        info.sparse = sparse;
    }
    Ok(Entry { info, chunks })
}
