//! tokenizer.json read into just what the GGUF vocabulary needs: the
//! vocabulary as (token, id) pairs and the merges as strings, without a
//! JSON tree of the whole file (for a 262k-token vocabulary with half a
//! million merges that tree took hundreds of MiB). Lenient as the tree
//! reading was: entries that are not what they should be are skipped.

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value as Json;

/// The parts of tokenizer.json the conversion reads.
#[derive(Deserialize, Default)]
pub struct TokenizerFile {
    #[serde(default)]
    pub model: TokenizerModel,
    #[serde(default)]
    pub added_tokens: Json,
    #[serde(default)]
    pub normalizer: Json,
    #[serde(default)]
    pub post_processor: Json,
}

/// `model`: its type, vocabulary and merges.
#[derive(Deserialize, Default)]
pub struct TokenizerModel {
    #[serde(rename = "type", default)]
    pub kind: Json,
    #[serde(default)]
    pub vocab: Vocab,
    #[serde(default)]
    pub merges: Merges,
}

/// (token, id) for every vocabulary entry whose id is an unsigned integer.
#[derive(Default)]
pub struct Vocab(pub Vec<(String, u64)>);

/// Merges as `"a b"` strings: strings as they are, `[a, b]` pairs joined
/// with a space (spaces inside a part spelled `Ġ`, as gguf-py does).
#[derive(Default)]
pub struct Merges(pub Vec<String>);

struct VocabVisitor;

impl<'de> Visitor<'de> for VocabVisitor {
    type Value = Vocab;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a vocabulary")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vocab, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1 << 20));
        while let Some((token, id)) = map.next_entry::<String, Json>()? {
            if let Some(id) = id.as_u64() {
                out.push((token, id));
            }
        }
        Ok(Vocab(out))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vocab, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Vocab::default())
    }
    fn visit_unit<E>(self) -> Result<Vocab, E> {
        Ok(Vocab::default())
    }
    fn visit_bool<E>(self, _: bool) -> Result<Vocab, E> {
        Ok(Vocab::default())
    }
    fn visit_i64<E>(self, _: i64) -> Result<Vocab, E> {
        Ok(Vocab::default())
    }
    fn visit_u64<E>(self, _: u64) -> Result<Vocab, E> {
        Ok(Vocab::default())
    }
    fn visit_f64<E>(self, _: f64) -> Result<Vocab, E> {
        Ok(Vocab::default())
    }
    fn visit_str<E>(self, _: &str) -> Result<Vocab, E> {
        Ok(Vocab::default())
    }
}

impl<'de> Deserialize<'de> for Vocab {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(VocabVisitor)
    }
}

/// One merge entry as the tree reading took it.
fn merge_text(m: Json) -> Option<String> {
    match m {
        Json::String(s) => Some(s),
        Json::Array(p) => {
            let parts: Vec<String> = p
                .iter()
                .filter_map(Json::as_str)
                .map(|s| s.chars().map(|c| if c == ' ' { '\u{120}' } else { c }).collect())
                .collect();
            Some(parts.join(" "))
        }
        _ => None,
    }
}

struct MergesVisitor;

impl<'de> Visitor<'de> for MergesVisitor {
    type Value = Merges;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of merges")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Merges, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
        while let Some(m) = seq.next_element::<Json>()? {
            out.extend(merge_text(m));
        }
        Ok(Merges(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Merges, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Merges::default())
    }
    fn visit_unit<E>(self) -> Result<Merges, E> {
        Ok(Merges::default())
    }
    fn visit_bool<E>(self, _: bool) -> Result<Merges, E> {
        Ok(Merges::default())
    }
    fn visit_i64<E>(self, _: i64) -> Result<Merges, E> {
        Ok(Merges::default())
    }
    fn visit_u64<E>(self, _: u64) -> Result<Merges, E> {
        Ok(Merges::default())
    }
    fn visit_f64<E>(self, _: f64) -> Result<Merges, E> {
        Ok(Merges::default())
    }
    fn visit_str<E>(self, _: &str) -> Result<Merges, E> {
        Ok(Merges::default())
    }
}

impl<'de> Deserialize<'de> for Merges {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MergesVisitor)
    }
}

/// How many entries tokenizer.json's vocabulary, merges and added tokens
/// hold, counted without keeping any of them: what a file may ask the
/// tokenizer library and the conversion to build is checked before they
/// build it (10 M merges cost that library 11 GB).
#[derive(Deserialize, Default)]
pub struct Counts {
    #[serde(default)]
    pub model: ModelCounts,
    #[serde(default)]
    pub added_tokens: Count,
}

/// The model's vocabulary and merges, counted.
#[derive(Deserialize, Default)]
pub struct ModelCounts {
    #[serde(default)]
    pub vocab: Count,
    #[serde(default)]
    pub merges: Count,
}

/// The number of entries of a JSON array or object (0 for anything else).
#[derive(Default, Clone, Copy)]
pub struct Count(pub u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Count, D::Error> {
        struct Counter;
        impl<'de> Visitor<'de> for Counter {
            type Value = Count;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list or a map")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Count, A::Error> {
                let mut n = 0u64;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Count(n))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Count, A::Error> {
                let mut n = 0u64;
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Count(n))
            }
            fn visit_unit<E>(self) -> Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_none<E>(self) -> Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_str<E>(self, _: &str) -> Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Count, E> {
                Ok(Count(0))
            }
        }
        d.deserialize_any(Counter)
    }
}
