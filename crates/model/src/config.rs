//! GGUF hyper-parameters as the `config.json` (and `generation_config.json`)
//! transformers reads, per architecture table.

use crate::arch::{Arch, ParamKind};
use crate::gguf_kv::{float, int, strings};
use serde_json::{json, Map, Value as Json};
use tensorcast_core::code;
use tensorcast_core::{DType, Error, Metadata, Result, TensorInfo, Value};

/// The `config.json` for a model of `arch` with GGUF `metadata`, whose
/// converted tensors are `tensors` (HF names).
pub fn config_json(arch: &Arch, metadata: &Metadata, tensors: &[TensorInfo]) -> Result<Json> {
    let key = |k: &str| format!("{}.{k}", arch.gguf);
    let mut c = Map::new();
    c.insert("architectures".into(), json!([arch.hf_class]));
    c.insert("model_type".into(), json!(arch.model_type));
    for p in arch.params() {
        // Per-layer values (Gemma 4's KV heads): the family's fields say them.
        if let Some(Value::Array(_)) = metadata.get(&key(p.gguf)) {
            continue;
        }
        let v = match p.kind {
            ParamKind::Int => int(metadata, &key(p.gguf)).map(|v| json!(v)),
            ParamKind::Float => float(metadata, &key(p.gguf)).map(|v| json!(v)),
        };
        let v = v.ok_or_else(|| {
            Error::unsupported(
                code::NOT_A_MODEL,
                format!(
                    "the GGUF has no {} (needed for {} in config.json)",
                    key(p.gguf),
                    p.hf
                ),
            )
        })?;
        // The epsilon under the architecture's own field name, if it has one.
        let field = match p.gguf.ends_with("epsilon") && !arch.eps_field.is_empty() {
            true => arch.eps_field,
            false => p.hf,
        };
        c.insert(field.into(), v);
    }
    for (field, suffix) in arch.bias_flags {
        let name = format!("{}0.{suffix}", arch.block_prefix);
        c.insert((*field).into(), json!(tensors.iter().any(|t| t.name == name)));
    }
    if let Some(Value::Bool(b)) = metadata.get(&key("use_parallel_residual")) {
        c.insert("use_parallel_residual".into(), json!(b));
    }
    // Only where the GGUF states it; otherwise transformers derives it
    // (hidden / heads), and a folder that never had one keeps it that way.
    if let Some(head_dim) = int(metadata, &key("attention.key_length")) {
        c.insert("head_dim".into(), json!(head_dim));
    }
    let theta = float(metadata, &key("rope.freq_base")).unwrap_or(10000.0);
    let mut rope = json!({"rope_theta": theta, "rope_type": "default"});
    // Rope scaling the GGUF states: linear or YaRN, with their parameters.
    let scaling = crate::gguf_kv::string(metadata, &key("rope.scaling.type"));
    if let (Some(kind @ ("linear" | "yarn")), Some(factor)) =
        (scaling, float(metadata, &key("rope.scaling.factor")))
    {
        rope["rope_type"] = json!(kind);
        rope["factor"] = json!(factor);
        if let Some(n) = int(metadata, &key("rope.scaling.original_context_length")) {
            rope["original_max_position_embeddings"] = json!(n);
        }
        if arch.keys.contains(&crate::arch::Key::Ministral3Scales) {
            // Ministral 3's YaRN: its log multiplier is mscale_all_dim (and
            // mscale, equal in its configs), its temperature Llama 4's beta.
            if let Some(v) = float(metadata, &key("rope.scaling.yarn_log_multiplier")) {
                rope["mscale_all_dim"] = json!(v);
                rope["mscale"] = json!(v);
            }
            if let Some(v) = float(metadata, &key("attention.temperature_scale")) {
                rope["llama_4_scaling_beta"] = json!(v);
            }
            if let Some(n) = int(metadata, &key("context_length")) {
                rope["max_position_embeddings"] = json!(n);
            }
            rope["type"] = json!(kind);
        }
        for (gguf, hf) in [
            ("rope.scaling.yarn_ext_factor", "extrapolation_factor"),
            ("rope.scaling.yarn_attn_factor", "attention_factor"),
            ("rope.scaling.yarn_beta_fast", "beta_fast"),
            ("rope.scaling.yarn_beta_slow", "beta_slow"),
        ] {
            if let Some(v) = float(metadata, &key(gguf)) {
                rope[hf] = json!(v);
            }
        }
    }
    if arch.partial_rotary {
        let hidden = int(metadata, &key("embedding_length")).unwrap_or(0);
        let heads = int(metadata, &key("attention.head_count")).unwrap_or(1).max(1);
        let head_dim = int(metadata, &key("attention.key_length")).unwrap_or(hidden / heads);
        if let (Some(dims), true) = (int(metadata, &key("rope.dimension_count")), head_dim > 0) {
            rope["partial_rotary_factor"] = json!(dims as f64 / head_dim as f64);
        }
    }
    if arch.keys.contains(&crate::arch::Key::DeepseekTail) {
        crate::mla::config_fields(&mut c, metadata, &key);
    }
    let gating = match int(metadata, &key("expert_gating_func")) {
        Some(1) => Some("softmax"),
        Some(2) => Some("sigmoid"),
        Some(4) => Some("sqrtsoftplus"),
        _ => None,
    };
    if let Some(g) = gating {
        c.insert("scoring_func".into(), json!(g));
    }
    if !arch.rotary_dim_field.is_empty() {
        if let Some(dims) = int(metadata, &key("rope.dimension_count")) {
            c.insert(arch.rotary_dim_field.into(), json!(dims));
        }
    }
    // Sliding-window layers with their own theta: one entry per layer type.
    let rope = match float(metadata, &key("rope.freq_base_swa")) {
        Some(swa) => json!({
            "full_attention": rope,
            "sliding_attention": {"rope_theta": swa, "rope_type": "default"},
        }),
        None => rope,
    };
    // Learned positions (BERT, GPT-2) instead of rotary ones, or no
    // attention at all (Mamba): no rope.
    let no_rope = arch.globals.iter().any(|(g, _)| *g == "position_embd")
        || arch.keys.contains(&crate::arch::Key::Mamba)
        || arch.keys.contains(&crate::arch::Key::T5);
    if !no_rope {
        c.insert("rope_parameters".into(), rope);
    }
    // Llama 3.1's rope scaling, recovered from the file's rope_freqs.
    let llama3 = |k: &str| float(metadata, &format!("{}.{k}", crate::to_hf::LLAMA3_KEY));
    if let Some(factor) = llama3("factor") {
        let s = crate::llama3_rope::Scaling {
            factor,
            low_freq_factor: llama3("low_freq_factor").unwrap_or(1.0),
            high_freq_factor: llama3("high_freq_factor").unwrap_or(4.0),
            original_max_position_embeddings: llama3("original_max_position_embeddings").unwrap_or(8192.0),
        };
        c.insert(
            "rope_parameters".into(),
            crate::llama3_rope::rope_parameters(s, theta),
        );
    }
    if arch.keys.contains(&crate::arch::Key::GatedDeltaNet) {
        let qwen35 = arch.keys.contains(&crate::arch::Key::MropeSections);
        crate::gated_delta::config_fields(&mut c, metadata, &key, qwen35);
    }
    if arch.keys.contains(&crate::arch::Key::Mamba) {
        crate::mamba::config_fields(&mut c, metadata, &key);
    }
    if arch.keys.contains(&crate::arch::Key::Deci) {
        crate::deci::config_fields(&mut c, metadata, arch.gguf);
        // DeciLM's own code reads the rope as rope_theta and rope_scaling.
        if let Some(Json::Object(rope)) = c.get("rope_parameters").cloned() {
            let mut scaling = rope.clone();
            if let Some(theta) = scaling.remove("rope_theta") {
                c.insert("rope_theta".into(), theta);
            }
            if scaling.get("rope_type").and_then(Json::as_str) != Some("default") {
                c.insert("rope_scaling".into(), Json::Object(scaling));
            }
        }
    }
    if arch.keys.contains(&crate::arch::Key::ShortConvHeadsKv) {
        crate::short_conv::config_fields(&mut c, metadata, &key);
    }
    // 0 is how Phi-3's converter writes "no window".
    if let Some(w) = int(metadata, &key("attention.sliding_window")).filter(|&w| w > 0) {
        c.insert("sliding_window".into(), json!(w));
    }
    let vocab = int(metadata, &key("vocab_size"))
        .or_else(|| strings(metadata, "tokenizer.ggml.tokens").map(|t| t.len() as i64));
    c.insert("vocab_size".into(), json!(vocab));
    if arch.keys.contains(&crate::arch::Key::Gemma4Tail) {
        // Without per-layer embeddings the field is moot: the vocabulary's
        // size, as Gemma 4's configs give it.
        let per_layer_vocab = tensors
            .iter()
            .find(|t| t.name == "model.embed_tokens_per_layer.weight")
            .and_then(|t| t.shape.first().copied())
            .or_else(|| c.get("vocab_size").and_then(Json::as_u64));
        let fraction = float(metadata, crate::to_hf::ROTARY_FRACTION_KEY);
        // attention_k_eq_v: full layers without a V projection (of those
        // with keys and values of their own: the shared ones have neither).
        let pattern = crate::gguf_kv::array(metadata, &key("attention.sliding_window_pattern"));
        let shared = int(metadata, &key("attention.shared_kv_layers"))
            .unwrap_or(0)
            .max(0) as usize;
        let full_layers: Vec<usize> = match pattern {
            Some(tensorcast_core::Array::Bool(b)) => {
                let own = b.len().saturating_sub(shared);
                b.iter()
                    .take(own)
                    .enumerate()
                    .filter(|(_, &s)| !s)
                    .map(|(i, _)| i)
                    .collect()
            }
            _ => Vec::new(),
        };
        let keys_are_values = full_layers.iter().any(|i| {
            let v = format!("{}{i}.self_attn.v_proj.weight", arch.block_prefix);
            !tensors.iter().any(|t| t.name == v)
        });
        crate::gemma4::config_fields(&mut c, metadata, &key, per_layer_vocab, fraction, keys_are_values);
    }
    for (name, gguf) in [
        ("bos_token_id", "bos_token_id"),
        ("eos_token_id", "eos_token_id"),
        ("pad_token_id", "padding_token_id"),
    ] {
        c.insert(
            name.into(),
            json!(int(metadata, &format!("tokenizer.ggml.{gguf}"))),
        );
    }
    // No separate output matrix: the embedding is reused (llama.cpp's rule).
    let tied = !tensors.iter().any(|t| t.name == "lm_head.weight");
    c.insert("tie_word_embeddings".into(), json!(tied));
    if arch.keys.contains(&crate::arch::Key::T5) {
        let gated = tensors
            .iter()
            .any(|t| t.name.ends_with("DenseReluDense.wi_0.weight"));
        let encoder_only = !tensors.iter().any(|t| t.name.starts_with("decoder."));
        crate::t5::config_fields(&mut c, metadata, &key, gated, encoder_only);
        if crate::t5::is_umt5(tensors.iter().map(|t| t.name.as_str())) {
            c.insert("model_type".into(), json!(crate::arch::UMT5.model_type));
            c.insert("architectures".into(), json!([crate::arch::UMT5.hf_class]));
        }
    }
    c.insert("dtype".into(), json!(dtype_name(tensors)));
    for (gguf, hf) in [
        ("attn_logit_softcapping", "attn_logit_softcapping"),
        ("final_logit_softcapping", "final_logit_softcapping"),
    ] {
        if let Some(v) = float(metadata, &key(gguf)) {
            c.insert(hf.into(), json!(v));
        }
    }
    if let Some(v) = int(metadata, &key("rope.scaling.original_context_length")) {
        c.insert("original_max_position_embeddings".into(), json!(v));
    }
    if arch.keys.contains(&crate::arch::Key::GraniteScales) {
        for (gguf, hf) in crate::arch::GRANITE_SCALES {
            if let Some(v) = float(metadata, &key(gguf)) {
                c.insert((*hf).into(), json!(v));
            }
        }
    }
    if !arch.experts.is_empty() || arch.fused_experts != crate::arch::FusedExperts::None {
        for (gguf, hf) in [
            ("expert_count", arch.expert_count_field),
            ("expert_used_count", "num_experts_per_tok"),
            ("expert_feed_forward_length", "moe_intermediate_size"),
            (
                "expert_shared_feed_forward_length",
                "shared_expert_intermediate_size",
            ),
        ] {
            // An expert width that is the intermediate_size (gpt-oss,
            // MiniMax-M2) was written above.
            let from_intermediate = arch
                .keys
                .contains(&crate::arch::Key::ExpertFeedForwardFromIntermediate);
            if from_intermediate && gguf == "expert_feed_forward_length" {
                continue;
            }
            if let Some(v) = int(metadata, &key(gguf)) {
                c.insert(hf.into(), json!(v));
            }
        }
    }
    if let Some(v) = int(metadata, "tokenizer.ggml.token_type_count") {
        c.insert("type_vocab_size".into(), json!(v));
    }
    // SmolLM3: the layers without rotary embeddings, every fourth as
    // llama.cpp's graph skips them (transformers' own rule for the interval).
    if let Some((_, every)) = arch.defaults.iter().find(|(k, _)| *k == "no_rope_layer_interval") {
        let every: u64 = every.parse().unwrap_or(4).max(1);
        let layers = int(metadata, &key("block_count")).unwrap_or(0).max(0) as u64;
        let flags: Vec<u8> = (0..layers).map(|i| u8::from((i + 1) % every != 0)).collect();
        c.insert("no_rope_layers".into(), json!(flags));
    }
    // Defaults only where the file said nothing.
    // (`parent.child` for a field of an object config.json has, such as
    // gpt-oss's `rope_parameters.truncate`.)
    for (k, v) in arch.defaults {
        let value = || serde_json::from_str(v).unwrap_or(Json::Null);
        match k.split_once('.') {
            Some((parent, child)) => {
                if let Some(Json::Object(inner)) = c.get_mut(parent) {
                    inner.entry(child).or_insert_with(value);
                }
            }
            None => {
                c.entry(*k).or_insert_with(value);
            }
        }
    }
    // The family's own field names (GPT-2's n_embd...), every alias written.
    for (standard, _) in arch.config_aliases {
        if let Some(v) = c.remove(*standard) {
            for (_, own) in arch
                .config_aliases
                .iter()
                .filter(|(s, o)| s == standard && !o.is_empty())
            {
                c.insert((*own).into(), v.clone());
            }
        }
    }
    c.insert("transformers_version".into(), json!("5.23.0"));
    Ok(Json::Object(c))
}

/// The dtype transformers should load in: that of the weight matrices.
fn dtype_name(tensors: &[TensorInfo]) -> &'static str {
    let matrix = tensors.iter().find(|t| t.shape.len() == 2);
    match matrix.map(|t| t.dtype) {
        Some(d @ (DType::F16 | DType::BF16)) => d.torch_name().unwrap_or("float32"),
        _ => "float32",
    }
}

/// `generation_config.json`: the special token ids the GGUF names.
pub fn generation_config(metadata: &Metadata) -> Option<Json> {
    let bos = int(metadata, "tokenizer.ggml.bos_token_id");
    let eos = int(metadata, "tokenizer.ggml.eos_token_id");
    if bos.is_none() && eos.is_none() {
        return None;
    }
    let mut g = Map::new();
    g.insert("bos_token_id".into(), json!(bos));
    g.insert("eos_token_id".into(), json!(eos));
    if let Some(pad) = int(metadata, "tokenizer.ggml.padding_token_id") {
        g.insert("pad_token_id".into(), json!(pad));
    }
    g.insert("transformers_version".into(), json!("5.23.0"));
    Some(Json::Object(g))
}
