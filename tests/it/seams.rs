//! The seams the front ends rely on: refusals that are not format rules
//! carry a stable code (the CLI and Python key their advice on it, never on
//! the text), and no library message names a front end's flag.

use crate::common::{fixture, tensorcast};
use std::path::Path;
use tensorcast::{code, convert_file, ConvertOptions, Error};

fn refused(input: &Path, output: &str, opts: &ConvertOptions) -> Error {
    let dir = tempfile::tempdir().unwrap();
    convert_file(input, dir.path().join(output), opts).expect_err("refused")
}

#[test]
fn refusals_carry_their_codes() {
    let plain = ConvertOptions::default();
    let sparse = fixture("pytorch/valid/sparse.pt");
    let cases: Vec<(&str, Error, &str)> = vec![
        (
            "sparse tensor into safetensors",
            refused(&sparse, "o.safetensors", &plain),
            code::SPARSE_NOT_HELD,
        ),
        (
            "sparse tensor into GGUF",
            refused(&sparse, "o.gguf", &plain),
            code::SPARSE_NOT_HELD,
        ),
        (
            "a folder as a model into safetensors",
            refused(&fixture("model/llama/hf"), "o.safetensors", &plain),
            code::MODEL_FOLDER,
        ),
        (
            "safetensors into a Hugging Face folder",
            refused(
                &fixture("safetensors/cast/source.safetensors"),
                "out",
                &ConvertOptions {
                    to: Some("hf".into()),
                    ..Default::default()
                },
            ),
            code::MODEL_FOLDER,
        ),
        (
            "blocks kept into safetensors",
            refused(
                &fixture("gguf/quants.gguf"),
                "o.safetensors",
                &ConvertOptions {
                    keep_quantized: true,
                    ..Default::default()
                },
            ),
            code::BLOCKS_NOT_HELD,
        ),
        (
            "a type with no dequantizer",
            refused(&fixture("gguf/no_reference.gguf"), "o.safetensors", &plain),
            code::BLOCK_TYPE,
        ),
        (
            "an unknown output format",
            refused(
                &fixture("gguf/align64.gguf"),
                "o.bin",
                &ConvertOptions {
                    to: Some("nope".into()),
                    ..Default::default()
                },
            ),
            code::UNKNOWN_FORMAT,
        ),
        (
            "a .npy output",
            refused(&fixture("numpy/f32.npy"), "o.npy", &plain),
            code::READ_ONLY,
        ),
    ];
    for (what, e, want) in cases {
        assert_eq!(e.code(), Some(want), "{what}: {e}");
        assert_eq!(e.rule(), None, "{what}: a code, not a rule: {e}");
    }
    // An existing output (the target is created empty before converting).
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.safetensors");
    std::fs::write(&out, b"").unwrap();
    let e = convert_file(fixture("numpy/f32.npy"), &out, &plain).unwrap_err();
    assert_eq!(e.code(), Some(code::OUTPUT_EXISTS), "{e}");
}

/// The CLI adds its own flag to a refusal the library words without one.
#[test]
fn the_cli_adds_its_flags_to_coded_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let out = tensorcast()
        .arg("convert")
        .arg(fixture("model/llama/hf"))
        .arg("-o")
        .arg(dir.path().join("o.safetensors"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let (error, hint) = err.split_once("\nhint: ").expect("a hint line");
    assert!(!error.contains("--"), "{error}");
    assert!(hint.starts_with("--names keep"), "{hint}");
}

/// String literals in library sources (outside tests) name no `--flag`: the
/// library serves the CLI and Python alike, each with its own spelling.
#[test]
fn library_text_names_no_flag() {
    let mut found = Vec::new();
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates");
    let mut stack = vec![crates];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "tests" && n != "benches") {
                    stack.push(p);
                }
                continue;
            }
            if p.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            // Unit tests sit at the end of a file, after `#[cfg(test)]`.
            let body = text.split("#[cfg(test)]").next().unwrap_or("");
            for (n, line) in body.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                let flag = code.split('"').skip(1).step_by(2).any(|lit| {
                    lit.split_whitespace().any(|w| {
                        w.trim_start_matches(['(', '\'', '`'])
                            .strip_prefix("--")
                            .is_some_and(|f| f.starts_with(|c: char| c.is_ascii_lowercase()))
                    })
                });
                if flag {
                    found.push(format!("{}:{}: {}", p.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "library strings naming flags:\n{}",
        found.join("\n")
    );
}

/// The facade chooses between formats through `Format`'s hooks, never by
/// name: no string literal in its code (outside cargo feature gates and
/// unit tests) is a registered format's name.
#[test]
fn the_facade_names_no_format() {
    let names: Vec<&str> = tensorcast::Registry::builtin()
        .formats()
        .map(|f| f.name())
        .collect();
    assert!(names.len() >= 9, "{names:?}");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/tensorcast/src");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let p = entry.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        let body = text.split("#[cfg(all(test").next().unwrap_or("");
        let body = body.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in body.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            // Cargo feature gates, and URL schemes (`hf://` is the Hub,
            // not the folder format that shares its name).
            if code.contains("feature =") || code.contains("\"s3\"") {
                continue;
            }
            let named = code.split('"').skip(1).step_by(2).find(|lit| names.contains(lit));
            if let Some(name) = named {
                found.push(format!("{}:{}: \"{name}\": {}", p.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "format names in the facade:\n{}",
        found.join("\n")
    );
}

/// ARCHITECTURE.md's map names every crate in crates/.
#[test]
fn the_architecture_map_names_every_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if !map.contains(&format!("crates/{name} ")) {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md does not name crates/{missing:?}"
    );
}
