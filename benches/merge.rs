//! `tensorcast merge` against `mergekit-yaml` (issue 32), same run,
//! alternating: three llama-shaped bf16 models of ~336 MB each (a base and
//! two fine-tunes: the base plus seeded noise), merged with `ties` and with
//! `slerp`. Wall time and peak RssAnon of each side; mergekit runs on the CPU
//! with `--lazy-unpickle` from the oracle venv (`TENSORCAST_ORACLE_PYTHON`,
//! else `~/.cache/oracle/bin/python`; skipped with a reason when absent).
//! `TENSORCAST_BENCH_RUNS` sets the rounds (default 2).

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::*;

const HIDDEN: usize = 1024;
const INTERMEDIATE: usize = 2816;
const LAYERS: usize = 8;
const VOCAB: usize = 32000;

/// The llama tensors: name and shape.
fn tensors() -> Vec<(String, Vec<usize>)> {
    let mut t = vec![("model.embed_tokens.weight".to_string(), vec![VOCAB, HIDDEN])];
    for i in 0..LAYERS {
        let p = format!("model.layers.{i}");
        for w in ["q_proj", "k_proj", "v_proj", "o_proj"] {
            t.push((format!("{p}.self_attn.{w}.weight"), vec![HIDDEN, HIDDEN]));
        }
        t.push((format!("{p}.mlp.gate_proj.weight"), vec![INTERMEDIATE, HIDDEN]));
        t.push((format!("{p}.mlp.up_proj.weight"), vec![INTERMEDIATE, HIDDEN]));
        t.push((format!("{p}.mlp.down_proj.weight"), vec![HIDDEN, INTERMEDIATE]));
        t.push((format!("{p}.input_layernorm.weight"), vec![HIDDEN]));
        t.push((format!("{p}.post_attention_layernorm.weight"), vec![HIDDEN]));
    }
    t.push(("model.norm.weight".to_string(), vec![HIDDEN]));
    t.push(("lm_head.weight".to_string(), vec![VOCAB, HIDDEN]));
    t
}

/// A model folder: config.json (the tiny llama fixture's, resized) and a
/// bf16 model.safetensors whose values are `base(i) + scale * noise(seed, i)`.
fn write_model(dir: &Path, scale: f32, seed: u64) -> u64 {
    let weights = dir.join("model.safetensors");
    std::fs::create_dir_all(dir).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/model/llama/hf/config.json");
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(fixture).unwrap()).unwrap();
    for (k, v) in [
        ("hidden_size", HIDDEN),
        ("intermediate_size", INTERMEDIATE),
        ("num_hidden_layers", LAYERS),
        ("vocab_size", VOCAB),
        ("num_attention_heads", 16),
        ("num_key_value_heads", 16),
        ("head_dim", 64),
    ] {
        config[k] = v.into();
    }
    config["dtype"] = "bfloat16".into();
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
    if weights.exists() {
        return std::fs::metadata(&weights).unwrap().len();
    }
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape) in tensors() {
        let n = shape.iter().product::<usize>() * 2;
        header.insert(
            name,
            serde_json::json!({"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + n]}),
        );
        offset += n;
    }
    let mut header = serde_json::to_string(&header).unwrap();
    while !header.len().is_multiple_of(8) {
        header.push(' ');
    }
    let tmp = weights.with_extension("partial");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp).unwrap());
    f.write_all(&(header.len() as u64).to_le_bytes()).unwrap();
    f.write_all(header.as_bytes()).unwrap();
    let (mut b, mut s) = (0x9E37_79B9_7F4A_7C15u64, seed | 1);
    let next = |x: &mut u64| {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        ((*x >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    };
    let mut buf = Vec::with_capacity(1 << 20);
    for _ in 0..offset / 2 {
        let v = 0.1 * next(&mut b) + scale * next(&mut s);
        buf.extend_from_slice(&half_bits(v).to_le_bytes());
        if buf.len() >= 1 << 20 {
            f.write_all(&buf).unwrap();
            buf.clear();
        }
    }
    f.write_all(&buf).unwrap();
    f.flush().unwrap();
    drop(f);
    std::fs::rename(&tmp, &weights).unwrap();
    std::fs::metadata(&weights).unwrap().len()
}

/// f32 -> bf16 bits, round to nearest even (finite values only here).
fn half_bits(v: f32) -> u16 {
    let b = v.to_bits();
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runs = env_num("TENSORCAST_BENCH_RUNS", 2);
    let dir = scratch("merge");
    let size = write_model(&dir.join("base"), 0.0, 0);
    write_model(&dir.join("ft1"), 0.01, 1);
    write_model(&dir.join("ft2"), 0.02, 2);
    println!(
        "three models of {:.0} MB each (bf16, {} tensors), {runs} rounds",
        size as f64 / 1e6,
        tensors().len()
    );
    let configs = [
        (
            "ties",
            "merge_method: ties\nbase_model: base\nmodels:\n  - model: ft1\n    parameters: {weight: 0.6, density: 0.5}\n  - model: ft2\n    parameters: {weight: 0.5, density: 0.7}\ndtype: bfloat16\n",
        ),
        (
            "slerp",
            "merge_method: slerp\nbase_model: base\nmodels:\n  - model: ft1\nparameters:\n  t: [0.3, 0.8]\ndtype: bfloat16\n",
        ),
    ];
    let python = oracle_python();
    let mergekit = python
        .as_ref()
        .map(|p| p.parent().unwrap().join("mergekit-yaml"))
        .filter(|m| m.exists());
    if mergekit.is_none() {
        println!("mergekit-yaml not found (oracle venv): tensorcast alone");
    }
    let bin = env!("CARGO_BIN_EXE_tensorcast");
    for (name, yaml) in configs {
        let config = dir.join(format!("{name}.yml"));
        // Paths as ./NAME: mergekit takes a bare name for a Hub repository.
        let yaml = yaml
            .replace("base_model: base", "base_model: ./base")
            .replace("model: ft", "model: ./ft");
        std::fs::write(&config, yaml).unwrap();
        let ours = dir.join(format!("{name}.safetensors"));
        let theirs: PathBuf = dir.join(format!("{name}-mergekit"));
        let mut rows: Vec<(&str, Vec<Duration>, u64)> =
            vec![("tensorcast", vec![], 0), ("mergekit", vec![], 0)];
        for round in 0..runs {
            let mut order = vec![0, 1];
            if round % 2 == 1 {
                order.reverse();
            }
            for side in order {
                let r = if side == 0 {
                    settle(&[&ours]);
                    run(Command::new(bin)
                        .current_dir(&dir)
                        .args(["-q", "merge"])
                        .arg(&config)
                        .arg("-o")
                        .arg(&ours))
                } else if let Some(m) = &mergekit {
                    let _ = std::fs::remove_dir_all(&theirs);
                    settle(&[]);
                    run(Command::new(m)
                        .current_dir(&dir)
                        .arg(&config)
                        .arg(&theirs)
                        .args(["--lazy-unpickle", "--no-copy-tokenizer", "--safe-serialization"])
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null()))
                } else {
                    continue;
                };
                rows[side].1.push(r.time);
                rows[side].2 = rows[side].2.max(r.peak_anon_kib);
            }
        }
        for (who, times, peak) in &rows {
            if times.is_empty() {
                continue;
            }
            let all: Vec<String> = times.iter().map(|t| format!("{:.2}", t.as_secs_f64())).collect();
            println!(
                "{name:<6} {who:<10} median {:>6.2} s [{}]  peak RssAnon {:>7.1} MiB",
                median(times.clone()).as_secs_f64(),
                all.join(" "),
                *peak as f64 / 1024.0
            );
        }
        if !rows[1].1.is_empty() {
            println!(
                "{name:<6} mergekit / tensorcast wall time: {:.2}x (goal >= 3x); tensorcast peak RssAnon {:.1} MiB (goal <= 128)",
                median(rows[1].1.clone()).as_secs_f64() / median(rows[0].1.clone()).as_secs_f64(),
                rows[0].2 as f64 / 1024.0
            );
        }
        let _ = std::fs::remove_file(&ours);
        let _ = std::fs::remove_dir_all(&theirs);
    }
}
