//! `--quantize` against llama.cpp's own quantizer (issue 31), side by side in
//! one run, alternating which goes first:
//!
//! - a generated ≥ 1 GiB f32 llama GGUF (support::real_gguf's Q4_K_M model,
//!   dequantized to f32 by tensorcast: a 262 144-token embedding and
//!   768/2048-wide layers, rows that suit the K-quants) into Q4_K_M (and
//!   `TENSORCAST_BENCH_FTYPES`, comma-separated) with tensorcast `-j N`
//!   against `llama_model_quantize` with `nthread = N` (N = the cores here);
//! - whether the two outputs are byte-identical, and each side's peak
//!   RssAnon (the target: ≤ 64 MiB plus one tensor, here the largest f32
//!   tensor's size is printed beside it).
//!
//! - with `TENSORCAST_BENCH_HF=FOLDER` (a Hugging Face model folder),
//!   `TENSORCAST_LLAMA_CPP=DIR` (the llama.cpp sources, for
//!   `convert_hf_to_gguf.py` and its gguf-py) and `TENSORCAST_ORACLE_PYTHON`
//!   (a Python with torch and transformers): the folder into Q4_K_M in one
//!   step against `convert_hf_to_gguf.py --outtype f16` followed by
//!   `llama_model_quantize`, the two steps timed together.
//!
//! The llama.cpp side runs when a Python that imports `llama_cpp`
//! (llama-cpp-python 0.3.36 built from its sdist, see fixtures/quant/README.md)
//! is found: `TENSORCAST_LLAMA_PYTHON`, else `~/.cache/llama/venv/bin/python`.
//! `TENSORCAST_BENCH_GIB` sets the size (default 1), `TENSORCAST_BENCH_RUNS`
//! the rounds (default 3).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::*;

/// llama.h's ids of the file types the bench may run.
const FTYPE_IDS: &[(&str, u32)] = &[
    ("Q4_K_M", 15),
    ("Q5_K_M", 17),
    ("Q6_K", 18),
    ("Q3_K_M", 12),
    ("Q8_0", 7),
    ("IQ4_XS", 30),
];

const LLAMA_QUANTIZE: &str = "import ctypes, sys, llama_cpp
p = llama_cpp.llama_model_quantize_default_params()
p.ftype = int(sys.argv[3]); p.nthread = int(sys.argv[4])
sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(p)))";

fn llama_python() -> Option<PathBuf> {
    let p = std::env::var_os("TENSORCAST_LLAMA_PYTHON")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/llama/venv/bin/python")))?;
    let ok = Command::new(&p)
        .args(["-c", "import llama_cpp"])
        .output()
        .ok()?
        .status
        .success();
    ok.then_some(p)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let gib = env_num("TENSORCAST_BENCH_GIB", 1);
    let runs = env_num("TENSORCAST_BENCH_RUNS", 3);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let ftypes = std::env::var("TENSORCAST_BENCH_FTYPES").unwrap_or_else(|_| "Q4_K_M".into());
    let bin = env!("CARGO_BIN_EXE_tensorcast");
    let dir = scratch("quantize");
    let q4 = dir.join(format!("q4_k_m-{gib}gib.gguf"));
    let input = dir.join(format!("f32-{gib}gib.gguf"));
    if !input.exists() {
        real_gguf::write(&q4, gib);
        run(Command::new(bin)
            .args(["-q", "convert"])
            .arg(&q4)
            .arg("-o")
            .arg(&input)
            .args(["--dtype", "f32", "--force"]));
        let _ = std::fs::remove_file(&q4);
    }
    let size = std::fs::metadata(&input).unwrap().len();
    let largest = real_gguf::VOCAB as u64 * 768 * 4;
    println!(
        "input: {} ({:.2} GiB f32), {threads} threads each, {runs} rounds; largest tensor {:.0} MiB",
        input.display(),
        size as f64 / (1u64 << 30) as f64,
        largest as f64 / (1 << 20) as f64
    );
    let py = llama_python();
    if py.is_none() {
        println!("llama_cpp not found: the llama-quantize column is skipped");
    }
    for ft in ftypes.split(',') {
        let id = FTYPE_IDS
            .iter()
            .find(|(n, _)| *n == ft)
            .map(|&(_, id)| id)
            .expect("a file type the bench knows");
        let ours = dir.join(format!("tensorcast-{ft}.gguf"));
        let theirs = dir.join(format!("llama-{ft}.gguf"));
        let (mut t_ours, mut t_theirs) = (Vec::new(), Vec::new());
        let (mut m_ours, mut m_theirs) = (0u64, 0u64);
        for round in 0..runs {
            let mut ours_run = || {
                settle(&[&ours]);
                warm(&input);
                let r = run(Command::new(bin)
                    .args(["-q", "convert"])
                    .arg(&input)
                    .arg("-o")
                    .arg(&ours)
                    .args(["--quantize", ft, "-j", &threads.to_string()])
                    .stdout(std::process::Stdio::null()));
                t_ours.push(r.time);
                m_ours = m_ours.max(r.peak_anon_kib);
            };
            let mut theirs_run = |py: &Path| {
                settle(&[&theirs]);
                warm(&input);
                let r = run(Command::new(py)
                    .args(["-c", LLAMA_QUANTIZE])
                    .arg(&input)
                    .arg(&theirs)
                    .arg(id.to_string())
                    .arg(threads.to_string())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null()));
                t_theirs.push(r.time);
                m_theirs = m_theirs.max(r.peak_anon_kib);
            };
            match (&py, round % 2) {
                (Some(py), 0) => {
                    ours_run();
                    theirs_run(py);
                }
                (Some(py), _) => {
                    theirs_run(py);
                    ours_run();
                }
                (None, _) => ours_run(),
            }
        }
        let secs = |v: &Vec<Duration>| median(v.clone()).as_secs_f64();
        println!(
            "{ft}: tensorcast median {:.2} s (runs {:?}), peak RssAnon {:.1} MiB",
            secs(&t_ours),
            t_ours
                .iter()
                .map(|d| (d.as_secs_f64() * 100.0).round() / 100.0)
                .collect::<Vec<_>>(),
            m_ours as f64 / 1024.0
        );
        if py.is_some() {
            let same = std::fs::read(&ours).unwrap() == std::fs::read(&theirs).unwrap();
            println!(
                "{ft}: llama_model_quantize median {:.2} s (runs {:?}), peak RssAnon {:.1} MiB; time ratio tensorcast/llama {:.2}x; outputs byte-identical: {same}",
                secs(&t_theirs),
                t_theirs.iter().map(|d| (d.as_secs_f64() * 100.0).round() / 100.0).collect::<Vec<_>>(),
                m_theirs as f64 / 1024.0,
                secs(&t_ours) / secs(&t_theirs)
            );
            let _ = std::fs::remove_file(&theirs);
        }
        let _ = std::fs::remove_file(&ours);
    }
    if let (Some(py), Some(hf), Some(src), Some(oracle)) = (
        &py,
        std::env::var_os("TENSORCAST_BENCH_HF").map(PathBuf::from),
        std::env::var_os("TENSORCAST_LLAMA_CPP").map(PathBuf::from),
        oracle_python(),
    ) {
        hf_one_step(bin, py, &oracle, &hf, &src, &dir, runs, threads);
    }
}

/// A Hugging Face folder into Q4_K_M: tensorcast in one step against
/// convert_hf_to_gguf.py (f16) + llama_model_quantize, alternating.
#[allow(clippy::too_many_arguments)]
fn hf_one_step(
    bin: &str,
    py: &Path,
    oracle: &Path,
    hf: &Path,
    src: &Path,
    dir: &Path,
    runs: usize,
    threads: usize,
) {
    let ours = dir.join("hf-tensorcast.gguf");
    let f16 = dir.join("hf-convert-f16.gguf");
    let theirs = dir.join("hf-llama.gguf");
    let (mut t_ours, mut t_theirs, mut m_ours, mut m_theirs) = (Vec::new(), Vec::new(), 0u64, 0u64);
    for round in 0..runs {
        let mut one = || {
            settle(&[&ours]);
            let r = run(Command::new(bin)
                .args(["-q", "convert"])
                .arg(hf)
                .arg("-o")
                .arg(&ours)
                .args(["--quantize", "Q4_K_M", "-j", &threads.to_string()])
                .stdout(std::process::Stdio::null()));
            t_ours.push(r.time);
            m_ours = m_ours.max(r.peak_anon_kib);
        };
        let mut two = || {
            settle(&[&f16, &theirs]);
            let a = run(Command::new(oracle)
                .env("PYTHONPATH", src.join("gguf-py"))
                .arg(src.join("convert_hf_to_gguf.py"))
                .arg(hf)
                .args(["--outtype", "f16", "--outfile"])
                .arg(&f16)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null()));
            let b = run(Command::new(py)
                .args(["-c", LLAMA_QUANTIZE])
                .arg(&f16)
                .arg(&theirs)
                .arg("15")
                .arg(threads.to_string())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null()));
            t_theirs.push(a.time + b.time);
            m_theirs = m_theirs.max(a.peak_anon_kib).max(b.peak_anon_kib);
        };
        if round % 2 == 0 {
            one();
            two();
        } else {
            two();
            one();
        }
    }
    let secs = |v: &Vec<Duration>| median(v.clone()).as_secs_f64();
    println!(
        "HF folder {} -> Q4_K_M: tensorcast one step median {:.2} s (peak RssAnon {:.1} MiB); convert_hf_to_gguf.py f16 + llama_model_quantize median {:.2} s (peak RssAnon {:.1} MiB); time ratio {:.2}x",
        hf.display(),
        secs(&t_ours),
        m_ours as f64 / 1024.0,
        secs(&t_theirs),
        m_theirs as f64 / 1024.0,
        secs(&t_ours) / secs(&t_theirs)
    );
    for f in [&ours, &f16, &theirs] {
        let _ = std::fs::remove_file(f);
    }
}
