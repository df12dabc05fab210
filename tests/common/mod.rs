//! Helpers shared by the integration tests.
#![allow(dead_code)]

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
