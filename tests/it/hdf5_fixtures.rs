//! HDF5 and Keras inputs (fixtures/hdf5, made by h5py 3.16 and Keras 3.15
//! with the torch backend; generate.py and the pins beside them): every
//! numeric dataset converts to safetensors equal to h5py's array byte for
//! byte (the bytes committed in NAME.expected.safetensors, the large ones
//! deflated in NAME.expected-big.zip), root attributes are metadata, strings/compounds/vlen/
//! references are listed and refused by name, and each reject fixture fails
//! with its rule.

use crate::common::{fixture, reference_read, tensorcast};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

const VALID: &[&str] = &["v0.h5", "latest.h5", "model.weights.h5", "model.keras"];

fn expected(name: &str) -> Json {
    serde_json::from_slice(&std::fs::read(fixture(&format!("hdf5/{name}.expected.json"))).unwrap()).unwrap()
}

/// h5py's bytes of a large tensor, from the fixture's deflated zip.
fn big_bytes(file: &str, tensor: &str) -> Vec<u8> {
    use std::io::Read;
    let zip = std::fs::File::open(fixture(&format!("hdf5/{file}.expected-big.zip"))).unwrap();
    let mut zip = zip::ZipArchive::new(zip).unwrap();
    let mut member = zip.by_name(&format!("{}.bin", tensor.replace('/', "."))).unwrap();
    let mut out = Vec::new();
    member.read_to_end(&mut out).unwrap();
    out
}

#[test]
fn every_numeric_dataset_converts_equal_to_h5py() {
    let dir = tempfile::tempdir().unwrap();
    for name in VALID {
        let spec = expected(name);
        let out = dir.path().join(format!("{name}.safetensors"));
        tensorcast()
            .arg("convert")
            .arg(fixture(&format!("hdf5/{name}")))
            .arg("-o")
            .arg(&out)
            .args(["--exclude", "refused/*"])
            .assert()
            .success();
        let (got, _) = reference_read(&out);
        let (want, _) = reference_read(&fixture(&format!("hdf5/{name}.expected.safetensors")));
        let names: Vec<&str> = spec["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let got_names: Vec<&str> = got.iter().map(|t| t.0.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(got_names, sorted, "{name}: tensor names");
        for t in &got {
            match want.iter().find(|w| w.0 == t.0) {
                Some(w) => assert_eq!(t, w, "{name}: {}", t.0),
                None => {
                    let big = &spec["big"][&t.0];
                    assert_eq!(
                        format!("{:x}", Sha256::digest(&t.3)),
                        big["sha256"].as_str().unwrap(),
                        "{name}: {}",
                        t.0
                    );
                    assert_eq!(t.3, big_bytes(name, &t.0), "{name}: {}", t.0);
                    let shape: Vec<usize> = big["shape"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d.as_u64().unwrap() as usize)
                        .collect();
                    assert_eq!(t.2, shape, "{name}: {}", t.0);
                }
            }
        }
    }
}

#[test]
fn attributes_are_metadata_and_other_types_are_listed_then_refused() {
    for name in VALID {
        let spec = expected(name);
        let out = tensorcast()
            .args(["inspect", "--json"])
            .arg(fixture(&format!("hdf5/{name}")))
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}");
        let json: Json = serde_json::from_slice(&out.stdout).unwrap();
        for (k, v) in spec["attrs"].as_object().unwrap() {
            assert_eq!(&json["metadata"][k], v, "{name}: attribute {k}");
        }
        if *name == "model.keras" {
            assert_eq!(
                json["metadata"]["keras.config"], spec["config"],
                "the archive's config.json"
            );
        }
        let listed: Vec<&str> = json["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        for refused in spec["refused"].as_object().unwrap().keys() {
            assert!(listed.contains(&refused.as_str()), "{name}: {refused} listed");
        }
    }
    // Converting without excluding them names the first refused dataset.
    let dir = tempfile::tempdir().unwrap();
    let out = tensorcast()
        .arg("convert")
        .arg(fixture("hdf5/v0.h5"))
        .arg("-o")
        .arg(dir.path().join("x.safetensors"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refused/") && stderr.contains("[rule hdf5/unsupported-dtype]"),
        "{stderr}"
    );
}

#[test]
fn every_reject_fixture_fails_with_its_rule() {
    let manifest: Json =
        serde_json::from_slice(&std::fs::read(fixture("hdf5/reject/manifest.json")).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for entry in manifest.as_array().unwrap() {
        let file = entry["file"].as_str().unwrap();
        let rule = entry["rule"].as_str().unwrap();
        let args: Vec<&str> = entry["args"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap()).collect())
            .unwrap_or_default();
        let out = tensorcast()
            .arg("convert")
            .arg(fixture(&format!("hdf5/reject/{file}")))
            .arg("-o")
            .arg(dir.path().join("out.safetensors"))
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{file}: {stderr}");
        assert!(
            stderr.contains(&format!("[rule {rule}]")),
            "{file}: expected {rule}: {stderr}"
        );
        assert!(
            stderr.contains(file),
            "{file}: the message names the file: {stderr}"
        );
    }
}

#[test]
fn verify_and_diff_read_hdf5_like_any_input() {
    tensorcast()
        .arg("verify")
        .arg(fixture("hdf5/latest.h5"))
        .assert()
        .success();
    // A fletcher32 mismatch is damage verify reports by tensor.
    let out = tensorcast()
        .arg("verify")
        .arg(fixture("hdf5/reject/checksum.h5"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let all = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        all.contains("tensor 'w'") && all.contains("[rule hdf5/read]"),
        "{all}"
    );
    // The archive's weights are the .weights.h5 file's, and both are h5py's.
    for (a, b) in [
        ("hdf5/model.keras", "hdf5/model.weights.h5"),
        (
            "hdf5/model.weights.h5",
            "hdf5/model.weights.h5.expected.safetensors",
        ),
    ] {
        tensorcast()
            .arg("diff")
            .arg(fixture(a))
            .arg(fixture(b))
            .assert()
            .success();
    }
}
