//! The architecture's seams, used from outside the facade crate: every
//! format reads from and writes to memory; errors are matched by kind and
//! rule, not by text. (Formats registered by a user's crate are tested from
//! outside the workspace: tests/external.)

use crate::common::fixture;
use std::path::Path;
use tensorcast::{
    convert_input, diff, open, ConvertOptions, DType, ErrorKind, Input, Limits, MemoryFiles, MemoryStore,
    Options, Registry, Source,
};

fn assert_same(a: &dyn Source, b: &dyn Source, what: &str) {
    let found = diff(a, b, None).unwrap();
    assert!(
        found.is_empty(),
        "{what}: {:?}",
        found.iter().map(|d| d.to_string()).collect::<Vec<_>>()
    );
    assert_eq!(a.tensors().len(), b.tensors().len(), "{what}");
}

/// Every readable fixture kind, with the files beside it that it needs.
fn inputs() -> Vec<(&'static str, &'static str, &'static [&'static str])> {
    vec![
        ("safetensors", "safetensors/cast/source.safetensors", &[]),
        (
            "sharded safetensors",
            "safetensors/valid/sharded/model.safetensors.index.json",
            &[
                "model-00001-of-00003.safetensors",
                "model-00002-of-00003.safetensors",
                "model-00003-of-00003.safetensors",
            ],
        ),
        ("gguf", "gguf/quants.gguf", &[]),
        (
            "split gguf",
            "gguf/split/model-00001-of-00003.gguf",
            &["model-00002-of-00003.gguf", "model-00003-of-00003.gguf"],
        ),
        ("pytorch zip", "pytorch/valid/state_dict.pt", &[]),
        ("pytorch legacy", "pytorch/valid/views_legacy.pt", &[]),
        ("tpack", "tpack/source.tpack", &[]),
        ("npy", "numpy/f32.npy", &[]),
        ("npz", "numpy/compressed.npz", &[]),
    ]
}

/// For GGUF, leaves out the tensors it has no type for (bool, complex,
/// unsigned), as a user would; floats are cast to f32 anyway.
fn portable(source: &dyn Source, to: &str) -> tensorcast::Selection {
    let exclude = source
        .tensors()
        .iter()
        .filter(|t| to == "gguf" && !t.dtype.is_float() && tensorcast::gguf::ggml_type_id(t.dtype).is_none())
        .map(|t| t.name.clone())
        .collect();
    tensorcast::Selection {
        exclude,
        ..Default::default()
    }
}

/// Loads a fixture and its siblings into memory only.
fn memory_input(rel: &str, siblings: &[&str]) -> Input {
    let path = fixture(rel);
    let name = path.file_name().unwrap().to_str().unwrap();
    let mut files = MemoryFiles::new();
    files.insert(name, std::fs::read(&path).unwrap());
    for s in siblings {
        files.insert(s, std::fs::read(path.with_file_name(s)).unwrap());
    }
    files.input(name).unwrap()
}

#[test]
fn every_format_converts_from_memory_to_memory() {
    let registry = Registry::builtin();
    let mut pairs = 0;
    for (what, rel, siblings) in inputs() {
        let from_disk = open(fixture(rel), &Options::default()).unwrap();
        // Container formats; the model folder output is tests/it/model.rs's.
        for to in registry.writable().into_iter().filter(|f| *f != "hf") {
            let store = MemoryStore::new();
            let target = Box::new(store.target(&format!("out.{to}")));
            let opts = ConvertOptions {
                // Blocks stay blocks where the target holds them.
                keep_quantized: registry.get(to).unwrap().holds_blocks(),
                // Not every target holds every dtype (fp8, bool and complex
                // in GGUF, bf16 in npz): cast floats and leave the rest out.
                dtype: Some(DType::F32),
                select: portable(&*from_disk, to),
                ..Default::default()
            };
            let input = memory_input(rel, siblings);
            match convert_input(input, target, to, &opts) {
                Ok(report) => assert!(
                    report.tensors + opts.select.exclude.len() == from_disk.tensors().len(),
                    "{what} -> {to}"
                ),
                Err(e) => panic!("{what} -> {to}: {e}"),
            }
            assert_eq!(store.names(), [format!("out.{to}")], "{what} -> {to}");
            let bytes = store.get(&format!("out.{to}")).unwrap();
            let back = registry
                .open_input(Input::memory(format!("out.{to}"), bytes), &Options::default())
                .unwrap_or_else(|e| panic!("{what} -> {to}: {e}"));
            // What the pipeline promised: the source after the same adapters.
            let selected =
                tensorcast::Select::new(open(fixture(rel), &Options::default()).unwrap(), &opts.select);
            let expected =
                tensorcast::adapt(Box::new(selected.unwrap()), registry.get(to).unwrap(), &opts).unwrap();
            assert_same(&*expected, &*back, &format!("{what} -> {to} in memory"));
            pairs += 1;
        }
    }
    assert_eq!(pairs, inputs().len() * (registry.writable().len() - 1));
}

#[test]
fn memory_output_equals_file_output_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    for (what, rel, siblings) in inputs() {
        let from_disk = open(fixture(rel), &Options::default()).unwrap();
        for to in ["safetensors", "gguf", "tpack"] {
            let store = MemoryStore::new();
            let opts = ConvertOptions {
                keep_quantized: to != "safetensors",
                dtype: Some(DType::F32),
                select: portable(&*from_disk, to),
                ..Default::default()
            };
            convert_input(
                memory_input(rel, siblings),
                Box::new(store.target("x")),
                to,
                &opts,
            )
            .unwrap();
            let file = dir.path().join(format!("x.{to}"));
            let opts = ConvertOptions { force: true, ..opts };
            tensorcast::convert_file(fixture(rel), &file, &opts).unwrap();
            assert!(
                store.get("x").unwrap() == std::fs::read(&file).unwrap(),
                "{what} -> {to}"
            );
        }
    }
}

#[test]
fn sharded_output_lands_beside_the_target_in_memory() {
    let store = MemoryStore::new();
    let mut options = Options::default();
    options.set(tensorcast::safetensors::SafetensorsWriteOptions {
        max_shard_bytes: Some(1000),
    });
    let opts = ConvertOptions {
        options,
        ..Default::default()
    };
    let input = memory_input("safetensors/cast/source.safetensors", &[]);
    convert_input(
        input,
        Box::new(store.target("m.safetensors")),
        "safetensors",
        &opts,
    )
    .unwrap();
    let names = store.names();
    assert!(
        names.len() > 2 && names.contains(&"m.safetensors.index.json".to_string()),
        "{names:?}"
    );
    assert!(!names.contains(&"m.safetensors".to_string()));
    let mut files = MemoryFiles::new();
    for n in &names {
        files.insert(n, store.get(n).unwrap());
    }
    let back = Registry::builtin()
        .open_input(
            files.input("m.safetensors.index.json").unwrap(),
            &Options::default(),
        )
        .unwrap();
    let src = open(
        fixture("safetensors/cast/source.safetensors"),
        &Options::default(),
    )
    .unwrap();
    assert_same(&*src, &*back, "sharded in memory");
}

#[test]
fn errors_are_matched_by_kind_rule_and_limit() {
    let r = Registry::builtin();
    let bytes = std::fs::read(fixture("safetensors/cast/source.safetensors")).unwrap();
    // A broken rule.
    let e = r
        .open_input(
            Input::memory("t.safetensors", bytes[..bytes.len() - 1].to_vec()),
            &Options::default(),
        )
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Format);
    assert_eq!(e.rule(), Some("file-size-mismatch"), "{e}");
    // A limit, naming the Limits field.
    let few = Options::with_limits(Limits {
        max_tensors: 2,
        ..Limits::default()
    });
    let e = r
        .open_input(Input::memory("t.safetensors", bytes.clone()), &few)
        .err()
        .unwrap();
    assert_eq!(
        (e.kind(), e.limit_field()),
        (ErrorKind::Limit, Some("max_tensors")),
        "{e}"
    );
    // Reading options for another format: usage.
    let mut pt = Options::default();
    pt.set(tensorcast::pytorch::PytorchOptions {
        lenient: true,
        ..Default::default()
    });
    let e = r
        .open_input(Input::memory("t.safetensors", bytes.clone()), &pt)
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Usage, "{e}");
    // A read-only format: unsupported.
    let e = r
        .create(
            "npy",
            Box::new(MemoryStore::new().target("x.npy")),
            &Options::default(),
        )
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    // An unknown output format: usage.
    let e = r.output_format(Path::new("x.weird"), None).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Usage);
    // A forbidden pickle global, through the library.
    let e = open(
        fixture("pytorch/hostile/builtin_eval_py2.pkl"),
        &Options::default(),
    )
    .err()
    .unwrap();
    assert_eq!(
        (e.kind(), e.rule()),
        (ErrorKind::Format, Some("forbidden-global"))
    );
    // A missing file: I/O.
    let e = open(Path::new("/nonexistent/x.safetensors"), &Options::default())
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Io);
}

#[test]
fn verify_honours_the_limits_it_is_given() {
    let path = fixture("tpack/source.tpack");
    assert!(tensorcast::verify(&path, &Options::default()).unwrap().is_empty());
    let tight = Options::with_limits(Limits {
        max_tensors: 1,
        ..Limits::default()
    });
    let e = tensorcast::verify(&path, &tight).unwrap_err();
    assert_eq!(e.limit_field(), Some("max_tensors"), "{e}");
}
