//! safetensors as a registered [`Format`].

use crate::{SafetensorsFile, SafetensorsWriter, FORMAT};
use tensorcast_core::{
    Bytes, Detection, Format, FormatOptions, Input, Limits, Options, Result, Sink, Source, Stage, WriteTarget,
};

/// safetensors files and sharded Hugging Face checkpoints (`*.safetensors.index.json`).
pub struct Safetensors;

/// Options for writing safetensors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SafetensorsWriteOptions {
    /// Split the output into shards of at most this many bytes of tensor data,
    /// with a Hugging Face index beside them.
    pub max_shard_bytes: Option<u64>,
}

impl FormatOptions for SafetensorsWriteOptions {
    const FORMAT: &'static str = FORMAT;
    const STAGE: Stage = Stage::Write;
}

fn first_non_space(bytes: &[u8]) -> Option<u8> {
    bytes.iter().copied().find(|b| !b.is_ascii_whitespace())
}

/// True when the bytes are an index (a JSON object), not a safetensors file
/// (whose 8-byte length may start with `{` but then holds zero bytes).
fn is_index(head: &[u8]) -> bool {
    first_non_space(head) == Some(b'{') && !head[..head.len().min(8)].contains(&0)
}

impl Format for Safetensors {
    /// VirtualiZarr's safetensors parser records the dtype under this key.
    fn dtype_attribute(&self, dtype: tensorcast_core::DType) -> (&'static str, String) {
        ("original_safetensors_dtype", dtype.name().into())
    }

    /// A shard is covered by its Hugging Face index when the index is
    /// beside it; without one, each shard is a file of its own.
    fn input_role(&self, name: &str, beside: &dyn Fn(&str) -> bool) -> tensorcast_core::InputRole {
        match tensorcast_core::parts::part_of(name, &["safetensors"]) {
            Some(part) if beside(&format!("{}.safetensors.index.json", part.base)) => {
                tensorcast_core::InputRole::Covered
            }
            _ => tensorcast_core::InputRole::Whole,
        }
    }

    /// `model.safetensors.index.json` and its shards are `model`.
    fn stem<'a>(&self, name: &'a str) -> &'a str {
        tensorcast_core::parts::model_stem(name, self.extensions())
    }

    fn name(&self) -> &'static str {
        FORMAT
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["safetensors", "safetensors.index.json"]
    }

    fn detect(&self, head: &[u8]) -> Detection {
        // No magic: an 8-byte length, then a JSON object.
        if head.len() > 8 && first_non_space(&head[8..]) == Some(b'{') {
            return Detection::Strong;
        }
        let has_map = head.windows(12).any(|w| w == b"\"weight_map\"");
        if is_index(head) && has_map {
            return Detection::Weak;
        }
        Detection::No
    }

    fn open(&self, input: Input, options: &Options) -> Result<Box<dyn Source>> {
        if is_index(&input.bytes) || crate::is_index_file(&input.name) {
            return Ok(Box::new(crate::open_index_input(input, &options.limits)?));
        }
        Ok(Box::new(SafetensorsFile::from_bytes(
            &input.name,
            input.bytes,
            &options.limits,
        )?))
    }

    /// The 8-byte length, then the header it gives (an index file, JSON
    /// through and through, whole); never more than the header limit, which
    /// the reader then refuses by name.
    fn prepare_ranged(&self, bytes: &mut Bytes, limits: &Limits) -> Result<bool> {
        bytes.fetch(0, 8)?;
        if is_index(&bytes[..bytes.len().min(8)]) {
            bytes.fetch(0, limits.max_header_bytes)?;
            return Ok(true);
        }
        if let Some(n) = bytes.get(..8) {
            let n = u64::from_le_bytes(n.try_into().unwrap_or_default());
            bytes.fetch(8, n.min(limits.max_header_bytes))?;
        }
        Ok(true)
    }

    fn can_write(&self) -> bool {
        true
    }

    fn create(&self, target: Box<dyn WriteTarget>, options: &Options) -> Result<Box<dyn Sink>> {
        let opts = options.get::<SafetensorsWriteOptions>();
        Ok(Box::new(
            SafetensorsWriter::to_target(target).max_shard_bytes(opts.max_shard_bytes),
        ))
    }

    /// A single file's `__metadata__` (a sharded checkpoint's shards are
    /// each a file of their own).
    fn edit_metadata(
        &self,
        input: &std::path::Path,
        edits: &[tensorcast_core::edit::MetaEdit],
        output: &std::path::Path,
        limits: &Limits,
    ) -> Result<tensorcast_core::edit::EditReport> {
        crate::edit::edit(input, edits, output, limits)
    }
}
