//! Qwen3.5's gated delta-net layers (`linear_attn`) as llama.cpp holds them
//! (`convert_hf_to_gguf.py`'s `_LinearAttentionVReorderBase` and
//! `Qwen3NextModel`; undone by transformers' GGUF loader):
//!
//! - value heads, which Hugging Face groups by key head (`[K][r][d]`), are
//!   tiled (`[r][K][d]`) on every tensor indexed by them: rows of
//!   `in_proj_z`, of the value part of `in_proj_qkv` and of the convolution,
//!   one row per head of `in_proj_a`/`in_proj_b`/`A_log`/`dt_bias`, and the
//!   columns of `out_proj`. A permutation: exact both ways.
//! - `A_log` is stored as `-exp(A_log)` (`ssm_a`), read back as `log(-a)`,
//!   each computed in f64 and rounded once to the tensor's dtype.
//! - the convolution `[channels, 1, kernel]` is squeezed to 2-D.

use crate::permute::Direction;
use serde_json::{json, Map, Value as Json};
use tensorcast_core::{code, Array, DType, Error, Metadata, Result, TensorData, TensorInfo, Value};

/// The delta-net's head geometry: `k_heads` key heads of `k_dim`, each
/// with `v_per_k` value heads of `v_dim`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub k_heads: u64,
    pub v_per_k: u64,
    pub k_dim: u64,
    pub v_dim: u64,
    /// Value heads tiled in GGUF (Qwen3.5's converter); Qwen3-Next's keeps
    /// them grouped, as Hugging Face has them.
    pub tiled: bool,
}

/// Which of the delta-net's tensors, by what its rows or columns are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    /// `in_proj_qkv` (and the convolution, `conv` true): query and key
    /// rows as they are, then the value rows.
    Qkv { conv: bool },
    /// `in_proj_z`: value rows.
    Values,
    /// One row per value head: `in_proj_a`, `in_proj_b`, `dt_bias`.
    Heads,
    /// `A_log` ⇄ `-exp(A_log)`, one per value head.
    ALog,
    /// `out_proj`: value columns.
    Out,
}

impl Geometry {
    /// Qwen3-Next's fused `in_proj_qkvz` `[K x (q, k, v, z)]` rows: the
    /// rows of GGUF's `attn_qkv` (all queries, keys, values) or, `gate`,
    /// of `attn_gate` (all z), in order.
    pub(crate) fn qkvz_rows(&self, gate: bool) -> Vec<usize> {
        let (kk, hk, hv) = (
            self.k_heads as usize,
            self.k_dim as usize,
            (self.v_per_k * self.v_dim) as usize,
        );
        let block = 2 * hk + 2 * hv;
        let part = |offset: usize, len: usize| {
            (0..kk).flat_map(move |h| (0..len).map(move |i| h * block + offset + i))
        };
        match gate {
            true => part(2 * hk + hv, hv).collect(),
            false => part(0, hk).chain(part(hk, hk)).chain(part(2 * hk, hv)).collect(),
        }
    }

    /// The rows `in_proj_qkvz` has for this geometry.
    pub(crate) fn qkvz_len(&self) -> u64 {
        self.k_heads * (2 * self.k_dim + 2 * self.v_per_k * self.v_dim)
    }
}

/// Rows `rows` of a tensor of `row_bytes` rows, in that order.
pub(crate) fn gather_rows(bytes: &[u8], row_bytes: usize, rows: &[usize], name: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(rows.len() * row_bytes);
    for &r in rows {
        let row = bytes
            .get(r * row_bytes..(r + 1) * row_bytes)
            .ok_or_else(|| refuse(name, format!("row {r} is past its {} bytes", bytes.len())))?;
        out.extend_from_slice(row);
    }
    Ok(out)
}

/// Qwen3-Next's `in_proj_qkvz` from GGUF's `attn_qkv` and `attn_gate`
/// (whole rows, blocks too): each key head's q, k, v and z rows again.
pub(crate) fn merge_qkvz(
    qkv: &[u8],
    gate: &[u8],
    g: &Geometry,
    row_bytes: usize,
    name: &str,
) -> Result<Vec<u8>> {
    let total = usize::try_from(g.qkvz_len()).unwrap_or(0);
    let (q, z) = (g.qkvz_rows(false), g.qkvz_rows(true));
    if qkv.len() != q.len() * row_bytes || gate.len() != z.len() * row_bytes {
        return Err(refuse(
            name,
            "attn_qkv and attn_gate are not this geometry's rows".into(),
        ));
    }
    let mut out = vec![0u8; total * row_bytes];
    for (src, rows) in [(qkv, &q), (gate, &z)] {
        for (i, &r) in rows.iter().enumerate() {
            out[r * row_bytes..(r + 1) * row_bytes].copy_from_slice(&src[i * row_bytes..(i + 1) * row_bytes]);
        }
    }
    Ok(out)
}

/// The delta-net part of HF tensor `name`, `None` for any other tensor.
pub(crate) fn part_of(name: &str) -> Option<Part> {
    let (_, leaf) = name.split_once("linear_attn.")?;
    Some(match leaf {
        "in_proj_qkv.weight" => Part::Qkv { conv: false },
        "conv1d.weight" => Part::Qkv { conv: true },
        "in_proj_z.weight" => Part::Values,
        "in_proj_a.weight" | "in_proj_b.weight" | "dt_bias" => Part::Heads,
        "A_log" => Part::ALog,
        "out_proj.weight" => Part::Out,
        _ => return None,
    })
}

/// Whether norm `name` (GGUF) is the delta-net's gated norm, which is not
/// zero-centred: llama.cpp stores it as it is.
pub(crate) fn plain_norm(gguf_name: &str) -> bool {
    gguf_name.ends_with(".ssm_norm.weight")
}

impl Geometry {
    /// From config.json's `linear_*` fields.
    pub(crate) fn from_config(config: &Json) -> Option<Geometry> {
        let f = |k: &str| config.get(k).and_then(Json::as_u64);
        let k_heads = f("linear_num_key_heads")?;
        let v_heads = f("linear_num_value_heads")?;
        Geometry::new(
            k_heads,
            v_heads,
            f("linear_key_head_dim")?,
            f("linear_value_head_dim")?,
        )
    }

    /// From the GGUF's `ssm.*` keys.
    pub(crate) fn from_gguf(metadata: &Metadata, arch: &str) -> Option<Geometry> {
        let f = |k: &str| {
            crate::gguf_kv::int(metadata, &format!("{arch}.ssm.{k}")).and_then(|v| u64::try_from(v).ok())
        };
        let v_heads = f("time_step_rank")?;
        let inner = f("inner_size")?;
        let v_dim = inner.checked_div(v_heads).filter(|d| d * v_heads == inner)?;
        Geometry::new(f("group_count")?, v_heads, f("state_size")?, v_dim)
    }

    fn new(k_heads: u64, v_heads: u64, k_dim: u64, v_dim: u64) -> Option<Geometry> {
        let v_per_k = v_heads.checked_div(k_heads).filter(|r| r * k_heads == v_heads)?;
        // Row orders are held as vectors (8 bytes a row): a geometry of more
        // rows than 2^24 (a thousand times Qwen3.5's widest) is refused.
        let rows = k_heads
            .checked_mul(k_dim)?
            .checked_mul(2)?
            .checked_add(v_heads.checked_mul(v_dim)?)?;
        (rows <= 1 << 24 && v_per_k > 0).then_some(Geometry {
            k_heads,
            v_per_k,
            k_dim,
            v_dim,
            tiled: true,
        })
    }

    fn v_heads(&self) -> u64 {
        self.k_heads * self.v_per_k
    }

    /// For a value-indexed run of `unit`-sized items (`unit` = `v_dim` for
    /// value elements, 1 for heads), the input item output item `o` takes.
    fn source(&self, o: u64, unit: u64, direction: Direction) -> u64 {
        if !self.tiled {
            return o;
        }
        let (head, x) = (o / unit, o % unit);
        let (kk, r) = (self.k_heads, self.v_per_k);
        let from = match direction {
            // Output tiled (j, k): from grouped (k, j).
            Direction::ToGguf => (head % kk) * r + head / kk,
            // Output grouped (k, j): from tiled (j, k).
            Direction::ToHf => (head % r) * kk + head / r,
        };
        from * unit + x
    }

    /// The input row of each output row of a tensor of `part` with `rows`
    /// rows (columns for [`Part::Out`]), checked against the geometry.
    fn order(&self, part: Part, rows: u64, name: &str, direction: Direction) -> Result<Vec<usize>> {
        let (lead, unit) = match part {
            Part::Qkv { .. } => (2 * self.k_heads * self.k_dim, self.v_dim),
            Part::Values | Part::Out => (0, self.v_dim),
            Part::Heads | Part::ALog => (0, 1),
        };
        let want = lead + self.v_heads() * unit;
        if rows != want {
            return Err(Error::unsupported(
                code::MODEL_INCONSISTENT,
                format!(
                    "tensor '{name}': {rows} rows (columns for out_proj) where the delta-net's {} key heads of {} and {} value heads of {} make {want}",
                    self.k_heads,
                    self.k_dim,
                    self.v_heads(),
                    self.v_dim
                ),
            ));
        }
        Ok((0..rows)
            .map(|o| match o < lead {
                true => o as usize,
                false => (lead + self.source(o - lead, unit, direction)) as usize,
            })
            .collect())
    }

    /// `data` of delta-net tensor `t` (its input descriptor) moved to the
    /// other side's layout. Rows move whole (ggml blocks too); `out_proj`'s
    /// columns move element by element, blocks decoded to f32 first.
    pub(crate) fn apply<'a>(
        &self,
        data: TensorData<'a>,
        t: &TensorInfo,
        part: Part,
        direction: Direction,
    ) -> Result<TensorData<'a>> {
        let rows = t.shape.first().copied().unwrap_or(1).max(1);
        if !self.tiled {
            // Nothing moves: A_log's values alone change.
            return match part {
                Part::ALog => a_log(data, t, direction),
                _ => Ok(data),
            };
        }
        if part == Part::Out {
            return self.columns(data, t, direction);
        }
        let data = match part {
            Part::ALog => a_log(data, t, direction)?,
            _ => data,
        };
        let order = self.order(part, rows, &t.name, direction)?;
        let row_bytes = usize::try_from(t.nbytes / rows).unwrap_or(0);
        crate::permute::reorder_blocks(data, row_bytes, &order, &t.name)
    }

    /// `out_proj` `[hidden, values]` with its value columns reordered.
    fn columns<'a>(
        &self,
        data: TensorData<'a>,
        t: &TensorInfo,
        direction: Direction,
    ) -> Result<TensorData<'a>> {
        let [rows, cols] = t.shape[..] else {
            return Err(refuse(&t.name, format!("out_proj is 2-D, not {:?}", t.shape)));
        };
        let order = self.order(Part::Out, cols, &t.name, direction)?;
        let elem = crate::decode::plain(t.dtype)
            .byte_size()
            .ok_or_else(|| refuse(&t.name, format!("{} is not a plain dtype", t.dtype)))?;
        let bytes = crate::decode::owned_elements(data.into_vec()?, t.dtype, t.numel(), &t.name)?;
        let row_bytes = usize::try_from(cols).unwrap_or(0) * elem;
        if bytes.len() as u64 != rows * row_bytes as u64 {
            return Err(refuse(&t.name, "its size disagrees with its shape".into()));
        }
        // A row per chunk: out_proj is hidden x values, a layer's smaller matrix.
        let chunks = (0..rows as usize).map(move |r| {
            let row = &bytes[r * row_bytes..(r + 1) * row_bytes];
            Ok(order
                .iter()
                .flat_map(|&c| &row[c * elem..(c + 1) * elem])
                .copied()
                .collect())
        });
        Ok(TensorData::Chunks(Box::new(chunks)))
    }
}

fn refuse(name: &str, why: String) -> Error {
    Error::unsupported(code::MODEL_INCONSISTENT, format!("tensor '{name}': {why}"))
}

/// `-exp(A_log)` into GGUF, `log(-a)` back, in the tensor's float dtype.
pub(crate) fn a_log<'a>(
    data: TensorData<'a>,
    t: &TensorInfo,
    direction: Direction,
) -> Result<TensorData<'a>> {
    let f = match direction {
        Direction::ToGguf => |x: f32| -(x as f64).exp() as f32,
        Direction::ToHf => |a: f32| (-(a as f64)).ln() as f32,
    };
    match t.dtype {
        DType::F32 | DType::F16 | DType::BF16 => crate::offset::map(data, t.dtype, t.dtype, f),
        other => Err(Error::unsupported(
            code::CAST,
            format!("tensor '{}': A_log in {other}, not a float dtype", t.name),
        )),
    }
}

/// The HF shape of GGUF tensor `t` of `part`: the convolution regains its
/// middle axis.
pub(crate) fn hf_shape(t: &TensorInfo, part: Part) -> Vec<u64> {
    match (part, &t.shape[..]) {
        (Part::Qkv { conv: true }, &[channels, kernel]) => vec![channels, 1, kernel],
        _ => t.shape.clone(),
    }
}

/// The GGUF shape of HF tensor `t` of `part`: the convolution squeezed.
pub(crate) fn gguf_shape(t: &TensorInfo, part: Part) -> Vec<u64> {
    match part {
        Part::Qkv { conv: true } => t.shape.iter().copied().filter(|&d| d != 1).collect(),
        _ => t.shape.clone(),
    }
}

/// The MTP layers config.json counts (Qwen3.5's `mtp_num_hidden_layers`),
/// which llama.cpp adds to the block count; models have one or a few, more
/// than 256 is refused (a layer flag is written per block).
pub(crate) fn mtp_layers(config: &Json) -> Result<u64> {
    let n = config
        .get("mtp_num_hidden_layers")
        .and_then(Json::as_u64)
        .unwrap_or(0);
    if n > 256 {
        return Err(Error::unsupported(
            code::MODEL_INCONSISTENT,
            format!("config.json's mtp_num_hidden_layers {n}: more than 256 MTP layers"),
        ));
    }
    Ok(n)
}

/// M-RoPE's sections as llama.cpp's key holds them: padded to four.
fn sections(config: &Json) -> Option<Vec<i32>> {
    let s = config.get("rope_parameters")?.get("mrope_section")?.as_array()?;
    let mut v: Vec<i32> = s
        .iter()
        .map(|x| x.as_i64().and_then(|x| i32::try_from(x).ok()))
        .collect::<Option<_>>()?;
    v.resize(v.len().max(4), 0);
    v.truncate(4);
    Some(v)
}

/// `{a}.rope.dimension_sections` where config.json has M-RoPE sections.
pub(crate) fn mrope_key(m: &mut Metadata, a: &str, config: &Json) {
    if let Some(v) = sections(config) {
        m.insert(
            format!("{a}.rope.dimension_sections"),
            Value::Array(Array::I32(v)),
        );
    }
}

/// The keys `Qwen3NextModel` and Qwen3.5's mixin write after the file type
/// (with the expert widths between): MTP layers, the delta-net's geometry,
/// which layers are recurrent, the full-attention interval, the rotary
/// width, and Qwen3.5's default M-RoPE sections where config.json has none.
pub(crate) fn tail_keys(m: &mut Metadata, a: &str, config: &Json, qwen35: bool) -> Result<()> {
    let f = |k: &str| config.get(k).and_then(Json::as_u64);
    let need = |k: &str| {
        f(k).ok_or_else(|| {
            Error::unsupported(
                code::NOT_A_MODEL,
                format!("config.json has no {k} (a non-negative integer) for the gated delta-net layers"),
            )
        })
    };
    let u32v = |v: u64| Value::U32(u32::try_from(v).unwrap_or(u32::MAX));
    let (layers, mtp) = (need("num_hidden_layers")?, mtp_layers(config)?);
    if mtp > 0 {
        m.insert(format!("{a}.nextn_predict_layers"), u32v(mtp));
    }
    m.insert(
        format!("{a}.ssm.conv_kernel"),
        u32v(need("linear_conv_kernel_dim")?),
    );
    m.insert(format!("{a}.ssm.state_size"), u32v(need("linear_key_head_dim")?));
    m.insert(
        format!("{a}.ssm.group_count"),
        u32v(need("linear_num_key_heads")?),
    );
    let v_heads = need("linear_num_value_heads")?;
    m.insert(format!("{a}.ssm.time_step_rank"), u32v(v_heads));
    let inner = need("linear_value_head_dim")?.saturating_mul(v_heads);
    m.insert(format!("{a}.ssm.inner_size"), u32v(inner));
    if let Some(types) = config.get("layer_types").and_then(Json::as_array) {
        if types.len() as u64 != layers {
            return Err(Error::unsupported(
                code::MODEL_INCONSISTENT,
                format!(
                    "config.json's layer_types has {} entries for {layers} layers",
                    types.len()
                ),
            ));
        }
        let mut recurrent: Vec<bool> = types
            .iter()
            .map(|t| t.as_str() == Some("linear_attention"))
            .collect();
        recurrent.resize(usize::try_from(layers.saturating_add(mtp)).unwrap_or(0), false);
        m.insert(
            format!("{a}.attention.recurrent_layers"),
            Value::Array(Array::Bool(recurrent)),
        );
    }
    m.insert(
        format!("{a}.full_attention_interval"),
        u32v(f("full_attention_interval").unwrap_or(4)),
    );
    let head_dim = match f("head_dim") {
        Some(d) => d,
        None => need("hidden_size")? / need("num_attention_heads")?.max(1),
    };
    let partial = config
        .get("rope_parameters")
        .and_then(|r| r.get("partial_rotary_factor"))
        .and_then(Json::as_f64)
        .unwrap_or(0.25);
    m.insert(
        format!("{a}.rope.dimension_count"),
        u32v((head_dim as f64 * partial) as u64),
    );
    if qwen35 && sections(config).is_none() {
        m.insert(
            format!("{a}.rope.dimension_sections"),
            Value::Array(Array::I32(vec![11, 11, 10, 0])),
        );
    }
    Ok(())
}

/// config.json's fields for the delta-net family from the GGUF (as
/// transformers' GGUF loader reads them): the geometry, the layer types,
/// the MTP layers apart from the decoder's, interleaved M-RoPE.
pub(crate) fn config_fields(
    c: &mut Map<String, Json>,
    metadata: &Metadata,
    key: &dyn Fn(&str) -> String,
    qwen35: bool,
) {
    use crate::gguf_kv::{array, int};
    let mtp = int(metadata, &key("nextn_predict_layers")).unwrap_or(0).max(0);
    let blocks = int(metadata, &key("block_count")).unwrap_or(0);
    let layers = blocks.saturating_sub(mtp).max(0);
    c.insert("num_hidden_layers".into(), json!(layers));
    // Qwen3.5's configs count the MTP layers; Qwen3-Next's leave them to the weights.
    if mtp > 0 && qwen35 {
        c.insert("mtp_num_hidden_layers".into(), json!(mtp));
    }
    for (gguf, hf) in [
        ("ssm.conv_kernel", "linear_conv_kernel_dim"),
        ("ssm.state_size", "linear_key_head_dim"),
        ("ssm.group_count", "linear_num_key_heads"),
        ("ssm.time_step_rank", "linear_num_value_heads"),
    ] {
        if let Some(v) = int(metadata, &key(gguf)) {
            c.insert(hf.into(), json!(v));
        }
    }
    if let (Some(inner), Some(v_heads)) = (
        int(metadata, &key("ssm.inner_size")),
        int(metadata, &key("ssm.time_step_rank")).filter(|&v| v > 0),
    ) {
        c.insert("linear_value_head_dim".into(), json!(inner / v_heads));
    }
    if let Some(Array::Bool(recurrent)) = array(metadata, &key("attention.recurrent_layers")) {
        let types: Vec<&str> = recurrent
            .iter()
            .take(layers as usize)
            .map(|&r| if r { "linear_attention" } else { "full_attention" })
            .collect();
        c.insert("layer_types".into(), json!(types));
    } else if let Some(every) = int(metadata, &key("full_attention_interval")).filter(|&n| n > 0) {
        c.insert("full_attention_interval".into(), json!(every));
    }
    if let (true, Some(Json::Object(rope))) = (qwen35, c.get_mut("rope_parameters")) {
        if let Some(Array::I32(s)) = array(metadata, &key("rope.dimension_sections")) {
            let s: Vec<i32> = s.iter().copied().filter(|&x| x != 0).collect();
            rope.insert("mrope_section".into(), json!(s));
        }
        rope.insert("mrope_interleaved".into(), json!(true));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference's `reshape(K, r, d).permute(1, 0, 2)` on row indices.
    fn reference_tiled(k: u64, r: u64, d: u64) -> Vec<usize> {
        let mut out = Vec::new();
        for j in 0..r {
            for kk in 0..k {
                for x in 0..d {
                    out.push(((kk * r + j) * d + x) as usize);
                }
            }
        }
        out
    }

    #[test]
    fn value_heads_tile_as_the_reference_and_back() {
        let g = Geometry::new(2, 6, 3, 4).unwrap();
        let to = g.order(Part::Values, 24, "z", Direction::ToGguf).unwrap();
        assert_eq!(to, reference_tiled(2, 3, 4));
        let back = g.order(Part::Values, 24, "z", Direction::ToHf).unwrap();
        assert!((0..24).all(|i| to[back[i]] == i));
        // in_proj_qkv: the 12 query and key rows stay.
        let qkv = g
            .order(Part::Qkv { conv: false }, 36, "qkv", Direction::ToGguf)
            .unwrap();
        assert_eq!(&qkv[..12], (0..12).collect::<Vec<_>>());
        assert_eq!(qkv[12..].iter().map(|r| r - 12).collect::<Vec<_>>(), to);
        assert!(g.order(Part::Heads, 5, "a", Direction::ToGguf).is_err());
        // Equal head counts: nothing moves.
        let same = Geometry::new(4, 4, 2, 2).unwrap();
        let id = same.order(Part::Values, 8, "z", Direction::ToGguf).unwrap();
        assert_eq!(id, (0..8).collect::<Vec<_>>());
        assert_eq!(Geometry::new(4, 6, 2, 2), None);
        // A geometry whose row order would be gigabytes is refused up front.
        assert_eq!(Geometry::new(1 << 20, 1 << 20, 1 << 10, 1 << 10), None);
    }

    /// Qwen3-Next's in_proj_qkvz: per key head q, k, v, z rows; GGUF's
    /// attn_qkv takes all q, then all k, then all v, attn_gate all z (the
    /// reference's view(hidden, K, q+k+v+z) and split), and back.
    #[test]
    fn qkvz_splits_as_the_reference_and_merges_back() {
        let g = Geometry {
            tiled: false,
            ..Geometry::new(2, 4, 1, 1).unwrap()
        };
        // Per head: q, k, v v (2 value heads), z z.
        assert_eq!(g.qkvz_len(), 12);
        assert_eq!(g.qkvz_rows(false), [0, 6, 1, 7, 2, 3, 8, 9]);
        assert_eq!(g.qkvz_rows(true), [4, 5, 10, 11]);
        let rows: Vec<u8> = (0..12).collect();
        let qkv = gather_rows(&rows, 1, &g.qkvz_rows(false), "qkvz").unwrap();
        let z = gather_rows(&rows, 1, &g.qkvz_rows(true), "qkvz").unwrap();
        assert_eq!(merge_qkvz(&qkv, &z, &g, 1, "qkvz").unwrap(), rows);
        assert!(gather_rows(&rows, 1, &[12], "qkvz").is_err());
    }

    /// Against torch 2.15's `-torch.exp(x)` and `torch.log(-a)` in f32
    /// (bits): the round trip is not exact for every value (0.5 comes back
    /// one ulp below), in torch as here.
    #[test]
    fn a_log_goes_through_minus_exp_and_back_as_torch() {
        let xs = [0.5f32, -2.0, 2.7725887];
        let bytes: Vec<u8> = xs.iter().flat_map(|x| x.to_le_bytes()).collect();
        let t = TensorInfo::new("A_log", DType::F32, vec![3]).unwrap();
        let bits = |b: &[u8]| -> Vec<u32> {
            b.chunks(4)
                .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
                .collect()
        };
        let a = a_log(TensorData::Borrowed(&bytes), &t, Direction::ToGguf)
            .unwrap()
            .into_vec()
            .unwrap();
        assert_eq!(bits(&a), [0xbfd3094c, 0xbe0a9555, 0xc1800000]);
        let back = a_log(TensorData::Borrowed(&a), &t, Direction::ToHf)
            .unwrap()
            .into_vec()
            .unwrap();
        assert_eq!(bits(&back), [0x3effffff, 0xc0000000, 0x40317218]);
    }
}
