//! Inputs read over HTTP by range from a loopback server that counts what
//! it sends: inspect fetches headers only, conversions equal the local ones,
//! transient 503s are retried, an object replaced mid-read is refused, and
//! shards and split parts resolve beside their index's URL.

use crate::common::range_server::RangeServer;
use crate::common::{fixture, noise, tensorcast};
use std::path::Path;
use std::sync::atomic::Ordering;

/// A safetensors file of about 9 MiB (three tensors), written by the
/// reference crate.
fn big_safetensors() -> Vec<u8> {
    use safetensors::tensor::{Dtype, TensorView};
    let (a, b, c) = (noise(4 << 20, 1), noise(4 << 20, 2), noise(1 << 20, 3));
    let views = vec![
        (
            "a.weight",
            TensorView::new(Dtype::F32, vec![1024, 1024], &a).unwrap(),
        ),
        (
            "b.weight",
            TensorView::new(Dtype::F16, vec![2048, 1024], &b).unwrap(),
        ),
        ("c.bias", TensorView::new(Dtype::I8, vec![1 << 20], &c).unwrap()),
    ];
    safetensors::serialize(views, None).unwrap()
}

/// The same tensors in another format, converted locally.
fn converted(st: &[u8], ext: &str, dir: &Path) -> Vec<u8> {
    let src = dir.join("src.safetensors");
    std::fs::write(&src, st).unwrap();
    let out = dir.join(format!("out.{ext}"));
    tensorcast()
        .arg("convert")
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .arg("--force")
        .assert()
        .success();
    std::fs::read(out).unwrap()
}

fn inspect_json(target: &str) -> serde_json::Value {
    let out = tensorcast()
        .args(["inspect", "--json", target])
        .assert()
        .success();
    let mut v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    strip_paths(&mut v);
    v
}

/// Inspect output names the input; compare everything else.
fn strip_paths(v: &mut serde_json::Value) {
    if let Some(o) = v.as_object_mut() {
        o.remove("path");
        o.remove("file");
        o.values_mut().for_each(strip_paths);
    } else if let Some(a) = v.as_array_mut() {
        a.iter_mut().for_each(strip_paths);
    }
}

#[test]
fn inspect_over_http_fetches_only_headers_and_matches_the_local_file() {
    let dir = tempfile::tempdir().unwrap();
    let st = big_safetensors();
    let files = [
        ("model.safetensors", st.clone()),
        ("model.gguf", converted(&st, "gguf", dir.path())),
        ("model.tpack", converted(&st, "tpack", dir.path())),
        ("model.zt", converted(&st, "zt", dir.path())),
    ];
    let server = RangeServer::start();
    for (name, bytes) in &files {
        server.put(&format!("/m/{name}"), bytes.clone());
        let local = dir.path().join(name);
        std::fs::write(&local, bytes).unwrap();
        server.reset();
        let remote = inspect_json(&server.url(&format!("/m/{name}")));
        let served = server.served();
        assert_eq!(remote, inspect_json(local.to_str().unwrap()), "{name}");
        // Headers are a few hundred bytes here; the detection read is 512
        // bytes and a GGUF's first window 64 KiB: never the tensor data.
        let bound = if name.ends_with(".gguf") { 64 << 10 } else { 4096 };
        assert!(
            served <= bound,
            "{name}: inspect fetched {served} of {} bytes",
            bytes.len()
        );
        eprintln!(
            "{name}: inspect fetched {served} of {} bytes ({:.4}%)",
            bytes.len(),
            served as f64 * 100.0 / bytes.len() as f64
        );
    }
}

#[test]
fn conversions_from_http_equal_local_ones() {
    let dir = tempfile::tempdir().unwrap();
    let st = big_safetensors();
    let gguf = converted(&st, "gguf", dir.path());
    let server = RangeServer::start();
    server.put("/st/model.safetensors", st.clone());
    server.put("/st/model.gguf", gguf.clone());
    std::fs::write(dir.path().join("model.gguf"), &gguf).unwrap();
    for (input, ext) in [
        ("/st/model.safetensors", "gguf"),
        ("/st/model.gguf", "safetensors"),
        ("/st/model.safetensors", "tpack"),
    ] {
        let out = dir.path().join(format!("remote.{ext}"));
        tensorcast()
            .arg("convert")
            .arg(server.url(input))
            .arg("-o")
            .arg(&out)
            .assert()
            .success();
        let local_in = if input.ends_with(".gguf") {
            dir.path().join("model.gguf")
        } else {
            dir.path().join("src.safetensors")
        };
        let want = dir.path().join(format!("local.{ext}"));
        tensorcast()
            .arg("convert")
            .arg(&local_in)
            .arg("-o")
            .arg(&want)
            .assert()
            .success();
        assert_eq!(
            std::fs::read(&out).unwrap(),
            std::fs::read(&want).unwrap(),
            "{input} -> {ext}"
        );
    }
    // The safetensors output also reads equal by the reference crate.
    let back = std::fs::read(dir.path().join("remote.safetensors")).unwrap();
    let st_ref = safetensors::SafeTensors::deserialize(&st).unwrap();
    let back_ref = safetensors::SafeTensors::deserialize(&back).unwrap();
    for (name, view) in st_ref.tensors() {
        assert_eq!(back_ref.tensor(&name).unwrap().data(), view.data(), "{name}");
    }
}

#[test]
fn transient_503s_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let server = RangeServer::start();
    let st = big_safetensors();
    server.put("/r/model.safetensors", st.clone());
    server.state.fail_next.store(3, Ordering::SeqCst);
    let out = dir.path().join("out.safetensors");
    tensorcast()
        .arg("convert")
        .arg(server.url("/r/model.safetensors"))
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    assert_eq!(server.state.failures.load(Ordering::SeqCst), 3);
    assert_eq!(std::fs::read(out).unwrap(), st);
}

#[test]
fn an_object_replaced_mid_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = RangeServer::start();
    let st = big_safetensors();
    server.put("/x/model.safetensors", st.clone());
    let mut other = st.clone();
    let n = other.len();
    other[n - 1] ^= 0xff;
    // Replaced for every range that starts at or past 4 MiB (the pieces after the first).
    *server.state.replace_after.lock().unwrap() = Some((4 << 20, "/x/model.safetensors".into(), other));
    let out = dir.path().join("out.safetensors");
    let assert = tensorcast()
        .arg("convert")
        .arg(server.url("/x/model.safetensors"))
        .arg("-o")
        .arg(&out)
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.contains("object-changed"), "{stderr}");
    assert!(stderr.contains(&server.url("/x/model.safetensors")), "{stderr}");
    assert!(!out.exists());
}

/// The README's promise holds against a server that breaks its
/// precondition: one that ignores If-Match and serves the new version (a new
/// ETag) mid-read, and one that ignores Range and sends whole files. Both
/// are refused by rule with nothing written, not assembled into an output.
#[test]
fn servers_that_ignore_if_match_or_range_are_caught_by_the_responses() {
    let dir = tempfile::tempdir().unwrap();
    let server = RangeServer::start();
    let st = big_safetensors();
    server.put("/x/model.safetensors", st.clone());
    let mut other = st.clone();
    let n = other.len();
    other[n - 1] ^= 0xff;
    server.state.ignore_if_match.store(true, Ordering::SeqCst);
    *server.state.replace_after.lock().unwrap() = Some((4 << 20, "/x/model.safetensors".into(), other));
    let out = dir.path().join("out.safetensors");
    let assert = tensorcast()
        .arg("convert")
        .arg(server.url("/x/model.safetensors"))
        .arg("-o")
        .arg(&out)
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(
        stderr.contains("object-changed") && stderr.contains("ETag"),
        "{stderr}"
    );
    assert!(!out.exists());

    let server = RangeServer::start();
    server.put("/y/model.safetensors", st);
    server.state.ignore_range.store(true, Ordering::SeqCst);
    let assert = tensorcast()
        .arg("convert")
        .arg(server.url("/y/model.safetensors"))
        .arg("-o")
        .arg(&out)
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.to_lowercase().contains("range"), "{stderr}");
    assert!(!out.exists());
}

/// Credentials in a URL never reach an error message, the store's own
/// text included (it repeated the URL it requested).
#[test]
fn user_info_in_a_url_is_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    // A loopback port nobody listens on: the request fails at once.
    let url = "http://alice:s3cret@127.0.0.1:9/a/b.gguf";
    for args in [
        vec!["inspect", url],
        vec![
            "convert",
            url,
            "-o",
            dir.path().join("x.safetensors").to_str().unwrap(),
        ],
    ] {
        let r = tensorcast().args(&args).output().unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&r.stdout),
            String::from_utf8_lossy(&r.stderr)
        );
        assert_eq!(r.status.code(), Some(1), "{said}");
        assert!(!said.contains("s3cret") && !said.contains("alice"), "{said}");
    }
}

#[test]
fn missing_objects_name_the_url_and_status() {
    let server = RangeServer::start();
    let url = server.url("/nope/model.safetensors");
    let assert = tensorcast().args(["inspect", &url]).assert().code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.contains(&url), "{stderr}");
}

#[test]
fn shards_and_split_parts_resolve_beside_their_url() {
    let server = RangeServer::start();
    for (dir, names) in [
        (
            "safetensors/valid/sharded",
            vec![
                "model.safetensors.index.json",
                "model-00001-of-00003.safetensors",
                "model-00002-of-00003.safetensors",
                "model-00003-of-00003.safetensors",
            ],
        ),
        (
            "gguf/split",
            vec![
                "model-00001-of-00003.gguf",
                "model-00002-of-00003.gguf",
                "model-00003-of-00003.gguf",
            ],
        ),
    ] {
        for n in &names {
            server.put(
                &format!("/{dir}/{n}"),
                std::fs::read(fixture(&format!("{dir}/{n}"))).unwrap(),
            );
        }
        let first = format!("{dir}/{}", names[0]);
        assert_eq!(
            inspect_json(&server.url(&format!("/{first}"))),
            inspect_json(fixture(&first).to_str().unwrap()),
            "{dir}"
        );
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a.safetensors"), tmp.path().join("b.safetensors"));
        tensorcast()
            .arg("convert")
            .arg(server.url(&format!("/{first}")))
            .arg("-o")
            .arg(&a)
            .assert()
            .success();
        tensorcast()
            .arg("convert")
            .arg(fixture(&first))
            .arg("-o")
            .arg(&b)
            .assert()
            .success();
        assert_eq!(std::fs::read(a).unwrap(), std::fs::read(b).unwrap(), "{dir}");
    }
}

#[test]
fn pytorch_checkpoints_over_http_read_as_local_ones() {
    let server = RangeServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut cases = 0;
    for entry in std::fs::read_dir(fixture("pytorch/valid")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.ends_with(".json") {
            continue;
        }
        server.put(&format!("/pt/{name}"), std::fs::read(&path).unwrap());
        let url = server.url(&format!("/pt/{name}"));
        // Some fixtures need reading flags (their expected.json says which);
        // those that open plainly must open the same way remotely.
        let local = tensorcast()
            .args(["inspect", "--json"])
            .arg(&path)
            .output()
            .unwrap();
        let remote = tensorcast().args(["inspect", "--json", &url]).output().unwrap();
        assert_eq!(local.status.code(), remote.status.code(), "{name}");
        if !local.status.success() {
            continue;
        }
        let strip = |o: &[u8]| {
            let mut v: serde_json::Value = serde_json::from_slice(o).unwrap();
            strip_paths(&mut v);
            v
        };
        assert_eq!(strip(&remote.stdout), strip(&local.stdout), "{name}");
        let (a, b) = (
            dir.path().join(format!("{name}.r.safetensors")),
            dir.path().join(format!("{name}.l.safetensors")),
        );
        let ra = tensorcast()
            .arg("convert")
            .arg(&url)
            .arg("-o")
            .arg(&a)
            .output()
            .unwrap();
        let rb = tensorcast()
            .arg("convert")
            .arg(&path)
            .arg("-o")
            .arg(&b)
            .output()
            .unwrap();
        assert_eq!(ra.status.code(), rb.status.code(), "{name}");
        if rb.status.success() {
            assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "{name}");
            cases += 1;
        }
    }
    assert!(cases >= 10, "{cases}");
    // A 9 MiB checkpoint written here: inspect reads its directories and pickle only.
    let st = dir.path().join("big.safetensors");
    std::fs::write(&st, big_safetensors()).unwrap();
    let pt = dir.path().join("big.pt");
    tensorcast()
        .arg("convert")
        .arg(&st)
        .arg("-o")
        .arg(&pt)
        .assert()
        .success();
    let bytes = std::fs::read(&pt).unwrap();
    server.put("/pt/big.pt", bytes.clone());
    server.reset();
    tensorcast()
        .args(["inspect", &server.url("/pt/big.pt")])
        .assert()
        .success();
    let served = server.served();
    assert!(
        served < 128 << 10,
        "inspect of a torch zip fetched {served} of {}",
        bytes.len()
    );
    eprintln!(
        "big.pt: inspect fetched {served} of {} bytes ({:.3}%)",
        bytes.len(),
        served as f64 * 100.0 / bytes.len() as f64
    );
}

/// Every file under `dir`, recursively.
fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.is_file() {
            out.push(path);
        }
    }
}

#[test]
fn rejected_and_hostile_files_fail_remotely_as_they_do_locally() {
    // What the ranged preparation walks (headers, zip directories) comes
    // from the file: a hostile one must meet the same refusal as locally.
    let server = RangeServer::start();
    let mut files = Vec::new();
    for dir in [
        "gguf/reject",
        "safetensors/reject",
        "pytorch/hostile",
        "hostile/c7_zip",
        "hostile/c9_counts",
        "tpack/spec",
    ] {
        let d = fixture(dir);
        if d.exists() {
            walk(&d, &mut files);
        }
    }
    assert!(files.len() > 40, "{}", files.len());
    let mut refused = 0;
    for (i, path) in files.iter().enumerate() {
        let name = path.file_name().unwrap().to_str().unwrap();
        if name.ends_with(".json") || name.ends_with(".py") || name.ends_with(".md") || name.ends_with(".txt")
        {
            continue;
        }
        let url_path = format!("/h/{i}/{name}");
        server.put(&url_path, std::fs::read(path).unwrap());
        let local = tensorcast().arg("inspect").arg(path).output().unwrap();
        let remote = tensorcast()
            .args(["inspect", &server.url(&url_path)])
            .output()
            .unwrap();
        assert_eq!(local.status.code(), remote.status.code(), "{}", path.display());
        if !local.status.success() {
            refused += 1;
            // The same rule, named the same way.
            let rule = |o: &[u8]| {
                let s = String::from_utf8_lossy(o).to_string();
                s.split_whitespace()
                    .find(|w| w.contains('/') && !w.contains("://") && !w.starts_with('/'))
                    .map(str::to_string)
            };
            assert_eq!(rule(&remote.stderr), rule(&local.stderr), "{}", path.display());
        }
    }
    assert!(refused > 30, "{refused}");
}

/// The ranged fuzz target's check (fuzz/fuzz_targets/ranged.rs) on the
/// inputs it once failed (fuzz/regressions/ranged) and on every fixture of
/// the ranged formats: opened from only the ranges its format fetched, a
/// file gives what it gives whole: the same refusal, or the same tensors,
/// metadata and bytes.
#[test]
fn ranged_bytes_open_as_the_whole_file_does() {
    use std::sync::Arc;
    use tensorcast::{Bytes, Input, ReadAt, Registry};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    walk(&root.join("fuzz/regressions/ranged"), &mut files);
    for dir in [
        "safetensors/valid",
        "gguf",
        "tpack",
        "ztensor",
        "pytorch/valid",
        "pytorch/hostile",
    ] {
        walk(&fixture(dir), &mut files);
    }
    let registry = Registry::builtin();
    let options = tensorcast::Options::default();
    let mut compared = 0;
    for path in files.iter().filter(|p| !p.to_string_lossy().ends_with(".json")) {
        let data = std::fs::read(path).unwrap();
        let whole = registry.open_input(Input::memory("f", data.clone()), &options);
        let object: Arc<dyn ReadAt> = Arc::new(Bytes::from(data.clone()));
        let mut ranged = Bytes::ranged(object).unwrap();
        ranged.fetch(0, 512).unwrap();
        let Some(format) = registry.detect_head(&ranged[..data.len().min(512)]) else {
            continue;
        };
        if !format.prepare_ranged(&mut ranged, &options.limits).unwrap() {
            continue;
        }
        let remote = registry.open_input(Input::memory("f", ranged), &options);
        match (whole, remote) {
            (Err(a), Err(b)) => assert_eq!(a.rule(), b.rule(), "{}: {a} / {b}", path.display()),
            (Ok(a), Ok(b)) => {
                assert_eq!(a.tensors(), b.tensors(), "{}", path.display());
                // Debug text: NaN values compare unequal as values.
                assert_eq!(
                    format!("{:?}", a.metadata()),
                    format!("{:?}", b.metadata()),
                    "{}",
                    path.display()
                );
                for i in 0..a.tensors().len() {
                    let (x, y) = (
                        a.tensor_data(i).and_then(|d| d.into_vec()),
                        b.tensor_data(i).and_then(|d| d.into_vec()),
                    );
                    assert_eq!(x.ok(), y.ok(), "{} tensor {i}", path.display());
                }
            }
            (a, b) => panic!("{}: whole {:?}, ranged {:?}", path.display(), a.err(), b.err()),
        }
        compared += 1;
    }
    assert!(compared > 40, "{compared}");
}

/// A server claiming an object far larger than the disk can hold (10 TB)
/// for a file that is downloaded whole is refused before a byte of the
/// temporary copy is written, naming the claim.
#[test]
fn a_claimed_size_beyond_the_free_disk_is_refused_before_spooling() {
    let server = RangeServer::start();
    let name = "dtypes_legacy.pt";
    server.put(
        "/big/model.pt",
        std::fs::read(fixture(&format!("pytorch/valid/{name}"))).unwrap(),
    );
    server.state.claim_len.store(10 << 40, Ordering::SeqCst);
    let r = tensorcast()
        .args(["inspect", &server.url("/big/model.pt")])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(err.contains("free for its temporary copy"), "{err}");
    assert!(
        server.state.served.load(Ordering::SeqCst) < 1 << 20,
        "nothing spooled"
    );
}
