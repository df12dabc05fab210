//! tpack compression against `zstd -3` (multi-threaded, on the raw file) and
//! ZipNN, in the same run, on >= 1 GiB of trained-like bf16 and f32 weights;
//! and random access: one tensor from a compressed file, small vs large.
//!
//! tensorcast and zstd run as whole processes (read, write, fsync). ZipNN
//! runs in Python on bytes already in memory, so the library's in-memory
//! compress and decode are timed beside it, round for round. Every figure is
//! the median of several rounds after an untimed warm-up, with the slowest and
//! fastest round, and contenders alternate who goes first: this VM's memory
//! costs drift run to run (freed guest memory goes back to the host and is
//! faulted in again), and a single round can be 2-5x off either way. User CPU
//! per GiB, which the drift barely touches, is printed for the in-memory
//! rows. ZipNN is found in `TENSORCAST_ORACLE_PYTHON` or
//! `~/.cache/oracle/bin/python` (`pip install zipnn==0.5.4`); without it
//! those rows are skipped. `TENSORCAST_BENCH_GIB` sets each input's size
//! (default 1); `TENSORCAST_BENCH_REAL` adds sizes on real model files.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::zipnn::{sample, Sample, Zipnn};
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

/// Timed rounds per measurement, after one untimed warm-up round.
const ROUNDS: usize = 5;

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
        let gibs = raw as f64 / (1u64 << 30) as f64;
        println!("{dtype} input: {gibs:.2} GiB; median of {ROUNDS} rounds [slowest-fastest], GiB/s");
        let packed = dir.join("x.tpack");
        whole_process(bin, &input, &packed, gibs);
        in_memory(&input, &packed, zipnn_dtype, gibs);
        random_access(&packed);
        let _ = std::fs::remove_file(&packed);
    }
    real_models(bin, &dir);
}

/// tensorcast and `zstd -3 -T0` as whole processes (read, write, fsync),
/// alternating which goes first; leaves tensorcast's output at `packed`.
fn whole_process(bin: &str, input: &Path, packed: &Path, gibs: f64) {
    let dir = packed.parent().unwrap();
    let (back, zst, unz) = (dir.join("back.safetensors"), dir.join("x.zst"), dir.join("x.unz"));
    // Per direction: tensorcast's input and output, zstd's, zstd's flags.
    let steps = [
        (input, packed, input, &zst, "-3 -T0"),
        (packed, &back, &zst, &unz, "-d"),
    ];
    // times[step][0 tensorcast, 1 zstd]; peak RssAnon of tensorcast per step.
    let mut times: [[Vec<Duration>; 2]; 2] = Default::default();
    let mut peak = [0u64; 2];
    for round in 0..=ROUNDS {
        let ours_first = round % 2 == 0;
        for (k, &(src, dst, zsrc, zdst, flags)) in steps.iter().enumerate() {
            for ours in [ours_first, !ours_first] {
                let (from, to) = if ours { (src, dst) } else { (zsrc, zdst.as_path()) };
                settle(&[to]);
                warm(from);
                let r = if ours {
                    run(Command::new(bin)
                        .arg("convert")
                        .arg(from)
                        .arg("-o")
                        .arg(to)
                        .arg("-q"))
                } else {
                    let (f, t) = (from.display(), to.display());
                    run(Command::new("sh")
                        .arg("-c")
                        .arg(format!("zstd -q -f {flags} '{f}' -o '{t}' && sync '{t}'")))
                };
                if ours {
                    peak[k] = peak[k].max(r.peak_anon_kib);
                }
                if round > 0 {
                    times[k][usize::from(!ours)].push(r.time);
                }
            }
        }
    }
    let raw = std::fs::metadata(input).unwrap().len() as f64;
    assert_eq!(std::fs::metadata(&back).unwrap().len() as f64, raw);
    let rate = |v: &[Duration]| spread(v.iter().map(|d| gibs / d.as_secs_f64()).collect());
    for (who, name, file) in [
        (0, "tensorcast tpack (process)", packed),
        (1, "zstd -3 -T0 (process)", &zst),
    ] {
        println!(
            "  {name:<28} size {:>6.2}%  compress {}  decompress {}",
            100.0 * std::fs::metadata(file).unwrap().len() as f64 / raw,
            rate(&times[0][who]),
            rate(&times[1][who])
        );
    }
    println!(
        "    tensorcast peak RssAnon: compress {:.1} MiB, decompress {:.1} MiB",
        peak[0] as f64 / 1024.0,
        peak[1] as f64 / 1024.0
    );
    for p in [&back, &zst, &unz] {
        let _ = std::fs::remove_file(p);
    }
}

/// "median [slowest-fastest]" of per-round rates.
fn spread(mut rates: Vec<f64>) -> String {
    rates.sort_by(f64::total_cmp);
    format!(
        "{:>5.2} [{:.2}-{:.2}]",
        rates[rates.len() / 2],
        rates[0],
        rates[rates.len() - 1]
    )
}

/// In memory, as ZipNN works: the library's compress of every tensor and its
/// decode into fresh buffers, in rounds alternating with ZipNN's (see
/// support/zipnn.rs); wall time and user CPU per GiB.
fn in_memory(input: &Path, packed: &Path, zipnn_dtype: &str, gibs: f64) {
    let source = tensorcast::open(input, &Default::default()).unwrap();
    let file = TpackFile::open(packed, &Default::default()).unwrap();
    let mut zipnn = Zipnn::start(input, zipnn_dtype);
    let mut samples: [Vec<Sample>; 5] = Default::default();
    for round in 0..=ROUNDS {
        let ours_first = round % 2 == 0;
        let mut take = |k: usize, s: Option<Sample>| {
            if let (true, Some(s)) = (round > 0, s) {
                samples[k].push(s);
            }
        };
        for ours in [ours_first, !ours_first] {
            if ours {
                take(0, Some(encode_in_memory(&*source, input)));
            } else {
                take(3, zipnn.as_mut().and_then(|z| z.op("c")));
            }
        }
        for ours in [ours_first, !ours_first] {
            if ours {
                take(1, Some(decode_owned(&file)));
                take(2, Some(decode_into_vec(&file)));
            } else {
                take(4, zipnn.as_mut().and_then(|z| z.op("d")));
            }
        }
    }
    let rate = |v: &[Sample]| {
        let mut user: Vec<f64> = v.iter().map(|s| s.user / gibs).collect();
        user.sort_by(f64::total_cmp);
        format!(
            "{} (user CPU {:.2} s/GiB)",
            spread(v.iter().map(|s| gibs / s.wall).collect()),
            user[user.len() / 2]
        )
    };
    let raw = std::fs::metadata(input).unwrap().len() as f64;
    let size = std::fs::metadata(packed).unwrap().len() as f64;
    println!(
        "  tensorcast tpack (in memory)  size {:>6.2}%",
        100.0 * size / raw
    );
    println!("    compress                    {}", rate(&samples[0]));
    println!("    decode, owned buffers       {}", rate(&samples[1]));
    println!("    decode, one Vec (4K pages)  {}", rate(&samples[2]));
    match &zipnn {
        Some(z) => {
            println!(
                "  ZipNN 0.5.4 (in memory)       size {:>6.2}%",
                100.0 * z.size as f64 / raw
            );
            println!("    compress                    {}", rate(&samples[3]));
            println!("    decompress                  {}", rate(&samples[4]));
        }
        None => println!("  ZipNN: not found (pip install zipnn==0.5.4 in the oracle venv)"),
    }
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

/// Encodes every tensor of `source` (a safetensors file mapped from the page
/// cache) into tpack chunks in memory, as ZipNN's in-memory compress does:
/// the library's chunk writer on all cores at the default level, into a
/// buffer of the input's size.
fn encode_in_memory(source: &dyn Source, path: &Path) -> Sample {
    use tensorcast::tpack::{ChunkWriter, DEFAULT_LEVEL};
    let len = std::fs::metadata(path).unwrap().len() as usize;
    sample(|| {
        let mut out = tensorcast::TensorBuf::zeroed(len).unwrap();
        let mut w = ChunkWriter::new(std::io::Cursor::new(&mut out[..]), 0, Some(DEFAULT_LEVEL));
        for (i, info) in source.tensors().iter().enumerate() {
            let data = source.tensor_data(i).unwrap();
            w.write_tensor(info, data, path).unwrap();
        }
        std::hint::black_box(w.into_inner());
    })
    .0
}

/// Decodes every tensor into the buffer `read_tensor_owned` allocates
/// (fresh memory with a huge-page hint; ZipNN decodes into a fresh bytearray).
fn decode_owned(f: &TpackFile) -> Sample {
    let (s, all) = sample(|| {
        (0..f.tensors().len())
            .map(|i| f.read_tensor_owned(i).unwrap())
            .collect::<Vec<_>>()
    });
    std::hint::black_box(&all);
    s
}

/// Decodes every tensor into one fresh `Vec` of 4 KiB pages, where faulting
/// the memory in costs about as much as decoding on this VM.
fn decode_into_vec(f: &TpackFile) -> Sample {
    let total: u64 = f.tensors().iter().map(|t| t.nbytes).sum();
    let (s, out) = sample(|| {
        let mut out = vec![0u8; total as usize];
        let mut rest = &mut out[..];
        for (i, info) in f.tensors().iter().enumerate() {
            let (piece, tail) = rest.split_at_mut(info.nbytes as usize);
            f.read_tensor(i, piece).unwrap();
            rest = tail;
        }
        out
    });
    std::hint::black_box(&out);
    s
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
