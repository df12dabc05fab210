//! Nemotron-NAS (DeciLM: Llama-3_1-Nemotron-51B, -49B-Super, -253B-Ultra;
//! llama.cpp's `deci`) as `convert_hf_to_gguf.py`'s `DeciModel` writes it:
//! each layer's attention (grouped heads, one linear map in its place, or
//! none) and FFN width come from config.json's `block_configs` and become
//! per-layer arrays of heads, KV heads and FFN widths; Q/K rows are permuted
//! with each layer's own head counts. transformers has no DeciLM class (it
//! is remote code): the original folder is the reference back.

use serde_json::{json, Map, Value as Json};
use tensorcast_core::{code, Array, Error, Metadata, Result, Value};

/// One layer's shape: query heads, KV heads (0 for a linear map or none),
/// FFN width (0 for none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layer {
    pub heads: u64,
    pub kv_heads: u64,
    pub ffn: u64,
}

/// DeciLM's FFN width for multiplier `mult`: two thirds of it times the
/// hidden size, rounded up to a multiple of 256.
fn ffn_width(mult: f64, hidden: u64) -> u64 {
    let n = (2.0 * mult * hidden as f64 / 3.0) as u64;
    n.div_ceil(256) * 256
}

fn refuse(what: String) -> Error {
    Error::unsupported(code::NOT_A_MODEL, format!("DeciLM's config.json: {what}"))
}

/// The layers `block_configs` describe, `None` for a config without them.
pub(crate) fn layers(config: &Json) -> Result<Option<Vec<Layer>>> {
    let Some(blocks) = config.get("block_configs").and_then(Json::as_array) else {
        return Ok(None);
    };
    let int = |k: &str| config.get(k).and_then(Json::as_u64);
    let heads = int("num_attention_heads").ok_or_else(|| refuse("no num_attention_heads".into()))?;
    let hidden = int("hidden_size").ok_or_else(|| refuse("no hidden_size".into()))?;
    let mut out = Vec::with_capacity(blocks.len());
    for (i, b) in blocks.iter().enumerate() {
        let attn = &b["attention"];
        let (h, kv) = match attn["n_heads_in_group"].as_u64() {
            Some(0) => return Err(refuse(format!("layer {i}: n_heads_in_group 0"))),
            Some(g) => (heads, heads / g),
            None if attn["replace_with_linear"].as_bool() == Some(true) => (heads, 0),
            None => (0, 0),
        };
        let ffn = b["ffn"]["ffn_mult"].as_f64().map_or(0, |m| ffn_width(m, hidden));
        out.push(Layer {
            heads: h,
            kv_heads: kv,
            ffn,
        });
    }
    Ok(Some(out))
}

/// The layers a GGUF's per-layer arrays describe.
pub(crate) fn layers_of(metadata: &Metadata, arch: &str) -> Option<Vec<Layer>> {
    let ints = |k: &str| -> Option<Vec<u64>> {
        let v = crate::gguf_kv::ints(metadata, &format!("{arch}.{k}"))?;
        Some(v.into_iter().map(|x| x.max(0) as u64).collect())
    };
    let (heads, kv, ffn) = (
        ints("attention.head_count")?,
        ints("attention.head_count_kv")?,
        ints("feed_forward_length")?,
    );
    (heads.len() == kv.len() && kv.len() == ffn.len()).then(|| {
        heads
            .iter()
            .zip(&kv)
            .zip(&ffn)
            .map(|((&heads, &kv_heads), &ffn)| Layer { heads, kv_heads, ffn })
            .collect()
    })
}

/// The keys `DeciModel` writes before the file type, in its order.
pub(crate) fn keys(m: &mut Metadata, a: &str, config: &Json) -> Result<()> {
    let layers = layers(config)?
        .ok_or_else(|| refuse("no block_configs (DeciLM-7B's layout is not converted yet)".into()))?;
    let int = |k: &str| {
        config
            .get(k)
            .and_then(Json::as_u64)
            .ok_or_else(|| refuse(format!("no {k}")))
    };
    let u32v = |v: u64| Value::U32(u32::try_from(v).unwrap_or(u32::MAX));
    let arr = |f: fn(&Layer) -> u64| {
        Value::Array(Array::I32(
            layers
                .iter()
                .map(|l| i32::try_from(f(l)).unwrap_or(i32::MAX))
                .collect(),
        ))
    };
    let theta = config
        .get("rope_parameters")
        .and_then(|r| r.get("rope_theta"))
        .or_else(|| config.get("rope_theta"))
        .and_then(Json::as_f64);
    if let Some(t) = theta {
        m.insert(format!("{a}.rope.freq_base"), Value::F32(t as f32));
    }
    m.insert(format!("{a}.attention.head_count_kv"), arr(|l| l.kv_heads));
    m.insert(format!("{a}.attention.head_count"), arr(|l| l.heads));
    m.insert(format!("{a}.feed_forward_length"), arr(|l| l.ffn));
    m.insert(format!("{a}.block_count"), u32v(layers.len() as u64));
    m.insert(
        format!("{a}.context_length"),
        u32v(int("max_position_embeddings")?),
    );
    let hidden = int("hidden_size")?;
    m.insert(format!("{a}.embedding_length"), u32v(hidden));
    let eps = config
        .get("rms_norm_eps")
        .and_then(Json::as_f64)
        .ok_or_else(|| refuse("no rms_norm_eps".into()))?;
    m.insert(
        format!("{a}.attention.layer_norm_rms_epsilon"),
        Value::F32(eps as f32),
    );
    let head = hidden / int("num_attention_heads")?.max(1);
    m.insert(format!("{a}.attention.key_length"), u32v(head));
    m.insert(format!("{a}.attention.value_length"), u32v(head));
    Ok(())
}

/// config.json's DeciLM fields from the GGUF's per-layer arrays: the head
/// count, `block_configs` (an FFN multiplier giving each width back).
pub(crate) fn config_fields(c: &mut Map<String, Json>, metadata: &Metadata, arch: &str) {
    let Some(layers) = layers_of(metadata, arch) else {
        return;
    };
    let heads = layers.iter().map(|l| l.heads).max().unwrap_or(0);
    let hidden = crate::gguf_kv::int(metadata, &format!("{arch}.embedding_length"))
        .unwrap_or(0)
        .max(1) as f64;
    c.insert("num_attention_heads".into(), json!(heads));
    for (gguf, hf) in [
        ("embedding_length", "hidden_size"),
        ("block_count", "num_hidden_layers"),
        ("context_length", "max_position_embeddings"),
    ] {
        if let Some(v) = crate::gguf_kv::int(metadata, &format!("{arch}.{gguf}")) {
            c.insert(hf.into(), json!(v));
        }
    }
    if let Some(eps) = crate::gguf_kv::float(metadata, &format!("{arch}.attention.layer_norm_rms_epsilon")) {
        c.insert("rms_norm_eps".into(), json!(eps));
    }
    let blocks: Vec<Json> = layers
        .iter()
        .map(|l| {
            let attention = match (l.heads, l.kv_heads) {
                (h, kv) if kv > 0 => json!({"n_heads_in_group": h / kv, "no_op": false, "replace_with_linear": false}),
                (h, _) if h > 0 => json!({"n_heads_in_group": null, "no_op": false, "replace_with_linear": true}),
                _ => json!({"n_heads_in_group": null, "no_op": true, "replace_with_linear": false}),
            };
            // Any multiplier whose width rounds to this one: 3w / 2h gives it.
            let ffn = match l.ffn {
                0 => json!({"ffn_mult": null, "no_op": true, "replace_with_linear": false}),
                w => json!({"ffn_mult": 3.0 * w as f64 / (2.0 * hidden), "no_op": false, "replace_with_linear": false}),
            };
            json!({"attention": attention, "ffn": ffn})
        })
        .collect();
    c.insert("block_configs".into(), json!(blocks));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nemotron-51B's multipliers and hidden size give its widths; the
    /// multiplier written back gives the same width.
    #[test]
    fn ffn_widths_round_as_decilm_does() {
        assert_eq!(ffn_width(5.25, 8192), 28672);
        assert_eq!(ffn_width(1.3125, 8192), 7168);
        for w in [256u64, 7168, 28672] {
            assert_eq!(ffn_width(3.0 * w as f64 / (2.0 * 8192.0), 8192), w);
        }
    }
}
