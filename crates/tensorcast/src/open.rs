//! Opening any supported file as a [`Source`].

use crate::detect::{detect, Format};
use std::path::Path;
use tensorcast_core::{Error, Limits, Result, Source};
use tensorcast_gguf::{is_split_first, GgufFile, SplitGguf};
use tensorcast_safetensors::{is_index_file, SafetensorsFile, ShardedSafetensors};

/// How to open inputs.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// Resource limits the reader enforces.
    pub limits: Limits,
}

/// Opens `path` with the reader its bytes call for.
pub fn open(path: &Path, opts: &OpenOptions) -> Result<Box<dyn Source>> {
    match detect(path)? {
        Format::Safetensors if is_index_file(path) => {
            Ok(Box::new(ShardedSafetensors::open(path, &opts.limits)?))
        }
        Format::Safetensors => Ok(Box::new(SafetensorsFile::open(path, &opts.limits)?)),
        Format::Gguf => {
            let file = GgufFile::open(path, &opts.limits)?;
            if is_split_first(&file) {
                Ok(Box::new(SplitGguf::open(file, &opts.limits)?))
            } else {
                Ok(Box::new(file))
            }
        }
        other => Err(Error::Unsupported(format!(
            "{}: reading {other} files is not implemented yet",
            path.display()
        ))),
    }
}
