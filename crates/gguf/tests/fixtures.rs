//! The GGUF reader against files gguf-py 0.19 wrote (fixtures/gguf/generate.py):
//! metadata of every value type in v1, v2 and v3 as gguf-py reads it, and a
//! big-endian file equal to its little-endian twin. Tests that go through the
//! facade or the CLI are in the workspace's tests/it.

use serde_json::Value as Json;
use std::path::PathBuf;
use tensorcast_core::{Source, Value};
use tensorcast_gguf::GgufFile;

/// A committed fixture (the workspace's fixtures/ folder).
fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(rel)
}

fn json(rel: &str) -> Json {
    serde_json::from_slice(&std::fs::read(fixture(rel)).unwrap()).unwrap()
}

fn all_bytes(s: &dyn Source, i: usize) -> Vec<u8> {
    s.tensor_data(i).unwrap().into_vec().unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// gguf-py's type names for one of our values: `["UINT8"]`, `["ARRAY", "INT32"]`.
fn type_names(v: &Value) -> Vec<&'static str> {
    fn name(v: &Value) -> &'static str {
        match v {
            Value::U8(_) => "UINT8",
            Value::I8(_) => "INT8",
            Value::U16(_) => "UINT16",
            Value::I16(_) => "INT16",
            Value::U32(_) => "UINT32",
            Value::I32(_) => "INT32",
            Value::F32(_) => "FLOAT32",
            Value::Bool(_) => "BOOL",
            Value::Str(_) => "STRING",
            Value::U64(_) => "UINT64",
            Value::I64(_) => "INT64",
            Value::F64(_) => "FLOAT64",
            Value::Array(..) => "ARRAY",
            _ => "?",
        }
    }
    match v {
        Value::Array(a) => vec!["ARRAY", a.get(0).as_ref().map(name).unwrap_or("?")],
        other => vec![name(other)],
    }
}

fn assert_metadata_matches_gguf_py(source: &dyn Source, expected: &Json, what: &str) {
    let fields = expected["fields"].as_array().unwrap();
    let ours: Vec<(&str, &Value)> = source.metadata().iter().collect();
    assert_eq!(ours.len(), fields.len(), "{what}: key count");
    for ((key, value), f) in ours.iter().zip(fields) {
        assert_eq!(*key, f["key"], "{what}: key order");
        let types: Vec<&str> = f["types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert_eq!(type_names(value), types, "{what}: {key} type");
        assert_eq!(value.to_json(), f["value"], "{what}: {key} value");
    }
    let tensors = expected["tensors"].as_array().unwrap();
    assert_eq!(source.tensors().len(), tensors.len());
    for (i, t) in tensors.iter().enumerate() {
        let info = &source.tensors()[i];
        assert_eq!(info.name, t["name"]);
        let shape: Vec<u64> = t["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(info.shape, shape, "{what}: {} shape (row-major)", info.name);
        assert_eq!(info.dtype.name(), t["type"]);
        assert_eq!(all_bytes(source, i), unhex(t["hex"].as_str().unwrap()));
    }
}

#[test]
fn metadata_of_all_13_types_and_arrays_matches_gguf_py_in_v1_v2_v3() {
    let expected = json("gguf/metadata.expected.json");
    for (rel, version) in [
        ("gguf/metadata.gguf", 3),
        ("gguf/metadata_v2.gguf", 2),
        ("gguf/metadata_v1.gguf", 1),
    ] {
        let file = GgufFile::open(&fixture(rel), &Default::default()).unwrap();
        assert_eq!(file.version(), version);
        assert_metadata_matches_gguf_py(&file, &expected, rel);
    }
}

#[test]
fn big_endian_file_reads_like_its_little_endian_twin() {
    let be = GgufFile::open(&fixture("gguf/big_endian.gguf"), &Default::default()).unwrap();
    let le = GgufFile::open(&fixture("gguf/big_endian_twin.gguf"), &Default::default()).unwrap();
    assert!(be.is_big_endian() && !le.is_big_endian());
    assert_eq!(be.metadata(), le.metadata());
    assert_eq!(be.tensors().len(), 7);
    for i in 0..le.tensors().len() {
        assert_eq!(be.tensors()[i].shape, le.tensors()[i].shape);
        assert_eq!(all_bytes(&be, i), all_bytes(&le, i), "{}", le.tensors()[i].name);
    }
}
