//! GGUF as a registered [`Format`].

use crate::{is_split_first, GgufFile, GgufWriter, FORMAT};
use tensorcast_core::{Bytes, Detection, Format, Input, Limits, Options, Result, Sink, Source, WriteTarget};

/// GGUF files (v1–v3, either byte order); a split model opens through its first part.
pub struct Gguf;

impl Format for Gguf {
    fn dtype_attribute(&self, dtype: tensorcast_core::DType) -> (&'static str, String) {
        ("original_gguf_dtype", dtype.name().into())
    }

    /// A split model's first part opens every part; the others are covered.
    fn input_role(&self, name: &str, beside: &dyn Fn(&str) -> bool) -> tensorcast_core::InputRole {
        let _ = beside;
        match tensorcast_core::parts::part_of(name, self.extensions()) {
            Some(part) if part.index != 1 => tensorcast_core::InputRole::Covered,
            _ => tensorcast_core::InputRole::Whole,
        }
    }

    /// `model-00001-of-00003.gguf` is `model`.
    fn stem<'a>(&self, name: &'a str) -> &'a str {
        tensorcast_core::parts::model_stem(name, self.extensions())
    }

    fn name(&self) -> &'static str {
        FORMAT
    }

    /// ComfyUI-GGUF's reshaped tensors get their recorded shapes back.
    fn restore_shapes(&self, source: Box<dyn Source>) -> Result<Box<dyn Source>> {
        crate::comfy::restore_shapes(source)
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["gguf"]
    }

    fn detect(&self, head: &[u8]) -> Detection {
        Detection::magic(head, b"GGUF")
    }

    fn open(&self, mut input: Input, options: &Options) -> Result<Box<dyn Source>> {
        let bytes = input.take_bytes();
        let file = GgufFile::from_bytes(&input.name, bytes, &options.limits)?;
        if !is_split_first(&file) {
            return Ok(Box::new(file));
        }
        Ok(Box::new(crate::open_split_beside(file, &input, &options.limits)?))
    }

    /// The metadata and tensor infos have no length field: fetch 64 KiB,
    /// then twice as much until a parse ends inside what was fetched (or
    /// the header limit is reached, where the reader says what is wrong).
    fn prepare_ranged(&self, bytes: &mut Bytes, limits: &Limits) -> Result<bool> {
        let cap = limits.max_header_bytes.saturating_add(64).min(bytes.len() as u64);
        let mut window = cap.min(64 << 10);
        loop {
            bytes.fetch(0, window)?;
            let end = crate::read::header_end(bytes, limits).ok();
            if window >= cap || end.is_some_and(|e| e <= window) {
                return Ok(true);
            }
            window = window.saturating_mul(2).max(end.unwrap_or(0)).min(cap);
        }
    }

    fn can_write(&self) -> bool {
        true
    }

    fn create(&self, target: Box<dyn WriteTarget>, _: &Options) -> Result<Box<dyn Sink>> {
        Ok(Box::new(GgufWriter::to_target(target)))
    }

    fn holds_blocks(&self) -> bool {
        true
    }

    fn edit_metadata(
        &self,
        input: &std::path::Path,
        edits: &[tensorcast_core::edit::MetaEdit],
        output: &std::path::Path,
        limits: &Limits,
    ) -> Result<tensorcast_core::edit::EditReport> {
        crate::edit(input, edits, output, limits)
    }
}
