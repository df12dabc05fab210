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
    /// A read-only mapping of a file.
    Mapped(Mmap),
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
        Ok(Bytes::Mapped(map))
    }

    /// Tells the kernel the bytes will be read front to back (more readahead).
    pub fn advise_sequential(&self) {
        #[cfg(unix)]
        if let Bytes::Mapped(m) = self {
            let _ = m.advise(memmap2::Advice::Sequential);
        }
    }
}

impl Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes::Owned(v)
    }
}
