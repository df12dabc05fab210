//! The PyTorch writer: each case of fixtures/pytorch/check_writer.py (which
//! torch 2.15 loaded with weights_only=True and mmap=True, equal to the
//! source, tied tensors sharing a storage: writer_check.json) is written
//! again here and must be byte-identical to the output torch checked; read
//! back by our reader it equals its source; every storage record starts
//! 64-byte aligned; tied tensors are one record.

use crate::common::{fixture, tensorcast};
use std::io::Read;

fn cases() -> Vec<(String, serde_json::Value)> {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("pytorch/writer_check.json")).unwrap()).unwrap();
    v.as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn write(case: &serde_json::Value, out: &std::path::Path) {
    let args: Vec<String> = case["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    tensorcast()
        .arg("convert")
        .arg(fixture(case["source"].as_str().unwrap()))
        .arg("-o")
        .arg(out)
        .arg("-q")
        .args(&args)
        .assert()
        .success();
}

#[test]
fn outputs_are_the_bytes_torch_checked() {
    let dir = tempfile::tempdir().unwrap();
    let cases = cases();
    assert_eq!(cases.len(), 7);
    for (name, case) in &cases {
        // The same file name: torch names the archive folder after it.
        let out = dir.path().join(format!("{name}.pt"));
        write(case, &out);
        assert!(
            std::fs::read(&out).unwrap() == std::fs::read(fixture(&format!("pytorch/written/{name}.pt"))).unwrap(),
            "{name}: the writer's output changed since torch checked it (re-run fixtures/pytorch/check_writer.py)"
        );
        assert_eq!(case["torch_load_weights_only"], "equal");
    }
}

#[test]
fn outputs_read_back_equal_to_their_sources() {
    for (name, case) in cases() {
        let written = fixture(&format!("pytorch/written/{name}.pt"));
        let ours = tensorcast::open(&written, &Default::default()).unwrap();
        let mut select = tensorcast::Selection::default();
        for pair in case["args"].as_array().unwrap().chunks(2) {
            select.exclude.push(pair[1].as_str().unwrap().to_string());
        }
        let src = tensorcast::open(fixture(case["source"].as_str().unwrap()), &Default::default()).unwrap();
        let src: Box<dyn tensorcast::Source> = Box::new(tensorcast::Select::new(src, &select).unwrap());
        let src = tensorcast::adapt(
            src,
            tensorcast::Registry::builtin().get("pytorch").unwrap(),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(
            ours.tensors().len(),
            case["tensors"].as_u64().unwrap() as usize,
            "{name}"
        );
        assert!(
            tensorcast::diff(&*ours, &*src, None).unwrap().is_empty(),
            "{name}"
        );
    }
}

#[test]
fn storages_are_aligned_and_tied_tensors_are_one_record() {
    for (name, case) in cases() {
        let bytes = std::fs::read(fixture(&format!("pytorch/written/{name}.pt"))).unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).unwrap();
        let mut storages = 0;
        for i in 0..zip.len() {
            let mut f = zip.by_index(i).unwrap();
            let record = f.name().unwrap().to_string();
            assert!(record.starts_with(&format!("{name}/")), "{record}");
            if record.contains("/data/") {
                storages += 1;
                assert_eq!(f.data_start().unwrap() % 64, 0, "{name}: {record}");
            }
            if record.ends_with("/version") {
                let mut s = String::new();
                f.read_to_string(&mut s).unwrap();
                assert_eq!(s, "3\n");
            }
        }
        let tied: usize = case["storage_groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_array().unwrap().len() - 1)
            .sum();
        let tensors = tensorcast::open(
            fixture(&format!("pytorch/written/{name}.pt")),
            &Default::default(),
        )
        .unwrap()
        .tensors()
        .len();
        assert_eq!(storages + tied, tensors, "{name}: one record per storage");
    }
}

#[test]
fn formats_without_a_torch_storage_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = tensorcast()
        .arg("convert")
        .arg(fixture("safetensors/valid/all_dtypes.safetensors"))
        .arg("-o")
        .arg(dir.path().join("x.pt"))
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("'f4'"), "{stderr}");
    assert!(!dir.path().join("x.pt").exists());
}

/// A name longer than our own reader accepts (64 KiB) is refused by the
/// writer, by rule and before anything is written, rather than written into
/// a checkpoint nothing here reads back.
#[test]
fn names_the_reader_would_refuse_are_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("long.safetensors");
    let name = "n".repeat(70_000);
    let header = format!(r#"{{"{name}":{{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}}}"#);
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend([0u8; 4]);
    std::fs::write(&input, bytes).unwrap();
    let out = dir.path().join("out.pt");
    let r = crate::common::tensorcast()
        .arg("convert")
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(err.contains("70000-byte name"), "{err}");
    assert!(!out.exists());
}
