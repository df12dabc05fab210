//! A byte-level BPE `tokenizer.json` as `tokenizer.ggml.*`, the way
//! `convert_hf_to_gguf.py` writes it: tokens in id order (missing ids as
//! `[PADn]`), token types, merges, the pre-tokenizer name llama.cpp knows the
//! vocabulary's split by (from the sha256 of the ids Hugging Face's tokenizer
//! gives a check text), special token ids and the add-BOS/EOS/SEP flags the
//! post-processor implies.

use crate::pre_hashes::{CHECK_TEXT, PRE_HASHES};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use tensorcast_core::code;
use tensorcast_core::{Array, Error, Metadata, Result, Strings, Value};

/// How a `tokenizer.json` is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VocabKind<'a> {
    /// Byte-level BPE (`gpt2`) or WordPiece (`bert`), the pre-tokenizer
    /// named by its check hash, else by the name given.
    ByteLevel(Option<&'a str>),
    /// Gemma 4's BPE with byte fallback, as gguf-py's `LlamaHfVocab` reads
    /// it (`gemma4`): every score -1000, byte, control and user-defined
    /// types, the tokens Gemma 4's chat parser reads shown as user-defined.
    Gemma4,
    /// A Llama SentencePiece vocabulary in tokenizer.json as `LlamaHfVocab`
    /// reads it for `_set_vocab_llama_hf` (`llama`, pre `default`): as
    /// Gemma 4's, without merges, visible tokens or its closing flags.
    LlamaHf,
}

/// Gemma 4's tokens the reference marks user-defined so that they render.
const GEMMA4_VISIBLE: &[&str] = &[
    "<|channel>",
    "<channel|>",
    "<|tool_call>",
    "<tool_call|>",
    "<|tool_response>",
    "<tool_response|>",
    "<|\"|>",
];

/// The vocabulary, ready to write.
pub struct BpeVocab {
    /// `tokenizer.ggml.model`: `gpt2` (BPE), `bert` (WordPiece) or `gemma4`.
    model: &'static str,
    /// `tokenizer.ggml.scores`, where the vocabulary has them (Gemma 4's).
    scores: Option<Vec<f32>>,
    lowercase: Option<bool>,
    strip_accents: Option<bool>,
    /// Tokens in id order.
    pub tokens: Vec<String>,
    types: Vec<i32>,
    merges: Vec<String>,
    pre: String,
    special: Vec<(&'static str, u64)>,
    add: Vec<(&'static str, bool)>,
    chat_templates: crate::chat_template::ChatTemplates,
}

/// The special token kinds gguf-py looks for, in its order.
const SPECIAL_TYPES: &[&str] = &["bos", "eos", "unk", "sep", "pad", "cls", "mask"];

/// The GGUF key for a special token kind.
fn id_key(kind: &str) -> String {
    let name = match kind {
        "unk" => "unknown",
        "sep" => "seperator",
        "pad" => "padding",
        other => other,
    };
    format!("tokenizer.ggml.{name}_token_id")
}

/// llama.cpp's heuristic for added tokens that are control tokens even
/// when not marked special.
fn looks_special(t: &str) -> bool {
    matches!(t, "<pad>" | "<mask>" | "<2mass>" | "[@BOS@]")
        || (t.starts_with("<|") && t.ends_with("|>"))
        || (t.starts_with("<\u{ff5c}") && t.ends_with("\u{ff5c}>"))
        || (t.starts_with("<unused") && t.ends_with('>'))
}

/// The pre-tokenizer name for `tokenizer_json`: from the reference's table,
/// else `given`, else a refusal naming the hash (as the reference refuses).
fn pre_name(tokenizer_json: &[u8], given: Option<&str>, name: &str) -> Result<String> {
    let refuse = |what: String| Error::unsupported(code::TOKENIZER, format!("{name}: tokenizer.json {what}"));
    // The tokenizer library panics on some malformed files (its decoder and
    // normalizer deserializers `expect` success): such a file is refused
    // like any other that does not load, never a crash.
    let encoded = tensorcast_core::catch_quietly(|| {
        let tok =
            tokenizers::Tokenizer::from_bytes(tokenizer_json).map_err(|e| format!("does not load: {e}"))?;
        let ids = tok
            .encode(CHECK_TEXT, true)
            .map_err(|e| format!("cannot encode: {e}"))?;
        Ok::<Vec<u32>, String>(ids.get_ids().to_vec())
    });
    let ids = match encoded {
        Ok(Ok(ids)) => ids,
        Ok(Err(what)) => return Err(refuse(what)),
        Err(why) => {
            return Err(refuse(format!(
                "is malformed: the tokenizer library failed on it ({why})"
            )))
        }
    };
    let listed: Vec<String> = ids.iter().map(u32::to_string).collect();
    let hash = format!(
        "{:x}",
        Sha256::digest(format!("[{}]", listed.join(", ")).as_bytes())
    );
    if let Some((_, pre)) = PRE_HASHES.iter().find(|(h, _)| *h == hash) {
        return Ok((*pre).to_string());
    }
    given.map(str::to_string).ok_or_else(|| {
        Error::unsupported(code::UNKNOWN_PRE_TOKENIZER, format!(
            "{name}: llama.cpp does not know this vocabulary's pre-tokenizer (check hash {hash}); name the one it uses (e.g. llama-bpe) to convert it anyway"
        ))
    })
}

/// Reads a byte-level BPE vocabulary from the folder's tokenizer files.
pub fn read(
    tokenizer_json: &[u8],
    tokenizer_config: &Json,
    config: &Json,
    name: &str,
    max_tokens: u64,
    chat_templates: crate::chat_template::ChatTemplates,
    kind: VocabKind<'_>,
) -> Result<BpeVocab> {
    // Counts first, before the tokenizer library builds anything: a
    // vocabulary or added tokens past the model's tokens, or merges many
    // times the vocabulary (real BPE files have at most about two merges
    // per token), are refused here.
    let counts: crate::tokenizer_file::Counts = serde_json::from_slice(tokenizer_json).map_err(|e| {
        Error::unsupported(
            code::TOKENIZER,
            format!("{name}: tokenizer.json is not JSON: {e}"),
        )
    })?;
    let max_merges = max_tokens.saturating_mul(4).max(1 << 16);
    for (what, n, max) in [
        ("vocabulary entries", counts.model.vocab.0, max_tokens),
        ("added tokens", counts.added_tokens.0, max_tokens),
        ("merges", counts.model.merges.0, max_merges),
    ] {
        if n > max {
            return Err(Error::unsupported(
                code::MODEL_INCONSISTENT,
                format!("{name}: tokenizer.json holds {n} {what}, more than the model's {max}"),
            ));
        }
    }
    // The pre-tokenizer first: the Hugging Face tokenizer it loads is gone
    // before the JSON tree is built (both at once doubled the peak memory).
    let pre = match kind {
        VocabKind::ByteLevel(given_pre) => pre_name(tokenizer_json, given_pre, name)?,
        VocabKind::Gemma4 => String::new(),
        VocabKind::LlamaHf => "default".into(),
    };
    let file: crate::tokenizer_file::TokenizerFile = serde_json::from_slice(tokenizer_json).map_err(|e| {
        Error::unsupported(
            code::TOKENIZER,
            format!("{name}: tokenizer.json is not JSON: {e}"),
        )
    })?;
    let crate::tokenizer_file::TokenizerFile {
        model,
        added_tokens,
        normalizer,
        post_processor,
    } = file;
    // What specials() reads of the file, without its vocabulary.
    let tj = serde_json::json!({ "post_processor": post_processor });
    let wordpiece = match model.kind.as_str() {
        Some("BPE") => false,
        Some("WordPiece") => true,
        other => {
            return Err(Error::unsupported(code::TOKENIZER, format!(
                "{name}: a {} tokenizer.json without tokenizer.model is not converted yet (BPE and WordPiece are)",
                other.unwrap_or("typeless")
            )))
        }
    };
    let mut by_id: std::collections::BTreeMap<u64, String> = std::collections::BTreeMap::new();
    let base = model.vocab.0.len() as u64;
    for (t, id) in model.vocab.0 {
        by_id.insert(id, t);
    }
    let added: Vec<&Json> = added_tokens.as_array().into_iter().flatten().collect();
    for a in &added {
        if let (Some(id), Some(c)) = (a["id"].as_u64(), a["content"].as_str()) {
            by_id.insert(id, c.to_string());
        }
    }
    // LlamaHfVocab counts the tokenizer's own tokens, not config.json's.
    let count = match kind {
        VocabKind::ByteLevel(_) => config["vocab_size"].as_u64(),
        VocabKind::Gemma4 | VocabKind::LlamaHf => None,
    }
    .or_else(|| by_id.keys().last().map(|k| k + 1))
    .unwrap_or(0);
    if count > max_tokens {
        // An id of 10^12 in added_tokens would be padded up to with
        // placeholder tokens: refused before any is made.
        return Err(Error::unsupported(
            code::MODEL_INCONSISTENT,
            format!(
                "{name}: token ids up to {} exceed the model's {max_tokens} tokens",
                count - 1
            ),
        ));
    }
    // Added tokens by id, looked up once per token (a search of the list per
    // token was quadratic: minutes for Gemma's 262k tokens and 6k added).
    let added_by_id: std::collections::HashMap<u64, &Json> = added
        .iter()
        .rev()
        .filter_map(|a| Some((a["id"].as_u64()?, *a)))
        .collect();
    let (mut tokens, mut types) = (Vec::new(), Vec::new());
    for i in 0..count {
        let Some(t) = by_id.get(&i) else {
            tokens.push(format!("[PAD{i}]"));
            types.push(5);
            continue;
        };
        let entry = added_by_id.get(&i);
        let ty = match entry {
            Some(a) if a["special"].as_bool().unwrap_or(false) || looks_special(t) => 3,
            Some(_) => 4,
            None => 1,
        };
        let t = if ty == 4 && matches!(kind, VocabKind::ByteLevel(_)) {
            t.replace('\u{2581}', " ")
        } else {
            t.clone()
        };
        // WordPiece in llama.cpp's phantom-space spelling: a word start gets
        // "▁", a continuation loses its "##", control tokens stay.
        let t = match (wordpiece, ty) {
            (false, _) | (true, 3) => t,
            (true, _) => match t.strip_prefix("##") {
                Some(rest) => rest.to_string(),
                None => format!("\u{2581}{t}"),
            },
        };
        tokens.push(t);
        types.push(ty);
    }
    if matches!(kind, VocabKind::Gemma4 | VocabKind::LlamaHf) {
        types = gemma4_types(
            &tokens,
            base,
            &added_by_id,
            tokenizer_config,
            kind == VocabKind::Gemma4,
        );
    }
    // LlamaHfVocab's SpecialVocab loads no merges.
    let merges = match kind {
        VocabKind::LlamaHf => Vec::new(),
        _ => model.merges.0,
    };
    let (special, add) = specials(&tj, tokenizer_config, config, &added);
    let normalizer = &normalizer;
    let lowercase = (normalizer["type"] == "BertNormalizer")
        .then(|| normalizer["lowercase"].as_bool())
        .flatten();
    let strip_accents = (normalizer["type"] == "BertNormalizer")
        .then(|| normalizer["strip_accents"].as_bool())
        .flatten();
    let scores = matches!(kind, VocabKind::Gemma4 | VocabKind::LlamaHf).then(|| vec![-1000.0; tokens.len()]);
    Ok(BpeVocab {
        model: match (kind, wordpiece) {
            (VocabKind::Gemma4, _) => "gemma4",
            (VocabKind::LlamaHf, _) => "llama",
            (_, true) => "bert",
            (_, false) => "gpt2",
        },
        scores,
        lowercase,
        strip_accents,
        tokens,
        types,
        merges,
        pre,
        special,
        add,
        chat_templates,
    })
}

/// Token types as gguf-py's `LlamaHfVocab` gives them, and Gemma 4's
/// visible tokens user-defined: the tokenizer's own tokens are byte tokens
/// (`<0xNN>`), control tokens (the special tokens tokenizer_config.json
/// names, its extra and additional ones too) or normal; added tokens past
/// them control when special so, else user-defined.
fn gemma4_types(
    tokens: &[String],
    base: u64,
    added_by_id: &std::collections::HashMap<u64, &Json>,
    tc: &Json,
    gemma4: bool,
) -> Vec<i32> {
    let named = |v: &Json| match v {
        Json::String(s) => Some(s.clone()),
        Json::Object(o) => o.get("content").and_then(Json::as_str).map(String::from),
        _ => None,
    };
    let mut special: std::collections::HashSet<String> = ["bos", "eos", "unk", "sep", "pad", "cls", "mask"]
        .iter()
        .filter_map(|k| named(&tc[format!("{k}_token")]))
        .collect();
    for list in ["extra_special_tokens", "additional_special_tokens"] {
        special.extend(tc[list].as_array().into_iter().flatten().filter_map(named));
    }
    let is_byte = |t: &str| {
        t.len() == 6
            && t.starts_with("<0x")
            && t.ends_with('>')
            && t[3..5].bytes().all(|b| b.is_ascii_hexdigit())
    };
    tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if gemma4 && GEMMA4_VISIBLE.contains(&t.as_str()) {
                return 4;
            }
            let added_past = i as u64 >= base && added_by_id.contains_key(&(i as u64));
            match (added_past, special.contains(t)) {
                (true, true) => 3,
                (true, false) => 4,
                (false, _) if is_byte(t) => 6,
                (false, true) => 3,
                (false, false) => 1,
            }
        })
        .collect()
}

/// Special token ids (tokenizer_config's names through tokenizer.json's added
/// tokens, then config.json's ids) and the add flags: from the
/// post-processor first, tokenizer_config's `add_*_token` for the rest.
#[allow(clippy::type_complexity)]
pub(crate) fn specials(
    tj: &Json,
    tc: &Json,
    config: &Json,
    added: &[&Json],
) -> (Vec<(&'static str, u64)>, Vec<(&'static str, bool)>) {
    let text = |k: &str| match &tc[k] {
        Json::String(s) => Some(s.clone()),
        Json::Object(o) => o.get("content").and_then(Json::as_str).map(String::from),
        _ => None,
    };
    // gguf-py: no BOS but a CLS token means BOS is CLS; no EOS but SEP, SEP.
    let (cls, sep) = (text("cls_token"), text("sep_token"));
    let bos = text("bos_token").or_else(|| cls.clone());
    let eos = text("eos_token").or_else(|| sep.clone());
    let mut add: Vec<(&'static str, bool)> = Vec::new();
    let set = |add: &mut Vec<(&'static str, bool)>, k: &'static str, v: bool| {
        if let Some(e) = add.iter_mut().find(|(n, _)| *n == k) {
            e.1 = v;
        } else {
            add.push((k, v));
        }
    };
    let processors: Vec<&Json> = match tj["post_processor"]["processors"].as_array() {
        Some(list) => list.iter().collect(),
        None if tj["post_processor"].is_object() => vec![&tj["post_processor"]],
        None => Vec::new(),
    };
    for p in processors {
        match p["type"].as_str() {
            Some("ByteLevel") => {
                if !add.iter().any(|(k, _)| *k == "bos") {
                    add.push(("bos", false));
                }
                if !add.iter().any(|(k, _)| *k == "eos") {
                    add.push(("eos", false));
                }
            }
            Some("TemplateProcessing") => {
                let single = p["single"].as_array().cloned().unwrap_or_default();
                let pair = p["pair"].as_array().cloned().unwrap_or_default();
                let special_id = |e: &Json| e["SpecialToken"]["id"].as_str().map(String::from);
                let (mut first, mut last) = (None, None);
                if single.len() > 1 {
                    first = special_id(&single[0]);
                    if let Some(f) = &first {
                        set(&mut add, "bos", Some(f) == bos.as_ref());
                    }
                    last = single.last().and_then(special_id);
                    if let Some(l) = &last {
                        set(&mut add, "eos", Some(l) == eos.as_ref());
                    }
                }
                if !pair.is_empty() {
                    let start = usize::from(first.is_some() && pair.first().and_then(special_id) == first);
                    let stop =
                        pair.len() - usize::from(last.is_some() && pair.last().and_then(special_id) == last);
                    let inner = &pair[start.min(stop)..stop];
                    let seq = |e: &Json| e["Sequence"]["id"].as_str().map(String::from);
                    if let (Some(a), Some(b)) = (inner.first().and_then(seq), inner.last().and_then(seq)) {
                        if a == "A" && b == "B" && inner.len() > 2 {
                            let middle = &inner[1..inner.len() - 1];
                            let is_sep = |e: &Json| {
                                special_id(e)
                                    .is_some_and(|s| Some(&s) == sep.as_ref() || Some(&s) == eos.as_ref())
                            };
                            let mut add_sep = is_sep(&middle[0]) && last.is_none();
                            if middle.len() == 2 && is_sep(&middle[1]) {
                                add_sep = true;
                            }
                            set(&mut add, "sep", add_sep);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    for kind in SPECIAL_TYPES {
        if let Some(flag) = tc[format!("add_{kind}_token")].as_bool() {
            if !add.iter().any(|(k, _)| k == kind) {
                add.push((kind, flag));
            }
        }
    }
    // gguf-py's SpecialVocab: first every kind tokenizer_config.json names
    // by a token of the file, then the kinds still missing from
    // config.json's ids (so a BOS only config.json gives comes after them).
    let mut special = Vec::new();
    for kind in SPECIAL_TYPES {
        // gguf-py has no CLS key to write.
        if *kind == "cls" {
            continue;
        }
        let named = match *kind {
            "bos" => bos.clone(),
            "eos" => eos.clone(),
            k => text(&format!("{k}_token")),
        };
        let from_tokens = named.and_then(|t| {
            added
                .iter()
                .find(|a| a["content"].as_str() == Some(t.as_str()))
                .and_then(|a| a["id"].as_u64())
        });
        if let Some(id) = from_tokens {
            special.push((*kind, id));
        }
    }
    for kind in SPECIAL_TYPES {
        if *kind == "cls" || special.iter().any(|(k, _)| k == kind) {
            continue;
        }
        if let Some(id) = config[format!("{kind}_token_id")].as_u64() {
            special.push((*kind, id));
        }
    }
    (special, add)
}

/// Special token ids, then the add flags, as gguf-py's SpecialVocab writes them.
pub(crate) fn write_specials(
    m: &mut Metadata,
    special: Vec<(&'static str, u64)>,
    add: Vec<(&'static str, bool)>,
) {
    for (kind, id) in special {
        m.insert(id_key(kind), Value::U32(u32::try_from(id).unwrap_or(u32::MAX)));
    }
    for (kind, flag) in add {
        m.insert(format!("tokenizer.ggml.add_{kind}_token"), Value::Bool(flag));
    }
}

impl BpeVocab {
    /// Writes `tokenizer.ggml.*` in the reference's order.
    pub fn write(self, m: &mut Metadata) {
        m.insert("tokenizer.ggml.model", Value::Str(self.model.into()));
        if !self.pre.is_empty() {
            m.insert("tokenizer.ggml.pre", Value::Str(self.pre));
        }
        m.insert(
            "tokenizer.ggml.tokens",
            Value::Array(Array::from(self.tokens.iter().collect::<Strings>())),
        );
        if let Some(scores) = self.scores {
            m.insert("tokenizer.ggml.scores", Value::Array(Array::F32(scores)));
        }
        m.insert("tokenizer.ggml.token_type", Value::Array(Array::I32(self.types)));
        if !self.merges.is_empty() {
            m.insert(
                "tokenizer.ggml.merges",
                Value::Array(Array::from(self.merges.iter().collect::<Strings>())),
            );
        }
        write_specials(m, self.special, self.add);
        self.chat_templates.write(m);
        if let Some(b) = self.lowercase {
            m.insert("tokenizer.ggml.normalizer.lowercase", Value::Bool(b));
        }
        if let Some(b) = self.strip_accents {
            m.insert("tokenizer.ggml.normalizer.strip_accents", Value::Bool(b));
        }
        if self.model == "gemma4" {
            // Gemma4Model.set_vocab's last words, whatever the files said.
            m.insert("tokenizer.ggml.add_space_prefix", Value::Bool(false));
            m.insert("tokenizer.ggml.add_bos_token", Value::Bool(true));
        }
    }
}
