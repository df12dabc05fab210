//! Hostile file-system situations and names (issue 16's classes 1, 3, 5, 8
//! and 10): each case asserts the exact outcome — the rule refused, or the
//! correct output — and that nothing appeared outside the output path.
//! Inputs are built here (FIFOs and symlinks cannot be committed).

use crate::common;
use crate::common::{fixture, tensorcast};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Every path under `dir` (symlinks not followed), for before/after snapshots.
fn snapshot(dir: &Path) -> BTreeSet<PathBuf> {
    common::walk(dir).into_iter().map(|(p, _)| p).collect()
}

/// Runs tensorcast and returns (exit code, stderr).
fn run(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let out = tensorcast().args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn os(s: &str) -> &std::ffi::OsStr {
    s.as_ref()
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let ok = std::process::Command::new("mkfifo").arg(path).status().unwrap();
    assert!(ok.success());
}

/// A safetensors file holding one u8 tensor per name.
fn safetensors_with(path: &Path, names: &[&str]) {
    let mut header = serde_json::Map::new();
    for (i, n) in names.iter().enumerate() {
        header.insert(
            (*n).into(),
            serde_json::json!({"dtype": "U8", "shape": [1], "data_offsets": [i, i + 1]}),
        );
    }
    let mut text = serde_json::to_string(&header).unwrap();
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    let mut bytes = (text.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(text.as_bytes());
    bytes.extend((0..names.len()).map(|i| i as u8));
    std::fs::write(path, bytes).unwrap();
}

#[cfg(unix)]
#[test]
fn special_files_are_refused_wherever_a_path_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The input itself.
    let fifo = d.join("input.safetensors");
    mkfifo(&fifo);
    // A shard named by an index.
    let shard_dir = d.join("sharded");
    std::fs::create_dir(&shard_dir).unwrap();
    std::fs::write(
        shard_dir.join("model.safetensors.index.json"),
        r#"{"metadata": {}, "weight_map": {"a": "model-00001-of-00001.safetensors"}}"#,
    )
    .unwrap();
    mkfifo(&shard_dir.join("model-00001-of-00001.safetensors"));
    // A split GGUF's second part.
    let split = d.join("split");
    std::fs::create_dir(&split).unwrap();
    std::fs::copy(
        fixture("gguf/split/model-00001-of-00003.gguf"),
        split.join("model-00001-of-00003.gguf"),
    )
    .unwrap();
    mkfifo(&split.join("model-00002-of-00003.gguf"));
    let out = d.join("out.safetensors");
    for input in [
        fifo.clone(),
        shard_dir.join("model.safetensors.index.json"),
        split.join("model-00001-of-00003.gguf"),
    ] {
        for cmd in [&["convert"][..], &["inspect"][..], &["verify"][..]] {
            let mut args: Vec<&std::ffi::OsStr> = cmd.iter().map(|s| os(s)).collect();
            args.push(input.as_os_str());
            if cmd[0] == "convert" {
                args.extend([os("-o"), out.as_os_str()]);
            }
            let (code, err) = run(&args);
            assert_eq!(code, Some(1), "{cmd:?} {}: {err}", input.display());
            assert!(
                err.contains("[rule tensorcast/not-a-regular-file]"),
                "{}: {err}",
                input.display()
            );
            assert!(!out.exists());
        }
    }
    // A batch list naming the FIFO: that job fails, the others run.
    let list = d.join("list.txt");
    std::fs::write(
        &list,
        format!(
            "{}\n{}\n",
            fifo.display(),
            fixture("safetensors/cast/source.safetensors").display()
        ),
    )
    .unwrap();
    let out_dir = d.join("converted");
    let (code, _) = run(&[
        os("convert"),
        os("--batch"),
        list.as_os_str(),
        os("--out-dir"),
        out_dir.as_os_str(),
        os("--to"),
        os("tpack"),
        os("-q"),
    ]);
    assert_eq!(code, Some(1));
    assert!(out_dir.join("source.tpack").exists());
    // The library says the same by rule.
    let e = tensorcast::open(&fifo, &Default::default()).err().unwrap();
    assert_eq!(e.rule(), Some("not-a-regular-file"));
}

#[cfg(unix)]
#[test]
fn symlinks_at_the_output_are_refused_or_replaced_never_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = fixture("safetensors/cast/source.safetensors");
    let victim = d.join("victim.txt");
    std::fs::write(&victim, b"keep me").unwrap();
    for (link, target) in [
        ("dangling.safetensors", d.join("nowhere")),
        ("live.safetensors", victim.clone()),
    ] {
        let link = d.join(link);
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let before = snapshot(d);
        // Without --force any entry at the path is refused, a dangling link included.
        let (code, err) = run(&[os("convert"), src.as_os_str(), os("-o"), link.as_os_str()]);
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("already exists"), "{err}");
        assert_eq!(snapshot(d), before);
        assert_eq!(std::fs::read_link(&link).unwrap(), target);
        // With --force the link itself is replaced by the output.
        let (code, err) = run(&[
            os("convert"),
            src.as_os_str(),
            os("-o"),
            link.as_os_str(),
            os("--force"),
        ]);
        assert_eq!(code, Some(0), "{err}");
        let meta = std::fs::symlink_metadata(&link).unwrap();
        assert!(meta.file_type().is_file(), "the link was written through");
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
        assert!(!d.join("nowhere").exists());
    }
}

#[test]
fn npz_writer_refuses_names_an_extractor_cannot_keep_inside_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let long = "x".repeat(70_000);
    for name in [
        "../../evil",
        "/abs",
        "a\0b",
        "C:\\x\\y",
        "dir/inner",
        "..",
        long.as_str(),
    ] {
        let input = d.join("in.safetensors");
        safetensors_with(&input, &[name]);
        let out = d.join("out.npz");
        let before = snapshot(d);
        let (code, err) = run(&[os("convert"), input.as_os_str(), os("-o"), out.as_os_str()]);
        let shown: String = name.chars().take(20).collect();
        assert_eq!(code, Some(1), "{shown:?}: {err}");
        assert!(err.contains("[rule numpy/write-name]"), "{shown:?}: {err}");
        assert_eq!(snapshot(d), before, "{shown:?}: something was created");
    }
    // Plain names, dotted state_dict names included, still write.
    let input = d.join("ok.safetensors");
    safetensors_with(&input, &["model.layers.0.weight", "bias"]);
    let (code, err) = run(&[
        os("convert"),
        input.as_os_str(),
        os("-o"),
        d.join("ok.npz").as_os_str(),
    ]);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn npy_header_with_a_repeated_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // numpy keeps the last 'descr' (and fails on '<x9'); a first-wins reader
    // would read f4: two readers, two arrays. Refused.
    let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'descr': '<x9', }";
    let mut header = dict.to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&1.0f32.to_le_bytes());
    let path = dir.path().join("dup.npy");
    std::fs::write(&path, bytes).unwrap();
    let e = tensorcast::open(&path, &Default::default()).err().unwrap();
    assert_eq!(
        (e.kind(), e.rule()),
        (tensorcast::ErrorKind::Format, Some("duplicate-key")),
        "{e}"
    );
}

#[test]
fn os_errors_are_said_once() {
    let (code, err) = run(&[os("inspect"), os("/nonexistent/x.safetensors")]);
    assert_eq!(code, Some(1));
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

/// `convert --batch SOURCE --out-dir OUT --to FORMAT -q`: (exit code, stderr).
fn batch(source: &Path, out: &Path, to: &str) -> (Option<i32>, String) {
    run(&[
        os("convert"),
        os("--batch"),
        source.as_os_str(),
        os("--out-dir"),
        out.as_os_str(),
        os("--to"),
        os(to),
        os("-q"),
    ])
}

#[test]
fn batch_collisions_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // a.gguf and a.npz in one folder both map to a.safetensors.
    let models = d.join("models");
    std::fs::create_dir(&models).unwrap();
    std::fs::copy(fixture("gguf/align64.gguf"), models.join("a.gguf")).unwrap();
    std::fs::copy(fixture("numpy/compressed.npz"), models.join("a.npz")).unwrap();
    let out = d.join("out");
    let before = snapshot(d);
    let (code, err) = batch(&models, &out, "safetensors");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("a.gguf") && err.contains("a.npz") && err.contains("both"),
        "{err}"
    );
    let mut after = snapshot(d);
    after.remove(&out);
    assert_eq!(after, before, "an output was written");
    // Two absolute inputs with one base name, listed.
    let other = d.join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::copy(
        fixture("safetensors/cast/source.safetensors"),
        other.join("m.safetensors"),
    )
    .unwrap();
    std::fs::copy(
        fixture("safetensors/cast/to_f32.safetensors"),
        models.join("m.safetensors"),
    )
    .unwrap();
    let list = d.join("list.txt");
    std::fs::write(
        &list,
        format!(
            "{}\n{}\n",
            models.join("m.safetensors").display(),
            other.join("m.safetensors").display()
        ),
    )
    .unwrap();
    let (code, err) = batch(&list, &d.join("out2"), "tpack");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("both"), "{err}");
    assert!(!d.join("out2/m.tpack").exists());
}

#[test]
fn batch_outputs_never_overwrite_inputs_or_leave_the_out_dir() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let models = d.join("models");
    std::fs::create_dir(&models).unwrap();
    let input = models.join("m.safetensors");
    std::fs::copy(fixture("safetensors/cast/source.safetensors"), &input).unwrap();
    let original = std::fs::read(&input).unwrap();
    // --out-dir equal to the input folder, same format: the output is the input.
    let (code, err) = batch(&models, &models, "safetensors");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("is an input"), "{err}");
    assert_eq!(std::fs::read(&input).unwrap(), original);
    // A symlinked subfolder inside the out dir must not carry outputs outside it.
    #[cfg(unix)]
    {
        let nested = models.join("sub");
        std::fs::create_dir(&nested).unwrap();
        std::fs::copy(
            fixture("safetensors/cast/source.safetensors"),
            nested.join("n.safetensors"),
        )
        .unwrap();
        let out = d.join("out");
        let elsewhere = d.join("elsewhere");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, out.join("sub")).unwrap();
        let (code, err) = batch(&models, &out, "tpack");
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("outside"), "{err}");
        assert_eq!(
            std::fs::read_dir(&elsewhere).unwrap().count(),
            0,
            "written through the link"
        );
    }
}

#[cfg(unix)]
#[test]
fn a_symlink_at_a_batch_output_is_replaced_not_taken_for_done() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let models = d.join("models");
    std::fs::create_dir(&models).unwrap();
    std::fs::copy(
        fixture("safetensors/cast/source.safetensors"),
        models.join("m.safetensors"),
    )
    .unwrap();
    let out = d.join("out");
    std::fs::create_dir(&out).unwrap();
    // A big, new file the link points at would look "complete and newer".
    let victim = d.join("victim.bin");
    std::fs::write(&victim, vec![7u8; 1 << 20]).unwrap();
    std::os::unix::fs::symlink(&victim, out.join("m.tpack")).unwrap();
    let (code, err) = batch(&models, &out, "tpack");
    assert_eq!(code, Some(0), "{err}");
    assert!(std::fs::symlink_metadata(out.join("m.tpack"))
        .unwrap()
        .file_type()
        .is_file());
    assert_eq!(std::fs::read(&victim).unwrap(), vec![7u8; 1 << 20]);
    tensorcast()
        .arg("verify")
        .arg(out.join("m.tpack"))
        .assert()
        .success();
}

/// A protocol-2 pickle whose root is the global `module.name` itself.
fn bare_global(module: &str, name: &str) -> Vec<u8> {
    [
        &b"\x80\x02c"[..],
        module.as_bytes(),
        b"\n",
        name.as_bytes(),
        b"\n.",
    ]
    .concat()
}

#[test]
fn lenient_reading_is_an_allowlist_of_data_classes() {
    let dir = tempfile::tempdir().unwrap();
    // Each of these reaches code; none is a data record. Refused even lenient.
    for (module, name) in [
        ("_io", "open"),
        ("_operator", "attrgetter"),
        ("pydoc", "pipepager"),
        ("_posixsubprocess", "fork_exec"),
        ("torch.serialization", "_load"),
        ("numpy", "load"),
        ("builtins", "__builtins__"),
        ("functools", "partial"),
        ("mylib.tools", "run_everything"),
    ] {
        let path = dir.path().join(format!("{module}.{name}.pkl"));
        std::fs::write(&path, bare_global(module, name)).unwrap();
        let (code, err) = run(&[os("inspect"), path.as_os_str(), os("--lenient")]);
        assert_eq!(code, Some(1), "{module}.{name}: {err}");
        assert!(
            err.contains("[rule pytorch/forbidden-global]"),
            "{module}.{name}: {err}"
        );
    }
    // A user's config record (NEWOBJ + BUILD) is kept as an opaque value.
    let mut record = b"\x80\x02}q\x00X\x03\x00\x00\x00cfgcmylib.config\nTrainConfig\n)\x81}".to_vec();
    record.extend_from_slice(b"X\x02\x00\x00\x00lrG");
    record.extend_from_slice(&0.001f64.to_be_bytes());
    record.extend_from_slice(b"sbs.");
    let path = dir.path().join("record.pkl");
    std::fs::write(&path, &record).unwrap();
    let (code, err) = run(&[os("inspect"), path.as_os_str(), os("--lenient")]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("mylib.config.TrainConfig"),
        "the record is not reported: {err}"
    );
    let (code, err) = run(&[os("inspect"), path.as_os_str()]);
    assert_eq!(code, Some(1), "strict reading must refuse it: {err}");
}

#[test]
fn pickle_keys_that_render_alike_are_refused() {
    // {1: t0, '1': t1}: torch loads two tensors; one flat name could hold one.
    let e = tensorcast::open(fixture("pytorch/hostile/key_collision.pt"), &Default::default())
        .err()
        .unwrap();
    assert_eq!(e.rule(), Some("duplicate-name"), "{e}");
    assert!(e.to_string().contains("'1'"), "{e}");
}

/// A stored zip whose central directory lists `names`, every entry pointing
/// at the one local header and data written (name `names[0]`).
fn zip_sharing_one_entry(names: &[&str], data: &[u8]) -> Vec<u8> {
    let crc = crc32(data);
    let mut out = Vec::new();
    let first = names[0].as_bytes();
    out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&(first.len() as u16).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(first);
    out.extend_from_slice(data);
    let cd_start = out.len();
    for name in names {
        out.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        out.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0; 12]);
        out.extend_from_slice(&0u32.to_le_bytes()); // every entry at offset 0
        out.extend_from_slice(name.as_bytes());
    }
    let cd_len = out.len() - cd_start;
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(names.len() as u16).to_le_bytes());
    out.extend_from_slice(&(names.len() as u16).to_le_bytes());
    out.extend_from_slice(&(cd_len as u32).to_le_bytes());
    out.extend_from_slice(&(cd_start as u32).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// zlib's CRC-32 (the zip checksum), bit by bit: small inputs only.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn zip_entries_sharing_bytes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let npy = std::fs::read(fixture("numpy/f32.npy")).unwrap();
    // One entry alone reads; the same bytes listed twice are refused.
    let one = dir.path().join("one.npz");
    std::fs::write(&one, zip_sharing_one_entry(&["a.npy"], &npy)).unwrap();
    let source = tensorcast::open(&one, &Default::default()).unwrap();
    assert_eq!(source.tensors().len(), 1);
    let two = dir.path().join("two.npz");
    std::fs::write(&two, zip_sharing_one_entry(&["a.npy", "b.npy"], &npy)).unwrap();
    let e = tensorcast::open(&two, &Default::default()).err().unwrap();
    assert_eq!(e.rule(), Some("archive"), "{e}");
    assert!(e.to_string().contains("overlap"), "{e}");
}

#[cfg(unix)]
#[test]
fn shards_resolve_beside_their_index_and_the_hf_cache_layout_works() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sharded = fixture("safetensors/valid/sharded");
    // The Hugging Face cache: snapshot files are symlinks to ../../blobs/<hash>.
    let snapshot_dir = d.join("snapshots/abc");
    let blobs = d.join("blobs");
    std::fs::create_dir_all(&snapshot_dir).unwrap();
    std::fs::create_dir_all(&blobs).unwrap();
    for e in std::fs::read_dir(&sharded).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if !(name.ends_with(".safetensors") || name.ends_with(".index.json")) {
            continue;
        }
        let blob = blobs.join(format!("blob-{name}"));
        std::fs::copy(&p, &blob).unwrap();
        std::os::unix::fs::symlink(format!("../../blobs/blob-{name}"), snapshot_dir.join(&name)).unwrap();
    }
    let index = snapshot_dir.join("model.safetensors.index.json");
    let cached = tensorcast::open(&index, &Default::default()).unwrap();
    let direct = tensorcast::open(sharded.join("model.safetensors.index.json"), &Default::default()).unwrap();
    assert!(tensorcast::diff(&*cached, &*direct, None).unwrap().is_empty());
    // An index naming a shard in a subfolder (a symlinked one could lead
    // anywhere) is refused: shards are plain names beside the index.
    let escape = d.join("escape");
    std::fs::create_dir(&escape).unwrap();
    std::os::unix::fs::symlink(&sharded, escape.join("sub")).unwrap();
    std::fs::write(
        escape.join("model.safetensors.index.json"),
        r#"{"metadata": {}, "weight_map": {"a": "sub/model-00001-of-00003.safetensors"}}"#,
    )
    .unwrap();
    let e = tensorcast::open(escape.join("model.safetensors.index.json"), &Default::default())
        .err()
        .unwrap();
    assert_eq!(e.rule(), Some("shard-path-escapes"), "{e}");
    // Empty and NUL names say so by rule, not with an OS error.
    for bad in ["", "a\\u0000b"] {
        std::fs::write(
            escape.join("model.safetensors.index.json"),
            format!(r#"{{"metadata": {{}}, "weight_map": {{"a": "{bad}"}}}}"#),
        )
        .unwrap();
        let e = tensorcast::open(escape.join("model.safetensors.index.json"), &Default::default())
            .err()
            .unwrap();
        assert_eq!(e.rule(), Some("shard-path-escapes"), "{bad:?}: {e}");
    }
}

/// `-j` is validated (1 to 256) instead of starting as many threads as a typo
/// asks for, or taking 0 for the default; a folder output named like
/// another format's file is refused before any folder is created.
#[test]
fn thread_counts_and_folder_names_are_checked_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture("gguf/align64.gguf");
    for j in ["0", "100000", "-3"] {
        let out = tensorcast()
            .args(["-j", j, "convert"])
            .arg(&src)
            .arg("-o")
            .arg(dir.path().join("o.safetensors"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "-j {j}");
    }
    tensorcast()
        .args(["-j", "2", "convert"])
        .arg(&src)
        .arg("-o")
        .arg(dir.path().join("o.safetensors"))
        .assert()
        .success();
    let named = dir.path().join("model.safetensors");
    let out = tensorcast()
        .arg("convert")
        .arg(fixture("model/llama/reference-f32.gguf"))
        .args(["--to", "hf", "-o"])
        .arg(&named)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("names a safetensors file"), "{err}");
    assert!(!named.exists(), "a folder named like a file was created");
}

/// Writer flags the output format would ignore are usage errors (exit 2),
/// before anything is written: `--max-shard-size` outside safetensors
/// (and folder) outputs, `--compress` outside tpack.
#[test]
fn writer_flags_the_output_ignores_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = crate::common::fixture("model/llama/hf/model.safetensors");
    for (out, flags) in [
        ("x.gguf", &["--max-shard-size", "1MB"][..]),
        ("x.npz", &["--max-shard-size", "1MB"][..]),
        ("x.safetensors", &["--compress", "3"][..]),
        ("x.gguf", &["--compress", "none"][..]),
    ] {
        let out = dir.path().join(out);
        let r = crate::common::tensorcast()
            .arg("convert")
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .args(flags)
            .output()
            .unwrap();
        assert_eq!(
            r.status.code(),
            Some(2),
            "{flags:?} {}",
            String::from_utf8_lossy(&r.stderr)
        );
        assert!(String::from_utf8_lossy(&r.stderr).contains(flags[0]), "{flags:?}");
        assert!(!out.exists());
    }
    // Where they apply they are taken.
    let out = dir.path().join("ok.safetensors");
    crate::common::tensorcast()
        .arg("convert")
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .args(["--max-shard-size", "100KB"])
        .assert()
        .success();
}

/// Counts and ids from a model folder are checked against the model before
/// anything is allocated for them: a config.json vocab_size of 10^12 (it
/// aborted the process) and a tokenizer.json added-token id of 10^12 (it
/// padded placeholder tokens up to it) are refused by rule.
#[test]
fn vocabulary_counts_beyond_the_embedding_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let copy = |name: &str| -> std::path::PathBuf {
        let src = crate::common::fixture(&format!("model/{name}/hf"));
        let dst = dir.path().join(name);
        std::fs::create_dir_all(&dst).unwrap();
        for e in std::fs::read_dir(&src).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
        }
        dst
    };
    let llama = copy("llama");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(llama.join("config.json")).unwrap()).unwrap();
    config["vocab_size"] = serde_json::json!(1_000_000_000_000u64);
    std::fs::write(llama.join("config.json"), config.to_string()).unwrap();
    let bpe = copy("bpe");
    let mut tj: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bpe.join("tokenizer.json")).unwrap()).unwrap();
    tj["added_tokens"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "id": 4_000_000_000u64, "content": "<huge>", "special": true,
            "single_word": false, "lstrip": false, "rstrip": false, "normalized": false
        }));
    std::fs::write(bpe.join("tokenizer.json"), tj.to_string()).unwrap();
    let mut bconfig: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bpe.join("config.json")).unwrap()).unwrap();
    bconfig.as_object_mut().unwrap().remove("vocab_size");
    std::fs::write(bpe.join("config.json"), bconfig.to_string()).unwrap();
    // The extra token changes the pre-tokenizer's check hash: named here.
    for (folder, rule, extra) in [
        (&llama, "vocab_size 1000000000000 exceeds", &[][..]),
        (&bpe, "exceed the model's", &["--tokenizer-pre", "llama-bpe"][..]),
    ] {
        let out = dir.path().join("out.gguf");
        let r = crate::common::tensorcast()
            .arg("convert")
            .arg(folder)
            .arg("-o")
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{err}");
        assert!(err.contains(rule), "{err}");
        assert!(!out.exists());
    }
}

/// A folder output (--to hf) replaces no file of the user's without
/// --force: the weights, their shards or a tokenizer file in the folder
/// stop the conversion before anything is written (only config.json was
/// checked); an empty folder, or --force, converts.
#[test]
fn folder_outputs_replace_no_file_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let input = crate::common::fixture("model/llama/reference-f32.gguf");
    for (i, name) in [
        "model.safetensors",
        "tokenizer.json",
        "model-00001-of-00002.safetensors",
    ]
    .iter()
    .enumerate()
    {
        let out = dir.path().join(format!("out{i}"));
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join(name), b"mine").unwrap();
        let r = crate::common::tensorcast()
            .arg("convert")
            .arg(&input)
            .args(["--to", "hf", "-o"])
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains(&format!("already holds {name}")), "{name}: {err}");
        assert_eq!(
            std::fs::read(out.join(name)).unwrap(),
            b"mine",
            "{name} untouched"
        );
        assert_eq!(
            std::fs::read_dir(&out).unwrap().count(),
            1,
            "{name}: nothing added"
        );
        crate::common::tensorcast()
            .arg("convert")
            .arg(&input)
            .args(["--to", "hf", "--force", "-o"])
            .arg(&out)
            .assert()
            .success();
    }
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    crate::common::tensorcast()
        .arg("convert")
        .arg(&input)
        .args(["--to", "hf", "-o"])
        .arg(&empty)
        .assert()
        .success();
}

/// Fuzzing finds (fuzz/regressions/model_folder): model folders whose files
/// made the tokenizer library panic inside its own deserializer. Each file
/// is split as the model_folder fuzz target splits it (config.json,
/// tokenizer.json, tokenizer_config.json, tokenizer.model beside the llama
/// fixture's weights) and converted: refused with an error naming
/// tokenizer.json, never a crash.
#[test]
fn model_folder_fuzz_finds_are_refused_not_crashes() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/model_folder");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("m");
        std::fs::create_dir(&folder).unwrap();
        std::fs::copy(
            fixture("model/llama/hf/model.safetensors"),
            folder.join("model.safetensors"),
        )
        .unwrap();
        let mut rest: &[u8] = &data;
        for name in [
            "config.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "tokenizer.model",
        ] {
            let (part, tail) = match rest.windows(3).position(|w| w == b"\n\0\n") {
                Some(i) => (&rest[..i], &rest[i + 3..]),
                None => (rest, &[][..]),
            };
            if !part.is_empty() {
                std::fs::write(folder.join(name), part).unwrap();
            }
            rest = tail;
        }
        let (code, err) = run(&[
            os("convert"),
            folder.as_os_str(),
            os("-o"),
            dir.path().join("out.gguf").as_os_str(),
        ]);
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("error:") && !err.contains("panicked"), "{err}");
        replayed += 1;
    }
    assert!(replayed >= 1);
}
