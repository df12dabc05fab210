//! A file's bytes: memory-mapped from disk, or owned (in-memory inputs, fuzzing).

use crate::{Error, Result};
use memmap2::Mmap;
use std::fs::File;
use std::ops::Deref;
use std::path::Path;

/// Immutable bytes of one input file.
///
/// Mapped files are shared with the page cache, so reading a tensor costs no
/// anonymous memory. A file changed by another process while mapped is outside
/// what any reader can defend against; tensorcast never writes to its inputs.
pub enum Bytes {
    /// A read-only mapping of a file, with the file it maps (kept open so
    /// writers can copy ranges of it kernel-side).
    Mapped(Mmap, File),
    /// Bytes held in memory.
    Owned(Vec<u8>),
}

impl Bytes {
    /// Maps `path` read-only. Empty files (which cannot be mapped) come back as
    /// empty owned bytes.
    pub fn open(path: &Path) -> Result<Bytes> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len == 0 {
            return Ok(Bytes::Owned(Vec::new()));
        }
        // SAFETY: the mapping is read-only and private to this process; the
        // only hazard is another process truncating the file while mapped,
        // which this tool cannot prevent and documents.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        Ok(Bytes::Mapped(map, file))
    }

    /// Tells the kernel the bytes will be read front to back (more readahead).
    pub fn advise_sequential(&self) {
        #[cfg(unix)]
        if let Bytes::Mapped(m, _) = self {
            let _ = m.advise(memmap2::Advice::Sequential);
        }
    }
}

impl Bytes {
    /// `bytes[offset..offset + len]` as tensor data: with the file handle
    /// when mapped (so a sink can copy it kernel-side), plain bytes otherwise.
    /// `None` when the range is out of bounds.
    pub fn tensor_data(&self, offset: u64, len: u64) -> Option<crate::TensorData<'_>> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        let bytes = self.get(start..end)?;
        Some(match self {
            Bytes::Mapped(_, file) => crate::TensorData::InFile { bytes, file, offset },
            Bytes::Owned(_) => crate::TensorData::Borrowed(bytes),
        })
    }
}

impl Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m, _) => m,
            Bytes::Owned(v) => v,
        }
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes::Owned(v)
    }
}
