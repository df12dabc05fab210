//! The vocabularies a tokenizer source (`tokenizer_source`, `tokenizer:`)
//! lays token rows out in, read from the model folders' tokenizer.json and
//! config.json as mergekit reads them; the plan itself (which row each
//! token takes) is `tensorcast_merge::VocabPlan`.

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::path::Path;
use tensorcast_core::{code, Error, Result};
use tensorcast_merge::{MergeConfig, ModelVocab, TokenIds, VocabPlan};

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
fn vocabulary(folder: &Path, max_bytes: u64) -> Result<Option<TokenIds>> {
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
    let mut vocab: TokenIds = json.model.vocab.0.into_iter().collect();
    for added in json.added_tokens {
        vocab.insert(added.content, added.id);
    }
    Ok(Some(vocab))
}

/// The rows a model's config.json declares (`vocab_size`, or its text
/// model's), if it says.
fn declared_rows(folder: &Path, max_bytes: u64) -> Option<u64> {
    let path = folder.join("config.json");
    if std::fs::metadata(&path).ok()?.len() > max_bytes {
        return None;
    }
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    config
        .get("vocab_size")
        .or_else(|| config.get("text_config")?.get("vocab_size"))
        .and_then(serde_json::Value::as_u64)
}

/// A model's vocabulary as mergekit builds it: its tokenizer.json's tokens
/// and its config's `vocab_size` (else the token count).
fn model_vocab(folder: &Path, max_bytes: u64) -> Result<Option<ModelVocab>> {
    let Some(ids) = vocabulary(folder, max_bytes)? else {
        return Ok(None);
    };
    let size = declared_rows(folder, max_bytes).unwrap_or(ids.len() as u64);
    Ok(Some(ModelVocab { ids, size }))
}

/// How token-indexed tensors are laid out when the configuration names a
/// tokenizer (`tokenizer_source`, `tokenizer:`), as mergekit 0.1.5 does:
/// the output vocabulary is the base's tokenizer with tokens past its
/// `vocab_size` stripped (`base`), or a model folder's tokenizer; each model
/// (`models`, in the merged source's input order, the base first) is read
/// from its folder's tokenizer.json, and a model without one (a GGUF file)
/// is taken to have the base's, as mergekit takes a model whose tokenizer
/// it cannot load. None without a tokenizer source.
pub(crate) fn plan(config: &MergeConfig, models: &[String], max_bytes: u64) -> Result<Option<VocabPlan>> {
    let Some(source) = config.vocabulary_source() else {
        return Ok(None);
    };
    let section = config.tokenizer.as_ref();
    let folder_of = |model: &str, what: &str| {
        super::merge::local_folder(model).ok_or_else(|| {
            Error::unsupported(
                code::MODEL_FOLDER,
                format!("tokenizer source: {what} {model} is not a local model folder (its tokenizer.json is read)"),
            )
        })
    };
    let base_folder = folder_of(&models[0], "the base model")?;
    let mut base = model_vocab(&base_folder, max_bytes)?.ok_or_else(|| {
        Error::unsupported(
            code::MODEL_FOLDER,
            format!(
                "tokenizer source: {} has no tokenizer.json",
                base_folder.display()
            ),
        )
    })?;
    // get_stripped_tokenizer: the base's tokens past its rows are dropped.
    let size = base.size;
    base.ids.retain(|_, id| *id < size);
    let mut inputs = Vec::with_capacity(models.len());
    for (i, model) in models.iter().enumerate() {
        let vocab = match (i, super::merge::local_folder(model)) {
            (0, _) => base.clone(),
            (_, Some(folder)) => match model_vocab(&folder, max_bytes)? {
                Some(v) => v,
                None => ModelVocab {
                    ids: base.ids.clone(),
                    size: base.ids.len() as u64,
                },
            },
            (_, None) => ModelVocab {
                ids: base.ids.clone(),
                size: base.ids.len() as u64,
            },
        };
        inputs.push((model.clone(), vocab));
    }
    let out = match source {
        "base" => base.ids.clone(),
        "union" => {
            // A union of equal vocabularies is the base's; anything else
            // needs a new tokenizer written.
            if let Some((name, _)) = inputs
                .iter()
                .find(|(_, v)| v.ids.iter().filter(|(_, &id)| id < v.size).ne(base.ids.iter()))
            {
                return Err(Error::unsupported(
                    code::MERGE_CONFIG,
                    format!("tokenizer source 'union': {name}'s vocabulary differs from the base's, and a union tokenizer is not built by tensorcast yet (name 'base' or a model)"),
                ));
            }
            base.ids.clone()
        }
        model => {
            let folder = folder_of(model, "the tokenizer source")?;
            vocabulary(&folder, max_bytes)?.ok_or_else(|| {
                Error::unsupported(
                    code::MODEL_FOLDER,
                    format!("tokenizer source: {} has no tokenizer.json", folder.display()),
                )
            })?
        }
    };
    if let Some(pad) = section.and_then(|s| s.pad_to_multiple_of) {
        if !(out.len() as u64).is_multiple_of(pad) {
            return Err(Error::unsupported(
                code::MERGE_CONFIG,
                format!("tokenizer.pad_to_multiple_of {pad}: padding {} tokens with mean rows is not built by tensorcast yet", out.len()),
            ));
        }
    }
    let base_index = config
        .base_model
        .as_ref()
        .and_then(|b| models.iter().position(|m| m == b));
    let rules = section.map(|s| s.tokens.as_slice()).unwrap_or_default();
    VocabPlan::new(&out, &inputs, base_index, rules).map(Some)
}
