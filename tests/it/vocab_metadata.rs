//! A real-sized vocabulary (issue 17): the typed metadata of a GGUF with a
//! 262 144-token BPE vocabulary, scores, token types and merges survives
//! GGUF → tpack → GGUF byte for byte, and GGUF → safetensors writes the same
//! `__metadata__` text whether or not tpack sits in between.

#[path = "../../benches/support/mod.rs"]
mod support;

use crate::common;
use crate::common::tensorcast;
use std::path::Path;
use tensorcast::tpack::TpackFile;
use tensorcast::Source;

fn convert(from: &Path, to: &Path) {
    tensorcast()
        .arg("-q")
        .arg("convert")
        .arg(from)
        .arg("-o")
        .arg(to)
        .assert()
        .success();
}

/// The safetensors header's `__metadata__`, as read by the reference crate,
/// one `key=value` line per key in key order.
fn st_metadata(path: &Path) -> String {
    let meta = common::reference_read(path).1.expect("metadata kept");
    let mut keys: Vec<_> = meta.keys().collect();
    keys.sort();
    keys.iter().map(|k| format!("{k}={}\n", meta[*k])).collect()
}

#[test]
fn a_256k_vocabulary_round_trips_through_tpack_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("vocab.gguf");
    support::real_gguf::write_vocab_only(&input);
    let original = std::fs::read(&input).unwrap();
    assert!(
        original.len() > 8 << 20,
        "the vocabulary is real-sized: {} bytes",
        original.len()
    );

    let tpack = dir.path().join("vocab.tpack");
    let back = dir.path().join("back.gguf");
    convert(&input, &tpack);
    convert(&tpack, &back);
    assert!(
        std::fs::read(&back).unwrap() == original,
        "GGUF -> tpack -> GGUF changed bytes"
    );

    // The large arrays sit in chunks (spec §2.3), not in the manifest's
    // JSON, which stays small.
    let f = TpackFile::open(&tpack, &Default::default()).unwrap();
    let mut stored: Vec<&str> = f.manifest().stored.iter().map(|s| s.key.as_str()).collect();
    stored.sort();
    assert_eq!(
        stored,
        [
            "tokenizer.ggml.merges",
            "tokenizer.ggml.scores",
            "tokenizer.ggml.token_type",
            "tokenizer.ggml.tokens"
        ]
    );
    let (slot, _) = f.commit();
    assert!(
        slot.manifest_raw_len < 16 << 10,
        "manifest of {} bytes",
        slot.manifest_raw_len
    );
    let chunks_before: Vec<_> = f.manifest().stored.clone();
    let metadata_before = f.metadata().clone();
    drop(f);

    // An append keeps the stored arrays where they are: the vocabulary is
    // not written again, and reads back the same.
    let extra = dir.path().join("extra.safetensors");
    common::write_big_f32(&extra, 1, 16);
    let size_before = std::fs::metadata(&tpack).unwrap().len();
    tensorcast()
        .arg("-q")
        .arg("append")
        .arg(&tpack)
        .arg(&extra)
        .assert()
        .success();
    let grown = std::fs::metadata(&tpack).unwrap().len() - size_before;
    assert!(
        grown < 64 << 10,
        "an append of 64 bytes grew the file by {grown} bytes"
    );
    let f = TpackFile::open(&tpack, &Default::default()).unwrap();
    assert_eq!(f.manifest().stored, chunks_before);
    assert!(*f.metadata() == metadata_before, "metadata changed by an append");
    assert_eq!(f.tensors().len(), 3);
    drop(f);

    let direct = dir.path().join("direct.safetensors");
    let via = dir.path().join("via.safetensors");
    convert(&input, &direct);
    convert(&tpack, &via);
    let text = st_metadata(&direct);
    // Arrays become JSON arrays of the same length and values.
    let array = |key: &str| -> Vec<serde_json::Value> {
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap();
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    let (tokens, merges) = (array("tokenizer.ggml.tokens"), array("tokenizer.ggml.merges"));
    assert_eq!(tokens.len(), support::real_gguf::VOCAB);
    assert_eq!(
        array("tokenizer.ggml.token_type").len(),
        support::real_gguf::VOCAB
    );
    assert_eq!(
        array("tokenizer.ggml.scores")[1],
        serde_json::json!(-0.001f32 as f64)
    );
    assert_eq!(merges.len(), support::real_gguf::VOCAB - 259);
    let first_merge = format!("{} {}", tokens[0].as_str().unwrap(), tokens[1].as_str().unwrap());
    assert_eq!(merges[0], first_merge.as_str());
    assert_eq!(text, st_metadata(&via));
}
