//! safetensors → safetensors on a ≥ 1 GiB generated file, side by side with
//! `cp` + fsync of the same file, in one run; reports the throughput ratio and
//! tensorcast's peak RssAnon. Also f32 → bf16 (`--dtype bf16`) against `cp` of
//! an output-sized file.
//!
//! `TENSORCAST_BENCH_GIB` sets the input size (default 1), `TENSORCAST_BENCH_RUNS`
//! the number of alternating rounds (default 5).

mod support;

use std::process::Command;
use support::*;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing we need.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let gib = env_num("TENSORCAST_BENCH_GIB", 1);
    let runs = env_num("TENSORCAST_BENCH_RUNS", 5);
    let bin = env!("CARGO_BIN_EXE_tensorcast");
    let dir = scratch("convert_vs_cp");

    // 64 MiB per big tensor, bf16: gib × 16 of them, plus small norms.
    let count = 16 * gib;
    let input = dir.join(format!("bf16-{gib}gib.safetensors"));
    write_safetensors(&input, "BF16", 2, count, 32 << 20);
    // f32 input twice the size, so its bf16 output is the size of `input`.
    let f32_input = dir.join(format!("f32-{}gib.safetensors", 2 * gib));
    write_safetensors(&f32_input, "F32", 4, count, 32 << 20);
    let size = std::fs::metadata(&input).unwrap().len();
    println!(
        "input: {} ({:.2} GiB), {} rounds, alternating",
        input.display(),
        size as f64 / (1u64 << 30) as f64,
        runs
    );

    let cp_out = dir.join("cp.out");
    let tc_out = dir.join("tc.safetensors");
    let (mut cp_times, mut tc_times, mut tc_peak) = (Vec::new(), Vec::new(), 0u64);
    let (mut cast_times, mut cast_peak, mut cp_half_times) = (Vec::new(), 0u64, Vec::new());
    let mut dd_times = Vec::new();
    let bf16_out = dir.join("cast.safetensors");
    for round in 0..runs {
        // Every contender starts with its output gone and the file system
        // settled (this VM's ext4 discards freed blocks in the background),
        // and cp and tensorcast take turns going first.
        let copy = |src: &std::path::Path| {
            settle(&[&cp_out]);
            warm(src);
            cp_fsync(src, &cp_out)
        };
        let convert = || {
            settle(&[&tc_out]);
            warm(&input);
            run(Command::new(bin)
                .arg("convert")
                .arg(&input)
                .arg("-o")
                .arg(&tc_out))
        };
        let (cp, tc) = if round % 2 == 0 {
            let cp = copy(&input);
            (cp, convert())
        } else {
            let tc = convert();
            (copy(&input), tc)
        };
        // Cast: f32 → bf16 halves the bytes; compare with cp of an output-sized file.
        let cp_half = copy(&input);
        settle(&[&bf16_out]);
        warm(&f32_input);
        let cast = run(Command::new(bin)
            .arg("convert")
            .arg(&f32_input)
            .arg("-o")
            .arg(&bf16_out)
            .args(["--dtype", "bf16"]));
        // The floor for writing that many new bytes.
        let dd_out = dir.join("dd.out");
        settle(&[&dd_out]);
        dd_times.push(dd_floor(&dd_out, size).time);
        settle(&[&dd_out]);
        cp_times.push(cp.time);
        tc_times.push(tc.time);
        tc_peak = tc_peak.max(tc.peak_anon_kib);
        cp_half_times.push(cp_half.time);
        cast_times.push(cast.time);
        cast_peak = cast_peak.max(cast.peak_anon_kib);
    }
    assert_eq!(
        std::fs::metadata(&tc_out).unwrap().len(),
        size,
        "same-format conversion keeps the size"
    );
    let (cp, tc) = (median(cp_times), median(tc_times));
    let gibs = |t: std::time::Duration| size as f64 / (1u64 << 30) as f64 / t.as_secs_f64();
    println!(
        "cp + fsync            : median {:>8.3} s  {:>6.2} GiB/s",
        cp.as_secs_f64(),
        gibs(cp)
    );
    println!(
        "tensorcast convert    : median {:>8.3} s  {:>6.2} GiB/s  peak RssAnon {:.1} MiB",
        tc.as_secs_f64(),
        gibs(tc),
        tc_peak as f64 / 1024.0
    );
    println!(
        "throughput ratio (tensorcast / cp+fsync): {:.2}x (target >= 0.9x)",
        cp.as_secs_f64() / tc.as_secs_f64()
    );
    let dd = median(dd_times);
    println!(
        "fresh-write floor (dd bs=4M conv=fsync, same size): median {:.3} s; tensorcast / floor {:.2}x",
        dd.as_secs_f64(),
        dd.as_secs_f64() / tc.as_secs_f64()
    );
    let (cph, cast) = (median(cp_half_times), median(cast_times));
    println!(
        "convert --dtype bf16 (f32 in, {:.2} GiB bf16 out): median {:.3} s, ratio vs cp+fsync of an output-sized file {:.2}x, peak RssAnon {:.1} MiB",
        size as f64 / (1u64 << 30) as f64,
        cast.as_secs_f64(),
        cph.as_secs_f64() / cast.as_secs_f64(),
        cast_peak as f64 / 1024.0
    );
    for p in [&cp_out, &tc_out, &bf16_out] {
        let _ = std::fs::remove_file(p);
    }
}
