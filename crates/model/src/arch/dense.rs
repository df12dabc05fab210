//! The tables of dense (non-MoE) architectures: one `Arch` each.

use super::{Arch, FusedExperts, Key, QkvRegroup, VocabStyle};

/// The order most converters write (llama's base class), without its two extras.
const BASE_KEYS: &[Key] = &[
    Key::BlockCount,
    Key::ContextLength,
    Key::EmbeddingLength,
    Key::FeedForwardLength,
    Key::HeadCount,
    Key::HeadCountKv,
    Key::RopeFreqBase,
    Key::RmsEps,
    Key::KeyValueLength,
    Key::FileType,
];

/// Llama's blocks, which Qwen 2 shares (its Q/K/V biases map by suffix).
const LLAMA_BLOCKS: &[(&str, &str)] = LLAMA.blocks;

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
    block_prefix: "model.layers.",
    dropped: &["rotary_emb.inv_freq"],
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
    keys: &[
        Key::BlockCount,
        Key::ContextLength,
        Key::EmbeddingLength,
        Key::FeedForwardLength,
        Key::HeadCount,
        Key::HeadCountKv,
        Key::RopeFreqBase,
        Key::RmsEps,
        Key::KeyValueLength,
        Key::FileType,
        Key::VocabSize,
        Key::RopeDimensionCount,
    ],
    no_space_prefix: false,
    norm_offset: false,
    vocab: VocabStyle::Llama,
    partial_rotary: false,
    experts: &[],
    expert_count_field: "",
    eps_field: "",
    bias_flags: &[],
    special_overrides: &[],
    transposed: &[],
    config_aliases: &[],
    ffn_multiple: 0,
    fused_experts: FusedExperts::None,
    bare: &[],
    rotary_dim_field: "",
    qkv_regroup: QkvRegroup::None,
};

/// Qwen 2 (and 2.5): Llama's layout with Q/K/V biases and no Q/K permutation.
pub const QWEN2: Arch = Arch {
    gguf: "qwen2",
    model_type: "qwen2",
    hf_class: "Qwen2ForCausalLM",
    globals: LLAMA.globals,
    blocks: LLAMA_BLOCKS,
    block_prefix: "model.layers.",
    dropped: &["rotary_emb.inv_freq"],
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
    keys: BASE_KEYS,
    no_space_prefix: false,
    norm_offset: false,
    vocab: VocabStyle::Llama,
    partial_rotary: false,
    experts: &[],
    expert_count_field: "",
    eps_field: "",
    bias_flags: &[],
    special_overrides: &[],
    transposed: &[],
    config_aliases: &[],
    ffn_multiple: 0,
    fused_experts: FusedExperts::None,
    bare: &[],
    rotary_dim_field: "",
    qkv_regroup: QkvRegroup::None,
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
    block_prefix: "model.layers.",
    dropped: &["rotary_emb.inv_freq"],
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
    keys: BASE_KEYS,
    no_space_prefix: false,
    norm_offset: false,
    vocab: VocabStyle::Llama,
    partial_rotary: false,
    experts: &[],
    expert_count_field: "",
    eps_field: "",
    bias_flags: &[],
    special_overrides: &[],
    transposed: &[],
    config_aliases: &[],
    ffn_multiple: 0,
    fused_experts: FusedExperts::None,
    bare: &[],
    rotary_dim_field: "",
    qkv_regroup: QkvRegroup::None,
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
    block_prefix: "model.layers.",
    dropped: &["rotary_emb.inv_freq"],
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
    keys: &[
        Key::BlockCount,
        Key::ContextLength,
        Key::EmbeddingLength,
        Key::FeedForwardLength,
        Key::HeadCount,
        Key::HeadCountKv,
        Key::RopeFreqBase,
        Key::RopeFreqBaseSwa,
        Key::RmsEps,
        Key::KeyValueLengthAlways,
        Key::FileType,
        Key::SlidingWindow,
    ],
    no_space_prefix: true,
    norm_offset: true,
    vocab: VocabStyle::Gemma,
    partial_rotary: false,
    experts: &[],
    expert_count_field: "",
    eps_field: "",
    bias_flags: &[],
    special_overrides: &[],
    transposed: &[],
    config_aliases: &[],
    ffn_multiple: 0,
    fused_experts: FusedExperts::None,
    bare: &[],
    rotary_dim_field: "",
    qkv_regroup: QkvRegroup::None,
};

/// Gemma 2: tied embeddings, four zero-centred norms per block, logit
/// soft-capping, alternating sliding-window layers (no rope key: default theta).
pub const GEMMA2: Arch = Arch {
    gguf: "gemma2",
    model_type: "gemma2",
    hf_class: "Gemma2ForCausalLM",
    globals: LLAMA.globals,
    blocks: &[
        ("attn_norm", "input_layernorm"),
        ("attn_q", "self_attn.q_proj"),
        ("attn_k", "self_attn.k_proj"),
        ("attn_v", "self_attn.v_proj"),
        ("attn_output", "self_attn.o_proj"),
        ("post_attention_norm", "post_attention_layernorm"),
        ("ffn_norm", "pre_feedforward_layernorm"),
        ("post_ffw_norm", "post_feedforward_layernorm"),
        ("ffn_gate", "mlp.gate_proj"),
        ("ffn_up", "mlp.up_proj"),
        ("ffn_down", "mlp.down_proj"),
    ],
    block_prefix: "model.layers.",
    dropped: &["rotary_emb.inv_freq"],
    permute_qk: false,
    defaults: &[
        ("hidden_activation", "\"gelu_pytorch_tanh\""),
        ("query_pre_attn_scalar", "256"),
        ("attention_bias", "false"),
        ("attention_dropout", "0.0"),
        ("initializer_range", "0.02"),
        ("use_cache", "true"),
    ],
    keys: &[
        Key::ContextLength,
        Key::EmbeddingLength,
        Key::BlockCount,
        Key::FeedForwardLength,
        Key::HeadCount,
        Key::HeadCountKv,
        Key::RmsEps,
        Key::KeyValueLengthAlways,
        Key::FileType,
        Key::AttnLogitSoftcap,
        Key::FinalLogitSoftcap,
        Key::SlidingWindow,
    ],
    no_space_prefix: true,
    norm_offset: true,
    vocab: VocabStyle::Gemma,
    partial_rotary: false,
    experts: &[],
    expert_count_field: "",
    eps_field: "",
    bias_flags: &[],
    special_overrides: &[],
    transposed: &[],
    config_aliases: &[],
    ffn_multiple: 0,
    fused_experts: FusedExperts::None,
    bare: &[],
    rotary_dim_field: "",
    qkv_regroup: QkvRegroup::None,
};

/// Phi-3: fused QKV (`attn_qkv`) and gate/up (`ffn_up`) projections, kept
/// fused on both sides.
pub const PHI3: Arch = Arch {
    gguf: "phi3",
    model_type: "phi3",
    hf_class: "Phi3ForCausalLM",
    globals: LLAMA.globals,
    blocks: &[
        ("attn_norm", "input_layernorm"),
        ("attn_qkv", "self_attn.qkv_proj"),
        ("attn_output", "self_attn.o_proj"),
        ("ffn_norm", "post_attention_layernorm"),
        ("ffn_up", "mlp.gate_up_proj"),
        ("ffn_down", "mlp.down_proj"),
    ],
    block_prefix: "model.layers.",
    dropped: &["rotary_emb.inv_freq"],
    permute_qk: false,
    defaults: &[
        ("hidden_act", "\"silu\""),
        ("attention_dropout", "0.0"),
        ("embd_pdrop", "0.0"),
        ("resid_pdrop", "0.0"),
        ("sliding_window", "null"),
        ("initializer_range", "0.02"),
        ("use_cache", "true"),
    ],
    keys: &[
        Key::ContextLength,
        Key::OriginalContextLength,
        Key::EmbeddingLength,
        Key::FeedForwardLength,
        Key::BlockCount,
        Key::HeadCount,
        Key::HeadCountKv,
        Key::RmsEps,
        Key::RopeDimensionCount,
        Key::RopeFreqBase,
        Key::FileType,
        Key::SlidingWindowOrZero,
    ],
    no_space_prefix: false,
    norm_offset: false,
    vocab: VocabStyle::Phi3,
    partial_rotary: true,
    experts: &[],
    expert_count_field: "",
    eps_field: "",
    bias_flags: &[],
    special_overrides: &[],
    transposed: &[],
    config_aliases: &[],
    ffn_multiple: 0,
    fused_experts: FusedExperts::None,
    bare: &[],
    rotary_dim_field: "",
    qkv_regroup: QkvRegroup::None,
};

/// BERT (an encoder, as embedding models are): LayerNorm with biases,
/// learned position and token-type embeddings, no output head.
pub const BERT: Arch = Arch {
    gguf: "bert",
    model_type: "bert",
    hf_class: "BertModel",
    globals: &[
        ("token_embd", "embeddings.word_embeddings"),
        ("position_embd", "embeddings.position_embeddings"),
        ("token_types", "embeddings.token_type_embeddings"),
        ("token_embd_norm", "embeddings.LayerNorm"),
    ],
    blocks: &[
        ("attn_q", "attention.self.query"),
        ("attn_k", "attention.self.key"),
        ("attn_v", "attention.self.value"),
        ("attn_output", "attention.output.dense"),
        ("attn_output_norm", "attention.output.LayerNorm"),
        ("ffn_up", "intermediate.dense"),
        ("ffn_down", "output.dense"),
        ("layer_output_norm", "output.LayerNorm"),
    ],
    block_prefix: "encoder.layer.",
    dropped: &[
        "embeddings.position_ids",
        "pooler.dense.weight",
        "pooler.dense.bias",
    ],
    permute_qk: false,
    defaults: &[
        ("hidden_act", "\"gelu\""),
        ("hidden_dropout_prob", "0.1"),
        ("attention_probs_dropout_prob", "0.1"),
        ("initializer_range", "0.02"),
        ("position_embedding_type", "\"absolute\""),
        ("use_cache", "true"),
    ],
    keys: &[
        Key::BlockCount,
        Key::ContextLength,
        Key::EmbeddingLength,
        Key::FeedForwardLength,
        Key::HeadCount,
        Key::LayerNormEps,
        Key::FileType,
        Key::NotCausal,
    ],
    no_space_prefix: false,
    norm_offset: false,
    vocab: VocabStyle::Llama,
    partial_rotary: false,
    experts: &[],
    expert_count_field: "",
    eps_field: "",
    bias_flags: &[],
    special_overrides: &[],
    transposed: &[],
    config_aliases: &[],
    ffn_multiple: 0,
    fused_experts: FusedExperts::None,
    bare: &[],
    rotary_dim_field: "",
    qkv_regroup: QkvRegroup::None,
};

/// Mistral: Llama's layout under its own class; llama.cpp calls it `llama`
/// (so a GGUF of it comes back as [`LLAMA`], which transformers runs alike).
pub const MISTRAL: Arch = Arch {
    model_type: "mistral",
    hf_class: "MistralForCausalLM",
    defaults: &[
        ("hidden_act", "\"silu\""),
        ("attention_dropout", "0.0"),
        ("initializer_range", "0.02"),
        ("sliding_window", "null"),
        ("use_cache", "true"),
    ],
    ..LLAMA
};

/// OLMo 2: no pre-norms; RMS norms after attention and after the MLP, and
/// on the whole Q and K projections (not per head); no Q/K permutation.
pub const OLMO2: Arch = Arch {
    gguf: "olmo2",
    model_type: "olmo2",
    hf_class: "Olmo2ForCausalLM",
    blocks: &[
        ("attn_q", "self_attn.q_proj"),
        ("attn_k", "self_attn.k_proj"),
        ("attn_v", "self_attn.v_proj"),
        ("attn_output", "self_attn.o_proj"),
        ("attn_q_norm", "self_attn.q_norm"),
        ("attn_k_norm", "self_attn.k_norm"),
        ("post_attention_norm", "post_attention_layernorm"),
        ("post_ffw_norm", "post_feedforward_layernorm"),
        ("ffn_gate", "mlp.gate_proj"),
        ("ffn_up", "mlp.up_proj"),
        ("ffn_down", "mlp.down_proj"),
    ],
    permute_qk: false,
    defaults: &[
        ("hidden_act", "\"silu\""),
        ("attention_bias", "false"),
        ("attention_dropout", "0.0"),
        ("initializer_range", "0.02"),
        ("use_cache", "true"),
    ],
    keys: BASE_KEYS,
    ..LLAMA
};

/// Granite 3: Llama's layout (Q/K permuted) scaled by four multipliers.
pub const GRANITE: Arch = Arch {
    gguf: "granite",
    model_type: "granite",
    hf_class: "GraniteForCausalLM",
    defaults: &[
        ("hidden_act", "\"silu\""),
        ("attention_bias", "false"),
        ("mlp_bias", "false"),
        ("attention_dropout", "0.0"),
        ("initializer_range", "0.02"),
        ("use_cache", "true"),
    ],
    keys: &[
        Key::BlockCount,
        Key::ContextLength,
        Key::EmbeddingLength,
        Key::FeedForwardLength,
        Key::HeadCount,
        Key::HeadCountKv,
        Key::RopeFreqBase,
        Key::RmsEps,
        Key::FileType,
        Key::VocabSize,
        Key::RopeDimensionCount,
        Key::GraniteScales,
    ],
    ..LLAMA
};

/// SmolLM3: Llama's layout (Q/K permuted); llama.cpp skips rotary
/// embeddings on every fourth layer by itself, as `no_rope_layer_interval` 4 says.
pub const SMOLLM3: Arch = Arch {
    gguf: "smollm3",
    model_type: "smollm3",
    hf_class: "SmolLM3ForCausalLM",
    defaults: &[
        ("hidden_act", "\"silu\""),
        ("attention_bias", "false"),
        ("mlp_bias", "false"),
        ("attention_dropout", "0.0"),
        ("initializer_range", "0.02"),
        ("no_rope_layer_interval", "4"),
        ("use_cache", "true"),
    ],
    ..LLAMA
};

/// Nemotron (Minitron): LayerNorm1p with biases (llama.cpp stores the
/// weights as `w + 1`), a squared-ReLU MLP without a gate, partial rotary
/// embeddings; pad 0 and unk 1 whatever the tokenizer says.
pub const NEMOTRON: Arch = Arch {
    gguf: "nemotron",
    model_type: "nemotron",
    hf_class: "NemotronForCausalLM",
    blocks: &[
        ("attn_norm", "input_layernorm"),
        ("attn_q", "self_attn.q_proj"),
        ("attn_k", "self_attn.k_proj"),
        ("attn_v", "self_attn.v_proj"),
        ("attn_output", "self_attn.o_proj"),
        ("ffn_norm", "post_attention_layernorm"),
        ("ffn_up", "mlp.up_proj"),
        ("ffn_down", "mlp.down_proj"),
    ],
    permute_qk: false,
    defaults: &[
        ("hidden_act", "\"relu2\""),
        ("attention_bias", "false"),
        ("mlp_bias", "false"),
        ("attention_dropout", "0.0"),
        ("initializer_range", "0.0134"),
        ("use_cache", "true"),
    ],
    keys: &[
        Key::BlockCount,
        Key::ContextLength,
        Key::EmbeddingLength,
        Key::FeedForwardLength,
        Key::HeadCount,
        Key::HeadCountKv,
        Key::RopeFreqBase,
        Key::RmsEps,
        Key::KeyValueLength,
        Key::FileType,
        Key::VocabSize,
        Key::LayerNormEps,
        Key::RopeDimensionCount,
        Key::RopeScalingType,
    ],
    norm_offset: true,
    partial_rotary: true,
    eps_field: "norm_eps",
    special_overrides: &[("padding", 0), ("unknown", 1)],
    ..LLAMA
};

/// StableLM 2: LayerNorm with biases, Q/K/V biases, a quarter of each
/// head rotary, no Q/K permutation.
pub const STABLELM: Arch = Arch {
    gguf: "stablelm",
    model_type: "stablelm",
    hf_class: "StableLmForCausalLM",
    permute_qk: false,
    defaults: &[
        ("hidden_act", "\"silu\""),
        ("qk_layernorm", "false"),
        ("hidden_dropout", "0.0"),
        ("attention_dropout", "0.0"),
        ("initializer_range", "0.02"),
        ("use_cache", "true"),
    ],
    keys: &[
        Key::ContextLength,
        Key::EmbeddingLength,
        Key::BlockCount,
        Key::FeedForwardLength,
        Key::RopeDimensionCount,
        Key::HeadCount,
        Key::HeadCountKv,
        Key::ParallelResidual,
        Key::LayerNormEps,
        Key::FileType,
    ],
    partial_rotary: true,
    bias_flags: &[("use_qkv_bias", "self_attn.q_proj.bias")],
    ..LLAMA
};

/// StarCoder 2: LayerNorm with biases, biases on every projection, a
/// GELU MLP (`c_fc`, `c_proj`), no Q/K permutation.
pub const STARCODER2: Arch = Arch {
    gguf: "starcoder2",
    model_type: "starcoder2",
    hf_class: "Starcoder2ForCausalLM",
    blocks: &[
        ("attn_norm", "input_layernorm"),
        ("attn_q", "self_attn.q_proj"),
        ("attn_k", "self_attn.k_proj"),
        ("attn_v", "self_attn.v_proj"),
        ("attn_output", "self_attn.o_proj"),
        ("ffn_norm", "post_attention_layernorm"),
        ("ffn_up", "mlp.c_fc"),
        ("ffn_down", "mlp.c_proj"),
    ],
    permute_qk: false,
    defaults: &[
        ("hidden_act", "\"gelu_pytorch_tanh\""),
        ("attention_dropout", "0.0"),
        ("residual_dropout", "0.0"),
        ("embedding_dropout", "0.0"),
        ("initializer_range", "0.018042"),
        ("sliding_window", "null"),
        ("use_cache", "true"),
    ],
    keys: &[
        Key::BlockCount,
        Key::ContextLength,
        Key::EmbeddingLength,
        Key::FeedForwardLength,
        Key::HeadCount,
        Key::HeadCountKv,
        Key::RopeFreqBase,
        Key::LayerNormEps,
        Key::FileType,
    ],
    eps_field: "norm_epsilon",
    bias_flags: &[("use_bias", "self_attn.q_proj.bias")],
    ..LLAMA
};

/// GPT-2: fused QKV, learned positions, LayerNorm with biases, tied
/// embeddings; its Conv1D matrices are stored `[in, out]` and llama.cpp
/// holds them transposed; config.json names its fields `n_*`.
pub const GPT2: Arch = Arch {
    gguf: "gpt2",
    model_type: "gpt2",
    hf_class: "GPT2LMHeadModel",
    globals: &[
        ("token_embd", "transformer.wte"),
        ("position_embd", "transformer.wpe"),
        ("output_norm", "transformer.ln_f"),
    ],
    blocks: &[
        ("attn_norm", "ln_1"),
        ("attn_qkv", "attn.c_attn"),
        ("attn_output", "attn.c_proj"),
        ("ffn_norm", "ln_2"),
        ("ffn_up", "mlp.c_fc"),
        ("ffn_down", "mlp.c_proj"),
    ],
    block_prefix: "transformer.h.",
    dropped: &[".attn.bias", ".attn.masked_bias"],
    permute_qk: false,
    defaults: &[
        ("activation_function", "\"gelu_new\""),
        ("attn_pdrop", "0.1"),
        ("embd_pdrop", "0.1"),
        ("resid_pdrop", "0.1"),
        ("initializer_range", "0.02"),
        ("scale_attn_weights", "true"),
        ("use_cache", "true"),
    ],
    keys: &[
        Key::BlockCount,
        Key::ContextLength,
        Key::EmbeddingLength,
        Key::FeedForwardLength,
        Key::HeadCount,
        Key::LayerNormEps,
        Key::FileType,
    ],
    transposed: &[
        "attn.c_attn.weight",
        "attn.c_proj.weight",
        "mlp.c_fc.weight",
        "mlp.c_proj.weight",
    ],
    config_aliases: &[
        ("max_position_embeddings", "n_ctx"),
        ("max_position_embeddings", "n_positions"),
        ("hidden_size", "n_embd"),
        ("num_hidden_layers", "n_layer"),
        ("num_attention_heads", "n_head"),
        ("intermediate_size", "n_inner"),
        ("layer_norm_eps", "layer_norm_epsilon"),
    ],
    ffn_multiple: 4,
    ..LLAMA
};

/// Falcon (7B, 40B): fused QKV whose rows llama.cpp regroups, LayerNorm with
/// biases, a 4x GELU MLP, parallel attention and MLP.
pub const FALCON: Arch = Arch {
    gguf: "falcon",
    model_type: "falcon",
    hf_class: "FalconForCausalLM",
    globals: &[
        ("token_embd", "transformer.word_embeddings"),
        ("output_norm", "transformer.ln_f"),
        ("output", "lm_head"),
    ],
    blocks: &[
        ("attn_norm", "input_layernorm"),
        ("attn_qkv", "self_attention.query_key_value"),
        ("attn_output", "self_attention.dense"),
        ("ffn_up", "mlp.dense_h_to_4h"),
        ("ffn_down", "mlp.dense_4h_to_h"),
    ],
    block_prefix: "transformer.h.",
    permute_qk: false,
    defaults: &[
        // What the GGUF's context_length always says.
        ("max_position_embeddings", "2048"),
        ("parallel_attn", "true"),
        ("new_decoder_architecture", "false"),
        ("bias", "false"),
        ("alibi", "false"),
        ("attention_dropout", "0.0"),
        ("hidden_dropout", "0.0"),
        ("initializer_range", "0.02"),
        ("use_cache", "true"),
    ],
    keys: &[
        Key::FalconLayout,
        Key::EmbeddingLength,
        Key::FeedForwardLength,
        Key::BlockCount,
        Key::HeadCount,
        Key::HeadCountKv,
        Key::LayerNormEps,
        Key::FileType,
    ],
    config_aliases: &[
        ("num_key_value_heads", "num_kv_heads"),
        ("layer_norm_eps", "layer_norm_epsilon"),
        ("intermediate_size", "ffn_hidden_size"),
    ],
    ffn_multiple: 4,
    qkv_regroup: QkvRegroup::Falcon,
    ..LLAMA
};

/// BLOOM: fused QKV per head (regrouped by llama.cpp), ALiBi positions, an
/// embedding LayerNorm, LayerNorm with biases, tied embeddings.
pub const BLOOM: Arch = Arch {
    gguf: "bloom",
    model_type: "bloom",
    hf_class: "BloomForCausalLM",
    globals: &[
        ("token_embd", "transformer.word_embeddings"),
        ("token_embd_norm", "transformer.word_embeddings_layernorm"),
        ("output_norm", "transformer.ln_f"),
    ],
    blocks: &[
        ("attn_norm", "input_layernorm"),
        ("attn_qkv", "self_attention.query_key_value"),
        ("attn_output", "self_attention.dense"),
        ("ffn_norm", "post_attention_layernorm"),
        ("ffn_up", "mlp.dense_h_to_4h"),
        ("ffn_down", "mlp.dense_4h_to_h"),
    ],
    block_prefix: "transformer.h.",
    permute_qk: false,
    defaults: &[
        ("apply_residual_connection_post_layernorm", "false"),
        ("attention_dropout", "0.0"),
        ("hidden_dropout", "0.0"),
        ("initializer_range", "0.02"),
        ("slow_but_exact", "false"),
        ("use_cache", "true"),
    ],
    keys: &[
        Key::BloomContextLength,
        Key::EmbeddingLength,
        Key::FeedForwardLength,
        Key::BlockCount,
        Key::HeadCount,
        Key::HeadCountKvAll,
        Key::LayerNormEps,
        Key::FileType,
    ],
    config_aliases: &[
        ("num_attention_heads", "n_head"),
        ("num_hidden_layers", "n_layer"),
        ("layer_norm_eps", "layer_norm_epsilon"),
        // BLOOM's MLP is always 4x wide, and its positions ALiBi: no
        // fields for either.
        ("intermediate_size", ""),
        ("rope_parameters", ""),
    ],
    ffn_multiple: 4,
    qkv_regroup: QkvRegroup::Bloom,
    ..LLAMA
};

/// Ministral 3 (text; llama.cpp's `mistral3`): Llama's layout with YaRN
/// rope and Llama 4's attention temperature scaling.
pub const MINISTRAL3: Arch = Arch {
    gguf: "mistral3",
    model_type: "ministral3",
    hf_class: "Ministral3ForCausalLM",
    defaults: &[
        ("hidden_act", "\"silu\""),
        ("attention_dropout", "0.0"),
        ("initializer_range", "0.02"),
        ("sliding_window", "null"),
        ("use_cache", "true"),
    ],
    keys: &[
        Key::BlockCount,
        Key::ContextLength,
        Key::EmbeddingLength,
        Key::FeedForwardLength,
        Key::HeadCount,
        Key::HeadCountKv,
        Key::RopeYarn,
        Key::RopeFreqBase,
        Key::RmsEps,
        Key::KeyValueLength,
        Key::FileType,
        Key::VocabSize,
        Key::RopeDimensionCount,
        Key::Ministral3Scales,
    ],
    ..LLAMA
};

/// Qwen3.5's blocks: gated delta-net layers (`linear_attn`, llama.cpp's
/// `ssm_*`) and full-attention ones with an output gate folded into Q
/// (twice the rows), Q/K norms, zero-centred norms stored `w + 1` but for
/// the delta-net's gated one (`gated_delta.rs`).
const QWEN35_BLOCKS: &[(&str, &str)] = &[
    ("attn_norm", "input_layernorm"),
    ("attn_q", "self_attn.q_proj"),
    ("attn_k", "self_attn.k_proj"),
    ("attn_v", "self_attn.v_proj"),
    ("attn_output", "self_attn.o_proj"),
    ("attn_q_norm", "self_attn.q_norm"),
    ("attn_k_norm", "self_attn.k_norm"),
    ("post_attention_norm", "post_attention_layernorm"),
    ("attn_qkv", "linear_attn.in_proj_qkv"),
    ("attn_gate", "linear_attn.in_proj_z"),
    ("ssm_alpha", "linear_attn.in_proj_a"),
    ("ssm_beta", "linear_attn.in_proj_b"),
    ("ssm_conv1d", "linear_attn.conv1d"),
    ("ssm_norm", "linear_attn.norm"),
    ("ssm_out", "linear_attn.out_proj"),
    ("ffn_gate", "mlp.gate_proj"),
    ("ffn_up", "mlp.up_proj"),
    ("ffn_down", "mlp.down_proj"),
];

/// Qwen3.5 and 3.6 dense (text; llama.cpp's `qwen35`): three gated
/// delta-net layers to one full-attention layer, interleaved M-RoPE over a
/// quarter of each head, and the multi-token-prediction layer its
/// checkpoints carry (`mtp.*` ⇄ the blocks past the model's, `mtp.rs`).
pub const QWEN35: Arch = Arch {
    gguf: "qwen35",
    model_type: "qwen3_5_text",
    hf_class: "Qwen3_5ForCausalLM",
    globals: LLAMA.globals,
    blocks: QWEN35_BLOCKS,
    block_prefix: "model.layers.",
    dropped: &["rotary_emb.inv_freq"],
    permute_qk: false,
    defaults: &[
        ("hidden_act", "\"silu\""),
        ("attention_bias", "false"),
        ("attention_dropout", "0.0"),
        ("initializer_range", "0.02"),
        ("mtp_use_dedicated_embeddings", "false"),
        ("use_cache", "true"),
    ],
    keys: &[
        Key::BlockCount,
        Key::ContextLength,
        Key::EmbeddingLength,
        Key::FeedForwardLength,
        Key::HeadCount,
        Key::HeadCountKv,
        Key::MropeSections,
        Key::RopeFreqBase,
        Key::RmsEps,
        Key::KeyValueLength,
        Key::FileType,
        Key::GatedDeltaNet,
    ],
    no_space_prefix: false,
    norm_offset: true,
    vocab: VocabStyle::Llama,
    partial_rotary: true,
    experts: &[],
    expert_count_field: "",
    eps_field: "",
    bias_flags: &[],
    special_overrides: &[],
    transposed: &[],
    config_aliases: &[],
    ffn_multiple: 0,
    fused_experts: FusedExperts::None,
    bare: &[
        ("linear_attn.A_log", "ssm_a"),
        ("linear_attn.dt_bias", "ssm_dt.bias"),
    ],
    rotary_dim_field: "",
    qkv_regroup: QkvRegroup::None,
};

/// LFM2 and LFM2.5 (Liquid; llama.cpp's `lfm2`): gated short-convolution
/// layers beside attention layers with Q/K norms, the final norm named as
/// an embedding norm, tied embeddings (`short_conv.rs`: per-layer KV
/// heads, the convolution squeezed, the FFN width the config derives).
pub const LFM2: Arch = Arch {
    gguf: "lfm2",
    model_type: "lfm2",
    hf_class: "Lfm2ForCausalLM",
    globals: &[
        ("token_embd", "model.embed_tokens"),
        ("token_embd_norm", "model.embedding_norm"),
        ("output", "lm_head"),
    ],
    blocks: &[
        ("attn_norm", "operator_norm"),
        ("attn_q", "self_attn.q_proj"),
        ("attn_k", "self_attn.k_proj"),
        ("attn_v", "self_attn.v_proj"),
        ("attn_output", "self_attn.out_proj"),
        ("attn_q_norm", "self_attn.q_layernorm"),
        ("attn_k_norm", "self_attn.k_layernorm"),
        ("shortconv.conv", "conv.conv"),
        ("shortconv.in_proj", "conv.in_proj"),
        ("shortconv.out_proj", "conv.out_proj"),
        ("ffn_norm", "ffn_norm"),
        ("ffn_gate", "feed_forward.w1"),
        ("ffn_up", "feed_forward.w3"),
        ("ffn_down", "feed_forward.w2"),
    ],
    defaults: &[
        // The width written is the final one: nothing to adjust.
        ("block_auto_adjust_ff_dim", "false"),
        ("block_multiple_of", "256"),
        ("block_ffn_dim_multiplier", "1.0"),
        ("full_attn_idxs", "null"),
        ("initializer_range", "0.02"),
        ("use_cache", "true"),
    ],
    keys: &[
        Key::BlockCount,
        Key::ContextLength,
        Key::EmbeddingLength,
        Key::FeedForwardLength,
        Key::HeadCount,
        Key::ShortConvHeadsKv,
        Key::RopeFreqBase,
        Key::RmsEps,
        Key::FileType,
        Key::VocabSize,
        Key::ShortConvCache,
    ],
    permute_qk: false,
    eps_field: "norm_eps",
    bias_flags: &[("conv_bias", "conv.in_proj.bias")],
    ..LLAMA
};

/// Mamba (state-spaces/mamba-*-hf): selective state-space layers only
/// (`mamba.rs`), tied embeddings.
pub const MAMBA: Arch = Arch {
    gguf: "mamba",
    model_type: "mamba",
    hf_class: "MambaForCausalLM",
    globals: &[
        ("token_embd", "backbone.embeddings"),
        ("output_norm", "backbone.norm_f"),
        ("output", "lm_head"),
    ],
    blocks: &[
        ("attn_norm", "norm"),
        ("ssm_in", "mixer.in_proj"),
        ("ssm_conv1d", "mixer.conv1d"),
        ("ssm_x", "mixer.x_proj"),
        ("ssm_dt", "mixer.dt_proj"),
        ("ssm_out", "mixer.out_proj"),
    ],
    block_prefix: "backbone.layers.",
    permute_qk: false,
    defaults: &[
        ("hidden_act", "\"silu\""),
        ("initializer_range", "0.1"),
        ("rescale_prenorm_residual", "false"),
        ("residual_in_fp32", "true"),
        ("time_step_floor", "0.0001"),
        ("time_step_init_scheme", "\"random\""),
        ("time_step_max", "0.1"),
        ("time_step_min", "0.001"),
        ("time_step_scale", "1.0"),
        ("use_associative_scan", "true"),
        ("use_bias", "false"),
        ("use_cache", "true"),
        ("use_mambapy", "false"),
    ],
    keys: &[Key::Mamba, Key::FileType],
    bias_flags: &[("use_conv_bias", "mixer.conv1d.bias")],
    bare: &[("mixer.A_log", "ssm_a"), ("mixer.D", "ssm_d")],
    ..LLAMA
};

/// Gemma 4 (text): Gemma 3's blocks with per-layer input embeddings
/// (`per_layer_*`), a layer scalar per block, norms stored as they are (no
/// `w + 1`), sliding and full layers of their own head widths, the
/// full-attention rope's frequencies generated (`gemma4.rs`); its
/// vocabulary from tokenizer.json (`VocabStyle::Gemma4`).
pub const GEMMA4: Arch = Arch {
    gguf: "gemma4",
    model_type: "gemma4_text",
    hf_class: "Gemma4ForCausalLM",
    globals: &[
        ("token_embd", "model.embed_tokens"),
        ("per_layer_token_embd", "model.embed_tokens_per_layer"),
        ("per_layer_model_proj", "model.per_layer_model_projection"),
        ("per_layer_proj_norm", "model.per_layer_projection_norm"),
        ("output_norm", "model.norm"),
        ("output", "lm_head"),
    ],
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
        ("inp_gate", "per_layer_input_gate"),
        ("proj", "per_layer_projection"),
        ("post_norm", "post_per_layer_input_norm"),
        // The MoE block beside the MLP (26B-A4B): its router and norms.
        ("ffn_gate_inp", "router.proj"),
        ("pre_ffw_norm_2", "pre_feedforward_layernorm_2"),
        ("post_ffw_norm_1", "post_feedforward_layernorm_1"),
        ("post_ffw_norm_2", "post_feedforward_layernorm_2"),
    ],
    defaults: &[
        ("hidden_activation", "\"gelu_pytorch_tanh\""),
        ("attention_bias", "false"),
        ("attention_dropout", "0.0"),
        ("attention_k_eq_v", "false"),
        ("enable_moe_block", "false"),
        ("use_double_wide_mlp", "false"),
        ("num_experts", "null"),
        ("top_k_experts", "null"),
        ("moe_intermediate_size", "null"),
        ("final_logit_softcapping", "null"),
        ("use_bidirectional_attention", "null"),
        ("initializer_range", "0.02"),
        ("use_cache", "true"),
    ],
    keys: &[
        Key::BlockCount,
        Key::ContextLength,
        Key::EmbeddingLength,
        Key::FeedForwardLength,
        Key::HeadCount,
        Key::HeadCountKv,
        Key::RopeFreqBase,
        Key::RopeFreqBaseSwa,
        Key::RmsEps,
        Key::ExpertCounts,
        Key::KeyValueLengthAlways,
        Key::FileType,
        Key::FinalLogitSoftcap,
        Key::SlidingWindow,
        Key::Gemma4Tail,
    ],
    no_space_prefix: false,
    norm_offset: false,
    vocab: VocabStyle::Gemma4,
    // The MoE block's experts are stacked in the checkpoints already
    // (gate and up fused): they map as they are, with the router's scales.
    bare: &[
        ("layer_scalar", "layer_output_scale.weight"),
        ("experts.gate_up_proj", "ffn_gate_up_exps.weight"),
        ("experts.down_proj", "ffn_down_exps.weight"),
        ("router.per_expert_scale", "ffn_down_exps.scale"),
        ("router.scale", "ffn_gate_inp.scale"),
    ],
    ..GEMMA3
};

/// T5, flan-t5 and UMT5 (encoder-decoder; llama.cpp's `t5`): names,
/// keys and the Unigram vocabulary in `t5.rs` (two block namespaces the
/// tables here do not have).
pub const T5: Arch = Arch {
    gguf: "t5",
    model_type: "t5",
    hf_class: "T5ForConditionalGeneration",
    globals: &[],
    blocks: &[],
    block_prefix: "encoder.block.",
    permute_qk: false,
    defaults: &[
        ("classifier_dropout", "0.0"),
        ("dropout_rate", "0.1"),
        ("initializer_factor", "1.0"),
        ("is_decoder", "false"),
        ("relative_attention_max_distance", "128"),
        ("use_cache", "true"),
    ],
    keys: &[Key::T5, Key::FileType],
    ..LLAMA
};

/// UMT5 (relative position buckets in every block): T5's names and keys;
/// llama.cpp converts it as `t5`, and a GGUF whose every block has its own
/// buckets comes back as UMT5 (`t5.rs`).
pub const UMT5: Arch = Arch {
    model_type: "umt5",
    hf_class: "UMT5ForConditionalGeneration",
    ..T5
};

/// mT5 (T5 v1.1's layout): T5's names and keys; llama.cpp converts it as
/// `t5`, so a GGUF of it comes back as the T5 it is.
pub const MT5: Arch = Arch {
    model_type: "mt5",
    hf_class: "MT5ForConditionalGeneration",
    ..T5
};

/// T5's encoder alone (`T5EncoderModel`: sentence-t5, the text encoders of
/// FLUX and SD3; llama.cpp's `t5encoder`): T5's names and vocabulary, its
/// keys without the decoder's.
pub const T5ENCODER: Arch = Arch {
    gguf: "t5encoder",
    hf_class: "T5EncoderModel",
    ..T5
};

/// Nemotron-NAS (DeciLM; llama.cpp's `deci`): Llama's blocks, each layer's
/// attention and FFN from `block_configs` (`deci.rs`), an attention
/// replaced by one linear map named `linear_attn`.
pub const DECI: Arch = Arch {
    gguf: "deci",
    model_type: "nemotron-nas",
    hf_class: "DeciLMForCausalLM",
    blocks: &[
        ("attn_norm", "input_layernorm"),
        ("attn_q", "self_attn.q_proj"),
        ("attn_k", "self_attn.k_proj"),
        ("attn_v", "self_attn.v_proj"),
        ("attn_output", "self_attn.o_proj"),
        ("attn_output", "self_attn.linear_attn"),
        ("ffn_norm", "post_attention_layernorm"),
        ("ffn_gate", "mlp.gate_proj"),
        ("ffn_up", "mlp.up_proj"),
        ("ffn_down", "mlp.down_proj"),
    ],
    defaults: &[
        ("hidden_act", "\"silu\""),
        ("initializer_range", "0.02"),
        ("use_cache", "true"),
    ],
    keys: &[Key::Deci, Key::FileType, Key::VocabSize, Key::RopeDimensionCount],
    vocab: VocabStyle::LlamaHf,
    ..LLAMA
};
