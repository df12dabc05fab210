//! A `convert` killed (SIGKILL) at any point leaves the target path holding
//! either nothing or the previous complete file, never a partial one; a
//! failed conversion leaves no temporary files behind.

use crate::common;
use crate::common::{fixture, tensorcast};

/// Runs tensorcast with the crash point `at` armed (see core's `crash.rs`):
/// true when the process died there, false when it finished (the point was
/// not reached that many times).
fn run_crashing_at(args: &[&std::ffi::OsStr], at: &str) -> bool {
    let status = std::process::Command::new(assert_cmd::cargo::cargo_bin("tensorcast"))
        .args(args)
        .env(tensorcast::CRASH_AT_VAR, at)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    if status.success() {
        return false;
    }
    // Aborted (a signal), not a handled error.
    assert_eq!(status.code(), None, "crash at {at}: exited with {status}");
    true
}

/// The crash points of writing one output file, each with the number of
/// times it is reached before the output is renamed into place.
const CONVERT_POINTS: &[&str] = &[
    "file-write#1",
    "file-write#2",
    "file-write#3",
    "file-write#5",
    "file-write#9",
    "file-write#17",
    "file-fsync",
    "file-rename",
];

#[test]
fn killed_convert_leaves_old_file_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.safetensors");
    common::write_big_f32(&input, 8, 1 << 20);
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    // One full conversion (bf16 cast into tpack) gives the expected bytes.
    let target = out_dir.join("model.tpack");
    tensorcast()
        .arg("convert")
        .arg(&input)
        .arg("-o")
        .arg(&target)
        .args(["--dtype", "bf16"])
        .assert()
        .success();
    let previous = std::fs::read(&target).unwrap();
    let args: Vec<&std::ffi::OsStr> = vec![
        "convert".as_ref(),
        input.as_os_str(),
        "-o".as_ref(),
        target.as_os_str(),
        "--dtype".as_ref(),
        "bf16".as_ref(),
        "--force".as_ref(),
        "-q".as_ref(),
    ];
    let mut crashed = 0;
    for fresh in [false, true] {
        for at in CONVERT_POINTS.iter().chain(&["file-renamed"]) {
            if fresh {
                let _ = std::fs::remove_file(&target);
            } else {
                std::fs::write(&target, b"the previous output").unwrap();
            }
            let died = run_crashing_at(&args, at);
            crashed += usize::from(died);
            let now = std::fs::read(&target).ok();
            // Before the rename the target is untouched; from the rename on
            // it is the complete new file (deterministic: equal to the first).
            let renamed = !died || *at == "file-renamed";
            match (renamed, fresh) {
                (true, _) => assert!(now.as_deref() == Some(&previous[..]), "{at}: not the new file"),
                (false, true) => assert!(now.is_none(), "{at}: a fresh target appeared early"),
                (false, false) => assert_eq!(now.as_deref(), Some(&b"the previous output"[..]), "{at}"),
            }
            if renamed {
                tensorcast().arg("verify").arg(&target).assert().success();
            }
        }
    }
    assert!(
        crashed >= 2 * CONVERT_POINTS.len(),
        "only {crashed} crash points were reached"
    );
    // Killed runs leave temporaries; they are hidden and never mistaken for
    // outputs (a batch walk skips them), and the next conversion to the same
    // target removes those nobody holds once they are a minute old.
    let temporaries = || -> Vec<String> {
        std::fs::read_dir(&out_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "model.tpack")
            .collect()
    };
    let stale = temporaries();
    assert!(
        stale
            .iter()
            .all(|n| n.starts_with(".model.tpack.") && n.ends_with(".tensorcast-tmp")),
        "{stale:?}"
    );
    eprintln!("{} temporaries left by the kills", stale.len());
    let minutes_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
    for n in &stale {
        let f = std::fs::File::options()
            .write(true)
            .open(out_dir.join(n))
            .unwrap();
        f.set_modified(minutes_ago).unwrap();
    }
    // A young one (a run that may still be starting) is left alone.
    let young = out_dir.join(".model.tpack.young.tensorcast-tmp");
    std::fs::write(&young, b"").unwrap();
    tensorcast()
        .arg("convert")
        .arg(&input)
        .arg("-o")
        .arg(&target)
        .args(["--dtype", "bf16", "--force", "-q"])
        .assert()
        .success();
    assert_eq!(temporaries(), [".model.tpack.young.tensorcast-tmp"]);
}

#[test]
fn failed_conversion_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("x.gguf");
    // Fails mid-way: the GGUF writer refuses a BOOL tensor while planning.
    tensorcast()
        .arg("convert")
        .arg(fixture("safetensors/cast/to_f32.safetensors"))
        .arg("-o")
        .arg(&target)
        .assert()
        .code(1);
    // A read error in the middle of the data (a truncated input).
    let good = std::fs::read(fixture("gguf/quants.gguf")).unwrap();
    let cut = dir.path().join("cut.gguf");
    std::fs::write(&cut, &good[..good.len() - 100]).unwrap();
    tensorcast()
        .arg("convert")
        .arg(&cut)
        .arg("-o")
        .arg(dir.path().join("y.safetensors"))
        .assert()
        .code(1);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["cut.gguf"], "temporary files left behind");
}

/// SIGTERM or SIGINT at chosen points of a conversion (a file output, a
/// sharded output, a model folder) and of an edit: the process exits with
/// 128 + the signal after removing its temporary files, and the old output
/// is intact.
#[cfg(target_os = "linux")]
#[test]
fn signals_remove_temporaries_and_keep_the_old_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.safetensors");
    common::write_big_f32(&input, 8, 1 << 18);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let cases: [(&str, &[&str]); 3] = [
        ("model.tpack", &[]),
        ("sharded.safetensors", &["--max-shard-size", "3MB"]),
        ("model.gguf", &[]),
    ];
    for (name, flags) in cases {
        let target = out.join(name);
        tensorcast()
            .arg("convert")
            .arg(&input)
            .arg("-o")
            .arg(&target)
            .args(flags)
            .assert()
            .success();
        let files = || {
            // (path, size, hash of the bytes): a failure prints names, not bytes.
            let mut v: Vec<_> = common::walk(&out)
                .into_iter()
                .map(|(p, m)| {
                    use std::hash::{Hash, Hasher};
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    std::fs::read(&p).unwrap().hash(&mut h);
                    (p.clone(), m.len(), h.finish())
                })
                .collect();
            v.sort();
            v
        };
        let before = files();
        for (signal, code) in [("TERM", 143), ("INT", 130)] {
            for point in ["file-write#1", "file-write#3", "file-fsync", "file-rename"] {
                let status = std::process::Command::new(assert_cmd::cargo::cargo_bin("tensorcast"))
                    .arg("convert")
                    .arg(&input)
                    .arg("-o")
                    .arg(&target)
                    .arg("--force")
                    .args(["--dtype", "bf16"])
                    .args(flags)
                    .env(tensorcast::CRASH_AT_VAR, format!("{point}@{signal}"))
                    .stderr(std::process::Stdio::null())
                    .status()
                    .unwrap();
                assert_eq!(status.code(), Some(code), "{name} {point}@{signal}");
                assert_eq!(
                    files(),
                    before,
                    "{name} {point}@{signal}: files differ (temporaries left?)"
                );
            }
        }
    }
    // An edit interrupted while its finished file has a temporary name.
    let gguf = out.join("model.gguf");
    let before = std::fs::read(&gguf).unwrap();
    let status = std::process::Command::new(assert_cmd::cargo::cargo_bin("tensorcast"))
        .arg("edit")
        .arg(&gguf)
        .args(["--set", "general.name=x"])
        .env(tensorcast::CRASH_AT_VAR, "edit-linked@TERM")
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(143));
    assert_eq!(std::fs::read(&gguf).unwrap(), before);
    let hidden: Vec<_> = common::walk(&out)
        .into_iter()
        .filter(|(p, _)| p.to_string_lossy().ends_with(".tensorcast-tmp"))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}

/// A model folder output that fails at any write (a full disk, injected at
/// each write in turn) leaves the folder as it was: a folder it created is
/// gone, a folder holding a previous model and a user's own file keeps
/// every byte, and no temporary file is left. The files appear only when
/// all are written.
#[test]
fn a_failed_folder_output_leaves_the_folder_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("model/llama/reference-f32.gguf");
    let fresh = dir.path().join("fresh");
    let kept = dir.path().join("kept");
    tensorcast()
        .arg("convert")
        .arg(&input)
        .args(["--to", "hf", "-o"])
        .arg(&kept)
        .assert()
        .success();
    std::fs::write(kept.join("NOTES.md"), "mine").unwrap();
    let snapshot = |d: &std::path::Path| {
        let mut v: Vec<_> = common::walk(d)
            .into_iter()
            .map(|(p, _)| (p.clone(), std::fs::read(&p).unwrap()))
            .collect();
        v.sort();
        v
    };
    let before = snapshot(&kept);
    let mut failures = 0;
    for k in 1..400 {
        let fail = |out: &std::path::Path, force: bool| {
            let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("tensorcast"));
            cmd.arg("convert")
                .arg(&input)
                .args(["--to", "hf", "--dtype", "bf16", "-o"])
                .arg(out)
                .env("TENSORCAST_FAIL_AT", format!("file-write#{k}"))
                .stderr(std::process::Stdio::null());
            if force {
                cmd.arg("--force");
            }
            cmd.status().unwrap()
        };
        let status = fail(&kept, true);
        if status.success() {
            break; // past the last write
        }
        failures += 1;
        assert_eq!(status.code(), Some(1), "write {k}");
        assert_eq!(snapshot(&kept), before, "write {k}: the folder changed");
        assert!(!fail(&fresh, false).success());
        assert!(!fresh.exists(), "write {k}: a partial new folder was left");
    }
    assert!(failures > 3, "only {failures} writes were failed");
    // Then a run without failures replaces the model (and keeps the notes).
    assert_ne!(snapshot(&kept), before);
    assert_eq!(std::fs::read(kept.join("NOTES.md")).unwrap(), b"mine");
    let names: Vec<_> = common::walk(&kept)
        .into_iter()
        .filter(|(p, _)| p.to_string_lossy().ends_with(".tensorcast-tmp"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}
