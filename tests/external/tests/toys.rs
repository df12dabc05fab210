//! Formats from outside the workspace convert, batch and make references
//! through `Format`'s hooks alone.

use std::path::{Path, PathBuf};
use tensorcast::code;
use tensorcast::{diff, open, ConvertOptions, DType, ErrorKind, Options, Registry, Source};
use tensorcast_external_formats::{toy_bytes, Toy, ToyFolder, ToyParts};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(rel)
}

fn assert_same(a: &dyn Source, b: &dyn Source, what: &str) {
    let found = diff(a, b, None).unwrap();
    assert!(
        found.is_empty(),
        "{what}: {:?}",
        found.iter().map(|d| d.to_string()).collect::<Vec<_>>()
    );
    assert_eq!(a.tensors().len(), b.tensors().len(), "{what}");
}

#[test]
fn a_format_registered_from_outside_converts_through_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::builtin().with(Toy);
    assert!(registry.writable().contains(&"toy"));
    let opts = ConvertOptions {
        registry: registry.clone(),
        // The toy holds f32 and no other float type.
        dtype: Some(DType::F32),
        ..Default::default()
    };
    // safetensors -> toy (output format from the extension) -> safetensors.
    let src = fixture("safetensors/cast/to_f32.safetensors");
    let toy = dir.path().join("m.toy");
    tensorcast::convert_file(&src, &toy, &opts).unwrap();
    assert!(std::fs::read(&toy).unwrap().starts_with(b"TOY1"));
    let back = dir.path().join("back.safetensors");
    tensorcast::convert_file(&toy, &back, &opts).unwrap();
    let (a, b) = (
        open(&src, &Options::default()).unwrap(),
        open(&back, &Options::default()).unwrap(),
    );
    assert_same(&*a, &*b, "safetensors -> toy -> safetensors");
    // The toy file is detected by its bytes whatever its name, and opened.
    let renamed = dir.path().join("renamed.bin");
    std::fs::copy(&toy, &renamed).unwrap();
    let opened = registry.open(&renamed, &Options::default()).unwrap();
    assert_eq!(opened.format(), "toy");
    assert_same(&*a, &*opened, "toy opened by its bytes");
    // The built-in registry alone does not know it.
    let e = tensorcast::convert_file(
        &toy,
        &back,
        &ConvertOptions {
            force: true,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!((e.kind(), e.rule()), (ErrorKind::Format, Some("unknown-format")));
}

#[test]
fn a_multi_part_format_from_outside_batches_and_makes_refs() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir(&models).unwrap();
    let write = |name: &str, bytes: Vec<u8>| std::fs::write(models.join(name), bytes).unwrap();
    write("m-00001-of-00002.toyp", toy_bytes(b"TOYP", &[("a", &[1.0, 2.0])]));
    write(
        "m-00002-of-00002.toyp",
        toy_bytes(b"TOYP", &[("b", &[3.0]), ("c", &[4.0, 5.0, 6.0])]),
    );
    write("single.toy", toy_bytes(b"TOY1", &[("w", &[7.0])]));
    let registry = Registry::builtin().with(Toy).with(ToyParts);
    let out = dir.path().join("out");
    let st = registry.get("safetensors").unwrap();
    // Coverage and naming come from the formats' hooks: the second part is
    // covered by the first; the model is named without its part naming.
    let jobs = tensorcast::jobs_from_dir(&models, &out, st, &registry).unwrap();
    let mut outputs: Vec<_> = jobs
        .iter()
        .map(|j| {
            j.output
                .as_path()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    outputs.sort();
    assert_eq!(outputs, ["m.safetensors", "single.safetensors"]);
    let opts = ConvertOptions {
        registry: registry.clone(),
        ..Default::default()
    };
    let done = tensorcast::run_batch(&jobs, &opts, |_| {});
    assert!(
        done.iter().all(|o| o.error.is_none()),
        "{:?}",
        done.iter().map(|o| &o.error).collect::<Vec<_>>()
    );
    let merged = open(out.join("m.safetensors"), &Options::default()).unwrap();
    let names: Vec<_> = merged.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let c = merged.tensor_data(2).unwrap().into_vec().unwrap();
    assert_eq!(
        c,
        [4.0f32, 5.0, 6.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>()
    );
    // Virtual references point into the part that holds each tensor.
    let first = models.join("m-00001-of-00002.toyp");
    let refs_opts = tensorcast::RefsOptions {
        registry: registry.clone(),
        ..tensorcast::RefsOptions::new("file:///data/m-00001-of-00002.toyp")
    };
    let refs =
        tensorcast::references(registry.open(&first, &Options::default()).unwrap(), &refs_opts).unwrap();
    let text = refs.json.to_string();
    assert!(text.contains("file:///data/m-00002-of-00002.toyp"), "{text}");
    assert!(refs.not_virtualizable.is_empty(), "{:?}", refs.not_virtualizable);
}

#[test]
fn a_model_folder_format_from_outside_converts_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("toymodel");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("toy.json"), b"{}").unwrap();
    std::fs::write(
        folder.join("weights.toy"),
        toy_bytes(b"TOY1", &[("w", &[1.0, 2.0]), ("b", &[3.0])]),
    )
    .unwrap();
    let registry = Registry::builtin().with(Toy).with(ToyFolder);
    let opts = ConvertOptions {
        registry: registry.clone(),
        ..Default::default()
    };
    let names = |p: &Path| -> Vec<String> {
        let s = registry.open(p, &Options::default()).unwrap();
        s.tensors().iter().map(|t| t.name.clone()).collect()
    };
    // The folder as a model (the format's model view), and as its weights.
    let model = dir.path().join("model.safetensors");
    tensorcast::convert_file(&folder, &model, &opts).unwrap();
    assert_eq!(names(&model), ["model.w", "model.b"]);
    let kept = dir.path().join("kept.safetensors");
    let keep = ConvertOptions {
        keep_names: true,
        ..opts.clone()
    };
    tensorcast::convert_file(&folder, &kept, &keep).unwrap();
    assert_eq!(names(&kept), ["w", "b"]);
    // Into a new folder through the format's writing view: the folder opens
    // again by its entry file, with the weights under their own names.
    let back = dir.path().join("back");
    let to_folder = ConvertOptions {
        to: Some("toydir".into()),
        ..opts.clone()
    };
    tensorcast::convert_file(&model, &back, &to_folder).unwrap();
    assert!(back.join("toy.json").is_file() && back.join("weights.toy").is_file());
    assert_eq!(names(&back), ["w", "b"]);
    assert_same(
        &*registry.open(&folder, &Options::default()).unwrap(),
        &*registry.open(&back, &Options::default()).unwrap(),
        "toy folder -> safetensors -> toy folder",
    );
    // A folder that holds a model is not replaced without force.
    let e = tensorcast::convert_file(&model, &back, &to_folder).unwrap_err();
    assert_eq!(e.code(), Some(code::OUTPUT_EXISTS), "{e}");
    // A folder no format claims is refused by name.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = tensorcast::convert_file(&empty, dir.path().join("e.safetensors"), &opts).unwrap_err();
    assert_eq!(e.code(), Some(code::UNKNOWN_FORMAT), "{e}");
}

/// The single-file toy in a batch (named by its extension) and in virtual
/// references (its tensors lie raw in the file).
#[test]
fn a_single_file_format_from_outside_batches_and_makes_refs() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir_all(models.join("sub")).unwrap();
    std::fs::write(
        models.join("sub/a.toy"),
        toy_bytes(b"TOY1", &[("w", &[1.0, 2.0, 3.0])]),
    )
    .unwrap();
    std::fs::write(models.join("notes.txt"), b"not a model").unwrap();
    let registry = Registry::builtin().with(Toy);
    let out = dir.path().join("out");
    let jobs = tensorcast::jobs_from_dir(&models, &out, registry.get("npz").unwrap(), &registry).unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].output.as_path(), out.join("sub/a.npz"));
    let opts = ConvertOptions {
        registry: registry.clone(),
        ..Default::default()
    };
    let done = tensorcast::run_batch(&jobs, &opts, |_| {});
    assert!(done[0].error.is_none(), "{:?}", done[0].error);
    let back = open(out.join("sub/a.npz"), &Options::default()).unwrap();
    assert_eq!(back.tensors()[0].name, "w");
    let refs_opts = tensorcast::RefsOptions {
        registry: registry.clone(),
        ..tensorcast::RefsOptions::new("file:///data/a.toy")
    };
    let refs = tensorcast::references(
        registry
            .open(models.join("sub/a.toy"), &Options::default())
            .unwrap(),
        &refs_opts,
    )
    .unwrap();
    let text = refs.json.to_string();
    assert!(
        text.contains("file:///data/a.toy") && text.contains("original_dtype"),
        "{text}"
    );
    assert!(refs.not_virtualizable.is_empty());
}

/// A tree holding a toy model folder: the batch converts the folder as one
/// model (the format says it converts), named after the folder, beside the
/// plain files; references of the folder point into its weights file.
#[test]
fn a_model_folder_format_from_outside_batches_and_makes_refs() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let folder = models.join("toymodel");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("toy.json"), b"{}").unwrap();
    std::fs::write(
        folder.join("weights.toy"),
        toy_bytes(b"TOY1", &[("w", &[1.0, 2.0])]),
    )
    .unwrap();
    std::fs::write(models.join("plain.toy"), toy_bytes(b"TOY1", &[("v", &[3.0])])).unwrap();
    let registry = Registry::builtin().with(Toy).with(ToyFolder);
    let out = dir.path().join("out");
    let st = registry.get("safetensors").unwrap();
    let jobs = tensorcast::jobs_from_dir(&models, &out, st, &registry).unwrap();
    let pairs: Vec<_> = jobs
        .iter()
        .map(|j| (j.input.as_path().to_path_buf(), j.output.as_path().to_path_buf()))
        .collect();
    assert_eq!(
        pairs,
        [
            (models.join("plain.toy"), out.join("plain.safetensors")),
            (folder.clone(), out.join("toymodel.safetensors")),
        ]
    );
    let opts = ConvertOptions {
        registry: registry.clone(),
        ..Default::default()
    };
    let done = tensorcast::run_batch(&jobs, &opts, |_| {});
    assert!(
        done.iter().all(|o| o.error.is_none()),
        "{:?}",
        done.iter().map(|o| &o.error).collect::<Vec<_>>()
    );
    let model = open(out.join("toymodel.safetensors"), &Options::default()).unwrap();
    assert_eq!(model.tensors()[0].name, "model.w");
    let refs_path = dir.path().join("refs.json");
    let refs_opts = tensorcast::RefsOptions {
        registry: registry.clone(),
        ..tensorcast::RefsOptions::new("s3://bucket/toymodel")
    };
    tensorcast::references_file(&folder, &refs_path, &Options::default(), &refs_opts, false).unwrap();
    let text = std::fs::read_to_string(&refs_path).unwrap();
    assert!(text.contains("s3://bucket/toymodel/weights.toy"), "{text}");
}
