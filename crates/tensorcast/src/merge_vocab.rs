//! What `tokenizer_source` asks of the embeddings, checked before merging.
//!
//! With `tokenizer_source` (or a `tokenizer` section) mergekit lays every
//! model's token-indexed rows (`embed_tokens`, `lm_head`) out in the source
//! tokenizer's vocabulary: rows are matched by token text, and the tensors
//! get exactly as many rows as that vocabulary has tokens. tensorcast merges
//! rows by index; that is the same merge only when every model's tokenizer
//! gives each token the same id as the source and the embeddings have one
//! row per token. Anything else is refused by name, never merged misaligned.

use std::collections::BTreeMap;
use std::path::Path;
use tensorcast_core::{code, Error, Result, Source};

/// Token text to id: tokenizer.json's `model.vocab` (an object for BPE and
/// WordPiece, a list of `[piece, score]` for Unigram, ids by position)
/// and its `added_tokens`.
fn vocabulary(folder: &Path, max_bytes: u64) -> Result<Option<BTreeMap<String, u64>>> {
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
    let bad = |why: &str| Error::unsupported(code::MODEL_FOLDER, format!("{}: {why}", path.display()));
    let text = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let json: serde_json::Value = serde_json::from_slice(&text).map_err(|e| bad(&e.to_string()))?;
    let mut vocab = BTreeMap::new();
    match &json["model"]["vocab"] {
        serde_json::Value::Object(map) => {
            for (token, id) in map {
                let id = id
                    .as_u64()
                    .ok_or_else(|| bad(&format!("model.vocab[{token:?}] is not an id")))?;
                vocab.insert(token.clone(), id);
            }
        }
        serde_json::Value::Array(pieces) => {
            for (id, piece) in pieces.iter().enumerate() {
                let token = piece[0]
                    .as_str()
                    .ok_or_else(|| bad(&format!("model.vocab[{id}] has no piece")))?;
                vocab.insert(token.to_string(), id as u64);
            }
        }
        _ => return Err(bad("model.vocab is neither a map nor a list")),
    }
    for added in json["added_tokens"].as_array().into_iter().flatten() {
        if let (Some(token), Some(id)) = (added["content"].as_str(), added["id"].as_u64()) {
            vocab.insert(token.to_string(), id);
        }
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
    folders: &[(String, &Path)],
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
