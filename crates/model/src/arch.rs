//! One table per architecture: how GGUF and Hugging Face name the same
//! tensors and hyper-parameters, and which transforms sit between them.
//! Facts from gguf-py's `constants.py`/`tensor_mapping.py`, llama.cpp's
//! `convert_hf_to_gguf.py` and transformers' GGUF loader.

// The tables themselves, dense and mixture-of-experts families apart;
// this file holds what they are made of and how names map.
mod dense;
mod moe;

pub use dense::*;
pub use moe::*;

/// A hyper-parameter that is one config.json field both ways: the GGUF key
/// (after `{arch}.`) and the field. Both directions read it from the
/// architecture's [`Key`] list ([`Key::param`], [`Arch::params`]), so a
/// table states each key once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// Per-block tensors: (GGUF suffix after `blk.N.`, HF suffix after
    /// `{block_prefix}N.`), without `.weight`/`.bias`.
    pub blocks: &'static [(&'static str, &'static str)],
    /// Where Hugging Face's blocks live: `model.layers.` (decoders),
    /// `encoder.layer.` (BERT).
    pub block_prefix: &'static str,
    /// HF tensors the reference converter drops (suffix or prefix matches).
    pub dropped: &'static [&'static str],
    /// Q and K rows are permuted for llama.cpp's rotary layout.
    pub permute_qk: bool,
    /// config.json fields transformers' model class expects, with their values
    /// for a file that says nothing else.
    pub defaults: &'static [(&'static str, &'static str)],
    /// The hyper-parameter keys the reference converter writes, in its order
    /// (between `general.size_label` and `general.quantization_version`).
    pub keys: &'static [Key],
    /// `tokenizer.ggml.add_space_prefix = false` after the special tokens.
    pub no_space_prefix: bool,
    /// RMSNorm weights are zero-centred: llama.cpp stores `w + 1` (Gemma).
    pub norm_offset: bool,
    /// How transformers' GGUF loader rebuilds a SentencePiece vocabulary.
    pub vocab: VocabStyle,
    /// config.json states the rotary fraction of a head (`rope_parameters.
    /// partial_rotary_factor`, from `rope.dimension_count`), as Phi-3's does.
    pub partial_rotary: bool,
    /// Mixture-of-experts layers: each GGUF 3-D tensor (after `blk.N.`,
    /// without `.weight`) and the per-expert HF tensor it stacks (after the
    /// block prefix and number, `{}` the expert), in the order the
    /// reference converter emits them. Empty for dense models.
    pub experts: &'static [(&'static str, &'static str)],
    /// config.json's expert count field as transformers 5 writes it (read
    /// from any of [`EXPERT_COUNT_FIELDS`]).
    pub expert_count_field: &'static str,
    /// config.json's name for the norm epsilon when not the key's own
    /// (`norm_eps`, `norm_epsilon`); empty for the usual one.
    pub eps_field: &'static str,
    /// config.json flags that say whether tensors exist, set from the
    /// weights: (field, HF tensor suffix in the first block).
    pub bias_flags: &'static [(&'static str, &'static str)],
    /// Special token ids the reference converter sets whatever the
    /// tokenizer says: (`tokenizer.ggml.{kind}_token_id`, id).
    pub special_overrides: &'static [(&'static str, u64)],
    /// HF matrices stored transposed (`[in, out]`, GPT-2's Conv1D), by
    /// suffix after the block: transposed both ways.
    pub transposed: &'static [&'static str],
    /// config.json fields under the family's own names: (the name the
    /// tables use, the family's), read from the first present, all written
    /// (an empty name: the family has no such field, none is written).
    pub config_aliases: &'static [(&'static str, &'static str)],
    /// `intermediate_size` when config.json leaves it null: this many times
    /// `hidden_size` (GPT-2's `n_inner`); 0 for none.
    pub ffn_multiple: u64,
    /// Experts whose gate and up are one fused tensor (`interleaved.rs`),
    /// instead of per expert or apart.
    pub fused_experts: FusedExperts,
    /// HF tensors (after the block) without a `.weight`/`.bias` suffix and
    /// the GGUF name (after `blk.N.`, with its suffix) they have: gpt-oss's
    /// `self_attn.sinks`, MiniMax-M2's `e_score_correction_bias`.
    pub bare: &'static [(&'static str, &'static str)],
    /// config.json's field for the rotary dimensions (`rope.dimension_count`),
    /// where the family states it so (MiniMax-M2's `rotary_dim`); empty for none.
    pub rotary_dim_field: &'static str,
    /// How a fused QKV's head blocks are regrouped between HF and GGUF
    /// (GGUF holds all queries, then all keys, then all values).
    pub qkv_regroup: QkvRegroup,
}

/// How a family fuses its experts' gate and up projections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FusedExperts {
    /// Not fused (or no experts).
    None,
    /// gpt-oss: one `[experts, in, 2 x out]` tensor, gate and up columns
    /// alternating, down `[experts, in, out]`, biases.
    Interleaved,
    /// Granite MoE (JetMoE's layout): one `[experts, 2 x out, in]`
    /// `input_linear`, gate rows then up rows.
    Halves,
}

/// The HF order of a fused QKV's head blocks, where it is not GGUF's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QkvRegroup {
    /// Already GGUF's order (or no fused QKV).
    None,
    /// Falcon: per KV group, its queries, a key and a value ("jploski").
    Falcon,
    /// BLOOM: per head, its query, key and value.
    Bloom,
}

/// transformers' builder for a SentencePiece vocabulary of this architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VocabStyle {
    /// `LlamaTokenizer`: Metaspace, merges by score.
    Llama,
    /// `GemmaTokenizer`: spaces replaced by a normalizer, merges by position.
    Gemma,
    /// Llama's, with the prefix space from a normalizer instead of Metaspace.
    Phi3,
    /// Gemma 4's: `tokenizer.json` (BPE with byte fallback) read as gguf-py's
    /// `LlamaHfVocab` into `tokenizer.ggml.model = gemma4` with its merges;
    /// rebuilt as Gemma's.
    Gemma4,
    /// DeciLM's: `tokenizer.json` read as `LlamaHfVocab` into `llama` (but
    /// Llama 3's 128256-token vocabulary, read as byte-level BPE); rebuilt
    /// as Llama's.
    LlamaHf,
}

/// One hyper-parameter key of the GGUF, as the reference converter writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// `{arch}.block_count` from `num_hidden_layers`.
    BlockCount,
    /// `{arch}.context_length` from `max_position_embeddings`.
    ContextLength,
    /// `{arch}.embedding_length` from `hidden_size`.
    EmbeddingLength,
    /// `{arch}.feed_forward_length` from `intermediate_size`.
    FeedForwardLength,
    /// `{arch}.attention.head_count` from `num_attention_heads`.
    HeadCount,
    /// `{arch}.attention.head_count_kv` from `num_key_value_heads`.
    HeadCountKv,
    /// `{arch}.rope.freq_base`: the (full-attention) rope theta.
    RopeFreqBase,
    /// `{arch}.rope.freq_base_swa`: the sliding layers' rope theta.
    RopeFreqBaseSwa,
    /// `{arch}.attention.layer_norm_rms_epsilon` from `rms_norm_eps`.
    RmsEps,
    /// `{arch}.attention.key_length`/`value_length`, where config.json has `head_dim`.
    KeyValueLength,
    /// The same, always (`head_dim` defaulting to 256, as Gemma's converters do).
    KeyValueLengthAlways,
    /// `general.file_type`.
    FileType,
    /// `{arch}.vocab_size`: the vocabulary's length.
    VocabSize,
    /// `{arch}.rope.dimension_count`: the rotary part of a head.
    RopeDimensionCount,
    /// `{arch}.attention.sliding_window`, unless every layer is global.
    SlidingWindow,
    /// `{arch}.attention.sliding_window`, 0 when config.json has none (Phi-3).
    SlidingWindowOrZero,
    /// `{arch}.attn_logit_softcapping`.
    AttnLogitSoftcap,
    /// `{arch}.final_logit_softcapping`.
    FinalLogitSoftcap,
    /// `{arch}.rope.scaling.original_context_length`.
    OriginalContextLength,
    /// `{arch}.attention.layer_norm_epsilon` from `layer_norm_eps` (LayerNorm models).
    LayerNormEps,
    /// `{arch}.attention.causal = false` (encoders).
    NotCausal,
    /// `{arch}.expert_count` and `{arch}.expert_used_count` (from the
    /// table's expert count field and `num_experts_per_tok`), where
    /// config.json has them.
    ExpertCounts,
    /// `{arch}.expert_feed_forward_length` from `moe_intermediate_size`.
    ExpertFeedForwardLength,
    /// `{arch}.expert_shared_feed_forward_length` from
    /// `shared_expert_intermediate_size`.
    ExpertSharedFeedForwardLength,
    /// `{arch}.use_parallel_residual` from `use_parallel_residual` (true
    /// when absent).
    ParallelResidual,
    /// `{arch}.rope.scaling.type`: `linear` with its factor where
    /// config.json has one, else `none`.
    RopeScalingType,
    /// YaRN rope scaling, where `rope_parameters.rope_type` says `yarn`:
    /// `rope.scaling.type`, `factor`, `original_context_length`,
    /// `yarn_beta_fast`, `yarn_beta_slow`.
    RopeYarn,
    /// `{arch}.attention.sliding_window` from `sliding_window`, whatever the layers.
    SlidingWindowAlways,
    /// `{arch}.expert_feed_forward_length` from `intermediate_size` (gpt-oss).
    ExpertFeedForwardFromIntermediate,
    /// BLOOM's `context_length`: `seq_length`, else the hidden size (the
    /// reference's fallback).
    BloomContextLength,
    /// `{arch}.attention.head_count_kv` equal to the head count.
    HeadCountKvAll,
    /// `{arch}.attention.head_count_kv` = 1: latent attention is MQA-like
    /// in llama.cpp (DeepSeek).
    HeadCountKvOne,
    /// DeepSeek's `attention.key_length` (`kv_lora_rank + qk_rope_head_dim`)
    /// and `value_length` (`kv_lora_rank`), where the head dims go.
    MlaLengths,
    /// DeepSeek's own keys after the file type: leading dense blocks,
    /// vocabulary size, Q and KV LoRA ranks, the MLA key/value lengths,
    /// expert width, shared experts, routed scale and norm, rotary dims.
    DeepseekTail,
    /// Ministral 3's YaRN log multiplier (`mscale_all_dim`) and Llama 4's
    /// attention temperature scale (`llama_4_scaling_beta`).
    Ministral3Scales,
    /// Falcon's `context_length` (2048, not in its config.json) and its
    /// `tensor_data_layout` (`jploski`: the QKV rows regrouped).
    FalconLayout,
    /// Granite's multipliers, where config.json has them (non-zero):
    /// `attention.scale`, `embedding_scale`, `residual_scale`, `logit_scale`
    /// from [`GRANITE_SCALES`]' fields.
    GraniteScales,
    /// `{arch}.rope.dimension_sections`: M-RoPE's sections from
    /// `rope_parameters.mrope_section`, padded to four.
    MropeSections,
    /// Qwen3.5's keys after the file type (`gated_delta.rs`): the MTP
    /// layer count, the gated delta-net's geometry (`ssm.*`), which layers
    /// are recurrent, the full-attention interval and the rotary width.
    GatedDeltaNet,
    /// LFM2's `attention.head_count_kv`, one per layer: the KV heads on
    /// attention layers, 0 on convolution ones (`short_conv.rs`).
    ShortConvHeadsKv,
    /// LFM2's `shortconv.l_cache` from `conv_L_cache`.
    ShortConvCache,
    /// Mamba's keys, all of them in the reference's order (`mamba.rs`).
    Mamba,
    /// Gemma 4's keys after Gemma 3's (`gemma4.rs`).
    Gemma4Tail,
    /// T5's keys, all of them in the reference's order; its names and
    /// vocabulary come from `t5.rs` too.
    T5,
    /// DeciLM's keys before the file type: per-layer head, KV head and FFN
    /// arrays from `block_configs` (`deci.rs`).
    Deci,
}

/// Granite's scale keys (after `{arch}.`) and the config.json fields they
/// come from, in the reference's order.
pub const GRANITE_SCALES: &[(&str, &str)] = &[
    ("attention.scale", "attention_multiplier"),
    ("embedding_scale", "embedding_multiplier"),
    ("residual_scale", "residual_multiplier"),
    ("logit_scale", "logits_scaling"),
];

impl Key {
    /// The config.json field this key mirrors one to one, if it is such a
    /// key (the others are derived: rope, head dims, file type, vocabulary).
    pub const fn param(self) -> Option<Param> {
        let (gguf, hf, kind) = match self {
            Key::BlockCount => ("block_count", "num_hidden_layers", ParamKind::Int),
            Key::ContextLength => ("context_length", "max_position_embeddings", ParamKind::Int),
            Key::EmbeddingLength => ("embedding_length", "hidden_size", ParamKind::Int),
            Key::FeedForwardLength => ("feed_forward_length", "intermediate_size", ParamKind::Int),
            Key::HeadCount => ("attention.head_count", "num_attention_heads", ParamKind::Int),
            Key::HeadCountKv => ("attention.head_count_kv", "num_key_value_heads", ParamKind::Int),
            Key::RmsEps => (
                "attention.layer_norm_rms_epsilon",
                "rms_norm_eps",
                ParamKind::Float,
            ),
            Key::LayerNormEps => ("attention.layer_norm_epsilon", "layer_norm_eps", ParamKind::Float),
            _ => return None,
        };
        Some(Param { gguf, hf, kind })
    }
}

/// The order config.json lists the mirrored fields in (transformers' own
/// configs); GGUF keys follow [`Arch::keys`] instead.
const CONFIG_ORDER: [Key; 8] = [
    Key::ContextLength,
    Key::EmbeddingLength,
    Key::BlockCount,
    Key::FeedForwardLength,
    Key::HeadCount,
    Key::HeadCountKv,
    Key::RmsEps,
    Key::LayerNormEps,
];

impl Arch {
    /// The hyper-parameters every file of this architecture carries as one
    /// config.json field each, in config.json's order: the keys of
    /// [`Arch::keys`] that mirror a field.
    pub fn params(&self) -> impl Iterator<Item = Param> + '_ {
        CONFIG_ORDER
            .iter()
            .filter(|k| self.keys.contains(k))
            .filter_map(|k| k.param())
    }
}

/// The fields config.json files name the expert count by, in the order
/// the reference converter looks for them.
pub const EXPERT_COUNT_FIELDS: &[&str] = &["num_local_experts", "num_experts", "n_routed_experts"];

/// Every architecture with a table, by GGUF name (the first of a name is
/// its dense form; [`for_gguf`] picks the MoE one by its expert count).
pub const ARCHES: &[&Arch] = &[
    &LLAMA,
    &QWEN2,
    &QWEN3,
    &GEMMA2,
    &GEMMA3,
    &PHI3,
    &BERT,
    &MISTRAL,
    &MIXTRAL,
    &QWEN3MOE,
    &QWEN2MOE,
    &OLMO2,
    &GRANITE,
    &SMOLLM3,
    &OLMOE,
    &NEMOTRON,
    &STABLELM,
    &STARCODER2,
    &GPT2,
    &GPTOSS,
    &FALCON,
    &BLOOM,
    &GRANITEMOE,
    &MINIMAXM2,
    &DEEPSEEK,
    &MINISTRAL3,
    &QWEN35,
    &QWEN35MOE,
    &LFM2,
    &MAMBA,
    &GEMMA4,
    &T5,
    &UMT5,
    &MT5,
    &T5ENCODER,
    &DECI,
    &QWEN3NEXT,
];

/// The table for a GGUF of architecture `name` with `expert_count` experts
/// (llama.cpp's `llama` holds both Llama and Mixtral).
pub fn for_gguf(name: &str, expert_count: Option<i64>) -> Option<&'static Arch> {
    let moe = expert_count.is_some_and(|n| n > 0);
    ARCHES
        .iter()
        .copied()
        .filter(|a| a.gguf == name)
        .find(|a| a.experts.is_empty() != moe)
        .or_else(|| by_gguf_name(name))
}

/// The table for `general.architecture` = `name`.
pub fn by_gguf_name(name: &str) -> Option<&'static Arch> {
    ARCHES.iter().copied().find(|a| a.gguf == name)
}

/// The table for config.json's `model_type` = `name`.
pub fn by_model_type(name: &str) -> Option<&'static Arch> {
    ARCHES.iter().copied().find(|a| a.model_type == name)
}

/// The table for config.json's `model_type` and `architectures[0]`: the
/// one of that class where a model type has several (T5 and its encoder
/// alone), else the model type's.
pub fn by_config(model_type: &str, class: Option<&str>) -> Option<&'static Arch> {
    ARCHES
        .iter()
        .copied()
        .find(|a| a.model_type == model_type && Some(a.hf_class) == class)
        .or_else(|| by_model_type(model_type))
}

/// The names of every architecture with a table.
pub fn known() -> Vec<&'static str> {
    let mut names: Vec<&str> = Vec::new();
    for a in ARCHES {
        if !names.contains(&a.gguf) {
            names.push(a.gguf);
        }
    }
    names
}

impl Arch {
    /// For a stacked expert tensor (`blk.N.ffn_gate_exps.weight`): the HF
    /// name of expert `e`'s slice of it; `None` for any other name.
    pub fn expert_hf_name(&self, name: &str, e: u64) -> Option<String> {
        let (stem, suffix) = split_suffix(name)?;
        let (block, part) = stem.strip_prefix("blk.")?.split_once('.')?;
        block.parse::<u32>().ok()?;
        let (_, hf) = self.experts.iter().find(|(g, _)| *g == part)?;
        let hf = hf.replacen("{}", &e.to_string(), 1);
        Some(format!("{}{block}.{hf}.{suffix}", self.block_prefix))
    }

    /// For an HF per-expert tensor: the stacked GGUF tensor's name, its
    /// block, its place in [`Arch::experts`] and the expert's number.
    pub fn expert_of(&self, name: &str) -> Option<(String, u32, usize, u64)> {
        let (stem, suffix) = split_suffix(name)?;
        let (block, part) = stem.strip_prefix(self.block_prefix)?.split_once('.')?;
        let block = block.parse::<u32>().ok()?;
        self.experts.iter().enumerate().find_map(|(i, (g, hf))| {
            let (before, after) = hf.split_once("{}")?;
            let e = part.strip_prefix(before)?.strip_suffix(after)?;
            if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let e = e.parse::<u64>().ok()?;
            Some((format!("blk.{block}.{g}.{suffix}"), block, i, e))
        })
    }

    /// The HF name of GGUF tensor `name`, or `None` if the table has none.
    pub fn hf_name(&self, name: &str) -> Option<String> {
        // Tensors the table names bare (with their GGUF suffix, if any).
        if let Some((block, part)) = name.strip_prefix("blk.").and_then(|r| r.split_once('.')) {
            if let Some((hf, _)) = self.bare.iter().find(|(_, g)| *g == part) {
                block.parse::<u32>().ok()?;
                return Some(format!("{}{block}.{hf}", self.block_prefix));
            }
        }
        let (stem, suffix) = split_suffix(name)?;
        if let Some(rest) = stem.strip_prefix("blk.") {
            let (block, part) = rest.split_once('.')?;
            block.parse::<u32>().ok()?;
            let (_, hf) = self.blocks.iter().find(|(g, _)| *g == part)?;
            return Some(format!("{}{block}.{hf}.{suffix}", self.block_prefix));
        }
        let (_, hf) = self.globals.iter().find(|(g, _)| *g == stem)?;
        Some(format!("{hf}.{suffix}"))
    }

    /// Whether HF tensor `name` (or GGUF tensor `name` of HF name `hf`) is
    /// one of the table's transposed matrices.
    pub fn is_transposed(&self, hf: &str) -> bool {
        hf.strip_prefix(self.block_prefix)
            .and_then(|rest| rest.split_once('.'))
            .is_some_and(|(_, part)| self.transposed.contains(&part))
    }

    /// config.json with the family's own field names read into the
    /// tables' names (the first present wins), and a null FFN width
    /// derived as the family derives it.
    pub fn normalize_config(&self, config: &serde_json::Value) -> serde_json::Value {
        let mut c = config.clone();
        if let Some(map) = c.as_object_mut() {
            for (standard, own) in self.config_aliases {
                if map.get(*standard).is_none_or(|v| v.is_null()) {
                    if let Some(v) = config.get(*own).filter(|v| !v.is_null()) {
                        map.insert((*standard).to_string(), v.clone());
                    }
                }
            }
            let hidden = map.get("hidden_size").and_then(serde_json::Value::as_u64);
            if let (true, Some(h)) = (self.ffn_multiple > 0, hidden) {
                if map.get("intermediate_size").is_none_or(|v| v.is_null()) {
                    map.insert(
                        "intermediate_size".into(),
                        h.saturating_mul(self.ffn_multiple).into(),
                    );
                }
            }
        }
        c
    }

    /// The GGUF name of HF tensor `name`, or `None` if the table has none.
    pub fn gguf_name(&self, name: &str) -> Option<String> {
        if let Some((block, part)) = name
            .strip_prefix(self.block_prefix)
            .and_then(|r| r.split_once('.'))
        {
            if let Some((_, g)) = self.bare.iter().find(|(h, _)| *h == part) {
                block.parse::<u32>().ok()?;
                return Some(format!("blk.{block}.{g}"));
            }
        }
        let (stem, suffix) = split_suffix(name)?;
        if let Some(rest) = stem.strip_prefix(self.block_prefix) {
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

    /// One table serves both directions: every architecture's config.json
    /// fields are the keys it writes into GGUF that mirror one field.
    #[test]
    fn params_come_from_the_keys() {
        let names = |a: &Arch| a.params().map(|p| p.hf).collect::<Vec<_>>();
        assert_eq!(
            names(&LLAMA),
            [
                "max_position_embeddings",
                "hidden_size",
                "num_hidden_layers",
                "intermediate_size",
                "num_attention_heads",
                "num_key_value_heads",
                "rms_norm_eps"
            ]
        );
        assert_eq!(names(&BERT).last(), Some(&"layer_norm_eps"));
        assert!(!names(&BERT).contains(&"num_key_value_heads"));
        for a in ARCHES {
            for p in a.params() {
                let key = a.keys.iter().find(|k| k.param() == Some(p)).expect(p.hf);
                assert!(CONFIG_ORDER.contains(key), "{}: {}", a.gguf, p.hf);
            }
            let mirrored = a.keys.iter().filter(|k| k.param().is_some()).count();
            assert_eq!(a.params().count(), mirrored, "{}", a.gguf);
        }
        assert_eq!(Key::RopeFreqBase.param(), None);
    }

    /// Experts: per-expert HF names and the stacked GGUF tensor, both ways;
    /// anything but a plain expert number is not an expert.
    #[test]
    fn expert_names_map_both_ways() {
        assert_eq!(
            MIXTRAL.expert_of("model.layers.3.block_sparse_moe.experts.7.w2.weight"),
            Some(("blk.3.ffn_down_exps.weight".to_string(), 3, 1, 7))
        );
        assert_eq!(
            QWEN3MOE
                .expert_hf_name("blk.0.ffn_up_exps.weight", 127)
                .as_deref(),
            Some("model.layers.0.mlp.experts.127.up_proj.weight")
        );
        for not_one in [
            "model.layers.0.mlp.experts..up_proj.weight",
            "model.layers.0.mlp.experts.x.up_proj.weight",
            "model.layers.0.mlp.experts.1.2.up_proj.weight",
            "model.layers.0.mlp.gate.weight",
        ] {
            assert_eq!(QWEN3MOE.expert_of(not_one), None, "{not_one}");
        }
        assert_eq!(QWEN3MOE.expert_hf_name("blk.0.ffn_up.weight", 0), None);
        assert_eq!(for_gguf("llama", Some(8)).map(|a| a.model_type), Some("mixtral"));
        assert_eq!(for_gguf("llama", None).map(|a| a.model_type), Some("llama"));
        assert_eq!(
            for_gguf("qwen3moe", Some(128)).map(|a| a.model_type),
            Some("qwen3_moe")
        );
    }

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
