//! Dequantization throughput per ggml type against gguf-py's numpy
//! `gguf.quants.dequantize` on the same blocks, in the same run; then a whole
//! GGUF → safetensors conversion against `cp` + fsync of an output-sized file.
//!
//! gguf-py is found at `TENSORCAST_ORACLE_PYTHON` or `~/.cache/oracle/bin/python`
//! (a venv with `gguf==0.19.0`); without it the Python column is skipped.
//! `TENSORCAST_BENCH_MIB` sets the f32 output per type (default 64 MiB);
//! `TENSORCAST_BENCH_TYPES=Q4_K,Q8_0` times only those types (for perf).

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Instant;
use support::*;
use tensorcast::{DType, Metadata, Plan, QuantType, Result, Sink, Source, TensorData, TensorInfo};
use tensorcast_gguf::{GgufFile, GgufWriter};
use tensorcast_quant::dequantize;

const PY: &str = r#"
import sys, time, json, numpy as np
from gguf import quants, GGMLQuantizationType as T
out = {}
for name, path in zip(sys.argv[1::2], sys.argv[2::2]):
    data = np.fromfile(path, dtype=np.uint8)
    qt = T[name]
    from gguf.constants import GGML_QUANT_SIZES
    be, bb = GGML_QUANT_SIZES[qt]
    rows = data.reshape(-1, bb * 64)
    best = 1e9
    for _ in range(5):
        t = time.perf_counter(); r = quants.dequantize(rows, qt); best = min(best, time.perf_counter() - t)
    out[name] = r.size * 4 / best / 1e9
print(json.dumps(out))
"#;

/// Tiles the fixture's blocks of `q` to about `mib` MiB of f32 output.
fn tiled_blocks(file: &GgufFile, q: QuantType, mib: usize) -> Vec<u8> {
    let i = file
        .tensors()
        .iter()
        .position(|t| t.dtype == DType::Quant(q))
        .expect("fixture tensor");
    let src = file.tensor_data(i).unwrap().into_vec().unwrap();
    let blocks = (mib << 20) / 4 / q.block_elems() as usize;
    let blocks = blocks - blocks % 64; // whole 64-block rows for the Python side
    let bytes = blocks * q.block_bytes() as usize;
    src.iter().copied().cycle().take(bytes).collect()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mib: usize = std::env::var("TENSORCAST_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixtures = GgufFile::open(&root.join("fixtures/gguf/quants.gguf"), &Default::default()).unwrap();
    let dir = scratch("dequant");
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let only = std::env::var("TENSORCAST_BENCH_TYPES").ok();
    let chosen = |q: QuantType| {
        only.as_deref()
            .is_none_or(|list| list.split(',').any(|n| n.eq_ignore_ascii_case(q.name())))
    };
    let mut rows = Vec::new();
    let mut py_args = Vec::new();
    for t in fixtures.tensors() {
        let DType::Quant(q) = t.dtype else { continue };
        if !chosen(q) {
            continue;
        }
        let blocks = tiled_blocks(&fixtures, q, mib);
        let n = blocks.len() / q.block_bytes() as usize * q.block_elems() as usize;
        let mut out = vec![0f32; n];
        let time = |f: &dyn Fn(&mut [f32])| {
            let mut out = vec![0f32; n];
            (0..5)
                .map(|_| {
                    let t = Instant::now();
                    f(&mut out);
                    t.elapsed().as_secs_f64()
                })
                .fold(f64::MAX, f64::min)
        };
        dequantize(q, &blocks, &mut out).unwrap();
        let single = time(&|o| one.install(|| dequantize(q, &blocks, o).unwrap()));
        let multi = time(&|o| dequantize(q, &blocks, o).unwrap());
        let gbs = |s: f64| n as f64 * 4.0 / s / 1e9;
        let bin = dir.join(format!("{}.bin", q.name()));
        std::fs::write(&bin, &blocks).unwrap();
        py_args.push(q.name().to_string());
        py_args.push(bin.display().to_string());
        rows.push((q.name(), gbs(single), gbs(multi)));
    }
    let py: serde_json::Value = match oracle_python() {
        Some(p) => {
            let out = Command::new(p)
                .arg("-c")
                .arg(PY)
                .args(&py_args)
                .output()
                .expect("python");
            serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
                eprintln!("gguf-py run failed: {}", String::from_utf8_lossy(&out.stderr));
                serde_json::Value::Null
            })
        }
        None => serde_json::Value::Null,
    };
    // The bound a kernel is held to: one core writing the same output (a
    // copy of an f32 buffer of that size), timed the same way.
    let n = (mib << 20) / 4;
    let src: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let mut dst = vec![0f32; n];
    let copy = (0..5)
        .map(|_| {
            let t = Instant::now();
            dst.copy_from_slice(std::hint::black_box(&src));
            std::hint::black_box(&dst);
            t.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min);
    let memcpy = n as f64 * 4.0 / copy / 1e9;
    println!("dequantization, GB/s of f32 output ({mib} MiB per type, best of 5)");
    println!("memcpy (1 thread, same output size): {memcpy:.2} GB/s");
    println!(
        "{:<8} {:>12} {:>12} {:>12} {:>14} {:>12}",
        "type", "ours 1 thr", "ours all", "gguf-py", "ratio (1 thr)", "memcpy/ours"
    );
    let mut worst = f64::MAX;
    // Legacy and K-quant types (what real models use) against the copy.
    let held = |name: &str| name.starts_with('Q');
    let mut worst_copy: (f64, &str) = (0.0, "");
    for (name, single, multi) in &rows {
        let behind = memcpy / single;
        if held(name) && behind > worst_copy.0 {
            worst_copy = (behind, name);
        }
        match py[name].as_f64() {
            Some(p) => {
                worst = worst.min(single / p);
                println!(
                    "{name:<8} {single:>12.2} {multi:>12.2} {p:>12.3} {:>13.1}x {behind:>11.2}x",
                    single / p
                );
            }
            None => println!(
                "{name:<8} {single:>12.2} {multi:>12.2} {:>12} {:>14} {behind:>11.2}x",
                "-", "-"
            ),
        }
    }
    if worst < f64::MAX {
        println!("slowest kernel vs gguf-py (single thread): {worst:.1}x (target >= 10x)");
    }
    println!(
        "slowest legacy/K-quant kernel vs memcpy (single thread): {:.2}x slower ({}; target <= 2x)",
        worst_copy.0, worst_copy.1
    );
    if only.is_none() {
        end_to_end(&fixtures, &dir);
    }
}

/// A generated model: every quant type's tiled blocks as tensors.
struct Generated {
    tensors: Vec<TensorInfo>,
    data: Vec<Vec<u8>>,
    metadata: Metadata,
}

impl Source for Generated {
    fn format(&self) -> &'static str {
        "gguf"
    }
    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }
    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        Ok(TensorData::Borrowed(&self.data[index]))
    }
}

fn end_to_end(fixtures: &GgufFile, dir: &Path) {
    // Q4_K, Q6_K, Q8_0 and IQ4_XS weights (typical llama.cpp mixes), GiB of f32 out
    // set by TENSORCAST_BENCH_GIB (default 1), to show memory stays flat in size.
    let gib: usize = std::env::var("TENSORCAST_BENCH_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let input = dir.join(format!("model-{gib}gib.gguf"));
    if !input.exists() {
        let mut g = Generated {
            tensors: Vec::new(),
            data: Vec::new(),
            metadata: Metadata::new(),
        };
        for (k, name) in ["Q4_K", "Q6_K", "Q8_0", "IQ4_XS"]
            .iter()
            .cycle()
            .take(16 * gib)
            .enumerate()
        {
            let q = QuantType::from_name(name).unwrap();
            let blocks = tiled_blocks(fixtures, q, 64);
            let elems = blocks.len() / q.block_bytes() as usize * q.block_elems() as usize;
            g.tensors.push(
                TensorInfo::new(
                    format!("blk.{k}.weight"),
                    DType::Quant(q),
                    vec![(elems / 4096) as u64, 4096],
                )
                .unwrap(),
            );
            g.data.push(blocks);
        }
        let mut w = GgufWriter::new(&input);
        w.begin(&Plan::of(&g)).unwrap();
        for i in 0..g.tensors.len() {
            w.write_tensor(i, g.tensor_data(i).unwrap()).unwrap();
        }
        w.finish().unwrap();
    }
    let bin = env!("CARGO_BIN_EXE_tensorcast");
    let out = dir.join("model.safetensors");
    let cp_src = dir.join(format!("output-sized-{gib}.bin"));
    let (mut tc_t, mut cp_t, mut dd_t, mut peak) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for round in 0..3 {
        settle(&[&out]);
        let tc = run(Command::new(bin).arg("convert").arg(&input).arg("-o").arg(&out));
        if round == 0 {
            // An incompressible file of the output's size for cp to copy.
            std::fs::copy(&out, &cp_src).unwrap();
            warm(&cp_src);
        }
        let cp_out = dir.join("cp.out");
        settle(&[&cp_out]);
        let cp = cp_fsync(&cp_src, &cp_out);
        settle(&[&cp_out]);
        let dd_out = dir.join("dd.out");
        dd_t.push(dd_floor(&dd_out, std::fs::metadata(&out).unwrap().len()).time);
        settle(&[&dd_out]);
        tc_t.push(tc.time);
        cp_t.push(cp.time);
        peak = peak.max(tc.peak_anon_kib);
    }
    let size = std::fs::metadata(&out).unwrap().len() as f64;
    let (tc, cp, dd) = (median(tc_t), median(cp_t), median(dd_t));
    println!(
        "GGUF ({:.0} MiB, Q4_K/Q6_K/Q8_0/IQ4_XS) -> safetensors ({:.2} GiB f32): tensorcast {:.3} s, cp+fsync of output-sized file {:.3} s, ratio {:.2}x (target >= 0.8x), fresh-write floor (dd) {:.3} s, ratio {:.2}x, peak RssAnon {:.1} MiB",
        std::fs::metadata(&input).unwrap().len() as f64 / (1 << 20) as f64,
        size / (1u64 << 30) as f64,
        tc.as_secs_f64(),
        cp.as_secs_f64(),
        cp.as_secs_f64() / tc.as_secs_f64(),
        dd.as_secs_f64(),
        dd.as_secs_f64() / tc.as_secs_f64(),
        peak as f64 / 1024.0
    );
}
