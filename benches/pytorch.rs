//! PyTorch zip checkpoint (≥ 1 GiB, saved by torch) → safetensors, side by side
//! in one run with `cp` + fsync of the same file and with the Python route
//! (`torch.load(weights_only=True)` with and without `mmap=True`, then
//! `safetensors.torch.save_file` and an fsync, as tensorcast does). Reports
//! throughput ratios and each contender's peak RssAnon. Every contender starts
//! with the input in the page cache and the file system settled.
//!
//! Needs torch and safetensors in `TENSORCAST_ORACLE_PYTHON` or
//! `~/.cache/oracle/bin/python` (see fixtures/pytorch/requirements.txt).
//! `TENSORCAST_BENCH_GIB` sets the checkpoint size (default 1),
//! `TENSORCAST_BENCH_RUNS` the rounds (default 6; the order rotates each round).

mod support;

use std::process::Command;
use support::*;

/// Saves `gib` GiB of f32 weights (16 tensors of 64 MiB per GiB, plus norms)
/// the way a model checkpoint looks.
const MAKE: &str = r#"
import sys, torch
gib = int(sys.argv[2])
g = torch.Generator().manual_seed(0)
sd = {}
for i in range(16 * gib):
    sd[f"model.layers.{i}.mlp.weight"] = torch.randn(4096, 4096, generator=g)
    sd[f"model.layers.{i}.norm.weight"] = torch.ones(4096)
torch.save(sd, sys.argv[1])
"#;

const PYTHON_ROUTE: &str = r#"
import os, sys, torch
from safetensors.torch import save_file
sd = torch.load(sys.argv[1], weights_only=True, mmap=sys.argv[3] == "1", map_location="cpu")
save_file(sd, sys.argv[2])
fd = os.open(sys.argv[2], os.O_RDONLY)
os.fsync(fd)
os.close(fd)
"#;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let Some(py) = oracle_python() else {
        println!("pytorch bench skipped: no oracle python with torch (set TENSORCAST_ORACLE_PYTHON)");
        return;
    };
    let gib = env_num("TENSORCAST_BENCH_GIB", 1);
    let runs = env_num("TENSORCAST_BENCH_RUNS", 6);
    let bin = env!("CARGO_BIN_EXE_tensorcast");
    let dir = scratch("pytorch");
    let input = dir.join(format!("model-{gib}gib.pt"));
    if !input.exists() {
        let ok = Command::new(&py)
            .arg("-c")
            .arg(MAKE)
            .arg(&input)
            .arg(gib.to_string())
            .status()
            .expect("python");
        assert!(ok.success(), "generating the checkpoint failed");
    }
    let size = std::fs::metadata(&input).unwrap().len();
    println!(
        "input: {} ({:.2} GiB, saved by torch.save), {runs} rounds, alternating",
        input.display(),
        size as f64 / (1u64 << 30) as f64
    );
    let cp_out = dir.join("cp.out");
    let tc_out = dir.join("tc.safetensors");
    let py_out = dir.join("py.safetensors");
    let dd_out = dir.join("dd.out");
    let names = [
        "cp + fsync",
        "tensorcast",
        "torch.load + save_file",
        "torch.load(mmap) + save_file",
        "dd new bytes + fsync (floor)",
    ];
    let mut times = vec![Vec::new(); names.len()];
    let mut peaks = vec![0u64; names.len()];
    let outs = [&cp_out, &tc_out, &py_out, &py_out, &dd_out];
    for round in 0..runs {
        // Rotate who goes first: on this VM a write right after another
        // contender's large write or delete is slower, whatever the tool.
        for k in 0..names.len() {
            let i = (round + k) % names.len();
            settle(&[outs[i]]);
            std::thread::sleep(std::time::Duration::from_secs(1));
            warm(&input);
            let r = match i {
                0 => cp_fsync(&input, &cp_out),
                1 => run(Command::new(bin)
                    .arg("convert")
                    .arg(&input)
                    .arg("-o")
                    .arg(&tc_out)),
                4 => dd_floor(&dd_out, size),
                2 => run(Command::new(&py)
                    .arg("-c")
                    .arg(PYTHON_ROUTE)
                    .arg(&input)
                    .arg(&py_out)
                    .arg("0")),
                _ => run(Command::new(&py)
                    .arg("-c")
                    .arg(PYTHON_ROUTE)
                    .arg(&input)
                    .arg(&py_out)
                    .arg("1")),
            };
            times[i].push(r.time);
            peaks[i] = peaks[i].max(r.peak_anon_kib);
        }
    }
    // Same tensors either way: the outputs hold the same bytes.
    let tc_len = std::fs::metadata(&tc_out).unwrap().len();
    let py_len = std::fs::metadata(&py_out).unwrap().len();
    assert!(
        tc_len.abs_diff(py_len) < 1 << 20,
        "outputs differ in size: {tc_len} vs {py_len}"
    );
    for (i, name) in names.iter().enumerate() {
        let all: Vec<String> = times[i]
            .iter()
            .map(|t| format!("{:.3}", t.as_secs_f64()))
            .collect();
        println!("{name:<30} runs (s): {}", all.join(" "));
    }
    // Also each ratio as the median over rounds of the ratio within a round
    // (the contenders of a round met the same disk state: this VM's
    // writeback makes whole rounds slow).
    let paired = |num: usize, den: usize| {
        let mut r: Vec<f64> = times[num]
            .iter()
            .zip(&times[den])
            .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64())
            .collect();
        r.sort_by(f64::total_cmp);
        r[r.len() / 2]
    };
    let (vs_dd, vs_cp) = (paired(4, 1), paired(0, 1));
    let medians: Vec<f64> = times.into_iter().map(|t| median(t).as_secs_f64()).collect();
    let gibs = size as f64 / (1u64 << 30) as f64;
    for (i, name) in names.iter().enumerate() {
        println!(
            "{name:<30} median {:>7.3} s  {:>6.2} GiB/s  peak RssAnon {:>9.1} MiB",
            medians[i],
            gibs / medians[i],
            peaks[i] as f64 / 1024.0
        );
    }
    println!(
        "tensorcast throughput vs the fresh-write floor (dd): {:.2}x (paired per round {vs_dd:.2}x)",
        medians[4] / medians[1]
    );
    println!(
        "tensorcast throughput vs cp + fsync: {:.2}x (paired per round {vs_cp:.2}x)",
        medians[0] / medians[1]
    );
    println!(
        "tensorcast speed-up vs torch.load + save_file: {:.2}x",
        medians[2] / medians[1]
    );
    println!(
        "tensorcast speed-up vs torch.load(mmap) + save_file: {:.2}x",
        medians[3] / medians[1]
    );
    for p in [&cp_out, &tc_out, &py_out] {
        let _ = std::fs::remove_file(p);
    }
}
