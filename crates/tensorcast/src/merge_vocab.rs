//! The vocabularies a tokenizer source (`tokenizer_source`, `tokenizer:`)
//! lays token rows out in, read from the model folders' tokenizer.json and
//! config.json as mergekit reads them; the plan itself (which row each
//! token takes) is `tensorcast_merge::VocabPlan`.

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::path::Path;
use tensorcast_core::edit::JsonEntries;
use tensorcast_core::{code, Error, Result};
use tensorcast_merge::{MergeConfig, ModelVocab, TokenIds, TokenIdsBuilder, VocabPlan};

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

/// An `added_tokens` entry: its id and text, and the whole entry (the
/// flags a union copies).
type Entry = serde_json::Map<String, serde_json::Value>;

#[derive(Deserialize)]
struct ModelPart {
    vocab: Pairs,
}

#[derive(Deserialize)]
struct Added {
    id: u64,
    content: String,
    #[serde(flatten)]
    flags: Entry,
}

/// An added token: id, text, the entry's other fields.
type AddedToken = (u64, String, Entry);

/// A folder's tokenizer as a merge reads it.
struct Tokenizer {
    /// Token text to id (`model.vocab`, then `added_tokens`, which win).
    ids: TokenIds,
    /// The added tokens in file order.
    added: Vec<AddedToken>,
}

/// Whether `path` exists; refused unless it is a regular file of at most
/// `max_bytes` (a FIFO would block, a giant file fill memory).
pub(crate) fn side_file(path: &Path, max_bytes: u64) -> Result<bool> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(false);
    };
    if !meta.is_file() || meta.len() > max_bytes {
        return Err(Error::unsupported(
            code::MODEL_FOLDER,
            format!(
                "{}: a model's side file is a regular file of at most {max_bytes} bytes (the limit on headers read whole)",
                path.display()
            ),
        ));
    }
    Ok(true)
}

/// `model.vocab`: an object of token to id (BPE, WordPiece) or a list of
/// `[piece, score]` whose ids are positions (Unigram), gathered into one
/// text buffer as it is read.
struct Pairs(TokenIdsBuilder);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TokenIdsBuilder;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of token to id, or a list of [piece, score]")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
                let mut out = TokenIdsBuilder::default();
                while let Some((token, id)) = map.next_entry::<std::borrow::Cow<'de, str>, u64>()? {
                    out.push(&token, id);
                }
                Ok(out)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Self::Value, A::Error> {
                let mut out = TokenIdsBuilder::default();
                let mut id = 0u64;
                while let Some((piece, _score)) =
                    seq.next_element::<(std::borrow::Cow<'de, str>, IgnoredAny)>()?
                {
                    out.push(&piece, id);
                    id += 1;
                }
                Ok(out)
            }
        }
        d.deserialize_any(V).map(Pairs)
    }
}

/// A folder's tokenizer.json (None when it has none), of at most
/// `max_bytes`, parsed from its mapping (never read onto the heap).
fn tokenizer(folder: &Path, max_bytes: u64) -> Result<Option<Tokenizer>> {
    let path = folder.join("tokenizer.json");
    if !side_file(&path, max_bytes)? {
        return Ok(None);
    }
    // Mapped, and parsed in place: token texts are borrowed where they
    // need no unescaping, gathered into one buffer.
    let text = tensorcast_core::Bytes::open(&path)?;
    let json: TokenizerJson = serde_json::from_slice(&text)
        .map_err(|e| Error::unsupported(code::MODEL_FOLDER, format!("{}: {e}", path.display())))?;
    let mut ids = json.model.vocab.0;
    let mut added = Vec::with_capacity(json.added_tokens.len());
    for a in json.added_tokens {
        ids.push(&a.content, a.id);
        added.push((a.id, a.content, a.flags));
    }
    Ok(Some(Tokenizer {
        ids: ids.build(),
        added,
    }))
}

/// The rows a model's config.json declares (`vocab_size`, or its text
/// model's), if it says.
fn declared_rows(folder: &Path, max_bytes: u64) -> Option<u64> {
    let path = folder.join("config.json");
    // A FIFO named config.json would block the read.
    if !side_file(&path, max_bytes).ok()? {
        return None;
    }
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    config
        .get("vocab_size")
        .or_else(|| config.get("text_config")?.get("vocab_size"))
        .and_then(serde_json::Value::as_u64)
}

/// A model's vocabulary as mergekit builds it: its tokenizer.json's tokens
/// and its config's `vocab_size` (else the token count), with the added
/// tokens' entries.
fn model_vocab(folder: &Path, max_bytes: u64) -> Result<Option<(ModelVocab, Vec<AddedToken>)>> {
    let Some(Tokenizer { ids, added }) = tokenizer(folder, max_bytes)? else {
        return Ok(None);
    };
    let size = declared_rows(folder, max_bytes).unwrap_or(ids.len() as u64);
    Ok(Some((ModelVocab { ids, size }, added)))
}

/// The layout of token rows, and the tokenizer.json made when tokens were
/// added to the source's (a union, configured tokens it lacks).
pub(crate) struct Vocab {
    /// Which row each token takes.
    pub plan: VocabPlan,
    /// The output's tokenizer.json, when it is not the source's as it is.
    pub tokenizer_json: Option<MadeTokenizer>,
}

/// A tokenizer.json made from a folder's by appending entries to its
/// `added_tokens`: kept as that file and the entries, and written out when
/// the folder is (a 262,144-token tokenizer.json is 33 MB, which would
/// otherwise be held for the whole merge).
pub(crate) struct MadeTokenizer {
    from: std::path::PathBuf,
    added: Vec<serde_json::Value>,
    max_bytes: u64,
}

impl MadeTokenizer {
    /// Writes the made tokenizer.json through `out`, a piece at a time.
    pub(crate) fn write(&self, out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        with_added(&self.from, &self.added, self.max_bytes, out)
    }
}

/// How token-indexed tensors are laid out when the configuration names a
/// tokenizer (`tokenizer_source`, `tokenizer:`), as mergekit 0.1.5 does:
/// the output vocabulary is the base's tokenizer with tokens past its
/// `vocab_size` stripped (`base`), or a model folder's tokenizer; each model
/// (`models`, in the merged source's input order, the base first) is read
/// from its folder's tokenizer.json, or from a model file's GGUF tokens
/// (`tokens`, parallel to `models`: a token's id is its place, the same
/// text as tokenizer.json's, which the converters copy; one row per token,
/// no added tokens for a union); a model with neither is taken
/// to have the base's, as mergekit takes a model whose tokenizer it cannot
/// load. None without a tokenizer source.
pub(crate) fn plan(
    config: &MergeConfig,
    models: &[String],
    tokens: &[Option<TokenIds>],
    max_bytes: u64,
) -> Result<Option<Vocab>> {
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
    let no_tokenizer = |folder: &Path| {
        Error::unsupported(
            code::MODEL_FOLDER,
            format!("tokenizer source: {} has no tokenizer.json", folder.display()),
        )
    };
    let base_folder = folder_of(&models[0], "the base model")?;
    let (mut base, mut base_added) =
        model_vocab(&base_folder, max_bytes)?.ok_or_else(|| no_tokenizer(&base_folder))?;
    // get_stripped_tokenizer: the base's tokens past its rows are dropped.
    let size = base.size;
    base.ids.retain(|id| id < size);
    base_added.retain(|(id, _, _)| *id < size);
    // Each model's vocabulary, and its added tokens where it has a
    // tokenizer; a model without one (a file without a token list) is
    // taken to have the base's and adds nothing to a union.
    let mut inputs: Vec<(String, ModelVocab)> = Vec::with_capacity(models.len());
    let mut added_of = Vec::with_capacity(models.len());
    for (i, model) in models.iter().enumerate() {
        let read = match (i, super::merge::local_folder(model)) {
            (0, _) => None,
            (_, Some(folder)) => model_vocab(&folder, max_bytes)?,
            (_, None) => tokens.get(i).cloned().flatten().map(|ids| {
                let size = ids.len() as u64;
                (ModelVocab { ids, size }, Vec::new())
            }),
        };
        let (vocab, added) = match read {
            Some((v, added)) => (v, Some(added)),
            None if i == 0 => (
                ModelVocab {
                    ids: std::mem::take(&mut base.ids),
                    size: base.size,
                },
                Some(std::mem::take(&mut base_added)),
            ),
            None => {
                let ids = inputs[0].1.ids.clone();
                let size = inputs[0].1.ids.len() as u64;
                (ModelVocab { ids, size }, None)
            }
        };
        inputs.push((model.clone(), vocab));
        added_of.push(added);
    }
    let base_ids = &inputs[0].1.ids;
    // The output tokenizer: its tokens, the tokenizer.json it is written
    // from, and the tokens added to it.
    let (mut out, from, mut added) = match source {
        "base" => (base_ids.clone(), base_folder.clone(), Vec::new()),
        "union" => {
            let (ids, added) = union(&inputs, &added_of);
            (ids, base_folder.clone(), added)
        }
        model => {
            let folder = folder_of(model, "the tokenizer source")?;
            let ids = tokenizer(&folder, max_bytes)?
                .ok_or_else(|| no_tokenizer(&folder))?
                .ids;
            (ids, folder, Vec::new())
        }
    };
    // Configured tokens the tokenizer lacks are added to it as transformers'
    // add_tokens adds a text (normalized, not special), in configuration
    // order, as mergekit's build_tokenizer does.
    let rules = section.map(|s| s.tokens.as_slice()).unwrap_or_default();
    let mut next = out.max_id().map_or(0, |m| m + 1);
    for (token, _) in rules {
        if !out.contains(token) {
            out.insert(token, next);
            added.push(serde_json::json!({
                "id": next, "content": token, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": true, "special": false
            }));
            next += 1;
        }
    }
    let tokenizer_json = match added.is_empty() {
        true => None,
        false => {
            let made = MadeTokenizer {
                from: from.join("tokenizer.json"),
                added,
                max_bytes,
            };
            // Read once now, so a tokenizer.json that cannot be rewritten
            // is refused before any tensor is merged.
            made.write(&mut |_| Ok(()))?;
            Some(made)
        }
    };
    let base_index = config
        .base_model
        .as_ref()
        .and_then(|b| models.iter().position(|m| m == b));
    let pad = section.and_then(|s| s.pad_to_multiple_of);
    let plan = VocabPlan::new(&out, &inputs, base_index, rules, pad)?;
    Ok(Some(Vocab { plan, tokenizer_json }))
}

/// mergekit's union tokenizer (`build_union_tokenizer`): the base's, plus
/// every model's tokens it lacks, first those of the models' vocabularies
/// that are not added tokens, then the added tokens with their flags (a
/// plain token as transformers' `add_tokens` adds it: normalized, not
/// special), each given the next id. Tokens at or past a model's
/// `vocab_size` are left out. mergekit visits the other models in a Python
/// set's order (which changes from run to run) and each vocabulary in a
/// hash map's; tensorcast takes the configuration's order and token ids,
/// so where mergekit's ids for new tokens vary, the rows each token gets
/// do not. Returns the union's ids and the new `added_tokens` entries.
fn union(
    inputs: &[(String, ModelVocab)],
    added_of: &[Option<Vec<AddedToken>>],
) -> (TokenIds, Vec<serde_json::Value>) {
    // The models with a tokenizer, the base first.
    let models: Vec<(&ModelVocab, &Vec<AddedToken>)> = inputs
        .iter()
        .zip(added_of)
        .filter_map(|((_, v), added)| Some((v, added.as_ref()?)))
        .collect();
    let mut ids = inputs[0].1.ids.clone();
    let added_text: std::collections::BTreeSet<&str> = models
        .iter()
        .flat_map(|(v, added)| {
            added
                .iter()
                .filter(|(id, _, _)| *id < v.size)
                .map(|(_, c, _)| c.as_str())
        })
        .collect();
    let mut next = ids.max_id().map_or(0, |m| m + 1);
    let mut entries = Vec::new();
    let mut add = |ids: &mut TokenIds, token: &str, mut entry: Entry| {
        if ids.contains(token) {
            return;
        }
        entry.insert("id".into(), next.into());
        entry.insert("content".into(), token.into());
        ids.insert(token, next);
        // The entry's fields in tokenizers' order: id, content, the flags.
        let mut ordered = Entry::new();
        for k in [
            "id",
            "content",
            "single_word",
            "lstrip",
            "rstrip",
            "normalized",
            "special",
        ] {
            if let Some(v) = entry.remove(k) {
                ordered.insert(k.into(), v);
            }
        }
        ordered.extend(entry);
        entries.push(serde_json::Value::Object(ordered));
        next += 1;
    };
    for (v, _) in &models {
        let mut by_id: Vec<(u64, &str)> = v
            .ids
            .iter()
            .map(|(k, id)| (id, k))
            .filter(|(id, _)| *id < v.size)
            .collect();
        by_id.sort();
        for (_, token) in by_id {
            if !added_text.contains(token) {
                let plain = serde_json::json!({"single_word": false, "lstrip": false, "rstrip": false, "normalized": true, "special": false});
                let serde_json::Value::Object(plain) = plain else {
                    continue;
                };
                add(&mut ids, token, plain);
            }
        }
    }
    for (v, added) in &models {
        for (_, token, flags) in added.iter().filter(|(id, _, _)| *id < v.size) {
            add(&mut ids, token, flags.clone());
        }
    }
    (ids, entries)
}

/// The tokenizer.json at `path` with `added` appended to its
/// `added_tokens`, written through `out`; every other part is kept as its
/// text.
fn with_added(
    path: &Path,
    added: &[serde_json::Value],
    max_bytes: u64,
    out: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let bad = |e: &dyn std::fmt::Display| {
        Error::unsupported(code::MODEL_FOLDER, format!("{}: {e}", path.display()))
    };
    if !side_file(path, max_bytes)? {
        return Err(bad(&"no tokenizer.json"));
    }
    // Mapped, not read: the page cache holds it, not the heap.
    let text = tensorcast_core::Bytes::open(path)?;
    let JsonEntries(entries) = serde_json::from_slice(&text).map_err(|e| bad(&e))?;
    let mut pending = Some(added);
    out(b"{")?;
    for (i, (key, value)) in entries.iter().enumerate() {
        if i > 0 {
            out(b",")?;
        }
        out(&serde_json::to_vec(key).map_err(|e| bad(&e))?)?;
        out(b":")?;
        match (key.as_str(), pending.take_if(|_| key == "added_tokens")) {
            // The list's own text, its entries appended before its `]`.
            ("added_tokens", Some(new)) => {
                let list = value.get().trim_end();
                let head = list
                    .strip_suffix(']')
                    .filter(|_| list.starts_with('['))
                    .ok_or_else(|| bad(&"added_tokens is not a list"))?;
                out(head.as_bytes())?;
                let mut first = head[1..].trim().is_empty();
                for entry in new {
                    if !first {
                        out(b",")?;
                    }
                    first = false;
                    out(&serde_json::to_vec(entry).map_err(|e| bad(&e))?)?;
                }
                out(b"]")?;
            }
            _ => out(value.get().as_bytes())?,
        }
    }
    if let Some(new) = pending {
        out(if entries.is_empty() {
            b"\"added_tokens\":"
        } else {
            b",\"added_tokens\":"
        })?;
        out(&serde_json::to_vec(new).map_err(|e| bad(&e))?)?;
    }
    out(b"}")
}
