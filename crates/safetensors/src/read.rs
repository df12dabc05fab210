//! A safetensors file opened as a [`Source`].

use crate::header::{parse_header, Header};
use crate::{rules, FORMAT};
use std::path::{Path, PathBuf};
use tensorcast_core::code;
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

/// stsw 1.0 writes zlib's CRC-32 into `crc32`, or XXH32 (seed 0) when the
/// `xxhash` module was installed: a value matching either is accepted.
fn check_stsw_crc(bytes: &[u8], want: u32) -> std::result::Result<(), String> {
    let crc = crc32fast::hash(bytes);
    if crc == want || xxhash_rust::xxh32::xxh32(bytes, 0) == want {
        return Ok(());
    }
    Err(format!(
        "the bytes do not match the crc32 stsw recorded ({want}; CRC-32 of the bytes is {crc}, and their XXH32 differs too)"
    ))
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
        let info = self.header.tensors.get(index).ok_or_else(|| {
            Error::usage(
                code::CALL_ORDER,
                format!("{}: no tensor #{index}", self.path.display()),
            )
        })?;
        // The header check proved every range lies inside the file.
        let data = self
            .bytes
            .tensor_data(info.file_offset.unwrap_or(0), info.nbytes)
            .ok_or_else(|| {
                Error::usage(
                    code::CALL_ORDER,
                    format!("{}: tensor '{}' out of bounds", self.path.display(), info.name),
                )
            })?;
        if let (Some(Some(crc)), TensorData::Located { bytes, .. } | TensorData::Borrowed(bytes)) =
            (self.header.crcs.get(index), &data)
        {
            check_stsw_crc(bytes, *crc).map_err(|detail| {
                Error::from(
                    tensorcast_core::FormatError::new(FORMAT, rules::STSW_CRC, detail)
                        .tensor(&info.name)
                        .in_file(&self.path),
                )
            })?;
        }
        Ok(data)
    }
}
