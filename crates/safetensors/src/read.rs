//! A safetensors file opened as a [`Source`].

use crate::header::{parse_header, Header};
use crate::FORMAT;
use std::path::{Path, PathBuf};
use tensorcast_core::{Bytes, Error, Limits, Metadata, Result, Source, TensorData, TensorInfo};

/// One validated safetensors file; tensor bytes are borrowed from its mmap.
pub struct SafetensorsFile {
    path: PathBuf,
    bytes: Bytes,
    header: Header,
}

impl SafetensorsFile {
    /// Maps and validates the file at `path`.
    pub fn open(path: &Path, limits: &Limits) -> Result<SafetensorsFile> {
        let bytes = Bytes::open(path)?;
        Self::from_bytes(path, bytes, limits)
    }

    /// Validates bytes already in hand; `path` only names them in errors.
    pub fn from_bytes(path: &Path, bytes: Bytes, limits: &Limits) -> Result<SafetensorsFile> {
        let header = parse_header(&bytes, limits).map_err(|e| e.in_file(path))?;
        bytes.advise_sequential();
        Ok(SafetensorsFile {
            path: path.to_path_buf(),
            bytes,
            header,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Absolute offset of the data buffer.
    pub fn data_start(&self) -> u64 {
        self.header.data_start
    }
}

impl Source for SafetensorsFile {
    fn format(&self) -> &'static str {
        FORMAT
    }

    fn tensors(&self) -> &[TensorInfo] {
        &self.header.tensors
    }

    fn metadata(&self) -> &Metadata {
        &self.header.metadata
    }

    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        let info = self
            .header
            .tensors
            .get(index)
            .ok_or_else(|| Error::usage(format!("{}: no tensor #{index}", self.path.display())))?;
        // The header check proved every range lies inside the file.
        self.bytes
            .tensor_data(info.file_offset.unwrap_or(0), info.nbytes)
            .ok_or_else(|| {
                Error::usage(format!(
                    "{}: tensor '{}' out of bounds",
                    self.path.display(),
                    info.name
                ))
            })
    }
}
