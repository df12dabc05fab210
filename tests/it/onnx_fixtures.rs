//! ONNX initializers against the onnx package (fixtures/onnx/generate.py,
//! onnx 1.23.2) through the facade and the CLI: raw data is borrowed, each
//! reject fails with its rule, conversion to safetensors is read equal by
//! the reference crate. (That names, dtypes, shapes and bytes equal what
//! onnx.numpy_helper.to_array reads is tested in crates/onnx.)

use crate::common::{fixture, tensorcast, unhex};

fn expected() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixture("onnx/expected.json")).unwrap()).unwrap()
}

#[test]
fn raw_data_is_borrowed_from_the_model_not_copied() {
    let source = tensorcast::open(fixture("onnx/raw.onnx"), &Default::default()).unwrap();
    let i = source.tensors().iter().position(|t| t.name == "raw.f32").unwrap();
    assert!(matches!(
        source.tensor_data(i).unwrap(),
        tensorcast::TensorData::Located { .. }
    ));
}

#[test]
fn each_reject_fails_with_its_rule() {
    let rules: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("onnx/reject/expected.json")).unwrap()).unwrap();
    for (file, rule) in rules.as_object().unwrap() {
        let e = match tensorcast::open(fixture(&format!("onnx/reject/{file}")), &Default::default()) {
            Ok(_) => panic!("{file} opened"),
            Err(e) => e,
        };
        let (format, id) = rule.as_str().unwrap().split_once('/').unwrap();
        assert_eq!(e.rule(), Some(id), "{file}: {e}");
        assert!(e.to_string().contains(format), "{file}: {e}");
    }
}

#[test]
fn onnx_converts_to_safetensors_read_equal_by_the_reference_crate() {
    let dir = tempfile::tempdir().unwrap();
    let exp = expected();
    for model in ["raw.onnx", "external.onnx"] {
        let out = dir.path().join(format!("{model}.safetensors"));
        tensorcast()
            .arg("convert")
            .arg(fixture(&format!("onnx/{model}")))
            .arg("-o")
            .arg(&out)
            .assert()
            .success();
        let bytes = std::fs::read(&out).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        for want in exp["models"][model].as_array().unwrap() {
            let t = st.tensor(want["name"].as_str().unwrap()).unwrap();
            assert_eq!(
                t.data(),
                unhex(want["hex"].as_str().unwrap()).as_slice(),
                "{model}"
            );
        }
    }
}

/// External data "beside the model" does not reach elsewhere through a
/// symbolic link: a link to a file outside the model's folder is refused by
/// rule (external-path); a link within the folder is followed.
#[cfg(unix)]
#[test]
fn external_data_linked_from_outside_the_folder_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let (model_dir, elsewhere) = (root.path().join("model"), root.path().join("elsewhere"));
    std::fs::create_dir_all(&model_dir).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::copy(fixture("onnx/external.onnx"), model_dir.join("external.onnx")).unwrap();
    std::fs::copy(fixture("onnx/external.onnx.data"), elsewhere.join("data")).unwrap();
    std::os::unix::fs::symlink(elsewhere.join("data"), model_dir.join("external.onnx.data")).unwrap();
    let out = root.path().join("out.safetensors");
    let r = crate::common::tensorcast()
        .arg("convert")
        .arg(model_dir.join("external.onnx"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("outside the model's folder") && err.contains("external-path"),
        "{err}"
    );
    assert!(!out.exists());
    // Within the folder a link is fine.
    std::fs::remove_file(model_dir.join("external.onnx.data")).unwrap();
    std::fs::copy(fixture("onnx/external.onnx.data"), model_dir.join("real.data")).unwrap();
    std::os::unix::fs::symlink(model_dir.join("real.data"), model_dir.join("external.onnx.data")).unwrap();
    crate::common::tensorcast()
        .arg("convert")
        .arg(model_dir.join("external.onnx"))
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
}
