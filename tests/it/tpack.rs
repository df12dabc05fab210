//! tpack round trips against the reference readers, append (including under
//! SIGKILL), and damage detection by `verify` and by ordinary reads.

use crate::common;
use crate::common::{fixture, reference_read, tensorcast, write_big_f32};
use std::path::{Path, PathBuf};
use tensorcast::tpack::TpackFile;
use tensorcast::Source;

fn convert(input: &Path, output: &Path, extra: &[&str]) {
    tensorcast()
        .arg("convert")
        .arg(input)
        .arg("-o")
        .arg(output)
        .args(extra)
        .assert()
        .success();
}

fn safetensors_fixtures() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["safetensors/valid", "safetensors/cast"] {
        for e in std::fs::read_dir(fixture(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "safetensors") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn safetensors_round_trip_is_identical_in_bytes_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = safetensors_fixtures();
    assert!(fixtures.len() >= 10);
    for (k, input) in fixtures.iter().enumerate() {
        for compress in [&[][..], &["--compress=none"][..], &["--compress=19"][..]] {
            let packed = dir.path().join(format!("{k}.tpack"));
            let back = dir.path().join(format!("{k}.safetensors"));
            let _ = std::fs::remove_file(&packed);
            let _ = std::fs::remove_file(&back);
            convert(input, &packed, compress);
            tensorcast().arg("verify").arg(&packed).assert().success();
            convert(&packed, &back, &[]);
            assert_eq!(
                reference_read(&back),
                reference_read(input),
                "{} {compress:?}",
                input.display()
            );
        }
    }
}

#[test]
fn gguf_round_trip_keeps_blocks_and_typed_metadata() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["quants.gguf", "metadata.gguf", "metadata_v2.gguf"] {
        let input = fixture(&format!("gguf/{name}"));
        let packed = dir.path().join(format!("{name}.tpack"));
        let back = dir.path().join(name);
        convert(&input, &packed, &["--keep-quantized"]);
        convert(&packed, &back, &["--keep-quantized"]);
        // gguf-py wrote the inputs as v3 with default alignment: GGUF -> tpack
        // -> GGUF reproduces them byte for byte (v2 comes back as v3).
        if name != "metadata_v2.gguf" {
            assert!(
                std::fs::read(&back).unwrap() == std::fs::read(&input).unwrap(),
                "{name}"
            );
        }
        let a = tensorcast::open(&input, &Default::default()).unwrap();
        let b = tensorcast::open(&back, &Default::default()).unwrap();
        assert_eq!(a.metadata(), b.metadata(), "{name}: typed metadata");
        assert_eq!(a.tensors().len(), b.tensors().len());
    }
}

fn names(path: &Path) -> Vec<String> {
    let f = TpackFile::open(path, &Default::default()).unwrap();
    f.tensors().iter().map(|t| t.name.clone()).collect()
}

#[test]
fn append_adds_tensors_and_metadata_and_refuses_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("m.tpack");
    convert(&fixture("safetensors/cast/source.safetensors"), &base, &[]);
    let before = names(&base);
    tensorcast()
        .arg("append")
        .arg(&base)
        .arg(fixture("gguf/metadata.gguf"))
        .assert()
        .success();
    let after = names(&base);
    assert_eq!(&after[..before.len()], &before[..]);
    assert!(after.len() > before.len());
    let f = TpackFile::open(&base, &Default::default()).unwrap();
    assert_eq!(f.commit().0.generation, 2);
    let gguf = tensorcast::open(fixture("gguf/metadata.gguf"), &Default::default()).unwrap();
    for (k, v) in gguf.metadata().iter() {
        assert_eq!(f.metadata().get(k), Some(v), "{k}");
    }
    // Every old and new tensor still reads with its exact bytes.
    let st = tensorcast::open(
        fixture("safetensors/cast/source.safetensors"),
        &Default::default(),
    )
    .unwrap();
    for (i, t) in st.tensors().iter().enumerate() {
        let j = f.find(&t.name).unwrap();
        assert_eq!(
            f.tensor_data(j).unwrap().into_vec().unwrap(),
            st.tensor_data(i).unwrap().into_vec().unwrap()
        );
    }
    drop(f);
    let out = tensorcast()
        .arg("append")
        .arg(&base)
        .arg(fixture("gguf/metadata.gguf"))
        .assert()
        .code(1);
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("tpack/T15"));
    assert_eq!(names(&base), after, "a refused append changes nothing");
}

#[test]
fn append_killed_at_any_point_leaves_old_or_new_contents() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.tpack");
    convert(&fixture("safetensors/cast/source.safetensors"), &base, &[]);
    let big = dir.path().join("big.safetensors");
    common::write_big_f32(&big, 12, 1 << 20);
    let old = names(&base);
    let bin = assert_cmd::cargo::cargo_bin("tensorcast");
    let work = dir.path().join("work.tpack");
    // Each point of the append protocol (core's crash.rs), in order: until
    // the other slot is written the old contents stand, from then on the new.
    // Later rounds append to a file earlier crashes left leftovers in.
    let points: Vec<(String, bool)> = (1..=12)
        .map(|k| (format!("append-tensor#{k}"), false))
        .chain(
            [
                ("append-manifest", false),
                ("append-slot", false),
                ("append-slot-written", true),
                ("append-committed", true),
            ]
            .map(|(p, new)| (p.to_string(), new)),
        )
        .collect();
    std::fs::copy(&base, &work).unwrap();
    let mut new = None;
    for (at, expect_new) in &points {
        let status = std::process::Command::new(&bin)
            .arg("append")
            .arg(&work)
            .arg(&big)
            .env(tensorcast::CRASH_AT_VAR, at)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(
            status.code(),
            None,
            "{at}: the crash point was not reached ({status})"
        );
        let got = names(&work);
        tensorcast().arg("verify").arg(&work).assert().success();
        if *expect_new {
            assert_eq!(got.len(), old.len() + 12, "{at}: not the new contents");
            assert!(got.starts_with(&old));
            new = Some(got);
            std::fs::copy(&base, &work).unwrap();
        } else {
            assert_eq!(got, old, "{at}: not the old contents");
        }
    }
    // An uninterrupted append over the leftovers gives the same new contents.
    tensorcast().arg("append").arg(&work).arg(&big).assert().success();
    assert_eq!(Some(names(&work)), new);
}

/// Byte ranges a file's current contents depend on.
fn used_ranges(path: &Path) -> Vec<(u64, u64)> {
    let f = TpackFile::open(path, &Default::default()).unwrap();
    let (slot, index) = f.commit();
    let slot_at = 64 + 64 * index as u64;
    // Magic and major version (a different minor version is legal, T2).
    let mut used = vec![
        (0, 10),
        (slot_at, slot_at + 64),
        (slot.manifest_offset, slot.manifest_offset + slot.manifest_len),
    ];
    for e in &f.manifest().tensors {
        for c in &e.chunks {
            used.push((c.offset, c.offset + c.stored_len));
        }
    }
    used
}

#[test]
fn every_flipped_byte_is_caught_or_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.tpack");
    convert(&fixture("safetensors/cast/source.safetensors"), &path, &[]);
    let clean = std::fs::read(&path).unwrap();
    let used = used_ranges(&path);
    let reference = tensorcast::open(
        fixture("safetensors/cast/source.safetensors"),
        &Default::default(),
    )
    .unwrap();
    let expected: Vec<Vec<u8>> = (0..reference.tensors().len())
        .map(|i| reference.tensor_data(i).unwrap().into_vec().unwrap())
        .collect();
    let n = clean.len();
    let mut positions: Vec<usize> = (0..512.min(n)).collect();
    positions.extend((0..2048).map(|k| k * n / 2048));
    positions.extend(n.saturating_sub(256)..n);
    let (mut caught, mut harmless) = (0, 0);
    for pos in positions {
        let mut bytes = clean.clone();
        bytes[pos] ^= 0x10;
        let in_use = used.iter().any(|&(a, b)| (a..b).contains(&(pos as u64)));
        let outcome = TpackFile::from_bytes("m.tpack".as_ref(), bytes.into(), &Default::default());
        let detected = match &outcome {
            Err(e) => {
                assert!(e.to_string().contains("[rule tpack/T"), "{e}");
                true
            }
            Ok(f) => {
                let damage = f.verify();
                let reads: Vec<_> = (0..f.tensors().len())
                    .map(|i| f.tensor_data(i).and_then(|d| d.into_vec()))
                    .collect();
                let read_failed = reads.iter().any(|r| r.is_err());
                assert_eq!(
                    !damage.is_empty(),
                    read_failed,
                    "verify and reads disagree at byte {pos}"
                );
                if !read_failed {
                    let got: Vec<Vec<u8>> = reads.into_iter().map(|r| r.unwrap()).collect();
                    assert!(
                        got == expected,
                        "byte {pos}: wrong data returned without an error"
                    );
                }
                read_failed
            }
        };
        if in_use {
            assert!(detected, "flip at byte {pos} (in use) went unnoticed");
            caught += 1;
        } else {
            harmless += 1;
        }
    }
    eprintln!("{caught} flips in used bytes caught, {harmless} in unused bytes harmless");
    assert!(caught > 1000, "{caught} caught, {harmless} harmless");
}

#[test]
fn many_tiny_tensors_cost_only_a_few_percent() {
    // 5000 tensors of 12..=1024 bytes of incompressible data: tpack must stay
    // within 3% of the safetensors file holding the same tensors.
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("tiny.safetensors");
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    let mut x = 0x2545f4914f6cdd1du64;
    for i in 0..5000usize {
        let elems = 3 + (i * 37) % 254;
        let start = data.len();
        for _ in 0..elems * 4 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data.push(x as u8);
        }
        header.insert(
            format!("model.layers.{}.block.{}.bias", i / 10, i % 10),
            serde_json::json!({"dtype": "U8", "shape": [elems * 4], "data_offsets": [start, data.len()]}),
        );
    }
    let h = serde_json::to_vec(&header).unwrap();
    let mut file = (h.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(&h);
    file.extend_from_slice(&data);
    std::fs::write(&st, file).unwrap();
    let packed = dir.path().join("tiny.tpack");
    convert(&st, &packed, &[]);
    let (a, b) = (
        std::fs::metadata(&st).unwrap().len(),
        std::fs::metadata(&packed).unwrap().len(),
    );
    eprintln!(
        "5000 tiny tensors: safetensors {a} bytes, tpack {b} bytes ({:.3}x)",
        b as f64 / a as f64
    );
    assert!((b as f64) < 1.03 * a as f64, "tpack {b} vs safetensors {a}");
    let back = dir.path().join("back.safetensors");
    convert(&packed, &back, &[]);
    assert_eq!(reference_read(&back), reference_read(&st));
}

#[test]
fn byte_ranges_decode_only_what_they_cover_and_match_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.safetensors");
    // Two 12 MiB tensors: three 4 MiB chunks each.
    write_big_f32(&input, 2, 3 << 20);
    let packed = dir.path().join("big.tpack");
    convert(&input, &packed, &[]);
    let raw = std::fs::read(&input).unwrap();
    let data_start = 8 + u64::from_le_bytes(raw[..8].try_into().unwrap()) as usize;
    let f = TpackFile::open(&packed, &Default::default()).unwrap();
    let chunks = &f.manifest().tensors[1].chunks;
    assert_eq!(chunks.len(), 3);
    assert!(chunks
        .iter()
        .all(|c| c.codec != tensorcast::tpack::codec::Codec::Raw));
    let t1 = &raw[data_start + (12 << 20)..data_start + (24 << 20)];
    let mut whole = vec![0u8; 12 << 20];
    f.read_tensor(1, &mut whole).unwrap();
    assert!(whole == t1);
    // The same into a buffer the reader allocates (huge pages at this size),
    // refused over the allocation limit.
    assert!(f.read_tensor_owned(1).unwrap()[..] == t1[..]);
    let limits = tensorcast::Limits {
        max_alloc_bytes: (12 << 20) - 1,
        ..Default::default()
    };
    let small = TpackFile::open(&packed, &limits).unwrap();
    let err = small.read_tensor_owned(1).unwrap_err().to_string();
    assert!(err.contains("tpack/alloc-limit") && err.contains("w.1"), "{err}");
    // Inside one chunk, across a boundary, across all three, the last byte, empty.
    for (start, len) in [
        (100, 1000),
        ((4 << 20) - 10, 20),
        (3, (12 << 20) - 6),
        ((12 << 20) - 1, 1),
        (5, 0),
    ] {
        let mut out = vec![0u8; len];
        f.read_range(1, start as u64, &mut out).unwrap();
        assert!(out == t1[start..start + len], "range {start}+{len}");
    }
    // Past the end is refused.
    let mut out = vec![0u8; 2];
    assert!(f.read_range(1, (12 << 20) - 1, &mut out).is_err());
    // A range in one chunk does not read the others: damage there goes unseen.
    let mut bytes = std::fs::read(&packed).unwrap();
    let last = &chunks[2];
    bytes[(last.offset + last.stored_len / 2) as usize] ^= 0x55;
    let damaged = dir.path().join("damaged.tpack");
    std::fs::write(&damaged, &bytes).unwrap();
    let g = TpackFile::open(&damaged, &Default::default()).unwrap();
    let mut out = vec![0u8; 4096];
    g.read_range(1, 0, &mut out).unwrap();
    assert!(out == t1[..4096]);
    let err = g.read_range(1, 9 << 20, &mut out).unwrap_err().to_string();
    assert!(err.contains("tpack/T11") && err.contains("chunk 2"), "{err}");
}

#[test]
fn tied_weights_are_stored_once_and_output_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    // torch saved `lm_head.weight` and `embed.weight` as one storage, and
    // `first_row` as a view of its first row.
    let input = fixture("pytorch/valid/tied.pt");
    let packed = dir.path().join("tied.tpack");
    convert(&input, &packed, &[]);
    let f = TpackFile::open(&packed, &Default::default()).unwrap();
    let chunks = |name: &str| {
        let e = f.manifest().tensors.iter().find(|e| e.info.name == name);
        e.unwrap().chunks.clone()
    };
    assert_eq!(chunks("lm_head.weight"), chunks("embed.weight"));
    assert_ne!(chunks("lm_head.weight"), chunks("first_row"));
    // Reading either name gives torch's values (the fixture's expected hex).
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("pytorch/valid/tied.pt.expected.json")).unwrap())
            .unwrap();
    for (i, info) in f.tensors().iter().enumerate() {
        let mut out = vec![0u8; info.nbytes as usize];
        f.read_tensor(i, &mut out).unwrap();
        let hex = expected["tensors"][&info.name]["hex"].as_str().unwrap();
        assert_eq!(out, common::unhex(hex), "{}", info.name);
    }

    let out = tensorcast().arg("inspect").arg(&packed).output().unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    let line = table.lines().find(|l| l.starts_with("embed.weight")).unwrap();
    assert!(line.ends_with("(stored once with lm_head.weight)"), "{table}");

    // Same input and options, any thread count: the same bytes.
    let big = dir.path().join("big.safetensors");
    write_big_f32(&big, 3, 3 << 20);
    let outputs: Vec<Vec<u8>> = [["-j", "1"], ["-j", "2"], ["-j", "2"]]
        .iter()
        .enumerate()
        .map(|(k, jobs)| {
            let out = dir.path().join(format!("big{k}.tpack"));
            convert(&big, &out, jobs);
            std::fs::read(&out).unwrap()
        })
        .collect();
    assert!(outputs[0] == outputs[1] && outputs[1] == outputs[2]);

    // `inspect` reports each tensor's codec, chunk count and ratio as stored.
    let packed = dir.path().join("big0.tpack");
    let f = TpackFile::open(&packed, &Default::default()).unwrap();
    let out = tensorcast()
        .args(["inspect", "--json"])
        .arg(&packed)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (e, j) in f
        .manifest()
        .tensors
        .iter()
        .zip(json["tensors"].as_array().unwrap())
    {
        let stored: u64 = e.chunks.iter().map(|c| c.stored_len).sum();
        let codec = e.chunks[0].codec.name();
        let note = format!(
            "{codec} {} chunks {:.2}x",
            e.chunks.len(),
            e.info.nbytes as f64 / stored as f64
        );
        assert_eq!(j["storage"], note.as_str());
        assert!(codec.contains("planes"), "{note}");
    }
}

#[test]
fn raw_tensors_from_a_file_sit_where_the_kernel_copies_them_fast() {
    // Tensors of 1 MiB and more whose bytes lie in the input start at the
    // input's offset within a page (so the output file gets them by
    // copy_file_range); smaller ones stay 64-byte aligned. The bytes, the
    // crcs and a conversion back are unchanged.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.safetensors");
    // 3 tensors of 1.25 MiB after a header that is not a page long.
    write_big_f32(&input, 3, 327_680);
    let packed = dir.path().join("big.tpack");
    convert(&input, &packed, &["--compress", "none"]);
    let source = tensorcast::open(&input, &Default::default()).unwrap();
    let file = TpackFile::open(&packed, &Default::default()).unwrap();
    let offsets: Vec<u64> = source.tensors().iter().map(|t| t.file_offset.unwrap()).collect();
    assert!(
        offsets.iter().any(|o| o % 4096 != 0),
        "the test needs unaligned inputs"
    );
    for (entry, from) in file.manifest().tensors.iter().zip(&offsets) {
        let first = entry.chunks[0].offset;
        assert_eq!(first % 4096, from % 4096, "{}", entry.info.name);
        // Back to back after the first chunk.
        for pair in entry.chunks.windows(2) {
            assert_eq!(pair[0].offset + pair[0].stored_len, pair[1].offset);
        }
    }
    assert!(file.verify().is_empty());
    for (i, t) in source.tensors().iter().enumerate() {
        let want = source.tensor_data(i).unwrap().into_vec().unwrap();
        let got = file.tensor_data(i).unwrap().into_vec().unwrap();
        assert!(got == want, "{}: bytes differ", t.name);
    }
}

/// A safetensors file of one F32 tensor called `name`.
fn tiny(path: &std::path::Path, name: &str) {
    let header = format!(r#"{{"{name}":{{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}}}"#);
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend([1u8; 16]);
    std::fs::write(path, bytes).unwrap();
}

/// Two appends to one tpack at once, started together many times: each run
/// ends with a file that verifies and holds both (the second waits on the
/// first's lock, then appends after its commit). Whatever order the two
/// take, the outcome checked is the same, so no timing is assumed.
#[test]
fn concurrent_appends_both_land() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.safetensors"), dir.path().join("b.safetensors"));
    tiny(&a, "from_a");
    tiny(&b, "from_b");
    for round in 0..12 {
        let base = dir.path().join(format!("m{round}.tpack"));
        convert(&fixture("safetensors/cast/source.safetensors"), &base, &[]);
        let before = names(&base).len();
        let spawn = |input: &std::path::Path| {
            std::process::Command::new(env!("CARGO_BIN_EXE_tensorcast"))
                .arg("append")
                .arg(&base)
                .arg(input)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (pa, pb) = (spawn(&a), spawn(&b));
        let (ra, rb) = (pa.wait_with_output().unwrap(), pb.wait_with_output().unwrap());
        assert!(ra.status.success(), "{}", String::from_utf8_lossy(&ra.stderr));
        assert!(rb.status.success(), "{}", String::from_utf8_lossy(&rb.stderr));
        tensorcast().arg("verify").arg(&base).assert().success();
        let after = names(&base);
        assert_eq!(after.len(), before + 2, "round {round}: {after:?}");
        assert!(after.iter().any(|n| n == "from_a") && after.iter().any(|n| n == "from_b"));
    }
}

/// Chosen interleavings, not timing: the first append is paused at each
/// point of its critical section (it has taken the file's lock); there the
/// lock is seen held, the file still reads as committed so far, and a
/// second append is started, which must wait. Released, both land, in
/// order, and the file verifies.
#[cfg(target_os = "linux")]
#[test]
fn appends_take_turns_at_every_point_of_the_first() {
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.safetensors"), dir.path().join("b.safetensors"));
    tiny(&a, "from_a");
    tiny(&b, "from_b");
    for point in [
        "append-tensor",
        "append-manifest",
        "append-slot",
        "append-slot-written",
        "append-committed",
    ] {
        let base = dir.path().join(format!("{point}.tpack"));
        convert(&fixture("safetensors/cast/source.safetensors"), &base, &[]);
        let before = names(&base).len();
        let go = dir.path().join(format!("{point}.go"));
        let reached = dir.path().join(format!("{point}.go.reached"));
        // Releases the paused append however this round ends (a failed
        // assertion must not leave it waiting forever).
        struct Release(std::path::PathBuf);
        impl Drop for Release {
            fn drop(&mut self) {
                let _ = std::fs::write(&self.0, b"");
            }
        }
        let release = Release(go.clone());
        let first = std::process::Command::new(env!("CARGO_BIN_EXE_tensorcast"))
            .arg("append")
            .arg(&base)
            .arg(&a)
            .env(tensorcast::PAUSE_AT_VAR, point)
            .env(tensorcast::PAUSE_FILE_VAR, &go)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Waits for the first to reach the point (an event, not a delay).
        let mut waited = 0;
        while !reached.exists() {
            std::thread::sleep(std::time::Duration::from_millis(5));
            waited += 1;
            assert!(waited < 24_000, "{point}: never reached");
        }
        // The lock is held: a non-blocking exclusive lock is refused.
        let f = std::fs::File::open(&base).unwrap();
        // SAFETY: flock on an open descriptor; LOCK_NB never blocks.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_eq!(r, -1, "{point}: the file is not locked by the first append");
        drop(f);
        // Readers see the last commit: the old one until the new slot is written.
        let committed = matches!(point, "append-slot-written" | "append-committed");
        assert_eq!(names(&base).len(), before + usize::from(committed), "{point}");
        let second = std::process::Command::new(env!("CARGO_BIN_EXE_tensorcast"))
            .arg("append")
            .arg(&base)
            .arg(&b)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(release);
        let (ra, rb) = (
            first.wait_with_output().unwrap(),
            second.wait_with_output().unwrap(),
        );
        assert!(
            ra.status.success(),
            "{point}: {}",
            String::from_utf8_lossy(&ra.stderr)
        );
        assert!(
            rb.status.success(),
            "{point}: {}",
            String::from_utf8_lossy(&rb.stderr)
        );
        tensorcast().arg("verify").arg(&base).assert().success();
        let after = names(&base);
        assert_eq!(after.len(), before + 2, "{point}: {after:?}");
        // The paused one committed first; the waiting one appended after it.
        assert_eq!(&after[after.len() - 2..], ["from_a", "from_b"], "{point}");
    }
}
