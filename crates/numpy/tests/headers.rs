//! `.npy` headers byte for byte as `np.save` writes them
//! (fixtures/numpy/headers.json, from fixtures/numpy/generate.py).

use serde_json::Value as Json;
use std::path::PathBuf;

fn json(rel: &str) -> Json {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(rel);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn headers_match_what_np_save_writes() {
    for h in json("numpy/headers.json").as_array().unwrap() {
        let shape: Vec<u64> = h["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        let ours = tensorcast_numpy::header::format(h["descr"].as_str().unwrap(), &shape);
        assert_eq!(ours, unhex(h["hex"].as_str().unwrap()), "{h}");
    }
}
