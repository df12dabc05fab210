//! Real-model performance (issue 17) on a generated Q4_K_M-shaped GGUF with a
//! 262 144-token vocabulary (`support::real_gguf`), every contender in the
//! same run, alternating:
//!
//! - GGUF → f32 safetensors against `cp` + fsync of an output-sized file;
//! - GGUF → tpack (blocks kept) against GGUF → GGUF;
//! - `inspect` and `verify` of that tpack against `inspect` of the GGUF;
//! - peak RssAnon of every command on the file (convert to each format,
//!   append, inspect, verify, diff);
//! - ztensor 2.1 (its Python API: `convert`, `open`) on the same container
//!   job and listing, when a Python with it is found.
//!
//! `TENSORCAST_BENCH_GIB` sets the f32 output size (default 1),
//! `TENSORCAST_BENCH_RUNS` the rounds (default 3).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::*;

/// One timed contender.
type Step<'a> = Box<dyn Fn() -> Run + 'a>;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let gib = env_num("TENSORCAST_BENCH_GIB", 1);
    let runs = env_num("TENSORCAST_BENCH_RUNS", 3);
    let bin = env!("CARGO_BIN_EXE_tensorcast");
    let dir = scratch("real_gguf");
    let input = dir.join(format!("q4_k_m-{gib}gib.gguf"));
    let f32_bytes = real_gguf::write(&input, gib);
    let in_size = std::fs::metadata(&input).unwrap().len();
    println!(
        "input: {} ({:.1} MiB, {} tokens, {:.2} GiB as f32), {runs} rounds",
        input.display(),
        in_size as f64 / (1 << 20) as f64,
        real_gguf::VOCAB,
        f32_bytes as f64 / (1u64 << 30) as f64
    );
    let out = |name: &str| dir.join(name);
    let tc = |args: &[&dyn AsRef<std::ffi::OsStr>]| {
        let mut c = Command::new(bin);
        c.arg("-q");
        for a in args {
            c.arg(a);
        }
        c.stdout(std::process::Stdio::null());
        c
    };
    let st = out("out.safetensors");
    let gg = out("out.gguf");
    let tp = out("out.tpack");
    let cp_out = out("cp.out");

    let mut rows: Vec<(&str, Vec<Duration>, u64)> = Vec::new();
    let mut record = |name: &'static str, r: Run| match rows.iter_mut().find(|row| row.0 == name) {
        Some(row) => {
            row.1.push(r.time);
            row.2 = row.2.max(r.peak_anon_kib);
        }
        None => rows.push((name, vec![r.time], r.peak_anon_kib)),
    };
    for round in 0..runs {
        let mut steps: Vec<(&'static str, Step)> = vec![
            (
                "convert -> f32 safetensors",
                Box::new(|| {
                    settle(&[&st]);
                    warm(&input);
                    run(&mut tc(&[&"convert", &input, &"-o", &st]))
                }),
            ),
            (
                "convert -> gguf (blocks kept)",
                Box::new(|| {
                    settle(&[&gg]);
                    warm(&input);
                    run(&mut tc(&[&"convert", &input, &"-o", &gg]))
                }),
            ),
            (
                "convert -> tpack (blocks kept)",
                Box::new(|| {
                    settle(&[&tp]);
                    warm(&input);
                    run(&mut tc(&[&"convert", &input, &"-o", &tp]))
                }),
            ),
        ];
        if round % 2 == 1 {
            steps.reverse();
        }
        for (name, step) in steps {
            record(name, step());
        }
        // cp + fsync of a file the size of the f32 output (the output itself).
        settle(&[&cp_out]);
        warm(&st);
        record("cp + fsync (f32 output size)", cp_fsync(&st, &cp_out));
        settle(&[&cp_out]);
        let size = std::fs::metadata(&st).map(|m| m.len()).unwrap_or(0);
        record("dd new bytes + fsync (f32 output size)", dd_floor(&cp_out, size));
        warm(&input);
        record("inspect gguf", run(&mut tc(&[&"inspect", &input])));
        warm(&tp);
        record("inspect tpack", run(&mut tc(&[&"inspect", &tp])));
        record("verify tpack", run(&mut tc(&[&"verify", &tp])));
        record("verify gguf", run(&mut tc(&[&"verify", &input])));
        record("diff gguf gguf-copy", run(&mut tc(&[&"diff", &input, &gg])));
        let npz = out("out.npz");
        settle(&[&npz]);
        record("convert -> npz", run(&mut tc(&[&"convert", &input, &"-o", &npz])));
        let _ = std::fs::remove_file(&npz);
        let app = out("append.tpack");
        settle(&[&app]);
        let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/model/llama/hf/model.safetensors");
        run(&mut tc(&[&"convert", &seed, &"-o", &app]));
        record("append gguf to tpack", run(&mut tc(&[&"append", &app, &input])));
        let _ = std::fs::remove_file(&app);
        if let Some(py) = ztensor_python() {
            let ztf = out("out.zt");
            settle(&[&ztf]);
            warm(&input);
            let convert = "import sys, ztensor; ztensor.convert(sys.argv[1], sys.argv[2])";
            record(
                "ztensor: gguf -> .zt",
                run(Command::new(&py).args(["-c", convert]).arg(&input).arg(&ztf)),
            );
            // The listing: every name and the attributes, as inspect prints.
            let list = "import sys, ztensor\nf = ztensor.open(sys.argv[1])\nfor k in f.keys(): print(k)\nprint(f.attributes)";
            record(
                "ztensor: list .zt",
                run(Command::new(&py)
                    .args(["-c", list])
                    .arg(&ztf)
                    .stdout(std::process::Stdio::null())),
            );
            let _ = std::fs::remove_file(&ztf);
        }
    }
    let median_of = |name: &str| {
        rows.iter()
            .find(|r| r.0 == name)
            .map(|r| median(r.1.clone()).as_secs_f64())
            .unwrap_or(f64::NAN)
    };
    for (name, times, peak) in &rows {
        println!(
            "{name:<32}: median {:>8.3} s  peak RssAnon {:>7.1} MiB",
            median(times.clone()).as_secs_f64(),
            *peak as f64 / 1024.0
        );
    }
    println!(
        "gguf -> f32 safetensors vs cp+fsync of the output: {:.2}x (target >= 0.8x)",
        median_of("cp + fsync (f32 output size)") / median_of("convert -> f32 safetensors")
    );
    println!(
        "gguf -> tpack time / gguf -> gguf time: {:.2}x (target <= 1.5x)",
        median_of("convert -> tpack (blocks kept)") / median_of("convert -> gguf (blocks kept)")
    );
    println!(
        "inspect tpack / inspect gguf: {:.2}x, verify tpack / inspect gguf: {:.2}x (target <= 2x)",
        median_of("inspect tpack") / median_of("inspect gguf"),
        median_of("verify tpack") / median_of("inspect gguf")
    );
    if rows.iter().any(|r| r.0.starts_with("ztensor")) {
        println!(
            "ztensor side by side: gguf -> tpack / ztensor gguf -> .zt: {:.2}x; inspect tpack / ztensor list: {:.2}x (time ratios, lower is faster)",
            median_of("convert -> tpack (blocks kept)") / median_of("ztensor: gguf -> .zt"),
            median_of("inspect tpack") / median_of("ztensor: list .zt")
        );
    }
    let worst = rows
        .iter()
        .filter(|r| !r.0.starts_with("cp") && !r.0.starts_with("ztensor"))
        .max_by_key(|r| r.2)
        .unwrap();
    println!(
        "largest peak RssAnon of a tensorcast command: {:.1} MiB ({}) (target <= 64 MiB)",
        worst.2 as f64 / 1024.0,
        worst.0
    );
    for p in [&st, &gg, &tp, &cp_out] {
        let _ = std::fs::remove_file(p);
    }
}

/// A Python with ztensor 2.1 (`pip install ztensor`): `TENSORCAST_ZTENSOR_PYTHON`,
/// else `~/.cache/zt-venv/bin/python`; `None` (rows skipped) when it cannot import it.
fn ztensor_python() -> Option<PathBuf> {
    let p = std::env::var_os("TENSORCAST_ZTENSOR_PYTHON")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/zt-venv/bin/python")))?;
    let ok = Command::new(&p)
        .args(["-c", "import ztensor"])
        .status()
        .ok()?
        .success();
    ok.then_some(p)
}
