//! The GGUF vocabulary (`tokenizer.ggml.*`) as Hugging Face tokenizer files:
//! `tokenizer.json` shaped as transformers' GGUF loader builds it, plus
//! `tokenizer_config.json` and `special_tokens_map.json`.

use crate::arch::{self, VocabStyle};
use crate::gguf_kv::{array, boolean, int, string, strings};
use serde_json::{json, Map, Value as Json};
use std::collections::HashMap;
use tensorcast_core::code;
use tensorcast_core::{Error, Metadata, Result, Value};

/// Token types of `tokenizer.ggml.token_type` (gguf-py's): the unknown
/// piece, control tokens, user-defined ones.
const UNKNOWN: i64 = 2;
const CONTROL: i64 = 3;
const USER_DEFINED: i64 = 4;

/// The files a tokenizer becomes, by name.
pub struct TokenizerFiles {
    /// `tokenizer.json`, `tokenizer_config.json`, `special_tokens_map.json`,
    /// and a SentencePiece vocabulary's `tokenizer.model` (`spiece.model`
    /// for T5's).
    pub files: Vec<(&'static str, Vec<u8>)>,
}

fn pretty(v: &Json) -> Vec<u8> {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s.into_bytes()
}

/// The special token names transformers reads, with their GGUF keys.
const SPECIAL: &[(&str, &str)] = &[
    ("bos_token", "bos_token_id"),
    ("eos_token", "eos_token_id"),
    ("unk_token", "unknown_token_id"),
    ("pad_token", "padding_token_id"),
    ("mask_token", "mask_token_id"),
];

/// Builds the tokenizer files for the vocabulary in `metadata`.
pub fn from_gguf(metadata: &Metadata) -> Result<TokenizerFiles> {
    let model = string(metadata, "tokenizer.ggml.model").ok_or_else(|| {
        Error::unsupported(
            code::TOKENIZER,
            "the GGUF has no tokenizer (tokenizer.ggml.model): no tokenizer files can be written",
        )
    })?;
    let tokens = strings(metadata, "tokenizer.ggml.tokens").ok_or_else(|| {
        Error::unsupported(
            code::TOKENIZER,
            "tokenizer.ggml.tokens is missing or not a string array",
        )
    })?;
    let types: Vec<i64> = array(metadata, "tokenizer.ggml.token_type")
        .map(|a| a.iter().map(|v| value_int(&v)).collect())
        .unwrap_or_default();
    let style = string(metadata, "general.architecture")
        .and_then(arch::by_gguf_name)
        .map_or(VocabStyle::Llama, |a| a.vocab);
    let tokenizer = match model {
        "llama" | "gemma4" => sentencepiece_bpe(metadata, &tokens, &types, style)?,
        "gpt2" => byte_level_bpe(metadata, &tokens, &types)?,
        "bert" => wordpiece(metadata, &tokens, &types)?,
        "t5" => crate::t5::tokenizer_json(metadata, &tokens, &types)?,
        other => {
            return Err(Error::unsupported(code::TOKENIZER, format!(
                "tokenizer.ggml.model '{other}' has no conversion yet (llama/SentencePiece, gpt2/byte-level BPE and bert/WordPiece have)"
            )))
        }
    };
    let token = |key: &str| {
        int(metadata, &format!("tokenizer.ggml.{key}"))
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| tokens.get(i).copied())
    };
    let mut config = Map::new();
    let mut special = Map::new();
    config.insert("backend".into(), json!("tokenizers"));
    for (name, key) in SPECIAL {
        config.insert((*name).into(), json!(token(key)));
        if let Some(t) = token(key) {
            special.insert((*name).into(), json!(t));
        }
    }
    if model == "bert" {
        // BertTokenizer names its specials CLS/SEP; llama.cpp stores them as BOS/EOS.
        config.insert("cls_token".into(), json!(token("bos_token_id")));
        config.insert(
            "sep_token".into(),
            json!(token("seperator_token_id").or(token("eos_token_id"))),
        );
        config.insert("bos_token".into(), Json::Null);
        config.insert("eos_token".into(), Json::Null);
    }
    // The tokens the GGUF's converter took from tokenizer_config.json's
    // added_tokens_decoder (control or user-defined, score -1000): listed
    // there again, so that a conversion back gives them the same types
    // (Gemma's user-defined newline runs would otherwise come back normal).
    if model == "llama" {
        let scores: Vec<f64> = array(metadata, "tokenizer.ggml.scores")
            .map(|a| a.iter().map(|v| value_float(&v)).collect())
            .unwrap_or_default();
        let mut decoder = Map::new();
        for (i, (t, ty)) in tokens.iter().zip(&types).enumerate() {
            if matches!(*ty, CONTROL | USER_DEFINED) && scores.get(i) == Some(&-1000.0) {
                decoder.insert(
                    i.to_string(),
                    json!({"content": t, "lstrip": false, "normalized": false, "rstrip": false,
                           "single_word": false, "special": *ty == CONTROL}),
                );
            }
        }
        if !decoder.is_empty() {
            config.insert("added_tokens_decoder".into(), Json::Object(decoder));
        }
    }
    config.insert("add_bos_token".into(), json!(add_bos(metadata, model)));
    config.insert("add_eos_token".into(), json!(add_eos(metadata)));
    // A separator flag where the GGUF states one (the reference reads it back).
    if let Some(sep) = boolean(metadata, "tokenizer.ggml.add_sep_token") {
        config.insert("add_sep_token".into(), json!(sep));
    }
    if let Some(t) = crate::chat_template::ChatTemplates::from_gguf(metadata) {
        config.insert("chat_template".into(), t);
    }
    config.insert("clean_up_tokenization_spaces".into(), json!(false));
    config.insert(
        "model_max_length".into(),
        json!(1_000_000_000_000_000_019_884_624_838_656f64),
    );
    config.insert("tokenizer_class".into(), json!("TokenizersBackend"));
    let mut files = vec![
        ("tokenizer.json", pretty(&tokenizer)),
        ("tokenizer_config.json", pretty(&Json::Object(config))),
        ("special_tokens_map.json", pretty(&Json::Object(special))),
    ];
    // A SentencePiece vocabulary's model file too, as the folders it came
    // from have it: the reference converter reads it, not tokenizer.json.
    if let Some(name) = match model {
        "llama" => Some("tokenizer.model"),
        "t5" => Some("spiece.model"),
        _ => None,
    } {
        files.push((
            name,
            sentencepiece_model(metadata, &tokens, &types, model == "t5"),
        ));
    }
    Ok(TokenizerFiles { files })
}

/// The SentencePiece model of the vocabulary in `metadata`: its pieces
/// (token, score, type) and normalizer flags as the GGUF holds them.
fn sentencepiece_model(metadata: &Metadata, tokens: &[&str], types: &[i64], unigram: bool) -> Vec<u8> {
    let scores: Vec<f64> = array(metadata, "tokenizer.ggml.scores")
        .map(|a| a.iter().map(|v| value_float(&v)).collect())
        .unwrap_or_default();
    let pieces: Vec<crate::sentencepiece::Piece> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| crate::sentencepiece::Piece {
            text: t.to_string(),
            score: scores.get(i).copied().unwrap_or(0.0) as f32,
            kind: types.get(i).map_or(1, |&k| i32::try_from(k).unwrap_or(1)),
        })
        .collect();
    let charsmap = match array(metadata, "tokenizer.ggml.precompiled_charsmap") {
        Some(tensorcast_core::Array::U8(b)) => b.clone(),
        _ => Vec::new(),
    };
    let spec = crate::sentencepiece::Spec {
        unigram,
        add_dummy_prefix: boolean(metadata, "tokenizer.ggml.add_space_prefix").unwrap_or(true),
        remove_extra_whitespaces: boolean(metadata, "tokenizer.ggml.remove_extra_whitespaces")
            .unwrap_or(unigram),
        charsmap,
    };
    crate::sentencepiece::write(&pieces, &spec)
}

fn value_int(v: &Value) -> i64 {
    match v {
        Value::I32(x) => i64::from(*x),
        Value::U32(x) => i64::from(*x),
        Value::I64(x) => *x,
        Value::U8(x) => i64::from(*x),
        Value::I8(x) => i64::from(*x),
        _ => 0,
    }
}

/// A numeric metadata value as f64 (scores are f32 in GGUF).
pub(crate) fn value_float(v: &Value) -> f64 {
    match v {
        Value::F32(x) => f64::from(*x),
        Value::F64(x) => *x,
        other => value_int(other) as f64,
    }
}

/// transformers' rule: a SentencePiece vocabulary that does not say
/// otherwise gets BOS, as llama.cpp does.
fn add_bos(metadata: &Metadata, model: &str) -> bool {
    // Gemma 4's files say true, but its chat template writes <bos> itself:
    // transformers' loader (and Gemma 4's own tokenizer) add none.
    if model == "gemma4" {
        return false;
    }
    boolean(metadata, "tokenizer.ggml.add_bos_token").unwrap_or(model == "llama")
}

fn add_eos(metadata: &Metadata) -> bool {
    boolean(metadata, "tokenizer.ggml.add_eos_token").unwrap_or(false)
}

/// Work `merges_from_scores` may do, in bytes hashed: every split of every
/// token looks its halves up, so a token of n bytes costs about n². Real
/// vocabularies (pieces of a few to a few dozen bytes) take well under 1 %.
const MERGE_WORK: u64 = 1 << 32;

/// Merges a SentencePiece BPE vocabulary implies: every split of a token into
/// two tokens of the vocabulary, best score first (transformers'
/// `generate_merges` with scores, ties broken by the pieces' lengths).
///
/// That is quadratic in a token's length and in how many of its splits are
/// tokens: a vocabulary built to explode (`a`, `aa`, `aaa`, … 20 000 long)
/// implies hundreds of millions of merges. Such a vocabulary is refused
/// before the work (by its tokens' lengths) or as the merges pass eight per
/// token (real vocabularies imply one or two).
fn merges_from_scores(tokens: &[&str], scores: &[f64]) -> Result<Vec<(String, String)>> {
    let work: u64 = tokens
        .iter()
        .map(|t| (t.len() as u64).saturating_pow(2))
        .fold(0, u64::saturating_add);
    if work > MERGE_WORK {
        return Err(Error::unsupported(
            code::MODEL_INCONSISTENT,
            format!(
                "the vocabulary's tokens are too long to derive BPE merges from ({work} byte lookups, over {MERGE_WORK})"
            ),
        ));
    }
    let max_merges = (tokens.len() as u64).saturating_mul(8).saturating_add(1 << 16);
    let too_many = || {
        Error::unsupported(
            code::MODEL_INCONSISTENT,
            format!(
                "the vocabulary implies more than {max_merges} BPE merges (eight per token): it is built to explode, not to tokenize"
            ),
        )
    };
    let vocab: HashMap<&str, usize> = tokens.iter().enumerate().map(|(i, t)| (*t, i)).collect();
    // Python dict semantics: a repeated token keeps its first position and last score.
    let mut score_of: Vec<(&str, f64)> = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (t, s) in tokens.iter().zip(scores) {
        match seen.get(t) {
            Some(&at) => score_of[at].1 = *s,
            None => {
                seen.insert(t, score_of.len());
                score_of.push((t, *s));
            }
        }
    }
    let mut merges: Vec<(&str, &str, f64)> = Vec::new();
    for (token, score) in score_of {
        let mut local = Vec::new();
        for (cut, _) in token.char_indices().skip(1) {
            let (l, r) = token.split_at(cut);
            if let (Some(&li), Some(&ri)) = (vocab.get(l), vocab.get(r)) {
                local.push((l, r, score, li, ri));
            }
        }
        local.sort_by_key(|&(_, _, _, li, ri)| (li, ri));
        merges.extend(local.into_iter().map(|(l, r, s, _, _)| (l, r, s)));
        if merges.len() as u64 > max_merges {
            return Err(too_many());
        }
    }
    // Python's sort(key=(score, len(l), len(r)), reverse=True) is stable:
    // reversed keys, equal keys keep their order.
    let key = |m: &(&str, &str, f64)| (m.2, m.0.chars().count(), m.1.chars().count());
    merges.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        kb.0.total_cmp(&ka.0).then(kb.1.cmp(&ka.1)).then(kb.2.cmp(&ka.2))
    });
    Ok(merges
        .into_iter()
        .map(|(l, r, _)| (l.to_string(), r.to_string()))
        .collect())
}

/// Byte-level BPE as transformers' `GPT2Tokenizer` rebuilds it from a GGUF:
/// the class's own `<|endoftext|>` special (appended when the vocabulary
/// lacks it), control tokens written in the byte alphabet as specials,
/// user-defined ones as plain added tokens.
fn byte_level_bpe(metadata: &Metadata, tokens: &[&str], types: &[i64]) -> Result<Json> {
    let merges = strings(metadata, "tokenizer.ggml.merges").ok_or_else(|| {
        Error::unsupported(
            code::TOKENIZER,
            "a byte-level BPE vocabulary needs tokenizer.ggml.merges",
        )
    })?;
    let alphabet = crate::bpe::byte_alphabet();
    let spelled: Vec<String> = tokens.iter().map(|t| crate::bpe::respell(t, &alphabet)).collect();
    let position = |t: &str| spelled.iter().rposition(|s| s == t);
    let mut added: Vec<Json> = Vec::new();
    let mut listed = std::collections::HashSet::new();
    let eot = "<|endoftext|>";
    let eot_id = position(eot).unwrap_or(spelled.len());
    listed.insert(eot_id);
    added.push(added_token(eot_id, eot, true));
    for (i, (t, ty)) in tokens.iter().zip(types).enumerate() {
        let in_alphabet = t.chars().all(|c| alphabet.contains(&c));
        let take = (*ty == CONTROL && in_alphabet) || (*ty == USER_DEFINED && position(t).is_some());
        if take && listed.insert(i) {
            added.push(added_token(i, t, *ty == CONTROL));
        }
    }
    added.sort_by_key(|t| t["id"].as_u64());
    let token_at = |key: &str| {
        int(metadata, &format!("tokenizer.ggml.{key}"))
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| tokens.get(i).map(|t| (i, *t)))
    };
    let bos = token_at("bos_token_id").filter(|_| add_bos(metadata, "gpt2"));
    let eos = token_at("eos_token_id").filter(|_| add_eos(metadata));
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": crate::bpe::pre_tokenizer(string(metadata, "tokenizer.ggml.pre")),
        "post_processor": template(bos, eos),
        "decoder": crate::bpe::decoder(),
        "model": crate::bpe::model(&spelled, &merges),
    }))
}

/// WordPiece (BERT) from llama.cpp's phantom-space spelling back to Hugging
/// Face's: "▁word" starts a word, other tokens continue one ("##"), control
/// tokens stay; `BertTokenizer`'s normalizer, pre-tokenizer and
/// `[CLS] A [SEP]` template.
fn wordpiece(metadata: &Metadata, tokens: &[&str], types: &[i64]) -> Result<Json> {
    let mut vocab = Map::new();
    let mut added = Vec::new();
    for (i, (t, ty)) in tokens
        .iter()
        .zip(types.iter().chain(std::iter::repeat(&1)))
        .enumerate()
    {
        let spelled = if *ty == CONTROL {
            added.push(added_token(i, t, true));
            t.to_string()
        } else {
            match t.strip_prefix('\u{2581}') {
                Some(word) => word.to_string(),
                None => format!("##{t}"),
            }
        };
        vocab.insert(spelled, json!(i));
    }
    let token_at = |key: &str| {
        int(metadata, &format!("tokenizer.ggml.{key}"))
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| tokens.get(i).map(|t| (i, *t)))
    };
    let cls = token_at("bos_token_id");
    let sep = token_at("seperator_token_id").or_else(|| token_at("eos_token_id"));
    let tok = |(_, t): (usize, &str), type_id: u32| json!({"SpecialToken": {"id": t, "type_id": type_id}});
    let seq = |id: &str, type_id: u32| json!({"Sequence": {"id": id, "type_id": type_id}});
    let (mut single, mut pair) = (Vec::new(), Vec::new());
    if let Some(c) = cls.filter(|_| boolean(metadata, "tokenizer.ggml.add_bos_token").unwrap_or(true)) {
        single.push(tok(c, 0));
        pair.push(tok(c, 0));
    }
    single.push(seq("A", 0));
    pair.push(seq("A", 0));
    let add_sep = boolean(metadata, "tokenizer.ggml.add_eos_token").unwrap_or(true);
    if let Some(s) = sep.filter(|_| add_sep) {
        single.push(tok(s, 0));
        pair.push(tok(s, 0));
    }
    pair.push(seq("B", 1));
    if let Some(s) = sep.filter(|_| add_sep) {
        pair.push(tok(s, 1));
    }
    let mut specials = Map::new();
    for (i, t) in cls.into_iter().chain(sep) {
        specials.insert(t.into(), json!({"id": t, "ids": [i], "tokens": [t]}));
    }
    let unk = token_at("unknown_token_id").map(|(_, t)| t);
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {
            "type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
            "strip_accents": boolean(metadata, "tokenizer.ggml.normalizer.strip_accents"),
            "lowercase": boolean(metadata, "tokenizer.ggml.normalizer.lowercase").unwrap_or(true),
        },
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": specials},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {
            "type": "WordPiece", "unk_token": unk, "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100, "vocab": vocab,
        },
    }))
}

fn added_token(id: usize, content: &str, special: bool) -> Json {
    json!({
        "id": id, "content": content, "single_word": false, "lstrip": false,
        "rstrip": false, "normalized": false, "special": special,
    })
}

/// SentencePiece BPE with byte fallback as transformers rebuilds it: merges
/// recovered from the scores (Llama) or from the tokens' order (Gemma, whose
/// scores do not follow its merges), BOS by template.
fn sentencepiece_bpe(metadata: &Metadata, tokens: &[&str], types: &[i64], style: VocabStyle) -> Result<Json> {
    let scores: Vec<f64> = array(metadata, "tokenizer.ggml.scores")
        .map(|a| a.iter().map(|v| value_float(&v)).collect())
        .ok_or_else(|| {
            Error::unsupported(
                code::TOKENIZER,
                "a SentencePiece vocabulary needs tokenizer.ggml.scores",
            )
        })?;
    if scores.len() != tokens.len() {
        return Err(Error::unsupported(
            code::TOKENIZER,
            format!("{} tokens but {} scores", tokens.len(), scores.len()),
        ));
    }
    // Gemma files store a token of two or more spaces as spaces; its
    // tokenizer looks it up spelled with "▁".
    let respelled: Vec<String> = tokens
        .iter()
        .map(|t| match style {
            VocabStyle::Gemma | VocabStyle::Gemma4 if t.contains(' ') && t.trim().is_empty() => {
                "\u{2581}".repeat(t.chars().count())
            }
            _ => t.to_string(),
        })
        .collect();
    let tokens: Vec<&str> = respelled.iter().map(String::as_str).collect();
    let tokens = &tokens[..];
    let order_scores: Vec<f64>;
    let merge_scores = match style {
        VocabStyle::Llama | VocabStyle::Phi3 | VocabStyle::LlamaHf => &scores,
        VocabStyle::Gemma | VocabStyle::Gemma4 => {
            order_scores = (0..tokens.len()).map(|i| -(i as f64)).collect();
            &order_scores
        }
    };
    // Python dict semantics: a repeated token keeps its first place, last id.
    let mut vocab = Map::new();
    for (i, t) in tokens.iter().enumerate() {
        vocab.insert(t.to_string(), json!(i));
    }
    // The file's own merges where it has them (Gemma 4's), as transformers
    // takes them; recovered otherwise.
    let stated = strings(metadata, "tokenizer.ggml.merges").filter(|m| !m.is_empty());
    let pairs = match stated {
        Some(m) => m
            .iter()
            .filter_map(|m| m.split_once(' '))
            .map(|(l, r)| (l.to_string(), r.to_string()))
            .collect(),
        None => merges_from_scores(tokens, merge_scores)?,
    };
    let merges: Vec<Json> = pairs.into_iter().map(|(l, r)| json!([l, r])).collect();
    let token_at = |key: &str| {
        int(metadata, &format!("tokenizer.ggml.{key}"))
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| tokens.get(i).map(|t| (i, *t)))
    };
    // The tokenizer class's own specials first (unk, bos, eos), then the
    // file's other control tokens, its unknown piece (when the file's unk id
    // points elsewhere, as Nemotron's converter sets it) and its
    // user-defined ones.
    let mut added: Vec<Json> = Vec::new();
    let mut listed = std::collections::HashSet::new();
    let class_specials: &[&str] = match style {
        VocabStyle::Llama | VocabStyle::Phi3 | VocabStyle::LlamaHf => {
            &["unknown_token_id", "bos_token_id", "eos_token_id"]
        }
        VocabStyle::Gemma | VocabStyle::Gemma4 => &[
            "padding_token_id",
            "eos_token_id",
            "bos_token_id",
            "unknown_token_id",
            "mask_token_id",
        ],
    };
    for key in class_specials {
        if let Some((i, t)) = token_at(key) {
            if listed.insert(i) {
                added.push(added_token(i, t, true));
            }
        }
    }
    for (i, (t, ty)) in tokens.iter().zip(types).enumerate() {
        if matches!(*ty, CONTROL | USER_DEFINED | UNKNOWN) && listed.insert(i) {
            added.push(added_token(i, t, *ty != USER_DEFINED));
        }
    }
    // Serialized by id, as the tokenizers library writes them.
    added.sort_by_key(|t| t["id"].as_u64());
    let model = string(metadata, "tokenizer.ggml.model").unwrap_or("llama");
    let bos = token_at("bos_token_id").filter(|_| add_bos(metadata, model));
    let eos = token_at("eos_token_id").filter(|_| add_eos(metadata));
    let replace = json!({"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "});
    let (normalizer, pre_tokenizer, decoders, unk) = match style {
        // Llama's decoders, which strip the prefix space again.
        VocabStyle::Phi3 | VocabStyle::Llama | VocabStyle::LlamaHf => {
            let decoders = vec![
                replace,
                json!({"type": "ByteFallback"}),
                json!({"type": "Fuse"}),
                json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}),
            ];
            match style {
                VocabStyle::Phi3 => (
                    json!({"type": "Sequence", "normalizers": [
                        {"type": "Prepend", "prepend": "\u{2581}"},
                        {"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"},
                    ]}),
                    Json::Null,
                    decoders,
                    Json::Null,
                ),
                _ => (
                    Json::Null,
                    json!({"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "first", "split": false}),
                    decoders,
                    Json::Null,
                ),
            }
        }
        VocabStyle::Gemma | VocabStyle::Gemma4 => (
            json!({"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"}),
            json!({"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": false}),
            vec![replace, json!({"type": "ByteFallback"}), json!({"type": "Fuse"})],
            json!(token_at("unknown_token_id").map(|(_, t)| t)),
        ),
    };
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": normalizer,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": template(bos, eos),
        "decoder": {"type": "Sequence", "decoders": decoders},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": unk, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
            "vocab": vocab, "merges": merges,
        },
    }))
}

/// A TemplateProcessing post-processor adding BOS and/or EOS around each sequence.
fn template(bos: Option<(usize, &str)>, eos: Option<(usize, &str)>) -> Json {
    let seq = |id: &str, type_id: u32| json!({"Sequence": {"id": id, "type_id": type_id}});
    let tok = |t: &str, type_id: u32| json!({"SpecialToken": {"id": t, "type_id": type_id}});
    let mut single = Vec::new();
    let mut pair = Vec::new();
    let mut specials = Map::new();
    for (part, type_id) in [("A", 0u32), ("B", 1)] {
        let out = if part == "A" { &mut single } else { &mut pair };
        if let Some((_, t)) = bos {
            out.push(tok(t, type_id));
        }
        out.push(seq(part, type_id));
        if let Some((_, t)) = eos {
            out.push(tok(t, type_id));
        }
    }
    let pair: Vec<Json> = single.iter().cloned().chain(pair).collect();
    for (i, t) in bos.into_iter().chain(eos) {
        specials.insert(t.into(), json!({"id": t, "ids": [i], "tokens": [t]}));
    }
    json!({"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": specials})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vocabulary_built_to_explode_is_refused_before_the_work() {
        // a, aa, aaa, …: every split of every token is two tokens.
        for n in [1000usize, 3000] {
            let owned: Vec<String> = (1..=n).map(|k| "a".repeat(k)).collect();
            let tokens: Vec<&str> = owned.iter().map(String::as_str).collect();
            let scores: Vec<f64> = (0..n).map(|i| -(i as f64)).collect();
            let e = merges_from_scores(&tokens, &scores).unwrap_err();
            assert_eq!(e.code(), Some(code::MODEL_INCONSISTENT), "{n}: {e}");
        }
    }

    #[test]
    fn merges_follow_scores_then_lengths_then_position() {
        let tokens = ["a", "b", "c", "ab", "abc", "bc"];
        let scores = [0.0, 0.0, 0.0, -1.0, -3.0, -2.0];
        let m = merges_from_scores(&tokens, &scores).unwrap();
        let got: Vec<(&str, &str)> = m.iter().map(|(l, r)| (l.as_str(), r.as_str())).collect();
        // "ab" (-1) first; then "bc" (-2); then "abc" (-3) split as a|bc and ab|c,
        // longer left piece first on equal scores.
        assert_eq!(got, [("a", "b"), ("b", "c"), ("ab", "c"), ("a", "bc")]);
    }
}
