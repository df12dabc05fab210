//! Mamba (selective state-space layers, no attention) as llama.cpp holds
//! it (`convert_hf_to_gguf.py`'s `MambaModel`; read back by transformers'
//! GGUF loader): its own keys in its own order (an arbitrary context length
//! of 2^20, zero FFN width and head count "seemingly required when
//! loading"), `A_log` stored as `-exp(A_log)` (`ssm_a`, as Qwen3.5's, in
//! `gated_delta.rs`), the convolution squeezed, the vocabulary padded to a
//! multiple of 8.

use serde_json::{json, Map, Value as Json};
use tensorcast_core::{code, Error, Metadata, Result, Value};

/// The context length the reference writes whatever the model.
const CONTEXT: u32 = 1 << 20;

/// config.json's vocab_size as the reference pads it (to a multiple of
/// `pad_vocab_size_multiple`, 8 by default).
pub(crate) fn padded_vocab(config: &mut Json) {
    let multiple = config
        .get("pad_vocab_size_multiple")
        .and_then(Json::as_u64)
        .unwrap_or(8)
        .max(1);
    if let Some(n) = config.get("vocab_size").and_then(Json::as_u64) {
        config["vocab_size"] = json!(n.div_ceil(multiple).saturating_mul(multiple));
    }
}

/// The keys the reference writes before the file type, in its order.
pub(crate) fn keys(m: &mut Metadata, a: &str, config: &Json) -> Result<()> {
    let find = |names: &[&str]| names.iter().find_map(|k| config.get(*k).and_then(Json::as_u64));
    let d_model = find(&["hidden_size", "d_model"]).ok_or_else(|| {
        Error::unsupported(
            code::NOT_A_MODEL,
            "config.json has no hidden_size (or d_model) for Mamba",
        )
    })?;
    let layers = find(&["num_hidden_layers", "n_layer", "n_layers"]).ok_or_else(|| {
        Error::unsupported(
            code::NOT_A_MODEL,
            "config.json has no num_hidden_layers for Mamba",
        )
    })?;
    let d_inner = find(&["intermediate_size", "d_inner"]).unwrap_or(2 * d_model);
    if d_inner != 2 * d_model {
        // The reference asserts it: llama.cpp's Mamba has an expansion of 2.
        return Err(Error::unsupported(
            code::MODEL_INCONSISTENT,
            format!("Mamba's intermediate_size {d_inner} is not twice its hidden_size {d_model} (llama.cpp's expansion)"),
        ));
    }
    let u32v = |v: u64| Value::U32(u32::try_from(v).unwrap_or(u32::MAX));
    let eps = ["layer_norm_epsilon", "rms_norm_eps"]
        .iter()
        .find_map(|k| config.get(*k).and_then(Json::as_f64))
        .unwrap_or(1e-5);
    m.insert(format!("{a}.context_length"), Value::U32(CONTEXT));
    m.insert(format!("{a}.embedding_length"), u32v(d_model));
    m.insert(format!("{a}.feed_forward_length"), Value::U32(0));
    m.insert(format!("{a}.attention.head_count"), Value::U32(0));
    m.insert(format!("{a}.block_count"), u32v(layers));
    m.insert(
        format!("{a}.ssm.conv_kernel"),
        u32v(find(&["conv_kernel", "d_conv"]).unwrap_or(4)),
    );
    m.insert(format!("{a}.ssm.inner_size"), u32v(d_inner));
    m.insert(
        format!("{a}.ssm.state_size"),
        u32v(find(&["state_size", "d_state"]).unwrap_or(16)),
    );
    let rank = find(&["time_step_rank", "dt_rank"]).unwrap_or(d_model.div_ceil(16));
    m.insert(format!("{a}.ssm.time_step_rank"), u32v(rank));
    m.insert(
        format!("{a}.attention.layer_norm_rms_epsilon"),
        Value::F32(eps as f32),
    );
    let falcon = config.get("model_type").and_then(Json::as_str) == Some("falcon_mamba");
    m.insert(format!("{a}.ssm.dt_b_c_rms"), Value::Bool(falcon));
    Ok(())
}

/// config.json's fields from those keys, as transformers' GGUF loader
/// names them.
pub(crate) fn config_fields(c: &mut Map<String, Json>, metadata: &Metadata, key: &dyn Fn(&str) -> String) {
    use crate::gguf_kv::{float, int};
    for (gguf, hf) in [
        ("context_length", "max_position_embeddings"),
        ("embedding_length", "hidden_size"),
        ("block_count", "num_hidden_layers"),
        ("ssm.conv_kernel", "conv_kernel"),
        ("ssm.inner_size", "intermediate_size"),
        ("ssm.state_size", "state_size"),
        ("ssm.time_step_rank", "time_step_rank"),
    ] {
        if let Some(v) = int(metadata, &key(gguf)) {
            c.insert(hf.into(), json!(v));
        }
    }
    if let Some(eps) = float(metadata, &key("attention.layer_norm_rms_epsilon")) {
        c.insert("layer_norm_epsilon".into(), json!(eps));
    }
    let (inner, hidden) = (
        int(metadata, &key("ssm.inner_size")),
        int(metadata, &key("embedding_length")),
    );
    if let (Some(i), Some(h)) = (inner, hidden.filter(|&h| h > 0)) {
        c.insert("expand".into(), json!(i / h));
    }
}
