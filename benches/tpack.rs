//! tpack compression against `zstd -3` (multi-threaded, on the raw file) and
//! ZipNN, in the same run, on ≥ 1 GiB of trained-like bf16 and f32 weights;
//! and random access: one tensor from a compressed file, small vs large.
//!
//! tensorcast and zstd run as whole processes (read, write, fsync); ZipNN runs
//! in-process in Python on bytes already in memory (no file I/O counted, which
//! favours it; decompression is the median of three); the library's decode
//! into memory is timed the same way, into one `Vec` (4 KiB pages) and into
//! the buffers `read_tensor_owned` allocates (huge pages, as numpy's). ZipNN is found in `TENSORCAST_ORACLE_PYTHON` or
//! `~/.cache/oracle/bin/python` (`pip install zipnn==0.5.4`); without it that
//! column is skipped. `TENSORCAST_BENCH_GIB` sets each input's size (default 1).

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;
use tensorcast::tpack::TpackFile;
use tensorcast::Source;

/// Normal(0, σ) weights with σ varying by row (0.005–0.05), as trained
/// matrices look, plus norm vectors near 1.
fn weights(elems: usize, seed: u64) -> Vec<f32> {
    let mut s = seed | 1;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let mut out = Vec::with_capacity(elems);
    let mut sigma = 0.02;
    while out.len() < elems {
        if out.len() % 4096 == 0 {
            sigma = 0.005 + 0.045 * next();
        }
        let (u, v) = (next(), next());
        let r = (-2.0 * u.ln()).sqrt();
        out.push((r * (std::f64::consts::TAU * v).cos() * sigma) as f32);
        out.push((r * (std::f64::consts::TAU * v).sin() * sigma) as f32);
    }
    out.truncate(elems);
    out
}

fn bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

/// A safetensors file of `gib` GiB in `dtype` (BF16 or F32).
fn make_input(path: &Path, dtype: &str, gib: usize) {
    if path.exists() {
        return;
    }
    let elem = if dtype == "BF16" { 2 } else { 4 };
    let per_tensor = 16usize << 20; // elements
    let count = (gib << 30) / (per_tensor * elem);
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for i in 0..count {
        header.insert(
            format!("model.layers.{i}.mlp.weight"),
            serde_json::json!({"dtype": dtype, "shape": [4096, 4096], "data_offsets": [offset, offset + per_tensor * elem]}),
        );
        offset += per_tensor * elem;
        header.insert(
            format!("model.layers.{i}.norm.weight"),
            serde_json::json!({"dtype": dtype, "shape": [4096], "data_offsets": [offset, offset + 4096 * elem]}),
        );
        offset += 4096 * elem;
    }
    let h = serde_json::to_vec(&header).unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    use std::io::Write;
    f.write_all(&(h.len() as u64).to_le_bytes()).unwrap();
    f.write_all(&h).unwrap();
    for i in 0..count {
        let w = weights(per_tensor, 1000 + i as u64);
        let norm: Vec<f32> = weights(4096, 7 + i as u64).iter().map(|x| 1.0 + x).collect();
        for v in w.iter().chain(&norm) {
            if elem == 2 {
                f.write_all(&bf16_bits(*v).to_le_bytes()).unwrap();
            } else {
                f.write_all(&v.to_le_bytes()).unwrap();
            }
        }
    }
    f.flush().unwrap();
}

const ZIPNN: &str = r#"
import sys, time, json
from zipnn import ZipNN
# ZipNN 0.5.4 rewrites its input buffer in place: each run gets a fresh copy.
original = open(sys.argv[1], "rb").read()
z = ZipNN(input_format="byte", bytearray_dtype=sys.argv[2])
ctimes = []
for _ in range(4):
    fresh = bytearray(original)
    t = time.time(); c = z.compress(fresh); ctimes.append(time.time() - t)
    del fresh
tc = sorted(ctimes[1:])[1]  # first round is a warm-up (see WARM_UP)
times = []
for _ in range(4):
    t = time.time(); d = z.decompress(c); times.append(time.time() - t)
    assert bytes(d) == original
    del d
td = sorted(times[1:])[1]
print(json.dumps({"size": len(c), "compress": tc, "decompress": td}))
"#;

// WARM_UP: every in-memory measurement (ours and ZipNN's) runs one untimed
// round first and reports the median of the next three. This VM backs guest
// memory lazily: the first touch of memory it never used costs a host fault
// per page, which made first rounds 2-5x slower and whichever tool ran first
// look worse.

struct Row {
    name: &'static str,
    size: u64,
    compress: Duration,
    decompress: Duration,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let gib = env_num("TENSORCAST_BENCH_GIB", 1);
    let bin = env!("CARGO_BIN_EXE_tensorcast");
    let dir = scratch("tpack");
    for (dtype, zipnn_dtype) in [("BF16", "bfloat16"), ("F32", "float32")] {
        let input = dir.join(format!("{dtype}-{gib}gib.safetensors"));
        make_input(&input, dtype, gib);
        let raw = std::fs::metadata(&input).unwrap().len();
        let packed = dir.join("x.tpack");
        let back = dir.join("back.safetensors");
        let zst = dir.join("x.zst");
        let unz = dir.join("x.unz");
        let mut rows = Vec::new();
        settle(&[&packed, &back]);
        warm(&input);
        let c = run(Command::new(bin)
            .arg("convert")
            .arg(&input)
            .arg("-o")
            .arg(&packed));
        warm(&packed);
        let d = run(Command::new(bin).arg("convert").arg(&packed).arg("-o").arg(&back));
        assert_eq!(std::fs::metadata(&back).unwrap().len(), raw);
        let compress_mem = encode_in_memory(&input);
        let in_memory = decode_in_memory(&packed, false);
        let in_memory_huge = decode_in_memory(&packed, true);
        rows.push(Row {
            name: "tensorcast tpack (default)",
            size: std::fs::metadata(&packed).unwrap().len(),
            compress: c.time,
            decompress: d.time,
        });
        println!(
            "{dtype}: tensorcast peak RssAnon: compress {:.1} MiB, decompress {:.1} MiB",
            c.peak_anon_kib as f64 / 1024.0,
            d.peak_anon_kib as f64 / 1024.0
        );
        rows.push(Row {
            name: "  same, in memory, Vec 4K pages",
            size: std::fs::metadata(&packed).unwrap().len(),
            compress: compress_mem,
            decompress: in_memory,
        });
        rows.push(Row {
            name: "  same, in memory, owned bufs",
            size: std::fs::metadata(&packed).unwrap().len(),
            compress: compress_mem,
            decompress: in_memory_huge,
        });
        settle(&[&zst, &unz]);
        warm(&input);
        let sh = |s: String| run(Command::new("sh").arg("-c").arg(s));
        let c = sh(format!(
            "zstd -q -f -3 -T0 '{}' -o '{}' && sync '{}'",
            input.display(),
            zst.display(),
            zst.display()
        ));
        warm(&zst);
        let d = sh(format!(
            "zstd -q -f -d '{}' -o '{}' && sync '{}'",
            zst.display(),
            unz.display(),
            unz.display()
        ));
        rows.push(Row {
            name: "zstd -3 -T0 (file)",
            size: std::fs::metadata(&zst).unwrap().len(),
            compress: c.time,
            decompress: d.time,
        });
        if let Some(py) = oracle_python() {
            let out = Command::new(&py)
                .arg("-c")
                .arg(ZIPNN)
                .arg(&input)
                .arg(zipnn_dtype)
                .output()
                .unwrap();
            if out.status.success() {
                let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                rows.push(Row {
                    name: "ZipNN 0.5.4 (in memory)",
                    size: j["size"].as_u64().unwrap(),
                    compress: Duration::from_secs_f64(j["compress"].as_f64().unwrap()),
                    decompress: Duration::from_secs_f64(j["decompress"].as_f64().unwrap()),
                });
            } else {
                println!("ZipNN failed: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
        let gibs = raw as f64 / (1u64 << 30) as f64;
        println!("{dtype} input: {:.2} GiB", gibs);
        for r in &rows {
            println!(
                "  {:<30} size {:>6.2}% of raw  compress {:>6.2} GiB/s  decompress {:>6.2} GiB/s",
                r.name,
                100.0 * r.size as f64 / raw as f64,
                gibs / r.compress.as_secs_f64(),
                gibs / r.decompress.as_secs_f64()
            );
        }
        random_access(&packed);
        for p in [&packed, &back, &zst, &unz] {
            let _ = std::fs::remove_file(p);
        }
    }
    real_models(bin, &dir);
}

const ZIPNN_SIZE: &str = r#"
import sys
from zipnn import ZipNN
data = open(sys.argv[1], "rb").read()
print(len(ZipNN(input_format="byte", bytearray_dtype=sys.argv[2]).compress(bytes(bytearray(data)))))
"#;

/// Sizes on real trained weights: every safetensors file listed (colon
/// separated) in `TENSORCAST_BENCH_REAL`, e.g. silero-vad's
/// `silero_vad_16k.safetensors` and facenet-pytorch's `onet.pt` converted by
/// tensorcast (both ship in their PyPI wheels).
fn real_models(bin: &str, dir: &Path) {
    let Ok(list) = std::env::var("TENSORCAST_BENCH_REAL") else {
        println!("real models: set TENSORCAST_BENCH_REAL=a.safetensors:b.safetensors to compare sizes");
        return;
    };
    let py = oracle_python();
    for input in list.split(':').filter(|s| !s.is_empty()) {
        let input = Path::new(input);
        let raw = std::fs::metadata(input).unwrap().len() as f64;
        let packed = dir.join("real.tpack");
        let _ = std::fs::remove_file(&packed);
        run(Command::new(bin).arg("convert").arg(input).arg("-o").arg(&packed));
        let tp = std::fs::metadata(&packed).unwrap().len() as f64;
        let z = Command::new("zstd")
            .args(["-3", "-c", "-q"])
            .arg(input)
            .output()
            .unwrap()
            .stdout
            .len() as f64;
        let zn = py.as_ref().and_then(|py| {
            let out = Command::new(py)
                .arg("-c")
                .arg(ZIPNN_SIZE)
                .arg(input)
                .arg("float32")
                .output()
                .ok()?;
            String::from_utf8_lossy(&out.stdout).trim().parse::<f64>().ok()
        });
        println!(
            "real {}: tpack {:.2}%  zstd -3 {:.2}%  ZipNN {}",
            input.display(),
            100.0 * tp / raw,
            100.0 * z / raw,
            zn.map_or("n/a".into(), |v| format!("{:.2}%", 100.0 * v / raw))
        );
        let _ = std::fs::remove_file(&packed);
    }
}

/// Encoding every tensor of the safetensors file `path` (mapped, in the page
/// cache) into tpack chunks in memory, as ZipNN's in-memory compress does:
/// the library's chunk writer on all cores, at the default level, into a
/// buffer of the input's size; median of three.
fn encode_in_memory(path: &Path) -> Duration {
    use tensorcast::tpack::{ChunkWriter, DEFAULT_LEVEL};
    let source = tensorcast::open(path, &Default::default()).unwrap();
    let len = std::fs::metadata(path).unwrap().len() as usize;
    let mut times = Vec::new();
    // One warm-up round, then three timed ones (see WARM_UP).
    for round in 0..4 {
        let t = Instant::now();
        let mut out = tensorcast::TensorBuf::zeroed(len).unwrap();
        let mut w = ChunkWriter::new(std::io::Cursor::new(&mut out[..]), 0, Some(DEFAULT_LEVEL));
        for (i, info) in source.tensors().iter().enumerate() {
            let data = source.tensor_data(i).unwrap();
            w.write_tensor(info, data, path).unwrap();
        }
        if round > 0 {
            times.push(t.elapsed());
        }
        std::hint::black_box(w.into_inner());
    }
    median(times)
}

/// Decoding every tensor of `path` into memory with the library (what ZipNN's
/// in-memory decompress produces), median of three; fresh memory each time,
/// so its page faults count. `owned`: each tensor into the buffer
/// `read_tensor_owned` allocates (huge pages, as numpy advises for the arrays
/// ZipNN decodes into); otherwise into one caller's `Vec` on 4 KiB pages,
/// where faulting the memory in (~0.37 s per GiB here) dominates.
fn decode_in_memory(path: &Path, owned: bool) -> Duration {
    let f = TpackFile::open(path, &Default::default()).unwrap();
    let mut times = Vec::new();
    // One warm-up round, then three timed ones (see WARM_UP).
    for round in 0..4 {
        let t = Instant::now();
        if owned {
            let all: Vec<_> = (0..f.tensors().len())
                .map(|i| f.read_tensor_owned(i).unwrap())
                .collect();
            if round > 0 {
                times.push(t.elapsed());
            }
            std::hint::black_box(&all);
            continue;
        }
        let total: u64 = f.tensors().iter().map(|t| t.nbytes).sum();
        let mut out = vec![0u8; total as usize];
        let mut rest = &mut out[..];
        for (i, info) in f.tensors().iter().enumerate() {
            let (piece, tail) = rest.split_at_mut(info.nbytes as usize);
            f.read_tensor(i, piece).unwrap();
            rest = tail;
        }
        if round > 0 {
            times.push(t.elapsed());
        }
        std::hint::black_box(&out);
    }
    median(times)
}

/// Reading one tensor costs time in proportion to that tensor, not the file.
fn random_access(path: &Path) {
    let f = TpackFile::open(path, &Default::default()).unwrap();
    let time_read = |i: usize| {
        let mut v = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let n = f.tensor_data(i).unwrap().for_each_chunk(|_| Ok(())).unwrap();
            v.push(t.elapsed());
            assert_eq!(n, f.tensors()[i].nbytes);
        }
        median(v)
    };
    let small = f
        .tensors()
        .iter()
        .position(|t| t.name.ends_with("norm.weight"))
        .unwrap();
    let large = f
        .tensors()
        .iter()
        .position(|t| t.name.ends_with("mlp.weight"))
        .unwrap();
    let (ts, tl) = (time_read(small), time_read(large));
    // One 1 MiB slice from the middle of the large tensor.
    let mut slice = vec![0u8; 1 << 20];
    let mid = f.tensors()[large].nbytes / 2;
    let tr = median(
        (0..5)
            .map(|_| {
                let t = Instant::now();
                f.read_range(large, mid, &mut slice).unwrap();
                t.elapsed()
            })
            .collect(),
    );
    let t = Instant::now();
    for i in 0..f.tensors().len() {
        f.tensor_data(i).unwrap().for_each_chunk(|_| Ok(())).unwrap();
    }
    let all = t.elapsed();
    println!(
        "  random access: one {} KiB tensor {:.3} ms, 1 MiB of a {} MiB tensor {:.2} ms, that whole tensor {:.1} ms, all {} tensors {:.0} ms",
        f.tensors()[small].nbytes >> 10,
        ts.as_secs_f64() * 1e3,
        f.tensors()[large].nbytes >> 20,
        tr.as_secs_f64() * 1e3,
        tl.as_secs_f64() * 1e3,
        f.tensors().len(),
        all.as_secs_f64() * 1e3
    );
}
