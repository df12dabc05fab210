//! s3:// inputs and outputs against a real S3 API (moto on loopback):
//! round trips, a multipart upload aborted by a failure mid-way (no object
//! appears), a batch over a prefix, three shard processes in parallel
//! covering it exactly once, and an idempotent re-run.

use crate::common::moto::Moto;
use crate::common::range_server::RangeServer;
use crate::common::{fixture, noise, tensorcast};
use std::collections::BTreeSet;

fn tc(moto: &Moto) -> assert_cmd::Command {
    let mut c = tensorcast();
    for (k, v) in moto.env() {
        c.env(k, v);
    }
    c
}

/// A safetensors file with one f32 tensor of `n` bytes (the reference crate's).
fn safetensors_of(n: usize, seed: u64) -> Vec<u8> {
    use safetensors::tensor::{Dtype, TensorView};
    let data = noise(n, seed);
    let view = TensorView::new(Dtype::F32, vec![n / 4], &data).unwrap();
    safetensors::serialize(vec![("w", view)], None).unwrap()
}

#[test]
fn s3_round_trips_and_inspect() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("tc-rt");
    let dir = tempfile::tempdir().unwrap();
    let src = fixture("gguf/quants.gguf");
    // Upload by converting into s3, then read back and compare with local.
    tc(&moto)
        .arg("convert")
        .arg(&src)
        .arg("-o")
        .arg("s3://tc-rt/in/quants.gguf")
        .assert()
        .success();
    let local = dir.path().join("local.gguf");
    tensorcast()
        .arg("convert")
        .arg(&src)
        .arg("-o")
        .arg(&local)
        .assert()
        .success();
    assert_eq!(
        moto.get("tc-rt", "in/quants.gguf").unwrap(),
        std::fs::read(&local).unwrap()
    );
    let from_s3 = dir.path().join("back.safetensors");
    tc(&moto)
        .arg("convert")
        .arg("s3://tc-rt/in/quants.gguf")
        .arg("-o")
        .arg(&from_s3)
        .assert()
        .success();
    let want = dir.path().join("want.safetensors");
    tensorcast()
        .arg("convert")
        .arg(&src)
        .arg("-o")
        .arg(&want)
        .assert()
        .success();
    assert_eq!(std::fs::read(from_s3).unwrap(), std::fs::read(want).unwrap());
    // tpack (whose writer rewrites its commit slot) is staged, then uploaded.
    tc(&moto)
        .arg("convert")
        .arg("s3://tc-rt/in/quants.gguf")
        .arg("-o")
        .arg("s3://tc-rt/out/q.tpack")
        .assert()
        .success();
    let tp = dir.path().join("q.tpack");
    std::fs::write(&tp, moto.get("tc-rt", "out/q.tpack").unwrap()).unwrap();
    tensorcast().arg("verify").arg(&tp).assert().success();
    let a = tc(&moto)
        .args(["inspect", "--json", "s3://tc-rt/out/q.tpack"])
        .assert()
        .success();
    let b = tensorcast()
        .arg("inspect")
        .arg("--json")
        .arg(&tp)
        .assert()
        .success();
    let strip = |o: &[u8]| {
        let mut v: serde_json::Value = serde_json::from_slice(o).unwrap();
        v.as_object_mut().unwrap().remove("path");
        v
    };
    assert_eq!(strip(&a.get_output().stdout), strip(&b.get_output().stdout));
    // An existing object is not replaced without --force.
    tc(&moto)
        .arg("convert")
        .arg(&src)
        .arg("-o")
        .arg("s3://tc-rt/in/quants.gguf")
        .assert()
        .code(1);
}

#[test]
fn a_failure_mid_upload_leaves_no_object() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("tc-abort");
    // The probe can see an upload in progress (so 0 below means aborted).
    moto.create_bucket("tc-probe");
    let (status, _) = moto.request("POST", "/tc-probe/k?uploads", b"").unwrap();
    assert_eq!(status, 200);
    assert_eq!(moto.open_uploads("tc-probe"), 1);
    // 24 MiB of input over HTTP, replaced for every range from 12 MiB on:
    // the read fails once the first 12 MiB (an 8 MiB part's worth) are in.
    let server = RangeServer::start();
    let st = safetensors_of(24 << 20, 7);
    let mut other = st.clone();
    other[100] ^= 1;
    server.put("/big.safetensors", st);
    *server.state.replace_after.lock().unwrap() = Some((12 << 20, "/big.safetensors".into(), other));
    let out = tc(&moto)
        .arg("convert")
        .arg(server.url("/big.safetensors"))
        .arg("-o")
        .arg("s3://tc-abort/out/big.safetensors")
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("object-changed"), "{stderr}");
    assert_eq!(moto.keys("tc-abort"), Vec::<String>::new(), "no object appears");
    assert_eq!(
        moto.open_uploads("tc-abort"),
        0,
        "the multipart upload was aborted"
    );
}

/// The models under `models/` and the outputs a batch makes of them.
fn seed_prefix(moto: &Moto, bucket: &str) -> BTreeSet<String> {
    moto.create_bucket(bucket);
    let mut want = BTreeSet::new();
    for i in 0..7 {
        let key = format!("models/group{}/m{i}.safetensors", i % 3);
        moto.put(bucket, &key, &safetensors_of(4096, i + 1));
        want.insert(format!("converted/group{}/m{i}.gguf", i % 3));
    }
    moto.put(
        bucket,
        "models/q.gguf",
        &std::fs::read(fixture("gguf/quants.gguf")).unwrap(),
    );
    want.insert("converted/q.gguf".into());
    // A sharded checkpoint: one job (its index), not one per shard.
    for n in [
        "model.safetensors.index.json",
        "model-00001-of-00003.safetensors",
        "model-00002-of-00003.safetensors",
        "model-00003-of-00003.safetensors",
    ] {
        moto.put(
            bucket,
            &format!("models/sharded/{n}"),
            &std::fs::read(fixture(&format!("safetensors/valid/sharded/{n}"))).unwrap(),
        );
    }
    want.insert("converted/sharded/model.gguf".into());
    moto.put(bucket, "models/README.md", b"not a model");
    want
}

fn converted(moto: &Moto, bucket: &str) -> BTreeSet<String> {
    moto.keys(bucket)
        .into_iter()
        .filter(|k| k.starts_with("converted/"))
        .collect()
}

fn statuses(report: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(report)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["input"].as_str().unwrap().to_string(),
                v["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn three_shards_in_parallel_cover_a_prefix_once_and_a_rerun_converts_nothing() {
    let Some(moto) = Moto::start() else { return };
    let want = seed_prefix(&moto, "tc-shard");
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..3)
        .map(|k| {
            let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("tensorcast"));
            c.args([
                "convert",
                "--batch",
                "s3://tc-shard/models/",
                "--out-dir",
                "s3://tc-shard/converted/",
                "--to",
                "gguf",
                "-q",
            ])
            .arg("--shard")
            .arg(format!("{k}/3"))
            .arg("--report")
            .arg(dir.path().join(format!("r{k}.jsonl")));
            for (k, v) in moto.env() {
                c.env(k, v);
            }
            c.spawn().unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    assert_eq!(converted(&moto, "tc-shard"), want);
    let mut all = Vec::new();
    for k in 0..3 {
        let r = statuses(&std::fs::read(dir.path().join(format!("r{k}.jsonl"))).unwrap());
        assert!(r.iter().all(|(_, s)| s == "ok"), "{r:?}");
        all.extend(r);
    }
    let inputs: BTreeSet<_> = all.iter().map(|(i, _)| i.clone()).collect();
    assert_eq!(inputs.len(), all.len(), "no input converted twice");
    assert_eq!(inputs.len(), want.len());
    // The merged report holds every line once.
    let reports: Vec<_> = (0..3).map(|k| dir.path().join(format!("r{k}.jsonl"))).collect();
    let merged = tensorcast()
        .arg("report")
        .arg("merge")
        .args(&reports)
        .assert()
        .success();
    assert_eq!(statuses(&merged.get_output().stdout).len(), want.len());
    // A whole re-run (one process, report to s3) finds every output done.
    tc(&moto)
        .args([
            "convert",
            "--batch",
            "s3://tc-shard/models/",
            "--out-dir",
            "s3://tc-shard/converted/",
            "--to",
            "gguf",
            "-q",
            "--report",
            "s3://tc-shard/reports/rerun.jsonl",
        ])
        .assert()
        .success();
    let rerun = statuses(&moto.get("tc-shard", "reports/rerun.jsonl").unwrap());
    assert_eq!(rerun.len(), want.len());
    assert!(rerun.iter().all(|(_, s)| s == "skipped"), "{rerun:?}");
    // The outputs are real: one read back equals a local conversion.
    let tmp = dir.path().join("m0.safetensors");
    std::fs::write(&tmp, safetensors_of(4096, 1)).unwrap();
    let local = dir.path().join("m0.gguf");
    tensorcast()
        .arg("convert")
        .arg(&tmp)
        .arg("-o")
        .arg(&local)
        .assert()
        .success();
    assert_eq!(
        moto.get("tc-shard", "converted/group0/m0.gguf").unwrap(),
        std::fs::read(local).unwrap()
    );
}

#[test]
fn shard_shares_are_disjoint_and_complete_whatever_the_listing_order() {
    use tensorcast::Shard;
    let names: Vec<String> = (0..200)
        .map(|i| format!("org/model-{i}/weights.safetensors"))
        .collect();
    let shards: Vec<Shard> = (0..3).map(|k| Shard::parse(&format!("{k}/3")).unwrap()).collect();
    for name in &names {
        assert_eq!(shards.iter().filter(|s| s.takes(name)).count(), 1, "{name}");
    }
    // Every share gets some of 200 names.
    for s in &shards {
        assert!(names.iter().any(|n| s.takes(n)));
    }
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    };
    assert_eq!(
        Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "2"), ("JOB_COMPLETIONS", "5")])).unwrap(),
        Shard { index: 2, count: 5 }
    );
    assert_eq!(
        Shard::from_env(env(&[
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "4")
        ]))
        .unwrap(),
        Shard { index: 3, count: 4 }
    );
    assert!(Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "2")])).is_err());
    assert!(Shard::from_env(env(&[])).is_err());
    assert!(Shard::parse("3/3").is_err() && Shard::parse("x").is_err() && Shard::parse("0/0").is_err());
}
