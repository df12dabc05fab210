//! LFM2's hybrid layers as llama.cpp holds them (`convert_hf_to_gguf.py`'s
//! `LFM2Model`; read back by transformers' GGUF loader): which layers are
//! convolutions is a per-layer KV head count (0 on them), the convolution
//! `[channels, 1, L]` is squeezed to 2-D (the bytes stay), and the FFN
//! width is the one the config derives (`block_auto_adjust_ff_dim`).

use serde_json::{json, Map, Value as Json};
use tensorcast_core::{Array, Metadata, Value};

/// Whether HF tensor `name` is a short convolution's kernel (squeezed in GGUF).
pub(crate) fn is_kernel(name: &str) -> bool {
    name.ends_with(".conv.conv.weight")
}

/// The HF shape of a GGUF kernel: the middle axis back.
pub(crate) fn hf_shape(shape: &[u64]) -> Vec<u64> {
    match *shape {
        [channels, l] => vec![channels, 1, l],
        _ => shape.to_vec(),
    }
}

/// The FFN width LFM2 builds from config.json: `block_ff_dim` (else
/// `intermediate_size`), when `block_auto_adjust_ff_dim`, taken to two
/// thirds, scaled by `block_ffn_dim_multiplier` and rounded up to
/// `block_multiple_of`, as the model and the reference compute it.
pub(crate) fn ffn_width(config: &Json) -> Option<u64> {
    let int = |k: &str| config.get(k).and_then(Json::as_u64);
    let width = int("block_ff_dim").or_else(|| int("intermediate_size"))?;
    if config.get("block_auto_adjust_ff_dim").and_then(Json::as_bool) != Some(true) {
        return Some(width);
    }
    let mut ff = 2 * width / 3;
    if let Some(m) = config.get("block_ffn_dim_multiplier").and_then(Json::as_f64) {
        ff = (m * ff as f64) as u64;
    }
    let multiple = int("block_multiple_of").unwrap_or(256).max(1);
    Some(ff.div_ceil(multiple).saturating_mul(multiple))
}

/// `{a}.attention.head_count_kv` per layer: the KV heads on attention
/// layers, 0 on convolution ones (`layer_types`).
pub(crate) fn heads_kv_key(m: &mut Metadata, a: &str, config: &Json) {
    let kv = config
        .get("num_key_value_heads")
        .and_then(Json::as_i64)
        .and_then(|v| i32::try_from(v).ok())
        .unwrap_or(0);
    let types = config
        .get("layer_types")
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    let heads = types
        .iter()
        .map(|t| if t.as_str() == Some("conv") { 0 } else { kv })
        .collect();
    m.insert(
        format!("{a}.attention.head_count_kv"),
        Value::Array(Array::I32(heads)),
    );
}

/// config.json's fields from the per-layer KV heads and the cache length.
pub(crate) fn config_fields(c: &mut Map<String, Json>, metadata: &Metadata, key: &dyn Fn(&str) -> String) {
    let heads = crate::gguf_kv::ints(metadata, &key("attention.head_count_kv")).unwrap_or_default();
    if let Some(max) = heads.iter().max() {
        c.insert("num_key_value_heads".into(), json!(max));
    }
    let types: Vec<&str> = heads
        .iter()
        .map(|&h| if h > 0 { "full_attention" } else { "conv" })
        .collect();
    c.insert("layer_types".into(), json!(types));
    if let Some(l) = crate::gguf_kv::int(metadata, &key("shortconv.l_cache")) {
        c.insert("conv_L_cache".into(), json!(l));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// LFM2-1.2B's config (block_ff_dim 12288, multiplier 1.0, multiple of
    /// 256) gives the 8192 its GGUF files say.
    #[test]
    fn ffn_width_is_the_configs_derived_one() {
        let c = json!({"block_ff_dim": 12288, "intermediate_size": 12288, "block_auto_adjust_ff_dim": true,
            "block_ffn_dim_multiplier": 1.0, "block_multiple_of": 256});
        assert_eq!(ffn_width(&c), Some(8192));
        assert_eq!(ffn_width(&json!({"intermediate_size": 100})), Some(100));
        assert!(
            is_kernel("model.layers.0.conv.conv.weight") && !is_kernel("model.layers.0.conv.in_proj.weight")
        );
    }
}
