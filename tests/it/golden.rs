//! Every committed fixture through every writer, pinned: the sha256 of each
//! file a conversion writes (or the kind and rule of its refusal) is listed
//! in `tests/golden/outputs.txt`, so a restructuring that changes one output
//! byte, or turns a refusal into a success (or the reverse, or one rule into
//! another), fails here. The CLI exits 1 for every library error of a
//! conversion and 0 otherwise, so the list pins its exit codes too.
//!
//! Regenerate after an intended change of output with
//! `TENSORCAST_BLESS=1 cargo test --test it golden` and say why in the commit.

use crate::common::fixture;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use tensorcast::{convert_file, ConvertOptions, Error, ErrorKind};

/// (label, output file name, options) of each writer.
fn writers() -> Vec<(&'static str, &'static str, ConvertOptions)> {
    let sharded = {
        let mut o = ConvertOptions::default();
        o.options.set(tensorcast::safetensors::SafetensorsWriteOptions {
            max_shard_bytes: Some(1000),
        });
        o
    };
    let keep_names = ConvertOptions {
        keep_names: true,
        to: Some("hf".into()),
        ..Default::default()
    };
    let hf = ConvertOptions {
        to: Some("hf".into()),
        ..Default::default()
    };
    vec![
        ("safetensors", "out.safetensors", ConvertOptions::default()),
        ("safetensors-sharded", "out.safetensors", sharded),
        ("gguf", "out.gguf", ConvertOptions::default()),
        ("tpack", "out.tpack", ConvertOptions::default()),
        ("npz", "out.npz", ConvertOptions::default()),
        ("ztensor", "out.zt", ConvertOptions::default()),
        ("pytorch", "out.pt", ConvertOptions::default()),
        ("hf", "out", hf),
        ("hf-keep-names", "out", keep_names),
    ]
}

/// Every fixture file a reader could be pointed at, and every model folder.
fn inputs() -> Vec<PathBuf> {
    let root = fixture("");
    let mut found = Vec::new();
    walk(&root, &mut found);
    found.sort();
    found
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() && name == "quant" {
            // Quantizer reference data (raw floats and ggml's bytes), not files a reader takes.
            continue;
        } else if p.is_dir() {
            if p.join("config.json").is_file() {
                found.push(p.clone());
            }
            walk(&p, found);
        } else if !(name.ends_with(".py") || name.ends_with(".md") || name.ends_with(".txt")) {
            found.push(p);
        }
    }
}

/// The error as the list records it: kind and rule, not the message text.
fn refusal(e: &Error) -> String {
    #[allow(unreachable_patterns)]
    let kind = match e.kind() {
        ErrorKind::Format => "format",
        ErrorKind::Limit => "limit",
        ErrorKind::Usage => "usage",
        ErrorKind::Unsupported => "unsupported",
        ErrorKind::Io => "io",
        _ => "other",
    };
    format!("exit 1 {kind} {}", e.rule().unwrap_or("-"))
}

/// `name sha256` of every file under `dir`, sorted by name.
fn hashes(dir: &Path) -> String {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    files
        .iter()
        .map(|p| {
            let digest = Sha256::digest(std::fs::read(p).unwrap());
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            format!("{}={}", p.strip_prefix(dir).unwrap().display(), hex)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn line(input: &Path, label: &str, file: &str, opts: &ConvertOptions) -> String {
    let rel = input.strip_prefix(fixture("")).unwrap().display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let result = convert_file(input, dir.path().join(file), opts);
    let outcome = match result {
        Ok(_) => format!("exit 0 {}", hashes(dir.path())),
        Err(e) => refusal(&e),
    };
    format!("{rel} -> {label}: {outcome}")
}

#[test]
fn every_fixture_through_every_writer_is_pinned() {
    let writers = writers();
    let inputs = inputs();
    let jobs: Vec<(&PathBuf, &(&str, &str, ConvertOptions))> = inputs
        .iter()
        .flat_map(|i| writers.iter().map(move |w| (i, w)))
        .collect();
    // Plain threads, not rayon: a conversion blocks on rayon's pool itself,
    // and conversions run from inside that pool's tasks would wait on it.
    let next = AtomicUsize::new(0);
    let done = Mutex::new(vec![String::new(); jobs.len()]);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((input, (label, file, opts))) = jobs.get(i) else {
                    break;
                };
                let l = line(input, label, file, opts);
                done.lock().unwrap()[i] = l;
            });
        }
    });
    let lines = done.into_inner().unwrap();
    let got = lines.join("\n") + "\n";
    let list = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/outputs.txt");
    if std::env::var_os("TENSORCAST_BLESS").is_some() {
        std::fs::create_dir_all(list.parent().unwrap()).unwrap();
        std::fs::write(&list, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&list).expect("tests/golden/outputs.txt (bless to create)");
    let changed: Vec<String> = want
        .lines()
        .zip(got.lines())
        .filter(|(w, g)| w != g)
        .map(|(w, g)| format!("  was {w}\n  now {g}"))
        .collect();
    assert_eq!(
        want.lines().count(),
        got.lines().count(),
        "the fixture set changed"
    );
    assert!(
        changed.is_empty(),
        "{} of {} outputs changed:\n{}",
        changed.len(),
        lines.len(),
        changed.join("\n")
    );
    let written = lines.iter().filter(|l| l.contains(": exit 0 ")).count();
    assert!(written > 500, "only {written} conversions wrote output");
}
