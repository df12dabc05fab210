//! hf:// inputs against a Hub-layout server on loopback (resolve URLs under
//! HF_ENDPOINT): a whole sharded model repository converted to GGUF equals
//! llama.cpp's reference conversion of the same model, file URLs with a
//! revision work, only headers are fetched to inspect, and HF_TOKEN is sent
//! but never printed.

use crate::common::range_server::RangeServer;
use crate::common::{fixture, tensorcast};

/// The llama fixture as a Hub repository with its weights in three shards,
/// served at `/tinyorg/llama/resolve/{main,v1}/`: (server, total shard bytes).
fn hub() -> (RangeServer, u64) {
    let dir = tempfile::tempdir().unwrap();
    let hf = fixture("model/llama/hf");
    tensorcast()
        .arg("convert")
        .arg(hf.join("model.safetensors"))
        .arg("-o")
        .arg(dir.path().join("model.safetensors"))
        .args(["--max-shard-size", "200KB"])
        .assert()
        .success();
    let server = RangeServer::start();
    let mut shard_bytes = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let bytes = std::fs::read(&path).unwrap();
        if name.ends_with(".safetensors") {
            shard_bytes += bytes.len() as u64;
        }
        for rev in ["main", "v1"] {
            server.put(&format!("/tinyorg/llama/resolve/{rev}/{name}"), bytes.clone());
        }
    }
    assert!(shard_bytes > 0);
    for name in [
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer.model",
        "tokenizer_config.json",
    ] {
        for rev in ["main", "v1"] {
            server.put(
                &format!("/tinyorg/llama/resolve/{rev}/{name}"),
                std::fs::read(hf.join(name)).unwrap(),
            );
        }
    }
    (server, shard_bytes)
}

fn hub_cmd(server: &RangeServer) -> assert_cmd::Command {
    let mut c = tensorcast();
    c.env("HF_ENDPOINT", &server.base)
        .env("HF_TOKEN", "hf_secret_token_123");
    c
}

#[test]
fn a_sharded_hub_repository_converts_to_the_reference_gguf() {
    let (server, shard_bytes) = hub();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.gguf");
    hub_cmd(&server)
        .args(["convert", "hf://tinyorg/llama", "-o"])
        .arg(&out)
        .assert()
        .success();
    // convert_hf_to_gguf.py names the model after its folder (the
    // reference's was called `hf`); a repository is named after the repo.
    // Everything else is the reference's: tensors, bytes, typed metadata.
    let (ours, theirs) = (
        tensorcast::open(&out, &Default::default()).unwrap(),
        tensorcast::open(fixture("model/llama/reference-f32.gguf"), &Default::default()).unwrap(),
    );
    assert_eq!(ours.tensors(), theirs.tensors());
    assert!(tensorcast::diff(&*ours, &*theirs, None).unwrap().is_empty());
    let name = |s: &dyn tensorcast::Source| s.metadata().get("general.name").map(|v| v.preview(40));
    assert_eq!(name(&*theirs).as_deref(), Some("Hf"));
    assert_eq!(name(&*ours).as_deref(), Some("Llama"));
    let others = |s: &dyn tensorcast::Source| {
        s.metadata()
            .iter()
            .filter(|(k, _)| *k != "general.name")
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(others(&*ours), others(&*theirs));
    let log = server.state.log.lock().unwrap().clone();
    assert!(
        log.iter().all(|l| l.contains("auth=Bearer hf_secret_token_123")),
        "{log:?}"
    );
    // Each shard's bytes once, plus headers and the small files.
    let served = server.served();
    assert!(
        served < shard_bytes + (64 << 10),
        "served {served} for {shard_bytes} bytes of shards"
    );
    eprintln!("hf:// repository -> gguf: {served} bytes served for {shard_bytes} bytes of shards");
}

#[test]
fn hub_file_urls_with_a_revision_read_only_what_they_need() {
    let (server, shard_bytes) = hub();
    server.reset();
    let out = hub_cmd(&server)
        .args([
            "inspect",
            "--json",
            "hf://tinyorg/llama@v1/model.safetensors.index.json",
        ])
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert!(v["tensors"].as_array().unwrap().len() > 3);
    let served = server.served();
    assert!(
        served < shard_bytes / 10,
        "inspect fetched {served} of {shard_bytes}"
    );
    eprintln!(
        "inspect hf:// index: {served} of {shard_bytes} bytes ({:.2}%)",
        served as f64 * 100.0 / shard_bytes as f64
    );
    let log = server.state.log.lock().unwrap().clone();
    assert!(log.iter().all(|l| l.contains("/resolve/v1/")), "{log:?}");
    // A file URL converts like the local file.
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.safetensors"), dir.path().join("b.safetensors"));
    hub_cmd(&server)
        .args([
            "convert",
            "hf://tinyorg/llama@v1/model.safetensors.index.json",
            "-o",
        ])
        .arg(&a)
        .assert()
        .success();
    tensorcast()
        .arg("convert")
        .arg(fixture("model/llama/hf/model.safetensors"))
        .arg("-o")
        .arg(&b)
        .assert()
        .success();
    let (ta, tb) = (
        tensorcast::open(&a, &Default::default()).unwrap(),
        tensorcast::open(&b, &Default::default()).unwrap(),
    );
    assert!(tensorcast::diff(&*ta, &*tb, None).unwrap().is_empty());
}

#[test]
fn errors_name_the_url_and_never_the_token() {
    let (server, _) = hub();
    let out = hub_cmd(&server)
        .args(["inspect", "hf://tinyorg/llama/missing.safetensors"])
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains("hf://tinyorg/llama/missing.safetensors"),
        "{stderr}"
    );
    assert!(!stderr.contains("hf_secret_token_123"), "{stderr}");
    let out = tensorcast().args(["inspect", "hf://tinyorg"]).assert().code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("hf://ORG/REPO"), "{stderr}");
}
