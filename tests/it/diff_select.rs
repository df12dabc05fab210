//! `diff` across formats (exact and with tolerances) and tensor selection /
//! renaming on `convert`.

use crate::common;
use crate::common::{fixture, reference_read, tensorcast};

#[test]
fn diff_is_exact_across_formats_and_reports_differences() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture("safetensors/cast/to_f32.safetensors");
    let packed = dir.path().join("x.tpack");
    tensorcast()
        .arg("convert")
        .arg(&src)
        .arg("-o")
        .arg(&packed)
        .assert()
        .success();
    tensorcast().arg("diff").arg(&src).arg(&packed).assert().success();
    // A lossy round trip through bf16: different bit for bit, equal within 1%.
    let bf16 = dir.path().join("bf16.safetensors");
    let back = dir.path().join("back.safetensors");
    tensorcast()
        .arg("convert")
        .arg(&src)
        .arg("-o")
        .arg(&bf16)
        .args(["--dtype", "bf16"])
        .assert()
        .success();
    tensorcast()
        .arg("convert")
        .arg(&bf16)
        .arg("-o")
        .arg(&back)
        .args(["--dtype", "f32"])
        .assert()
        .success();
    let out = tensorcast().arg("diff").arg(&src).arg(&back).assert().code(1);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains("randn_f32: ") && text.contains("elements differ (max abs"),
        "{text}"
    );
    tensorcast()
        .arg("diff")
        .arg(&src)
        .arg(&back)
        .args(["--rtol", "0.01", "--atol", "1e-30"])
        .assert()
        .success();
    // Missing tensors and layout changes.
    let fewer = dir.path().join("fewer.safetensors");
    tensorcast()
        .arg("convert")
        .arg(&src)
        .arg("-o")
        .arg(&fewer)
        .args(["--exclude", "mask"])
        .assert()
        .success();
    let out = tensorcast().arg("diff").arg(&src).arg(&fewer).assert().code(1);
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("mask: only in A"));
    let out = tensorcast().arg("diff").arg(&src).arg(&bf16).assert().code(1);
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("f32: F32 [16, 64] vs BF16 [16, 64]"));
}

#[test]
fn include_exclude_rename() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sel.safetensors");
    tensorcast()
        .arg("convert")
        .arg(fixture("safetensors/cast/to_f32.safetensors"))
        .arg("-o")
        .arg(&out)
        .args(["--include", "every_*", "--include", "f32", "--exclude", "*fnuz"])
        .args(["--rename", "every_=all.", "--rename", "f=float"])
        .assert()
        .success();
    let (tensors, _) = reference_read(&out);
    let names: Vec<&str> = tensors.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(
        names,
        ["all.bf16", "all.e4m3", "all.e5m2", "all.e8m0", "all.f16", "float32"]
    );
    let (orig, _) = reference_read(&fixture("safetensors/cast/to_f32.safetensors"));
    let get = |v: &[common::RefTensor], n: &str| v.iter().find(|t| t.0 == n).unwrap().3.clone();
    assert_eq!(get(&tensors, "all.bf16"), get(&orig, "every_bf16"));
    // Two tensors renamed onto one name are refused before anything is written.
    let clash = dir.path().join("clash.safetensors");
    let res = tensorcast()
        .arg("convert")
        .arg(fixture("safetensors/cast/to_f32.safetensors"))
        .arg("-o")
        .arg(&clash)
        .args(["--rename", "every_e4m3=x", "--rename", "every_e5m2=x"])
        .assert()
        .code(1);
    assert!(String::from_utf8_lossy(&res.get_output().stderr).contains("the same name 'x'"));
    assert!(!clash.exists());
}

#[test]
fn quiet_and_verbose() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.safetensors");
    let input = fixture("pytorch/valid/state_dict.pt");
    // Normally a state_dict warns about its dropped `_metadata`; -q silences it.
    let normal = tensorcast()
        .arg("convert")
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&normal.get_output().stderr).contains("warning:"));
    let quiet = tensorcast()
        .arg("convert")
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .args(["--force", "-q"])
        .assert()
        .success();
    assert!(quiet.get_output().stderr.is_empty());
    // -v logs one line per tensor; off a terminal there is no bar.
    let verbose = tensorcast()
        .arg("convert")
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .args(["--force", "-v"])
        .assert()
        .success();
    let log = String::from_utf8_lossy(&verbose.get_output().stderr).into_owned();
    // Per tensor: "wrote 3/9 name ..."; then one closing line for the file.
    let per_tensor = |l: &&str| {
        l.strip_prefix("wrote ")
            .and_then(|r| r.split_whitespace().next())
            .is_some_and(|w| w.starts_with(|c: char| c.is_ascii_digit()) && w.contains('/'))
    };
    assert_eq!(log.lines().filter(per_tensor).count(), 9, "{log}");
    assert!(
        log.lines().last().is_some_and(|l| l.contains(": 9 tensors, ")),
        "{log}"
    );
    assert!(!log.contains('\u{1b}'), "no terminal escapes off a terminal");
}

#[test]
fn limits_are_enforced_and_overridable_from_the_cli() {
    for (file, flag, value, rule) in [
        (
            "pytorch/valid/optimizer.pt",
            "--max-tensors",
            "5",
            "pytorch/too-many-objects",
        ),
        (
            "pytorch/valid/optimizer.pt",
            "--max-objects",
            "50",
            "pytorch/too-many-objects",
        ),
        (
            "pytorch/valid/optimizer.pt",
            "--max-depth",
            "2",
            "pytorch/too-deep",
        ),
        (
            "gguf/metadata.gguf",
            "--max-header-size",
            "100",
            "gguf/header-too-large",
        ),
        (
            "safetensors/cast/source.safetensors",
            "--max-header-size",
            "100",
            "safetensors/",
        ),
        ("tpack/source.tpack", "--max-tensors", "3", "tpack/T6"),
    ] {
        let out = tensorcast()
            .arg("inspect")
            .arg(fixture(file))
            .args([flag, value])
            .assert()
            .code(1);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(err.contains(rule), "{file} {flag}: {err}");
        // The defaults admit the same file.
        tensorcast().arg("inspect").arg(fixture(file)).assert().success();
    }
}

#[test]
fn whole_buffers_a_file_asks_for_respect_the_allocation_limit() {
    let dir = tempfile::tempdir().unwrap();
    // deflated.pt holds strided views of deflated storages; compressed.npz a
    // deflated column-major array: both must be inflated whole.
    for (file, limit, rule) in [
        ("pytorch/valid/deflated.pt", "16", "pytorch/alloc-limit"),
        ("numpy/compressed.npz", "100", "numpy/alloc-limit"),
    ] {
        let out_path = dir.path().join("out.safetensors");
        let out = tensorcast()
            .arg("convert")
            .arg(fixture(file))
            .arg("-o")
            .arg(&out_path)
            .args(["--max-alloc", limit])
            .assert()
            .code(1);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(err.contains(rule) && err.contains("--max-alloc"), "{file}: {err}");
        assert!(!out_path.exists());
        // The default admits it.
        tensorcast()
            .arg("convert")
            .arg(fixture(file))
            .arg("-o")
            .arg(&out_path)
            .assert()
            .success();
        std::fs::remove_file(&out_path).unwrap();
    }
}

/// Counts what a conversion reports.
#[derive(Default)]
struct Counted {
    calls: std::sync::atomic::AtomicU64,
    bytes: std::sync::atomic::AtomicU64,
}

impl tensorcast::Progress for Counted {
    fn begin(&self, _: usize, _: u64) {}
    fn tensor_done(&self, _: &tensorcast::TensorInfo) {}
    fn bytes_done(&self, n: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.calls.fetch_add(1, Relaxed);
        self.bytes.fetch_add(n, Relaxed);
    }
}

#[test]
fn progress_moves_within_a_large_tensor_and_the_cli_closes_with_a_summary() {
    use std::sync::atomic::Ordering::Relaxed;
    let dir = tempfile::tempdir().unwrap();
    // One 16 MiB f32 tensor cast to bf16: produced in 4 MiB chunks.
    let input = dir.path().join("big.safetensors");
    common::write_big_f32(&input, 1, 4 << 20);
    let counted = std::sync::Arc::new(Counted::default());
    let opts = tensorcast::ConvertOptions {
        dtype: Some("bf16".parse().unwrap()),
        progress: Some(tensorcast::ProgressHook(counted.clone())),
        ..Default::default()
    };
    let out = dir.path().join("out.safetensors");
    tensorcast::convert_file(&input, &out, &opts).unwrap();
    assert!(
        counted.calls.load(Relaxed) >= 2,
        "one report for the whole tensor"
    );
    assert_eq!(
        counted.bytes.load(Relaxed),
        8 << 20,
        "bytes reported are the output's"
    );
    // The CLI's closing line names the output, the tensors and the size.
    let r = tensorcast()
        .arg("convert")
        .arg(&input)
        .arg("-o")
        .arg(dir.path().join("o.safetensors"))
        .assert()
        .success();
    let err = String::from_utf8_lossy(&r.get_output().stderr).into_owned();
    assert!(err.contains("o.safetensors: 1 tensors, 16.78 MB in "), "{err}");
    // -q says nothing.
    let r = tensorcast()
        .arg("-q")
        .arg("convert")
        .arg(&input)
        .arg("-o")
        .arg(dir.path().join("p.safetensors"))
        .assert()
        .success();
    assert!(r.get_output().stderr.is_empty());
}
