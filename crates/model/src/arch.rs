//! One table per architecture: how GGUF and Hugging Face name the same
//! tensors and hyper-parameters, and which transforms sit between them.
//! Facts from gguf-py's `constants.py`/`tensor_mapping.py`, llama.cpp's
//! `convert_hf_to_gguf.py` and transformers' GGUF loader.

/// A hyper-parameter: the GGUF key (after `{arch}.`) and the config.json field.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    /// GGUF key without the `{arch}.` prefix, e.g. `attention.head_count`.
    pub gguf: &'static str,
    /// config.json field, e.g. `num_attention_heads`.
    pub hf: &'static str,
    /// How the value is written in config.json.
    pub kind: ParamKind,
}

/// The JSON type a hyper-parameter takes in config.json.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// An integer.
    Int,
    /// A float (GGUF F32, widened to f64 as transformers reads it).
    Float,
}

/// What stands between the two worlds for one architecture.
#[derive(Debug)]
pub struct Arch {
    /// `general.architecture` in GGUF.
    pub gguf: &'static str,
    /// `model_type` in config.json.
    pub model_type: &'static str,
    /// `architectures[0]` in config.json.
    pub hf_class: &'static str,
    /// Tensors outside the blocks: (GGUF name, HF name), both with `.weight`/`.bias`.
    pub globals: &'static [(&'static str, &'static str)],
    /// Per-block tensors: (GGUF suffix after `blk.N.`, HF suffix after `model.layers.N.`),
    /// without `.weight`/`.bias`.
    pub blocks: &'static [(&'static str, &'static str)],
    /// Hyper-parameters every file of this architecture carries.
    pub params: &'static [Param],
    /// Q and K rows are permuted for llama.cpp's rotary layout.
    pub permute_qk: bool,
    /// config.json fields transformers' model class expects, with their values
    /// for a file that says nothing else.
    pub defaults: &'static [(&'static str, &'static str)],
    /// Keys the reference converter writes for this architecture beyond the
    /// common ones (each at its place in the reference's order).
    pub extra_keys: &'static [ExtraKey],
    /// RMSNorm weights are zero-centred: llama.cpp stores `w + 1` (Gemma).
    pub norm_offset: bool,
    /// How transformers' GGUF loader rebuilds a SentencePiece vocabulary.
    pub vocab: VocabStyle,
}

/// transformers' builder for a SentencePiece vocabulary of this architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VocabStyle {
    /// `LlamaTokenizer`: Metaspace, merges by score.
    Llama,
    /// `GemmaTokenizer`: spaces replaced by a normalizer, merges by position.
    Gemma,
}

/// A GGUF key only some architectures' converters write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtraKey {
    /// `{arch}.vocab_size`: the vocabulary's length.
    VocabSize,
    /// `{arch}.rope.dimension_count`: the head dimension.
    RopeDimensionCount,
    /// `{arch}.rope.freq_base_swa`: the sliding layers' rope theta (after `rope.freq_base`).
    RopeFreqBaseSwa,
    /// `{arch}.attention.sliding_window` (after `general.file_type`).
    SlidingWindow,
    /// `{arch}.attention.key_length`/`value_length` even where config.json
    /// has no `head_dim` (Gemma's default 256).
    KeyLengthAlways,
    /// `tokenizer.ggml.add_space_prefix = false` (after the special tokens).
    NoSpacePrefix,
}

const LLAMA_PARAMS: &[Param] = &[
    Param {
        gguf: "context_length",
        hf: "max_position_embeddings",
        kind: ParamKind::Int,
    },
    Param {
        gguf: "embedding_length",
        hf: "hidden_size",
        kind: ParamKind::Int,
    },
    Param {
        gguf: "block_count",
        hf: "num_hidden_layers",
        kind: ParamKind::Int,
    },
    Param {
        gguf: "feed_forward_length",
        hf: "intermediate_size",
        kind: ParamKind::Int,
    },
    Param {
        gguf: "attention.head_count",
        hf: "num_attention_heads",
        kind: ParamKind::Int,
    },
    Param {
        gguf: "attention.head_count_kv",
        hf: "num_key_value_heads",
        kind: ParamKind::Int,
    },
    Param {
        gguf: "attention.layer_norm_rms_epsilon",
        hf: "rms_norm_eps",
        kind: ParamKind::Float,
    },
];

/// Llama and the models that share its layout (SmolLM, TinyLlama, Mistral).
pub const LLAMA: Arch = Arch {
    gguf: "llama",
    model_type: "llama",
    hf_class: "LlamaForCausalLM",
    globals: &[
        ("token_embd", "model.embed_tokens"),
        ("output_norm", "model.norm"),
        ("output", "lm_head"),
    ],
    blocks: &[
        ("attn_norm", "input_layernorm"),
        ("attn_q", "self_attn.q_proj"),
        ("attn_k", "self_attn.k_proj"),
        ("attn_v", "self_attn.v_proj"),
        ("attn_output", "self_attn.o_proj"),
        ("ffn_norm", "post_attention_layernorm"),
        ("ffn_gate", "mlp.gate_proj"),
        ("ffn_up", "mlp.up_proj"),
        ("ffn_down", "mlp.down_proj"),
    ],
    params: LLAMA_PARAMS,
    permute_qk: true,
    defaults: &[
        ("hidden_act", "\"silu\""),
        ("attention_bias", "false"),
        ("mlp_bias", "false"),
        ("attention_dropout", "0.0"),
        ("initializer_range", "0.02"),
        ("pretraining_tp", "1"),
        ("use_cache", "true"),
    ],
    extra_keys: &[ExtraKey::VocabSize, ExtraKey::RopeDimensionCount],
    norm_offset: false,
    vocab: VocabStyle::Llama,
};

/// Llama's blocks, which Qwen 2 shares (its Q/K/V biases map by suffix).
const LLAMA_BLOCKS: &[(&str, &str)] = LLAMA.blocks;

/// Qwen 2 (and 2.5): Llama's layout with Q/K/V biases and no Q/K permutation.
pub const QWEN2: Arch = Arch {
    gguf: "qwen2",
    model_type: "qwen2",
    hf_class: "Qwen2ForCausalLM",
    globals: LLAMA.globals,
    blocks: LLAMA_BLOCKS,
    params: LLAMA_PARAMS,
    permute_qk: false,
    defaults: &[
        ("hidden_act", "\"silu\""),
        ("attention_dropout", "0.0"),
        ("initializer_range", "0.02"),
        ("use_sliding_window", "false"),
        ("sliding_window", "null"),
        ("max_window_layers", "28"),
        ("use_cache", "true"),
    ],
    extra_keys: &[],
    norm_offset: false,
    vocab: VocabStyle::Llama,
};

/// Qwen 3: Qwen 2 without biases, with RMS norms on Q and K per head.
pub const QWEN3: Arch = Arch {
    gguf: "qwen3",
    model_type: "qwen3",
    hf_class: "Qwen3ForCausalLM",
    globals: LLAMA.globals,
    blocks: &[
        ("attn_norm", "input_layernorm"),
        ("attn_q", "self_attn.q_proj"),
        ("attn_k", "self_attn.k_proj"),
        ("attn_v", "self_attn.v_proj"),
        ("attn_output", "self_attn.o_proj"),
        ("attn_q_norm", "self_attn.q_norm"),
        ("attn_k_norm", "self_attn.k_norm"),
        ("ffn_norm", "post_attention_layernorm"),
        ("ffn_gate", "mlp.gate_proj"),
        ("ffn_up", "mlp.up_proj"),
        ("ffn_down", "mlp.down_proj"),
    ],
    params: LLAMA_PARAMS,
    permute_qk: false,
    defaults: &[
        ("hidden_act", "\"silu\""),
        ("attention_bias", "false"),
        ("attention_dropout", "0.0"),
        ("initializer_range", "0.02"),
        ("use_sliding_window", "false"),
        ("sliding_window", "null"),
        ("max_window_layers", "28"),
        ("use_cache", "true"),
    ],
    extra_keys: &[],
    norm_offset: false,
    vocab: VocabStyle::Llama,
};

/// Gemma 3 (text): tied embeddings, four zero-centred norms per block plus
/// Q/K norms, sliding-window layers with their own rope theta.
pub const GEMMA3: Arch = Arch {
    gguf: "gemma3",
    model_type: "gemma3_text",
    hf_class: "Gemma3ForCausalLM",
    globals: LLAMA.globals,
    blocks: &[
        ("attn_norm", "input_layernorm"),
        ("attn_q", "self_attn.q_proj"),
        ("attn_k", "self_attn.k_proj"),
        ("attn_v", "self_attn.v_proj"),
        ("attn_output", "self_attn.o_proj"),
        ("attn_q_norm", "self_attn.q_norm"),
        ("attn_k_norm", "self_attn.k_norm"),
        ("post_attention_norm", "post_attention_layernorm"),
        ("ffn_norm", "pre_feedforward_layernorm"),
        ("post_ffw_norm", "post_feedforward_layernorm"),
        ("ffn_gate", "mlp.gate_proj"),
        ("ffn_up", "mlp.up_proj"),
        ("ffn_down", "mlp.down_proj"),
    ],
    params: LLAMA_PARAMS,
    permute_qk: false,
    defaults: &[
        ("hidden_activation", "\"gelu_pytorch_tanh\""),
        ("query_pre_attn_scalar", "256"),
        ("attention_bias", "false"),
        ("attention_dropout", "0.0"),
        ("final_logit_softcapping", "null"),
        ("attn_logit_softcapping", "null"),
        ("initializer_range", "0.02"),
        ("use_bidirectional_attention", "false"),
        ("use_cache", "true"),
    ],
    extra_keys: &[
        ExtraKey::RopeFreqBaseSwa,
        ExtraKey::KeyLengthAlways,
        ExtraKey::SlidingWindow,
        ExtraKey::NoSpacePrefix,
    ],
    norm_offset: true,
    vocab: VocabStyle::Gemma,
};

/// Every architecture with a table, by GGUF name.
pub const ARCHES: &[&Arch] = &[&LLAMA, &QWEN2, &QWEN3, &GEMMA3];

/// The table for `general.architecture` = `name`.
pub fn by_gguf_name(name: &str) -> Option<&'static Arch> {
    ARCHES.iter().copied().find(|a| a.gguf == name)
}

/// The table for config.json's `model_type` = `name`.
pub fn by_model_type(name: &str) -> Option<&'static Arch> {
    ARCHES.iter().copied().find(|a| a.model_type == name)
}

/// The names of every architecture with a table.
pub fn known() -> Vec<&'static str> {
    ARCHES.iter().map(|a| a.gguf).collect()
}

impl Arch {
    /// The HF name of GGUF tensor `name`, or `None` if the table has none.
    pub fn hf_name(&self, name: &str) -> Option<String> {
        let (stem, suffix) = split_suffix(name)?;
        if let Some(rest) = stem.strip_prefix("blk.") {
            let (block, part) = rest.split_once('.')?;
            block.parse::<u32>().ok()?;
            let (_, hf) = self.blocks.iter().find(|(g, _)| *g == part)?;
            return Some(format!("model.layers.{block}.{hf}.{suffix}"));
        }
        let (_, hf) = self.globals.iter().find(|(g, _)| *g == stem)?;
        Some(format!("{hf}.{suffix}"))
    }

    /// The GGUF name of HF tensor `name`, or `None` if the table has none.
    pub fn gguf_name(&self, name: &str) -> Option<String> {
        let (stem, suffix) = split_suffix(name)?;
        if let Some(rest) = stem.strip_prefix("model.layers.") {
            let (block, part) = rest.split_once('.')?;
            block.parse::<u32>().ok()?;
            let (g, _) = self.blocks.iter().find(|(_, h)| *h == part)?;
            return Some(format!("blk.{block}.{g}.{suffix}"));
        }
        let (g, _) = self.globals.iter().find(|(_, h)| *h == stem)?;
        Some(format!("{g}.{suffix}"))
    }
}

/// `a.b.weight` → (`a.b`, `weight`), for `weight` and `bias` only.
fn split_suffix(name: &str) -> Option<(&str, &str)> {
    let (stem, suffix) = name.rsplit_once('.')?;
    matches!(suffix, "weight" | "bias").then_some((stem, suffix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_both_ways() {
        for (g, h) in [
            ("token_embd.weight", "model.embed_tokens.weight"),
            ("blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight"),
            ("blk.11.ffn_down.weight", "model.layers.11.mlp.down_proj.weight"),
            ("output.weight", "lm_head.weight"),
            ("output_norm.weight", "model.norm.weight"),
        ] {
            assert_eq!(LLAMA.hf_name(g).as_deref(), Some(h));
            assert_eq!(LLAMA.gguf_name(h).as_deref(), Some(g));
        }
        for unknown in [
            "blk.x.attn_q.weight",
            "blk.0.attn_qq.weight",
            "rope_freqs.weight",
            "output",
        ] {
            assert_eq!(LLAMA.hf_name(unknown), None, "{unknown}");
        }
    }
}
