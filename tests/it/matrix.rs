//! Every reader into every writer through the one `convert` pipeline. Each
//! pair either succeeds and reads back equal (bit for bit) to what the
//! pipeline promised — the input after its default adapters (dequantized
//! ggml blocks) — or fails up front: exit 1, a message saying what to do
//! instead, and no output file.

use crate::common::{fixture, tensorcast};
use std::path::{Path, PathBuf};
use tensorcast::{adapt, diff, open, ConvertOptions, Registry};

struct Writer {
    name: &'static str,
    file: &'static str,
    /// The registry name of the output format.
    format: &'static str,
    args: &'static [&'static str],
    /// The path to read the result from.
    read_back: &'static str,
}

const WRITERS: &[Writer] = &[
    Writer {
        name: "safetensors",
        file: "out.safetensors",
        format: "safetensors",
        args: &[],
        read_back: "out.safetensors",
    },
    Writer {
        name: "sharded safetensors",
        file: "out.safetensors",
        format: "safetensors",
        args: &["--max-shard-size", "1KB"],
        read_back: "out.safetensors.index.json",
    },
    Writer {
        name: "gguf",
        file: "out.gguf",
        format: "gguf",
        args: &[],
        read_back: "out.gguf",
    },
    Writer {
        name: "tpack",
        file: "out.tpack",
        format: "tpack",
        args: &[],
        read_back: "out.tpack",
    },
    Writer {
        name: "npz",
        file: "out.npz",
        format: "npz",
        args: &[],
        read_back: "out.npz",
    },
    Writer {
        name: "ztensor",
        file: "out.zt",
        format: "ztensor",
        args: &[],
        read_back: "out.zt",
    },
    Writer {
        name: "pytorch",
        file: "out.pt",
        format: "pytorch",
        args: &[],
        read_back: "out.pt",
    },
];

fn readers() -> Vec<(&'static str, PathBuf)> {
    vec![
        ("safetensors", fixture("safetensors/cast/source.safetensors")),
        (
            "safetensors (f32)",
            fixture("safetensors/cast/to_f32.safetensors"),
        ),
        (
            "sharded safetensors",
            fixture("safetensors/valid/sharded/model.safetensors.index.json"),
        ),
        ("gguf", fixture("gguf/align64.gguf")),
        ("gguf (every quant type)", fixture("gguf/quants.gguf")),
        ("split gguf", fixture("gguf/split/model-00001-of-00003.gguf")),
        ("pytorch zip", fixture("pytorch/valid/state_dict.pt")),
        ("pytorch legacy", fixture("pytorch/valid/views_legacy.pt")),
        ("tpack", fixture("tpack/source.tpack")),
        ("tpack (appended)", fixture("tpack/appended.tpack")),
        ("npy", fixture("numpy/f64_fortran.npy")),
        ("npz", fixture("numpy/compressed.npz")),
        ("onnx", fixture("onnx/raw.onnx")),
        ("ztensor", fixture("ztensor/dense.zt")),
        ("ztensor (zstd)", fixture("ztensor/zstd.zt")),
        ("onnx (external data)", fixture("onnx/external.onnx")),
        ("hdf5 (keras weights)", fixture("hdf5/model.weights.h5")),
        ("keras archive", fixture("hdf5/model.keras")),
    ]
}

fn outputs(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn every_reader_into_every_writer() {
    let (mut ok, mut refused) = (Vec::new(), Vec::new());
    for (rname, input) in readers() {
        assert!(input.exists(), "{}", input.display());
        for w in WRITERS {
            let dir = tempfile::tempdir().unwrap();
            let out = tensorcast()
                .arg("convert")
                .arg(&input)
                .arg("-o")
                .arg(dir.path().join(w.file))
                .args(w.args)
                .output()
                .unwrap();
            let pair = format!("{rname} -> {}", w.name);
            if out.status.success() {
                let expected = adapt(
                    open(&input, &Default::default()).unwrap(),
                    Registry::builtin().get(w.format).unwrap(),
                    &ConvertOptions::default(),
                )
                .unwrap_or_else(|e| panic!("{pair}: {e}"));
                // A small input may fit one shard: then there is no index.
                let back = [w.read_back, w.file]
                    .map(|f| dir.path().join(f))
                    .into_iter()
                    .find(|p| p.exists())
                    .unwrap();
                let got = open(&back, &Default::default())
                    .unwrap_or_else(|e| panic!("{pair}: output unreadable: {e}"));
                let found = diff(&*expected, &*got, None).unwrap();
                assert!(
                    found.is_empty(),
                    "{pair}: {:?}",
                    found.iter().map(|d| d.to_string()).collect::<Vec<_>>()
                );
                ok.push(pair);
            } else {
                let err = String::from_utf8_lossy(&out.stderr).into_owned();
                assert_eq!(out.status.code(), Some(1), "{pair}: {err}");
                assert!(err.starts_with("error: "), "{pair}: {err}");
                assert!(!err.contains("panicked"), "{pair}: {err}");
                assert!(
                    outputs(dir.path()).is_empty(),
                    "{pair}: refused but left {:?}",
                    outputs(dir.path())
                );
                refused.push(format!("{pair}: {}", err.trim()));
            }
        }
    }
    eprintln!(
        "{} pairs converted and read back equal; {} refused up front:",
        ok.len(),
        refused.len()
    );
    for r in &refused {
        eprintln!("  {r}");
    }
    assert!(ok.len() >= 40, "only {} pairs work", ok.len());
}
