//! Byte sources: what a reader reads from. A local file (memory-mapped), a
//! buffer owned in memory, or a buffer shared with someone else (a Python
//! `bytes`, an `Arc<[u8]>`), all behind one [`Bytes`] value, plus the
//! [`ReadAt`] trait for sources that can only be read by range.

use crate::{Error, Limits, Result, TensorData};
use memmap2::Mmap;
use std::fs::File;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

/// Anything that can be read by offset: the most general byte source.
///
/// Readers in this workspace parse from a contiguous view ([`Bytes`]); a
/// source that is not one (a ranged remote object) is brought into memory
/// through [`Bytes::read_all`] under the allocation limit until readers learn
/// to fetch ranges on demand.
pub trait ReadAt: Send + Sync {
    /// Total length in bytes.
    fn len(&self) -> u64;

    /// True when there are no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` with the bytes at `offset`; an error when the range is
    /// not all there.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;
}

/// Immutable bytes of one input.
///
/// Mapped files are shared with the page cache, so reading a tensor costs no
/// anonymous memory. A file changed by another process while mapped is outside
/// what any reader can defend against; tensorcast never writes to its inputs.
pub struct Bytes(Repr);

enum Repr {
    /// A read-only mapping of a file, with the file it maps (kept open so
    /// writers can copy ranges of it kernel-side).
    Mapped(Mmap, File),
    /// Bytes held in memory.
    Owned(Vec<u8>),
    /// Bytes someone else owns and keeps alive with us.
    Shared(Arc<dyn AsRef<[u8]> + Send + Sync>),
}

impl Bytes {
    /// Maps `path` read-only. Empty files (which cannot be mapped) come back as
    /// empty owned bytes.
    pub fn open(path: &Path) -> Result<Bytes> {
        let file = open_regular(path)?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len == 0 {
            return Ok(Bytes(Repr::Owned(Vec::new())));
        }
        // SAFETY: the mapping is read-only and private to this process; the
        // only hazard is another process truncating the file while mapped,
        // which this tool cannot prevent and documents.
        #[allow(unsafe_code)]
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        Ok(Bytes(Repr::Mapped(map, file)))
    }

    /// Bytes owned by someone else (a Python buffer, an `Arc<[u8]>`), kept
    /// alive as long as any reader holds them. Nothing is copied.
    pub fn shared(buffer: Arc<dyn AsRef<[u8]> + Send + Sync>) -> Bytes {
        Bytes(Repr::Shared(buffer))
    }

    /// Reads a whole ranged source into memory, refused over
    /// [`Limits::max_alloc_bytes`] (`name` says what it is in errors).
    pub fn read_all(source: &dyn ReadAt, name: &Path, limits: &Limits) -> Result<Bytes> {
        let len = source.len();
        limits
            .check_alloc(len, "reading this source whole")
            .map_err(|detail| Error::limit(name, "max_alloc_bytes", detail))?;
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
        source.read_at(0, &mut buf)?;
        Ok(Bytes(Repr::Owned(buf)))
    }

    /// Tells the kernel the bytes will be read front to back (more readahead).
    pub fn advise_sequential(&self) {
        #[cfg(unix)]
        if let Repr::Mapped(m, _) = &self.0 {
            let _ = m.advise(memmap2::Advice::Sequential);
        }
    }

    /// `bytes[offset..offset + len]` as tensor data that remembers where it
    /// lies, so targets can copy it without reading it (kernel-side from a
    /// mapped file) and writers can see the same bytes handed out twice.
    /// `None` when the range is out of bounds.
    pub fn tensor_data(&self, offset: u64, len: u64) -> Option<TensorData<'_>> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        let bytes = self.get(start..end)?;
        Some(TensorData::Located {
            bytes,
            origin: Origin { source: self, offset },
        })
    }

    /// The open file behind a mapping, for kernel-side copies.
    pub(crate) fn file(&self) -> Option<&File> {
        match &self.0 {
            Repr::Mapped(_, file) => Some(file),
            _ => None,
        }
    }

    /// Which bytes these are: the file's (device, inode) when mapped (two
    /// mappings of one file agree), the buffer's address otherwise.
    fn identity(&self) -> SourceId {
        if let Some(file) = self.file() {
            if let Ok((dev, ino)) = crate::file_identity(file) {
                return SourceId::File(dev, ino);
            }
        }
        SourceId::Memory(self.as_ptr() as usize)
    }
}

/// Opens `path` for reading only if it is a regular file (symlinks to one, as
/// in the Hugging Face cache, included): a FIFO, socket or device would block
/// or never end. Checked before opening, opened without blocking, and
/// checked again on the open handle (the path may have changed in between).
pub fn open_regular(path: &Path) -> Result<File> {
    let refuse = |what: &str| -> Error {
        crate::FormatError::new(
            "tensorcast",
            "not-a-regular-file",
            format!("{what}, not a regular file: refused (it could block or never end)"),
        )
        .in_file(path)
        .into()
    };
    let kind = |t: std::fs::FileType| -> Option<&'static str> {
        if t.is_file() {
            None
        } else if t.is_dir() {
            Some("a directory")
        } else {
            Some("a special file (FIFO, socket or device)")
        }
    };
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if let Some(what) = kind(meta.file_type()) {
        return Err(refuse(what));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    let file = options.open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if let Some(what) = kind(meta.file_type()) {
        return Err(refuse(what));
    }
    Ok(file)
}

/// Where a tensor's raw bytes lie in a [`Bytes`]: a capability a source may
/// offer with [`TensorData::Located`]. Targets use it to copy without
/// reading; writers use [`Origin::key`] to store bytes handed out twice once.
#[derive(Clone, Copy)]
pub struct Origin<'a> {
    source: &'a Bytes,
    offset: u64,
}

impl<'a> Origin<'a> {
    /// The bytes' offset within their source.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The byte source they come from.
    pub(crate) fn source(&self) -> &'a Bytes {
        self.source
    }

    /// A key equal for two ranges exactly when they start at the same byte
    /// of the same source (with their length, this identifies tied tensors).
    pub fn key(&self) -> (SourceId, u64) {
        (self.source.identity(), self.offset)
    }
}

/// Identifies a byte source for tied-weight detection (see [`Origin::key`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SourceId {
    /// A file, by (device, inode).
    File(u64, u64),
    /// A buffer in memory, by address.
    Memory(usize),
}

impl ReadAt for Bytes {
    fn len(&self) -> u64 {
        (**self).len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let range = usize::try_from(offset)
            .ok()
            .and_then(|s| Some(s..s.checked_add(buf.len())?))
            .and_then(|r| self.get(r));
        match range {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(Error::Io {
                path: "<bytes>".into(),
                source: std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
            }),
        }
    }
}

impl Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Mapped(m, _) => m,
            Repr::Owned(v) => v,
            Repr::Shared(s) => (**s).as_ref(),
        }
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes(Repr::Owned(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_bytes_are_not_copied_and_keys_tell_ranges_apart() {
        let buf: Arc<Vec<u8>> = Arc::new((0..64).collect());
        let bytes = Bytes::shared(buf.clone());
        assert_eq!(bytes.as_ptr(), buf.as_ptr());
        let (a, b, c) = (
            bytes.tensor_data(8, 8).unwrap(),
            bytes.tensor_data(8, 8).unwrap(),
            bytes.tensor_data(16, 8).unwrap(),
        );
        let key = |d: &TensorData<'_>| match d {
            TensorData::Located { origin, .. } => origin.key(),
            _ => unreachable!(),
        };
        assert_eq!(key(&a), key(&b));
        assert_ne!(key(&a), key(&c));
        assert!(bytes.tensor_data(60, 8).is_none());
        let mut out = [0u8; 4];
        bytes.read_at(2, &mut out).unwrap();
        assert_eq!(out, [2, 3, 4, 5]);
        assert!(bytes.read_at(62, &mut out).is_err());
    }
}
