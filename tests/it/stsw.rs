//! Files written by stsw 1.0 (fixtures/safetensors/stsw, made by its
//! generate.py with stsw itself): read with their gaps and `__version__`,
//! their crc32s checked on read and by verify (zlib CRC-32 or XXH32, as stsw
//! writes either), converted into valid safetensors the reference crate
//! reads, and stsw's cut-header bug refused by name.

use crate::common::{fixture, reference_read, tensorcast, unhex};
use serde_json::Value as Json;

fn expected() -> Json {
    serde_json::from_slice(&std::fs::read(fixture("safetensors/stsw/expected.json")).unwrap()).unwrap()
}

#[test]
fn stsw_files_read_as_stsw_wrote_them_and_convert_to_valid_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    for file in [
        "plain.safetensors",
        "crc_zlib.safetensors",
        "crc_xxh32.safetensors",
    ] {
        let want = &expected()[file];
        let path = fixture(&format!("safetensors/stsw/{file}"));
        let source = tensorcast::open(&path, &Default::default()).unwrap();
        assert_eq!(source.tensors().len(), want.as_object().unwrap().len(), "{file}");
        for (i, t) in source.tensors().iter().enumerate() {
            let w = &want[&t.name];
            assert_eq!(t.dtype.name(), w["dtype"], "{file} {}", t.name);
            assert_eq!(serde_json::json!(t.shape), w["shape"], "{file} {}", t.name);
            let bytes = source.tensor_data(i).unwrap().into_vec().unwrap();
            assert_eq!(bytes, unhex(w["hex"].as_str().unwrap()), "{file} {}", t.name);
        }
        let out = dir.path().join(file);
        tensorcast()
            .args(["convert"])
            .arg(&path)
            .arg("-o")
            .arg(&out)
            .assert()
            .success();
        let (tensors, _) = reference_read(&out);
        for (name, dtype, shape, data) in tensors {
            let w = &want[&name];
            assert_eq!(dtype, w["dtype"].as_str().unwrap());
            assert_eq!(serde_json::json!(shape), w["shape"]);
            assert_eq!(data, unhex(w["hex"].as_str().unwrap()), "{file} {name}");
        }
    }
}

#[test]
fn a_damaged_tensor_fails_its_crc_by_name_in_either_hash() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["crc_zlib.safetensors", "crc_xxh32.safetensors"] {
        let mut bytes = std::fs::read(fixture(&format!("safetensors/stsw/{file}"))).unwrap();
        // Flip the last byte of the second tensor.
        let source =
            tensorcast::open(fixture(&format!("safetensors/stsw/{file}")), &Default::default()).unwrap();
        let t = &source.tensors()[1];
        let last = (t.file_offset.unwrap() + t.nbytes - 1) as usize;
        bytes[last] ^= 0x40;
        let path = dir.path().join(file);
        std::fs::write(&path, &bytes).unwrap();
        let out = tensorcast().arg("verify").arg(&path).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&t.name) && stderr.contains("stsw-crc"),
            "{file}: {stderr}"
        );
        let damaged = tensorcast::open(&path, &Default::default()).unwrap();
        let e = damaged.tensor_data(1).err().unwrap();
        assert_eq!(e.rule(), Some("stsw-crc"), "{e}");
        // The other tensors still read.
        assert!(damaged.tensor_data(0).is_ok() && damaged.tensor_data(2).is_ok());
    }
}

#[test]
fn stsws_cut_header_is_refused_naming_the_bug() {
    let e = tensorcast::open(
        fixture("safetensors/stsw/crc_overrun.safetensors"),
        &Default::default(),
    )
    .err()
    .unwrap();
    assert_eq!(e.rule(), Some("stsw-header-overrun"), "{e}");
    assert!(e.to_string().contains("known stsw bug"), "{e}");
}

/// A safetensors file with this header and `data` bytes.
fn file(header: &str, data: usize) -> Vec<u8> {
    let mut text = header.as_bytes().to_vec();
    text.resize(text.len().next_multiple_of(8), b' ');
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.resize(out.len() + data, 0);
    out
}

#[test]
fn stsw_allowances_hold_only_in_files_that_say_stsw() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // A crc32 field without "__version__".
        (
            r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4],"crc32":1}}"#,
            4,
            "stsw-field-outside-stsw",
        ),
        // A gap without "__version__".
        (
            r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[64,68]}}"#,
            68,
            "data-gap",
        ),
        // stsw's gaps are alignment: a gap of 64 bytes or more is refused.
        (
            r#"{"__version__":"1.0","a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[128,132]}}"#,
            192,
            "data-gap",
        ),
        // A file stsw never finished.
        (
            r#"{"__version__":"1.0","__incomplete__":true,"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#,
            64,
            "stsw-incomplete",
        ),
    ];
    for (header, data, rule) in cases {
        let path = dir.path().join("x.safetensors");
        std::fs::write(&path, file(header, data)).unwrap();
        let e = tensorcast::open(&path, &Default::default()).err().unwrap();
        assert_eq!(e.rule(), Some(rule), "{header}: {e}");
    }
}
