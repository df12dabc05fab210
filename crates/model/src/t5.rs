//! T5 (and UMT5, flan-t5) as llama.cpp holds it (`convert_hf_to_gguf.py`'s
//! `T5Model`; transformers 5.23's GGUF loader builds it with the wrong
//! activation and vocabulary, so the original model is the reference back):
//! an encoder and a decoder, each with its own blocks (`enc.blk.N`,
//! `dec.blk.N`), one shared embedding, its own keys, and a SentencePiece
//! Unigram vocabulary (`tokenizer.ggml.model = t5`) with its normalizer.

use crate::sentencepiece::{self, Spec};
use serde_json::{json, Map, Value as Json};
use tensorcast_core::{code, Array, Error, Input, Metadata, Result, Strings, Value};

/// Encoder block tensors: (GGUF part after `enc.blk.N.`, HF part after
/// `encoder.block.N.`).
const ENCODER: &[(&str, &str)] = &[
    ("attn_norm", "layer.0.layer_norm"),
    ("attn_q", "layer.0.SelfAttention.q"),
    ("attn_k", "layer.0.SelfAttention.k"),
    ("attn_v", "layer.0.SelfAttention.v"),
    ("attn_o", "layer.0.SelfAttention.o"),
    ("attn_rel_b", "layer.0.SelfAttention.relative_attention_bias"),
    ("ffn_norm", "layer.1.layer_norm"),
    ("ffn_gate", "layer.1.DenseReluDense.wi_0"),
    ("ffn_up", "layer.1.DenseReluDense.wi_1"),
    ("ffn_down", "layer.1.DenseReluDense.wo"),
];

/// Decoder block tensors: self-attention, cross-attention, FFN.
const DECODER: &[(&str, &str)] = &[
    ("attn_norm", "layer.0.layer_norm"),
    ("attn_q", "layer.0.SelfAttention.q"),
    ("attn_k", "layer.0.SelfAttention.k"),
    ("attn_v", "layer.0.SelfAttention.v"),
    ("attn_o", "layer.0.SelfAttention.o"),
    ("attn_rel_b", "layer.0.SelfAttention.relative_attention_bias"),
    ("cross_attn_norm", "layer.1.layer_norm"),
    ("cross_attn_q", "layer.1.EncDecAttention.q"),
    ("cross_attn_k", "layer.1.EncDecAttention.k"),
    ("cross_attn_v", "layer.1.EncDecAttention.v"),
    ("cross_attn_o", "layer.1.EncDecAttention.o"),
    (
        "cross_attn_rel_b",
        "layer.1.EncDecAttention.relative_attention_bias",
    ),
    ("ffn_norm", "layer.2.layer_norm"),
    ("ffn_gate", "layer.2.DenseReluDense.wi_0"),
    ("ffn_up", "layer.2.DenseReluDense.wi_1"),
    ("ffn_down", "layer.2.DenseReluDense.wo"),
];

/// Tensors outside the blocks: (GGUF, HF), without `.weight`.
const GLOBALS: &[(&str, &str)] = &[
    ("token_embd", "shared"),
    ("enc.output_norm", "encoder.final_layer_norm"),
    ("dec.output_norm", "decoder.final_layer_norm"),
    ("output", "lm_head"),
];

/// The names checkpoints store the one shared embedding under (some hold
/// two or three copies): the first in sorted order is the reference's.
pub(crate) fn is_embedding(hf: &str) -> bool {
    matches!(
        hf,
        "shared.weight" | "encoder.embed_tokens.weight" | "decoder.embed_tokens.weight"
    )
}

/// One side's block tensors: (GGUF part, HF part).
type Table = &'static [(&'static str, &'static str)];

/// The side tables: (GGUF prefix, HF prefix, table, the FFN's layer).
const SIDES: &[(&str, &str, Table, &str)] = &[
    ("enc.blk.", "encoder.block.", ENCODER, "layer.1"),
    ("dec.blk.", "decoder.block.", DECODER, "layer.2"),
];

/// The GGUF name of HF tensor `hf`, `None` for one T5 has no name for.
pub(crate) fn gguf_name(hf: &str) -> Option<String> {
    if is_embedding(hf) {
        return Some("token_embd.weight".into());
    }
    let (stem, suffix) = hf.rsplit_once('.')?;
    if let Some((g, _)) = GLOBALS.iter().find(|(_, h)| *h == stem) {
        return Some(format!("{g}.{suffix}"));
    }
    SIDES.iter().find_map(|(gp, hp, table, ffn)| {
        let (block, part) = stem.strip_prefix(hp)?.split_once('.')?;
        block.parse::<u32>().ok()?;
        // T5 v1.0's ungated FFN: its `wi` is llama.cpp's `ffn_up`.
        let g = match part.strip_prefix(ffn) {
            Some(".DenseReluDense.wi") => "ffn_up",
            _ => table.iter().find(|(_, h)| *h == part)?.0,
        };
        Some(format!("{gp}{block}.{g}.{suffix}"))
    })
}

/// The HF name of GGUF tensor `name`; `gated` says whether its block has
/// an `ffn_gate` (else `ffn_up` is T5 v1.0's `wi`).
pub(crate) fn hf_name(name: &str, gated: bool) -> Option<String> {
    let (stem, suffix) = name.rsplit_once('.')?;
    if let Some((_, h)) = GLOBALS.iter().find(|(g, _)| *g == stem) {
        return Some(format!("{h}.{suffix}"));
    }
    SIDES.iter().find_map(|(gp, hp, table, ffn)| {
        let (block, part) = stem.strip_prefix(gp)?.split_once('.')?;
        block.parse::<u32>().ok()?;
        let h = match (part, gated) {
            ("ffn_up", false) => format!("{ffn}.DenseReluDense.wi"),
            _ => table.iter().find(|(g, _)| *g == part)?.1.to_string(),
        };
        Some(format!("{hp}{block}.{h}.{suffix}"))
    })
}

/// The block (`enc.blk.N.`) of GGUF tensor `name`.
pub(crate) fn block_of(name: &str) -> Option<&str> {
    let (side, rest) = name.split_at(name.find(".blk.")? + 5);
    let end = rest.find('.')?;
    Some(&name[..side.len() + end + 1])
}

fn refuse(what: String) -> Error {
    Error::unsupported(code::NOT_A_MODEL, format!("T5's config.json: {what}"))
}

/// The keys `T5Model` writes, in its order (the file type after them).
pub(crate) fn keys(m: &mut Metadata, a: &str, config: &Json) -> Result<()> {
    let int = |k: &str| config.get(k).and_then(Json::as_u64);
    let need = |k: &str| int(k).ok_or_else(|| refuse(format!("no {k} (a non-negative integer)")));
    let u32v = |v: u64| Value::U32(u32::try_from(v).unwrap_or(u32::MAX));
    let eps = config
        .get("layer_norm_epsilon")
        .and_then(Json::as_f64)
        .ok_or_else(|| refuse("no layer_norm_epsilon".into()))?;
    m.insert(
        format!("{a}.context_length"),
        u32v(int("n_positions").unwrap_or(512)),
    );
    m.insert(format!("{a}.embedding_length"), u32v(need("d_model")?));
    m.insert(format!("{a}.feed_forward_length"), u32v(need("d_ff")?));
    m.insert(format!("{a}.block_count"), u32v(need("num_layers")?));
    // The encoder alone (t5encoder) has neither decoder key.
    let decoder = a != "t5encoder";
    if let (true, Some(n)) = (decoder, int("num_decoder_layers")) {
        m.insert(format!("{a}.decoder_block_count"), u32v(n));
    }
    m.insert(format!("{a}.attention.head_count"), u32v(need("num_heads")?));
    m.insert(format!("{a}.attention.key_length"), u32v(need("d_kv")?));
    m.insert(format!("{a}.attention.value_length"), u32v(need("d_kv")?));
    m.insert(
        format!("{a}.attention.layer_norm_epsilon"),
        Value::F32(eps as f32),
    );
    m.insert(
        format!("{a}.attention.relative_buckets_count"),
        u32v(need("relative_attention_num_buckets")?),
    );
    m.insert(
        format!("{a}.attention.layer_norm_rms_epsilon"),
        Value::F32(eps as f32),
    );
    if decoder {
        m.insert(
            format!("{a}.decoder_start_token_id"),
            u32v(need("decoder_start_token_id")?),
        );
    }
    Ok(())
}

/// config.json's T5 fields from the GGUF; `gated` when the FFNs have a
/// gate (flan-t5's gated GELU, as llama.cpp runs it; ReLU otherwise),
/// `encoder_only` for the encoder alone.
pub(crate) fn config_fields(
    c: &mut Map<String, Json>,
    metadata: &Metadata,
    key: &dyn Fn(&str) -> String,
    gated: bool,
    encoder_only: bool,
) {
    use crate::gguf_kv::{float, int};
    for (gguf, hf) in [
        ("context_length", "n_positions"),
        ("embedding_length", "d_model"),
        ("feed_forward_length", "d_ff"),
        ("block_count", "num_layers"),
        ("decoder_block_count", "num_decoder_layers"),
        ("attention.head_count", "num_heads"),
        ("attention.key_length", "d_kv"),
        (
            "attention.relative_buckets_count",
            "relative_attention_num_buckets",
        ),
        ("decoder_start_token_id", "decoder_start_token_id"),
    ] {
        if let Some(v) = int(metadata, &key(gguf)) {
            c.insert(hf.into(), json!(v));
        }
    }
    if let Some(eps) = float(metadata, &key("attention.layer_norm_epsilon")) {
        c.insert("layer_norm_epsilon".into(), json!(eps));
    }
    let (proj, act) = if gated {
        ("gated-gelu", "gelu_new")
    } else {
        ("relu", "relu")
    };
    c.insert("feed_forward_proj".into(), json!(proj));
    c.insert("dense_act_fn".into(), json!(act));
    c.insert("is_gated_act".into(), json!(gated));
    c.insert("is_encoder_decoder".into(), json!(!encoder_only));
    // llama.cpp never scales the decoder's output by d_model^-0.5, tied or
    // not; transformers 5 scales unless the config says the embeddings are
    // untied (it ties them in any case).
    c.insert("tie_word_embeddings".into(), json!(false));
    // T5 names its head width d_kv.
    c.remove("head_dim");
}

/// Whether HF tensors `names` are UMT5's: relative position buckets in a
/// block past the first (T5 has them in block 0 only).
pub(crate) fn is_umt5<'a>(mut names: impl Iterator<Item = &'a str>) -> bool {
    names.any(|n| {
        n.ends_with("SelfAttention.relative_attention_bias.weight")
            && !n.starts_with("encoder.block.0.")
            && !n.starts_with("decoder.block.0.")
    })
}

/// T5's vocabulary as `T5Model.set_vocab` writes it.
pub(crate) struct T5Vocab {
    tokens: Vec<String>,
    scores: Vec<f32>,
    types: Vec<i32>,
    spec: Spec,
    special: Vec<(&'static str, u64)>,
    add: Vec<(&'static str, bool)>,
}

/// Reads the Unigram vocabulary of a T5 folder (`tokenizer.model`, else
/// `spiece.model`; `added_tokens.json` over it; special ids as gguf-py's
/// SpecialVocab finds them), padded to config.json's vocab_size.
pub(crate) fn vocab(input: &Input, config: &Json, tok_config: &Json, max_tokens: u64) -> Result<T5Vocab> {
    let model = input
        .sibling("tokenizer.model")
        .or_else(|_| input.sibling("spiece.model"))
        .map_err(|_| {
            Error::unsupported(
                code::TOKENIZER,
                format!(
                    "{}: no tokenizer.model or spiece.model beside it",
                    input.name.display()
                ),
            )
        })?;
    let spec = sentencepiece::spec(&model.bytes)?;
    if !spec.unigram {
        return Err(Error::unsupported(
            code::TOKENIZER,
            format!(
                "{}: a BPE SentencePiece T5 (Pile-T5) is not converted yet",
                model.name.display()
            ),
        ));
    }
    let pieces = sentencepiece::pieces(&model.bytes, max_tokens.saturating_mul(4).max(1024))?;
    let n = config
        .get("vocab_size")
        .and_then(Json::as_u64)
        .unwrap_or(pieces.len() as u64);
    if n > max_tokens {
        return Err(Error::unsupported(
            code::MODEL_INCONSISTENT,
            format!(
                "{}: {n} tokens exceed the model's {max_tokens}",
                model.name.display()
            ),
        ));
    }
    let n = n as usize;
    let mut tokens: Vec<String> = (0..n).map(|i| format!("[PAD{i}]")).collect();
    let mut scores = vec![-10000.0f32; n];
    let mut types = vec![5i32; n];
    for (i, p) in pieces.iter().enumerate().take(n) {
        tokens[i] = p.text.clone();
        scores[i] = p.score;
        // Unknown, control, unused and byte as SentencePiece says, the rest normal.
        types[i] = if matches!(p.kind, 2 | 3 | 5 | 6) {
            p.kind
        } else {
            1
        };
    }
    if let Ok(file) = input.sibling("added_tokens.json") {
        let added: Json = serde_json::from_slice(&file.bytes).map_err(|e| {
            Error::unsupported(code::TOKENIZER, format!("{}: not JSON: {e}", file.name.display()))
        })?;
        for (text, id) in added.as_object().into_iter().flatten() {
            if let Some(id) = id.as_u64().map(|i| i as usize).filter(|&i| i < n) {
                tokens[id] = text.clone();
                scores[id] = -1000.0;
                types[id] = 4;
            }
        }
    }
    // SpecialVocab reads tokenizer.json's added tokens and post-processor.
    let tokenizer_json: Json = match input.sibling("tokenizer.json") {
        Ok(f) => serde_json::from_slice(&f.bytes).unwrap_or(Json::Null),
        Err(_) => Json::Null,
    };
    let added: Vec<&Json> = tokenizer_json["added_tokens"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let tj = json!({"post_processor": tokenizer_json["post_processor"]});
    let (special, add) = crate::bpe_vocab::specials(&tj, tok_config, config, &added);
    Ok(T5Vocab {
        tokens,
        scores,
        types,
        spec,
        special,
        add,
    })
}

impl T5Vocab {
    /// The number of tokens.
    pub(crate) fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Writes `tokenizer.ggml.*` in the reference's order.
    pub(crate) fn write(self, m: &mut Metadata) {
        m.insert("tokenizer.ggml.model", Value::Str("t5".into()));
        m.insert("tokenizer.ggml.pre", Value::Str("default".into()));
        m.insert(
            "tokenizer.ggml.tokens",
            Value::Array(Array::from(self.tokens.iter().collect::<Strings>())),
        );
        m.insert("tokenizer.ggml.scores", Value::Array(Array::F32(self.scores)));
        m.insert("tokenizer.ggml.token_type", Value::Array(Array::I32(self.types)));
        m.insert(
            "tokenizer.ggml.add_space_prefix",
            Value::Bool(self.spec.add_dummy_prefix),
        );
        m.insert(
            "tokenizer.ggml.remove_extra_whitespaces",
            Value::Bool(self.spec.remove_extra_whitespaces),
        );
        if !self.spec.charsmap.is_empty() {
            m.insert(
                "tokenizer.ggml.precompiled_charsmap",
                Value::Array(Array::U8(self.spec.charsmap)),
            );
        }
        crate::bpe_vocab::write_specials(m, self.special, self.add);
    }
}

/// The Unigram `tokenizer.json` transformers' T5 tokenizer has for the
/// vocabulary in `metadata`: pieces with their scores, the precompiled
/// normalizer, whitespace split and Metaspace, `</s>` appended.
pub(crate) fn tokenizer_json(metadata: &Metadata, tokens: &[&str], types: &[i64]) -> Result<Json> {
    use crate::gguf_kv::{array, boolean, int};
    use base64::Engine as _;
    let scores: Vec<f64> = match array(metadata, "tokenizer.ggml.scores") {
        Some(a) if a.len() == tokens.len() => a.iter().map(|v| crate::tokenizer::value_float(&v)).collect(),
        _ => {
            return Err(Error::unsupported(
                code::TOKENIZER,
                "a Unigram vocabulary needs one tokenizer.ggml.scores value per token",
            ))
        }
    };
    let vocab: Vec<Json> = tokens.iter().zip(&scores).map(|(t, s)| json!([t, s])).collect();
    let id = |k: &str| int(metadata, &format!("tokenizer.ggml.{k}")).and_then(|i| usize::try_from(i).ok());
    let unk = id("unknown_token_id");
    let added: Vec<Json> = tokens
        .iter()
        .zip(types)
        .enumerate()
        .filter(|(_, (_, ty))| matches!(**ty, 2..=4))
        .map(|(i, (t, ty))| {
            json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": *ty != 4})
        })
        .collect();
    let normalizer = match array(metadata, "tokenizer.ggml.precompiled_charsmap") {
        Some(Array::U8(bytes)) if !bytes.is_empty() => json!({
            "type": "Precompiled",
            "precompiled_charsmap": base64::engine::general_purpose::STANDARD.encode(bytes),
        }),
        _ => Json::Null,
    };
    let prepend = match boolean(metadata, "tokenizer.ggml.add_space_prefix").unwrap_or(true) {
        true => "always",
        false => "never",
    };
    let metaspace =
        json!({"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": prepend, "split": true});
    let pre_tokenizer = match boolean(metadata, "tokenizer.ggml.remove_extra_whitespaces").unwrap_or(true) {
        true => {
            json!({"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, metaspace.clone()]})
        }
        false => metaspace.clone(),
    };
    let eos = id("eos_token_id").and_then(|i| tokens.get(i).map(|t| (i, *t)));
    let add_eos = boolean(metadata, "tokenizer.ggml.add_eos_token").unwrap_or(true);
    let post_processor = match (eos, add_eos) {
        (Some((i, t)), true) => {
            let a = json!({"Sequence": {"id": "A", "type_id": 0}});
            let b = json!({"Sequence": {"id": "B", "type_id": 0}});
            let e = json!({"SpecialToken": {"id": t, "type_id": 0}});
            json!({"type": "TemplateProcessing", "single": [a, e], "pair": [a, e, b, e],
                   "special_tokens": {t: {"id": t, "ids": [i], "tokens": [t]}}})
        }
        _ => Json::Null,
    };
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": normalizer,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": post_processor,
        "decoder": metaspace,
        "model": {"type": "Unigram", "unk_id": unk, "vocab": vocab, "byte_fallback": false},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t5_names_map_both_ways() {
        for (hf, g, gated) in [
            (
                "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                "enc.blk.0.attn_rel_b.weight",
                true,
            ),
            (
                "decoder.block.3.layer.1.EncDecAttention.o.weight",
                "dec.blk.3.cross_attn_o.weight",
                true,
            ),
            (
                "decoder.block.1.layer.2.DenseReluDense.wi_1.weight",
                "dec.blk.1.ffn_up.weight",
                true,
            ),
            (
                "encoder.block.2.layer.1.DenseReluDense.wi.weight",
                "enc.blk.2.ffn_up.weight",
                false,
            ),
            ("encoder.final_layer_norm.weight", "enc.output_norm.weight", true),
            ("lm_head.weight", "output.weight", true),
            ("shared.weight", "token_embd.weight", true),
        ] {
            assert_eq!(gguf_name(hf).as_deref(), Some(g), "{hf}");
            assert_eq!(hf_name(g, gated).as_deref(), Some(hf), "{g}");
        }
        assert_eq!(
            gguf_name("encoder.embed_tokens.weight").as_deref(),
            Some("token_embd.weight")
        );
        assert_eq!(gguf_name("encoder.block.x.layer.0.layer_norm.weight"), None);
        assert_eq!(block_of("dec.blk.12.ffn_up.weight"), Some("dec.blk.12."));
        assert_eq!(block_of("token_embd.weight"), None);
    }
}
