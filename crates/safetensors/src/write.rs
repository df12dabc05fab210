//! The safetensors writer: header from the plan, tensors streamed in plan
//! order, output renamed into place only when complete.

use crate::index::INDEX_SUFFIX;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use tensorcast_core::code;
use tensorcast_core::edit::congruent_offset;
use tensorcast_core::{
    check_size, DType, Error, FileTarget, Metadata, Origin, Plan, Result, Sink, SourceId, TensorData,
    TensorInfo, Value, WriteTarget,
};

/// Writes one safetensors file, or Hugging Face-style shards plus an index
/// when a maximum shard size is set and the tensors exceed it.
pub struct SafetensorsWriter {
    /// The output as named; it is written itself unless the plan shards.
    target: Option<Box<dyn WriteTarget>>,
    name: PathBuf,
    max_shard_bytes: Option<u64>,
    tensors: Vec<TensorInfo>,
    shards: Vec<ShardPlan>,
    open: Vec<Option<Box<dyn WriteTarget>>>,
    next: usize,
}

struct ShardPlan {
    /// The shard's file name; `None` for the single-file case (the target).
    file_name: Option<String>,
    tensors: Range<usize>,
    header: Vec<u8>,
}

impl SafetensorsWriter {
    /// A writer that will produce the local file `target`.
    pub fn new(target: &Path) -> Self {
        Self::to_target(Box::new(FileTarget::new(target)))
    }

    /// A writer into `target` (shards, when the plan needs them, are its siblings).
    pub fn to_target(target: Box<dyn WriteTarget>) -> Self {
        SafetensorsWriter {
            name: target.name().to_path_buf(),
            target: Some(target),
            max_shard_bytes: None,
            tensors: Vec::new(),
            shards: Vec::new(),
            open: Vec::new(),
            next: 0,
        }
    }

    /// Splits the output into shards of at most `bytes` of tensor data each
    /// (a single tensor larger than that gets a shard of its own). With one
    /// shard the output is a plain file at the target path.
    pub fn max_shard_bytes(mut self, bytes: Option<u64>) -> Self {
        self.max_shard_bytes = bytes;
        self
    }

    /// Paths of the files `finish` will create (shards, then the index).
    pub fn outputs(&self) -> Vec<PathBuf> {
        let path = |file: &Option<String>| match file {
            Some(f) => self.name.with_file_name(f),
            None => self.name.clone(),
        };
        let mut v: Vec<PathBuf> = self.shards.iter().map(|s| path(&s.file_name)).collect();
        if self.shards.len() > 1 {
            v.push(self.name.with_file_name(self.index_name()));
        }
        v
    }

    fn stem(&self) -> String {
        let name = self
            .name
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        name.strip_suffix(".safetensors")
            .map(str::to_string)
            .unwrap_or(name)
    }

    fn index_name(&self) -> String {
        format!("{}{INDEX_SUFFIX}", self.stem())
    }

    fn shard_of(&self, index: usize) -> usize {
        self.shards
            .iter()
            .position(|s| s.tensors.contains(&index))
            .unwrap_or(0)
    }
}

fn validate(plan: &Plan) -> Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(plan.tensors.len());
    for t in &plan.tensors {
        if t.name.is_empty() || t.name == "__metadata__" {
            return Err(Error::unsupported(
                code::NAME_NOT_HELD,
                format!("safetensors cannot hold a tensor named '{}'", t.name),
            ));
        }
        if !seen.insert(t.name.as_str()) {
            return Err(Error::unsupported(
                code::NAME_NOT_HELD,
                format!(
                    "tensor '{}' appears twice; safetensors names must be unique",
                    t.name
                ),
            ));
        }
        if t.dtype.bits().is_none() {
            return Err(Error::unsupported(code::BLOCKS_NOT_HELD, format!(
                "tensor '{}' is {} blocks, which safetensors cannot hold: dequantize it (the default) or write GGUF or tpack",
                t.name, t.dtype
            )));
        }
        if t.dtype == DType::C128 {
            return Err(Error::unsupported(code::DTYPE_NOT_HELD, format!(
                "tensor '{}' is complex128, which safetensors has no dtype for: write tpack, npz, .zt or a PyTorch checkpoint",
                t.name
            )));
        }
    }
    Ok(())
}

/// Groups tensors, in order, into shards of at most `max` bytes.
fn split(tensors: &[TensorInfo], max: Option<u64>) -> Vec<Range<usize>> {
    let Some(max) = max else {
        return std::iter::once(0..tensors.len()).collect();
    };
    let mut shards = Vec::new();
    let (mut start, mut size) = (0usize, 0u64);
    for (i, t) in tensors.iter().enumerate() {
        if i > start && size.saturating_add(t.nbytes) > max {
            shards.push(start..i);
            start = i;
            size = 0;
        }
        size = size.saturating_add(t.nbytes);
    }
    shards.push(start..tensors.len());
    shards
}

/// The 8-byte length, the JSON header padded with spaces to a multiple of 8
/// (as the reference writer does, so the data buffer starts 8-aligned).
fn header_bytes(tensors: &[TensorInfo], metadata: &Metadata) -> Vec<u8> {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    // The length prefix is patched in at the end: the header (which may hold
    // a 50 MB metadata string) is built once, in place, never copied.
    let mut out: Vec<u8> = vec![0; 8];
    out.push(b'{');
    if !metadata.is_empty() {
        out.extend_from_slice(b"\"__metadata__\":{");
        for (i, (k, v)) in metadata.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // Writing JSON into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut out, k);
            out.push(b':');
            let _ = match v {
                Value::Str(text) => serde_json::to_writer(&mut out, text),
                other => serde_json::to_writer(&mut out, &other.to_metadata_string()),
            };
        }
        out.push(b'}');
    }
    let mut json = String::new();
    let mut offset = 0u64;
    for (i, t) in tensors.iter().enumerate() {
        if i > 0 || !metadata.is_empty() {
            json.push(',');
        }
        let shape: Vec<String> = t.shape.iter().map(u64::to_string).collect();
        json.push_str(&format!(
            "{}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
            q(&t.name),
            t.dtype.name(),
            shape.join(","),
            offset,
            offset + t.nbytes
        ));
        offset += t.nbytes;
    }
    json.push('}');
    out.extend_from_slice(json.as_bytes());
    while !(out.len() - 8).is_multiple_of(8) {
        out.push(b' ');
    }
    let n = (out.len() - 8) as u64;
    out[..8].copy_from_slice(&n.to_le_bytes());
    out
}

/// Shards holding at least this many tensor bytes whose first tensor lies
/// in an input file get their header padded so that the data starts at the
/// same offset modulo 4096 as there ([`pad_congruent`]).
const CONGRUENT_FROM: u64 = 16 << 20;

/// Pads `header` (length prefix included) with spaces so that the data after
/// it starts congruent modulo 4096 with `source_offset`, where the first
/// tensor lies in its input. Tensors laid out as in their input (a rename,
/// new metadata, a subset of a safetensors file) then form runs the file
/// target copies kernel-side, which XFS and btrfs turn into shared extents:
/// O(header) instead of a copy. The padding, under 4 KiB, is JSON whitespace
/// (the format pads with spaces to 8 anyway), and depends only on the input's
/// layout, so every file system gets the same bytes. An input offset that is
/// not 8-aligned (early writers) keeps the plain 8-byte padding.
fn pad_congruent(header: &mut Vec<u8>, source_offset: u64) {
    let len = header.len() as u64;
    let Some(start) = congruent_offset(len, source_offset, 8) else {
        return;
    };
    header.resize(start as usize, b' ');
    let n = start - 8;
    header[..8].copy_from_slice(&n.to_le_bytes());
}

impl Sink for SafetensorsWriter {
    fn begin(&mut self, plan: &Plan) -> Result<()> {
        tensorcast_core::sparse::refuse_sparse(&plan.tensors, "safetensors")?;
        validate(plan)?;
        self.tensors = plan.tensors.clone();
        let ranges = split(&plan.tensors, self.max_shard_bytes);
        let n = ranges.len();
        self.shards = ranges
            .into_iter()
            .enumerate()
            .map(|(k, range)| ShardPlan {
                file_name: (n > 1).then(|| format!("{}-{:05}-of-{:05}.safetensors", self.stem(), k + 1, n)),
                header: header_bytes(&plan.tensors[range.clone()], &plan.metadata),
                tensors: range,
            })
            .collect();
        self.open = (0..n).map(|_| None).collect();
        self.next = 0;
        Ok(())
    }

    fn write_tensor(&mut self, index: usize, data: TensorData<'_>) -> Result<()> {
        if index != self.next || index >= self.tensors.len() {
            return Err(Error::usage(
                code::CALL_ORDER,
                format!("safetensors writer got tensor #{index}, expected #{}", self.next),
            ));
        }
        let shard = self.shard_of(index);
        if self.open[shard].is_none() {
            let first = match &data {
                TensorData::Located { origin, .. } => Some(*origin),
                _ => None,
            };
            self.open[shard] = Some(self.start_shard(shard, first)?);
        }
        let file = self.open[shard]
            .as_mut()
            .ok_or_else(|| Error::usage(code::CALL_ORDER, "shard not open"))?;
        let written = file.write_data(data)?;
        check_size(&self.tensors[index], written)?;
        self.next += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        if self.next != self.tensors.len() {
            return Err(Error::usage(
                code::CALL_ORDER,
                format!(
                    "safetensors writer finished after {} of {} tensors",
                    self.next,
                    self.tensors.len()
                ),
            ));
        }
        // Shards without tensors (only with an empty plan) still need a file.
        for k in 0..self.shards.len() {
            if self.open[k].is_none() {
                self.open[k] = Some(self.start_shard(k, None)?);
            }
        }
        let files: Vec<Box<dyn WriteTarget>> = self.open.iter_mut().filter_map(Option::take).collect();
        for f in files {
            f.commit()?;
        }
        if self.shards.len() > 1 {
            self.write_index()?;
        }
        Ok(())
    }
}

impl SafetensorsWriter {
    /// Opens shard `k` and writes its header; `first` is where its first
    /// tensor's bytes lie in an input file, if they do.
    fn start_shard(&mut self, k: usize, first: Option<Origin<'_>>) -> Result<Box<dyn WriteTarget>> {
        let bytes: u64 = self.tensors[self.shards[k].tensors.clone()]
            .iter()
            .map(|t| t.nbytes)
            .fold(0, u64::saturating_add);
        if let Some(origin) =
            first.filter(|o| bytes >= CONGRUENT_FROM && matches!(o.key().0, SourceId::File(..)))
        {
            pad_congruent(&mut self.shards[k].header, origin.offset());
        }
        let shard = &self.shards[k];
        let mut f = match &shard.file_name {
            None => self
                .target
                .take()
                .ok_or_else(|| Error::usage(code::CALL_ORDER, "output already started"))?,
            Some(name) => self.sibling(name)?,
        };
        f.write_all(&shard.header)?;
        Ok(f)
    }

    fn sibling(&self, file_name: &str) -> Result<Box<dyn WriteTarget>> {
        self.target
            .as_ref()
            .ok_or_else(|| Error::usage(code::CALL_ORDER, "output already started"))?
            .sibling(file_name)
    }

    fn write_index(&self) -> Result<()> {
        let mut weight_map = BTreeMap::new();
        for shard in &self.shards {
            let file = shard.file_name.clone().unwrap_or_default();
            for t in &self.tensors[shard.tensors.clone()] {
                weight_map.insert(t.name.clone(), file.clone());
            }
        }
        let total: u64 = self.tensors.iter().map(|t| t.nbytes).sum();
        let index = serde_json::json!({"metadata": {"total_size": total}, "weight_map": weight_map});
        let mut text = serde_json::to_string_pretty(&index)
            .map_err(|e| Error::unsupported(code::INTERNAL, e.to_string()))?;
        text.push('\n');
        let mut f = self.sibling(&self.index_name())?;
        f.write_all(text.as_bytes())?;
        f.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorcast_core::DType;

    fn t(name: &str, n: u64) -> TensorInfo {
        TensorInfo::new(name, DType::U8, vec![n]).unwrap()
    }

    #[test]
    fn split_keeps_order_and_isolates_big_tensors() {
        let ts = [t("a", 4), t("b", 4), t("c", 20), t("d", 3), t("e", 6)];
        assert_eq!(split(&ts, Some(10)), vec![0..2, 2..3, 3..5]);
        assert_eq!(split(&ts, None), vec![0..5]);
        assert_eq!(split(&[], Some(10)), vec![0..0]);
    }

    #[test]
    fn header_is_padded_to_eight() {
        let mut m = Metadata::new();
        m.insert("format", tensorcast_core::Value::Str("pt".into()));
        let h = header_bytes(&[t("w", 3)], &m);
        let n = u64::from_le_bytes(h[..8].try_into().unwrap()) as usize;
        assert_eq!(n % 8, 0);
        assert_eq!(h.len(), 8 + n);
        let json: serde_json::Value = serde_json::from_slice(&h[8..]).unwrap();
        assert_eq!(json["w"]["data_offsets"], serde_json::json!([0, 3]));
        assert_eq!(json["__metadata__"]["format"], "pt");
    }
}
