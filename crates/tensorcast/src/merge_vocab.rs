//! What `tokenizer_source` asks of the embeddings, checked before merging.
//!
//! With `tokenizer_source` (or a `tokenizer` section) mergekit lays every
//! model's token-indexed rows (`embed_tokens`, `lm_head`) out in the source
//! tokenizer's vocabulary: rows are matched by token text, and the tensors
//! get exactly as many rows as that vocabulary has tokens. tensorcast merges
//! rows by index; that is the same merge only when every model's tokenizer
//! gives each token the same id as the source and the embeddings have one
//! row per token. Anything else is refused by name, never merged misaligned.

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tensorcast_core::{code, Error, Result, Source};

/// Token text to id.
type Vocabulary = BTreeMap<String, u64>;

/// The parts of tokenizer.json read here; everything else (the merges,
/// the normalizer…) is skipped as it is read. A 262,144-token Gemma 3
/// tokenizer.json as a `serde_json::Value` held ~150 MiB; this holds one
/// map entry per token.
#[derive(Deserialize)]
struct TokenizerJson {
    model: ModelPart,
    #[serde(default)]
    added_tokens: Vec<Added>,
}

#[derive(Deserialize)]
struct ModelPart {
    vocab: Pairs,
}

#[derive(Deserialize)]
struct Added {
    id: u64,
    content: String,
}

/// `model.vocab`: an object of token to id (BPE, WordPiece) or a list of
/// `[piece, score]` whose ids are positions (Unigram).
struct Pairs(Vec<(String, u64)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<(String, u64)>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of token to id, or a list of [piece, score]")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, u64>()? {
                    out.push(entry);
                }
                Ok(out)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((piece, _score)) = seq.next_element::<(String, IgnoredAny)>()? {
                    let id = out.len() as u64;
                    out.push((piece, id));
                }
                Ok(out)
            }
        }
        d.deserialize_any(V).map(Pairs)
    }
}

/// A folder's tokenizer.json vocabulary (None when it has none): token text
/// to id, `model.vocab` and `added_tokens` (which win). The file is parsed
/// as it is read, never held whole, and at most `max_bytes` of it.
fn vocabulary(folder: &Path, max_bytes: u64) -> Result<Option<Vocabulary>> {
    let path = folder.join("tokenizer.json");
    let Ok(meta) = std::fs::metadata(&path) else {
        return Ok(None);
    };
    if !meta.is_file() || meta.len() > max_bytes {
        return Err(Error::unsupported(
            code::MODEL_FOLDER,
            format!(
                "{}: a tokenizer.json is a regular file of at most {max_bytes} bytes (the limit on headers read whole)",
                path.display()
            ),
        ));
    }
    let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
    let reader = std::io::BufReader::with_capacity(1 << 16, std::io::Read::take(file, max_bytes));
    let json: TokenizerJson = serde_json::from_reader(reader)
        .map_err(|e| Error::unsupported(code::MODEL_FOLDER, format!("{}: {e}", path.display())))?;
    let mut vocab: Vocabulary = json.model.vocab.0.into_iter().collect();
    for added in json.added_tokens {
        vocab.insert(added.content, added.id);
    }
    Ok(Some(vocab))
}

/// Refuses a merge whose `tokenizer_source` (`source`, a local folder)
/// would make mergekit move or resize token rows: a model folder among
/// `folders` whose tokenizer gives some token another id (or lacks it, or
/// has one more), or a token-indexed tensor of `merged` whose row count is
/// not the vocabulary's size. Models without a tokenizer.json (a GGUF file)
/// are not checked.
pub(crate) fn check(
    source: &Path,
    folders: &[(String, PathBuf)],
    merged: &dyn Source,
    max_bytes: u64,
) -> Result<()> {
    let Some(want) = vocabulary(source, max_bytes)? else {
        return Ok(());
    };
    let unbuilt =
        "aligning vocabularies by token (mergekit's permuted embeddings) is not built by tensorcast yet";
    for (name, folder) in folders {
        let Some(have) = vocabulary(folder, max_bytes)? else {
            continue;
        };
        if have == want {
            continue;
        }
        let differs = want
            .iter()
            .find(|(t, id)| have.get(*t) != Some(id))
            .map(|(t, id)| match have.get(t) {
                Some(other) => {
                    format!("token {t:?} is id {other} in {name} but {id} in the tokenizer source")
                }
                None => format!("token {t:?} (id {id} in the tokenizer source) is not in {name}"),
            })
            .or_else(|| {
                have.iter().find(|(t, _)| !want.contains_key(*t)).map(|(t, id)| {
                    format!("{name} has token {t:?} (id {id}) that the tokenizer source lacks")
                })
            })
            .unwrap_or_default();
        return Err(Error::unsupported(
            code::MERGE_MISMATCH,
            format!("tokenizer_source: {differs}; {unbuilt}"),
        ));
    }
    let tokens = want.len() as u64;
    for t in merged.tensors() {
        let token_indexed = [
            "embed_tokens.weight",
            "lm_head.weight",
            "wte.weight",
            "word_embeddings.weight",
        ]
        .iter()
        .any(|s| t.name.ends_with(s));
        if token_indexed && t.shape.first().is_some_and(|&rows| rows != tokens) {
            return Err(Error::unsupported(
                code::MERGE_MISMATCH,
                format!(
                    "tokenizer_source: tensor '{}' has {} rows and the tokenizer {tokens} tokens; mergekit resizes it to the tokenizer, which tensorcast does not do yet (merge without tokenizer_source to keep the rows)",
                    t.name, t.shape[0]
                ),
            ));
        }
    }
    Ok(())
}
