//! tpack as a registered [`Format`].

use crate::{TpackFile, TpackWriter, DEFAULT_LEVEL, FORMAT};
use tensorcast_core::{
    Bytes, Detection, Format, FormatOptions, Input, Limits, Options, Result, Sink, Source, Stage, WriteTarget,
};

/// tensorcast's compressed, checksummed, appendable container.
pub struct Tpack;

/// Options for writing tpack.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TpackWriteOptions {
    /// zstd level: `None` takes [`DEFAULT_LEVEL`], `Some(0)` stores every
    /// chunk raw (mappable without copying).
    pub compress: Option<i32>,
}

impl TpackWriteOptions {
    /// The writer's level: `None` means raw chunks.
    pub fn level(&self) -> Option<i32> {
        match self.compress {
            None => Some(DEFAULT_LEVEL),
            Some(0) => None,
            Some(level) => Some(level),
        }
    }
}

impl FormatOptions for TpackWriteOptions {
    const FORMAT: &'static str = FORMAT;
    const STAGE: Stage = Stage::Write;
}

impl Format for Tpack {
    fn name(&self) -> &'static str {
        FORMAT
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["tpack"]
    }

    fn detect(&self, head: &[u8]) -> Detection {
        Detection::magic(head, b"TPACK")
    }

    fn open(&self, input: Input, options: &Options) -> Result<Box<dyn Source>> {
        Ok(Box::new(TpackFile::from_bytes(
            &input.name,
            input.bytes,
            &options.limits,
        )?))
    }

    /// The preamble and commit slots, then the manifest the current slot
    /// points at (up to the header limit, which the reader enforces).
    fn prepare_ranged(&self, bytes: &mut Bytes, limits: &Limits) -> Result<bool> {
        bytes.fetch(0, crate::format::DATA_START)?;
        if crate::format::check_preamble(bytes).is_err() {
            return Ok(true);
        }
        if let Ok((slot, _)) = crate::format::current_slot(bytes) {
            bytes.fetch(
                slot.manifest_offset,
                slot.manifest_len.min(limits.max_header_bytes),
            )?;
        }
        Ok(true)
    }

    fn rewrites_output(&self) -> bool {
        true
    }

    fn can_write(&self) -> bool {
        true
    }

    fn create(&self, target: Box<dyn WriteTarget>, options: &Options) -> Result<Box<dyn Sink>> {
        let level = options.get::<TpackWriteOptions>().level();
        Ok(Box::new(TpackWriter::to_target(target).level(level)))
    }

    fn holds_blocks(&self) -> bool {
        true
    }

    fn holds_sparse(&self, _: &tensorcast_core::TensorInfo) -> bool {
        true
    }

    /// Every chunk against its crc32c and codec, without writing anything.
    fn verify(&self, input: Input, options: &Options) -> Result<Vec<String>> {
        Ok(TpackFile::from_bytes(&input.name, input.bytes, &options.limits)?.verify())
    }

    /// A new commit holding the edited metadata (in place), or a copy
    /// committed so at another path.
    fn edit_metadata(
        &self,
        input: &std::path::Path,
        edits: &[tensorcast_core::edit::MetaEdit],
        output: &std::path::Path,
        limits: &tensorcast_core::Limits,
    ) -> tensorcast_core::Result<tensorcast_core::edit::EditReport> {
        crate::edit_metadata(input, edits, output, limits)
    }
}
