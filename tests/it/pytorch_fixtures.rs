//! PyTorch checkpoints against torch: every valid fixture converts to
//! safetensors with the tensors `torch.load` returns (bit for bit), and every
//! hostile fixture is refused with its rule, without running its payload.

use crate::common;
use crate::common::{fixture, reference_read, tensorcast, unhex};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::path::Path;

fn expected(name: &str) -> Json {
    let text =
        std::fs::read_to_string(fixture(&format!("pytorch/valid/{name}.expected.json"))).expect("expected");
    serde_json::from_str(&text).expect("json")
}

fn valid_fixtures() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture("pytorch/valid"))
        .expect("dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
        .filter(|n| !n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

fn contains_opaque(v: &Json) -> bool {
    match v {
        Json::Object(m) => m.contains_key("__opaque__") || m.values().any(contains_opaque),
        Json::Array(a) => a.iter().any(contains_opaque),
        _ => false,
    }
}

/// A fixture holding complex128, which safetensors has no dtype for: read
/// directly and compared with torch's values, and into tpack and back; the
/// safetensors writer refuses it by tensor name.
fn check_complex128_fixture(name: &str, exp: &Json) {
    let path = fixture(&format!("pytorch/valid/{name}"));
    let dir = tempfile::tempdir().unwrap();
    let tp = dir.path().join("out.tpack");
    tensorcast()
        .arg("convert")
        .arg(&path)
        .arg("-o")
        .arg(&tp)
        .assert()
        .success();
    for file in [path.clone(), tp] {
        let source = tensorcast::open(&file, &Default::default()).unwrap();
        let want = exp["tensors"].as_object().unwrap();
        assert_eq!(source.tensors().len(), want.len(), "{name}");
        for (i, t) in source.tensors().iter().enumerate() {
            let w = &want[&t.name];
            assert_eq!(
                t.dtype.to_string(),
                w["dtype"].as_str().unwrap(),
                "{name} {}",
                t.name
            );
            let bytes = source.tensor_data(i).unwrap().into_vec().unwrap();
            assert_eq!(
                bytes,
                common::unhex(w["hex"].as_str().unwrap()),
                "{name} {} ({})",
                t.name,
                file.display()
            );
        }
    }
    let out = tensorcast()
        .arg("convert")
        .arg(&path)
        .arg("-o")
        .arg(dir.path().join("x.safetensors"))
        .assert()
        .code(1);
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("complex128"));
}

/// Converts one fixture with its flags and compares against torch's values.
fn check_fixture(name: &str) {
    let exp = expected(name);
    if exp["tensors"]
        .as_object()
        .unwrap()
        .values()
        .any(|t| t["dtype"] == "C128")
    {
        return check_complex128_fixture(name, &exp);
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    let flags: Vec<String> = exp["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    tensorcast()
        .arg("convert")
        .arg(fixture(&format!("pytorch/valid/{name}")))
        .arg("-o")
        .arg(&out)
        .args(&flags)
        .assert()
        .success();
    let (tensors, meta) = reference_read(&out);
    let got: BTreeMap<&str, _> = tensors.iter().map(|t| (t.0.as_str(), t)).collect();
    let want = exp["tensors"].as_object().unwrap();
    let want_names: Vec<&str> = want.keys().map(|k| k.as_str()).collect();
    let got_names: Vec<&str> = got.keys().copied().collect();
    assert_eq!(got_names, want_names, "{name}: tensor names");
    for (tname, w) in want {
        let (_, dtype, shape, data) = got[tname.as_str()];
        assert_eq!(dtype, w["dtype"].as_str().unwrap(), "{name}: {tname} dtype");
        let wshape: Vec<usize> = w["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(shape, &wshape, "{name}: {tname} shape");
        assert!(
            data == &unhex(w["hex"].as_str().unwrap()),
            "{name}: {tname} bytes differ from torch.load"
        );
    }
    let meta = meta.unwrap_or_default();
    for (key, w) in exp["metadata"].as_object().unwrap() {
        let got = meta
            .get(key)
            .unwrap_or_else(|| panic!("{name}: metadata '{key}' missing"));
        if contains_opaque(w) {
            continue;
        }
        match w {
            Json::String(s) => assert_eq!(got, s, "{name}: metadata {key}"),
            other => {
                let parsed: Json =
                    serde_json::from_str(got).unwrap_or_else(|_| panic!("{name}: {key} is not JSON: {got}"));
                assert_eq!(&parsed, other, "{name}: metadata {key}");
            }
        }
    }
}

#[test]
fn every_valid_fixture_matches_torch_load() {
    let names = valid_fixtures();
    assert!(names.len() >= 16, "fixtures present: {names:?}");
    for name in &names {
        check_fixture(name);
    }
}

#[test]
fn lightning_needs_lenient_and_says_what_it_records() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    let strict = tensorcast()
        .arg("convert")
        .arg(fixture("pytorch/valid/lightning.ckpt"))
        .arg("-o")
        .arg(&out)
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&strict.get_output().stderr).into_owned();
    assert!(
        err.contains("pytorch/forbidden-global") && err.contains("argparse.Namespace")
            || err.contains("numpy"),
        "{err}"
    );
    assert!(!out.exists());
    let lenient = tensorcast()
        .arg("convert")
        .arg(fixture("pytorch/valid/lightning.ckpt"))
        .arg("-o")
        .arg(&out)
        .arg("--lenient")
        .assert()
        .success();
    let warn = String::from_utf8_lossy(&lenient.get_output().stderr).into_owned();
    assert!(
        warn.contains("hyper_parameters.args: argparse.Namespace kept as an opaque metadata record"),
        "{warn}"
    );
    // NumPy scalars are decoded to numbers, not left opaque.
    let (_, meta) = reference_read(&out);
    let hp: Json = serde_json::from_str(&meta.unwrap()["hyper_parameters"]).unwrap();
    assert_eq!(hp["lr"], Json::from(0.001));
    assert_eq!(hp["layers"], Json::from(4));
    assert_eq!(hp["args"]["__class__"], Json::from("argparse.Namespace"));
    assert_eq!(hp["args"]["state"]["seed"], Json::from(1));
}

#[test]
fn dedupe_tied_keeps_one_name_like_hf_convert() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    tensorcast()
        .arg("convert")
        .arg(fixture("pytorch/valid/tied.pt"))
        .arg("-o")
        .arg(&out)
        .arg("--dedupe-tied")
        .assert()
        .success();
    let (tensors, meta) = reference_read(&out);
    let names: Vec<&str> = tensors.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(names, ["embed.weight", "first_row"]);
    assert_eq!(meta.unwrap()["lm_head.weight"], "embed.weight");
    // Without the flag both names get the full (identical) data.
    let exp = expected("tied.pt");
    assert_eq!(
        exp["tensors"]["lm_head.weight"]["hex"],
        exp["tensors"]["embed.weight"]["hex"]
    );
}

#[test]
fn state_dict_warns_about_module_versions() {
    let out = tensorcast()
        .arg("inspect")
        .arg(fixture("pytorch/valid/state_dict.pt"))
        .assert()
        .success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("_metadata"), "{err}");
}

#[test]
fn select_that_is_missing_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = tensorcast()
        .arg("convert")
        .arg(fixture("pytorch/valid/optimizer.pt"))
        .arg("-o")
        .arg(dir.path().join("o.safetensors"))
        .args(["--select", "state_dict"])
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("pytorch/select-not-found"), "{err}");
}

#[test]
fn every_hostile_fixture_is_refused_without_running() {
    let manifest: Json =
        serde_json::from_str(&std::fs::read_to_string(fixture("pytorch/hostile/manifest.json")).unwrap())
            .unwrap();
    let cases = manifest.as_object().unwrap();
    assert!(cases.len() >= 30);
    for (file, case) in cases {
        let rule = case["rule"].as_str().unwrap();
        let mentions = case["mentions"].as_str().unwrap();
        let args: Vec<&str> = case["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let cwd = tempfile::tempdir().unwrap();
        let input = fixture(&format!("pytorch/hostile/{file}"));
        // A tensor of a type with no equivalent here is listed by inspect
        // (under its torch type), and refused by conversion.
        if case.get("lists").is_some() {
            let out = tensorcast().arg("inspect").arg(&input).assert().success();
            let table = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
            assert!(table.contains(&format!("torch {mentions}")), "{file}: {table}");
            // Left out by name, the rest converts (here: nothing else).
            let out = cwd.path().join("rest.safetensors");
            tensorcast()
                .arg("convert")
                .arg(&input)
                .args(["--exclude", "w", "-o"])
                .arg(&out)
                .assert()
                .success();
            assert!(tensorcast::open(&out, &Default::default())
                .unwrap()
                .tensors()
                .is_empty());
            std::fs::remove_file(&out).unwrap();
        }
        let commands: &[&str] = if case.get("lists").is_some() {
            &["convert"]
        } else {
            &["convert", "inspect"]
        };
        for &command in commands {
            let mut cmd = tensorcast();
            cmd.current_dir(cwd.path()).arg(command).arg(&input);
            if command == "convert" {
                cmd.arg("-o").arg("out.safetensors");
            }
            let out = cmd
                .args(&args)
                .timeout(std::time::Duration::from_secs(60))
                .assert()
                .code(1);
            let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
            assert!(
                err.contains(&format!("pytorch/{rule}")),
                "{file}: expected rule {rule}, got: {err}"
            );
            assert!(
                err.contains(mentions),
                "{file}: message should mention '{mentions}': {err}"
            );
            assert!(!err.contains("panicked"), "{file}: {err}");
        }
        let left: Vec<_> = std::fs::read_dir(cwd.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            left.is_empty(),
            "{file}: files appeared in the working directory: {left:?}"
        );
        assert!(!Path::new(&cwd.path().join(format!("pwned-{file}"))).exists());
    }
}

#[test]
fn sparse_tensors_stay_sparse_in_tpack_and_densify_only_on_request() {
    let parts: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("pytorch/sparse/parts.json")).unwrap())
            .unwrap();
    let parts = parts["tensors"].as_object().unwrap();
    assert_eq!(parts.len(), 4);
    // inspect lists every sparse tensor with its layout, whatever the output.
    let out = tensorcast()
        .arg("inspect")
        .arg(fixture("pytorch/valid/sparse.pt"))
        .assert()
        .success();
    let table = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    for (name, p) in parts {
        let line = table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap();
        let want = format!(
            "sparse {}, {} values, {} indices",
            p["layout"].as_str().unwrap(),
            p["nnz"],
            p["index"].as_str().unwrap()
        );
        assert!(line.contains(&want), "{line}");
    }
    // A format without sparse tensors: refused by name, nothing written.
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("s.safetensors");
    let out = tensorcast()
        .arg("convert")
        .arg(fixture("pytorch/valid/sparse.pt"))
        .arg("-o")
        .arg(&st)
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("tensor 'coo'") && err.contains("--densify"), "{err}");
    assert!(!st.exists());
    // Kept sparse: torch → tpack → tpack, each tensor's parts as torch holds them.
    let (a, b) = (dir.path().join("a.tpack"), dir.path().join("b.tpack"));
    for (from, to) in [(fixture("pytorch/valid/sparse.pt"), &a), (a.clone(), &b)] {
        tensorcast()
            .arg("convert")
            .arg(from)
            .arg("-o")
            .arg(to)
            .assert()
            .success();
    }
    let exp = expected("sparse.pt");
    let back = tensorcast::open(&b, &Default::default()).unwrap();
    assert_eq!(back.tensors().len(), 5);
    for (i, t) in back.tensors().iter().enumerate() {
        let bytes = back.tensor_data(i).unwrap().into_vec().unwrap();
        let dense = tensorcast::sparse::densify(t, &bytes).unwrap();
        assert_eq!(
            dense,
            common::unhex(exp["tensors"][&t.name]["hex"].as_str().unwrap()),
            "{}: to_dense()",
            t.name
        );
        match (&t.sparse, parts.get(&t.name)) {
            (Some(sp), Some(p)) => {
                assert_eq!(
                    bytes,
                    common::unhex(p["hex"].as_str().unwrap()),
                    "{}: parts",
                    t.name
                );
                assert_eq!(sp.layout.name(), p["layout"].as_str().unwrap());
                assert_eq!(sp.index.name(), p["index"].as_str().unwrap());
                assert_eq!(sp.nnz, p["nnz"].as_u64().unwrap());
                assert_eq!(sp.sparse_dims, p["sparse_dims"].as_u64().unwrap());
            }
            (None, None) => {}
            _ => panic!("{}: sparse in one reader only", t.name),
        }
    }
    // Densified on request, from the checkpoint and from the tpack alike:
    // equal to torch's to_dense(), bytes for bytes.
    let (d1, d2) = (
        dir.path().join("d1.safetensors"),
        dir.path().join("d2.safetensors"),
    );
    for (from, to) in [(fixture("pytorch/valid/sparse.pt"), &d1), (b.clone(), &d2)] {
        tensorcast()
            .arg("convert")
            .arg(from)
            .arg("--densify")
            .arg("-o")
            .arg(to)
            .assert()
            .success();
    }
    assert_eq!(std::fs::read(&d1).unwrap(), std::fs::read(&d2).unwrap());
    let dense = tensorcast::open(&d2, &Default::default()).unwrap();
    for (i, t) in dense.tensors().iter().enumerate() {
        assert!(t.sparse.is_none());
        assert_eq!(
            dense.tensor_data(i).unwrap().into_vec().unwrap(),
            common::unhex(exp["tensors"][&t.name]["hex"].as_str().unwrap()),
            "{}",
            t.name
        );
    }
    // Cast while sparse: only the values change type, as densify-then-cast.
    let (c1, c2) = (dir.path().join("c.tpack"), dir.path().join("c1.safetensors"));
    tensorcast()
        .arg("convert")
        .arg(&b)
        .args(["--dtype", "f16", "-o"])
        .arg(&c1)
        .assert()
        .success();
    tensorcast()
        .arg("convert")
        .arg(&c1)
        .args(["--densify", "-o"])
        .arg(&c2)
        .assert()
        .success();
    let c3 = dir.path().join("c3.safetensors");
    tensorcast()
        .arg("convert")
        .arg(&d2)
        .args(["--dtype", "f16", "-o"])
        .arg(&c3)
        .assert()
        .success();
    assert_eq!(std::fs::read(&c2).unwrap(), std::fs::read(&c3).unwrap());
    // Virtual references: Zarr has no sparse arrays, and says so by name.
    let out = tensorcast()
        .arg("refs")
        .arg(&b)
        .arg("-o")
        .arg(dir.path().join("r.json"))
        .assert()
        .success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains("coo: sparse COO, 13 values, I64 indices: Zarr has no sparse arrays"),
        "{err}"
    );
    // A repeated index (which torch's to_dense() would sum) is refused.
    let out = tensorcast()
        .arg("convert")
        .arg(fixture("pytorch/sparse/uncoalesced.pt"))
        .arg("--densify")
        .arg("-o")
        .arg(dir.path().join("u.safetensors"))
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("given twice") && err.contains("'dup'"), "{err}");
    assert!(!dir.path().join("u.safetensors").exists());
}

/// `--lenient` reads a pickled module (`torch.save(model)`) as its
/// state_dict and NumPy arrays (NumPy 1 and 2 spellings, C and Fortran
/// order, big-endian, bool, complex, 0-d) as tensors, equal to what torch's
/// own loading gives (fixtures/pytorch/lenient/expected.json, torch 2.15);
/// NumPy scalars become numbers. Without it each file is refused by name.
#[test]
fn lenient_reads_modules_and_numpy_arrays_as_torch_loads_them() {
    let expected: Json =
        serde_json::from_slice(&std::fs::read(fixture("pytorch/lenient/expected.json")).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (file, want) in expected["files"].as_object().unwrap() {
        let input = fixture(&format!("pytorch/lenient/{file}"));
        let out = dir.path().join(format!("{file}.safetensors"));
        let strict = tensorcast().arg("inspect").arg(&input).assert().code(1);
        let err = String::from_utf8_lossy(&strict.get_output().stderr).into_owned();
        assert!(err.contains("pytorch/forbidden-global"), "{file}: {err}");
        tensorcast()
            .arg("convert")
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .arg("--lenient")
            .assert()
            .success();
        let (tensors, meta) = reference_read(&out);
        let want_tensors = want["tensors"].as_array().unwrap();
        assert_eq!(tensors.len(), want_tensors.len(), "{file}: {tensors:?}");
        for w in want_tensors {
            let name = w["name"].as_str().unwrap();
            let (_, dtype, shape, bytes) = tensors
                .iter()
                .find(|t| t.0 == name)
                .unwrap_or_else(|| panic!("{file}: {name} missing"));
            assert_eq!(dtype, w["dtype"].as_str().unwrap(), "{file}: {name}");
            let want_shape: Vec<usize> = w["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(shape, &want_shape, "{file}: {name}");
            assert_eq!(bytes, &unhex(w["hex"].as_str().unwrap()), "{file}: {name}");
        }
        let meta = meta.unwrap_or_default();
        for (k, v) in want["scalars"].as_object().unwrap() {
            let got: Json = serde_json::from_str(&meta[k]).unwrap();
            assert_eq!(&got, v, "{file}: scalar {k}");
        }
    }
}
