//! Formats defined outside tensorcast's workspace, as a third-party crate
//! would define them, using only the `tensorcast` crate's public API: a
//! single-file container (`Toy`), a model split over several files
//! (`ToyParts`) and a model folder (`ToyFolder`). `tests/toys.rs` registers
//! them with `Registry::builtin().with(...)` and converts, batches and makes
//! references with them; nothing in the facade knows they exist.

use std::path::Path;
use tensorcast::code;
use tensorcast::{
    DType, Detection, Error, Format, Input, Metadata, MultiPart, Options, Plan, Result, Sink, Source,
    TensorData, TensorInfo, WriteTarget,
};

/// A toy container: `TOY1`, a u32 tensor count, then per tensor a u16 name
/// length, the name, a u8 dtype (an index into [`TOY_DTYPES`]), a u8 rank,
/// u64 dims and the bytes. Everything a real format crate provides, in one screen.
pub struct Toy;

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

/// The bytes of a toy file with `magic` holding F32 tensors.
pub fn toy_bytes(magic: &[u8; 4], tensors: &[(&str, &[f32])]) -> Vec<u8> {
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
pub struct ToyParts;

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
        match tensorcast::parts::part_of(name, self.extensions()) {
            Some(p) if p.index != 1 => tensorcast::InputRole::Covered,
            _ => tensorcast::InputRole::Whole,
        }
    }
    fn stem<'a>(&self, name: &'a str) -> &'a str {
        tensorcast::parts::model_stem(name, self.extensions())
    }
    fn open(&self, input: Input, _: &Options) -> Result<Box<dyn Source>> {
        let file = input.name.file_name().unwrap().to_string_lossy().into_owned();
        let part = tensorcast::parts::part_of(&file, self.extensions())
            .ok_or_else(|| toy_err(&input.name, "not a part"))?;
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

/// A toy model folder: `toy.json` marks it, `weights.toy` holds the
/// weights; as a model its tensors are called `model.NAME` (the names a
/// model-aware conversion gives), kept as they are with names kept.
pub struct ToyFolder;

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
    /// Any target: a batch converts a toy folder as one model.
    fn folder_converts_to(&self, _: &dyn Format) -> bool {
        true
    }
    /// The weights, named as the file beside `toy.json` they are read from
    /// (so references point into it).
    fn open(&self, input: Input, _: &Options) -> Result<Box<dyn Source>> {
        let weights = ToyFile::parse(input.sibling("weights.toy")?)?;
        let metadata = weights.metadata.clone();
        Ok(Box::new(MultiPart::new(
            "toy",
            vec![(Some("weights.toy".into()), weights)],
            metadata,
        )))
    }
    fn open_as_model_for(
        &self,
        input: Input,
        _: &dyn Format,
        options: &Options,
        _: Option<DType>,
        _: Option<tensorcast::QuantType>,
        weights: Option<Box<dyn Source>>,
    ) -> Result<Box<dyn Source>> {
        let weights = match weights {
            Some(w) => w,
            None => self.open(input, options)?,
        };
        Ok(Box::new(Renamed::new(weights, true)?))
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
