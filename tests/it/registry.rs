//! The architecture's seams, used from outside the facade crate: a format
//! registered by a user converts through the same pipeline as the built-in
//! ones; every format reads from and writes to memory; errors are matched by
//! kind and rule, not by text.

use crate::common::fixture;
use std::path::Path;
use tensorcast::code;
use tensorcast::{
    convert_input, diff, open, ConvertOptions, DType, Detection, Error, ErrorKind, Format, Input, Limits,
    MemoryFiles, MemoryStore, Metadata, Options, Plan, Registry, Result, Sink, Source, TensorData,
    TensorInfo, WriteTarget,
};

/// A toy container: `TOY1`, a u32 tensor count, then per tensor a u16 name
/// length, the name, a u8 dtype (an index into [`TOY_DTYPES`]), a u8 rank,
/// u64 dims and the bytes. Everything a real format crate provides, in one screen.
struct Toy;

const TOY_DTYPES: [DType; 4] = [DType::U8, DType::F32, DType::I64, DType::Bool];

struct ToyFile {
    bytes: tensorcast::Bytes,
    tensors: Vec<TensorInfo>,
    offsets: Vec<u64>,
    metadata: Metadata,
}

fn toy_err(name: &Path, detail: &str) -> Error {
    tensorcast::FormatError::new("toy", "malformed", detail)
        .in_file(name)
        .into()
}

fn take<'a>(b: &'a [u8], at: &mut usize, n: usize, name: &Path) -> Result<&'a [u8]> {
    let end = at
        .checked_add(n)
        .filter(|&e| e <= b.len())
        .ok_or_else(|| toy_err(name, "truncated"))?;
    let s = &b[*at..end];
    *at = end;
    Ok(s)
}

impl ToyFile {
    fn parse(input: Input) -> Result<ToyFile> {
        Self::parse_with(input, b"TOY1")
    }

    fn parse_with(input: Input, magic: &[u8; 4]) -> Result<ToyFile> {
        let (b, name) = (&input.bytes, &input.name);
        let mut at = 0;
        if take(b, &mut at, 4, name)? != magic {
            return Err(toy_err(name, "bad magic"));
        }
        let count = u32::from_le_bytes(take(b, &mut at, 4, name)?.try_into().unwrap());
        let (mut tensors, mut offsets) = (Vec::new(), Vec::new());
        for _ in 0..count {
            let n = u16::from_le_bytes(take(b, &mut at, 2, name)?.try_into().unwrap()) as usize;
            let tname =
                String::from_utf8(take(b, &mut at, n, name)?.to_vec()).map_err(|_| toy_err(name, "name"))?;
            let dtype = *TOY_DTYPES
                .get(take(b, &mut at, 1, name)?[0] as usize)
                .ok_or_else(|| toy_err(name, "dtype"))?;
            let rank = take(b, &mut at, 1, name)?[0] as usize;
            let shape = (0..rank)
                .map(|_| Ok(u64::from_le_bytes(take(b, &mut at, 8, name)?.try_into().unwrap())))
                .collect::<Result<Vec<u64>>>()?;
            let mut info = TensorInfo::new(&tname, dtype, shape).ok_or_else(|| toy_err(name, "shape"))?;
            // Raw in the file: virtual references can point at it.
            info.file_offset = Some(at as u64);
            offsets.push(at as u64);
            take(b, &mut at, info.nbytes as usize, name)?;
            tensors.push(info);
        }
        Ok(ToyFile {
            bytes: input.bytes,
            tensors,
            offsets,
            metadata: Metadata::new(),
        })
    }
}

impl Source for ToyFile {
    fn format(&self) -> &'static str {
        "toy"
    }
    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }
    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        let t = &self.tensors[index];
        self.bytes
            .tensor_data(self.offsets[index], t.nbytes)
            .ok_or_else(|| Error::usage(code::CALL_ORDER, "out of bounds"))
    }
}

/// Writes each tensor's header right before its bytes, from the plan.
struct ToyWriter {
    target: Option<Box<dyn WriteTarget>>,
    plan: Vec<TensorInfo>,
}

impl ToyWriter {
    fn out(&mut self) -> Result<&mut Box<dyn WriteTarget>> {
        self.target
            .as_mut()
            .ok_or_else(|| Error::usage(code::CALL_ORDER, "toy writer finished"))
    }
}

impl Sink for ToyWriter {
    fn begin(&mut self, plan: &Plan) -> Result<()> {
        if let Some(t) = plan.tensors.iter().find(|t| !TOY_DTYPES.contains(&t.dtype)) {
            return Err(Error::unsupported(
                code::DTYPE_NOT_HELD,
                format!("toy cannot hold {}", t.dtype),
            ));
        }
        self.plan = plan.tensors.clone();
        let mut h = b"TOY1".to_vec();
        h.extend_from_slice(&(plan.tensors.len() as u32).to_le_bytes());
        self.out()?.write_all(&h)
    }
    fn write_tensor(&mut self, index: usize, data: TensorData<'_>) -> Result<()> {
        let info = &self.plan[index];
        let mut h = (info.name.len() as u16).to_le_bytes().to_vec();
        h.extend_from_slice(info.name.as_bytes());
        h.push(TOY_DTYPES.iter().position(|d| *d == info.dtype).unwrap_or(0) as u8);
        h.push(info.shape.len() as u8);
        for d in &info.shape {
            h.extend_from_slice(&d.to_le_bytes());
        }
        let out = self.out()?;
        out.write_all(&h)?;
        out.write_data(data).map(drop)
    }
    fn finish(&mut self) -> Result<()> {
        self.target
            .take()
            .ok_or_else(|| Error::usage(code::CALL_ORDER, "toy writer finished twice"))?
            .commit()
    }
}

impl Format for Toy {
    fn name(&self) -> &'static str {
        "toy"
    }
    fn extensions(&self) -> &'static [&'static str] {
        &["toy"]
    }
    fn detect(&self, head: &[u8]) -> Detection {
        Detection::magic(head, b"TOY1")
    }
    fn open(&self, input: Input, _: &Options) -> Result<Box<dyn Source>> {
        Ok(Box::new(ToyFile::parse(input)?))
    }
    fn can_write(&self) -> bool {
        true
    }
    fn create(&self, target: Box<dyn WriteTarget>, _: &Options) -> Result<Box<dyn Sink>> {
        Ok(Box::new(ToyWriter {
            target: Some(target),
            plan: Vec::new(),
        }))
    }
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
        let from_disk = open(&fixture(rel), &Options::default()).unwrap();
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
                tensorcast::Select::new(open(&fixture(rel), &Options::default()).unwrap(), &opts.select);
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
        let from_disk = open(&fixture(rel), &Options::default()).unwrap();
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
            tensorcast::convert_file(&fixture(rel), &file, &opts).unwrap();
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
        &fixture("safetensors/cast/source.safetensors"),
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
        &fixture("pytorch/hostile/builtin_eval_py2.pkl"),
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

/// The bytes of a toy file with `magic` holding F32 tensors.
fn toy_bytes(magic: &[u8; 4], tensors: &[(&str, &[f32])]) -> Vec<u8> {
    let mut b = magic.to_vec();
    b.extend_from_slice(&(tensors.len() as u32).to_le_bytes());
    for (name, values) in tensors {
        b.extend_from_slice(&(name.len() as u16).to_le_bytes());
        b.extend_from_slice(name.as_bytes());
        b.push(1); // F32
        b.push(1);
        b.extend_from_slice(&(values.len() as u64).to_le_bytes());
        values.iter().for_each(|v| b.extend_from_slice(&v.to_le_bytes()));
    }
    b
}

/// A toy multi-part format: `NAME-0000K-of-0000N.toyp`, each part a `TOYP`
/// file; the first part opens them all. Everything the facade needs to
/// batch it and reference it comes through `Format`'s hooks.
struct ToyParts;

struct ToyPartsFile {
    parts: Vec<ToyFile>,
    /// (part, index in the part) of each tensor, and the part file names.
    index: Vec<(usize, usize)>,
    names: Vec<String>,
    tensors: Vec<TensorInfo>,
    metadata: Metadata,
}

impl Source for ToyPartsFile {
    fn format(&self) -> &'static str {
        "toyp"
    }
    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }
    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        let &(p, i) = self
            .index
            .get(index)
            .ok_or_else(|| Error::usage(code::CALL_ORDER, "no such tensor"))?;
        self.parts[p].tensor_data(i)
    }
    fn raw_location(&self, index: usize) -> Option<tensorcast::RawLocation<'_>> {
        let &(p, i) = self.index.get(index)?;
        Some(tensorcast::RawLocation {
            file: (p > 0).then(|| self.names[p].as_str()),
            offset: self.parts[p].offsets[i],
        })
    }
}

impl Format for ToyParts {
    fn name(&self) -> &'static str {
        "toyp"
    }
    fn extensions(&self) -> &'static [&'static str] {
        &["toyp"]
    }
    fn detect(&self, head: &[u8]) -> Detection {
        Detection::magic(head, b"TOYP")
    }
    fn input_role(&self, name: &str, _: &dyn Fn(&str) -> bool) -> tensorcast::InputRole {
        let stem = tensorcast::parts::strip_extension(name, self.extensions());
        match stem.and_then(tensorcast::parts::PartName::parse) {
            Some(p) if p.index != 1 => tensorcast::InputRole::Covered,
            _ => tensorcast::InputRole::Whole,
        }
    }
    fn stem<'a>(&self, name: &'a str) -> &'a str {
        let stem = tensorcast::parts::strip_extension(name, self.extensions()).unwrap_or(name);
        tensorcast::parts::PartName::parse(stem).map_or(stem, |p| p.base)
    }
    fn open(&self, input: Input, _: &Options) -> Result<Box<dyn Source>> {
        let file = input.name.file_name().unwrap().to_string_lossy().into_owned();
        let stem = tensorcast::parts::strip_extension(&file, self.extensions()).unwrap_or(&file);
        let part =
            tensorcast::parts::PartName::parse(stem).ok_or_else(|| toy_err(&input.name, "not a part"))?;
        let mut names = vec![file.clone()];
        let mut parts = Vec::new();
        for k in 2..=part.count {
            let name = format!(
                "{}.toyp",
                tensorcast::parts::PartName::format(part.base, k, part.count)
            );
            parts.push(ToyFile::parse_with(input.sibling(&name)?, b"TOYP")?);
            names.push(name);
        }
        parts.insert(0, ToyFile::parse_with(input, b"TOYP")?);
        let mut index = Vec::new();
        let mut tensors = Vec::new();
        for (p, f) in parts.iter().enumerate() {
            for (i, t) in f.tensors.iter().enumerate() {
                index.push((p, i));
                tensors.push(t.clone());
            }
        }
        Ok(Box::new(ToyPartsFile {
            parts,
            index,
            names,
            tensors,
            metadata: Metadata::new(),
        }))
    }
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
        .map(|j| j.output.file_name().unwrap().to_string_lossy().into_owned())
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
    let merged = open(&out.join("m.safetensors"), &Options::default()).unwrap();
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

/// A toy model folder: `toy.json` marks it, `weights.toy` holds the
/// weights; as a model its tensors are called `model.NAME` (the names a
/// model-aware conversion gives), kept as they are with names kept.
struct ToyFolder;

/// A source with every tensor name prefixed (`add`) or unprefixed.
struct Renamed {
    inner: Box<dyn Source>,
    tensors: Vec<TensorInfo>,
}

impl Renamed {
    fn new(inner: Box<dyn Source>, add: bool) -> Result<Renamed> {
        let tensors = inner
            .tensors()
            .iter()
            .map(|t| {
                let mut t = t.clone();
                t.name = match add {
                    true => format!("model.{}", t.name),
                    false => t
                        .name
                        .strip_prefix("model.")
                        .ok_or_else(|| {
                            Error::unsupported(
                                code::NO_MODEL_TABLE,
                                format!("'{}' is not a toy model tensor", t.name),
                            )
                        })?
                        .to_string(),
                };
                Ok(t)
            })
            .collect::<Result<_>>()?;
        Ok(Renamed { inner, tensors })
    }
}

impl Source for Renamed {
    fn format(&self) -> &'static str {
        "toydir"
    }
    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }
    fn metadata(&self) -> &Metadata {
        self.inner.metadata()
    }
    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        self.inner.tensor_data(index)
    }
}

impl Format for ToyFolder {
    fn name(&self) -> &'static str {
        "toydir"
    }
    fn extensions(&self) -> &'static [&'static str] {
        &[]
    }
    fn detect(&self, _: &[u8]) -> Detection {
        Detection::No
    }
    fn folder_entry(&self) -> Option<&'static str> {
        Some("toy.json")
    }
    fn folder_target(&self) -> Option<&'static str> {
        Some("weights.toy")
    }
    fn open(&self, input: Input, _: &Options) -> Result<Box<dyn Source>> {
        Ok(Box::new(ToyFile::parse(input.sibling("weights.toy")?)?))
    }
    fn open_as_model_for(
        &self,
        input: Input,
        _: &dyn Format,
        options: &Options,
        _: Option<DType>,
        _: Option<tensorcast::QuantType>,
    ) -> Result<Box<dyn Source>> {
        Ok(Box::new(Renamed::new(self.open(input, options)?, true)?))
    }
    fn view_for_writing(&self, source: Box<dyn Source>) -> Result<Box<dyn Source>> {
        Ok(Box::new(Renamed::new(source, false)?))
    }
    fn can_write(&self) -> bool {
        true
    }
    fn create(&self, target: Box<dyn WriteTarget>, _: &Options) -> Result<Box<dyn Sink>> {
        Ok(Box::new(ToyFolderWriter(ToyWriter {
            target: Some(target),
            plan: Vec::new(),
        })))
    }
}

/// The weights file, then `toy.json` beside it.
struct ToyFolderWriter(ToyWriter);

impl Sink for ToyFolderWriter {
    fn begin(&mut self, plan: &Plan) -> Result<()> {
        self.0.begin(plan)
    }
    fn write_tensor(&mut self, index: usize, data: TensorData<'_>) -> Result<()> {
        self.0.write_tensor(index, data)
    }
    fn finish(&mut self) -> Result<()> {
        let mut entry = self.0.out()?.sibling("toy.json")?;
        entry.write_all(b"{}")?;
        self.0.finish()?;
        entry.commit()
    }
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
    let e = tensorcast::convert_file(&empty, &dir.path().join("e.safetensors"), &opts).unwrap_err();
    assert_eq!(e.code(), Some(code::UNKNOWN_FORMAT), "{e}");
}
