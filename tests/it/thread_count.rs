//! Threads a conversion creates, counted rather than timed (issue 37): the
//! command runs as the first process of a new PID namespace, where the
//! kernel numbers every task (process or thread) it creates in order, so the
//! PID of a probe started right after the conversion says how many threads
//! the conversion started. Each conversion here has dozens of tensors worth
//! overlapping; a thread per tensor (what the pipeline did) fails this.

use crate::common::{noise, tensorcast};
use std::path::Path;
use std::process::Command;

/// Tensors of f16 that become 4.4 MB of f32 each: more than a pipeline
/// chunk, so every one of them is produced while the sink writes.
const TENSORS: usize = 24;
const ELEMENTS: usize = 1_100_000;

/// Written a tensor at a time: the test process stays small, since the
/// memory-budget tests measure children forked from it.
fn f16_safetensors(path: &Path) {
    use std::io::Write;
    let mut header = serde_json::Map::new();
    for i in 0..TENSORS {
        let (start, end) = (i * ELEMENTS * 2, (i + 1) * ELEMENTS * 2);
        header.insert(
            format!("layers.{i}.weight"),
            serde_json::json!({"dtype": "F16", "shape": [1100, 1000], "data_offsets": [start, end]}),
        );
    }
    let header = serde_json::to_vec(&header).unwrap();
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    file.write_all(&(header.len() as u64).to_le_bytes()).unwrap();
    file.write_all(&header).unwrap();
    for i in 0..TENSORS {
        // Finite halves: the low byte is noise, the high byte a small exponent.
        let data: Vec<u8> = noise(ELEMENTS, i as u64 + 1)
            .into_iter()
            .enumerate()
            .flat_map(|(k, b)| [b, 0x30 + (k % 8) as u8])
            .collect();
        file.write_all(&data).unwrap();
    }
    file.flush().unwrap();
}

/// Threads `tensorcast ARGS` started, or None where PID namespaces cannot be
/// made (not root, or a sandbox without them): said on stderr.
fn threads_created(args: &[&str]) -> Option<usize> {
    let bin = assert_cmd::cargo::cargo_bin("tensorcast");
    // PID 1 is this shell, 2 the conversion, 3.. its threads, then the probe.
    let out = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "sh", "-c"])
        .arg(r#""$0" -q "$@" >/dev/null || exit 99; sh -c 'echo $$'"#)
        .arg(&bin)
        .args(args)
        .output()
        .ok()?;
    if out.status.code() == Some(99) {
        panic!(
            "tensorcast {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if !out.status.success() {
        eprintln!(
            "skipped: no PID namespace here (unshare: {})",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    let probe: usize = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("the probe's PID");
    Some(probe - 3)
}

#[test]
fn a_conversion_starts_at_most_cores_plus_four_threads() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f16.safetensors");
    f16_safetensors(&src);
    let q8 = dir.path().join("q8.gguf");
    tensorcast()
        .args(["-q", "convert"])
        .arg(&src)
        .arg("-o")
        .arg(&q8)
        .args(["--quantize", "Q8_0"])
        .assert()
        .success();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let out = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let src = src.to_string_lossy().into_owned();
    let q8 = q8.to_string_lossy().into_owned();
    let conversions: [Vec<String>; 5] = [
        // cast: every tensor's chunks computed
        vec![
            "convert".into(),
            src.clone(),
            "-o".into(),
            out("f32.safetensors"),
            "--dtype".into(),
            "f32".into(),
        ],
        // dequantization of blocks
        vec![
            "convert".into(),
            q8.clone(),
            "-o".into(),
            out("deq.safetensors"),
            "--dtype".into(),
            "f32".into(),
        ],
        // compressed container writer
        vec!["convert".into(), src.clone(), "-o".into(), out("x.tpack")],
        // quantization
        vec![
            "convert".into(),
            src.clone(),
            "-o".into(),
            out("q4.gguf"),
            "--quantize".into(),
            "Q4_K_M".into(),
        ],
        // asked for more threads than cores: still the asked number plus the fixed few
        vec![
            "convert".into(),
            q8,
            "-o".into(),
            out("j4.safetensors"),
            "--dtype".into(),
            "f32".into(),
            "-j".into(),
            "4".into(),
        ],
    ];
    for args in &conversions {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let Some(n) = threads_created(&args) else { return };
        let jobs = if args.contains(&"-j") { 4 } else { cores };
        eprintln!("{n} threads created by {args:?}");
        assert!(
            n <= jobs + 4,
            "{args:?} created {n} threads ({jobs} workers asked, {TENSORS} tensors)"
        );
    }
}
