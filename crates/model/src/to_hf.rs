//! A GGUF model as Hugging Face tensors: names from the architecture table,
//! Q/K rows back in Hugging Face's order. Adapts the raw GGUF source (before
//! any dequantization or cast, so rows are whole blocks and nothing is copied
//! but the permuted matrices).

use crate::arch::{self, Arch};
use crate::gguf_kv::{int, string};
use crate::permute::{check, permute_rows, Direction};
use tensorcast_core::code;
use tensorcast_core::{DType, Error, Metadata, Result, Source, TensorData, TensorInfo};

/// What happens to one tensor on the way.
#[derive(Clone, Copy, Debug)]
enum Transform {
    None,
    /// Rows un-permuted for this many heads.
    Unpermute(u64),
    /// A zero-centred norm stored as `w + 1`: minus 1 in f32, as
    /// transformers' loader computes it, written as f32.
    SubtractOne,
    /// A matrix the family stores `[in, out]` (GPT-2's Conv1D): transposed
    /// back, quantized blocks decoded to f32 first.
    Transpose,
    /// DeepSeek's `attn_k_b` with `attn_v_b` (GGUF tensor `v`) merged back
    /// into `kv_b_proj`.
    MlaMerge {
        v: usize,
    },
    /// Falcon's QKV head blocks back in HF's groups (`n_head`, `n_kv`).
    Regroup(u64, u64),
    /// gpt-oss's down experts (or a bias), per expert back to `[in, out]`.
    Unstack {
        transpose: bool,
    },
    /// Fused experts' gate (or bias) with the up ones (GGUF tensor `up`):
    /// interleaved into gpt-oss's `gate_up_proj`, or stacked in `halves`
    /// into Granite's `input_linear`.
    Weave {
        up: usize,
        transpose: bool,
        halves: bool,
    },
    /// Expert `e` of a stacked 3-D tensor of `count` experts: its slice of
    /// the bytes (whole rows, so whole blocks of a quantized tensor).
    Expert {
        e: u64,
        count: u64,
    },
    /// A gated delta-net tensor: value heads grouped again, `ssm_a` back
    /// to `A_log` (`gated_delta.rs`).
    Delta(crate::gated_delta::Geometry, crate::gated_delta::Part),
    /// Mamba's `ssm_a` back to `A_log`.
    LogNeg,
    /// Qwen3-Next's `attn_qkv` with `attn_gate` (GGUF tensor `gate`)
    /// merged back into `in_proj_qkvz`.
    QkvzMerge(crate::gated_delta::Geometry, usize),
}

/// A GGUF source seen as a Hugging Face model.
pub struct GgufToHf<S> {
    inner: S,
    arch: &'static Arch,
    tensors: Vec<TensorInfo>,
    /// Per output tensor: the GGUF tensor it comes from and how.
    transforms: Vec<(usize, Transform)>,
    /// The GGUF's key/values with what config.json needs from its
    /// generated tensors (Gemma 4's rotary fraction), where it has any.
    metadata: Option<tensorcast_core::Metadata>,
}

/// The key carrying what Gemma 4's `rope_freqs` says (the rotated share of
/// the full heads) to config.json: derived by tensorcast, not llama.cpp's.
pub const ROTARY_FRACTION_KEY: &str = "tensorcast.rope_freqs.rotary_fraction";

/// The prefix of the keys carrying Llama 3.1's rope scaling, recovered from
/// `rope_freqs`, to config.json (derived by tensorcast, not llama.cpp's).
pub const LLAMA3_KEY: &str = "tensorcast.rope_freqs.llama3";

/// The architecture table a GGUF's metadata names, or a refusal naming it.
pub fn arch_of(metadata: &Metadata) -> Result<&'static Arch> {
    let name = string(metadata, "general.architecture").ok_or_else(|| {
        Error::unsupported(
            code::NOT_A_MODEL,
            "the GGUF has no general.architecture: it is not a model file",
        )
    })?;
    let experts = int(metadata, &format!("{name}.expert_count"));
    arch::for_gguf(name, experts).ok_or_else(|| {
        Error::unsupported(code::NO_MODEL_TABLE, format!(
            "architecture '{name}' has no model table yet (known: {}); convert the container with its names kept instead",
            arch::known().join(", ")
        ))
    })
}

impl<S: Source> GgufToHf<S> {
    /// Wraps a GGUF source; refuses unknown architectures and tensors.
    pub fn new(inner: S) -> Result<Self> {
        let metadata = inner.metadata();
        let arch = arch_of(metadata)?;
        let heads = int(metadata, &format!("{}.attention.head_count", arch.gguf));
        let kv_heads = int(metadata, &format!("{}.attention.head_count_kv", arch.gguf)).or(heads);
        let all_heads = heads;
        let mut tensors = Vec::with_capacity(inner.tensors().len());
        let mut transforms = Vec::with_capacity(inner.tensors().len());
        // Qwen3.5: the delta-net's geometry, and the decoder's layers (the
        // blocks past them are MTP layers, `mtp.rs`).
        let hybrid = arch.keys.contains(&arch::Key::GatedDeltaNet);
        let delta = crate::gated_delta::Geometry::from_gguf(metadata, arch.gguf)
            .filter(|_| hybrid)
            .map(|mut g| {
                g.tiled = arch.keys.contains(&arch::Key::MropeSections);
                g
            });
        let layers = match hybrid {
            true => {
                let blocks = int(metadata, &format!("{}.block_count", arch.gguf)).unwrap_or(0);
                let mtp = int(metadata, &format!("{}.nextn_predict_layers", arch.gguf)).unwrap_or(0);
                u64::try_from(blocks.saturating_sub(mtp)).unwrap_or(0)
            }
            false => u64::MAX,
        };
        let mut derived = None;
        let head_width =
            int(metadata, &format!("{}.attention.key_length", arch.gguf)).and_then(|w| u64::try_from(w).ok());
        let deci_layers = match arch.keys.contains(&arch::Key::Deci) {
            true => crate::deci::layers_of(metadata, arch.gguf),
            false => None,
        };
        for (index, t) in inner.tensors().iter().enumerate() {
            // Gemma 4's generated rope frequencies: no HF tensor, the
            // rotary fraction they encode goes to config.json.
            if arch.keys.contains(&arch::Key::Gemma4Tail) && t.name == crate::gemma4::ROPE_FREQS {
                let dim = int(metadata, &format!("{}.attention.key_length", arch.gguf)).unwrap_or(0);
                let values = match t.dtype {
                    // One value per rotary pair: a few hundred at most, read whole.
                    DType::F32 if t.numel() <= 1 << 16 => inner.tensor_data(index)?.into_vec()?,
                    other => {
                        return Err(Error::unsupported(
                            code::MODEL_INCONSISTENT,
                            format!(
                                "tensor '{}' is {} values of {other}, where llama.cpp writes one f32 per rotary pair",
                                t.name,
                                t.numel()
                            ),
                        ))
                    }
                };
                let fraction = crate::gemma4::rotary_fraction(&values, u64::try_from(dim).unwrap_or(0));
                let fraction = fraction.ok_or_else(|| {
                    Error::unsupported(
                        code::MODEL_INCONSISTENT,
                        format!(
                            "tensor '{}' is not one value per pair of the {dim}-wide full heads",
                            t.name
                        ),
                    )
                })?;
                let mut m = metadata.clone();
                m.insert(ROTARY_FRACTION_KEY, tensorcast_core::Value::F64(fraction));
                derived = Some(m);
                continue;
            }
            // Llama 3.1's rope scaling as factors: its parameters, recovered
            // and checked, go to config.json.
            if arch.permute_qk && t.name == crate::llama3_rope::ROPE_FREQS {
                let key = |k: &str| format!("{}.{k}", arch.gguf);
                let base = crate::gguf_kv::float(metadata, &key("rope.freq_base")).unwrap_or(10000.0);
                let dim = int(metadata, &key("rope.dimension_count"))
                    .or_else(|| int(metadata, &key("attention.key_length")))
                    .or_else(|| {
                        Some(
                            int(metadata, &key("embedding_length"))?
                                / int(metadata, &key("attention.head_count"))?.max(1),
                        )
                    })
                    .unwrap_or(0);
                let values = match t.dtype {
                    // One value per rotary pair: a few hundred at most, read whole.
                    DType::F32 if t.numel() <= 1 << 16 => inner.tensor_data(index)?.into_vec()?,
                    _ => Vec::new(),
                };
                let s = crate::llama3_rope::recover(&values, base, u64::try_from(dim).unwrap_or(0)).ok_or_else(|| {
                    Error::unsupported(
                        code::MODEL_INCONSISTENT,
                        format!(
                            "tensor '{}': its {} factors are not Llama 3's rope scaling for base {base} and {dim} rotary dims",
                            t.name,
                            t.numel()
                        ),
                    )
                })?;
                let mut m = derived.take().unwrap_or_else(|| metadata.clone());
                for (k, v) in [
                    ("factor", s.factor),
                    ("low_freq_factor", s.low_freq_factor),
                    ("high_freq_factor", s.high_freq_factor),
                    (
                        "original_max_position_embeddings",
                        s.original_max_position_embeddings,
                    ),
                ] {
                    m.insert(format!("{LLAMA3_KEY}.{k}"), tensorcast_core::Value::F64(v));
                }
                derived = Some(m);
                continue;
            }
            // Qwen3-Next: attn_qkv and attn_gate are one in_proj_qkvz.
            if let (Some(g), false) = (delta, delta.is_some_and(|g| g.tiled)) {
                if let Some(stem) = t.name.strip_suffix("attn_qkv.weight") {
                    let gate = partner(
                        inner.tensors(),
                        &format!("{stem}attn_gate.weight"),
                        &t.name,
                        "merge in_proj_qkvz with",
                    )?;
                    let block = stem.trim_start_matches("blk.").trim_end_matches('.');
                    let name = format!("{}{block}.linear_attn.in_proj_qkvz.weight", arch.block_prefix);
                    // The query, key and value rows this geometry gives, and no other shape.
                    let want = g.qkvz_rows(false).len() as u64;
                    if t.shape.first() != Some(&want) || t.shape.len() != 2 {
                        return Err(Error::unsupported(
                            code::MODEL_INCONSISTENT,
                            format!(
                                "tensor '{}': {:?} is not {want} rows of queries, keys and values",
                                t.name, t.shape
                            ),
                        ));
                    }
                    let shape = vec![g.qkvz_len(), t.shape[1]];
                    let info = TensorInfo::new(&name, t.dtype, shape).ok_or_else(|| {
                        Error::unsupported(code::TOO_LARGE, format!("tensor '{name}': size overflows"))
                    })?;
                    tensors.push(info);
                    transforms.push((index, Transform::QkvzMerge(g, gate)));
                    continue;
                }
                if let Some(stem) = t.name.strip_suffix("attn_gate.weight") {
                    partner(
                        inner.tensors(),
                        &format!("{stem}attn_qkv.weight"),
                        &t.name,
                        "merge in_proj_qkvz with",
                    )?;
                    continue;
                }
            }
            if let Some(name) = crate::mtp::around_hf(&t.name, layers) {
                let transform = match t.name.ends_with("norm.weight") {
                    true => Transform::SubtractOne,
                    false => Transform::None,
                };
                let mut info = t.clone();
                info.name = name;
                if let Transform::SubtractOne = transform {
                    info = TensorInfo::new(&info.name, DType::F32, info.shape.clone()).ok_or_else(|| {
                        Error::unsupported(code::TOO_LARGE, format!("tensor '{}': size overflows", t.name))
                    })?;
                }
                tensors.push(info);
                transforms.push((index, transform));
                continue;
            }
            if arch.keys.contains(&arch::Key::MlaLengths) {
                let find = |name: &str| partner(inner.tensors(), name, &t.name, "make kv_b_proj with");
                if let Some(stem) = t.name.strip_suffix("attn_k_b.weight") {
                    let v = find(&format!("{stem}attn_v_b.weight"))?;
                    let (me, rank) = crate::mla::Mla::of_gguf(t, &inner.tensors()[v])?;
                    let block = stem.trim_start_matches("blk.").trim_end_matches('.');
                    let name = format!("{}{block}.self_attn.kv_b_proj.weight", arch.block_prefix);
                    let rows = me.rows().unwrap_or(u64::MAX);
                    let info = TensorInfo::new(&name, crate::decode::plain(t.dtype), vec![rows, rank as u64])
                        .ok_or_else(|| {
                            Error::unsupported(code::TOO_LARGE, format!("tensor '{name}': size overflows"))
                        })?;
                    tensors.push(info);
                    transforms.push((index, Transform::MlaMerge { v }));
                    continue;
                }
                if let Some(stem) = t.name.strip_suffix("attn_v_b.weight") {
                    find(&format!("{stem}attn_k_b.weight"))?;
                    continue;
                }
            }
            if let Some(role) = crate::interleaved::from_gguf(arch.fused_experts, &t.name) {
                use crate::interleaved::{hf_info, FromGguf};
                let find = |name: &str| partner(inner.tensors(), name, &t.name, "interleave with");
                let (info, transform) = match role {
                    FromGguf::Alone { name, transpose } => (
                        hf_info(&name, t, false, transpose)?,
                        Transform::Unstack { transpose },
                    ),
                    FromGguf::Woven {
                        name,
                        up,
                        transpose,
                        halves,
                    } => {
                        let up = find(&up)?;
                        let transform = Transform::Weave {
                            up,
                            transpose,
                            halves,
                        };
                        (hf_info(&name, t, true, transpose)?, transform)
                    }
                    FromGguf::Consumed => {
                        find(&t.name.replace("ffn_up_exps", "ffn_gate_exps"))?;
                        continue;
                    }
                };
                tensors.push(info);
                transforms.push((index, transform));
                continue;
            }
            if arch.expert_hf_name(&t.name, 0).is_some() {
                let count = t
                    .shape
                    .first()
                    .copied()
                    .filter(|&c| c > 0 && t.shape.len() == 3 && t.nbytes % c == 0);
                let count = count.ok_or_else(|| {
                    Error::unsupported(
                        code::MODEL_INCONSISTENT,
                        format!(
                            "tensor '{}' holds experts, so it is 3-D of whole experts, not {:?} in {} bytes",
                            t.name, t.shape, t.nbytes
                        ),
                    )
                })?;
                let each = t.nbytes / count;
                for e in 0..count {
                    let mut info = t.clone();
                    info.name = arch.expert_hf_name(&t.name, e).unwrap_or_default();
                    info.shape = t.shape[1..].to_vec();
                    info.nbytes = each;
                    info.file_offset = t.file_offset.map(|o| o + e * each);
                    tensors.push(info);
                    transforms.push((index, Transform::Expert { e, count }));
                }
                continue;
            }
            let name = match arch.keys.contains(&arch::Key::T5) {
                // T5's FFN up is `wi` or `wi_1`, by whether its block has a gate.
                true => {
                    let gate = crate::t5::block_of(&t.name).map(|b| format!("{b}ffn_gate.weight"));
                    let gated = gate.is_some_and(|g| inner.tensors().iter().any(|u| u.name == g));
                    crate::t5::hf_name(&t.name, gated)
                }
                false => arch.hf_name(&t.name),
            };
            let name = name.ok_or_else(|| {
                Error::unsupported(
                    code::NO_MODEL_TABLE,
                    format!(
                        "tensor '{}' has no Hugging Face name in the {} table",
                        t.name, arch.gguf
                    ),
                )
            })?;
            let part = t.name.split('.').nth(2).unwrap_or("");
            // DeciLM: each layer's own head counts, and the linear map that
            // replaces a layer's attention (no KV heads) under its name.
            let layer = deci_layers
                .as_ref()
                .zip(gguf_block(&t.name))
                .and_then(|(l, b)| l.get(b).copied());
            let (heads, kv_heads) = match layer {
                Some(l) => (i64::try_from(l.heads).ok(), i64::try_from(l.kv_heads).ok()),
                None => (heads, kv_heads),
            };
            let name = match layer {
                Some(l) if l.kv_heads == 0 && part == "attn_output" => {
                    name.replace("self_attn.o_proj", "self_attn.linear_attn")
                }
                _ => name,
            };
            let heads = match (arch.permute_qk, part, t.name.starts_with("blk.")) {
                (true, "attn_q", true) => heads,
                (true, "attn_k", true) => kv_heads,
                _ => None,
            };
            let delta_part = delta.zip(crate::gated_delta::part_of(&name));
            let transform = match (heads, delta_part) {
                (None, Some((g, part))) => Transform::Delta(g, part),
                (None, _) if arch.keys.contains(&arch::Key::Mamba) && t.name.ends_with(".ssm_a") => {
                    Transform::LogNeg
                }
                (None, _) if arch.is_transposed(&name) && t.shape.len() == 2 => Transform::Transpose,
                (None, _) if arch.qkv_regroup != crate::arch::QkvRegroup::None && part == "attn_qkv" => {
                    let count = |n: Option<i64>| n.and_then(|n| u64::try_from(n).ok()).unwrap_or(1);
                    let (h, kv) = (count(all_heads), count(kv_heads));
                    let rows = t.shape.first().copied().unwrap_or(0);
                    crate::permute::check_qkv_blocks(&t.name, rows, arch.qkv_regroup, h, kv)?;
                    Transform::Regroup(h, kv)
                }
                (Some(h), _) => {
                    let h = u64::try_from(h).unwrap_or(0);
                    let rows = t.shape.first().copied().unwrap_or(0);
                    check(&t.name, rows, h)?;
                    // Where the file states the head width, the rows are that
                    // many heads of it (a per-layer head count that disagrees
                    // would un-permute the wrong rows).
                    if let Some(width) = head_width.filter(|&w| w > 0 && rows != h.saturating_mul(w)) {
                        return Err(Error::unsupported(
                            code::MODEL_INCONSISTENT,
                            format!("tensor '{}': {rows} rows are not {h} heads of {width}", t.name),
                        ));
                    }
                    Transform::Unpermute(h)
                }
                (None, _)
                    if arch.norm_offset
                        && t.name.ends_with("norm.weight")
                        && !crate::gated_delta::plain_norm(&t.name) =>
                {
                    Transform::SubtractOne
                }
                (None, _) => Transform::None,
            };
            let mut info = t.clone();
            info.name = name;
            // LFM2's and Mamba's convolution kernels regain their middle axis.
            let kernel = (arch.keys.contains(&arch::Key::ShortConvCache)
                && crate::short_conv::is_kernel(&info.name))
                || (arch.keys.contains(&arch::Key::Mamba) && t.name.ends_with(".ssm_conv1d.weight"));
            if kernel {
                info.shape = crate::short_conv::hf_shape(&t.shape);
            }
            match transform {
                Transform::None
                | Transform::MlaMerge { .. }
                | Transform::Regroup(..)
                | Transform::Expert { .. }
                | Transform::Unstack { .. }
                | Transform::Weave { .. }
                | Transform::LogNeg
                | Transform::QkvzMerge(..) => {}
                Transform::Transpose => {
                    let dtype = crate::decode::plain(t.dtype);
                    let shape = vec![t.shape[1], t.shape[0]];
                    info = TensorInfo::new(&info.name, dtype, shape).ok_or_else(|| {
                        Error::unsupported(code::TOO_LARGE, format!("tensor '{}': size overflows", t.name))
                    })?;
                }
                Transform::Unpermute(_) => info.file_offset = None,
                Transform::Delta(_, part) => {
                    let shape = crate::gated_delta::hf_shape(t, part);
                    // out_proj's columns move element by element: blocks decoded.
                    let dtype = match part {
                        crate::gated_delta::Part::Out => crate::decode::plain(t.dtype),
                        _ => t.dtype,
                    };
                    info = TensorInfo::new(&info.name, dtype, shape).ok_or_else(|| {
                        Error::unsupported(code::TOO_LARGE, format!("tensor '{}': size overflows", t.name))
                    })?;
                }
                Transform::SubtractOne => {
                    info = TensorInfo::new(&info.name, DType::F32, info.shape.clone()).ok_or_else(|| {
                        Error::unsupported(code::TOO_LARGE, format!("tensor '{}': size overflows", t.name))
                    })?;
                }
            }
            tensors.push(info);
            transforms.push((index, transform));
        }
        // The blocks past the decoder's are Qwen3.5's MTP layers.
        if hybrid {
            for t in &mut tensors {
                t.name = crate::mtp::rename_hf(std::mem::take(&mut t.name), layers, arch.block_prefix);
            }
        }
        Ok(GgufToHf {
            inner,
            arch,
            tensors,
            transforms,
            metadata: derived,
        })
    }

    /// The architecture table in use.
    pub fn arch(&self) -> &'static Arch {
        self.arch
    }
}

impl<S: Source> Source for GgufToHf<S> {
    fn format(&self) -> &'static str {
        self.inner.format()
    }

    fn metadata(&self) -> &tensorcast_core::Metadata {
        self.metadata.as_ref().unwrap_or_else(|| self.inner.metadata())
    }

    fn warnings(&self) -> &[String] {
        self.inner.warnings()
    }

    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        let &(inner, transform) = self
            .transforms
            .get(index)
            .ok_or_else(|| Error::usage(code::CALL_ORDER, format!("no tensor #{index}")))?;
        let data = self.inner.tensor_data(inner)?;
        match transform {
            Transform::None => Ok(data),
            Transform::Expert { e, count } => {
                let each = self.inner.tensors()[inner].nbytes / count;
                Ok(byte_range(data, e * each, each))
            }
            Transform::Regroup(heads, kv) => {
                let order = crate::permute::inverse(&crate::permute::qkv_order(
                    self.arch.qkv_regroup,
                    heads as usize,
                    kv as usize,
                ));
                let t = &self.inner.tensors()[inner];
                let block = usize::try_from(t.nbytes).unwrap_or(0) / order.len().max(1);
                crate::permute::reorder_blocks(data, block, &order, &t.name)
            }
            Transform::MlaMerge { v } => {
                let all = self.inner.tensors();
                let v_data = self.inner.tensor_data(v)?;
                crate::mla::Mla::merge(data, v_data, &all[inner], &all[v])
            }
            Transform::Unstack { transpose } => {
                crate::interleaved::unstack(data, &self.inner.tensors()[inner], transpose)
            }
            Transform::Weave {
                up,
                transpose,
                halves,
            } => {
                let all = self.inner.tensors();
                let up_data = self.inner.tensor_data(up)?;
                crate::interleaved::weave(data, up_data, &all[inner], &all[up], transpose, halves)
            }
            Transform::Transpose => {
                let stored = &self.inner.tensors()[inner];
                let data = match stored.dtype {
                    DType::Quant(_) => {
                        let bytes = data.into_vec()?;
                        let bytes =
                            crate::decode::owned_elements(bytes, stored.dtype, stored.numel(), &stored.name)?;
                        TensorData::Chunks(Box::new(std::iter::once(Ok(bytes))))
                    }
                    _ => data,
                };
                let mut as_stored = self.tensors[index].clone();
                as_stored.shape.reverse();
                crate::permute::transpose(data, &as_stored)
            }
            Transform::Delta(g, part) => g.apply(data, &self.inner.tensors()[inner], part, Direction::ToHf),
            Transform::LogNeg => {
                crate::gated_delta::a_log(data, &self.inner.tensors()[inner], Direction::ToHf)
            }
            Transform::QkvzMerge(g, gate) => {
                let t = &self.inner.tensors()[inner];
                let rows = t.shape.first().copied().unwrap_or(1).max(1);
                let row_bytes = usize::try_from(t.nbytes / rows).unwrap_or(0);
                let qkv = data.into_vec()?;
                let z = self.inner.tensor_data(gate)?.into_vec()?;
                let out = crate::gated_delta::merge_qkvz(&qkv, &z, &g, row_bytes, &t.name)?;
                Ok(TensorData::Chunks(Box::new(std::iter::once(Ok(out)))))
            }
            Transform::SubtractOne => {
                let from = self.inner.tensors()[inner].dtype;
                crate::offset::add(data, from, DType::F32, -1.0)
            }
            Transform::Unpermute(heads) => {
                let t = &self.tensors[index];
                let rows = t.shape.first().copied().unwrap_or(1).max(1);
                let row_bytes = usize::try_from(t.nbytes / rows).unwrap_or(0);
                permute_rows(data, rows, row_bytes, heads, Direction::ToHf)
            }
        }
    }
}

/// Bytes `start..start + len` of a tensor's data, borrowed where it is.
fn byte_range(data: TensorData<'_>, start: u64, len: u64) -> TensorData<'_> {
    let (start, len) = (
        usize::try_from(start).unwrap_or(usize::MAX),
        usize::try_from(len).unwrap_or(usize::MAX),
    );
    let end = start.saturating_add(len);
    match data {
        TensorData::Borrowed(bytes) => TensorData::Borrowed(bytes.get(start..end).unwrap_or_default()),
        TensorData::Located { bytes, origin } => TensorData::Located {
            bytes: bytes.get(start..end).unwrap_or_default(),
            origin: origin.advanced(start as u64),
        },
        other => {
            // Pieces produced in turn: skip to `start`, keep `len` bytes.
            let mut at = 0usize;
            let pieces = other
                .aligned_chunks(1, tensorcast_core::CHUNK_BYTES)
                .filter_map(move |c| {
                    let c = match c {
                        Ok(c) => c,
                        Err(e) => return Some(Err(e)),
                    };
                    let (lo, hi) = (at, at + c.len());
                    at = hi;
                    let (a, b) = (start.clamp(lo, hi) - lo, end.clamp(lo, hi) - lo);
                    (a < b).then(|| Ok(c[a..b].to_vec()))
                });
            TensorData::Chunks(Box::new(pieces))
        }
    }
}

/// The block number of GGUF tensor `name` (`blk.N.`).
fn gguf_block(name: &str) -> Option<usize> {
    name.strip_prefix("blk.")?.split('.').next()?.parse().ok()
}

/// The index of tensor `name`, which `of` is read with (`why`), or a
/// refusal naming both.
fn partner(tensors: &[TensorInfo], name: &str, of: &str, why: &str) -> Result<usize> {
    tensors.iter().position(|u| u.name == name).ok_or_else(|| {
        Error::unsupported(
            code::MODEL_INCONSISTENT,
            format!("tensor '{of}' has no '{name}' to {why}"),
        )
    })
}
