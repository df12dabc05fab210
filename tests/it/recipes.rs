//! The scale-out recipes in deploy/ run as written: the Slurm array script
//! and the Ray tasks example (its local mode, and on a real Ray head
//! started by the test) split a batch into shares
//! that together convert every model exactly once, and the Kubernetes
//! Indexed Job's container arguments do the same when run with the index
//! Kubernetes would set.

use crate::common::{fixture, tensorcast};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn bin() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("tensorcast")
}

/// Nine models in three folders.
fn models(dir: &Path) -> BTreeSet<String> {
    let src = fixture("gguf/st_input.safetensors");
    let mut want = BTreeSet::new();
    for i in 0..9 {
        let sub = dir.join(format!("team{}", i % 3));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::copy(&src, sub.join(format!("m{i}.safetensors"))).unwrap();
        want.insert(format!("team{}/m{i}.gguf", i % 3));
    }
    want
}

fn outputs(dir: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for team in std::fs::read_dir(dir).unwrap() {
        let team = team.unwrap().path();
        for f in std::fs::read_dir(&team).unwrap() {
            let f = f.unwrap().path();
            found.insert(format!(
                "{}/{}",
                team.file_name().unwrap().to_str().unwrap(),
                f.file_name().unwrap().to_str().unwrap()
            ));
        }
    }
    found
}

/// Every report line's input, asserting none appears twice and all are ok.
fn merged(reports: &Path) -> usize {
    let files: Vec<_> = std::fs::read_dir(reports)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let out = tensorcast()
        .arg("report")
        .arg("merge")
        .args(&files)
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.lines().all(|l| l.contains("\"status\":\"ok\"")), "{text}");
    text.lines().count()
}

#[test]
fn the_slurm_array_script_covers_a_batch_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, out, reports) = (
        tmp.path().join("models"),
        tmp.path().join("out"),
        tmp.path().join("reports"),
    );
    let want = models(&src);
    for task in 1..=3 {
        // An array submitted as --array=1-3.
        let status = Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/slurm/convert-array.sh"))
            .arg(&src)
            .arg(&out)
            .arg("gguf")
            .env("TENSORCAST", bin())
            .env("TENSORCAST_REPORTS", &reports)
            .env("SLURM_ARRAY_TASK_ID", task.to_string())
            .env("SLURM_ARRAY_TASK_MIN", "1")
            .env("SLURM_ARRAY_TASK_COUNT", "3")
            .status()
            .unwrap();
        assert!(status.success());
    }
    assert_eq!(outputs(&out), want);
    assert_eq!(merged(&reports), want.len());
}

#[test]
fn the_ray_example_covers_a_batch_once_in_local_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, out, reports) = (
        tmp.path().join("models"),
        tmp.path().join("out"),
        tmp.path().join("reports"),
    );
    let want = models(&src);
    let status = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/ray/convert_tasks.py"))
        .arg(&src)
        .arg(&out)
        .arg("gguf")
        .args(["--shards", "4", "--local", "--binary"])
        .arg(bin())
        .arg("--reports")
        .arg(&reports)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(outputs(&out), want);
    assert_eq!(merged(&reports), want.len());
}

#[test]
fn the_kubernetes_job_arguments_cover_a_batch_once() {
    let manifest = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/indexed-job.yaml"),
    )
    .unwrap();
    let field = |key: &str| -> String {
        manifest
            .lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .map(|v| v.split('#').next().unwrap().trim().trim_matches('"').to_string())
            .unwrap_or_else(|| panic!("{key} missing"))
    };
    let completions: u64 = field("completions:").parse().unwrap();
    // JOB_COMPLETIONS must equal completions: the value after its name.
    let at = manifest.find("name: JOB_COMPLETIONS").unwrap();
    let value: u64 = manifest[at..]
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .strip_prefix("value:")
        .unwrap()
        .split('#')
        .next()
        .unwrap()
        .trim()
        .trim_matches('"')
        .parse()
        .unwrap();
    assert_eq!(value, completions);
    let args: Vec<String> = manifest
        .lines()
        .skip_while(|l| l.trim() != "args:")
        .skip(1)
        .take_while(|l| l.trim().starts_with("- "))
        .map(|l| l.trim()[2..].to_string())
        .collect();
    assert!(args.contains(&"--shard=auto".to_string()), "{args:?}");
    let tmp = tempfile::tempdir().unwrap();
    let (src, out, reports) = (
        tmp.path().join("models"),
        tmp.path().join("out"),
        tmp.path().join("reports"),
    );
    std::fs::create_dir_all(&reports).unwrap();
    let want = models(&src);
    for index in 0..completions {
        // What Kubernetes does: JOB_COMPLETION_INDEX set, $(VAR) expanded.
        let local: Vec<String> = args
            .iter()
            .map(|a| {
                a.replace("s3://BUCKET/models/", src.to_str().unwrap())
                    .replace("s3://BUCKET/converted/", out.to_str().unwrap())
                    .replace("s3://BUCKET/reports", reports.to_str().unwrap())
                    .replace("$(JOB_COMPLETION_INDEX)", &index.to_string())
            })
            .collect();
        let status = Command::new(bin())
            .args(&local)
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .env("JOB_COMPLETIONS", value.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "{local:?}");
    }
    assert_eq!(outputs(&out), want);
    assert_eq!(merged(&reports), want.len());
}

/// A local Ray head (`ray start --head`, Ray from PyPI), stopped when
/// dropped. Its Python comes from `TENSORCAST_RAY_PYTHON` (which
/// scripts/test sets after installing Ray with tests/ray-venv); without it
/// the test says so and passes only outside CI.
struct RayHead {
    ray: std::path::PathBuf,
    address: String,
}

impl RayHead {
    fn start(python: &Path, elsewhere: &Path, temp: &Path) -> RayHead {
        let ray = python.with_file_name("ray");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Started from another folder than the driver's, as on a cluster.
        let status = Command::new(&ray)
            .current_dir(elsewhere)
            .args(["start", "--head", "--node-ip-address", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .args([
                "--num-cpus",
                "4",
                "--disable-usage-stats",
                "--include-dashboard=false",
                "--temp-dir",
            ])
            .arg(temp)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "ray start failed");
        RayHead {
            ray,
            address: format!("127.0.0.1:{port}"),
        }
    }
}

impl Drop for RayHead {
    fn drop(&mut self) {
        let _ = Command::new(&self.ray)
            .args(["stop", "--force"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// The Ray recipe on a real Ray head, given relative paths as a user's
/// shell gives them: Ray workers start in the head's folder, not the
/// driver's, so the recipe resolves local paths in the driver (every share
/// failed with "reading the list models" before).
#[test]
fn the_ray_recipe_runs_on_a_real_ray_head_with_relative_paths() {
    let Some(python) = std::env::var_os("TENSORCAST_RAY_PYTHON").map(std::path::PathBuf::from) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the Ray test: set TENSORCAST_RAY_PYTHON (tests/ray-venv)"
        );
        eprintln!("TENSORCAST_RAY_PYTHON not set: the real Ray test is not run here");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let want = models(&work.join("models"));
    let head = RayHead::start(&python, &elsewhere, &tmp.path().join("ray"));
    let status = Command::new(&python)
        .current_dir(&work)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/ray/convert_tasks.py"))
        .args([
            "models",
            "out",
            "gguf",
            "--shards",
            "4",
            "--reports",
            "reports",
            "--binary",
        ])
        .arg(bin())
        .env("RAY_ADDRESS", &head.address)
        .status()
        .unwrap();
    drop(head);
    assert!(status.success());
    assert_eq!(outputs(&work.join("out")), want);
    assert_eq!(merged(&work.join("reports")), want.len());
    assert!(!elsewhere.join("out").exists(), "written in the head's folder");
}
