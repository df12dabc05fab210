//! An ONNX model opened as a [`Source`].

use crate::proto::{GraphName, Model, SparseTensor, Tensor};
use crate::wire;
use crate::{rules, FORMAT};
use prost::Message;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tensorcast_core::code;
use tensorcast_core::{
    is_plain_name, Bytes, DType, Error, FormatError, Input, Limits, Metadata, RawLocation, Result, Source,
    TensorData, TensorInfo, Value,
};

fn err(rule: &'static str, detail: impl Into<String>) -> FormatError {
    FormatError::new(FORMAT, rule, detail)
}

/// Where one initializer's bytes are.
enum Place {
    /// `raw_data`, at this offset of the model's bytes.
    Raw(u64),
    /// Typed values, converted to little-endian bytes at open.
    Owned(Vec<u8>),
    /// In external file `file` (an index into the files opened), at `offset`.
    External { file: usize, offset: u64 },
}

/// A validated ONNX model's initializers.
pub struct OnnxFile {
    path: PathBuf,
    bytes: Arc<Bytes>,
    externals: Vec<Bytes>,
    /// Each external file's name beside the model (as `externals`).
    external_names: Vec<String>,
    tensors: Vec<TensorInfo>,
    places: Vec<Place>,
    metadata: Metadata,
}

/// Lets prost's zero-copy byte fields slice the model's own bytes.
struct Shared(Arc<Bytes>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The IR dtype of an ONNX `DataType`, or the reason there is none.
fn dtype(code: i32) -> std::result::Result<DType, &'static str> {
    Ok(match code {
        1 => DType::F32,
        2 => DType::U8,
        3 => DType::I8,
        4 => DType::U16,
        5 => DType::I16,
        6 => DType::I32,
        7 => DType::I64,
        9 => DType::Bool,
        10 => DType::F16,
        11 => DType::F64,
        12 => DType::U32,
        13 => DType::U64,
        14 => DType::C64,
        15 => DType::C128,
        16 => DType::BF16,
        17 => DType::F8E4M3,
        18 => DType::F8E4M3Fnuz,
        19 => DType::F8E5M2,
        20 => DType::F8E5M2Fnuz,
        24 => DType::F8E8M0,
        0 => return Err("UNDEFINED"),
        8 => return Err("STRING"),
        21 => return Err("UINT4"),
        22 => return Err("INT4"),
        23 => return Err("FLOAT4E2M1"),
        25 => return Err("UINT2"),
        26 => return Err("INT2"),
        _ => return Err("an unknown data type"),
    })
}

impl OnnxFile {
    /// Maps and validates the model at `path` (external data beside it).
    pub fn open(path: &Path, limits: &Limits) -> Result<OnnxFile> {
        Self::from_input(Input::open(path)?, limits)
    }

    /// Validates a model in hand; external data files are its siblings.
    ///
    /// Every count is checked on the wire before anything is decoded for
    /// it (wire.rs): initializers against `max_tensors`, metadata entries
    /// against `max_objects`, each shape's rank against `max_dims`; string
    /// tensors are refused by name undecoded. Then each initializer is
    /// decoded on its own, its bytes borrowed from the model's where they
    /// are raw.
    pub fn from_input(mut input: Input, limits: &Limits) -> Result<OnnxFile> {
        let path = input.name.clone();
        let bytes = Arc::new(input.take_bytes());
        let base = bytes.as_ptr() as usize;
        let buf = bytes::Bytes::from_owner(Shared(Arc::clone(&bytes)));
        let wire_err = |d: String| {
            Error::from(err(rules::NOT_A_MODEL, format!("not an ONNX model: {d}")).in_file(&path))
        };
        let mut graph = None;
        let mut entries = 0u64;
        for f in wire::fields(&buf, 0..buf.len()) {
            match f.map_err(wire_err)? {
                (7, wire::Payload::Bytes(r)) if graph.is_some() => {
                    let _ = r;
                    return Err(wire_err("two graphs".into()));
                }
                (7, wire::Payload::Bytes(r)) => graph = Some(r),
                (14, _) => entries += 1,
                _ => {}
            }
        }
        if entries > limits.max_objects {
            return Err(err(
                rules::COUNT,
                format!("{entries} metadata entries, over {}", limits.max_objects),
            )
            .limit("max_objects")
            .in_file(&path)
            .into());
        }
        let model = Model::decode(buf.clone()).map_err(|e| wire_err(e.to_string()))?;
        let graph = graph
            .ok_or_else(|| Error::from(err(rules::NO_GRAPH, "the model has no graph").in_file(&path)))?;
        let graph_name = GraphName::decode(buf.slice(graph.clone()))
            .map_err(|e| wire_err(e.to_string()))?
            .name;
        let mut found = Vec::new();
        let mut sparse = None;
        wire::initializers(&buf, graph, "", 0, limits.max_tensors, &mut found, &mut sparse).map_err(|d| {
            let e = err(rules::COUNT, d.clone()).in_file(&path);
            Error::from(if d.starts_with("more than") {
                e.limit("max_tensors")
            } else {
                e
            })
        })?;
        if let Some(r) = sparse {
            let name = SparseTensor::decode(buf.slice(r))
                .ok()
                .and_then(|s| s.values.map(|v| v.name))
                .unwrap_or_default();
            return Err(err(rules::SPARSE, "sparse initializers are not supported yet")
                .tensor(name)
                .in_file(&path)
                .into());
        }
        let mut file = OnnxFile {
            path: path.clone(),
            bytes: Arc::clone(&bytes),
            externals: Vec::new(),
            external_names: Vec::new(),
            tensors: Vec::with_capacity(found.len()),
            places: Vec::with_capacity(found.len()),
            metadata: metadata(&model, &graph_name),
        };
        drop(model);
        let mut opened: HashMap<String, usize> = HashMap::new();
        let mut owned_total = 0u64;
        for f in &found {
            let counts = wire::tensor_counts(&buf, f.range.clone()).map_err(wire_err)?;
            let name = counts
                .name
                .clone()
                .map(|r| format!("{}{}", f.scope, String::from_utf8_lossy(&buf[r])))
                .unwrap_or_default();
            let fail = |e: FormatError| Error::from(e.tensor(&name).in_file(&path));
            if counts.dims > limits.max_dims as u64 {
                return Err(fail(
                    err(
                        rules::SHAPE,
                        format!("{} dimensions, over {}", counts.dims, limits.max_dims),
                    )
                    .limit("max_dims"),
                ));
            }
            if counts.strings > 0 {
                return Err(fail(err(rules::DTYPE, "a string tensor has no tensorcast dtype")));
            }
            if counts.external > 64 {
                return Err(fail(err(
                    rules::EXTERNAL_RANGE,
                    "more than 64 external_data entries",
                )));
            }
            let mut t = Tensor::decode(buf.slice(f.range.clone())).map_err(|e| wire_err(e.to_string()))?;
            t.name = name.clone();
            if t.name.is_empty() {
                return Err(fail(err(rules::NAME, "an initializer without a name")));
            }
            let (info, place) = file
                .tensor(&t, base, &input, &mut opened, &mut owned_total, limits)
                .map_err(|e| match e {
                    Error::Format(e) => fail(*e),
                    other => other,
                })?;
            file.tensors.push(info);
            file.places.push(place);
        }
        // Names used twice, found by sorting positions (no second copy of
        // a million names).
        let mut order: Vec<u32> = (0..file.tensors.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| file.tensors[a as usize].name.cmp(&file.tensors[b as usize].name));
        if let Some(w) = order
            .windows(2)
            .find(|w| file.tensors[w[0] as usize].name == file.tensors[w[1] as usize].name)
        {
            let name = file.tensors[w[0] as usize].name.clone();
            return Err(err(rules::NAME, "a name used twice")
                .tensor(name)
                .in_file(&path)
                .into());
        }
        Ok(file)
    }

    fn tensor(
        &mut self,
        t: &Tensor,
        base: usize,
        input: &Input,
        opened: &mut HashMap<String, usize>,
        owned_total: &mut u64,
        limits: &Limits,
    ) -> Result<(TensorInfo, Place)> {
        let dtype = dtype(t.data_type)
            .map_err(|what| err(rules::DTYPE, format!("{what} has no tensorcast dtype")))?;
        if t.segment.is_some() {
            return Err(err(rules::DATA, "tensors split into segments are not supported").into());
        }
        let mut shape = Vec::with_capacity(t.dims.len());
        for &d in &t.dims {
            shape.push(u64::try_from(d).map_err(|_| err(rules::SHAPE, format!("dimension {d}")))?);
        }
        let count = tensorcast_core::element_count(&shape)
            .ok_or_else(|| err(rules::SHAPE, "the element count overflows"))?;
        let nbytes = dtype
            .storage_bytes(count)
            .ok_or_else(|| err(rules::SHAPE, "the byte size overflows"))?;
        let info = TensorInfo {
            name: t.name.clone(),
            dtype,
            shape,
            nbytes,
            file_offset: None,
            sparse: None,
            unreadable: None,
        };
        let typed = !(t.float_data.is_empty()
            && t.int32_data.is_empty()
            && t.int64_data.is_empty()
            && t.double_data.is_empty()
            && t.uint64_data.is_empty());
        let external = t.data_location == 1;
        if [typed, external, !t.raw_data.is_empty()]
            .iter()
            .filter(|&&b| b)
            .count()
            > 1
        {
            return Err(err(rules::DATA, "data given in more than one place").into());
        }
        let place = if external {
            self.external(t, nbytes, input, opened)?
        } else if typed {
            *owned_total = owned_total.saturating_add(nbytes);
            limits
                .check_alloc(*owned_total, "decoding typed ONNX values")
                .map_err(|d| err(rules::SIZE, d).limit("max_alloc_bytes"))?;
            Place::Owned(typed_bytes(t, dtype, count)?)
        } else {
            if t.raw_data.len() as u64 != nbytes {
                return Err(err(
                    rules::SIZE,
                    format!(
                        "raw_data holds {} bytes, the shape needs {nbytes}",
                        t.raw_data.len()
                    ),
                )
                .into());
            }
            // raw_data is a slice of the model's bytes (prost's zero-copy
            // Bytes); an empty one may point anywhere.
            let at = (t.raw_data.as_ptr() as usize).wrapping_sub(base) as u64;
            if nbytes > 0 && at.checked_add(nbytes).is_none_or(|e| e > self.bytes.len() as u64) {
                return Err(err(rules::SIZE, "raw_data lies outside the model").into());
            }
            Place::Raw(if nbytes == 0 { 0 } else { at })
        };
        Ok((info, place))
    }

    fn external(
        &mut self,
        t: &Tensor,
        nbytes: u64,
        input: &Input,
        opened: &mut HashMap<String, usize>,
    ) -> Result<Place> {
        let field = |k: &str| {
            t.external_data
                .iter()
                .find(|e| e.key == k)
                .map(|e| e.value.as_str())
        };
        let location =
            field("location").ok_or_else(|| err(rules::EXTERNAL_PATH, "external data without a location"))?;
        if !is_plain_name(location) {
            return Err(err(
                rules::EXTERNAL_PATH,
                format!(
                    "external data location '{location}' is not a plain file name beside the model: refused"
                ),
            )
            .into());
        }
        let number = |k: &str, default: u64| -> Result<u64> {
            match field(k) {
                None => Ok(default),
                Some(v) => v
                    .parse()
                    .map_err(|_| err(rules::EXTERNAL_RANGE, format!("{k} '{v}' is not a byte count")).into()),
            }
        };
        let index = match opened.get(location) {
            Some(&i) => i,
            None => {
                refuse_link_out(&input.name, location).map_err(|why| err(rules::EXTERNAL_PATH, why))?;
                let file = input.sibling(location).map_err(|e| {
                    err(
                        rules::EXTERNAL_MISSING,
                        format!("external data file '{location}' could not be opened: {e}"),
                    )
                })?;
                self.externals.push(file.bytes);
                self.external_names.push(location.to_string());
                opened.insert(location.to_string(), self.externals.len() - 1);
                self.externals.len() - 1
            }
        };
        let file_len = self.externals[index].len() as u64;
        let offset = number("offset", 0)?;
        let length = number("length", file_len.saturating_sub(offset))?;
        if length != nbytes {
            return Err(err(
                rules::SIZE,
                format!("external data holds {length} bytes, the shape needs {nbytes}"),
            )
            .into());
        }
        if offset.checked_add(length).is_none_or(|e| e > file_len) {
            return Err(err(
                rules::EXTERNAL_RANGE,
                format!("bytes {offset}..+{length} lie outside '{location}' ({file_len} bytes)"),
            )
            .into());
        }
        Ok(Place::External { file: index, offset })
    }
}

/// Typed values as the tensor's little-endian bytes.
fn typed_bytes(t: &Tensor, dtype: DType, count: u64) -> std::result::Result<Vec<u8>, FormatError> {
    let want = |n: usize, per: u64| -> std::result::Result<(), FormatError> {
        if n as u64 != count.saturating_mul(per) {
            return Err(err(
                rules::SIZE,
                format!("{n} typed values for {count} elements of {dtype}"),
            ));
        }
        Ok(())
    };
    let mut out = Vec::new();
    match dtype {
        DType::F32 | DType::C64 => {
            want(t.float_data.len(), if dtype == DType::C64 { 2 } else { 1 })?;
            t.float_data
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        DType::F64 => {
            want(t.double_data.len(), 1)?;
            t.double_data
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        DType::I64 => {
            want(t.int64_data.len(), 1)?;
            t.int64_data
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        DType::U32 | DType::U64 => {
            want(t.uint64_data.len(), 1)?;
            for &v in &t.uint64_data {
                if dtype == DType::U32 {
                    out.extend_from_slice(&(v as u32).to_le_bytes());
                } else {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        _ => {
            // int32_data carries every narrower type, one value per element
            // (the element's bits for floats), truncated to its width.
            want(t.int32_data.len(), 1)?;
            let width = dtype.storage_bytes(1).unwrap_or(1) as usize;
            for &v in &t.int32_data {
                out.extend_from_slice(&v.to_le_bytes()[..width.min(4)]);
            }
        }
    }
    Ok(out)
}

fn metadata(model: &Model, graph_name: &str) -> Metadata {
    let mut m = Metadata::new();
    m.insert("onnx.ir_version", Value::I64(model.ir_version));
    for (k, v) in [
        ("onnx.producer_name", &model.producer_name),
        ("onnx.producer_version", &model.producer_version),
        ("onnx.domain", &model.domain),
        ("onnx.doc_string", &model.doc_string),
    ] {
        if !v.is_empty() {
            m.insert(k, Value::Str(v.clone()));
        }
    }
    if model.model_version != 0 {
        m.insert("onnx.model_version", Value::I64(model.model_version));
    }
    if !graph_name.is_empty() {
        m.insert("onnx.graph_name", Value::Str(graph_name.to_string()));
    }
    for op in &model.opset_import {
        let domain = if op.domain.is_empty() {
            "ai.onnx"
        } else {
            &op.domain
        };
        m.insert(format!("onnx.opset.{domain}"), Value::I64(op.version));
    }
    for p in &model.metadata_props {
        m.insert(format!("onnx.metadata.{}", p.key), Value::Str(p.value.clone()));
    }
    m
}

impl Source for OnnxFile {
    fn format(&self) -> &'static str {
        FORMAT
    }

    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Raw data lies in the model file as the tensor holds it (ONNX
    /// stores it little-endian, row-major); external data in its file beside
    /// the model, named as the model names it. Typed fields were converted,
    /// so they lie nowhere.
    fn raw_location(&self, index: usize) -> Option<RawLocation<'_>> {
        match self.places.get(index)? {
            Place::Raw(at) => Some(RawLocation {
                file: None,
                offset: *at,
            }),
            Place::External { file, offset } => Some(RawLocation {
                file: Some(self.external_names.get(*file)?.as_str()),
                offset: *offset,
            }),
            Place::Owned(_) => None,
        }
    }

    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        let (info, place) = self
            .tensors
            .get(index)
            .zip(self.places.get(index))
            .ok_or_else(|| {
                Error::usage(
                    code::CALL_ORDER,
                    format!("{}: no tensor #{index}", self.path.display()),
                )
            })?;
        let data = match place {
            Place::Owned(v) => Some(TensorData::Borrowed(v)),
            Place::Raw(at) => self.bytes.tensor_data(*at, info.nbytes),
            Place::External { file, offset } => self.externals[*file].tensor_data(*offset, info.nbytes),
        };
        data.ok_or_else(|| {
            Error::usage(
                code::CALL_ORDER,
                format!("{}: tensor '{}' out of bounds", self.path.display(), info.name),
            )
        })
    }
}

/// A local external data file that is a symbolic link resolving outside
/// the model's folder is refused: "beside the model" must not reach
/// elsewhere through a link. (Links within the folder are fine.)
fn refuse_link_out(model: &std::path::Path, location: &str) -> std::result::Result<(), String> {
    let Some(dir) = model.parent() else {
        return Ok(());
    };
    let path = dir.join(location);
    let Ok(meta) = std::fs::symlink_metadata(&path) else {
        return Ok(());
    };
    if !meta.file_type().is_symlink() {
        return Ok(());
    }
    let inside = match (
        std::fs::canonicalize(&path),
        std::fs::canonicalize(if dir.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            dir
        }),
    ) {
        (Ok(real), Ok(folder)) => real.starts_with(folder),
        _ => false,
    };
    if inside {
        Ok(())
    } else {
        Err(format!(
            "external data file '{location}' is a link to a file outside the model's folder: refused"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/onnx")
    }

    /// Raw and external data are referenced where they lie: the bytes at
    /// each reported place are the tensor's; converted typed fields are not.
    #[test]
    fn raw_locations_point_at_the_tensor_bytes() {
        let mut placed = 0;
        for model in ["raw.onnx", "external.onnx", "typed.onnx"] {
            let f = OnnxFile::open(&fixtures().join(model), &Limits::default()).unwrap();
            for (i, t) in f.tensors().iter().enumerate() {
                let Some(loc) = f.raw_location(i) else {
                    assert_eq!(model, "typed.onnx", "{}", t.name);
                    continue;
                };
                let file = std::fs::read(fixtures().join(loc.file.unwrap_or(model))).unwrap();
                let at = loc.offset as usize;
                let want = f.tensor_data(i).unwrap().into_vec().unwrap();
                assert_eq!(&file[at..at + want.len()], &want[..], "{model}: {}", t.name);
                placed += 1;
            }
        }
        let ext = OnnxFile::open(&fixtures().join("external.onnx"), &Limits::default()).unwrap();
        assert!((0..ext.tensors().len()).any(|i| ext.raw_location(i).and_then(|l| l.file).is_some()));
        assert!(placed >= 20, "{placed}");
    }

    #[test]
    fn data_types_by_code() {
        assert_eq!(dtype(1), Ok(DType::F32));
        assert_eq!(dtype(16), Ok(DType::BF16));
        assert_eq!(dtype(24), Ok(DType::F8E8M0));
        assert_eq!(dtype(8), Err("STRING"));
        assert_eq!(dtype(23), Err("FLOAT4E2M1"));
        assert_eq!(dtype(99), Err("an unknown data type"));
    }

    /// Every initializer of the committed models (raw_data, typed fields and
    /// external data), in file order, equals what the onnx package's
    /// numpy_helper gave the generator: name, dtype, shape and bytes; the
    /// model's metadata is carried. (Moved here from the integration tests:
    /// it needs nothing but this crate and the fixtures.)
    #[test]
    fn initializers_equal_the_onnx_packages_arrays() {
        let expected: serde_json::Value =
            serde_json::from_slice(&std::fs::read(fixtures().join("expected.json")).unwrap()).unwrap();
        let mut count = 0;
        for (file, tensors) in expected["models"].as_object().unwrap() {
            let f = OnnxFile::open(&fixtures().join(file), &Limits::default()).unwrap();
            assert_eq!(f.format(), "onnx");
            let tensors = tensors.as_array().unwrap();
            assert_eq!(f.tensors().len(), tensors.len(), "{file}");
            for (i, (t, want)) in f.tensors().iter().zip(tensors).enumerate() {
                let name = want["name"].as_str().unwrap();
                assert_eq!(t.name, name, "{file}");
                assert_eq!(t.dtype.name(), want["dtype"].as_str().unwrap(), "{file}: {name}");
                let shape: Vec<u64> = want["shape"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_u64().unwrap())
                    .collect();
                assert_eq!(t.shape, shape, "{file}: {name}");
                let hex: String = f
                    .tensor_data(i)
                    .unwrap()
                    .into_vec()
                    .unwrap()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                assert_eq!(hex, want["hex"].as_str().unwrap(), "{file}: {name}");
                count += 1;
            }
        }
        assert_eq!(count, 46);
        let raw = OnnxFile::open(&fixtures().join("raw.onnx"), &Limits::default()).unwrap();
        let meta = |k: &str| raw.metadata().get(k).map(|v| v.preview(60));
        assert_eq!(meta("onnx.metadata.author").as_deref(), Some("tensorcast"));
        assert_eq!(meta("onnx.producer_name").as_deref(), Some("tensorcast-fixtures"));
        assert_eq!(meta("onnx.opset.ai.onnx").as_deref(), Some("21"));
    }
}
