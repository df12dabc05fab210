//! `--quantize FTYPE` against `llama_model_quantize` (llama-cpp-python
//! 0.3.36): for every input in fixtures/quant/filetypes/references.json (the
//! f32 and f16 GGUFs of every fixture model, and probe models whose rows
//! suit the K-quants: a GQA llama with tied embeddings, an 8-expert
//! Qwen3-MoE, a Falcon) and every file type tensorcast writes, the output
//! file is byte-identical: same tensors in the same order and types, same
//! bytes, same keys. Fixtures and generator: fixtures/quant/filetypes.

use crate::common::fixture;
use sha2::{Digest, Sha256};
use std::path::Path;
use tensorcast::{convert_file, ConvertOptions, FileType};

/// What our output holds, in the shape the references record it.
fn describe(path: &Path) -> (Vec<String>, Vec<String>, String) {
    let src = tensorcast::open(path, &Default::default()).unwrap();
    let keys = src.metadata().iter().map(|(k, _)| k.to_string()).collect();
    let names = src.tensors().iter().map(|t| t.name.clone()).collect();
    let types = src
        .tensors()
        .iter()
        .map(|t| match t.dtype {
            tensorcast::DType::Quant(q) => q.name().to_string(),
            d => d.name().to_ascii_uppercase(),
        })
        .collect::<Vec<_>>()
        .join(" ");
    (keys, names, types)
}

#[test]
fn every_file_type_is_byte_identical_to_llama_model_quantize() {
    let refs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("quant/filetypes/references.json")).unwrap()).unwrap();
    let refs = refs.as_object().unwrap();
    let root = fixture("").parent().unwrap().to_path_buf();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.gguf");
    let (mut checked, mut failures) = (0, Vec::new());
    for (input, want) in refs {
        let outputs = want["outputs"].as_object().unwrap();
        assert_eq!(outputs.len(), 24, "{input}: every file type");
        for (ft, expected) in outputs {
            let opts = ConvertOptions {
                quantize: Some(FileType::from_name(ft).unwrap()),
                force: true,
                ..Default::default()
            };
            convert_file(root.join(input), out.as_path(), &opts)
                .unwrap_or_else(|e| panic!("{input} {ft}: {e}"));
            checked += 1;
            let digest = format!("{:x}", Sha256::digest(std::fs::read(&out).unwrap()));
            if digest == expected["sha256"].as_str().unwrap() {
                continue;
            }
            // Say what differs: keys, order, types, or only bytes.
            let (keys, names, types) = describe(&out);
            let wanted = |k: &str| -> Vec<String> {
                want[k]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect()
            };
            let what = if keys != wanted("keys") {
                format!("keys {keys:?}")
            } else if names != wanted("names") {
                format!("order {names:?}")
            } else if types != expected["types"].as_str().unwrap() {
                format!("types {types} != {}", expected["types"])
            } else {
                "tensor bytes".to_string()
            };
            failures.push(format!("{input} {ft}: {what}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, 19 * 24);
}

/// File types that need an importance matrix are refused without one, by
/// name and reason (exit 1), before anything is written.
#[test]
fn unwritable_file_types_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("model/llama/reference-f32.gguf");
    for ft in ["IQ2_M", "Q2_K_S", "IQ3_XS", "IQ1_S", "IQ2_XXS", "IQ3_XXS"] {
        let out = dir.path().join(format!("{ft}.gguf"));
        let r = crate::common::tensorcast()
            .arg("convert")
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .args(["--quantize", ft])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{ft}");
        assert!(err.contains("importance matrix"), "{ft}: {err}");
        assert!(!out.exists(), "{ft}: nothing written");
        // The CLI's hint names the flag the library does not.
        assert!(err.contains("--imatrix FILE"), "{ft}");
    }
}

/// With `--imatrix`: importance matrices computed by llama.cpp's
/// llama-imatrix on fixture models (its GGUF and legacy .dat formats) and
/// imatrix GGUFs for the probe models (per-expert weights for the MoE);
/// 14 file types each, byte-identical to the llama-quantize tool's output,
/// keys it adds (`quantize.imatrix.*`, the path as given) included.
#[test]
fn every_file_type_with_an_imatrix_is_byte_identical_to_llama_quantize() {
    let refs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("quant/filetypes/references_imatrix.json")).unwrap())
            .unwrap();
    let root = fixture("").parent().unwrap().to_path_buf();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.gguf");
    let (mut checked, mut failures) = (0, Vec::new());
    for case in refs.as_array().unwrap() {
        let (input, im) = (case["input"].as_str().unwrap(), case["imatrix"].as_str().unwrap());
        for (ft, expected) in case["outputs"].as_object().unwrap() {
            let opts = ConvertOptions {
                quantize: Some(FileType::from_name(ft).unwrap()),
                // The path as the reference was given it (from the repository
                // root, where cargo runs this test): llama-quantize records it.
                imatrix: Some(tensorcast::Location::Local(im.into())),
                force: true,
                ..Default::default()
            };
            convert_file(root.join(input), out.as_path(), &opts)
                .unwrap_or_else(|e| panic!("{input} {im} {ft}: {e}"));
            checked += 1;
            let digest = format!("{:x}", Sha256::digest(std::fs::read(&out).unwrap()));
            if digest != expected["sha256"].as_str().unwrap() {
                let (_, _, types) = describe(&out);
                let what = if types == expected["types"].as_str().unwrap() {
                    "bytes"
                } else {
                    "types"
                };
                failures.push(format!("{input} {im} {ft}: {what}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, 9 * 24);
}

/// Damaged or mismatched importance matrices are refused by rule (exit 1),
/// naming the file, before anything is written; `--imatrix` without
/// `--quantize` is a usage error (exit 2).
#[test]
fn bad_imatrix_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("model/llama/reference-f32.gguf");
    let good = std::fs::read(fixture("quant/filetypes/llama.imatrix.dat")).unwrap();
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "no legacy entries"),
        ("truncated", good[..good.len() / 2].to_vec(), "past the end"),
        (
            "negative name length",
            [1i32.to_le_bytes(), (-5i32).to_le_bytes()].concat(),
            "no name length",
        ),
    ];
    // One entry named "A" claiming 2^31 - 1 values: refused at the end of the file, not allocated.
    let mut huge = [1i32.to_le_bytes(), 1i32.to_le_bytes()].concat();
    huge.push(b'A');
    huge.extend(1i32.to_le_bytes());
    huge.extend(i32::MAX.to_le_bytes());
    cases.push(("huge value count", huge, "past the end"));
    // A legacy entry for a real tensor with the wrong number of weights.
    let mut wrong = 1i32.to_le_bytes().to_vec();
    let name = b"blk.0.ffn_up.weight";
    wrong.extend((name.len() as i32).to_le_bytes());
    wrong.extend(name);
    wrong.extend(1i32.to_le_bytes());
    wrong.extend(3i32.to_le_bytes());
    wrong.extend([0u8; 12]);
    cases.push(("wrong size", wrong, "not 64"));
    // A FIFO would block the read forever: refused by what it is.
    #[cfg(unix)]
    {
        let fifo = dir.path().join("fifo.dat");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let r = crate::common::tensorcast()
            .arg("convert")
            .arg(&input)
            .arg("-o")
            .arg(dir.path().join("f.gguf"))
            .args(["--quantize", "Q4_K_M", "--imatrix"])
            .arg(&fifo)
            .output()
            .unwrap();
        assert_eq!(r.status.code(), Some(1), "{}", String::from_utf8_lossy(&r.stderr));
        assert!(!dir.path().join("f.gguf").exists());
    }
    for (what, bytes, rule) in cases {
        let im = dir.path().join("im.dat");
        std::fs::write(&im, bytes).unwrap();
        let out = dir.path().join("out.gguf");
        let r = crate::common::tensorcast()
            .arg("convert")
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .args(["--quantize", "Q4_K_M", "--imatrix"])
            .arg(&im)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{what}: {err}");
        assert!(err.contains(rule) && err.contains("im.dat"), "{what}: {err}");
        assert!(!out.exists(), "{what}: nothing written");
    }
    let r = crate::common::tensorcast()
        .arg("convert")
        .arg(&input)
        .arg("-o")
        .arg(dir.path().join("x.gguf"))
        .arg("--imatrix")
        .arg(fixture("quant/filetypes/llama.imatrix.dat"))
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2), "{}", String::from_utf8_lossy(&r.stderr));
}

/// Blocks are quantized on all cores, in order: the bytes do not depend on
/// `-j`. A quantized input is dequantized and quantized again, and the
/// closing line says so.
#[test]
fn output_is_the_same_whatever_the_thread_count_and_requantizing_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("quant/filetypes/probe-moe.gguf");
    let mut outputs = Vec::new();
    for j in ["1", "2", "7"] {
        let out = dir.path().join(format!("j{j}.gguf"));
        crate::common::tensorcast()
            .arg("convert")
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .args(["--quantize", "Q4_K_M", "-j", j])
            .assert()
            .success();
        outputs.push(std::fs::read(&out).unwrap());
    }
    assert!(outputs.windows(2).all(|w| w[0] == w[1]), "-j changed the bytes");
    let r = crate::common::tensorcast()
        .arg("convert")
        .arg(fixture("model/llama/reference-q8_0.gguf"))
        .arg("-o")
        .arg(dir.path().join("re.gguf"))
        .args(["--quantize", "Q4_K_M"])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(said.contains("dequantized and quantized again"), "{said}");
}
