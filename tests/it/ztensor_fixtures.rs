//! zTensor (.zt v2) against ztensor 2.1.2 itself (fixtures/ztensor/
//! generate.py): every file it wrote (every storage and logical type we
//! hold, zstd-seekable parts, a canonical file, attributes) reads equal to
//! what ztensor reads back; each reject fails with its rule; verify checks
//! every part's digest; and .zt ⇄ tpack ⇄ safetensors round trips are
//! bit-exact. (ztensor reading the files we write: python/tests/test_ztensor.py.)

use crate::common::{fixture, tensorcast, unhex};

fn expected() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixture("ztensor/expected.json")).unwrap()).unwrap()
}

#[test]
fn files_ztensor_wrote_read_equal_to_what_it_reads() {
    let mut count = 0;
    for (file, tensors) in expected()["files"].as_object().unwrap() {
        let source = tensorcast::open(fixture(&format!("ztensor/{file}")), &Default::default()).unwrap();
        assert_eq!(source.format(), "ztensor");
        let by_name: std::collections::HashMap<&str, usize> = source
            .tensors()
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.as_str(), i))
            .collect();
        let tensors = tensors.as_array().unwrap();
        assert_eq!(source.tensors().len(), tensors.len(), "{file}");
        for want in tensors {
            let name = want["name"].as_str().unwrap();
            let i = by_name[name];
            let got = &source.tensors()[i];
            assert_eq!(
                got.dtype.to_string(),
                want["dtype"].as_str().unwrap(),
                "{file} {name}"
            );
            let shape: Vec<u64> = want["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .collect();
            assert_eq!(got.shape, shape, "{file} {name}");
            let bytes = source.tensor_data(i).unwrap().into_vec().unwrap();
            assert_eq!(
                bytes.len() as u64,
                want["nbytes"].as_u64().unwrap(),
                "{file} {name}"
            );
            assert_eq!(
                format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes)),
                want["xxh3"].as_str().unwrap(),
                "{file} {name}"
            );
            if let Some(hex) = want["hex"].as_str() {
                assert_eq!(bytes, unhex(hex), "{file} {name}");
            }
            count += 1;
        }
    }
    assert_eq!(count, 27);
    let zstd = tensorcast::open(fixture("ztensor/zstd.zt"), &Default::default()).unwrap();
    let meta = |k: &str| zstd.metadata().get(k).map(|v| v.preview(40));
    assert_eq!(meta("model").as_deref(), Some("tiny"));
    assert_eq!(meta("layers").as_deref(), Some("2"));
    assert_eq!(meta("ids").as_deref(), Some("[1,2,3]"));
}

#[test]
fn each_reject_fails_with_its_rule() {
    let rules: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("ztensor/reject/expected.json")).unwrap()).unwrap();
    assert!(rules.as_object().unwrap().len() >= 10);
    for (file, rule) in rules.as_object().unwrap() {
        // Structure is refused at open; a CSR object's data when it is read.
        let e = match tensorcast::open(fixture(&format!("ztensor/reject/{file}")), &Default::default()) {
            Ok(s) => (0..s.tensors().len())
                .find_map(|i| s.tensor_data(i).and_then(|d| d.into_vec()).err())
                .unwrap_or_else(|| panic!("{file} read")),
            Err(e) => e,
        };
        let id = rule.as_str().unwrap().strip_prefix("ztensor/").unwrap();
        assert_eq!(e.rule(), Some(id), "{file}: {e}");
    }
}

#[test]
fn verify_checks_every_part_digest() {
    for f in ["dense.zt", "zstd.zt", "canonical.zt"] {
        tensorcast()
            .arg("verify")
            .arg(fixture(&format!("ztensor/{f}")))
            .assert()
            .success();
    }
    // One data byte of one tensor flipped: the manifest still opens, verify names it.
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(fixture("ztensor/dense.zt")).unwrap();
    let source = tensorcast::open(fixture("ztensor/dense.zt"), &Default::default()).unwrap();
    let f32 = source.tensors().iter().find(|t| t.name == "f32").unwrap();
    bytes[f32.file_offset.unwrap() as usize + 3] ^= 0x40;
    let damaged = dir.path().join("damaged.zt");
    std::fs::write(&damaged, &bytes).unwrap();
    let out = tensorcast().arg("verify").arg(&damaged).assert().code(1);
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string()
        + &String::from_utf8_lossy(&out.get_output().stderr);
    assert!(text.contains("'f32'") && text.contains("digest"), "{text}");
}

#[test]
fn zt_tpack_safetensors_round_trips_are_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["dense.zt", "zstd.zt"] {
        let src = fixture(&format!("ztensor/{f}"));
        // complex128 has no safetensors dtype: from the safetensors step on
        // it is left out (and the rest must still be bit-exact).
        let steps: [(std::path::PathBuf, &[&str]); 4] = [
            (dir.path().join(format!("{f}.tpack")), &[]),
            (
                dir.path().join(format!("{f}.safetensors")),
                &["--exclude", "c128"],
            ),
            (dir.path().join(format!("{f}.again.zt")), &[]),
            (dir.path().join(format!("{f}.again.tpack")), &[]),
        ];
        let mut prev = src.clone();
        let mut excluded = false;
        for (next, args) in &steps {
            tensorcast()
                .arg("convert")
                .arg(&prev)
                .arg("-o")
                .arg(next)
                .args(*args)
                .assert()
                .success();
            excluded |= !args.is_empty();
            let mut select = tensorcast::Selection::default();
            if excluded {
                select.exclude.push("c128".into());
            }
            let original: Box<dyn tensorcast::Source> = Box::new(
                tensorcast::Select::new(tensorcast::open(&src, &Default::default()).unwrap(), &select)
                    .unwrap(),
            );
            let back = tensorcast::open(next, &Default::default()).unwrap();
            let names = |s: &dyn tensorcast::Source| {
                let mut v: Vec<_> = s
                    .tensors()
                    .iter()
                    .map(|t| (t.name.clone(), t.dtype.to_string(), t.shape.clone()))
                    .collect();
                v.sort();
                v
            };
            assert_eq!(names(&*back), names(&*original), "{}", next.display());
            assert!(
                tensorcast::diff(&*original, &*back, None).unwrap().is_empty(),
                "{}",
                next.display()
            );
            prev = next.clone();
        }
        // The .zt written here verifies (every digest ours computed).
        tensorcast().arg("verify").arg(&steps[2].0).assert().success();
    }
}

#[test]
fn csr_objects_ztensor_wrote_stay_sparse_through_tpack_and_back() {
    let exp = expected();
    let objects = exp["sparse"]["csr.zt"].as_array().unwrap();
    assert_eq!(objects.len(), 3);
    let path = fixture("ztensor/csr.zt");
    let dir = tempfile::tempdir().unwrap();
    let (tp, zt) = (dir.path().join("c.tpack"), dir.path().join("c.zt"));
    tensorcast()
        .arg("convert")
        .arg(&path)
        .arg("-o")
        .arg(&tp)
        .assert()
        .success();
    tensorcast()
        .arg("convert")
        .arg(&tp)
        .arg("-o")
        .arg(&zt)
        .assert()
        .success();
    tensorcast().arg("verify").arg(&zt).assert().success();
    for file in [&path, &tp, &zt] {
        let source = tensorcast::open(file, &Default::default()).unwrap();
        for want in objects {
            let name = want["name"].as_str().unwrap();
            let i = source.find(name).unwrap();
            let info = &source.tensors()[i];
            let sp = info.sparse.as_ref().expect("sparse");
            assert_eq!(sp.layout.name(), "CSR");
            let parts = &want["parts"];
            assert_eq!(
                sp.index.to_string().to_lowercase(),
                parts["indptr"]["dtype"].as_str().unwrap(),
                "{name}"
            );
            assert_eq!(
                info.dtype.to_string().to_lowercase(),
                parts["values"]["dtype"].as_str().unwrap(),
                "{name}"
            );
            let bytes = source.tensor_data(i).unwrap().into_vec().unwrap();
            let ir: Vec<u8> = ["indptr", "indices", "values"]
                .iter()
                .flat_map(|p| unhex(parts[p]["hex"].as_str().unwrap()))
                .collect();
            assert_eq!(bytes, ir, "{}: {name}", file.display());
            let dense = tensorcast::sparse::densify(info, &bytes).unwrap();
            assert_eq!(dense, unhex(want["dense_hex"].as_str().unwrap()), "{name}: dense");
        }
    }
    // Densified on request into safetensors; refused without.
    let st = dir.path().join("d.safetensors");
    tensorcast()
        .arg("convert")
        .arg(&path)
        .arg("-o")
        .arg(&st)
        .assert()
        .code(1);
    tensorcast()
        .arg("convert")
        .arg(&path)
        .arg("--densify")
        .arg("-o")
        .arg(&st)
        .assert()
        .success();
    // A logical type without a dtype here: listed by inspect, refused by conversion.
    let out = tensorcast()
        .arg("inspect")
        .arg(fixture("ztensor/reject/f4.zt"))
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("zt f4_e2m1"));
    // COO has no .zt profile: refused by name unless densified.
    let out = tensorcast()
        .arg("convert")
        .arg(fixture("pytorch/valid/sparse.pt"))
        .arg("-o")
        .arg(dir.path().join("coo.zt"))
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("tensor 'coo' is sparse COO"), "{err}");
}

#[test]
fn a_listed_tensor_whose_shape_overflows_is_refused_by_rule() {
    // f4.zt's one object, its shape [4] rewritten to [2^40, 2^40] (2^80
    // elements) and the file re-hashed: the count comes from the file, and
    // a listing adds counts up, so it is refused at open as a dense one is.
    let b = std::fs::read(fixture("ztensor/reject/f4.zt")).unwrap();
    let at = |k: usize| u64::from_le_bytes(b[b.len() - 40 + 8 * k..][..8].try_into().unwrap()) as usize;
    let (off, len) = (at(0), at(1));
    assert_eq!(
        off + len,
        b.len() - 40,
        "the manifest sits just before the footer"
    );
    let huge = [
        &[0x82u8, 0x1b][..],
        &(1u64 << 40).to_be_bytes(),
        &[0x1b],
        &(1u64 << 40).to_be_bytes(),
    ]
    .concat();
    let manifest = b[off..off + len].to_vec();
    let p = manifest.windows(8).position(|w| w == b"eshape\x81\x04").unwrap();
    let manifest = [&manifest[..p + 6], &huge[..], &manifest[p + 8..]].concat();
    let mut out = b[..off].to_vec();
    out.extend_from_slice(&manifest);
    out.extend_from_slice(&(off as u64).to_le_bytes());
    out.extend_from_slice(&(manifest.len() as u64).to_le_bytes());
    out.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(&manifest).to_le_bytes());
    out.extend_from_slice(&b[b.len() - 16..]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.zt");
    std::fs::write(&path, &out).unwrap();
    let e = match tensorcast::open(&path, &Default::default()) {
        Ok(_) => panic!("opened"),
        Err(e) => e,
    };
    assert_eq!(e.rule(), Some("shape"), "{e}");
}

#[test]
fn verify_checks_csr_data_after_an_earlier_damaged_object() {
    // csr_after_dense.zt (ztensor 2.1.2): dense "a", then "m" with unsorted
    // columns and valid digests. One byte of a's blob flipped: verify names
    // both, a by its digest and m by the CSR rule.
    let path = fixture("ztensor/reject/csr_after_dense.zt");
    let source = tensorcast::open(&path, &Default::default()).unwrap();
    let a = source.tensors().iter().find(|t| t.name == "a").unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[a.file_offset.unwrap() as usize] ^= 0x40;
    let dir = tempfile::tempdir().unwrap();
    let damaged = dir.path().join("d.zt");
    std::fs::write(&damaged, &bytes).unwrap();
    let out = tensorcast().arg("verify").arg(&damaged).assert().code(1);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned()
        + &String::from_utf8_lossy(&out.get_output().stderr);
    assert!(
        text.contains("tensor 'a'") && text.contains("ztensor/digest"),
        "{text}"
    );
    assert!(
        text.contains("tensor 'm'") && text.contains("ztensor/csr"),
        "{text}"
    );
}
