//! Whole-process benchmark helpers: generated inputs, timed runs side by side,
//! peak anonymous memory sampled from /proc.
#![allow(dead_code)]

pub mod real_gguf;
pub mod zipnn;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Result of one timed process.
pub struct Run {
    /// Wall-clock time.
    pub time: Duration,
    /// Largest RssAnon seen while it ran, in KiB (0 if /proc is unavailable).
    pub peak_anon_kib: u64,
}

/// Runs `cmd`, sampling `/proc/<pid>/status` every millisecond for RssAnon.
/// Panics on failure: a benchmark that silently measures a failing command is worse.
pub fn run(cmd: &mut Command) -> Run {
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn");
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status_path) {
            if let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("RssAnon:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kib);
            }
        }
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "{cmd:?} failed: {status}");
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Run {
        time: start.elapsed(),
        peak_anon_kib: peak,
    }
}

/// `cp SRC DST` followed by an fsync of DST (coreutils `sync FILE`), in one shell.
pub fn cp_fsync(src: &Path, dst: &Path) -> Run {
    run(Command::new("sh").arg("-c").arg(format!(
        "cp '{}' '{}' && sync '{}'",
        src.display(),
        dst.display(),
        dst.display()
    )))
}

/// `dd` of `bytes` new zero bytes into `dst`, fsynced: the floor for writing
/// that many new bytes (a conversion that writes new data cannot beat it,
/// while `cp` may share or reuse what the file system already holds).
pub fn dd_floor(dst: &Path, bytes: u64) -> Run {
    let blocks = bytes.div_ceil(4 << 20);
    run(Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", dst.display()))
        .args(["bs=4M", &format!("count={blocks}"), "conv=fsync", "status=none"]))
}

/// Removes `paths` and lets the file system settle (this VM's ext4 discards
/// freed blocks), so one contender's cleanup does not slow the next one down.
pub fn settle(paths: &[&Path]) {
    for p in paths {
        let _ = std::fs::remove_file(p);
    }
    let _ = Command::new("sync").status();
    std::thread::sleep(Duration::from_millis(300));
}

/// Median of the timings.
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Reads a file once so every contender starts from a warm page cache.
pub fn warm(path: &Path) {
    let mut f = std::fs::File::open(path).expect("open");
    std::io::copy(&mut f, &mut std::io::sink()).expect("read");
}

/// A scratch directory under cargo's target tmpdir (same file system as the
/// outputs, so renames and copies compare fairly).
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

/// Deterministic pseudo-random bytes that look like bf16/f32 weights
/// (xorshift; incompressible enough that no layer can cheat).
pub fn fill(buf: &mut [u8], seed: &mut u64) {
    for chunk in buf.chunks_mut(8) {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let b = seed.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

/// Writes a safetensors file of `count` tensors of `dtype` with `elems`
/// elements each (plus a few small tensors, as real checkpoints have).
pub fn write_safetensors(path: &Path, dtype: &str, elem_bytes: usize, count: usize, elems: usize) {
    if path.exists() {
        return;
    }
    let mut header = String::from("{\"__metadata__\":{\"format\":\"pt\"}");
    let mut offset = 0usize;
    let mut sizes = Vec::new();
    for i in 0..count {
        let n = elems * elem_bytes;
        header.push_str(&format!(
            ",\"model.layers.{i}.weight\":{{\"dtype\":\"{dtype}\",\"shape\":[{},{}],\"data_offsets\":[{offset},{}]}}",
            elems / 1024,
            1024,
            offset + n
        ));
        offset += n;
        sizes.push(n);
        let small = 4096 * elem_bytes;
        header.push_str(&format!(
            ",\"model.layers.{i}.norm\":{{\"dtype\":\"{dtype}\",\"shape\":[4096],\"data_offsets\":[{offset},{}]}}",
            offset + small
        ));
        offset += small;
        sizes.push(small);
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let tmp = path.with_extension("partial");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp).expect("create"));
    f.write_all(&(header.len() as u64).to_le_bytes()).unwrap();
    f.write_all(header.as_bytes()).unwrap();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut buf = vec![0u8; 1 << 20];
    for n in sizes {
        let mut left = n;
        while left > 0 {
            let k = left.min(buf.len());
            fill(&mut buf[..k], &mut seed);
            f.write_all(&buf[..k]).unwrap();
            left -= k;
        }
    }
    f.flush().unwrap();
    drop(f);
    std::fs::rename(&tmp, path).unwrap();
}

/// A numeric setting from the environment (`TENSORCAST_BENCH_GIB` and friends).
pub fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The oracle venv's Python: `TENSORCAST_ORACLE_PYTHON`, else
/// `~/.cache/oracle/bin/python`; `None` when absent (Python columns are skipped).
pub fn oracle_python() -> Option<PathBuf> {
    let p = std::env::var_os("TENSORCAST_ORACLE_PYTHON")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/oracle/bin/python")))?;
    p.exists().then_some(p)
}
