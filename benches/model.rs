//! Model-aware conversion against the two Python anchors, side by side in one
//! run: a generated Llama-shaped Hugging Face folder (random f32 weights,
//! the fixture's SentencePiece tokenizer) at two sizes, and a Mixtral-shaped
//! mixture of experts (8 experts per layer, stacked into GGUF's 3-D expert
//! tensors one expert at a time) at two sizes, to show memory stays flat.
//!
//! - HF folder -> GGUF: tensorcast vs llama.cpp's `convert_hf_to_gguf.py
//!   --outtype f32` (whose output must be byte-identical to ours);
//! - GGUF -> HF folder: tensorcast vs transformers' GGUF loader
//!   (`from_pretrained(gguf_file=...)`) + `safetensors.torch.save_file` + fsync.
//!
//! Wall time (median of `TENSORCAST_BENCH_RUNS`, default 3, order rotating)
//! and peak RssAnon of each. `TENSORCAST_BENCH_GIB` (default 1) sets the large
//! size; the small one is two layers. The Python columns need the oracle venv
//! (fixtures/model/requirements.txt) and llama.cpp's sources
//! (`TENSORCAST_LLAMA_CPP`, default the sdist under ~/.cache/llama-src, see
//! fixtures/model/README.md); without them only tensorcast runs.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

const HIDDEN: usize = 2048;
const FFN: usize = 5632;
const HEADS: usize = 16;
const KV_HEADS: usize = 4;
const VOCAB: usize = 400;
/// The experts of the MoE folder and each one's FFN width (Mixtral-like).
const EXPERTS: usize = 8;
const EXPERT_FFN: usize = 1408;

/// transformers' route from a GGUF to a saved state dict, fsynced.
const TRANSFORMERS_ROUTE: &str = r#"
import os, sys, torch
from pathlib import Path
from transformers import AutoModelForCausalLM
from safetensors.torch import save_file
gguf = Path(sys.argv[1])
m = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
save_file({k: v.contiguous() for k, v in m.state_dict().items()}, sys.argv[2])
fd = os.open(sys.argv[2], os.O_RDONLY); os.fsync(fd); os.close(fd)
"#;

fn llama_cpp() -> Option<PathBuf> {
    let p = std::env::var_os("TENSORCAST_LLAMA_CPP")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| Path::new(&h).join(".cache/llama-src/llama_cpp_python-0.3.36/vendor/llama.cpp"))
        })?;
    p.join("convert_hf_to_gguf.py").exists().then_some(p)
}

/// The tensors of a Llama with `layers` blocks (a Mixtral with `experts`
/// experts per block when not 0), HF names, row-major shapes.
fn tensors(layers: usize, experts: usize) -> Vec<(String, Vec<usize>)> {
    let kv = HIDDEN / HEADS * KV_HEADS;
    let mut t = vec![
        ("lm_head.weight".to_string(), vec![VOCAB, HIDDEN]),
        ("model.embed_tokens.weight".into(), vec![VOCAB, HIDDEN]),
        ("model.norm.weight".into(), vec![HIDDEN]),
    ];
    for i in 0..layers {
        let p = format!("model.layers.{i}");
        t.push((format!("{p}.input_layernorm.weight"), vec![HIDDEN]));
        t.push((format!("{p}.post_attention_layernorm.weight"), vec![HIDDEN]));
        t.push((format!("{p}.self_attn.q_proj.weight"), vec![HIDDEN, HIDDEN]));
        t.push((format!("{p}.self_attn.k_proj.weight"), vec![kv, HIDDEN]));
        t.push((format!("{p}.self_attn.v_proj.weight"), vec![kv, HIDDEN]));
        t.push((format!("{p}.self_attn.o_proj.weight"), vec![HIDDEN, HIDDEN]));
        if experts > 0 {
            let m = format!("{p}.block_sparse_moe");
            t.push((format!("{m}.gate.weight"), vec![experts, HIDDEN]));
            for e in 0..experts {
                t.push((format!("{m}.experts.{e}.w1.weight"), vec![EXPERT_FFN, HIDDEN]));
                t.push((format!("{m}.experts.{e}.w2.weight"), vec![HIDDEN, EXPERT_FFN]));
                t.push((format!("{m}.experts.{e}.w3.weight"), vec![EXPERT_FFN, HIDDEN]));
            }
            continue;
        }
        t.push((format!("{p}.mlp.gate_proj.weight"), vec![FFN, HIDDEN]));
        t.push((format!("{p}.mlp.up_proj.weight"), vec![FFN, HIDDEN]));
        t.push((format!("{p}.mlp.down_proj.weight"), vec![HIDDEN, FFN]));
    }
    t.sort();
    t
}

/// A Hugging Face folder with `layers` blocks of random f32 weights (of
/// `experts` experts each when not 0).
fn make_folder(dir: &Path, layers: usize, experts: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let arch = if experts > 0 { "mixtral" } else { "llama" };
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/model/{arch}/hf"));
    for f in [
        "tokenizer.model",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
    ] {
        std::fs::copy(fixture.join(f), dir.join(f)).unwrap();
    }
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture.join("config.json")).unwrap()).unwrap();
    config["hidden_size"] = HIDDEN.into();
    config["intermediate_size"] = FFN.into();
    config["num_hidden_layers"] = layers.into();
    config["num_attention_heads"] = HEADS.into();
    config["num_key_value_heads"] = KV_HEADS.into();
    config["head_dim"] = (HIDDEN / HEADS).into();
    config["max_position_embeddings"] = 2048.into();
    if experts > 0 {
        config["num_local_experts"] = experts.into();
        config["intermediate_size"] = EXPERT_FFN.into();
    }
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
    let ts = tensors(layers, experts);
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
    let mut offset = 0usize;
    for (name, shape) in &ts {
        let n = shape.iter().product::<usize>() * 4;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + n]}),
        );
        offset += n;
    }
    let mut text = serde_json::to_string(&header).unwrap();
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("model.safetensors")).unwrap());
    out.write_all(&(text.len() as u64).to_le_bytes()).unwrap();
    out.write_all(text.as_bytes()).unwrap();
    let mut seed = 7u64;
    let mut buf = vec![0u8; 1 << 20];
    for (_, shape) in &ts {
        let mut left = shape.iter().product::<usize>() * 4;
        while left > 0 {
            let k = left.min(buf.len());
            // Small floats, as trained weights are (random bytes would be NaNs).
            fill(&mut buf[..k], &mut seed);
            for w in buf[..k].chunks_exact_mut(4) {
                let v = (u32::from_le_bytes([w[0], w[1], w[2], w[3]]) >> 9) as f32 / (1 << 23) as f32 - 0.5;
                w.copy_from_slice(&(v * 0.04).to_le_bytes());
            }
            out.write_all(&buf[..k]).unwrap();
            left -= k;
        }
    }
    out.flush().unwrap();
}

struct Contender<'a> {
    name: &'static str,
    command: Box<dyn Fn() -> Command + 'a>,
    output: PathBuf,
}

fn race(label: &str, contenders: &[Contender], runs: usize, input_bytes: u64) -> Vec<f64> {
    let mut times = vec![Vec::new(); contenders.len()];
    let mut peaks = vec![0u64; contenders.len()];
    for round in 0..runs {
        for k in 0..contenders.len() {
            let i = (round + k) % contenders.len();
            settle(&[contenders[i].output.as_path()]);
            let _ = std::fs::remove_dir_all(&contenders[i].output);
            let r = run(&mut (contenders[i].command)());
            times[i].push(r.time);
            peaks[i] = peaks[i].max(r.peak_anon_kib);
        }
    }
    let medians: Vec<f64> = times.into_iter().map(|t| median(t).as_secs_f64()).collect();
    let gib = input_bytes as f64 / (1u64 << 30) as f64;
    for (i, c) in contenders.iter().enumerate() {
        println!(
            "{label}: {:<34} median {:>8.3} s  {:>6.2} GiB/s  peak RssAnon {:>8.1} MiB",
            c.name,
            medians[i],
            gib / medians[i],
            peaks[i] as f64 / 1024.0
        );
    }
    for i in 1..contenders.len() {
        println!(
            "{label}: tensorcast is {:.2}x faster than {}",
            medians[i] / medians[0],
            contenders[i].name
        );
    }
    medians
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let gib = env_num("TENSORCAST_BENCH_GIB", 1);
    let runs = env_num("TENSORCAST_BENCH_RUNS", 3);
    let bin = env!("CARGO_BIN_EXE_tensorcast");
    let py = oracle_python();
    let llama = llama_cpp();
    let dir = scratch("model");
    // ~180 MiB of f32 per dense block at this shape, ~320 MiB per MoE block.
    for (label, layers, experts) in [
        ("small", 2, 0),
        ("large", 6 * gib, 0),
        ("moesmall", 1, EXPERTS),
        ("moelarge", 4 * gib, EXPERTS),
    ] {
        // One word: gguf-py's name heuristics read "llama-2" as basename
        // "llama", version "2" (tensorcast does not replicate those yet).
        let folder = dir.join(format!("llama{label}"));
        if !folder.join("model.safetensors").exists() {
            make_folder(&folder, layers, experts);
        }
        let size = std::fs::metadata(folder.join("model.safetensors")).unwrap().len();
        println!(
            "== {label}: {layers} layers{}: model.safetensors {:.2} GiB, {runs} rounds, order rotating",
            if experts > 0 {
                format!(" of {experts} experts")
            } else {
                String::new()
            },
            size as f64 / (1u64 << 30) as f64
        );
        let gguf = dir.join(format!("llama-{label}.gguf"));
        let py_gguf = dir.join(format!("llama-{label}-py.gguf"));
        let hf_out = dir.join(format!("hf-{label}"));
        let py_out = dir.join(format!("py-{label}.safetensors"));
        // The commands borrow these; the closures are built from references.
        let (folder_r, gguf_r, py_gguf_r, hf_out_r, py_out_r) = (&folder, &gguf, &py_gguf, &hf_out, &py_out);
        let mut to_gguf = vec![Contender {
            name: "tensorcast",
            command: Box::new(|| {
                let mut c = Command::new(bin);
                c.arg("convert")
                    .arg(&folder)
                    .arg("-o")
                    .arg(&gguf)
                    .args(["--force", "-q"]);
                c
            }),
            output: gguf.clone(),
        }];
        if let (Some(py), Some(llama)) = (&py, &llama) {
            to_gguf.push(Contender {
                name: "convert_hf_to_gguf.py --outtype f32",
                command: Box::new(move || {
                    let mut c = Command::new(py);
                    c.arg(llama.join("convert_hf_to_gguf.py"))
                        .arg(folder_r)
                        .args(["--outtype", "f32", "--outfile"])
                        .arg(py_gguf_r)
                        .env("PYTHONPATH", llama.join("gguf-py"))
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null());
                    c
                }),
                output: py_gguf.clone(),
            });
        }
        race("HF -> GGUF", &to_gguf, runs, size);
        if to_gguf.len() > 1 {
            let same = std::fs::read(&gguf).unwrap() == std::fs::read(&py_gguf).unwrap();
            println!("HF -> GGUF: outputs byte-identical: {same}");
            assert!(same, "tensorcast's GGUF differs from convert_hf_to_gguf.py's");
            let _ = std::fs::remove_file(&py_gguf);
        }
        let mut to_hf = vec![Contender {
            name: "tensorcast",
            command: Box::new(|| {
                let mut c = Command::new(bin);
                c.arg("convert")
                    .arg(&gguf)
                    .args(["--to", "hf", "-o"])
                    .arg(hf_out_r)
                    .args(["--force", "-q"]);
                c
            }),
            output: hf_out.clone(),
        }];
        // transformers' loader reads a Mixtral GGUF as a dense Llama (no
        // experts): no anchor for the MoE folder that way.
        if let (Some(py), 0) = (&py, experts) {
            to_hf.push(Contender {
                name: "transformers GGUF loader + save",
                command: Box::new(move || {
                    let mut c = Command::new(py);
                    c.arg("-c")
                        .arg(TRANSFORMERS_ROUTE)
                        .arg(gguf_r)
                        .arg(py_out_r)
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null());
                    c
                }),
                output: py_out.clone(),
            });
        }
        race("GGUF -> HF", &to_hf, runs, size);
        let _ = std::fs::remove_file(&py_out);
        if experts > 0 {
            // The experts come back as the folder held them (in another order).
            let same = Command::new(bin)
                .arg("diff")
                .arg(hf_out.join("model.safetensors"))
                .arg(folder.join("model.safetensors"))
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap()
                .success();
            println!("GGUF -> HF: the MoE folder's tensors come back bit-identical: {same}");
            assert!(same, "the MoE round trip changed tensors");
        }
        let _ = std::fs::remove_dir_all(&hf_out);
    }
}
