//! Model-aware conversion against the reference implementations, on the
//! tiny models of fixtures/model (made by transformers, converted by
//! llama.cpp's convert_hf_to_gguf.py, read back by transformers' GGUF loader;
//! see fixtures/model/generate.py).

use crate::common::{fixture, tensorcast};
use std::collections::BTreeMap;
use std::path::Path;

/// Every tensor of a safetensors file, read by the reference crate.
fn tensors(path: &Path) -> BTreeMap<String, (String, Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(n, v)| (n, (v.dtype().to_string(), v.shape().to_vec(), v.data().to_vec())))
        .collect()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The architectures with fixtures (fixtures/model/generate.py's ARCHES).
const ARCHES: &[&str] = &[
    "llama",
    "qwen2",
    "qwen3",
    "gemma2",
    "gemma3",
    "phi3",
    "qwen3moe",
    "mixtral",
    "mistral",
    "qwen2moe",
    "olmo2",
    "granite",
    "smollm3",
    "olmoe",
    "nemotron",
    "stablelm",
    "starcoder2",
    "gpt2",
    "gptoss",
    "falcon",
    "bloom",
    "granitemoe",
    "minimaxm2",
    "deepseek3",
    "ministral3",
    "qwen35",
    "qwen35moe",
    "lfm2",
    "mamba",
    "gemma4",
    "gemma4moe",
    "t5",
    "umt5",
    "llama31",
    "mt5",
    "t5encoder",
    "deci",
    "qwen3next",
];

/// Architectures transformers 5.23's GGUF loader gets wrong: it cannot load
/// the Qwen3-MoE and Qwen2-MoE GGUFs (it ignores the expert FFN size), and it loads the
/// Mixtral GGUF as a dense Llama with the experts dropped and random MLPs,
/// without an error. Their reference is the original model folder (its
/// weights and config), which the GGUF was made from.
/// (GPT-2 too: the loader cannot load the tiny model, and its config says
/// 1024 positions where the file has 256; and Falcon: the loader ties the
/// output to the embedding, dropping the file's own output matrix.)
/// MiniMax-M2's loader output is right but recorded as its in-memory state
/// dict (experts fused as transformers 5 holds them, `mlp.experts.gate_up_proj`);
/// a folder holds the checkpoint layout, which the original folder is.
/// Gemma 4: the loader fails on the model (it takes the full layers' head
/// width for every layer: from-gguf/loader-error.txt) and its config adds
/// the real Gemma 4 vocabulary's EOS ids (106, 50), which the tiny one lacks.
/// Llama 3.1's scaling: the loader ignores rope_freqs and builds the
/// default rope (from-gguf/loader-wrong.txt).
const LOADER_WRONG: &[&str] = &[
    "llama31",
    "gemma4",
    "gemma4moe",
    "qwen3moe",
    "mixtral",
    "qwen2moe",
    "gpt2",
    "gptoss",
    "falcon",
    "minimaxm2",
];

/// The flags a folder needs into GGUF: a freshly trained byte-level BPE
/// vocabulary's check hash is in no table, so its pre-tokenizer is named
/// as the reference run named it (fixtures/model/generate.py BPE_ARCHES).
fn pre_args(arch: &str) -> &'static [&'static str] {
    match arch {
        "qwen3moe" | "qwen2moe" => &["--tokenizer-pre", "qwen2"],
        "olmo2" | "olmoe" => &["--tokenizer-pre", "olmo"],
        "stablelm" => &["--tokenizer-pre", "stablelm2"],
        "starcoder2" => &["--tokenizer-pre", "starcoder"],
        "gpt2" => &["--tokenizer-pre", "gpt-2"],
        "gptoss" => &["--tokenizer-pre", "gpt-4o"],
        "falcon" => &["--tokenizer-pre", "falcon"],
        "bloom" => &["--tokenizer-pre", "bloom"],
        "minimaxm2" => &["--tokenizer-pre", "minimax-m2"],
        "deepseek3" => &["--tokenizer-pre", "deepseek-v3"],
        "qwen35" | "qwen35moe" => &["--tokenizer-pre", "qwen35"],
        "llama31" => &["--tokenizer-pre", "llama-bpe"],
        "qwen3next" => &["--tokenizer-pre", "qwen2"],
        "lfm2" => &["--tokenizer-pre", "lfm2"],
        "mamba" => &["--tokenizer-pre", "gpt-2"],
        _ => &[],
    }
}

/// Architectures whose norms llama.cpp stores as `w + 1`: their round trip
/// through a GGUF gives `(w + 1) - 1` in f32, as transformers' loader does.
const NORM_OFFSET: &[&str] = &["gemma2", "gemma3", "nemotron", "qwen35", "qwen35moe", "qwen3next"];

/// Whether `name` is one of the offset norms of an [`NORM_OFFSET`]
/// architecture (Qwen3.5's MTP norms too, whose names end otherwise).
fn offset_norm(arch: &str, name: &str) -> bool {
    NORM_OFFSET.contains(&arch) && (name.ends_with("norm.weight") || name.starts_with("mtp.pre_fc_norm"))
}

/// What transformers' GGUF loader makes of the reference GGUF, as a folder
/// holds it: a tied lm_head (the embedding itself) is not stored.
///
/// transformers 5.23 cannot load the tiny phi3 model from its GGUF (it sets
/// pad_token_id 32000 past the 400-token vocabulary; fixtures/model/phi3/
/// from-gguf/loader-error.txt): its reference is the original folder, which
/// a loader would reproduce exactly (phi3 has no value transforms).
fn loader_state(arch: &str) -> BTreeMap<String, (String, Vec<usize>, Vec<u8>)> {
    let no_record = ["loader-error.txt", "loader-wrong.txt"]
        .iter()
        .any(|f| fx(arch, &format!("from-gguf/{f}")).exists());
    if no_record || LOADER_WRONG.contains(&arch) {
        let mut state = tensors(&fx(arch, "hf/model.safetensors"));
        // Without a loader's record, offset norms as the two conversions
        // compute them (Qwen3-Next): w + 1 in f32 into GGUF, minus 1 in f32 back.
        if NORM_OFFSET.contains(&arch) {
            for (name, (dtype, _, bytes)) in state.iter_mut() {
                if offset_norm(arch, name) && !name.contains("linear_attn.norm") && dtype == "F32" {
                    for c in bytes.chunks_exact_mut(4) {
                        let w = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                        c.copy_from_slice(&((w + 1.0) - 1.0).to_le_bytes());
                    }
                }
            }
        }
        return state;
    }
    let mut state = per_expert(tensors(&fx(arch, "from-gguf/state_dict.safetensors")));
    if json(&fx(arch, "from-gguf/config.json"))["tie_word_embeddings"] == true {
        state.remove("lm_head.weight");
    }
    // Qwen3.5's MTP layers, which the loader drops (it has no MTP module),
    // with the loader's transforms (generate.py's mtp_reference).
    if fx(arch, "from-gguf/mtp.safetensors").exists() {
        state.extend(tensors(&fx(arch, "from-gguf/mtp.safetensors")));
    }
    state
}

/// A state dict with transformers 5's in-memory fused experts
/// (`mlp.experts.gate_up_proj` `[E, 2I, H]`, `mlp.experts.down_proj`
/// `[E, H, I]`) split per expert as checkpoints hold them: a layout
/// change of the loader's own bytes.
fn per_expert(
    state: BTreeMap<String, (String, Vec<usize>, Vec<u8>)>,
) -> BTreeMap<String, (String, Vec<usize>, Vec<u8>)> {
    let mut out = BTreeMap::new();
    for (name, (dtype, shape, bytes)) in state {
        let stem = name
            .strip_suffix("mlp.experts.gate_up_proj")
            .map(|s| (s, true))
            .or_else(|| name.strip_suffix("mlp.experts.down_proj").map(|s| (s, false)));
        let Some((stem, fused)) = stem else {
            out.insert(name, (dtype, shape, bytes));
            continue;
        };
        let each = bytes.len() / shape[0];
        for (e, expert) in bytes.chunks(each).enumerate() {
            let prefix = format!("{stem}mlp.experts.{e}.");
            if fused {
                let (gate, up) = expert.split_at(each / 2);
                let half = vec![shape[1] / 2, shape[2]];
                out.insert(
                    format!("{prefix}gate_proj.weight"),
                    (dtype.clone(), half.clone(), gate.to_vec()),
                );
                out.insert(
                    format!("{prefix}up_proj.weight"),
                    (dtype.clone(), half, up.to_vec()),
                );
            } else {
                let one = shape[1..].to_vec();
                out.insert(
                    format!("{prefix}down_proj.weight"),
                    (dtype.clone(), one, expert.to_vec()),
                );
            }
        }
    }
    out
}

/// JSON values equal once every number is rounded to f32.
fn same_as_f32(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (a, b) {
        (J::Number(x), J::Number(y)) => x.as_f64().map(|v| v as f32) == y.as_f64().map(|v| v as f32),
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_as_f32(v, w)))
        }
        (J::Array(x), J::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same_as_f32(v, w)),
        _ => a == b,
    }
}

/// A file of one architecture's fixtures.
fn fx(arch: &str, rel: &str) -> std::path::PathBuf {
    fixture(&format!("model/{arch}/{rel}"))
}

fn to_hf(gguf: &Path, out: &Path) {
    tensorcast()
        .arg("convert")
        .arg(gguf)
        .args(["--to", "hf", "-o"])
        .arg(out)
        .assert()
        .success();
}

#[test]
fn gguf_to_hf_folder_equals_transformers_gguf_loader() {
    for arch in ARCHES {
        gguf_to_hf_folder_equals_transformers_gguf_loader_for(arch);
    }
}

fn gguf_to_hf_folder_equals_transformers_gguf_loader_for(arch: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model");
    to_hf(&fx(arch, "reference-f32.gguf"), &out);
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    // A SentencePiece vocabulary's model file too (T5's spiece.model).
    let mut want_files = vec![
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ];
    let gguf = tensorcast::open(fx(arch, "reference-f32.gguf"), &Default::default()).unwrap();
    match gguf.metadata().get("tokenizer.ggml.model") {
        Some(tensorcast::Value::Str(m)) if m == "llama" => want_files.push("tokenizer.model"),
        Some(tensorcast::Value::Str(m)) if m == "t5" => want_files.insert(0, "spiece.model"),
        _ => {}
    }
    want_files.sort();
    assert_eq!(files, want_files, "{arch}");
    // The state dict, bit for bit (names, dtypes, shapes, bytes): Q/K rows
    // un-permuted as transformers does.
    let ours = tensors(&out.join("model.safetensors"));
    let reference = loader_state(arch);
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        reference.keys().collect::<Vec<_>>(),
        "{arch}"
    );
    for (name, want) in &reference {
        assert!(ours[name] == *want, "{arch}: {name} differs");
    }
    // ... and the original model's weights, which the GGUF came from (but
    // for offset norms, which carry the f32 rounding of + 1 - 1).
    let original = tensors(&fx(arch, "hf/model.safetensors"));
    assert_eq!(ours.len(), original.len(), "{arch}");
    for (name, want) in &original {
        let offset = offset_norm(arch, name);
        assert!(
            offset || ours[name] == *want,
            "{arch}: {name} is not the original"
        );
    }
    // The config fields that shape the model.
    let config = json(&out.join("config.json"));
    // transformers has no GGUF loader for olmo2, granite and smollm3
    // (from-gguf/loader-error.txt, and no config): the original is the reference.
    let no_loader = !fx(arch, "from-gguf/config.json").exists();
    let want = match LOADER_WRONG.contains(&arch) || no_loader {
        true => json(&fx(arch, "hf/config.json")),
        false => json(&fx(arch, "from-gguf/config.json")),
    };
    // A mixture of experts: the expert count (under transformers 5's name),
    // experts per token, expert FFN width, and whether top-k weights are
    // renormalized (llama.cpp always does for these two).
    for key in [
        "num_local_experts",
        "num_experts",
        "num_experts_per_tok",
        "moe_intermediate_size",
        "shared_expert_intermediate_size",
        "norm_topk_prob",
        "no_rope_layers",
        // Gemma 4's shape: per-layer inputs, shared KV layers, double-wide
        // MLPs, keys as values, the MoE block.
        "hidden_size_per_layer_input",
        "vocab_size_per_layer_input",
        "num_kv_shared_layers",
        "use_double_wide_mlp",
        "attention_k_eq_v",
        "enable_moe_block",
        "top_k_experts",
        "per_layer_config",
    ] {
        assert_eq!(config[key], want[key], "{arch}: config.json {key}");
    }
    // Granite's multipliers (GGUF holds them as f32).
    for key in [
        "attention_multiplier",
        "embedding_multiplier",
        "residual_multiplier",
        "logits_scaling",
    ] {
        let f32_of = |v: &serde_json::Value| v.as_f64().map(|x| x as f32);
        assert_eq!(
            f32_of(&config[key]),
            f32_of(&want[key]),
            "{arch}: config.json {key}"
        );
    }
    for key in [
        "model_type",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "max_position_embeddings",
        "rms_norm_eps",
        "rope_parameters",
        "vocab_size",
        "bos_token_id",
        "eos_token_id",
        "tie_word_embeddings",
        "hidden_act",
        // GPT-2's own names for them.
        "n_embd",
        "n_layer",
        "n_head",
        "n_positions",
        "n_ctx",
    ] {
        // transformers 5 ties T5's embeddings whatever its config says; the
        // flag says whether the decoder's output is scaled, which llama.cpp
        // never does: our folder says untied (t5_is_llama_cpps_t5 checks).
        if arch == "mt5" && key == "model_type" {
            assert_eq!(config[key], "t5");
            continue;
        }
        // T5's context: the reference's 512 where config.json has none.
        if arch.contains("t5") && key == "n_positions" {
            assert_eq!(config[key], 512);
            continue;
        }
        if arch.contains("t5") && key == "tie_word_embeddings" {
            assert_eq!(config[key], false);
            continue;
        }
        // Falcon's GGUF says 2048 whatever the model (its converter's
        // constant): the file does not hold the original's length.
        if arch == "falcon" && key == "max_position_embeddings" {
            assert_eq!(config[key], 2048);
            continue;
        }
        // DeciLM's config names its rope rope_theta and rope_scaling.
        if arch == "deci" && key == "rope_parameters" {
            assert!(
                same_as_f32(&config["rope_scaling"], &want["rope_scaling"]),
                "{arch}: rope_scaling"
            );
            assert!(
                same_as_f32(&config["rope_theta"], &want["rope_theta"]),
                "{arch}: rope_theta"
            );
            continue;
        }
        if key == "rope_parameters" {
            // Floats the GGUF holds as f32 (Ministral 3's scaling beta).
            assert!(
                same_as_f32(&config[key], &want[key]),
                "{arch}: config.json {key}: {} vs {}",
                config[key],
                want[key]
            );
            continue;
        }
        if key == "rms_norm_eps" {
            // GGUF holds it as f32: the original's value, widened from f32.
            let f32_of = |v: &serde_json::Value| v.as_f64().map(|x| x as f32);
            assert_eq!(
                f32_of(&config[key]),
                f32_of(&want[key]),
                "{arch}: config.json {key}"
            );
            continue;
        }
        assert_eq!(config[key], want[key], "{arch}: config.json {key}");
    }
    // Qwen3.5's MTP layers, which the folder keeps and the loader drops:
    // as the original says.
    let original_config = json(&fx(arch, "hf/config.json"));
    assert_eq!(
        config["mtp_num_hidden_layers"], original_config["mtp_num_hidden_layers"],
        "{arch}: mtp_num_hidden_layers"
    );
    // Which layers are which (sliding, linear attention, convolution),
    // where our folder states it (elsewhere transformers derives it).
    if !config["layer_types"].is_null() {
        assert_eq!(
            config["layer_types"], original_config["layer_types"],
            "{arch}: layer_types"
        );
    }
    // transformers derives head_dim itself when its config has none (qwen2).
    if !want["head_dim"].is_null() {
        assert_eq!(config["head_dim"], want["head_dim"], "{arch}: head_dim");
    }
    // A Mistral GGUF says `llama` (llama.cpp converts it as one), so it
    // comes back as the class transformers' loader builds for it.
    let original = json(&fx(arch, "hf/config.json"));
    let class = match arch {
        "mistral" => serde_json::json!(["LlamaForCausalLM"]),
        // llama.cpp writes mT5 as t5: it comes back as the T5 it is.
        "mt5" => serde_json::json!(["T5ForConditionalGeneration"]),
        _ => original["architectures"].clone(),
    };
    assert_eq!(config["architectures"], class, "{arch}");
}

#[test]
fn tokenizers_give_the_reference_token_ids() {
    for arch in ARCHES {
        tokenizers_give_the_reference_token_ids_for(arch);
    }
}

fn tokenizers_give_the_reference_token_ids_for(arch: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model");
    to_hf(&fx(arch, "reference-f32.gguf"), &out);
    if !fx(arch, "from-gguf/tokenizer").exists() {
        return original_token_ids(arch, &out);
    }
    // Same vocabulary and merges as the tokenizer transformers builds from the GGUF.
    let ours = json(&out.join("tokenizer.json"));
    let reference = json(&fx(arch, "from-gguf/tokenizer/tokenizer.json"));
    for part in [
        "model",
        "added_tokens",
        "pre_tokenizer",
        "post_processor",
        "decoder",
        "normalizer",
    ] {
        assert_eq!(ours[part], reference[part], "tokenizer.json {part}");
    }
    // And the same ids for every text, through Hugging Face's tokenizers crate.
    let tok = tokenizers::Tokenizer::from_file(out.join("tokenizer.json")).unwrap();
    let want = json(&fx(arch, "from-gguf/token_ids.json"));
    let texts = want.as_object().unwrap();
    assert!(texts.len() >= 6);
    for (text, ids) in texts {
        let got = tok.encode(text.as_str(), true).unwrap().get_ids().to_vec();
        let ids: Vec<u32> = serde_json::from_value(ids.clone()).unwrap();
        assert_eq!(got, ids, "{arch}: {text:?}");
    }
    let config = json(&out.join("tokenizer_config.json"));
    let want = json(&fx(arch, "from-gguf/tokenizer/tokenizer_config.json"));
    for key in ["bos_token", "eos_token", "unk_token"] {
        assert_eq!(config[key], want[key], "{arch}: tokenizer_config.json {key}");
    }
}

/// Without a loader to compare with: the original folder's ids for every
/// text, after the BOS llama.cpp adds for a SentencePiece vocabulary whose
/// GGUF does not say add_bos_token (as our folder says it too).
fn original_token_ids(arch: &str, out: &Path) {
    let tok = tokenizers::Tokenizer::from_file(out.join("tokenizer.json")).unwrap();
    let gguf = tensorcast::open(fx(arch, "reference-f32.gguf"), &Default::default()).unwrap();
    let meta = gguf.metadata();
    let bos_added = meta.get("tokenizer.ggml.add_bos_token").is_none()
        && meta.get("tokenizer.ggml.model") == Some(&tensorcast::Value::Str("llama".into()));
    let bos = match meta.get("tokenizer.ggml.bos_token_id") {
        Some(tensorcast::Value::U32(b)) => Some(*b),
        None => None,
        other => panic!("{arch}: bos {other:?}"),
    };
    let want = json(&fx(arch, "hf_token_ids.json"));
    let texts = want.as_object().unwrap();
    assert!(texts.len() >= 6);
    for (text, ids) in texts {
        let mut ids: Vec<u32> = serde_json::from_value(ids.clone()).unwrap();
        if bos_added {
            ids.insert(0, bos.expect("a BOS id where BOS is added"));
        }
        let got = tok.encode(text.as_str(), true).unwrap().get_ids().to_vec();
        assert_eq!(got, ids, "{arch}: {text:?}");
    }
}

#[test]
fn f16_gguf_keeps_f16_and_equals_the_original_cast_by_torch_rules() {
    for arch in ARCHES {
        f16_gguf_keeps_f16_and_equals_the_original_cast_by_torch_rules_for(arch);
    }
}

fn f16_gguf_keeps_f16_and_equals_the_original_cast_by_torch_rules_for(arch: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model");
    to_hf(&fx(arch, "reference-f16.gguf"), &out);
    // convert_hf_to_gguf --outtype f16 is torch's f32 -> f16 cast of the
    // matrices (norms stay f32); tensorcast's cast is bit-identical to torch's.
    let cast = dir.path().join("cast.safetensors");
    tensorcast()
        .arg("convert")
        .arg(fx(arch, "hf/model.safetensors"))
        .arg("-o")
        .arg(&cast)
        // (MoE routers, `*.gate.weight`, and shared-expert gates stay f32 as norms do.)
        .args([
            "--dtype",
            "f16",
            "--exclude",
            "*norm*",
            "--exclude",
            "*.bias",
            "--exclude",
            "*.gate.weight",
            "--exclude",
            "*.shared_expert_gate.weight",
            // GPT-2's LayerNorms and learned positions.
            "--exclude",
            "*.ln_*",
            "--exclude",
            "*.wpe.*",
            // gpt-oss's biases, sinks and router.
            "--exclude",
            "*_bias",
            "--exclude",
            "*.sinks",
            "--exclude",
            "*.router.*",
            // Qwen3.5's delta-net vectors and convolution.
            "--exclude",
            "*.A_log",
            "--exclude",
            "*.dt_bias",
            "--exclude",
            "*.conv1d.*",
            // LFM2's convolution kernels, Mamba's D.
            "--exclude",
            "*.conv.conv.*",
            "--exclude",
            "*.D",
            // Gemma 4's layer scalars.
            "--exclude",
            "*.layer_scalar",
        ])
        .assert()
        .success();
    let ours = tensors(&out.join("model.safetensors"));
    let cast = tensors(&cast);
    // Norms stay f32: the original, or for offset norms the loader's.
    let f32_source = if NORM_OFFSET.contains(&arch) {
        loader_state(arch)
    } else {
        tensors(&fx(arch, "hf/model.safetensors"))
    };
    for (name, (dtype, shape, bytes)) in &ours {
        let want = cast.get(name).unwrap_or(&f32_source[name]);
        assert_eq!((dtype, shape), (&want.0, &want.1), "{name}");
        assert!(*bytes == want.2, "{name} differs");
    }
    assert_eq!(json(&out.join("config.json"))["dtype"], "float16");
}

#[test]
fn non_models_and_unknown_architectures_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    // A GGUF whose architecture has no table (gguf-py's test files say "test").
    let r = tensorcast()
        .arg("convert")
        .arg(fixture("gguf/quants.gguf"))
        .args(["--to", "hf", "-o"])
        .arg(dir.path().join("m"))
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&r.get_output().stderr).into_owned();
    assert!(
        err.contains("architecture 'test'") && err.contains("known: llama"),
        "{err}"
    );
    assert!(!dir.path().join("m/model.safetensors").exists());
    // The library says the same through its error kind.
    let opts = tensorcast::ConvertOptions {
        to: Some("hf".into()),
        ..Default::default()
    };
    let e = tensorcast::convert_file(fixture("gguf/quants.gguf"), dir.path().join("m2"), &opts).unwrap_err();
    assert_eq!(e.kind(), tensorcast::ErrorKind::Unsupported, "{e}");
    // Plain container conversion of the same model is unchanged.
    tensorcast()
        .arg("convert")
        .arg(fx("llama", "reference-f32.gguf"))
        .arg("-o")
        .arg(dir.path().join("plain.safetensors"))
        .assert()
        .success();
    let plain = tensors(&dir.path().join("plain.safetensors"));
    assert!(plain.contains_key("blk.0.attn_q.weight"));
}

#[test]
fn hf_folder_to_gguf_is_byte_identical_to_convert_hf_to_gguf() {
    for arch in ARCHES {
        hf_folder_to_gguf_is_byte_identical_to_convert_hf_to_gguf_for(arch);
    }
}

fn hf_folder_to_gguf_is_byte_identical_to_convert_hf_to_gguf_for(arch: &str) {
    let dir = tempfile::tempdir().unwrap();
    for (outtype, args) in [("f32", &[][..]), ("f16", &["--dtype", "f16"][..])] {
        let out = dir.path().join(format!("{outtype}.gguf"));
        tensorcast()
            .arg("convert")
            .arg(fx(arch, "hf"))
            .arg("-o")
            .arg(&out)
            .args(args)
            .args(pre_args(arch))
            .assert()
            .success();
        let reference = fx(arch, &format!("reference-{outtype}.gguf"));
        // Same tensors (names, shapes, types, bytes) and key/values, typed.
        let (ours, theirs) = (
            tensorcast::open(&out, &Default::default()).unwrap(),
            tensorcast::open(&reference, &Default::default()).unwrap(),
        );
        assert_eq!(ours.tensors(), theirs.tensors(), "{outtype}");
        assert_eq!(ours.metadata(), theirs.metadata(), "{outtype}");
        assert!(
            tensorcast::diff(&*ours, &*theirs, None).unwrap().is_empty(),
            "{outtype}"
        );
        // And the whole file, byte for byte.
        assert!(
            std::fs::read(&out).unwrap() == std::fs::read(&reference).unwrap(),
            "{outtype}: bytes differ"
        );
    }
}

#[test]
fn round_trips_give_back_the_same_model() {
    for arch in ARCHES {
        round_trips_give_back_the_same_model_for(arch);
    }
}

fn round_trips_give_back_the_same_model_for(arch: &str) {
    let dir = tempfile::tempdir().unwrap();
    // HF -> GGUF -> HF.
    let gguf = dir.path().join("m.gguf");
    tensorcast()
        .arg("convert")
        .arg(fx(arch, "hf"))
        .arg("-o")
        .arg(&gguf)
        .args(pre_args(arch))
        .assert()
        .success();
    let back = dir.path().join("back");
    to_hf(&gguf, &back);
    // The state dict transformers' loader builds from the reference GGUF
    // (the original weights, but for offset norms' f32 rounding).
    assert!(
        tensors(&back.join("model.safetensors")) == loader_state(arch),
        "{arch}"
    );
    // GGUF -> HF -> GGUF: the reference GGUF's tensors and key/values, once
    // the folder has the tokenizer.model the SentencePiece vocabulary is read
    // from. The folder states BOS/EOS explicitly (transformers' defaults for
    // a llama vocabulary), so the GGUF gains those two flags.
    let folder = dir.path().join("hf");
    to_hf(&fx(arch, "reference-f32.gguf"), &folder);
    // (The folder's own tokenizer.model / spiece.model, written from the
    // GGUF's vocabulary: nothing is copied from the original.)
    let again = dir.path().join("again.gguf");
    tensorcast()
        .arg("convert")
        .arg(&folder)
        .arg("-o")
        .arg(&again)
        .args(pre_args(arch))
        .assert()
        .success();
    let (a, b) = (
        tensorcast::open(&again, &Default::default()).unwrap(),
        tensorcast::open(fx(arch, "reference-f32.gguf"), &Default::default()).unwrap(),
    );
    let shape = |s: &dyn tensorcast::Source| -> Vec<_> {
        s.tensors()
            .iter()
            .map(|t| (t.name.clone(), t.dtype, t.shape.clone()))
            .collect()
    };
    assert_eq!(shape(&*a), shape(&*b));
    assert!(tensorcast::diff(&*a, &*b, None).unwrap().is_empty());
    for (k, v) in b.metadata().iter() {
        assert_eq!(a.metadata().get(k), Some(v), "{k}");
    }
    let extra: Vec<(&str, &tensorcast::Value)> = a
        .metadata()
        .iter()
        .filter(|(k, _)| b.metadata().get(k).is_none())
        .collect();
    // The flags our folder's tokenizer_config.json states (unless the
    // reference GGUF says them already: a byte-level BPE vocabulary's
    // add_bos_token, a real tokenizer_config.json's flags).
    let stated = json(&folder.join("tokenizer_config.json"));
    let flag = |k: &str| tensorcast::Value::Bool(stated[k].as_bool().expect(k));
    let (bos, eos) = (flag("add_bos_token"), flag("add_eos_token"));
    let mut expected: Vec<(&str, &tensorcast::Value)> = [
        ("tokenizer.ggml.add_bos_token", &bos),
        ("tokenizer.ggml.add_eos_token", &eos),
    ]
    .into_iter()
    .filter(|(k, _)| b.metadata().get(k).is_none())
    .collect();
    // DeciLM's vocabulary is read from tokenizer.json (LlamaHfVocab): its
    // special flags come from our post-processor, whose pair template adds
    // no separator, before tokenizer_config.json's.
    let no_sep = tensorcast::Value::Bool(false);
    if arch == "deci" {
        expected.insert(1, ("tokenizer.ggml.add_sep_token", &no_sep));
    }
    assert_eq!(extra, expected, "{arch}");
}

#[test]
fn byte_level_bpe_vocabularies_give_the_loaders_tokenizer() {
    // A GGUF with a gpt2-type vocabulary, whose pre-tokenizer transformers
    // knows by name (llama-bpe: Llama 3's split) or not (smollm: GPT-2's).
    for pre in ["llama-bpe", "smollm"] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("model");
        let root = fixture(&format!("model/bpe/{pre}"));
        to_hf(&root.join("model.gguf"), &out);
        let ours = json(&out.join("tokenizer.json"));
        let reference = json(&root.join("from-gguf/tokenizer/tokenizer.json"));
        for part in [
            "model",
            "added_tokens",
            "pre_tokenizer",
            "post_processor",
            "decoder",
            "normalizer",
        ] {
            assert_eq!(ours[part], reference[part], "{pre}: tokenizer.json {part}");
        }
        let tok = tokenizers::Tokenizer::from_file(out.join("tokenizer.json")).unwrap();
        let want = json(&root.join("from-gguf/token_ids.json"));
        for (text, ids) in want.as_object().unwrap() {
            let got = tok.encode(text.as_str(), true).unwrap().get_ids().to_vec();
            let ids: Vec<u32> = serde_json::from_value(ids.clone()).unwrap();
            assert_eq!(got, ids, "{pre}: {text:?}");
        }
        let config = json(&out.join("tokenizer_config.json"));
        let want = json(&root.join("from-gguf/tokenizer/tokenizer_config.json"));
        for key in ["bos_token", "eos_token", "unk_token"] {
            assert_eq!(config[key], want[key], "{pre}: tokenizer_config.json {key}");
        }
    }
}

/// A folder whose vocabulary's pre-tokenizer hash llama.cpp's table does not
/// know (`root` = fixtures/model/bpe or bert): refused, naming the hash the
/// reference logged (reference-chkhsh.txt); with the name the reference run
/// was given, byte-identical to its GGUF at f32 and f16. Returns the f32 GGUF.
fn named_pre_matches_reference(root: &str, pre: &str, dir: &Path) -> std::path::PathBuf {
    let folder = fixture(&format!("{root}/hf"));
    let hash = std::fs::read_to_string(fixture(&format!("{root}/reference-chkhsh.txt"))).unwrap();
    let r = tensorcast()
        .arg("convert")
        .arg(&folder)
        .arg("-o")
        .arg(dir.join("x.gguf"))
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&r.get_output().stderr).into_owned();
    assert!(err.contains(hash.trim()), "{root}: {err}");
    assert!(!dir.join("x.gguf").exists());
    for (outtype, args) in [("f32", &[][..]), ("f16", &["--dtype", "f16"][..])] {
        let out = dir.join(format!("{outtype}.gguf"));
        tensorcast()
            .arg("convert")
            .arg(&folder)
            .arg("-o")
            .arg(&out)
            .args(["--tokenizer-pre", pre])
            .args(args)
            .assert()
            .success();
        let reference = fixture(&format!("{root}/reference-{outtype}.gguf"));
        let same = std::fs::read(&out).unwrap() == std::fs::read(&reference).unwrap();
        assert!(
            same,
            "{root} {outtype}: not byte-identical to convert_hf_to_gguf.py's"
        );
    }
    dir.join("f32.gguf")
}

#[test]
fn byte_level_bpe_folder_to_gguf_is_byte_identical_once_its_pre_tokenizer_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let folder = fixture("model/bpe/hf");
    let gguf = named_pre_matches_reference("model/bpe", "llama-bpe", dir.path());
    // Back to Hugging Face: the tokenizer encodes as the folder's own did.
    let back = dir.path().join("back");
    to_hf(&gguf, &back);
    let ours = tokenizers::Tokenizer::from_file(back.join("tokenizer.json")).unwrap();
    let original = tokenizers::Tokenizer::from_file(folder.join("tokenizer.json")).unwrap();
    let texts = json(&fixture("model/llama/from-gguf/token_ids.json"));
    for text in texts.as_object().unwrap().keys() {
        let a = ours.encode(text.as_str(), true).unwrap().get_ids().to_vec();
        let b = original.encode(text.as_str(), true).unwrap().get_ids().to_vec();
        assert_eq!(a, b, "{text:?}");
    }
}

#[test]
fn bert_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let folder = fixture("model/bert/hf");
    // HF -> GGUF: its WordPiece vocabulary's check hash is the reference's,
    // unknown to its table; named as the reference run named it, the file is
    // byte-identical (positions and token types stay f32 at f16).
    named_pre_matches_reference("model/bert", "bert-bge", dir.path());
    // GGUF -> HF (transformers has no BERT GGUF loader): the original weights
    // but the pooler llama.cpp drops, and the original tokenizer.
    let back = dir.path().join("back");
    to_hf(&fixture("model/bert/reference-f32.gguf"), &back);
    let mut original = tensors(&folder.join("model.safetensors"));
    original.retain(|name, _| !name.starts_with("pooler."));
    assert!(tensors(&back.join("model.safetensors")) == original);
    let ours = json(&back.join("tokenizer.json"));
    let theirs = json(&folder.join("tokenizer.json"));
    for part in [
        "model",
        "added_tokens",
        "normalizer",
        "pre_tokenizer",
        "post_processor",
        "decoder",
    ] {
        assert_eq!(ours[part], theirs[part], "bert tokenizer.json {part}");
    }
    let config = json(&back.join("config.json"));
    let want = json(&folder.join("config.json"));
    for key in [
        "model_type",
        "architectures",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "max_position_embeddings",
        "type_vocab_size",
        "vocab_size",
        "pad_token_id",
        "hidden_act",
    ] {
        assert_eq!(config[key], want[key], "bert config.json {key}");
    }
    let eps = config["layer_norm_eps"].as_f64().unwrap();
    assert_eq!(eps as f32, 1e-12f32, "layer_norm_eps goes through the GGUF's f32");
}

#[test]
fn folders_with_pytorch_weights_convert_and_hf_output_shards() {
    let dir = tempfile::tempdir().unwrap();
    // pytorch_model.bin (torch.save of the same weights) read by the
    // allowlist VM: the same GGUF, byte for byte.
    let out = dir.path().join("bin.gguf");
    tensorcast()
        .arg("convert")
        .arg(fixture("model/llama/bin/hf"))
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    assert!(
        std::fs::read(&out).unwrap() == std::fs::read(fixture("model/llama/reference-f32.gguf")).unwrap()
    );
    // --to hf with a shard size: Hugging Face shards and index, equal weights.
    let folder = dir.path().join("sharded");
    tensorcast()
        .arg("convert")
        .arg(fixture("model/llama/reference-f32.gguf"))
        .args(["--to", "hf", "--max-shard-size", "200kB", "-o"])
        .arg(&folder)
        .assert()
        .success();
    assert!(folder.join("model.safetensors.index.json").exists());
    assert!(!folder.join("model.safetensors").exists());
    assert!(folder.join("config.json").exists());
    let a = tensorcast::open(folder.join("model.safetensors.index.json"), &Default::default()).unwrap();
    let b = tensorcast::open(fixture("model/llama/hf/model.safetensors"), &Default::default()).unwrap();
    assert!(tensorcast::diff(&*a, &*b, None).unwrap().is_empty());
    // And the sharded folder converts back to the same GGUF.
    std::fs::copy(
        fixture("model/llama/hf/tokenizer.model"),
        folder.join("tokenizer.model"),
    )
    .unwrap();
    let again = dir.path().join("again.gguf");
    tensorcast()
        .arg("convert")
        .arg(&folder)
        .arg("-o")
        .arg(&again)
        .assert()
        .success();
    let (x, y) = (
        tensorcast::open(&again, &Default::default()).unwrap(),
        tensorcast::open(fixture("model/llama/reference-f32.gguf"), &Default::default()).unwrap(),
    );
    assert!(tensorcast::diff(&*x, &*y, None).unwrap().is_empty());
}

#[test]
fn quantized_gguf_from_a_folder_is_byte_identical_to_convert_hf_to_gguf_q8_0() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("q8.gguf");
    tensorcast()
        .arg("convert")
        .arg(fixture("model/llama/hf"))
        .arg("-o")
        .arg(&out)
        .args(["--quantize", "Q8_0"])
        .assert()
        .success();
    let same =
        std::fs::read(&out).unwrap() == std::fs::read(fixture("model/llama/reference-q8_0.gguf")).unwrap();
    assert!(same, "not byte-identical to convert_hf_to_gguf.py --outtype q8_0");
    // Back to Hugging Face: dequantized to f32 (as transformers' loader does).
    let back = dir.path().join("back");
    to_hf(&out, &back);
    let config = json(&back.join("config.json"));
    assert_eq!(config["dtype"], "float32");
}

#[test]
fn names_keep_converts_the_container_explicitly() {
    let dir = tempfile::tempdir().unwrap();
    // An architecture without a table is refused as a model, and leaves
    // nothing behind; --names keep writes the container into the folder.
    let out = dir.path().join("m");
    let r = tensorcast()
        .arg("convert")
        .arg(fixture("gguf/quants.gguf"))
        .args(["--to", "hf", "-o"])
        .arg(&out)
        .assert()
        .code(1);
    assert!(String::from_utf8_lossy(&r.get_output().stderr).contains("--names keep"));
    assert!(!out.exists());
    tensorcast()
        .arg("convert")
        .arg(fixture("gguf/quants.gguf"))
        .args(["--to", "hf", "--names", "keep", "-o"])
        .arg(&out)
        .assert()
        .success();
    let plain = tensorcast::open(out.join("model.safetensors"), &Default::default()).unwrap();
    assert!(plain
        .tensors()
        .iter()
        .all(|t| t.name.starts_with("blk.") || !t.name.contains("layers")));
    assert!(!out.join("config.json").exists());
    // A model folder converts to other formats only as a container, on request.
    let st = dir.path().join("w.safetensors");
    tensorcast()
        .arg("convert")
        .arg(fixture("model/llama/hf"))
        .arg("-o")
        .arg(&st)
        .assert()
        .code(1);
    tensorcast()
        .arg("convert")
        .arg(fixture("model/llama/hf"))
        .args(["--names", "keep", "-o"])
        .arg(&st)
        .assert()
        .success();
    let a = tensorcast::open(&st, &Default::default()).unwrap();
    let b = tensorcast::open(fixture("model/llama/hf/model.safetensors"), &Default::default()).unwrap();
    assert!(tensorcast::diff(&*a, &*b, None).unwrap().is_empty());
}

/// Real chat templates (llama.cpp's copies of Qwen3's, Mistral Nemo's and
/// Hermes 2 Pro's tool_use template; fixtures/model/generate.py
/// REAL_TEMPLATES) survive both ways: a transformers 5 folder's
/// chat_template.jinja and a tokenizer_config.json list of named templates
/// become the reference's GGUF keys (byte-identical, checked above) and come
/// back into tokenizer_config.json with the BOS/EOS flags, from the
/// reference GGUF and through a round trip of the original folder.
#[test]
fn real_chat_templates_and_flags_survive_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    for arch in ["qwen3moe", "mixtral", "qwen2moe"] {
        let original = json(&fx(arch, "hf/tokenizer_config.json"));
        let want = match std::fs::read_to_string(fx(arch, "hf/chat_template.jinja")) {
            Ok(text) => serde_json::Value::String(text),
            Err(_) => original["chat_template"].clone(),
        };
        assert!(
            want.to_string().contains("{%"),
            "{arch}: no template in the fixture"
        );
        let from_reference = dir.path().join(format!("{arch}-from-reference"));
        to_hf(&fx(arch, "reference-f32.gguf"), &from_reference);
        let gguf = dir.path().join(format!("{arch}.gguf"));
        tensorcast()
            .arg("convert")
            .arg(fx(arch, "hf"))
            .arg("-o")
            .arg(&gguf)
            .args(pre_args(arch))
            .assert()
            .success();
        let round_trip = dir.path().join(format!("{arch}-round-trip"));
        to_hf(&gguf, &round_trip);
        for folder in [&from_reference, &round_trip] {
            let config = json(&folder.join("tokenizer_config.json"));
            assert_eq!(config["chat_template"], want, "{arch}: {}", folder.display());
            for flag in ["add_bos_token", "add_eos_token"] {
                if !original[flag].is_null() {
                    assert_eq!(config[flag], original[flag], "{arch}: {flag}");
                }
            }
        }
    }
}

/// A quantized GPT-2 GGUF into a folder: its Conv1D matrices are decoded
/// (bit-identical to gguf-py's dequantization, tested elsewhere) and then
/// transposed back to `[in, out]`, element for element.
#[test]
fn quantized_transposed_matrices_are_decoded_then_transposed() {
    let dir = tempfile::tempdir().unwrap();
    let q8 = dir.path().join("gpt2-q8.gguf");
    tensorcast()
        .arg("convert")
        .arg(fx("gpt2", "reference-f32.gguf"))
        .args(["--quantize", "Q8_0", "-o"])
        .arg(&q8)
        .assert()
        .success();
    let folder = dir.path().join("hf");
    to_hf(&q8, &folder);
    // The same GGUF decoded with its names and orientation kept.
    let flat = dir.path().join("flat.safetensors");
    tensorcast()
        .arg("convert")
        .arg(&q8)
        .args(["--names", "keep", "-o"])
        .arg(&flat)
        .assert()
        .success();
    let (ours, decoded) = (tensors(&folder.join("model.safetensors")), tensors(&flat));
    let mut checked = 0;
    for (hf, gguf) in [
        ("transformer.h.0.attn.c_attn.weight", "blk.0.attn_qkv.weight"),
        ("transformer.h.1.mlp.c_fc.weight", "blk.1.ffn_up.weight"),
        ("transformer.h.1.mlp.c_proj.weight", "blk.1.ffn_down.weight"),
    ] {
        let (o, d) = (&ours[hf], &decoded[gguf]);
        assert_eq!(d.0, "F32", "{gguf}");
        assert_eq!(o.0, "F32", "{hf}");
        let (rows, cols) = (d.1[0], d.1[1]);
        assert_eq!(o.1, vec![cols, rows], "{hf}");
        for r in 0..rows {
            for c in 0..cols {
                let (a, b) = ((c * rows + r) * 4, (r * cols + c) * 4);
                assert_eq!(o.2[a..a + 4], d.2[b..b + 4], "{hf} [{c}, {r}]");
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 3);
}

/// gpt-oss with MXFP4 experts (llama-quantize's MXFP4_MOE, as gpt-oss GGUFs
/// ship): into a folder, each expert's blocks are decoded (bit-identical to
/// gguf-py, tested elsewhere) and woven back into transformers' layout:
/// `gate_up_proj[e, h, 2r + p]` is gate (p = 0) or up (p = 1) at `[e, r, h]`,
/// `down_proj[e, f, h]` is `ffn_down_exps[e, h, f]`.
#[test]
fn mxfp4_experts_are_decoded_and_woven_back() {
    let dir = tempfile::tempdir().unwrap();
    let q = dir.path().join("gptoss-mxfp4.gguf");
    tensorcast()
        .arg("convert")
        .arg(fx("gptoss", "reference-f32.gguf"))
        .args(["--quantize", "MXFP4_MOE", "-o"])
        .arg(&q)
        .assert()
        .success();
    let stored = tensorcast::open(&q, &Default::default()).unwrap();
    let kind = |n: &str| stored.tensors().iter().find(|t| t.name == n).unwrap().dtype;
    assert_eq!(kind("blk.0.ffn_gate_exps.weight").to_string(), "MXFP4");
    let folder = dir.path().join("hf");
    to_hf(&q, &folder);
    let flat = dir.path().join("flat.safetensors");
    tensorcast()
        .arg("convert")
        .arg(&q)
        .args(["--names", "keep", "-o"])
        .arg(&flat)
        .assert()
        .success();
    let (ours, decoded) = (tensors(&folder.join("model.safetensors")), tensors(&flat));
    let f = |v: &[u8], i: usize| f32::from_le_bytes(v[i * 4..i * 4 + 4].try_into().unwrap());
    for block in 0..2 {
        let gate_up = &ours[&format!("model.layers.{block}.mlp.experts.gate_up_proj")];
        let gate = &decoded[&format!("blk.{block}.ffn_gate_exps.weight")];
        let up = &decoded[&format!("blk.{block}.ffn_up_exps.weight")];
        let (e, ff, h) = (gate.1[0], gate.1[1], gate.1[2]);
        assert_eq!(gate_up.1, vec![e, h, 2 * ff]);
        for x in 0..e {
            for r in 0..ff {
                for c in 0..h {
                    let at = (x * h + c) * 2 * ff + 2 * r;
                    let from = (x * ff + r) * h + c;
                    assert_eq!(f(&gate_up.2, at).to_bits(), f(&gate.2, from).to_bits());
                    assert_eq!(f(&gate_up.2, at + 1).to_bits(), f(&up.2, from).to_bits());
                }
            }
        }
        let down = &ours[&format!("model.layers.{block}.mlp.experts.down_proj")];
        let stacked = &decoded[&format!("blk.{block}.ffn_down_exps.weight")];
        let (e, h, ff) = (stacked.1[0], stacked.1[1], stacked.1[2]);
        assert_eq!(down.1, vec![e, ff, h]);
        for x in 0..e {
            for r in 0..h {
                for c in 0..ff {
                    let at = (x * ff + c) * h + r;
                    assert_eq!(
                        f(&down.2, at).to_bits(),
                        f(&stacked.2, (x * h + r) * ff + c).to_bits()
                    );
                }
            }
        }
    }
}

/// Head and expert counts come from config.json: counts the weights cannot
/// hold are refused by tensor name at once (nothing is sized by them).
#[test]
fn counts_the_weights_cannot_hold_are_refused() {
    for (arch, field, value, says) in [
        (
            "falcon",
            "num_attention_heads",
            1_000_000_000_000u64,
            "fused Q/K/V",
        ),
        ("deepseek3", "num_key_value_heads", 1_000_000_000_000, "heads of"),
        (
            "qwen3moe",
            "num_local_experts",
            1_000_000_000_000,
            "expert tensors",
        ),
        // Sizes that overflow when multiplied out.
        ("deepseek3", "qk_nope_head_dim", 1 << 62, "heads of"),
        ("gpt2", "n_embd", 1 << 63, "hidden_size"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("hf");
        std::fs::create_dir(&folder).unwrap();
        for entry in std::fs::read_dir(fx(arch, "hf")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), folder.join(entry.file_name())).unwrap();
        }
        let mut config = json(&folder.join("config.json"));
        config[field] = value.into();
        std::fs::write(folder.join("config.json"), config.to_string()).unwrap();
        let out = tensorcast()
            .arg("convert")
            .arg(&folder)
            .arg("-o")
            .arg(dir.path().join("m.gguf"))
            .args(pre_args(arch))
            .assert()
            .failure();
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(err.contains(says), "{arch}: {err}");
        assert!(!dir.path().join("m.gguf").exists());
    }
}

/// Qwen3.5 and Gemma 3 (4B and up) as their real checkpoints are
/// (`*ForConditionalGeneration`: `text_config`, `model.language_model.*`, a
/// vision tower; Qwen3.5's MTP layer) convert to the GGUF
/// convert_hf_to_gguf.py makes of them, byte for byte: the text model,
/// without the vision tower; and back to the text model's folder, the
/// weights the multimodal folder holds under their text names.
#[test]
fn multimodal_checkpoint_converts_its_text_model() {
    // (family, its text model's prefix, its vision tower's, text tensors at
    // least): Gemma 3's checkpoints keep the older names.
    for (arch, text_prefix, vision, least) in [
        ("qwen35", "model.language_model.", "model.visual.", 40),
        ("gemma3", "language_model.model.", "vision_tower.", 20),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("vlm.gguf");
        tensorcast()
            .arg("convert")
            .arg(fx(arch, "vlm"))
            .arg("-o")
            .arg(&out)
            .args(pre_args(arch))
            .assert()
            .success();
        let reference = fx(arch, "reference-vlm-f32.gguf");
        assert!(
            std::fs::read(&out).unwrap() == std::fs::read(&reference).unwrap(),
            "{arch}"
        );
        let source = tensors(&fx(arch, "vlm/model.safetensors"));
        assert!(source.keys().any(|k| k.starts_with(vision)), "{arch}");
        let back = dir.path().join("back");
        to_hf(&out, &back);
        let ours = tensors(&back.join("model.safetensors"));
        let mut text = 0;
        for (name, want) in &source {
            let Some(rest) = name.strip_prefix(text_prefix) else {
                continue;
            };
            text += 1;
            let name = format!("model.{rest}");
            assert!(offset_norm(arch, &name) || ours[&name] == *want, "{arch}: {name}");
        }
        assert!(
            text > least
                && ours
                    .keys()
                    .all(|k| !k.contains("visual") && !k.contains("vision")),
            "{arch}"
        );
    }
}

/// T5 back from GGUF as the original folder has it: its own config fields
/// (flan-t5's gated GELU, as llama.cpp runs a gated FFN; decoder output
/// unscaled, as llama.cpp computes it) and a Unigram tokenizer.json whose
/// normalizer (the NFKC charsmap from spiece.model), splitting, decoder,
/// post-processor and vocabulary with scores (but for the 8 extra ids the
/// GGUF does not hold) are the original's.
#[test]
fn t5_is_llama_cpps_t5() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t5");
    to_hf(&fx("t5", "reference-f32.gguf"), &out);
    let (ours, original) = (json(&out.join("config.json")), json(&fx("t5", "hf/config.json")));
    for key in [
        "d_model",
        "d_ff",
        "d_kv",
        "num_layers",
        "num_decoder_layers",
        "num_heads",
        "relative_attention_num_buckets",
        "decoder_start_token_id",
        "feed_forward_proj",
        "dense_act_fn",
        "is_gated_act",
        "is_encoder_decoder",
        "relative_attention_max_distance",
    ] {
        assert_eq!(ours[key], original[key], "{key}");
    }
    assert_eq!(ours["head_dim"], serde_json::Value::Null);
    assert!(same_as_f32(
        &ours["layer_norm_epsilon"],
        &original["layer_norm_epsilon"]
    ));
    let (tok, want) = (
        json(&out.join("tokenizer.json")),
        json(&fx("t5", "hf/tokenizer.json")),
    );
    for part in ["normalizer", "pre_tokenizer", "post_processor", "decoder"] {
        assert_eq!(tok[part], want[part], "tokenizer.json {part}");
    }
    assert_eq!(tok["model"]["type"], "Unigram");
    assert_eq!(tok["model"]["unk_id"], want["model"]["unk_id"]);
    let (v, w) = (
        tok["model"]["vocab"].as_array().unwrap(),
        want["model"]["vocab"].as_array().unwrap(),
    );
    assert_eq!(v.len(), 416);
    for (a, b) in v.iter().zip(w).take(400) {
        assert_eq!(a[0], b[0]);
        assert!(same_as_f32(&a[1], &b[1]), "{a} vs {b}");
    }
}

/// DeciLM back from GGUF: each layer's attention (grouped heads, a linear
/// map, none) as the original's block_configs say it, and an FFN
/// multiplier giving each layer's width as DeciLM rounds it (the
/// multiplier itself is one of many that round alike).
#[test]
fn deci_layers_come_back_as_block_configs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("deci");
    to_hf(&fx("deci", "reference-f32.gguf"), &out);
    let (ours, original) = (
        json(&out.join("config.json")),
        json(&fx("deci", "hf/config.json")),
    );
    let (a, b) = (
        ours["block_configs"].as_array().unwrap(),
        original["block_configs"].as_array().unwrap(),
    );
    assert_eq!(a.len(), 4);
    let hidden = original["hidden_size"].as_f64().unwrap();
    let width = |mult: &serde_json::Value| {
        let n = (2.0 * mult.as_f64().unwrap() * hidden / 3.0) as u64;
        n.div_ceil(256) * 256
    };
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x["attention"], y["attention"]);
        assert_eq!(width(&x["ffn"]["ffn_mult"]), width(&y["ffn"]["ffn_mult"]));
    }
    // The linear map that replaces layer 2's attention keeps its name.
    let weights = tensors(&out.join("model.safetensors"));
    assert!(weights.contains_key("model.layers.2.self_attn.linear_attn.weight"));
    assert!(!weights.keys().any(|k| k.starts_with("model.layers.1.self_attn")));
}

/// Key/values that contradict the tensors of the new families' GGUFs
/// (edited with `tensorcast edit`) are refused with exit 1 and a message
/// naming the tensor or key, never a crash: the delta-net's head counts,
/// a geometry of billions of rows, DeciLM's per-layer arrays, Gemma 4's
/// head width against its rope_freqs, Llama 3's rope base.
#[test]
fn contradicting_keys_of_the_new_families_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (arch, set, says) in [
        ("qwen35", "qwen35.ssm.time_step_rank=8", "rows"),
        ("qwen3next", "qwen3next.ssm.group_count=1", "rows"),
        (
            "qwen3next",
            "qwen3next.ssm.state_size=4000000000",
            "no Hugging Face name",
        ),
        ("deci", "deci.attention.head_count_kv=[2,0,0,2]", "rows"),
        ("gemma4", "gemma4.attention.key_length=64", "per pair"),
        ("llama31", "llama.rope.freq_base=10000", "rope scaling"),
    ] {
        let edited = dir.path().join(format!("{arch}.gguf"));
        tensorcast()
            .args(["edit", "--force", "-o"])
            .arg(&edited)
            .arg(fx(arch, "reference-f32.gguf"))
            .args(["--set", set])
            .assert()
            .success();
        let out = dir.path().join(format!("{arch}-hf"));
        let r = tensorcast()
            .arg("convert")
            .arg(&edited)
            .args(["--to", "hf", "-o"])
            .arg(&out)
            .assert()
            .code(1);
        let err = String::from_utf8_lossy(&r.get_output().stderr).into_owned();
        assert!(err.contains(says), "{arch} with {set}: {err}");
        assert!(!out.join("config.json").exists(), "{arch}");
    }
}

/// Counts a config.json states that would be built per layer are refused
/// before anything is built: an MTP layer count of 10^15 (Qwen3.5), layer
/// types that do not match the layer count (Gemma 4's per-layer widths and
/// flags; a layer count the weights do not hold is refused before either).
#[test]
fn per_layer_counts_from_config_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    for (arch, key, value, says) in [
        (
            "qwen35",
            "mtp_num_hidden_layers",
            serde_json::json!(1_000_000_000_000_000u64),
            "MTP layers",
        ),
        (
            "gemma4",
            "layer_types",
            // Layer 3 full, as its per_layer_config says; 8 entries for 6 layers.
            serde_json::json!([
                "sliding_attention",
                "sliding_attention",
                "sliding_attention",
                "full_attention",
                "sliding_attention",
                "full_attention",
                "sliding_attention",
                "full_attention"
            ]),
            "layer_types has 8 entries for 6 layers",
        ),
    ] {
        let folder = dir.path().join(arch);
        std::fs::create_dir(&folder).unwrap();
        for e in std::fs::read_dir(fx(arch, "hf")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), folder.join(e.file_name())).unwrap();
        }
        let mut config = json(&folder.join("config.json"));
        config[key] = value;
        std::fs::write(folder.join("config.json"), config.to_string()).unwrap();
        let out = dir.path().join(format!("{arch}.gguf"));
        let r = tensorcast()
            .arg("convert")
            .arg(&folder)
            .arg("-o")
            .arg(&out)
            .args(pre_args(arch))
            .assert()
            .code(1);
        let err = String::from_utf8_lossy(&r.get_output().stderr).into_owned();
        assert!(err.contains(says), "{arch}: {err}");
        assert!(!out.exists());
    }
}
