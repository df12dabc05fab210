//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod moto;
pub mod range_server;

use assert_cmd::Command;
use std::path::{Path, PathBuf};

/// Absolute path of a committed fixture.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}

/// The tensorcast binary, ready for arguments.
pub fn tensorcast() -> Command {
    Command::cargo_bin("tensorcast").expect("binary built")
}

/// `n` bytes of deterministic noise (xorshift from `seed`): incompressible,
/// so compressed outputs are as large as the data.
pub fn noise(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 32) as u8
        })
        .collect()
}

/// Decodes a lowercase hex string.
pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// (name, dtype, shape, bytes, metadata) of every tensor, read with the
/// reference `safetensors` crate, in name order.
pub type RefTensor = (String, String, Vec<usize>, Vec<u8>);

/// Every tensor and the metadata of a file, read by the reference crate.
pub fn reference_read(path: &Path) -> (Vec<RefTensor>, Option<std::collections::HashMap<String, String>>) {
    let bytes = std::fs::read(path).expect("read");
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).expect("reference crate reads our file");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("reference crate accepts our file");
    let mut out: Vec<RefTensor> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            (
                name,
                view.dtype().to_string(),
                view.shape().to_vec(),
                view.data().to_vec(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    (out, meta.metadata().clone())
}

/// Writes a safetensors file of `n` F32 tensors (`w.0`, `w.1`, ...) of
/// `elems` pseudo-random small values each: inputs big enough that a
/// conversion or append can be interrupted part-way.
pub fn write_big_f32(path: &Path, n: usize, elems: usize) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::with_capacity(n * elems * 4);
    let mut x = 0x9e3779b97f4a7c15u64;
    for i in 0..n {
        let start = data.len();
        for _ in 0..elems {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Trained-weight-like floats: small magnitudes, random mantissas.
            let v = ((x >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1;
            data.extend_from_slice(&v.to_le_bytes());
        }
        header.insert(
            format!("w.{i}"),
            serde_json::json!({"dtype": "F32", "shape": [elems], "data_offsets": [start, data.len()]}),
        );
    }
    let h = serde_json::to_vec(&header).unwrap();
    let mut file = (h.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(&h);
    file.extend_from_slice(&data);
    std::fs::write(path, file).unwrap();
}

/// Every entry under `dir` with its metadata, symlinks not followed: the
/// walk behind the tests' before/after snapshots of a sandbox.
pub fn walk(dir: &Path) -> Vec<(PathBuf, std::fs::Metadata)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                stack.push(p.clone());
            }
            out.push((p, meta));
        }
    }
    out
}
