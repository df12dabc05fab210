//! A Hugging Face model folder as a GGUF model: tensors under GGUF names with
//! Q/K rows in llama.cpp's order, norms in f32, and the key/values llama.cpp
//! reads (hyper-parameters, the vocabulary), in the order and types
//! `convert_hf_to_gguf.py` writes them.

use crate::arch::{self, Arch, Key, ParamKind, VocabStyle};
use crate::permute::{check, permute_rows, Direction};
use crate::sentencepiece;
use serde_json::Value as Json;
use tensorcast_core::cast::CastSource;
use tensorcast_core::code;
use tensorcast_core::{
    Array, DType, Error, Input, Metadata, MultiPart, Options, Result, Source, Strings, TensorData,
    TensorInfo, Value, CHUNK_BYTES,
};
use tensorcast_safetensors::SafetensorsFile;

/// Options for reading a Hugging Face folder as a model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelOptions {
    /// The llama.cpp pre-tokenizer name for a BPE vocabulary whose check
    /// hash its table does not know (a known hash always wins).
    pub tokenizer_pre: Option<String>,
}

impl tensorcast_core::FormatOptions for ModelOptions {
    const FORMAT: &'static str = "hf";
    const STAGE: tensorcast_core::Stage = tensorcast_core::Stage::Read;
}

/// What happens to one tensor on its way into the GGUF.
#[derive(Clone, Copy, Debug)]
enum Step {
    Plain,
    /// Rows permuted for this many heads.
    Permute(u64),
    /// A zero-centred norm: `w + 1` in its own dtype.
    AddOne,
    /// A matrix stored `[in, out]` (GPT-2's Conv1D), transposed.
    Transpose,
    /// DeepSeek's `kv_b_proj`: K's part (true) or V's, per head.
    Mla(crate::mla::Mla, bool),
    /// Falcon's QKV head blocks regrouped (`n_head`, `n_kv` heads).
    Regroup(u64, u64),
    /// gpt-oss's interleaved experts, gathered per expert.
    Gather(crate::interleaved::Gather),
    /// Experts stacked into one 3-D tensor: the weights' tensors listed in
    /// `HfToGguf::stacks[n]`, one after another.
    Stack(usize),
    /// A gated delta-net tensor: value heads tiled, `A_log` negated and
    /// exponentiated (`gated_delta.rs`).
    Delta(crate::gated_delta::Geometry, crate::gated_delta::Part),
    /// Mamba's `A_log` as `-exp(A_log)`.
    NegExp,
    /// A tensor the reference generates: `HfToGguf::constants[n]`.
    Constant(usize),
    /// Qwen3-Next's `in_proj_qkvz` rows of `attn_qkv` (or `attn_gate`).
    Qkvz(crate::gated_delta::Geometry, bool),
}

/// The GGUF view of a Hugging Face folder: GGUF names and row order, in
/// the weights' own dtypes ([`HfToGguf::open`] adds the casts).
pub struct HfToGguf {
    weights: Box<dyn Source>,
    /// For each output tensor: its index in `weights` and its transform.
    picks: Vec<(usize, Step)>,
    /// For each [`Step::Stack`]: the experts' tensors, in expert order.
    stacks: Vec<Vec<usize>>,
    /// For each [`Step::Constant`]: its bytes.
    constants: Vec<Vec<u8>>,
    /// How the table's fused QKV head blocks are regrouped.
    regroup: crate::arch::QkvRegroup,
    tensors: Vec<TensorInfo>,
    metadata: Metadata,
    /// What the reference converter also writes but warns about.
    warnings: Vec<String>,
}

fn read_json(input: &Input, name: &str) -> Result<Option<Json>> {
    let Ok(file) = input.sibling(name) else {
        return Ok(None);
    };
    serde_json::from_slice(&file.bytes).map(Some).map_err(|e| {
        Error::unsupported(
            code::NOT_A_MODEL,
            format!("{}: not JSON: {e}", file.name.display()),
        )
    })
}

fn int_field(config: &Json, key: &str) -> Option<u64> {
    config.get(key)?.as_u64()
}

/// `weights`, opened beside the folder's `config.json` as `file`: one part
/// named so that references point into `file`, not the config.
fn beside(file: &str, weights: impl Source + 'static) -> Box<dyn Source> {
    let (format, metadata) = (weights.format(), weights.metadata().clone());
    Box::new(MultiPart::new(
        format,
        vec![(Some(file.to_string()), weights)],
        metadata,
    ))
}

/// The weights of a folder: `model.safetensors` or a sharded index.
pub(crate) fn open_weights(input: &Input, options: &Options) -> Result<Box<dyn Source>> {
    if let Ok(index) = input.sibling("model.safetensors.index.json") {
        return Ok(Box::new(tensorcast_safetensors::open_index_input(
            index,
            &options.limits,
        )?));
    }
    if let Ok(file) = input.sibling("model.safetensors") {
        let weights = SafetensorsFile::from_bytes(&file.name, file.bytes, &options.limits)?;
        return Ok(beside("model.safetensors", weights));
    }
    // Older checkpoints: one PyTorch pickle, read by the allowlist VM (never
    // executed), with the options given for PyTorch files.
    if let Ok(file) = input.sibling("pytorch_model.bin") {
        let opts = tensorcast_pickle::PytorchOptions {
            limits: options.limits.clone(),
            ..options.get::<tensorcast_pickle::PytorchOptions>()
        };
        let weights = tensorcast_pickle::PytorchFile::from_bytes(&file.name, file.bytes, &opts)?;
        return Ok(beside("pytorch_model.bin", weights));
    }
    Err(Error::unsupported(code::NOT_A_MODEL, format!(
        "{}: no model.safetensors, model.safetensors.index.json or pytorch_model.bin beside it (sharded .bin checkpoints are not read as a model yet)",
        input.name.display()
    )))
}

/// The dtype a tensor takes in the GGUF: `outtype` for matrices (their own
/// when `None`), f32 for vectors and norms, as llama.cpp requires.
fn gguf_dtype(name: &str, t: &TensorInfo, outtype: Option<DType>) -> DType {
    // The reference's list of tensors kept f32 whatever the outtype, as far
    // as the tables here name them (learned positions, token types, MoE
    // routers).
    let always_f32 = matches!(name, "position_embd.weight" | "token_types.weight")
        || name.ends_with(".ffn_gate_inp.weight")
        || name.ends_with(".ffn_gate_inp_shexp.weight")
        || name.ends_with(".ssm_conv1d.weight")
        || name.ends_with(".shortconv.conv.weight")
        // Anything but a weight (gpt-oss's 2-D expert biases too).
        || !name.ends_with(".weight");
    if t.shape.len() <= 1 || name.ends_with("_norm.weight") || always_f32 || !t.dtype.is_float() {
        return if t.dtype.is_float() { DType::F32 } else { t.dtype };
    }
    match outtype.unwrap_or(t.dtype) {
        d @ (DType::F32 | DType::F16 | DType::BF16) => d,
        _ => DType::F32,
    }
}

/// `general.file_type`: llama.cpp's `LlamaFileType` for the matrices' dtype.
fn file_type(tensors: &[TensorInfo]) -> u32 {
    let matrix = |t: &&TensorInfo| {
        t.shape.len() >= 2 && !matches!(t.name.as_str(), "position_embd.weight" | "token_types.weight")
    };
    match tensors.iter().find(matrix).map(|t| t.dtype) {
        Some(DType::F16) => 1,
        Some(DType::BF16) => 32,
        _ => 0,
    }
}

/// gguf-py's label for a model's tensors: its parameter count, or for a
/// mixture of experts `{experts}x{shared + one expert's}` (`8x7.2B`).
fn moe_size_label(tensors: &[TensorInfo]) -> String {
    let (mut shared, mut expert, mut experts, mut stacks) = (0u64, 0u64, 0u64, 0u64);
    for t in tensors {
        match (t.name.contains("_exps."), t.shape.first()) {
            (true, Some(&e)) if t.shape.len() >= 3 && e > 0 => {
                expert += t.numel() / e;
                experts += e;
                stacks += 1;
            }
            _ => shared += t.numel(),
        }
    }
    match experts.checked_div(stacks) {
        Some(count) if count > 0 => format!("{count}x{}", size_label(shared + expert)),
        _ => size_label(shared),
    }
}

/// gguf-py's size label: `125K`, `1.5B`, ... (two significant digits at least).
fn size_label(params: u64) -> String {
    let p = params as f64;
    let (scaled, suffix) = if p > 1e12 {
        (p * 1e-12, "T")
    } else if p > 1e9 {
        (p * 1e-9, "B")
    } else if p > 1e6 {
        (p * 1e-6, "M")
    } else {
        (p * 1e-3, "K")
    };
    let digits = format!("{:.0}", scaled);
    let digits = digits.trim_start_matches('0').len();
    let fix = 2usize.saturating_sub(digits);
    format!("{scaled:.fix$}{suffix}")
}

/// Python's `str.title()`: a letter after a letter is lowercased, any other
/// letter uppercased (`g4kv` → `G4Kv`, as gguf-py names such a folder).
fn python_title(w: &str) -> String {
    let mut out = String::with_capacity(w.len());
    let mut after_letter = false;
    for c in w.chars() {
        match after_letter {
            true => out.extend(c.to_lowercase()),
            false => out.extend(c.to_uppercase()),
        }
        after_letter = c.is_alphabetic();
    }
    out
}

/// The model name gguf-py falls back to: the folder's name, lowercase words
/// title-cased (version-like and numeric words kept).
fn model_name(dir_name: &str) -> String {
    dir_name
        .replace('-', " ")
        .split_whitespace()
        .map(|w| {
            let versionish = w.starts_with(|c: char| c.is_ascii_digit())
                || (w.starts_with('v')
                    && w[1..].chars().all(|c| c.is_ascii_digit() || c == '.')
                    && w.len() > 1);
            if w.chars().any(char::is_lowercase) && !w.chars().any(char::is_uppercase) && !versionish {
                python_title(w)
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<String>>()
        .join(" ")
}

impl HfToGguf {
    /// Opens the folder whose `config.json` is `input` (its weights and
    /// tokenizer files are its siblings), cast as the GGUF will hold it:
    /// matrices to `outtype` (their own dtype when `None`), vectors to f32.
    ///
    /// `quantized`: the block type the matrices will be quantized to after
    /// (it decides `general.file_type`, as convert_hf_to_gguf's outtype does).
    /// `weights`, when given, are read instead of the folder's own (tensors
    /// under its Hugging Face names, such as a merge's output).
    pub fn open(
        input: Input,
        options: &Options,
        outtype: Option<DType>,
        quantized: Option<tensorcast_core::QuantType>,
        weights: Option<Box<dyn Source>>,
    ) -> Result<Box<dyn Source>> {
        let config: Json = serde_json::from_slice(&input.bytes).map_err(|e| {
            Error::unsupported(
                code::NOT_A_MODEL,
                format!("{}: not JSON: {e}", input.name.display()),
            )
        })?;
        // A multimodal folder's text model (`text_config`, `language_model.`).
        let config = crate::text_model::config(config);
        let model_type = config.get("model_type").and_then(Json::as_str).unwrap_or("");
        let class = config
            .get("architectures")
            .and_then(|a| a.get(0))
            .and_then(Json::as_str);
        let arch = arch::by_config(model_type, class).ok_or_else(|| {
            Error::unsupported(code::NO_MODEL_TABLE, format!(
                "{}: model_type '{model_type}' has no model table yet (known: {}); convert its weights with their names kept instead",
                input.name.display(),
                arch::known().join(", ")
            ))
        })?;
        // The family's own field names (GPT-2's n_embd...) read as the tables'.
        let mut config = arch.normalize_config(&config);
        if arch.keys.contains(&Key::Mamba) {
            crate::mamba::padded_vocab(&mut config);
        }
        let weights = match weights {
            Some(w) => w,
            None => open_weights(&input, options)?,
        };
        // Qwen3-Next's config does not count its MTP layers: the weights do.
        if arch.keys.contains(&Key::GatedDeltaNet) && config.get("mtp_num_hidden_layers").is_none() {
            let mtp = weights
                .tensors()
                .iter()
                .filter_map(|t| {
                    t.name
                        .strip_prefix("mtp.layers.")?
                        .split('.')
                        .next()?
                        .parse::<u64>()
                        .ok()
                })
                .max()
                .map_or(0, |i| i + 1);
            if let (true, Some(map)) = (mtp > 0, config.as_object_mut()) {
                map.insert("mtp_num_hidden_layers".into(), mtp.into());
            }
        }
        let heads = int_field(&config, "num_attention_heads");
        let kv_heads = int_field(&config, "num_key_value_heads").or(heads);
        let mut order: Vec<usize> = (0..weights.tensors().len()).collect();
        // The reference reads names sorted, as safetensors' `keys()` gives them.
        order.sort_by(|&a, &b| weights.tensors()[a].name.cmp(&weights.tensors()[b].name));
        let (mut picks, mut tensors, mut cast_to) = (Vec::new(), Vec::new(), Vec::new());
        let mut stacks = Vec::new();
        let mut experts = Experts::new(arch, &config, &input)?;
        // Qwen3.5's converter tiles the value heads; Qwen3-Next's does not.
        let delta = crate::gated_delta::Geometry::from_config(&config).map(|mut g| {
            g.tiled = arch.keys.contains(&Key::MropeSections);
            g
        });
        let mut constants = Vec::new();
        // The rope factors the reference generates, first, as it does:
        // Gemma 4's full layers', Llama 3.1's scaling (LlamaModel's family).
        let generated = match arch.keys.contains(&Key::Gemma4Tail) {
            true => Some((crate::gemma4::ROPE_FREQS, crate::gemma4::rope_freqs(&config)?)),
            false if arch.permute_qk => {
                crate::llama3_rope::tensor(&config).map(|b| (crate::llama3_rope::ROPE_FREQS, b))
            }
            false => None,
        };
        if let Some((name, bytes)) = generated {
            let info = TensorInfo::new(name, DType::F32, vec![bytes.len() as u64 / 4]).ok_or_else(|| {
                Error::unsupported(code::TOO_LARGE, format!("tensor '{name}': size overflows"))
            })?;
            cast_to.push(DType::F32);
            picks.push((0, Step::Constant(constants.len())));
            tensors.push(info);
            constants.push(bytes);
        }
        let layers = int_field(&config, "num_hidden_layers").unwrap_or(0);
        let t5 = arch.keys.contains(&Key::T5);
        let deci_layers = match arch.keys.contains(&Key::Deci) {
            true => crate::deci::layers(&config)?,
            false => None,
        };
        let mut embedding_seen = false;
        for i in order {
            let t = &weights.tensors()[i];
            if arch.dropped.iter().any(|d| t.name.ends_with(d)) {
                continue;
            }
            let Some(text_name) = crate::text_model::name(&t.name) else {
                continue;
            };
            // Qwen3.5's MTP layers: blocks past the model's (`mtp.rs`).
            let mtp = match arch.keys.contains(&arch::Key::GatedDeltaNet) {
                true => crate::mtp::from_hf(&text_name, layers, arch.block_prefix),
                false => None,
            };
            let hf_name = match mtp {
                Some(crate::mtp::Into::Named(name)) => {
                    let step = match name.ends_with("norm.weight") {
                        true => Step::AddOne,
                        false => Step::Plain,
                    };
                    let info = TensorInfo {
                        name,
                        file_offset: None,
                        ..t.clone()
                    };
                    cast_to.push(gguf_dtype(&info.name, t, outtype));
                    picks.push((i, step));
                    tensors.push(info);
                    continue;
                }
                Some(crate::mtp::Into::Block(name)) => name,
                None => text_name.into_owned(),
            };
            // DeepSeek: multi-token-prediction layers past the model's own
            // are left out, as the reference leaves them.
            let mla = arch.keys.contains(&arch::Key::MlaLengths);
            if mla
                && block_of(&t.name, arch).is_some_and(|b| Some(b) >= int_field(&config, "num_hidden_layers"))
            {
                continue;
            }
            if let (true, Some(stem)) = (mla, t.name.strip_suffix("self_attn.kv_b_proj.weight")) {
                let block = stem
                    .strip_prefix(arch.block_prefix)
                    .unwrap_or("")
                    .trim_end_matches('.');
                let geometry = crate::mla::Mla {
                    heads: int_field(&config, "num_key_value_heads").or(heads).unwrap_or(1) as usize,
                    nope: int_field(&config, "qk_nope_head_dim").unwrap_or(0) as usize,
                    v: int_field(&config, "v_head_dim").unwrap_or(0) as usize,
                };
                for (part, k) in [("attn_k_b", true), ("attn_v_b", false)] {
                    let info = geometry.split_info(&format!("blk.{block}.{part}.weight"), t, k)?;
                    cast_to.push(gguf_dtype(&info.name, &info, outtype));
                    picks.push((i, Step::Mla(geometry, k)));
                    tensors.push(info);
                }
                continue;
            }
            if let Some(parts) = crate::interleaved::to_gguf(arch.fused_experts, &hf_name) {
                for (name, g) in parts {
                    let info = crate::interleaved::gathered_info(&name, t, g)?;
                    cast_to.push(gguf_dtype(&info.name, &info, outtype));
                    picks.push((i, Step::Gather(g)));
                    tensors.push(info);
                }
                continue;
            }
            if let Some(expert) = arch.expert_of(&hf_name) {
                // As the reference: the block's stacked tensors, in the
                // table's order, where its last expert tensor sorts.
                for (name, members) in experts.add(expert, i, weights.tensors())? {
                    let info = stacked(&name, &members, weights.tensors())?;
                    cast_to.push(gguf_dtype(&info.name, &info, outtype));
                    picks.push((members[0], Step::Stack(stacks.len())));
                    stacks.push(members);
                    tensors.push(info);
                }
                continue;
            }
            // T5: the first of the shared embedding's copies is the one.
            if t5 && crate::t5::is_embedding(&hf_name) && std::mem::replace(&mut embedding_seen, true) {
                continue;
            }
            // Qwen3-Next: one fused in_proj_qkvz, two GGUF tensors.
            if let (Some(g), Some(stem)) = (delta, hf_name.strip_suffix("linear_attn.in_proj_qkvz.weight")) {
                let block = stem
                    .strip_prefix(arch.block_prefix)
                    .unwrap_or("")
                    .trim_end_matches('.');
                if t.shape.first() != Some(&g.qkvz_len()) {
                    return Err(Error::unsupported(
                        code::MODEL_INCONSISTENT,
                        format!(
                            "tensor '{}': {:?} is not {} rows of q, k, v and z",
                            t.name,
                            t.shape,
                            g.qkvz_len()
                        ),
                    ));
                }
                for (part, gate) in [("attn_qkv", false), ("attn_gate", true)] {
                    let mut shape = t.shape.clone();
                    shape[0] = g.qkvz_rows(gate).len() as u64;
                    let info = TensorInfo::new(format!("blk.{block}.{part}.weight"), t.dtype, shape)
                        .ok_or_else(|| {
                            Error::unsupported(
                                code::TOO_LARGE,
                                format!("tensor '{}': size overflows", t.name),
                            )
                        })?;
                    cast_to.push(gguf_dtype(&info.name, &info, outtype));
                    picks.push((i, Step::Qkvz(g, gate)));
                    tensors.push(info);
                }
                continue;
            }
            let name = match t5 {
                true => crate::t5::gguf_name(&hf_name),
                false => arch.gguf_name(&hf_name),
            };
            let name = name.ok_or_else(|| {
                Error::unsupported(
                    code::NO_MODEL_TABLE,
                    format!("tensor '{}' has no GGUF name in the {} table", t.name, arch.gguf),
                )
            })?;
            let part = name.split('.').nth(2).unwrap_or("");
            // DeciLM: each layer's own head counts.
            let layer = deci_layers
                .as_ref()
                .zip(block_of(&hf_name, arch))
                .and_then(|(l, b)| l.get(b as usize).copied());
            let (heads, kv_heads) = match layer {
                Some(l) => (Some(l.heads), Some(l.kv_heads)),
                None => (heads, kv_heads),
            };
            let permute = match (arch.permute_qk, part) {
                (true, "attn_q") => heads,
                (true, "attn_k") => kv_heads,
                _ => None,
            };
            if let Some(h) = permute {
                check(&t.name, t.shape.first().copied().unwrap_or(0), h)?;
            }
            let delta_part = delta.zip(crate::gated_delta::part_of(&hf_name));
            let step = match (permute, delta_part) {
                (Some(h), _) => Step::Permute(h),
                (None, Some((g, part))) => Step::Delta(g, part),
                _ if arch.keys.contains(&Key::Mamba) && name.ends_with(".ssm_a") => Step::NegExp,
                _ if arch.norm_offset
                    && name.ends_with("norm.weight")
                    && !crate::gated_delta::plain_norm(&name) =>
                {
                    Step::AddOne
                }
                _ if arch.is_transposed(&hf_name) && t.shape.len() == 2 => Step::Transpose,
                _ if arch.qkv_regroup != crate::arch::QkvRegroup::None && part == "attn_qkv" => {
                    let (heads, kv) = (
                        heads.unwrap_or(1),
                        int_field(&config, "num_key_value_heads").unwrap_or(1),
                    );
                    let rows = t.shape.first().copied().unwrap_or(0);
                    crate::permute::check_qkv_blocks(&t.name, rows, arch.qkv_regroup, heads, kv)?;
                    Step::Regroup(heads, kv)
                }
                _ => Step::Plain,
            };
            let mut info = t.clone();
            info.name = name;
            if matches!(step, Step::Transpose) {
                info.shape.reverse();
            }
            if let Step::Delta(_, part) = step {
                info.shape = crate::gated_delta::gguf_shape(t, part);
            }
            // LFM2's and Mamba's convolution kernels, squeezed (their bytes as they are).
            let kernel = (arch.keys.contains(&Key::ShortConvCache) && crate::short_conv::is_kernel(&hf_name))
                || (arch.keys.contains(&Key::Mamba) && info.name.ends_with(".ssm_conv1d.weight"));
            if kernel && t.shape.len() == 3 && t.shape[1] == 1 {
                info.shape.remove(1);
            }
            if !matches!(step, Step::Plain) {
                info.file_offset = None;
            }
            cast_to.push(gguf_dtype(&info.name, t, outtype));
            picks.push((i, step));
            tensors.push(info);
        }
        let written: Vec<TensorInfo> = tensors
            .iter()
            .zip(&cast_to)
            .map(|(t, &d)| TensorInfo {
                dtype: d,
                ..t.clone()
            })
            .collect();
        experts.finish()?;
        let mut warnings = consistency(&config, &written, &input)?;
        let given_pre = options.get::<ModelOptions>().tokenizer_pre;
        let (mut metadata, more) = gguf_metadata(arch, &config, &input, &written, given_pre.as_deref())?;
        warnings.extend(more);
        if let Some(q) = quantized {
            // llama.cpp's LlamaFileType for a file of mostly `q` blocks.
            let ftype = match q.name() {
                "Q4_0" => 2,
                "Q4_1" => 3,
                "Q8_0" => 7,
                "Q5_0" => 8,
                "Q5_1" => 9,
                _ => 0,
            };
            metadata.insert("general.file_type", Value::U32(ftype));
        }
        let view = HfToGguf {
            weights,
            picks,
            stacks,
            constants,
            regroup: arch.qkv_regroup,
            tensors,
            metadata,
            warnings,
        };
        // Casts (matrices to the outtype, norms to f32) after the permutation.
        let by_name: std::collections::HashMap<String, DType> =
            written.into_iter().map(|t| (t.name, t.dtype)).collect();
        Ok(Box::new(CastSource::new(view, move |t| {
            by_name.get(&t.name).copied()
        })?))
    }
}

impl Source for HfToGguf {
    fn format(&self) -> &'static str {
        "hf"
    }

    fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        let &(i, step) = self
            .picks
            .get(index)
            .ok_or_else(|| Error::usage(code::CALL_ORDER, format!("no tensor #{index}")))?;
        if let Step::Constant(n) = step {
            return Ok(TensorData::Borrowed(&self.constants[n]));
        }
        if let Step::Stack(n) = step {
            // Each expert read when its turn comes, not before.
            let weights = &*self.weights;
            let parts = self.stacks[n].iter().map(move |&m| weights.tensor_data(m));
            return Ok(TensorData::Chunks(Box::new(parts.flat_map(chunks_of))));
        }
        let data = self.weights.tensor_data(i)?;
        let t = &self.weights.tensors()[i];
        match step {
            Step::Plain | Step::Stack(_) | Step::Constant(_) => Ok(data),
            // As the reference: `data_torch + 1` in the tensor's own dtype.
            Step::AddOne => crate::offset::add(data, t.dtype, t.dtype, 1.0),
            Step::Permute(heads) => {
                let rows = t.shape.first().copied().unwrap_or(1).max(1);
                let row_bytes = usize::try_from(t.nbytes / rows).unwrap_or(0);
                permute_rows(data, rows, row_bytes, heads, Direction::ToGguf)
            }
            Step::Transpose => crate::permute::transpose(data, t),
            Step::Delta(g, part) => g.apply(data, t, part, Direction::ToGguf),
            Step::NegExp => crate::gated_delta::a_log(data, t, Direction::ToGguf),
            Step::Qkvz(g, gate) => {
                let rows = t.shape.first().copied().unwrap_or(1).max(1);
                let row_bytes = usize::try_from(t.nbytes / rows).unwrap_or(0);
                let bytes = data.into_vec()?;
                let out = crate::gated_delta::gather_rows(&bytes, row_bytes, &g.qkvz_rows(gate), &t.name)?;
                Ok(TensorData::Chunks(Box::new(std::iter::once(Ok(out)))))
            }
            Step::Gather(g) => crate::interleaved::gather(data, t, g),
            Step::Mla(geometry, k) => geometry.split(data, t, k),
            Step::Regroup(heads, kv) => {
                let order = crate::permute::qkv_order(self.regroup, heads as usize, kv as usize);
                let block = usize::try_from(t.nbytes).unwrap_or(0) / order.len().max(1);
                crate::permute::reorder_blocks(data, block, &order, &t.name)
            }
        }
    }
}

/// A tensor's bytes as owned chunks of at most [`CHUNK_BYTES`] (a stacked
/// tensor is its experts' bytes in turn, never held whole).
fn chunks_of(data: Result<TensorData<'_>>) -> Box<dyn Iterator<Item = Result<Vec<u8>>> + Send + '_> {
    match data {
        Err(e) => Box::new(std::iter::once(Err(e))),
        Ok(data) => Box::new(
            data.aligned_chunks(1, CHUNK_BYTES)
                .map(|c| c.map(std::borrow::Cow::into_owned)),
        ),
    }
}

/// The block number of HF tensor `name` in `arch`'s layout.
fn block_of(name: &str, arch: &Arch) -> Option<u64> {
    name.strip_prefix(arch.block_prefix)?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// config.json's expert count, under any name the reference reads.
fn expert_count(config: &Json) -> Option<u64> {
    crate::arch::EXPERT_COUNT_FIELDS
        .iter()
        .find_map(|f| int_field(config, f))
}

/// A stacked expert tensor's descriptor: `[experts, ...one expert's shape]`
/// in the experts' dtype.
fn stacked(name: &str, members: &[usize], all: &[TensorInfo]) -> Result<TensorInfo> {
    let first = &all[members[0]];
    if let Some(m) = members
        .iter()
        .map(|&m| &all[m])
        .find(|m| m.shape != first.shape || m.dtype != first.dtype)
    {
        return Err(Error::unsupported(
            code::MODEL_INCONSISTENT,
            format!(
                "expert tensor '{}' is {:?} {:?}, unlike '{}' ({:?} {:?}): experts stack only when alike",
                m.name, m.dtype, m.shape, first.name, first.dtype, first.shape
            ),
        ));
    }
    let mut shape = vec![members.len() as u64];
    shape.extend(&first.shape);
    TensorInfo::new(name, first.dtype, shape)
        .ok_or_else(|| Error::unsupported(code::TOO_LARGE, format!("tensor '{name}': size overflows")))
}

/// The experts of each block as they arrive in sorted order, until a
/// block has all of them (count from config.json's expert count field).
struct Experts {
    count: u64,
    parts: usize,
    /// Block → (table part, expert) → weights index.
    pending: std::collections::BTreeMap<u32, std::collections::BTreeMap<(usize, u64), usize>>,
    names: std::collections::BTreeMap<(u32, usize), String>,
}

impl Experts {
    fn new(arch: &Arch, config: &Json, input: &Input) -> Result<Experts> {
        let count = if arch.experts.is_empty() {
            0
        } else {
            expert_count(config).ok_or_else(|| {
                Error::unsupported(
                    code::NOT_A_MODEL,
                    format!(
                        "{}: config.json has no expert count ({}) for its mixture-of-experts layers",
                        input.name.display(),
                        crate::arch::EXPERT_COUNT_FIELDS.join(", ")
                    ),
                )
            })?
        };
        Ok(Experts {
            count,
            parts: arch.experts.len(),
            pending: Default::default(),
            names: Default::default(),
        })
    }

    /// Records expert tensor `index`; returns the block's stacked tensors
    /// (name, members in expert order) once it has every expert of every part.
    fn add(
        &mut self,
        (name, block, part, e): (String, u32, usize, u64),
        index: usize,
        all: &[TensorInfo],
    ) -> Result<Vec<(String, Vec<usize>)>> {
        if e >= self.count {
            return Err(Error::unsupported(
                code::MODEL_INCONSISTENT,
                format!(
                    "tensor '{}' is expert {e}, and config.json says {} experts",
                    all[index].name, self.count
                ),
            ));
        }
        self.names.insert((block, part), name);
        let block_experts = self.pending.entry(block).or_default();
        block_experts.insert((part, e), index);
        if (block_experts.len() as u64) < self.count * self.parts as u64 {
            return Ok(Vec::new());
        }
        let done = self.pending.remove(&block).unwrap_or_default();
        Ok((0..self.parts)
            .map(|p| {
                let members = done.range((p, 0)..(p + 1, 0)).map(|(_, &i)| i).collect();
                (self.names.remove(&(block, p)).unwrap_or_default(), members)
            })
            .collect())
    }

    /// Refuses a block whose experts never all arrived.
    fn finish(&self) -> Result<()> {
        match self.pending.iter().next() {
            None => Ok(()),
            Some((block, have)) => Err(Error::unsupported(
                code::MODEL_INCONSISTENT,
                format!(
                    "layer {block} holds {} of its {} expert tensors ({} experts x {} parts)",
                    have.len(),
                    self.count * self.parts as u64,
                    self.count,
                    self.parts
                ),
            )),
        }
    }
}

fn u32v(v: u64) -> Value {
    Value::U32(u32::try_from(v).unwrap_or(u32::MAX))
}

/// What config.json says against what the weights are: a hidden size or a
/// layer count the tensors contradict is refused (`model-inconsistent`): a
/// GGUF written from it would not load, or load wrong. A vocab_size below
/// the embedding's rows is written, as the reference writes it, with a
/// warning (the embedding rows past it are never used).
fn consistency(config: &Json, tensors: &[TensorInfo], input: &Input) -> Result<Vec<String>> {
    let refuse = |what: String| {
        Error::unsupported(
            code::MODEL_INCONSISTENT,
            format!("{}: {what}", input.name.display()),
        )
    };
    let mut warnings = Vec::new();
    let embedding = tensors.iter().find(|t| t.name == "token_embd.weight");
    if let (Some(hidden), Some(e)) = (int_field(config, "hidden_size"), embedding) {
        if let Some(&width) = e.shape.get(1).filter(|&&w| w != hidden) {
            return Err(refuse(format!(
                "config.json's hidden_size {hidden} is not the token embedding's width {width}"
            )));
        }
    }
    let blocks = tensors
        .iter()
        .filter_map(|t| {
            t.name
                .strip_prefix("blk.")?
                .split('.')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .max()
        .map(|b| b + 1);
    let mtp = crate::gated_delta::mtp_layers(config)?;
    if let (Some(layers), Some(blocks)) = (int_field(config, "num_hidden_layers"), blocks) {
        // Qwen3.5's MTP layers are blocks too, past the model's own.
        let mtp_blocks = tensors.iter().any(|t| t.name.contains(".nextn.")) as u64 * mtp;
        if layers.saturating_add(mtp_blocks) != blocks {
            return Err(refuse(format!(
                "config.json's num_hidden_layers {layers} is not the {blocks} layers the weights hold"
            )));
        }
    }
    if let (Some(vs), Some(rows)) = (
        int_field(config, "vocab_size"),
        embedding.and_then(|e| e.shape.first()),
    ) {
        if vs < *rows {
            warnings.push(format!(
                "{}: config.json's vocab_size {vs} is below the token embedding's {rows} rows; written as the reference converter writes it (the rows past {vs} are never used)",
                input.name.display()
            ));
        }
    }
    Ok(warnings)
}

/// The key/values `convert_hf_to_gguf.py` writes for this model, in its
/// order, and what it warns about.
fn gguf_metadata(
    arch: &Arch,
    config: &Json,
    input: &Input,
    tensors: &[TensorInfo],
    given_pre: Option<&str>,
) -> Result<(Metadata, Vec<String>)> {
    let mut warnings = Vec::new();
    let a = arch.gguf;
    let mut m = Metadata::new();
    m.insert("general.architecture", Value::Str(a.into()));
    m.insert("general.type", Value::Str("model".into()));
    let dir_name = input
        .name
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("model");
    m.insert("general.name", Value::Str(model_name(dir_name)));
    m.insert("general.size_label", Value::Str(moe_size_label(tensors)));
    let max_tokens = token_bound(config, tensors, input)?;
    // Gemma 4's and DeciLM's tokenizer.json is read whatever else the folder has.
    let sentencepiece = match arch.vocab {
        VocabStyle::Gemma4 | VocabStyle::LlamaHf => Err(()),
        _ => input.sibling("tokenizer.model").map(|_| ()).map_err(|_| ()),
    };
    let kind = match arch.vocab {
        VocabStyle::Gemma4 => crate::bpe_vocab::VocabKind::Gemma4,
        // DeciLM's converter reads Llama 3's vocabulary as byte-level BPE.
        VocabStyle::LlamaHf if int_field(config, "vocab_size").unwrap_or(128256) != 128256 => {
            crate::bpe_vocab::VocabKind::LlamaHf
        }
        _ => crate::bpe_vocab::VocabKind::ByteLevel(given_pre),
    };
    let vocab = match sentencepiece {
        _ if arch.keys.contains(&Key::T5) => {
            let tok_config = read_json(input, "tokenizer_config.json")?.unwrap_or(Json::Null);
            Vocabulary::T5(crate::t5::vocab(input, config, &tok_config, max_tokens)?)
        }
        Ok(()) => Vocabulary::SentencePiece(vocabulary(
            input,
            config,
            arch.vocab == VocabStyle::Phi3,
            max_tokens,
        )?),
        Err(_) => {
            let file = input.sibling("tokenizer.json").map_err(|_| {
                Error::unsupported(
                    code::TOKENIZER,
                    format!(
                        "{}: no tokenizer.model or tokenizer.json beside it",
                        input.name.display()
                    ),
                )
            })?;
            let tok_config = read_json(input, "tokenizer_config.json")?.unwrap_or(Json::Null);
            let name = file.name.display().to_string();
            let templates = crate::chat_template::ChatTemplates::read(input, &tok_config)?;
            Vocabulary::Bpe(crate::bpe_vocab::read(
                &file.bytes,
                &tok_config,
                config,
                &name,
                max_tokens,
                templates,
                kind,
            )?)
        }
    };
    let n_tokens = match &vocab {
        Vocabulary::SentencePiece(v) => {
            warnings.extend(v.skipped.iter().cloned());
            v.tokens.len()
        }
        Vocabulary::Bpe(v) => v.tokens.len(),
        Vocabulary::T5(v) => v.len(),
    };
    let uint = |hf: &str| -> Result<Value> {
        let v = config.get(hf).and_then(Json::as_u64).ok_or_else(|| {
            Error::unsupported(
                code::NOT_A_MODEL,
                format!(
                    "{}: config.json has no {hf} (a non-negative integer)",
                    input.name.display()
                ),
            )
        })?;
        Ok(u32v(v))
    };
    let float = |hf: &str| {
        config
            .get(hf)
            .and_then(Json::as_f64)
            .map(|v| Value::F32(v as f32))
    };
    let rope = config.get("rope_parameters");
    let theta = rope
        .and_then(|r| r.get("full_attention").or(Some(r)))
        .and_then(|r| r.get("rope_theta"))
        .or_else(|| config.get("rope_theta"))
        .and_then(Json::as_f64);
    let hidden = int_field(config, "hidden_size").unwrap_or(0);
    let heads = int_field(config, "num_attention_heads").unwrap_or(1).max(1);
    let stated_head_dim = int_field(config, "head_dim");
    let head_dim = stated_head_dim.unwrap_or(hidden / heads);
    let partial = rope
        .and_then(|r| r.get("partial_rotary_factor"))
        .or_else(|| config.get("partial_rotary_factor"))
        .and_then(Json::as_f64)
        .unwrap_or(1.0);
    for key in arch.keys {
        // A key that mirrors one config.json field: the same table entry
        // config.json is written from (Key::param); a few have the
        // reference converter's defaults when config.json omits them.
        if let Some(p) = key.param() {
            let value = match key {
                // The MTP layers past the model's are blocks too (Qwen3.5).
                // The width LFM2's config derives.
                Key::FeedForwardLength if arch.keys.contains(&Key::ShortConvCache) => {
                    u32v(crate::short_conv::ffn_width(config).ok_or_else(|| {
                        Error::unsupported(
                            code::NOT_A_MODEL,
                            format!(
                                "{}: config.json has no block_ff_dim or intermediate_size",
                                input.name.display()
                            ),
                        )
                    })?)
                }
                Key::BlockCount if arch.keys.contains(&Key::GatedDeltaNet) => u32v(
                    int_field(config, p.hf)
                        .unwrap_or(0)
                        .saturating_add(crate::gated_delta::mtp_layers(config)?),
                ),
                Key::HeadCountKv => u32v(int_field(config, p.hf).unwrap_or(heads)),
                // The names the reference looks the epsilons up by, in its order.
                Key::RmsEps => ["rms_norm_eps", "norm_eps"]
                    .iter()
                    .find_map(|f| float(f))
                    .unwrap_or(Value::F32(1e-6)),
                Key::LayerNormEps => ["layer_norm_eps", "layer_norm_epsilon", "norm_epsilon", "norm_eps"]
                    .iter()
                    .find_map(|f| float(f))
                    .unwrap_or(Value::F32(1e-12)),
                _ => match p.kind {
                    ParamKind::Int => uint(p.hf)?,
                    ParamKind::Float => float(p.hf).ok_or_else(|| {
                        Error::unsupported(
                            code::NOT_A_MODEL,
                            format!("{}: config.json has no {} (a number)", input.name.display(), p.hf),
                        )
                    })?,
                },
            };
            m.insert(format!("{a}.{}", p.gguf), value);
            continue;
        }
        match key {
            Key::RopeFreqBase => m.insert(
                format!("{a}.rope.freq_base"),
                Value::F32(theta.unwrap_or(10000.0) as f32),
            ),
            Key::RopeFreqBaseSwa => {
                let swa = rope
                    .and_then(|r| r.get("sliding_attention"))
                    .and_then(|r| r.get("rope_theta"));
                if let Some(swa) = swa.and_then(Json::as_f64) {
                    m.insert(format!("{a}.rope.freq_base_swa"), Value::F32(swa as f32));
                }
            }
            Key::KeyValueLength | Key::KeyValueLengthAlways => {
                let dim = match (key, stated_head_dim) {
                    (_, Some(d)) => Some(d),
                    (Key::KeyValueLengthAlways, None) => Some(256),
                    _ => None,
                };
                if let Some(d) = dim {
                    m.insert(format!("{a}.attention.key_length"), u32v(d));
                    m.insert(format!("{a}.attention.value_length"), u32v(d));
                }
            }
            Key::FileType => m.insert("general.file_type", Value::U32(file_type(tensors))),
            Key::VocabSize => m.insert(format!("{a}.vocab_size"), u32v(n_tokens as u64)),
            Key::RopeDimensionCount => {
                // The family's own field when it has one (MiniMax-M2's rotary_dim).
                let stated = Some(arch.rotary_dim_field)
                    .filter(|f| !f.is_empty())
                    .and_then(|f| int_field(config, f));
                let dims = stated.unwrap_or((head_dim as f64 * partial) as u64);
                m.insert(format!("{a}.rope.dimension_count"), u32v(dims))
            }
            Key::SlidingWindow => {
                let pattern = config.get("sliding_window_pattern").and_then(Json::as_u64);
                if let (Some(w), true) = (int_field(config, "sliding_window"), pattern != Some(1)) {
                    m.insert(format!("{a}.attention.sliding_window"), u32v(w));
                }
            }
            Key::SlidingWindowOrZero => {
                let w = int_field(config, "sliding_window").unwrap_or(0);
                m.insert(format!("{a}.attention.sliding_window"), u32v(w))
            }
            Key::AttnLogitSoftcap => {
                if let Some(v) = float("attn_logit_softcapping") {
                    m.insert(format!("{a}.attn_logit_softcapping"), v);
                }
            }
            Key::FinalLogitSoftcap => {
                if let Some(v) = float("final_logit_softcapping") {
                    m.insert(format!("{a}.final_logit_softcapping"), v);
                }
            }
            Key::NotCausal => m.insert(format!("{a}.attention.causal"), Value::Bool(false)),
            Key::ExpertCounts => {
                if let Some(n) = expert_count(config) {
                    m.insert(format!("{a}.expert_count"), u32v(n));
                }
                // Under any name the reference reads (Gemma 4's top_k_experts).
                let used = ["num_experts_per_tok", "num_experts_per_token", "top_k_experts"]
                    .iter()
                    .find_map(|f| int_field(config, f));
                if let Some(n) = used {
                    m.insert(format!("{a}.expert_used_count"), u32v(n));
                }
                // Expert groups (DeepSeek's n_group, topk_group).
                if let Some(n) = int_field(config, "n_group") {
                    m.insert(format!("{a}.expert_group_count"), u32v(n));
                }
                if let Some(n) = int_field(config, "topk_group") {
                    m.insert(format!("{a}.expert_group_used_count"), u32v(n));
                }
                // The router's function, under any name the reference reads.
                let score = [
                    "score_function",
                    "scoring_func",
                    "score_func",
                    "moe_router_activation",
                    "moe_router_activation_func",
                    "expert_selection_fn",
                ]
                .iter()
                .find_map(|f| config.get(*f).and_then(Json::as_str));
                let gating = match score {
                    Some("softmax") => Some(1),
                    Some("sigmoid") => Some(2),
                    Some("sqrtsoftplus") => Some(4),
                    Some(other) => {
                        return Err(Error::unsupported(
                            code::MODEL_INCONSISTENT,
                            format!(
                                "{}: expert scoring function '{other}' is not one llama.cpp has",
                                input.name.display()
                            ),
                        ))
                    }
                    None => None,
                };
                if let Some(g) = gating {
                    m.insert(format!("{a}.expert_gating_func"), Value::U32(g));
                }
            }
            Key::ExpertFeedForwardLength => {
                if let Some(n) = int_field(config, "moe_intermediate_size") {
                    m.insert(format!("{a}.expert_feed_forward_length"), u32v(n));
                }
            }
            Key::RopeYarn => {
                let yarn = rope.filter(|r| r.get("rope_type").and_then(Json::as_str) == Some("yarn"));
                if let Some(r) = yarn.filter(|r| r.get("factor").is_some()) {
                    let f = |k: &str| r.get(k).and_then(Json::as_f64).map(|v| Value::F32(v as f32));
                    m.insert(format!("{a}.rope.scaling.type"), Value::Str("yarn".into()));
                    if let Some(v) = f("factor") {
                        m.insert(format!("{a}.rope.scaling.factor"), v);
                    }
                    if let Some(v) = r.get("original_max_position_embeddings").and_then(Json::as_u64) {
                        m.insert(format!("{a}.rope.scaling.original_context_length"), u32v(v));
                    }
                    for (hf, gguf) in [
                        ("extrapolation_factor", "yarn_ext_factor"),
                        ("attention_factor", "yarn_attn_factor"),
                        ("beta_fast", "yarn_beta_fast"),
                        ("beta_slow", "yarn_beta_slow"),
                    ] {
                        if let Some(v) = f(hf) {
                            m.insert(format!("{a}.rope.scaling.{gguf}"), v);
                        }
                    }
                }
            }
            Key::SlidingWindowAlways => {
                if let Some(w) = int_field(config, "sliding_window") {
                    m.insert(format!("{a}.attention.sliding_window"), u32v(w));
                }
            }
            Key::ExpertFeedForwardFromIntermediate => {
                if let Some(n) = int_field(config, "intermediate_size") {
                    m.insert(format!("{a}.expert_feed_forward_length"), u32v(n));
                }
            }
            Key::BloomContextLength => {
                let n = int_field(config, "seq_length").or_else(|| int_field(config, "hidden_size"));
                m.insert(format!("{a}.context_length"), u32v(n.unwrap_or(0)));
            }
            Key::HeadCountKvAll => m.insert(format!("{a}.attention.head_count_kv"), u32v(heads)),
            Key::Ministral3Scales => {
                let get = |k: &str| rope.and_then(|r| r.get(k)).and_then(Json::as_f64);
                if let Some(v) = get("mscale_all_dim") {
                    m.insert(
                        format!("{a}.rope.scaling.yarn_log_multiplier"),
                        Value::F32(v as f32),
                    );
                }
                if let Some(v) = get("llama_4_scaling_beta") {
                    m.insert(format!("{a}.attention.temperature_scale"), Value::F32(v as f32));
                }
            }
            Key::HeadCountKvOne => m.insert(format!("{a}.attention.head_count_kv"), Value::U32(1)),
            Key::MlaLengths => {
                let rank = int_field(config, "kv_lora_rank").unwrap_or(512);
                let rope = int_field(config, "qk_rope_head_dim").unwrap_or(0);
                m.insert(
                    format!("{a}.attention.key_length"),
                    u32v(rank.saturating_add(rope)),
                );
                m.insert(format!("{a}.attention.value_length"), u32v(rank));
            }
            Key::DeepseekTail => crate::mla::tail_keys(&mut m, a, config, n_tokens as u64),
            Key::FalconLayout => {
                // Not in Falcon's config.json: the reference writes 2048.
                m.insert(format!("{a}.context_length"), Value::U32(2048));
                m.insert(format!("{a}.tensor_data_layout"), Value::Str("jploski".into()));
            }
            Key::ParallelResidual => {
                let parallel = config.get("use_parallel_residual").and_then(Json::as_bool);
                m.insert(
                    format!("{a}.use_parallel_residual"),
                    Value::Bool(parallel.unwrap_or(true)),
                )
            }
            Key::RopeScalingType => {
                let factor = rope
                    .and_then(|r| r.get("factor"))
                    .or_else(|| config.get("factor"))
                    .and_then(Json::as_f64);
                match factor {
                    Some(f) => {
                        m.insert(format!("{a}.rope.scaling.type"), Value::Str("linear".into()));
                        m.insert(format!("{a}.rope.scaling.factor"), Value::F32(f as f32));
                    }
                    None => m.insert(format!("{a}.rope.scaling.type"), Value::Str("none".into())),
                }
            }
            Key::GraniteScales => {
                for (gguf, hf) in crate::arch::GRANITE_SCALES {
                    if let Some(v) = config.get(*hf).and_then(Json::as_f64).filter(|&v| v != 0.0) {
                        m.insert(format!("{a}.{gguf}"), Value::F32(v as f32));
                    }
                }
            }
            Key::ExpertSharedFeedForwardLength => {
                if let Some(n) = int_field(config, "shared_expert_intermediate_size") {
                    m.insert(format!("{a}.expert_shared_feed_forward_length"), u32v(n));
                }
            }
            Key::MropeSections => crate::gated_delta::mrope_key(&mut m, a, config),
            Key::ShortConvHeadsKv => crate::short_conv::heads_kv_key(&mut m, a, config),
            Key::Mamba => crate::mamba::keys(&mut m, a, config)?,
            Key::Gemma4Tail => crate::gemma4::tail_keys(&mut m, a, config)?,
            Key::T5 => crate::t5::keys(&mut m, a, config)?,
            Key::Deci => crate::deci::keys(&mut m, a, config)?,
            Key::ShortConvCache => {
                if let Some(l) = int_field(config, "conv_L_cache") {
                    m.insert(format!("{a}.shortconv.l_cache"), u32v(l));
                }
            }
            Key::GatedDeltaNet => {
                crate::gated_delta::tail_keys(&mut m, a, config, arch.keys.contains(&Key::MropeSections))?
            }
            Key::OriginalContextLength => {
                if let Some(v) = int_field(config, "original_max_position_embeddings") {
                    m.insert(format!("{a}.rope.scaling.original_context_length"), u32v(v));
                }
            }
            // The keys that mirror one field were written above.
            _ => {}
        }
    }
    m.insert("general.quantization_version", Value::U32(2));
    if arch.gguf == "bert" {
        let types = int_field(config, "type_vocab_size").unwrap_or(1);
        m.insert("tokenizer.ggml.token_type_count", u32v(types));
    }
    match vocab {
        Vocabulary::SentencePiece(v) => v.write(&mut m),
        Vocabulary::Bpe(v) => v.write(&mut m),
        Vocabulary::T5(v) => v.write(&mut m),
    }
    // As gguf-py's writer: a key it has is replaced where it stands.
    for (kind, id) in arch.special_overrides {
        m.insert(format!("tokenizer.ggml.{kind}_token_id"), u32v(*id));
    }
    if arch.no_space_prefix {
        m.insert("tokenizer.ggml.add_space_prefix", Value::Bool(false));
    }
    Ok((m, warnings))
}

/// The folder's vocabulary, by the tokenizer files it has.
enum Vocabulary {
    SentencePiece(Vocab),
    Bpe(crate::bpe_vocab::BpeVocab),
    T5(crate::t5::T5Vocab),
}

/// A SentencePiece vocabulary as `tokenizer.ggml.*`.
struct Vocab {
    tokens: Vec<String>,
    scores: Vec<f32>,
    types: Vec<i32>,
    special: Vec<(&'static str, u64)>,
    /// Special token ids past the vocabulary, left out as the reference
    /// leaves them out (its warning, said the same way).
    skipped: Vec<String>,
    add_bos: Option<bool>,
    add_eos: Option<bool>,
    add_sep: Option<bool>,
    chat_templates: crate::chat_template::ChatTemplates,
}

/// The vocabulary of `tokenizer.model`, with the added tokens the tokenizer
/// files declare; `phi3` follows Phi-3's converter, which also reads
/// tokenizer.json's added tokens and scores every added token -1000.
/// Tokens no vocabulary of this model may exceed: the token embedding's
/// rows (a vocabulary larger than the embedding is inconsistent; llama.cpp
/// cannot load it), or 2^24 when there is no embedding to tell. Counts from
/// config.json and token ids from the tokenizer are checked against it
/// before anything is allocated for them.
fn token_bound(config: &Json, tensors: &[TensorInfo], input: &Input) -> Result<u64> {
    let rows = tensors
        .iter()
        .find(|t| t.name == "token_embd.weight")
        .and_then(|t| t.shape.first().copied());
    let bound = rows.unwrap_or(1 << 24);
    if let Some(vs) = int_field(config, "vocab_size").filter(|&v| v > bound) {
        return Err(Error::unsupported(
            code::MODEL_INCONSISTENT,
            format!(
                "{}: config.json's vocab_size {vs} exceeds {}",
                input.name.display(),
                match rows {
                    Some(r) => format!("the {r} rows of the token embeddings"),
                    None => format!("{bound} tokens"),
                }
            ),
        ));
    }
    Ok(bound)
}

fn vocabulary(input: &Input, config: &Json, phi3: bool, max_tokens: u64) -> Result<Vocab> {
    let model = input.sibling("tokenizer.model").map_err(|_| {
        Error::unsupported(
            code::TOKENIZER,
            format!(
                "{}: no tokenizer.model beside it (BPE tokenizer.json vocabularies are not converted yet)",
                input.name.display()
            ),
        )
    })?;
    // Pieces past the vocabulary are ignored, as the reference ignores
    // them; a file of many times more is refused as it is read.
    let pieces = sentencepiece::pieces(&model.bytes, max_tokens.saturating_mul(4).max(1024))?;
    let n = int_field(config, "vocab_size").map_or(pieces.len(), |v| v as usize);
    if n as u64 > max_tokens {
        return Err(Error::unsupported(
            code::MODEL_INCONSISTENT,
            format!(
                "{}: {n} tokens exceed the model's {max_tokens}",
                model.name.display()
            ),
        ));
    }
    // The reference's padding for ids the model has and the tokenizer lacks.
    let mut tokens: Vec<String> = (0..n).map(|i| format!("[PAD{i}]")).collect();
    let mut scores = vec![-10000.0f32; n];
    let mut types = vec![5i32; n];
    for (i, p) in pieces.iter().enumerate().take(n) {
        tokens[i] = p.text.clone();
        scores[i] = p.score;
        // The reference asks SentencePiece for unknown, control, unused and
        // byte pieces only: its user-defined pieces count as normal.
        types[i] = if p.kind == 4 { 1 } else { p.kind };
    }
    let tok_config = read_json(input, "tokenizer_config.json")?.unwrap_or(Json::Null);
    // Added tokens the tokenizer config declares override the pieces: special
    // ones become control tokens, others user-defined (spelled with spaces).
    if let Some(added) = tok_config.get("added_tokens_decoder").and_then(Json::as_object) {
        for (id, entry) in added {
            let (Ok(id), Some(content)) = (id.parse::<usize>(), entry.get("content").and_then(Json::as_str))
            else {
                continue;
            };
            if id >= n {
                continue;
            }
            let special = entry.get("special").and_then(Json::as_bool).unwrap_or(false);
            if phi3 {
                tokens[id] = content.to_string();
                scores[id] = -1000.0;
                types[id] = if special { 3 } else { 4 };
            } else if special {
                tokens[id] = content.to_string();
                types[id] = 3;
            } else {
                tokens[id] = content.replace('\u{2581}', " ");
                types[id] = 4;
            }
        }
    }
    if phi3 {
        let tokenizer_json = read_json(input, "tokenizer.json")?.unwrap_or(Json::Null);
        for entry in tokenizer_json
            .get("added_tokens")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(id), Some(content)) = (
                entry.get("id").and_then(Json::as_u64),
                entry.get("content").and_then(Json::as_str),
            ) else {
                continue;
            };
            let id = id as usize;
            if id < n {
                tokens[id] = content.to_string();
                scores[id] = -1000.0;
                types[id] = if entry.get("special").and_then(Json::as_bool).unwrap_or(false) {
                    3
                } else {
                    4
                };
            }
        }
    }
    let id_of = |name: &str| -> Option<u64> {
        let text = match tok_config.get(name)? {
            Json::String(s) => s.as_str(),
            other => other.get("content")?.as_str()?,
        };
        tokens.iter().position(|t| t == text).map(|i| i as u64)
    };
    let mut special = Vec::new();
    let mut skipped = Vec::new();
    for (gguf, config_key, named) in [
        ("bos", "bos_token_id", "bos_token"),
        ("eos", "eos_token_id", "eos_token"),
        ("unknown", "", "unk_token"),
        ("seperator", "", "sep_token"),
        ("padding", "pad_token_id", "pad_token"),
        ("mask", "", "mask_token"),
    ] {
        let id = int_field(config, config_key).or_else(|| id_of(named));
        match id {
            Some(id) if id < tokens.len() as u64 => special.push((gguf, id)),
            Some(id) => skipped.push(format!(
                "{}: special token type {gguf}, id {id} out of range, must be under {}: skipped",
                input.name.display(),
                tokens.len()
            )),
            None => {}
        }
    }
    Ok(Vocab {
        tokens,
        scores,
        types,
        special,
        skipped,
        add_bos: tok_config.get("add_bos_token").and_then(Json::as_bool),
        add_eos: tok_config.get("add_eos_token").and_then(Json::as_bool),
        add_sep: tok_config.get("add_sep_token").and_then(Json::as_bool),
        chat_templates: crate::chat_template::ChatTemplates::read(input, &tok_config)?,
    })
}

impl Vocab {
    fn write(self, m: &mut Metadata) {
        m.insert("tokenizer.ggml.model", Value::Str("llama".into()));
        m.insert("tokenizer.ggml.pre", Value::Str("default".into()));
        m.insert(
            "tokenizer.ggml.tokens",
            Value::Array(Array::from(self.tokens.iter().collect::<Strings>())),
        );
        m.insert("tokenizer.ggml.scores", Value::Array(Array::F32(self.scores)));
        m.insert("tokenizer.ggml.token_type", Value::Array(Array::I32(self.types)));
        for (name, id) in self.special {
            m.insert(format!("tokenizer.ggml.{name}_token_id"), u32v(id));
        }
        if let Some(b) = self.add_bos {
            m.insert("tokenizer.ggml.add_bos_token", Value::Bool(b));
        }
        if let Some(b) = self.add_eos {
            m.insert("tokenizer.ggml.add_eos_token", Value::Bool(b));
        }
        if let Some(b) = self.add_sep {
            m.insert("tokenizer.ggml.add_sep_token", Value::Bool(b));
        }
        self.chat_templates.write(m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_labels_and_names_as_gguf_py() {
        assert_eq!(size_label(125_248), "125K");
        assert_eq!(size_label(134_515_008), "135M");
        assert_eq!(size_label(1_500_000_000), "1.5B");
        assert_eq!(size_label(7_241_732_096), "7.2B");
        assert_eq!(size_label(999), "1.0K");
        assert_eq!(model_name("hf"), "Hf");
        assert_eq!(model_name("tiny-llama-v1.1"), "Tiny Llama v1.1");
        // Python's str.title() (gguf-py 0.19's values for these folder names).
        assert_eq!(model_name("g4kv"), "G4Kv");
        assert_eq!(model_name("qwen2.5-0.5b-instruct"), "Qwen2.5 0.5b Instruct");
        assert_eq!(model_name("phi3mini"), "Phi3Mini");
        assert_eq!(model_name("o'neil"), "O'Neil");
    }
}
