//! GGUF as a registered [`Format`].

use crate::{is_split_first, GgufFile, GgufWriter, SplitGguf, FORMAT};
use tensorcast_core::{Detection, Format, Input, Options, Result, Sink, Source, WriteTarget};

/// GGUF files (v1–v3, either byte order); a split model opens through its first part.
pub struct Gguf;

impl Format for Gguf {
    fn name(&self) -> &'static str {
        FORMAT
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
        Ok(Box::new(SplitGguf::with_parts_beside(
            file,
            &input,
            &options.limits,
        )?))
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
}
