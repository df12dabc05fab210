//! The content id (spec/digest.md): one id for one tensor set in every
//! container, checked against vectors computed by the spec's Python
//! reference implementation (fixtures/digest/generate.py, blake3 package)
//! over files written by the reference writers; every change to the
//! tensors changes it, metadata does not.

use crate::common::{fixture, tensorcast};
use safetensors::tensor::{serialize_to_file, Dtype as StDtype, TensorView};
use std::collections::BTreeMap;
use std::path::Path;

fn vectors() -> serde_json::Value {
    let text = std::fs::read_to_string(fixture("digest/vectors.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn digest_of(path: &Path) -> tensorcast::Digest {
    let source = tensorcast::open(path, &tensorcast::Options::default()).unwrap();
    tensorcast::digest(&*source).unwrap()
}

/// The id and every tensor's record digest equal the vector's.
fn assert_matches(d: &tensorcast::Digest, vector: &serde_json::Value, what: &str) {
    assert_eq!(d.id.to_string(), vector["id"].as_str().unwrap(), "{what}");
    let want = vector["tensors"].as_object().unwrap();
    assert_eq!(d.tensors.len(), want.len(), "{what}");
    for t in &d.tensors {
        assert_eq!(want[&t.name].as_str().unwrap(), t.hex(), "{what}: {}", t.name);
    }
}

#[test]
fn reference_writers_give_the_reference_id() {
    let v = vectors();
    for file in [
        "set.safetensors",
        "sharded/model.safetensors.index.json",
        "set.pt",
        "set.npz",
        "set.gguf",
        "set.zt",
    ] {
        assert_matches(&digest_of(&fixture(&format!("digest/{file}"))), &v["set"], file);
    }
    assert_matches(
        &digest_of(&fixture("digest/blocks.gguf")),
        &v["blocks"],
        "blocks.gguf",
    );
}

#[test]
fn every_writer_keeps_the_id() {
    let v = vectors();
    let want = v["set"]["id"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("digest/set.safetensors");
    let outputs: [(&str, &[&str]); 9] = [
        ("a.safetensors", &[]),
        ("sharded.safetensors", &["--max-shard-size", "600"]),
        ("a.gguf", &[]),
        ("a.pt", &[]),
        ("a.npz", &[]),
        ("a.tpack", &[]),
        ("z.tpack", &["--compress", "19"]),
        ("a.zt", &[]),
        ("folder", &["--to", "safetensors"]),
    ];
    for (name, flags) in outputs {
        let out = dir.path().join(name);
        tensorcast()
            .arg("convert")
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .args(flags)
            .assert()
            .success();
        let entry = if name == "sharded.safetensors" {
            dir.path().join("sharded.safetensors.index.json")
        } else {
            out
        };
        let printed = tensorcast().arg("digest").arg(&entry).assert().success();
        let line = String::from_utf8(printed.get_output().stdout.clone()).unwrap();
        assert_eq!(line.split_whitespace().next(), Some(want), "{name}: {line}");
    }
    // Blocks stay blocks in the containers that hold them.
    let blocks = v["blocks"]["id"].as_str().unwrap();
    for name in ["b.tpack", "b.gguf"] {
        let out = dir.path().join(name);
        tensorcast()
            .arg("convert")
            .arg(fixture("digest/blocks.gguf"))
            .arg("-o")
            .arg(&out)
            .assert()
            .success();
        assert_eq!(digest_of(&out).id.to_string(), blocks, "{name}");
    }
}

/// A tensor for `write`: dtype, shape, bytes.
type Spec = (StDtype, Vec<usize>, Vec<u8>);

fn write(path: &Path, tensors: &BTreeMap<String, Spec>, metadata: Option<(&str, &str)>) {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, (d, s, b))| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let meta = metadata.map(|(k, v)| [(k.to_string(), v.to_string())].into_iter().collect());
    serialize_to_file(views, meta, path).unwrap();
}

#[test]
fn spec_vectors() {
    let v = vectors();
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, Spec); 3] = [
        (
            "scalar",
            "s",
            (StDtype::F32, vec![], 1.5f32.to_le_bytes().to_vec()),
        ),
        ("zero_rows", "z", (StDtype::F16, vec![0, 4], vec![])),
        ("bool", "m", (StDtype::BOOL, vec![3], vec![1, 0, 1])),
    ];
    for (case, name, spec) in cases {
        let path = dir.path().join(format!("{case}.safetensors"));
        write(&path, &[(name.to_string(), spec)].into(), None);
        assert_matches(&digest_of(&path), &v[case], case);
    }
    let path = dir.path().join("empty.safetensors");
    write(&path, &BTreeMap::new(), None);
    assert_matches(&digest_of(&path), &v["empty"], "empty");
}

#[test]
fn every_change_to_the_tensors_changes_the_id_and_metadata_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let words: Vec<u8> = (0u32..24)
        .flat_map(|i| i.wrapping_mul(2654435761).to_le_bytes())
        .collect();
    let base: BTreeMap<String, Spec> = [
        ("a".to_string(), (StDtype::F32, vec![4, 6], words.clone())),
        ("b".to_string(), (StDtype::F16, vec![8], words[..16].to_vec())),
    ]
    .into();
    let id = |name: &str, tensors: &BTreeMap<String, Spec>, meta: Option<(&str, &str)>| {
        let path = dir.path().join(format!("{name}.safetensors"));
        write(&path, tensors, meta);
        digest_of(&path).id
    };
    let original = id("base", &base, None);
    assert_eq!(
        id("meta", &base, Some(("note", "changed"))),
        original,
        "metadata changed the id"
    );

    let mut flipped = base.clone();
    flipped.get_mut("a").unwrap().2[37] ^= 0x10;
    let mut renamed = base.clone();
    let a = renamed.remove("a").unwrap();
    renamed.insert("a2".into(), a);
    let mut reshaped = base.clone();
    reshaped.get_mut("a").unwrap().1 = vec![6, 4];
    let mut retyped = base.clone();
    retyped.get_mut("a").unwrap().0 = StDtype::I32;
    // The same bytes split differently between the two tensors.
    let mut moved = base.clone();
    *moved.get_mut("a").unwrap() = (StDtype::F32, vec![5, 4], words[..80].to_vec());
    let mut b = words[80..96].to_vec();
    b.extend_from_slice(&words[..16]);
    *moved.get_mut("b").unwrap() = (StDtype::F16, vec![16], b);
    let mut dropped = base.clone();
    dropped.remove("b");
    for (what, tensors) in [
        ("a flipped bit", &flipped),
        ("a renamed tensor", &renamed),
        ("a changed shape over the same bytes", &reshaped),
        ("a changed dtype over the same bytes", &retyped),
        ("bytes moved between tensors", &moved),
        ("a dropped tensor", &dropped),
    ] {
        assert_ne!(id(what, tensors, None), original, "{what} kept the id");
    }
}

#[test]
fn json_lists_each_tensor_and_verify_checks_an_id() {
    let v = vectors();
    let input = fixture("digest/set.npz");
    let out = tensorcast()
        .arg("digest")
        .arg("--json")
        .arg(&input)
        .assert()
        .success();
    let json: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(json["id"], v["set"]["id"]);
    let tensors = json["tensors"].as_array().unwrap();
    assert_eq!(tensors.len(), 8);
    for t in tensors {
        assert_eq!(t["digest"], v["set"]["tensors"][t["name"].as_str().unwrap()]);
    }
    let embed = tensors
        .iter()
        .find(|t| t["name"] == "model.embed.weight")
        .unwrap();
    assert_eq!(embed["kind"], "F32");
    assert_eq!(embed["shape"], serde_json::json!([16, 8]));
    assert_eq!(embed["nbytes"], 512);

    let id = v["set"]["id"].as_str().unwrap();
    tensorcast()
        .args(["verify", "--digest", id])
        .arg(&input)
        .assert()
        .success();
    let other = v["blocks"]["id"].as_str().unwrap();
    let failed = tensorcast()
        .args(["verify", "--digest", other])
        .arg(&input)
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&failed.get_output().stderr).into_owned();
    assert!(err.contains(id) && err.contains(other), "{err}");
    tensorcast()
        .args(["verify", "--digest", "tc1:00"])
        .arg(&input)
        .assert()
        .code(2);
}

fn json_lines(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A batch with `--digest` reports equal ids for every job; an output
/// changed after it was written fails its job on the next run (which
/// without `--digest` would skip it as done).
#[test]
fn a_batch_proves_each_job_and_catches_a_tampered_output() {
    let root = tempfile::tempdir().unwrap();
    let (src, out) = (root.path().join("in"), root.path().join("out"));
    for (f, to) in [
        ("set.pt", "pt/set.pt"),
        ("set.npz", "npz/set.npz"),
        ("set.gguf", "gguf/set.gguf"),
        ("set.zt", "zt/set.zt"),
        (
            "sharded/model.safetensors.index.json",
            "sharded/model.safetensors.index.json",
        ),
        (
            "sharded/model-00001-of-00002.safetensors",
            "sharded/model-00001-of-00002.safetensors",
        ),
        (
            "sharded/model-00002-of-00002.safetensors",
            "sharded/model-00002-of-00002.safetensors",
        ),
    ] {
        let to = src.join(to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(fixture(&format!("digest/{f}")), to).unwrap();
    }
    let run = |digest: bool| {
        let mut cmd = tensorcast();
        cmd.args(["convert", "--batch"])
            .arg(&src)
            .arg("--out-dir")
            .arg(&out)
            .args(["--to", "safetensors", "-j", "2"]);
        if digest {
            cmd.arg("--digest");
        }
        cmd.output().unwrap()
    };
    let id = vectors()["set"]["id"].as_str().unwrap().to_string();
    let first = run(true);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let lines = json_lines(&first.stdout);
    assert_eq!(lines.len(), 5);
    for l in &lines {
        assert_eq!(l["status"], "ok", "{l}");
        assert_eq!(l["digest_in"], id.as_str(), "{l}");
        assert_eq!(l["digest_out"], id.as_str(), "{l}");
        assert!(l.get("digest_written").is_none(), "{l}");
    }

    // Flip one byte of tensor data in one output; its mtime stays newer
    // than its input, so it still looks done.
    let victim = out.join("npz/set.safetensors");
    let mut bytes = std::fs::read(&victim).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x40;
    std::fs::write(&victim, &bytes).unwrap();

    let blind = run(false);
    assert!(blind.status.success());
    assert!(json_lines(&blind.stdout).iter().all(|l| l["status"] == "skipped"));

    let second = run(true);
    assert_eq!(second.status.code(), Some(1));
    let lines = json_lines(&second.stdout);
    let failed: Vec<_> = lines.iter().filter(|l| l["status"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{lines:?}");
    let error = failed[0]["error"].as_str().unwrap();
    assert!(
        error.contains("no longer holds") && error.contains(&id),
        "{error}"
    );
    assert!(failed[0]["output"]
        .as_str()
        .unwrap()
        .ends_with("npz/set.safetensors"));
    for l in lines.iter().filter(|l| l["status"] != "failed") {
        assert_eq!(l["status"], "skipped", "{l}");
        assert_eq!(l["digest_out"], id.as_str(), "{l}");
    }
}

/// safetensors under another name whose writer flips one bit of the first
/// tensor it is handed: a writer that does not write what it was given.
struct Liar;

struct LyingSink(Box<dyn tensorcast::Sink>, bool);

impl tensorcast::Sink for LyingSink {
    fn begin(&mut self, plan: &tensorcast::Plan) -> tensorcast::Result<()> {
        self.0.begin(plan)
    }
    fn write_tensor(&mut self, index: usize, data: tensorcast::TensorData<'_>) -> tensorcast::Result<()> {
        let mut bytes = data.into_vec()?;
        if !self.1 && !bytes.is_empty() {
            bytes[0] ^= 1;
            self.1 = true;
        }
        self.0
            .write_tensor(index, tensorcast::TensorData::Borrowed(&bytes))
    }
    fn finish(&mut self) -> tensorcast::Result<()> {
        self.0.finish()
    }
}

impl tensorcast::Format for Liar {
    fn name(&self) -> &'static str {
        "liar"
    }
    fn extensions(&self) -> &'static [&'static str] {
        &["liar"]
    }
    fn detect(&self, _: &[u8]) -> tensorcast::Detection {
        tensorcast::Detection::No
    }
    fn open(
        &self,
        input: tensorcast::Input,
        options: &tensorcast::Options,
    ) -> tensorcast::Result<Box<dyn tensorcast::Source>> {
        tensorcast::safetensors::Safetensors.open(input, options)
    }
    fn can_write(&self) -> bool {
        true
    }
    fn create(
        &self,
        target: Box<dyn tensorcast::WriteTarget>,
        options: &tensorcast::Options,
    ) -> tensorcast::Result<Box<dyn tensorcast::Sink>> {
        let inner = tensorcast::safetensors::Safetensors.create(target, options)?;
        Ok(Box::new(LyingSink(inner, false)))
    }
}

/// A conversion whose output does not hold what its writer was handed
/// fails with `digest-mismatch` and leaves no output behind; without the
/// proof it "succeeds".
#[test]
fn an_output_that_is_not_what_was_written_fails_and_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.liar");
    let opts = tensorcast::ConvertOptions {
        registry: tensorcast::Registry::builtin().with(Liar),
        digest: true,
        ..Default::default()
    };
    let err = tensorcast::convert_file(fixture("digest/set.npz"), &out, &opts).unwrap_err();
    assert_eq!(err.code(), Some(tensorcast::code::DIGEST_MISMATCH), "{err}");
    assert!(
        err.to_string().contains("does not hold the tensors written"),
        "{err}"
    );
    assert!(!out.exists(), "a disproved output was left behind");

    let blind = tensorcast::ConvertOptions {
        digest: false,
        ..opts
    };
    tensorcast::convert_file(fixture("digest/set.npz"), &out, &blind).unwrap();
    assert_ne!(
        digest_of(&out).id.to_string(),
        vectors()["set"]["id"].as_str().unwrap()
    );
}
