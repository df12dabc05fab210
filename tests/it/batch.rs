//! `convert --batch`: a mixed directory (with a corrupt file) converts every
//! good file into a mirrored tree, reports the bad one, exits 1, and on a
//! re-run skips what is done.

use crate::common::{fixture, tensorcast};
use serde_json::Value as Json;
use std::path::Path;

fn copy(from: &str, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(fixture(from), to).unwrap();
}

fn lines(stdout: &[u8]) -> Vec<Json> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn mixed_directory_completes_good_files_reports_bad_and_resumes() {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("models");
    copy(
        "safetensors/cast/source.safetensors",
        &src.join("a/source.safetensors"),
    );
    copy("gguf/align64.gguf", &src.join("a/b/align64.gguf"));
    for k in 1..=3 {
        copy(
            &format!("gguf/split/model-0000{k}-of-00003.gguf"),
            &src.join(format!("split/model-0000{k}-of-00003.gguf")),
        );
    }
    for f in [
        "model.safetensors.index.json",
        "model-00001-of-00003.safetensors",
        "model-00002-of-00003.safetensors",
        "model-00003-of-00003.safetensors",
    ] {
        copy(
            &format!("safetensors/valid/sharded/{f}"),
            &src.join(format!("sharded/{f}")),
        );
    }
    copy("pytorch/valid/state_dict.pt", &src.join("torch/state_dict.pt"));
    copy("numpy/compressed.npz", &src.join("np/compressed.npz"));
    // A corrupt file: a safetensors cut in half.
    let good = std::fs::read(fixture("safetensors/cast/to_f32.safetensors")).unwrap();
    std::fs::write(src.join("a/broken.safetensors"), &good[..good.len() / 2]).unwrap();
    std::fs::write(src.join("notes.txt"), "not a model").unwrap();

    let out = root.path().join("out");
    let run = || {
        tensorcast()
            .args(["convert", "--batch"])
            .arg(&src)
            .arg("--out-dir")
            .arg(&out)
            .args(["--to", "tpack", "-j", "2"])
            .output()
            .unwrap()
    };
    let first = run();
    assert_eq!(
        first.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let results = lines(&first.stdout);
    let status = |rs: &[Json], input: &str| {
        rs.iter()
            .find(|r| r["input"].as_str().unwrap().ends_with(input))
            .unwrap_or_else(|| panic!("{input} not in report"))["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // Six models (the shards and split parts are converted through their index / first part).
    assert_eq!(results.len(), 7, "{results:#?}");
    for input in [
        "a/source.safetensors",
        "a/b/align64.gguf",
        "split/model-00001-of-00003.gguf",
        "sharded/model.safetensors.index.json",
        "torch/state_dict.pt",
        "np/compressed.npz",
    ] {
        assert_eq!(status(&results, input), "ok", "{input}");
    }
    assert_eq!(status(&results, "a/broken.safetensors"), "failed");
    let broken = results.iter().find(|r| r["status"] == "failed").unwrap();
    assert!(
        broken["error"].as_str().unwrap().contains("[rule safetensors/"),
        "{broken}"
    );
    assert!(String::from_utf8_lossy(&first.stderr).contains("6 converted, 0 already done, 1 failed"));
    // The tree is mirrored, the outputs read back equal to their inputs.
    for (input, output) in [
        ("a/source.safetensors", "a/source.tpack"),
        ("a/b/align64.gguf", "a/b/align64.tpack"),
        ("split/model-00001-of-00003.gguf", "split/model.tpack"),
        ("sharded/model.safetensors.index.json", "sharded/model.tpack"),
        ("np/compressed.npz", "np/compressed.tpack"),
    ] {
        let b = out.join(output);
        assert!(b.exists(), "{output}");
        let a = tensorcast::adapt(
            tensorcast::open(src.join(input), &Default::default()).unwrap(),
            tensorcast::Registry::builtin().get("tpack").unwrap(),
            &Default::default(),
        )
        .unwrap();
        let b = tensorcast::open(&b, &Default::default()).unwrap();
        assert!(tensorcast::diff(&*a, &*b, None).unwrap().is_empty(), "{input}");
    }
    assert!(!out.join("a/broken.tpack").exists());

    // Re-run: everything done is skipped; the broken file fails again.
    let second = run();
    assert_eq!(second.status.code(), Some(1));
    let again = lines(&second.stdout);
    assert_eq!(again.iter().filter(|r| r["status"] == "skipped").count(), 6);
    assert_eq!(status(&again, "a/broken.safetensors"), "failed");

    // A list on stdin, with a report file.
    let list = format!("{}\n# comment\n\n", src.join("a/source.safetensors").display());
    let report = root.path().join("report.jsonl");
    let out2 = root.path().join("out2");
    tensorcast()
        .args(["convert", "--batch", "-", "--out-dir"])
        .arg(&out2)
        .args(["--to", "npz", "--dtype", "f32", "--report"])
        .arg(&report)
        .write_stdin(list)
        .assert()
        .success();
    let rs: Vec<Json> = std::fs::read_to_string(&report)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0]["status"], "ok");
    assert!(Path::new(rs[0]["output"].as_str().unwrap()).exists());
}

/// A tree of Hugging Face model folders batched into GGUF: each folder is
/// one model (config, tokenizer and weights together), named after the
/// folder and byte-identical to converting the folder alone; into
/// safetensors the same tree still converts file by file.
#[test]
fn model_folders_in_a_batch_convert_as_models() {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("models");
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer.model",
        "tokenizer_config.json",
    ] {
        copy(&format!("model/llama/hf/{f}"), &src.join("llama").join(f));
    }
    copy("gguf/align64.gguf", &src.join("loose/align64.gguf"));
    let out = root.path().join("out");
    let run = tensorcast()
        .args(["convert", "--batch"])
        .arg(&src)
        .args(["--to", "gguf", "--out-dir"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let mut outputs: Vec<String> = lines(&run.stdout)
        .iter()
        .map(|l| l["output"].as_str().unwrap().to_string())
        .collect();
    outputs.sort();
    assert_eq!(
        outputs,
        [
            out.join("llama.gguf").display().to_string(),
            out.join("loose/align64.gguf").display().to_string()
        ]
    );
    let direct = root.path().join("direct.gguf");
    tensorcast()
        .arg("convert")
        .arg(src.join("llama"))
        .arg("-o")
        .arg(&direct)
        .assert()
        .success();
    assert_eq!(
        std::fs::read(out.join("llama.gguf")).unwrap(),
        std::fs::read(&direct).unwrap()
    );
    // Into safetensors a folder is not a model: its weights file converts.
    let st = root.path().join("st");
    let run = tensorcast()
        .args(["convert", "--batch"])
        .arg(&src)
        .args(["--to", "safetensors", "--out-dir"])
        .arg(&st)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(st.join("llama/model.safetensors").is_file());
}
