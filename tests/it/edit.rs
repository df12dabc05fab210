//! `tensorcast edit`: GGUF key/values as llama.cpp's gguf_new_metadata.py
//! writes them for the same change (fixtures/edit, its outputs committed),
//! tensors byte-identical and the data section at the same offset modulo
//! 4096; safetensors and tpack metadata; the original intact at every
//! chosen crash point.

use crate::common::{fixture, tensorcast};
use std::path::Path;
use tensorcast::{Options, Value};

fn cases() -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(fixture("edit/cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Every key/value but the padding entry, in order.
fn kv(path: &Path) -> Vec<(String, Value)> {
    let source = tensorcast::open(path, &Options::default()).unwrap();
    source
        .metadata()
        .iter()
        .filter(|(k, _)| *k != tensorcast::gguf::PADDING_KEY)
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// (name, dtype, shape, bytes, offset) of one tensor.
type Stored = (String, String, Vec<u64>, Vec<u8>, Option<u64>);

/// Every tensor as stored.
fn tensors(path: &Path) -> Vec<Stored> {
    let source = tensorcast::open(path, &Options::default()).unwrap();
    (0..source.tensors().len())
        .map(|i| {
            let t = &source.tensors()[i];
            let bytes = source.tensor_data(i).unwrap().into_vec().unwrap();
            (
                t.name.clone(),
                t.dtype.to_string(),
                t.shape.clone(),
                bytes,
                t.file_offset,
            )
        })
        .collect()
}

fn edit(input: &Path, output: &Path, args: &[String]) {
    tensorcast()
        .current_dir(fixture("edit"))
        .arg("edit")
        .arg(input)
        .arg("-o")
        .arg(output)
        .args(args)
        .assert()
        .success();
}

#[test]
fn gguf_edits_give_gguf_new_metadata_key_values_and_the_same_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("edit/input.gguf");
    let before = tensors(&input);
    for case in cases() {
        let name = case["case"].as_str().unwrap();
        let args: Vec<String> = case["tensorcast_args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        let ours = dir.path().join(format!("{name}.gguf"));
        edit(&input, &ours, &args);
        let reference = kv(&fixture(&format!("edit/ref_{name}.gguf")));
        let got = kv(&ours);
        // The same keys, types and values. The order too, but for one
        // documented difference: gguf_new_metadata.py moves a replaced chat
        // template to the end; an edit keeps every key in its place.
        let sorted = |mut v: Vec<(String, Value)>| {
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        assert_eq!(sorted(got.clone()), sorted(reference.clone()), "{name}");
        let order = |v: &[(String, Value)]| {
            v.iter()
                .map(|(k, _)| k.clone())
                .filter(|k| k != "tokenizer.chat_template")
                .collect::<Vec<_>>()
        };
        assert_eq!(order(&got), order(&reference), "{name}");
        // Tensors as they were, their data at the same offset mod 4096.
        let after = tensors(&ours);
        assert_eq!(after.len(), before.len());
        for (a, b) in after.iter().zip(&before) {
            assert_eq!((&a.0, &a.1, &a.2, &a.3), (&b.0, &b.1, &b.2, &b.3), "{name}");
            assert_eq!(a.4.unwrap() % 4096, b.4.unwrap() % 4096, "{name}: {}", a.0);
        }
    }
}

#[test]
fn gguf_values_keep_their_types_and_wrong_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("edit/input.gguf");
    let out = dir.path().join("typed.gguf");
    let set = |args: &[&str]| {
        tensorcast()
            .arg("edit")
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .arg("--force")
            .args(args)
            .output()
            .unwrap()
    };
    let ok = set(&[
        "--set",
        "llama.context_length=4096",
        "--set",
        "tokenizer.ggml.add_bos_token=false",
        "--set",
        "tokenizer.ggml.token_type=[1,1,1,1,1,1,1,2]",
        "--set",
        "custom.scale:f32=0.5",
        "--set",
        "custom.ids:[i32]=[-1,7]",
        "--set",
        "custom.text=@@literal",
    ]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let got: std::collections::HashMap<_, _> = kv(&out).into_iter().collect();
    assert_eq!(got["llama.context_length"], Value::U32(4096));
    assert_eq!(got["tokenizer.ggml.add_bos_token"], Value::Bool(false));
    assert_eq!(
        got["tokenizer.ggml.token_type"],
        Value::Array(tensorcast::Array::I32(vec![1, 1, 1, 1, 1, 1, 1, 2]))
    );
    assert_eq!(got["custom.scale"], Value::F32(0.5));
    assert_eq!(
        got["custom.ids"],
        Value::Array(tensorcast::Array::I32(vec![-1, 7]))
    );
    assert_eq!(got["custom.text"], Value::Str("@literal".into()));

    for (args, says) in [
        (&["--set", "llama.context_length=-5"][..], "not a u32"),
        (&["--set", "llama.context_length:str=x"][..], "keeps its type"),
        (&["--delete", "no.such.key"][..], "no such key"),
        (&["--set", "general.alignment=64"][..], "places the tensor data"),
    ] {
        let failed = set(args);
        assert_eq!(failed.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&failed.stderr);
        assert!(
            err.contains(says) && err.contains("input.gguf"),
            "{args:?}: {err}"
        );
    }
    // Nothing to do is a usage error; so is a value file that is not a
    // regular file (a FIFO would block, /dev/zero never end).
    tensorcast().arg("edit").arg(&input).assert().code(2);
    #[cfg(unix)]
    let fifo = {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("value.fifo");
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a file.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        (dir, p.to_string_lossy().into_owned())
    };
    #[cfg(unix)]
    for path in ["/dev/zero", "/dev/null", fifo.1.as_str()] {
        tensorcast()
            .arg("edit")
            .arg(&input)
            .args(["--set", &format!("x=@{path}")])
            .assert()
            .code(2);
    }
    tensorcast()
        .arg("edit")
        .arg(&input)
        .args(["--set", "x=@missing.txt"])
        .assert()
        .code(2);
}

#[test]
fn editing_in_place_replaces_the_file_and_re_edits_recompute_the_padding() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.gguf");
    std::fs::copy(fixture("edit/input.gguf"), &file).unwrap();
    let before = tensors(&file);
    let long = "x".repeat(10_000);
    for value in ["short", long.as_str(), "short again"] {
        tensorcast()
            .arg("edit")
            .arg(&file)
            .arg("--set")
            .arg(format!("general.name={value}"))
            .assert()
            .success();
        let got: std::collections::HashMap<_, _> = kv(&file).into_iter().collect();
        assert_eq!(got["general.name"], Value::Str(value.into()));
        let after = tensors(&file);
        for (a, b) in after.iter().zip(&before) {
            assert_eq!(a.3, b.3);
            assert_eq!(a.4.unwrap() % 4096, b.4.unwrap() % 4096);
        }
    }
    // One padding entry at most, and only the file in the folder.
    let source = tensorcast::open(&file, &Options::default()).unwrap();
    let pads = source
        .metadata()
        .iter()
        .filter(|(k, _)| *k == tensorcast::gguf::PADDING_KEY)
        .count();
    assert!(pads <= 1);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["m.gguf"]);

    // Through a symbolic link, the file it points to is edited; the link stays.
    #[cfg(unix)]
    {
        let link = dir.path().join("link.gguf");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        tensorcast()
            .arg("edit")
            .arg(&link)
            .args(["--set", "general.name=via link"])
            .assert()
            .success();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        let got: std::collections::HashMap<_, _> = kv(&file).into_iter().collect();
        assert_eq!(got["general.name"], Value::Str("via link".into()));
    }
}

#[test]
fn safetensors_metadata_edits_keep_every_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("digest/set.safetensors");
    let out = dir.path().join("e.safetensors");
    tensorcast()
        .arg("edit")
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .args([
            "--set",
            "note=changed",
            "--set",
            "added=yes",
            "--delete",
            "format",
        ])
        .assert()
        .success();
    let (ref_tensors, meta) = crate::common::reference_read(&out);
    let meta = meta.unwrap();
    assert_eq!(meta.len(), 2);
    assert_eq!(meta["note"], "changed");
    assert_eq!(meta["added"], "yes");
    assert_eq!(ref_tensors, crate::common::reference_read(&input).0);
    // The data buffer keeps its offset modulo 4096.
    let start = |p: &Path| {
        let b = std::fs::read(p).unwrap();
        8 + u64::from_le_bytes(b[..8].try_into().unwrap())
    };
    assert_eq!(start(&out) % 4096, start(&input) % 4096);
    // Typed values have no place in __metadata__.
    tensorcast()
        .arg("edit")
        .arg(&out)
        .args(["--set", "n:u32=1"])
        .assert()
        .code(1);
}

#[test]
fn tpack_edits_commit_in_place_or_into_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.tpack");
    tensorcast()
        .arg("convert")
        .arg(fixture("edit/input.gguf"))
        .arg("-o")
        .arg(&file)
        .assert()
        .success();
    let before = tensors(&file);
    let tokens = kv(&file)
        .into_iter()
        .find(|(k, _)| k == "tokenizer.ggml.tokens")
        .unwrap();
    tensorcast()
        .arg("edit")
        .arg(&file)
        .args(["--set", "general.name=renamed", "--delete", "general.license"])
        .assert()
        .success();
    let copy = dir.path().join("b.tpack");
    tensorcast()
        .arg("edit")
        .arg(&file)
        .arg("-o")
        .arg(&copy)
        .args(["--set", r#"tokenizer.ggml.tokens=["x","y"]"#])
        .assert()
        .success();
    let a: std::collections::HashMap<_, _> = kv(&file).into_iter().collect();
    assert_eq!(a["general.name"], Value::Str("renamed".into()));
    assert!(!a.contains_key("general.license"));
    assert_eq!(
        a["tokenizer.ggml.tokens"], tokens.1,
        "a stored array survives another key's edit"
    );
    let b: std::collections::HashMap<_, _> = kv(&copy).into_iter().collect();
    assert_eq!(b["general.name"], Value::Str("renamed".into()));
    assert_eq!(
        b["tokenizer.ggml.tokens"].to_json(),
        serde_json::json!(["x", "y"])
    );
    for f in [&file, &copy] {
        tensorcast().arg("verify").arg(f).assert().success();
        let after = tensors(f);
        for (x, y) in after.iter().zip(&before) {
            assert_eq!((&x.0, &x.3), (&y.0, &y.3));
        }
    }
}

/// A kill at each chosen point of an edit that replaces its file leaves the
/// original byte for byte and no temporary file; after the rename, the new
/// file. The one window between naming the finished file and renaming it
/// leaves a complete hidden `.tensorcast-tmp` file, removed by the next
/// write beside it once it is stale.
#[test]
fn a_killed_edit_leaves_the_original_or_the_new_file() {
    for (name, points) in [
        (
            "m.gguf",
            &[
                "edit-header",
                "edit-data",
                "edit-synced",
                "edit-linked",
                "edit-renamed",
            ][..],
        ),
        (
            "m.safetensors",
            &["edit-header", "edit-data", "edit-synced", "edit-renamed"][..],
        ),
        (
            "m.tpack",
            &[
                "append-manifest",
                "append-slot",
                "append-slot-written",
                "append-committed",
            ][..],
        ),
    ] {
        for point in points {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join(name);
            tensorcast()
                .arg("convert")
                .arg(fixture("edit/input.gguf"))
                .arg("-o")
                .arg(&file)
                .assert()
                .success();
            let original = std::fs::read(&file).unwrap();
            let killed = tensorcast()
                .env(tensorcast::CRASH_AT_VAR, point)
                .arg("edit")
                .arg(&file)
                .args(["--set", "general.name=after"])
                .output()
                .unwrap();
            assert!(!killed.status.success(), "{name} {point}: not killed");
            let now = std::fs::read(&file).unwrap();
            let name_now = kv(&file)
                .into_iter()
                .find(|(k, _)| k == "general.name")
                .map(|(_, v)| v);
            let committed = matches!(*point, "edit-renamed" | "append-committed");
            let slot_written = *point == "append-slot-written";
            if committed || slot_written {
                assert_eq!(name_now, Some(Value::Str("after".into())), "{name} {point}");
            } else if name.ends_with(".tpack") {
                // Bytes past the committed length may differ; the contents not.
                assert_eq!(name_now, Some(Value::Str("Tiny Llama".into())), "{name} {point}");
            } else {
                assert_eq!(now, original, "{name} {point}: the original changed");
            }
            let mut left: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n != name)
                .collect();
            if *point == "edit-linked" {
                assert_eq!(left.len(), 1, "{name} {point}: {left:?}");
                let tmp = left.pop().unwrap();
                assert!(tmp.starts_with(&format!(".{name}.")) && tmp.ends_with(".tensorcast-tmp"));
                // Stale: the next edit beside it removes it.
                let path = dir.path().join(&tmp);
                let old = std::time::SystemTime::now() - std::time::Duration::from_secs(600);
                std::fs::File::options()
                    .write(true)
                    .open(&path)
                    .unwrap()
                    .set_modified(old)
                    .unwrap();
                tensorcast()
                    .arg("edit")
                    .arg(&file)
                    .args(["--set", "general.name=again"])
                    .assert()
                    .success();
                assert!(!path.exists(), "{name}: stale temporary kept");
            } else {
                assert!(left.is_empty(), "{name} {point}: left {left:?}");
            }
        }
    }
}

#[test]
fn safetensors_renames_keep_large_data_congruent_and_small_files_plain() {
    let dir = tempfile::tempdir().unwrap();
    let start = |p: &Path| {
        let b = std::fs::read(p).unwrap();
        8 + u64::from_le_bytes(b[..8].try_into().unwrap())
    };
    // The data starts at the first multiple of 8 after the JSON's last '}'.
    let padded_to_eight = |p: &Path| {
        let b = std::fs::read(p).unwrap();
        let json_end = b[8..start(p) as usize].iter().rposition(|&c| c == b'}').unwrap() + 9;
        start(p) == (json_end as u64).next_multiple_of(8)
    };
    // 20 MiB of tensors behind a header of unaligned length: its data
    // offset is not 8-aligned, so the first conversion pads to 8 only.
    let raw = dir.path().join("raw.safetensors");
    crate::common::write_big_f32(&raw, 5, 1 << 20);
    let plain = dir.path().join("plain.safetensors");
    tensorcast()
        .arg("convert")
        .arg(&raw)
        .arg("-o")
        .arg(&plain)
        .assert()
        .success();
    assert!(padded_to_eight(&plain));
    // From an 8-aligned input, a rename lengthens the header and the data
    // still starts at the input's offset modulo 4096 (blank padding), so a
    // reflink file system shares it; the tensors are the input's.
    let renamed = dir.path().join("renamed.safetensors");
    tensorcast()
        .arg("convert")
        .arg(&plain)
        .arg("-o")
        .arg(&renamed)
        .args(["--rename", "w.=model.layers.weight_"])
        .assert()
        .success();
    assert_ne!(start(&renamed), start(&plain));
    assert_eq!(start(&renamed) % 4096, start(&plain) % 4096);
    let (got, _) = crate::common::reference_read(&renamed);
    let (want, _) = crate::common::reference_read(&plain);
    assert_eq!(got.len(), 5);
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.0, w.0.replacen("w.", "model.layers.weight_", 1));
        assert_eq!((&g.1, &g.2, &g.3), (&w.1, &w.2, &w.3));
    }
    // A small file keeps the reference writer's 8-byte padding.
    let small = dir.path().join("small.safetensors");
    tensorcast()
        .arg("convert")
        .arg(fixture("safetensors/valid/all_dtypes.safetensors"))
        .arg("-o")
        .arg(&small)
        .args(["--rename", "a=b"])
        .assert()
        .success();
    assert!(padded_to_eight(&small));
}
