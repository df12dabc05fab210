//! Converting straight from a loopback HTTP server (ranged requests) against
//! the two-step route users take today: `curl -o` the file, then convert it
//! locally. Same run, rounds alternating; also the local convert alone and
//! the bytes `inspect` fetches from the server as a fraction of the file.
//!
//! `TENSORCAST_BENCH_GIB` sets the input size (default 1),
//! `TENSORCAST_BENCH_RUNS` the rounds (default 3). Needs `curl`.

#[path = "../tests/it/common/range_server.rs"]
#[allow(dead_code)]
mod range_server;
mod support;

use std::process::Command;
use support::*;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if Command::new("curl").arg("--version").output().is_err() {
        println!("remote bench skipped: curl not found");
        return;
    }
    let gib = env_num("TENSORCAST_BENCH_GIB", 1);
    let runs = env_num("TENSORCAST_BENCH_RUNS", 3);
    let bin = env!("CARGO_BIN_EXE_tensorcast");
    let dir = scratch("remote");
    let input = dir.join(format!("model-{gib}gib.safetensors"));
    // 64 MiB f32 tensors, 16 per GiB.
    write_safetensors(&input, "F32", 4, 16 * gib, 16 << 20);
    let bytes = std::fs::read(&input).expect("read input");
    let len = bytes.len() as u64;
    let server = range_server::RangeServer::start();
    server.put("/m/model.safetensors", bytes);
    let url = server.url("/m/model.safetensors");
    let (ours, twostep, local) = (
        dir.join("ours.gguf"),
        dir.join("twostep.gguf"),
        dir.join("local.gguf"),
    );
    let download = dir.join("download.safetensors");

    server.reset();
    run(Command::new(bin)
        .args(["inspect", &url])
        .stdout(std::process::Stdio::null()));
    let inspected = server.served();

    let (mut t_ours, mut t_two, mut t_local, mut peak) = (Vec::new(), Vec::new(), Vec::new(), 0u64);
    for round in 0..runs {
        for k in 0..3 {
            match (round + k) % 3 {
                0 => {
                    settle(&[&ours]);
                    let r = run(Command::new(bin).args(["convert", "-q", &url, "-o"]).arg(&ours));
                    peak = peak.max(r.peak_anon_kib);
                    t_ours.push(r.time);
                }
                1 => {
                    settle(&[&twostep, &download]);
                    let r = run(Command::new("sh").arg("-c").arg(format!(
                        "curl -sf -o '{}' '{url}' && '{bin}' convert -q '{}' -o '{}'",
                        download.display(),
                        download.display(),
                        twostep.display()
                    )));
                    t_two.push(r.time);
                }
                _ => {
                    settle(&[&local]);
                    warm(&input);
                    t_local.push(
                        run(Command::new(bin)
                            .args(["convert", "-q"])
                            .arg(&input)
                            .arg("-o")
                            .arg(&local))
                        .time,
                    );
                }
            }
        }
    }
    assert_eq!(
        std::fs::read(&ours).unwrap(),
        std::fs::read(&local).unwrap(),
        "outputs differ"
    );
    let (o, t, l) = (median(t_ours), median(t_two), median(t_local));
    let mib = len as f64 / (1 << 20) as f64;
    println!("remote bench: {mib:.0} MiB safetensors -> gguf, {runs} rounds, medians");
    println!(
        "  from http (ranged)        {:>7.3} s  {:>6.0} MiB/s  peak RssAnon {} MiB",
        o.as_secs_f64(),
        mib / o.as_secs_f64(),
        peak / 1024
    );
    println!(
        "  curl -o + local convert   {:>7.3} s  {:>6.0} MiB/s",
        t.as_secs_f64(),
        mib / t.as_secs_f64()
    );
    println!(
        "  local convert alone       {:>7.3} s  {:>6.0} MiB/s",
        l.as_secs_f64(),
        mib / l.as_secs_f64()
    );
    println!(
        "  ratio (curl + local) / ours: {:.2}x (goal >= 1)",
        t.as_secs_f64() / o.as_secs_f64()
    );
    println!(
        "  inspect fetched {inspected} of {len} bytes ({:.5}%)",
        inspected as f64 * 100.0 / len as f64
    );
    settle(&[&ours, &twostep, &local, &download]);
}
