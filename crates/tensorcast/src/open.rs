//! Opening any supported file as a [`Source`].

use crate::detect::{detect, Format};
use std::path::Path;
use tensorcast_core::{Error, Limits, Result, Source};
use tensorcast_gguf::{is_split_first, GgufFile, SplitGguf};
use tensorcast_numpy::NumpyFile;
use tensorcast_pickle::{FlattenOptions, PytorchFile, PytorchOptions};
use tensorcast_safetensors::{is_index_file, SafetensorsFile, ShardedSafetensors};
use tensorcast_tpack::TpackFile;

/// How to open inputs.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// Resource limits the reader enforces.
    pub limits: Limits,
    /// PyTorch checkpoints: record classes outside the allowlist as opaque
    /// metadata instead of refusing them (code-running globals stay refused).
    pub lenient: bool,
    /// PyTorch checkpoints: keep only the sub-tree at this dotted path.
    pub select: Option<String>,
    /// PyTorch checkpoints: remove this prefix from tensor names.
    pub strip_prefix: Option<String>,
    /// PyTorch checkpoints: write tensors that share their bytes once and
    /// record the other names in metadata (Hugging Face's convention).
    pub dedupe_tied: bool,
}

impl OpenOptions {
    fn pytorch(&self) -> PytorchOptions {
        PytorchOptions {
            lenient: self.lenient,
            flatten: FlattenOptions {
                select: self.select.clone(),
                strip_prefix: self.strip_prefix.clone(),
                dedupe_tied: self.dedupe_tied,
            },
            limits: self.limits.clone(),
        }
    }

    fn has_pytorch_options(&self) -> bool {
        self.lenient || self.select.is_some() || self.strip_prefix.is_some() || self.dedupe_tied
    }
}

/// Opens `path` with the reader its bytes call for.
pub fn open(path: &Path, opts: &OpenOptions) -> Result<Box<dyn Source>> {
    let format = detect(path)?;
    if format != Format::Pytorch && opts.has_pytorch_options() {
        return Err(Error::Unsupported(format!(
            "{}: --lenient, --select, --strip-prefix and --dedupe-tied apply to PyTorch checkpoints, and this is {format}",
            path.display()
        )));
    }
    match format {
        Format::Tpack => Ok(Box::new(TpackFile::open(path, &opts.limits)?)),
        Format::Npy | Format::Npz => Ok(Box::new(NumpyFile::open(path, &opts.limits)?)),
        Format::Pytorch => Ok(Box::new(PytorchFile::open(path, &opts.pytorch())?)),
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
    }
}
