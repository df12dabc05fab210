//! Issue 16's committed hostile corpus (`fixtures/hostile`, made by its
//! generate.py): every case of manifest.json run in a fresh sandbox, its
//! FIFOs and symlinks made first, asserting the exact exit code, the rule in
//! the error, and that nothing appeared but the outputs the case allows (and
//! no symlink's target was written through).
#![cfg(unix)]

use crate::common;
use crate::common::fixture;
use serde_json::Value as Json;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Every path under `dir` (symlinks not followed) with its size.
fn snapshot(dir: &Path) -> BTreeSet<(PathBuf, u64)> {
    common::walk(dir)
        .into_iter()
        .map(|(p, meta)| {
            let size = if meta.is_file() { meta.len() } else { 0 };
            (p.strip_prefix(dir).unwrap().to_path_buf(), size)
        })
        .collect()
}

fn setup(sandbox: &Path, step: &Json) {
    let parent = |p: &Path| std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let pair = |v: &Json| {
        (
            v[0].as_str().unwrap().to_string(),
            v[1].as_str().unwrap().to_string(),
        )
    };
    if let Some(p) = step["fifo"].as_str() {
        let p = sandbox.join(p);
        parent(&p);
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a file.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    } else if let Some(v) = step.get("symlink") {
        let (link, target) = pair(v);
        let link = sandbox.join(link);
        parent(&link);
        std::os::unix::fs::symlink(target, link).unwrap();
    } else if let Some(v) = step.get("copy") {
        let (from, to) = pair(v);
        let to = sandbox.join(to);
        parent(&to);
        std::fs::copy(fixture(&from), to).unwrap();
    } else if let Some(v) = step.get("write") {
        let (to, text) = pair(v);
        std::fs::write(sandbox.join(to), text).unwrap();
    } else {
        panic!("unknown setup step {step}");
    }
}

#[test]
fn every_case_has_its_exact_outcome_and_touches_nothing_else() {
    let manifest: Vec<Json> =
        serde_json::from_slice(&std::fs::read(fixture("hostile/manifest.json")).unwrap()).unwrap();
    let mut per_class = std::collections::BTreeMap::new();
    for case in &manifest {
        let name = case["name"].as_str().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let sandbox = dir.path();
        for f in case["files"].as_array().unwrap() {
            let rel = f.as_str().unwrap();
            let to = sandbox.join(rel);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(fixture(&format!("hostile/{rel}")), to).unwrap();
        }
        for step in case["setup"].as_array().unwrap() {
            setup(sandbox, step);
        }
        let before = snapshot(sandbox);
        let args: Vec<&str> = case["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let out = common::tensorcast()
            .args(&args)
            .current_dir(sandbox)
            .timeout(std::time::Duration::from_secs(120))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            case["exit"].as_i64().map(|c| c as i32),
            "{name}: {stderr}"
        );
        for want in case["stderr"].as_array().unwrap() {
            assert!(
                stderr.contains(want.as_str().unwrap()),
                "{name}: wanted {want} in: {stderr}"
            );
        }
        let after = snapshot(sandbox);
        let allowed: BTreeSet<PathBuf> = case["created"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| PathBuf::from(c.as_str().unwrap()))
            .collect();
        let new: Vec<_> = after
            .difference(&before)
            .filter(|(p, _)| !allowed.contains(p))
            .collect();
        let replaced_link = name == "forced_symlink_is_replaced_not_written_through";
        if replaced_link {
            // The link itself became the output; its target kept its bytes.
            assert_eq!(std::fs::read(sandbox.join("victim.txt")).unwrap(), b"keep me");
            assert!(std::fs::symlink_metadata(sandbox.join("out.safetensors"))
                .unwrap()
                .is_file());
        } else {
            assert!(new.is_empty(), "{name}: created or changed {new:?}");
            let gone: Vec<_> = before.difference(&after).collect();
            assert!(gone.is_empty(), "{name}: removed or changed {gone:?}");
        }
        for c in &allowed {
            assert!(
                sandbox.join(c).exists(),
                "{name}: {} was not written",
                c.display()
            );
        }
        *per_class.entry(case["class"].as_u64().unwrap()).or_insert(0) += 1;
    }
    eprintln!("cases per class: {per_class:?}");
    assert_eq!(per_class.len(), 12, "every class has cases");
}
