//! NumPy files against numpy: every fixture converts to safetensors with the
//! values `np.load` returns; rejects fail with their rule; `.npz` output has
//! valid CRCs and reads back identically. (That our headers are numpy's,
//! byte for byte, is tested in crates/numpy.)

use crate::common::{fixture, reference_read, tensorcast, unhex};
use serde_json::Value as Json;
use std::io::Read;

fn json(rel: &str) -> Json {
    serde_json::from_str(&std::fs::read_to_string(fixture(rel)).unwrap()).unwrap()
}

#[test]
fn every_fixture_matches_np_load() {
    let expected = json("numpy/expected.json");
    let dir = tempfile::tempdir().unwrap();
    let files = expected.as_object().unwrap();
    assert!(files.len() >= 16);
    for (file, tensors) in files {
        // Our reader itself, every dtype (complex128 included).
        let source = tensorcast::open(fixture(&format!("numpy/{file}")), &Default::default()).unwrap();
        let want = tensors.as_object().unwrap();
        assert_eq!(source.tensors().len(), want.len(), "{file}");
        for (i, t) in source.tensors().iter().enumerate() {
            let w = &want[t.name.as_str()];
            assert_eq!(
                t.dtype.to_string(),
                w["dtype"].as_str().unwrap(),
                "{file}:{}",
                t.name
            );
            let bytes = source.tensor_data(i).unwrap().into_vec().unwrap();
            assert!(
                bytes == unhex(w["hex"].as_str().unwrap()),
                "{file}:{}: bytes differ from np.load",
                t.name
            );
        }
        // Through safetensors, read by the reference crate, where it has the dtypes.
        if want.values().any(|w| w["dtype"] == "C128") {
            continue;
        }
        let out = dir.path().join(format!("{file}.safetensors"));
        tensorcast()
            .arg("convert")
            .arg(fixture(&format!("numpy/{file}")))
            .arg("-o")
            .arg(&out)
            .assert()
            .success();
        let (got, _) = reference_read(&out);
        assert_eq!(got.len(), want.len(), "{file}");
        for (name, dtype, shape, data) in &got {
            let w = &want[name.as_str()];
            assert_eq!(dtype, w["dtype"].as_str().unwrap(), "{file}:{name}");
            let ws: Vec<usize> = w["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(shape, &ws, "{file}:{name}");
            assert!(
                data == &unhex(w["hex"].as_str().unwrap()),
                "{file}:{name}: bytes differ from np.load"
            );
        }
    }
}

#[test]
fn rejects_cite_their_rule() {
    let manifest = json("numpy/reject/manifest.json");
    for (file, rule) in manifest.as_object().unwrap() {
        let out = tensorcast()
            .arg("inspect")
            .arg(fixture(&format!("numpy/reject/{file}")))
            .assert()
            .code(1);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        let rule = rule.as_str().unwrap();
        assert!(
            err.contains(&format!("[rule numpy/{rule}]")),
            "{file}: expected {rule}: {err}"
        );
    }
}

#[test]
fn npz_output_reads_back_and_has_valid_crcs() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture("numpy/all.npz");
    let out = dir.path().join("copy.npz");
    tensorcast()
        .arg("convert")
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    // The zip crate checks every member's CRC while reading it.
    let bytes = std::fs::read(&out).unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).unwrap();
    let mut names = Vec::new();
    for i in 0..zip.len() {
        let mut m = zip.by_index(i).unwrap();
        names.push(m.name().unwrap().to_string());
        let mut v = Vec::new();
        m.read_to_end(&mut v).unwrap();
        assert!(v.starts_with(b"\x93NUMPY\x01\x00"));
    }
    assert!(names.iter().all(|n| n.ends_with(".npy")));
    // Same tensors, same bytes (Fortran and big-endian inputs come out C-order LE).
    let a = tensorcast::open(&src, &Default::default()).unwrap();
    let b = tensorcast::open(&out, &Default::default()).unwrap();
    assert_eq!(a.tensors().len(), b.tensors().len());
    for (i, t) in a.tensors().iter().enumerate() {
        let j = b.find(&t.name).unwrap();
        assert_eq!(b.tensors()[j].shape, t.shape);
        assert_eq!(
            a.tensor_data(i).unwrap().into_vec().unwrap(),
            b.tensor_data(j).unwrap().into_vec().unwrap(),
            "{}",
            t.name
        );
    }
}

#[test]
fn npz_refuses_dtypes_numpy_lacks_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.npz");
    let res = tensorcast()
        .arg("convert")
        .arg(fixture("safetensors/cast/source.safetensors"))
        .arg("-o")
        .arg(&out)
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&res.get_output().stderr).into_owned();
    assert!(
        err.contains("numpy/write-dtype") && err.contains("--dtype f32"),
        "{err}"
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing written"
    );
    tensorcast()
        .arg("convert")
        .arg(fixture("safetensors/cast/source.safetensors"))
        .arg("-o")
        .arg(&out)
        .args(["--dtype", "f32"])
        .assert()
        .success();
}
