//! `tensorcast refs` from the command line: the not-virtualizable list on
//! stderr, chunk ranges that lie inside the file and tile each tensor
//! exactly, and the output rules of every command. (The references are
//! opened by fsspec/zarr/xarray in python/tests/test_refs.py.)

use crate::common::{fixture, tensorcast};
use serde_json::Value as Json;

fn refs(args: &[&str], out: &std::path::Path) -> (i32, String, Json) {
    let o = tensorcast()
        .arg("refs")
        .args(args)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let json = std::fs::read(out)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Json::Null);
    (o.status.code().unwrap_or(-1), stderr, json)
}

#[test]
fn blocks_are_listed_by_name_and_plain_tensors_tile_their_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let src = fixture("gguf/align64.gguf");
    let (code, stderr, json) = refs(&[src.to_str().unwrap(), "--chunk-bytes", "64"], &out);
    assert_eq!(code, 0, "{stderr}");
    let listed: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("not virtualizable: "))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(listed, ["q"]);
    let refs = json["refs"].as_object().unwrap();
    let source = tensorcast::open(&src, &Default::default()).unwrap();
    let file_len = std::fs::metadata(&src).unwrap().len();
    for (i, t) in source.tensors().iter().enumerate() {
        if t.name == "q" {
            assert!(!refs.contains_key(&format!("{}/.zarray", t.name)));
            continue;
        }
        let mut ranges: Vec<(u64, u64)> = refs
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{}/", t.name)) && !k.contains("/."))
            .map(|(_, v)| (v[1].as_u64().unwrap(), v[2].as_u64().unwrap()))
            .collect();
        ranges.sort();
        let start = source.raw_location(i).unwrap().offset;
        assert_eq!(ranges.first().unwrap().0, start, "{}", t.name);
        assert!(ranges.windows(2).all(|w| w[0].0 + w[0].1 == w[1].0), "{}", t.name);
        assert_eq!(ranges.iter().map(|r| r.1).sum::<u64>(), t.nbytes, "{}", t.name);
        assert!(ranges.last().map(|r| r.0 + r.1).unwrap() <= file_len);
    }
}

#[test]
fn an_existing_output_is_refused_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    std::fs::write(&out, "keep").unwrap();
    let src = fixture("numpy/f32.npy");
    let (code, stderr, _) = refs(&[src.to_str().unwrap()], &out);
    assert_eq!(code, 1);
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep");
    let (code, _, json) = refs(&[src.to_str().unwrap(), "--force"], &out);
    assert_eq!(code, 0);
    assert_eq!(json["version"], 1);
}

/// A Hugging Face model folder's references point into its weights file
/// beside config.json, at the bytes the safetensors header places them.
#[test]
fn a_model_folder_is_referenced_through_its_weights_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let folder = fixture("model/llama/hf");
    let (code, stderr, json) = refs(&[folder.to_str().unwrap(), "--url", "s3://bucket/llama"], &out);
    assert_eq!(code, 0, "{stderr}");
    let weights = tensorcast::open(folder.join("model.safetensors"), &Default::default()).unwrap();
    let refs = json["refs"].as_object().unwrap();
    let mut checked = 0;
    for (i, t) in weights.tensors().iter().enumerate() {
        let Some(Json::Array(r)) = refs
            .get(&format!("{}/0.0", t.name))
            .or_else(|| refs.get(&format!("{}/0", t.name)))
        else {
            continue;
        };
        assert_eq!(r[0], "s3://bucket/llama/model.safetensors", "{}", t.name);
        assert_eq!(
            r[1].as_u64(),
            weights.raw_location(i).map(|l| l.offset),
            "{}",
            t.name
        );
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} tensors referenced: {stderr}");
}

/// An ONNX model with external data: references point into the data file
/// beside the model, named as the model names it.
#[test]
fn onnx_external_data_is_referenced_in_its_own_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let model = fixture("onnx/external.onnx");
    let (code, stderr, json) = refs(
        &[model.to_str().unwrap(), "--url", "s3://b/m/external.onnx"],
        &out,
    );
    assert_eq!(code, 0, "{stderr}");
    let text = json["refs"].to_string();
    assert!(text.contains("s3://b/m/external.onnx.data"), "{text}");
}

/// Dimension names xarray cannot open are refused before refs are written:
/// one name with two lengths, a name twice in one variable, a name that is
/// another variable's but not its 1-D coordinate, and two --dims for one
/// tensor (a usage error, exit 2). Consistent names still work.
#[test]
fn conflicting_dimension_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("model/llama/hf/model.safetensors");
    let input = input.to_str().unwrap();
    let norm = "model.layers.0.input_layernorm.weight";
    let cases: [(&[&str], i32, &str); 4] = [
        (
            &[
                "--dims",
                "model.layers.0.mlp.down_proj.weight=a,b",
                "--dims",
                "model.layers.0.mlp.up_proj.weight=a,b",
            ],
            1,
            "dimension 'a' is",
        ),
        (&["--dims", "lm_head.weight=v,v"], 1, "twice"),
        (
            &["--dims", &format!("lm_head.weight=vocab,{norm}")],
            1,
            "also the name of a variable",
        ),
        (
            &["--dims", "lm_head.weight=v,h", "--dims", "lm_head.weight=x,y"],
            2,
            "twice",
        ),
    ];
    for (flags, code, said) in cases {
        let out = dir.path().join("r.json");
        let mut args = vec![input];
        args.extend_from_slice(flags);
        let (got, stderr, _) = refs(&args, &out);
        assert_eq!(got, code, "{flags:?}: {stderr}");
        assert!(stderr.contains(said), "{flags:?}: {stderr}");
        assert!(!out.exists(), "{flags:?}");
    }
    // A 1-D variable as its own dimension's coordinate, shared consistently.
    let out = dir.path().join("ok.json");
    let (got, stderr, json) = refs(
        &[
            input,
            "--dims",
            &format!("{norm}=hidden"),
            "--dims",
            "lm_head.weight=vocab,hidden",
        ],
        &out,
    );
    assert_eq!(got, 0, "{stderr}");
    assert!(json["refs"].is_object() || json.is_object());
}

/// Inlined data is capped (tensorcast::INLINE_CAP): past it a tensor under
/// --inline-below's size is referenced instead, and one named with --inline
/// is refused; memory stays bounded however large the threshold.
#[test]
fn inlining_is_capped() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.safetensors");
    let n = 40usize << 20;
    let header = format!(
        r#"{{"a":{{"dtype":"U8","shape":[{n}],"data_offsets":[0,{n}]}},"b":{{"dtype":"U8","shape":[{n}],"data_offsets":[{n},{}]}}}}"#,
        2 * n
    );
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.resize(bytes.len() + 2 * n, 7);
    std::fs::write(&input, bytes).unwrap();
    let input = input.to_str().unwrap();
    let out = dir.path().join("r.json");
    let (code, stderr, json) = refs(&[input, "--inline-below", "1GB"], &out);
    assert_eq!(code, 0, "{stderr}");
    let made = &json["refs"];
    assert!(
        made["a/0"].as_str().is_some_and(|s| s.starts_with("base64:")),
        "a inlined"
    );
    assert!(made["b/0"].is_array(), "b referenced once the cap is reached");
    let out = dir.path().join("r2.json");
    let (code, stderr, _) = refs(&[input, "--inline", "a", "--inline", "b"], &out);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("tensor 'b'") && stderr.contains("inlining"),
        "{stderr}"
    );
    assert!(!out.exists());
}
