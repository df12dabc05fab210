//! DeepSeek's multi-head latent attention: Hugging Face keeps one
//! `kv_b_proj` `[heads x (nope + v), kv_lora]` (per head, the rows that
//! make K's non-rotary part, then V's); llama.cpp splits it per head into
//! `attn_k_b` `[heads, kv_lora, nope]` (transposed, for the absorbed
//! attention) and `attn_v_b` `[heads, v, kv_lora]`
//! (`convert_hf_to_gguf.py`'s DeepseekV2Model). A head at a time both ways.

use tensorcast_core::{code, Error, Result, TensorData, TensorInfo};

/// The head geometry of a `kv_b_proj`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mla {
    pub heads: usize,
    pub nope: usize,
    pub v: usize,
}

fn refuse(name: &str, why: String) -> Error {
    Error::unsupported(code::MODEL_INCONSISTENT, format!("tensor '{name}': {why}"))
}

/// The whole tensor as plain little-endian elements (blocks decoded to
/// f32) and the size of one.
fn elements(data: TensorData<'_>, t: &TensorInfo) -> Result<(Vec<u8>, usize)> {
    let size = crate::decode::plain(t.dtype)
        .byte_size()
        .ok_or_else(|| refuse(&t.name, format!("{:?} is not a plain dtype", t.dtype)))?;
    Ok((
        crate::decode::owned_elements(data.into_vec()?, t.dtype, t.numel(), &t.name)?,
        size,
    ))
}

impl Mla {
    /// `kv_b_proj`'s row count, `None` where config.json's counts overflow.
    pub(crate) fn rows(&self) -> Option<u64> {
        let per_head = self.nope.checked_add(self.v)?;
        u64::try_from(self.heads.checked_mul(per_head)?).ok()
    }

    /// `kv_b_proj`'s `[heads x (nope + v), kv_lora]`, checked.
    fn rank(&self, t: &TensorInfo) -> Result<usize> {
        match t.shape[..] {
            [rows, r] if Some(rows) == self.rows() => Ok(r as usize),
            _ => Err(refuse(
                &t.name,
                format!(
                    "{:?} is not {} heads of {} + {} rows",
                    t.shape, self.heads, self.nope, self.v
                ),
            )),
        }
    }

    /// The GGUF descriptor of K's (`k`) or V's part of `kv_b_proj` `t`.
    pub(crate) fn split_info(&self, name: &str, t: &TensorInfo, k: bool) -> Result<TensorInfo> {
        let r = self.rank(t)? as u64;
        let (h, nope, v) = (self.heads as u64, self.nope as u64, self.v as u64);
        let shape = if k { vec![h, r, nope] } else { vec![h, v, r] };
        TensorInfo::new(name, t.dtype, shape).ok_or_else(|| refuse(name, "size overflows".into()))
    }

    /// K's part (each head's first `nope` rows, transposed) or V's (the
    /// other `v` rows) of `kv_b_proj`, a head per chunk.
    pub(crate) fn split<'a>(&self, data: TensorData<'a>, t: &TensorInfo, k: bool) -> Result<TensorData<'a>> {
        let r = self.rank(t)?;
        let (bytes, size) = elements(data, t)?;
        let me = *self;
        let per_head = (me.nope + me.v) * r * size;
        let pieces = (0..me.heads).map(move |h| {
            let head = &bytes[h * per_head..(h + 1) * per_head];
            let mut out = Vec::with_capacity(if k { me.nope } else { me.v } * r * size);
            if k {
                for c in 0..r {
                    for row in 0..me.nope {
                        let at = (row * r + c) * size;
                        out.extend_from_slice(&head[at..at + size]);
                    }
                }
            } else {
                out.extend_from_slice(&head[me.nope * r * size..]);
            }
            Ok(out)
        });
        Ok(TensorData::Chunks(Box::new(pieces)))
    }

    /// The geometry of a GGUF `attn_k_b` `[heads, kv_lora, nope]` and
    /// `attn_v_b` `[heads, v, kv_lora]`, checked against each other.
    pub(crate) fn of_gguf(k: &TensorInfo, v: &TensorInfo) -> Result<(Mla, usize)> {
        match (&k.shape[..], &v.shape[..]) {
            (&[h, r, nope], &[h2, vd, r2]) if h == h2 && r == r2 => Ok((
                Mla {
                    heads: h as usize,
                    nope: nope as usize,
                    v: vd as usize,
                },
                r as usize,
            )),
            _ => Err(refuse(
                &k.name,
                format!(
                    "{:?} and '{}' {:?} are not one latent attention's parts",
                    k.shape, v.name, v.shape
                ),
            )),
        }
    }

    /// `kv_b_proj` back from its parts: per head, K's part transposed back,
    /// then V's rows.
    pub(crate) fn merge<'a>(
        k_data: TensorData<'a>,
        v_data: TensorData<'a>,
        tk: &TensorInfo,
        tv: &TensorInfo,
    ) -> Result<TensorData<'a>> {
        let (me, r) = Mla::of_gguf(tk, tv)?;
        if crate::decode::plain(tk.dtype) != crate::decode::plain(tv.dtype) {
            return Err(refuse(
                &tk.name,
                format!("{:?} beside '{}' {:?}", tk.dtype, tv.name, tv.dtype),
            ));
        }
        let (kb, size) = elements(k_data, tk)?;
        let (vb, _) = elements(v_data, tv)?;
        let pieces = (0..me.heads).map(move |h| {
            let kh = &kb[h * r * me.nope * size..(h + 1) * r * me.nope * size];
            let mut out = Vec::with_capacity((me.nope + me.v) * r * size);
            for row in 0..me.nope {
                for c in 0..r {
                    let at = (c * me.nope + row) * size;
                    out.extend_from_slice(&kh[at..at + size]);
                }
            }
            out.extend_from_slice(&vb[h * me.v * r * size..(h + 1) * me.v * r * size]);
            Ok(out)
        });
        Ok(TensorData::Chunks(Box::new(pieces)))
    }
}

/// DeepSeek's keys after `general.file_type`, in the reference's order
/// (`convert_hf_to_gguf.py`'s DeepseekV2Model.set_gguf_parameters).
pub(crate) fn tail_keys(m: &mut tensorcast_core::Metadata, a: &str, config: &serde_json::Value, vocab: u64) {
    use tensorcast_core::Value;
    let int = |k: &str| config.get(k).and_then(serde_json::Value::as_u64);
    let u32v = |v: u64| Value::U32(u32::try_from(v).unwrap_or(u32::MAX));
    let experts = int("n_routed_experts");
    let layers = int("num_hidden_layers").unwrap_or(0);
    let dense = int("first_k_dense_replace").unwrap_or(if experts.is_some() { 0 } else { layers });
    m.insert(format!("{a}.leading_dense_block_count"), u32v(dense));
    m.insert(
        format!("{a}.vocab_size"),
        u32v(int("vocab_size").unwrap_or(vocab)),
    );
    if let Some(q) = int("q_lora_rank") {
        m.insert(format!("{a}.attention.q_lora_rank"), u32v(q));
    }
    m.insert(
        format!("{a}.attention.kv_lora_rank"),
        u32v(int("kv_lora_rank").unwrap_or(512)),
    );
    let rope = int("qk_rope_head_dim").unwrap_or(0);
    let nope = int("qk_nope_head_dim").unwrap_or(0);
    m.insert(
        format!("{a}.attention.key_length_mla"),
        u32v(nope.saturating_add(rope)),
    );
    m.insert(
        format!("{a}.attention.value_length_mla"),
        u32v(int("v_head_dim").unwrap_or(0)),
    );
    if let Some(w) = int("moe_intermediate_size").or_else(|| int("intermediate_size")) {
        m.insert(format!("{a}.expert_feed_forward_length"), u32v(w));
    }
    m.insert(
        format!("{a}.expert_shared_count"),
        u32v(int("n_shared_experts").unwrap_or(0)),
    );
    if let Some(s) = config
        .get("routed_scaling_factor")
        .and_then(serde_json::Value::as_f64)
    {
        m.insert(format!("{a}.expert_weights_scale"), Value::F32(s as f32));
    }
    if config.get("norm_topk_prob").and_then(serde_json::Value::as_bool) == Some(true) {
        m.insert(format!("{a}.expert_weights_norm"), Value::Bool(true));
    }
    m.insert(format!("{a}.rope.dimension_count"), u32v(rope));
    let mscale = config
        .get("rope_parameters")
        .or_else(|| config.get("rope_scaling"))
        .and_then(|r| r.get("mscale_all_dim"))
        .and_then(serde_json::Value::as_f64);
    if let Some(ms) = mscale {
        m.insert(
            format!("{a}.rope.scaling.yarn_log_multiplier"),
            Value::F32((0.1 * ms) as f32),
        );
    }
}

/// DeepSeek's config.json fields from its GGUF keys (`key` adds the
/// architecture prefix), into `c`.
pub(crate) fn config_fields(
    c: &mut serde_json::Map<String, serde_json::Value>,
    metadata: &tensorcast_core::Metadata,
    key: &dyn Fn(&str) -> String,
) {
    use crate::gguf_kv::{float, int};
    use serde_json::json;
    let rope = int(metadata, &key("rope.dimension_count")).unwrap_or(0);
    let put_int = |c: &mut serde_json::Map<String, serde_json::Value>, hf: &str, v: Option<i64>| {
        if let Some(v) = v {
            c.insert(hf.into(), json!(v));
        }
    };
    put_int(
        c,
        "first_k_dense_replace",
        int(metadata, &key("leading_dense_block_count")),
    );
    put_int(c, "q_lora_rank", int(metadata, &key("attention.q_lora_rank")));
    put_int(c, "kv_lora_rank", int(metadata, &key("attention.kv_lora_rank")));
    put_int(c, "qk_rope_head_dim", Some(rope));
    put_int(
        c,
        "qk_nope_head_dim",
        int(metadata, &key("attention.key_length_mla")).map(|k| k.saturating_sub(rope)),
    );
    put_int(c, "v_head_dim", int(metadata, &key("attention.value_length_mla")));
    put_int(c, "n_shared_experts", int(metadata, &key("expert_shared_count")));
    put_int(c, "n_group", int(metadata, &key("expert_group_count")));
    put_int(c, "topk_group", int(metadata, &key("expert_group_used_count")));
    if let Some(s) = float(metadata, &key("expert_weights_scale")) {
        c.insert("routed_scaling_factor".into(), json!(s));
    }
    let norm = matches!(
        metadata.get(&key("expert_weights_norm")),
        Some(tensorcast_core::Value::Bool(true))
    );
    c.insert("norm_topk_prob".into(), json!(norm));
    // llama.cpp's MQA-like head_count_kv = 1 and its latent key length are
    // not the model's: transformers counts heads and the rotary head dim.
    if let Some(h) = c.get("num_attention_heads").cloned() {
        c.insert("num_key_value_heads".into(), h);
    }
    c.insert("head_dim".into(), json!(rope));
    c.remove("attention.key_length");
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorcast_core::DType;

    /// Two heads, nope 2, v 1, kv_lora 3: split and merged back exactly.
    #[test]
    fn kv_b_splits_per_head_and_merges_back() {
        let me = Mla {
            heads: 2,
            nope: 2,
            v: 1,
        };
        let vals: Vec<f32> = (0..18).map(|i| i as f32).collect();
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let t = TensorInfo::new("kv_b_proj.weight", DType::F32, vec![6, 3]).unwrap();
        let k = me
            .split(TensorData::Borrowed(&bytes), &t, true)
            .unwrap()
            .into_vec()
            .unwrap();
        let v = me
            .split(TensorData::Borrowed(&bytes), &t, false)
            .unwrap()
            .into_vec()
            .unwrap();
        let f = |b: &[u8]| -> Vec<f32> {
            b.chunks(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect()
        };
        // Head 0 rows: [0 1 2], [3 4 5] (K), [6 7 8] (V); K transposed: [0 3], [1 4], [2 5].
        assert_eq!(f(&k)[..6], [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        assert_eq!(f(&v), [6.0, 7.0, 8.0, 15.0, 16.0, 17.0]);
        let (tk, tv) = (
            me.split_info("k_b", &t, true).unwrap(),
            me.split_info("v_b", &t, false).unwrap(),
        );
        assert_eq!(
            (tk.shape.clone(), tv.shape.clone()),
            (vec![2, 3, 2], vec![2, 1, 3])
        );
        let back = Mla::merge(TensorData::Borrowed(&k), TensorData::Borrowed(&v), &tk, &tv)
            .unwrap()
            .into_vec()
            .unwrap();
        assert_eq!(back, bytes);
    }
}
