//! ONNX initializers against the onnx package (fixtures/onnx/generate.py,
//! onnx 1.23.2): names, dtypes, shapes and bytes equal what
//! onnx.numpy_helper.to_array reads, from raw_data, typed fields and an
//! external data file; metadata carries the model's properties; each reject
//! fails with its rule; conversion to safetensors is read equal by the
//! reference crate.

use crate::common::{fixture, tensorcast, unhex};

fn expected() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixture("onnx/expected.json")).unwrap()).unwrap()
}

#[test]
fn initializers_equal_the_onnx_packages() {
    let exp = expected();
    let mut count = 0;
    for (model, tensors) in exp["models"].as_object().unwrap() {
        let source = tensorcast::open(fixture(&format!("onnx/{model}")), &Default::default()).unwrap();
        assert_eq!(source.format(), "onnx");
        let tensors = tensors.as_array().unwrap();
        assert_eq!(source.tensors().len(), tensors.len(), "{model}");
        for (i, (got, want)) in source.tensors().iter().zip(tensors).enumerate() {
            assert_eq!(got.name, want["name"].as_str().unwrap(), "{model}");
            assert_eq!(
                got.dtype.to_string(),
                want["dtype"].as_str().unwrap(),
                "{model} {}",
                got.name
            );
            let shape: Vec<u64> = want["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .collect();
            assert_eq!(got.shape, shape, "{model} {}", got.name);
            let bytes = source.tensor_data(i).unwrap().into_vec().unwrap();
            assert_eq!(
                bytes,
                unhex(want["hex"].as_str().unwrap()),
                "{model} {}",
                got.name
            );
            count += 1;
        }
    }
    assert_eq!(count, 41);
    let raw = tensorcast::open(fixture("onnx/raw.onnx"), &Default::default()).unwrap();
    let meta = |k: &str| raw.metadata().get(k).map(|v| v.preview(60));
    assert_eq!(meta("onnx.metadata.author").as_deref(), Some("tensorcast"));
    assert_eq!(meta("onnx.producer_name").as_deref(), Some("tensorcast-fixtures"));
    assert_eq!(meta("onnx.opset.ai.onnx").as_deref(), Some("21"));
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
