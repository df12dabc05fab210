//! A `convert` killed (SIGKILL) at any point leaves the target path holding
//! either nothing or the previous complete file, never a partial one; a
//! failed conversion leaves no temporary files behind.

mod common;

use common::{fixture, tensorcast};

#[test]
fn killed_convert_leaves_old_file_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.safetensors");
    common::write_big_f32(&input, 8, 1 << 20);
    let bin = assert_cmd::cargo::cargo_bin("tensorcast");
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    // Time one full conversion (bf16 cast into tpack: real work per byte).
    let target = out_dir.join("model.tpack");
    let t0 = std::time::Instant::now();
    let status = std::process::Command::new(&bin)
        .arg("convert")
        .arg(&input)
        .arg("-o")
        .arg(&target)
        .args(["--dtype", "bf16"])
        .status()
        .unwrap();
    assert!(status.success());
    let full = t0.elapsed();
    let previous = std::fs::read(&target).unwrap();
    let (mut kept_old, mut replaced) = (0, 0);
    let rounds = 20u32;
    for k in 0..rounds {
        // Half the rounds start with no target at all.
        let fresh = k % 2 == 1;
        if fresh {
            let _ = std::fs::remove_file(&target);
        } else {
            std::fs::write(&target, &previous).unwrap();
        }
        let delay = full.mul_f64(f64::from(k) / f64::from(rounds - 4));
        let mut child = std::process::Command::new(&bin)
            .arg("convert")
            .arg(&input)
            .arg("-o")
            .arg(&target)
            .args(["--dtype", "bf16", "--force", "-q"])
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        match std::fs::read(&target) {
            Err(_) => assert!(fresh, "round {k}: the previous file vanished"),
            Ok(bytes) => {
                // Deterministic output: a complete new file equals the old one.
                assert!(
                    bytes == previous,
                    "round {k}: target holds a partial file ({} bytes)",
                    bytes.len()
                );
                tensorcast().arg("verify").arg(&target).assert().success();
                if fresh {
                    replaced += 1;
                } else {
                    kept_old += 1;
                }
            }
        }
    }
    eprintln!("{rounds} kills: {kept_old} kept the old file, {replaced} fresh targets completed, the rest left nothing");
    assert!(replaced > 0 || kept_old > 0);
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
