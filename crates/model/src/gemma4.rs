//! Gemma 4 as llama.cpp holds it (`convert_hf_to_gguf.py`'s `Gemma4Model`;
//! transformers 5.23's GGUF loader cannot load it, so the original model is
//! the reference back): its keys after Gemma 3's (shared KV layers,
//! per-layer input width, which layers slide, the full and sliding head
//! widths and rotary widths), and the `rope_freqs` tensor the reference
//! generates for the full-attention layers' proportional rope: ones for the
//! rotated pairs, 1e30 for the rest (`partial_rotary_factor` of the head).

use serde_json::{json, Map, Value as Json};
use tensorcast_core::{code, Array, Error, Metadata, Result, Value};

/// The generated tensor's GGUF name.
pub(crate) const ROPE_FREQS: &str = "rope_freqs.weight";

fn refuse(what: String) -> Error {
    Error::unsupported(code::NOT_A_MODEL, format!("Gemma 4's config.json: {what}"))
}

/// The full-attention layers' head width: `global_head_dim`, else the
/// first full layer's `per_layer_config` entry.
fn full_head_dim(config: &Json) -> Option<u64> {
    if let Some(d) = config.get("global_head_dim").and_then(Json::as_u64) {
        return Some(d);
    }
    full_layer_field(config, "head_dim")
}

/// A field of the first full-attention layer's `per_layer_config` entry
/// (keys `"3"` or `"03"`, as configs spell them).
fn full_layer_field(config: &Json, field: &str) -> Option<u64> {
    let types = config.get("layer_types")?.as_array()?;
    let per_layer = config.get("per_layer_config")?.as_object()?;
    let mut entries: Vec<(u64, &Json)> = per_layer
        .iter()
        .filter_map(|(k, v)| Some((k.parse::<u64>().ok()?, v)))
        .collect();
    entries.sort_by_key(|(i, _)| *i);
    entries.into_iter().find_map(|(i, v)| {
        let full = types.get(i as usize)?.as_str() == Some("full_attention");
        full.then(|| v.get(field)?.as_u64()).flatten()
    })
}

/// `rope_freqs`' values: one per pair of the full head, 1 for the pairs
/// the proportional rope rotates, 1e30 (never rotated) for the others.
pub(crate) fn rope_freqs(config: &Json) -> Result<Vec<u8>> {
    let full = config
        .get("rope_parameters")
        .and_then(|r| r.get("full_attention"));
    let kind = full.and_then(|f| f.get("rope_type")).and_then(Json::as_str);
    if kind != Some("proportional") {
        return Err(refuse(format!(
            "the full-attention rope is {kind:?}, where llama.cpp's Gemma 4 takes a proportional one"
        )));
    }
    let factor = full
        .and_then(|f| f.get("partial_rotary_factor"))
        .and_then(Json::as_f64)
        .ok_or_else(|| refuse("no partial_rotary_factor for the full-attention rope".into()))?;
    let dim =
        full_head_dim(config).ok_or_else(|| refuse("no global_head_dim or full-layer head_dim".into()))?;
    let pairs = usize::try_from(dim / 2).unwrap_or(0).min(1 << 16);
    let rotated = ((dim as f64 * factor / 2.0) as usize).min(pairs);
    Ok((0..pairs)
        .flat_map(|i| if i < rotated { 1.0f32 } else { 1e30f32 }.to_le_bytes())
        .collect())
}

/// The rotary fraction `rope_freqs` (f32 values) says, for a full head of
/// `dim`: the share of its pairs that are 1.
pub(crate) fn rotary_fraction(values: &[u8], dim: u64) -> Option<f64> {
    let ones = values
        .chunks_exact(4)
        .filter(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) == 1.0)
        .count();
    (dim > 0 && values.len() as u64 == dim * 2).then(|| ones as f64 * 2.0 / dim as f64)
}

/// The keys `Gemma4Model` writes after Gemma 3's, some of them in place of
/// Gemma 3's (the head widths, per-layer FFN widths and KV heads).
pub(crate) fn tail_keys(m: &mut Metadata, a: &str, config: &Json) -> Result<()> {
    let int = |k: &str| config.get(k).and_then(Json::as_u64);
    let u32v = |v: u64| Value::U32(u32::try_from(v).unwrap_or(u32::MAX));
    let layers = int("num_hidden_layers").ok_or_else(|| refuse("no num_hidden_layers".into()))?;
    let shared = int("num_kv_shared_layers").ok_or_else(|| refuse("no num_kv_shared_layers".into()))?;
    m.insert(format!("{a}.attention.shared_kv_layers"), u32v(shared));
    m.insert(
        format!("{a}.embedding_length_per_layer_input"),
        u32v(int("hidden_size_per_layer_input").unwrap_or(0)),
    );
    let types = config
        .get("layer_types")
        .and_then(Json::as_array)
        .ok_or_else(|| refuse("no layer_types".into()))?;
    let swa: Vec<bool> = types
        .iter()
        .map(|t| t.as_str() == Some("sliding_attention"))
        .collect();
    // One flag per layer: a layer count its layer_types do not match (or of
    // billions, whose per-layer widths would be built) is refused.
    if swa.len() as u64 != layers {
        return Err(refuse(format!(
            "layer_types has {} entries for {layers} layers",
            swa.len()
        )));
    }
    m.insert(
        format!("{a}.attention.sliding_window_pattern"),
        Value::Array(Array::Bool(swa.clone())),
    );
    let full =
        full_head_dim(config).ok_or_else(|| refuse("no global_head_dim or full-layer head_dim".into()))?;
    let swa_dim = int("head_dim").ok_or_else(|| refuse("no head_dim".into()))?;
    m.insert(format!("{a}.attention.key_length"), u32v(full));
    m.insert(format!("{a}.attention.value_length"), u32v(full));
    m.insert(format!("{a}.attention.key_length_swa"), u32v(swa_dim));
    m.insert(format!("{a}.attention.value_length_swa"), u32v(swa_dim));
    if let Some(n) = int("expert_intermediate_size").or_else(|| int("moe_intermediate_size")) {
        m.insert(format!("{a}.expert_feed_forward_length"), u32v(n));
    }
    if config.get("use_double_wide_mlp").and_then(Json::as_bool) == Some(true) {
        let n_ff = int("intermediate_size").ok_or_else(|| refuse("no intermediate_size".into()))?;
        let first_shared = layers.saturating_sub(shared);
        let widths = (0..layers).map(|l| if l < first_shared { n_ff } else { n_ff * 2 });
        let widths = widths.map(|w| i32::try_from(w).unwrap_or(i32::MAX)).collect();
        m.insert(
            format!("{a}.feed_forward_length"),
            Value::Array(Array::I32(widths)),
        );
    }
    let full_kv =
        int("num_global_key_value_heads").or_else(|| full_layer_field(config, "num_key_value_heads"));
    if let (Some(full_kv), Some(swa_kv)) = (full_kv, int("num_key_value_heads")) {
        let heads = swa
            .iter()
            .map(|&s| i32::try_from(if s { swa_kv } else { full_kv }).unwrap_or(i32::MAX));
        m.insert(
            format!("{a}.attention.head_count_kv"),
            Value::Array(Array::I32(heads.collect())),
        );
    }
    // The sliding layers' fraction is the top-level one (1 when absent),
    // as the reference reads it.
    let partial = config
        .get("rope_parameters")
        .and_then(|r| r.get("partial_rotary_factor"))
        .and_then(Json::as_f64)
        .unwrap_or(1.0);
    m.insert(format!("{a}.rope.dimension_count"), u32v(full));
    m.insert(
        format!("{a}.rope.dimension_count_swa"),
        u32v((swa_dim as f64 * partial) as u64),
    );
    Ok(())
}

/// config.json's Gemma 4 fields from the GGUF: layer types, head widths
/// (the full layers' in `per_layer_config`, as transformers writes it),
/// per-layer inputs, shared KV layers, proportional rope over `fraction`
/// of the full heads, the MoE block, and whether the full layers' keys are
/// their values (`keys_are_values`: they have no V projection).
pub(crate) fn config_fields(
    c: &mut Map<String, Json>,
    metadata: &Metadata,
    key: &dyn Fn(&str) -> String,
    per_layer_vocab: Option<u64>,
    fraction: Option<f64>,
    keys_are_values: bool,
) {
    use crate::gguf_kv::{array, int};
    let pattern = match array(metadata, &key("attention.sliding_window_pattern")) {
        Some(Array::Bool(b)) => b.clone(),
        _ => Vec::new(),
    };
    let types: Vec<&str> = pattern
        .iter()
        .map(|&s| if s { "sliding_attention" } else { "full_attention" })
        .collect();
    c.insert("layer_types".into(), json!(types));
    if let Some(d) = int(metadata, &key("attention.key_length_swa")) {
        c.insert("head_dim".into(), json!(d));
    }
    let full = int(metadata, &key("attention.key_length"));
    let kv = crate::gguf_kv::ints(metadata, &key("attention.head_count_kv")).unwrap_or_default();
    let mut per_layer = Map::new();
    for (i, _) in pattern.iter().enumerate().filter(|(_, &s)| !s) {
        let mut entry = Map::new();
        entry.insert("head_dim".into(), json!(full));
        if let Some(h) = kv.get(i) {
            entry.insert("num_key_value_heads".into(), json!(h));
        }
        per_layer.insert(i.to_string(), Json::Object(entry));
    }
    c.insert("per_layer_config".into(), Json::Object(per_layer));
    if let Some(swa_kv) = kv.iter().zip(&pattern).find(|(_, &s)| s).map(|(h, _)| *h) {
        c.insert("num_key_value_heads".into(), json!(swa_kv));
    }
    for (gguf, hf) in [
        ("embedding_length_per_layer_input", "hidden_size_per_layer_input"),
        ("attention.shared_kv_layers", "num_kv_shared_layers"),
    ] {
        if let Some(v) = int(metadata, &key(gguf)) {
            c.insert(hf.into(), json!(v));
        }
    }
    if let Some(v) = per_layer_vocab {
        c.insert("vocab_size_per_layer_input".into(), json!(v));
    }
    // Per-layer FFN widths: the layers reusing others' keys and values are
    // twice as wide (use_double_wide_mlp), the rest the intermediate size.
    let widths = crate::gguf_kv::ints(metadata, &key("feed_forward_length")).unwrap_or_default();
    if let Some(&first) = widths.first() {
        c.insert("intermediate_size".into(), json!(first));
        c.insert(
            "use_double_wide_mlp".into(),
            json!(widths.iter().any(|&w| w == 2 * first)),
        );
    }
    // The MoE block (26B-A4B), where the file has experts.
    if let Some(n) = int(metadata, &key("expert_count")).filter(|&n| n > 0) {
        c.insert("enable_moe_block".into(), json!(true));
        c.insert("num_experts".into(), json!(n));
        for (gguf, hf) in [
            ("expert_used_count", "top_k_experts"),
            ("expert_feed_forward_length", "moe_intermediate_size"),
        ] {
            if let Some(v) = int(metadata, &key(gguf)) {
                c.insert(hf.into(), json!(v));
            }
        }
    }
    c.insert("attention_k_eq_v".into(), json!(keys_are_values));
    if let Some(Json::Object(rope)) = c.get_mut("rope_parameters") {
        if let Some(Json::Object(full)) = rope.get_mut("full_attention") {
            full.insert("rope_type".into(), json!("proportional"));
            if let Some(f) = fraction {
                full.insert("partial_rotary_factor".into(), json!(f));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference's values for a 32-wide full head rotated over a
    /// quarter: 4 ones, 12 of 1e30; read back as the quarter.
    #[test]
    fn rope_freqs_as_the_reference_makes_them() {
        let c = json!({"layer_types": ["sliding_attention", "full_attention"], "per_layer_config": {"01": {"head_dim": 32}},
            "rope_parameters": {"full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25}}});
        let v = rope_freqs(&c).unwrap();
        let f: Vec<f32> = v
            .chunks(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(f.len(), 16);
        assert_eq!(&f[..5], &[1.0, 1.0, 1.0, 1.0, 1e30]);
        assert_eq!(rotary_fraction(&v, 32), Some(0.25));
        assert!(
            rope_freqs(&json!({"rope_parameters": {"full_attention": {"rope_type": "default"}}})).is_err()
        );
    }
}
