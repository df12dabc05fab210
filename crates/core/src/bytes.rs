//! Byte sources: what a reader reads from. A local file (memory-mapped), a
//! buffer owned in memory, a buffer shared with someone else (a Python
//! `bytes`, an `Arc<[u8]>`), or a ranged object (a remote store) whose
//! headers are fetched and whose tensors stream, all behind one [`Bytes`]
//! value, plus the [`ReadAt`] trait for sources that can only be read by
//! range.

use crate::code;
use crate::{Error, Limits, Result, TensorData, CHUNK_BYTES};
use memmap2::{Mmap, MmapMut};
use std::borrow::Cow;
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

    /// `len` bytes from `offset` as a stream of pieces of at most a few
    /// [`CHUNK_BYTES`], for sources that can keep several requests in flight
    /// (a remote store). `None` (the default): the caller reads piece by
    /// piece with [`ReadAt::read_at`].
    fn stream(&self, offset: u64, len: u64) -> Option<ChunkStream> {
        let _ = (offset, len);
        None
    }

    /// What errors call this source (a URL for a remote object).
    fn describe(&self) -> String {
        "<bytes>".to_string()
    }
}

/// Pieces of a byte range, in order.
pub type ChunkStream = Box<dyn Iterator<Item = Result<Vec<u8>>> + Send + 'static>;

/// `len` bytes of `object` from `offset`, streamed: the object's own stream
/// when it has one, else sequential [`ReadAt::read_at`] calls.
pub fn stream_range(object: Arc<dyn ReadAt>, offset: u64, len: u64) -> ChunkStream {
    if let Some(stream) = object.stream(offset, len) {
        return stream;
    }
    let mut at = offset;
    let end = offset.saturating_add(len);
    Box::new(std::iter::from_fn(move || {
        if at >= end {
            return None;
        }
        let n = (end - at).min(CHUNK_BYTES as u64) as usize;
        let mut buf = vec![0u8; n];
        let r = object.read_at(at, &mut buf).map(|()| buf);
        at = if r.is_ok() { at + n as u64 } else { end };
        Some(r)
    }))
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
    /// A ranged object: an anonymous mapping as long as the object, holding
    /// only the ranges fetched (a reader's headers; the rest stays
    /// untouched pages that cost no memory); other ranges stream from it.
    Remote(RemoteMap),
}

/// The fetched parts of a ranged object.
struct RemoteMap {
    map: MmapMut,
    object: Arc<dyn ReadAt>,
    /// Fetched ranges, sorted and disjoint.
    fetched: Vec<(u64, u64)>,
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

    /// A ranged object with nothing fetched yet. Readers see its full
    /// length; [`Bytes::fetch`] brings in the ranges they parse (the
    /// format's [`crate::Format::prepare_ranged`] knows which), and tensor
    /// bytes outside them stream from the object when asked for.
    pub fn ranged(object: Arc<dyn ReadAt>) -> Result<Bytes> {
        let len = object.len();
        if len == 0 {
            return Ok(Bytes(Repr::Owned(Vec::new())));
        }
        let size = usize::try_from(len)
            .map_err(|_| Error::unsupported(code::TOO_LARGE, "object too large to address"))?;
        let map = memmap2::MmapOptions::new()
            .len(size)
            .no_reserve_swap()
            .map_anon()
            .map_err(|e| Error::io(object.describe(), e))?;
        Ok(Bytes(Repr::Remote(RemoteMap {
            map,
            object,
            fetched: Vec::new(),
        })))
    }

    /// Downloads a whole ranged object into an unnamed temporary file and
    /// maps it: for formats whose structure is spread through the file (zip
    /// archives, pickles). Memory stays flat; the disk holds one copy until
    /// the bytes are dropped.
    pub fn spooled(object: Arc<dyn ReadAt>) -> Result<Bytes> {
        let name = object.describe();
        let pieces = stream_range(Arc::clone(&object), 0, object.len());
        Bytes::spool(Path::new(&name), object.len(), pieces)
    }

    /// `pieces` (`len` bytes in all, as their producer claims) written to
    /// an unnamed temporary file and mapped: bytes produced piece by piece
    /// (decoded, downloaded) that a reader needs at random places, held by
    /// the page cache instead of the heap. A claim larger than the
    /// temporary file's file system has free is refused before a byte is
    /// written; `name` says what the bytes are in errors.
    pub fn spool(name: &Path, len: u64, pieces: impl Iterator<Item = Result<Vec<u8>>>) -> Result<Bytes> {
        use std::io::Write;
        let file = tempfile::tempfile().map_err(|e| Error::io(name, e))?;
        // The size is the producer's claim (a server's HEAD claiming
        // terabytes filled the disk until the server gave up).
        #[cfg(target_os = "linux")]
        if let Ok(fs) = rustix::fs::fstatvfs(&file) {
            let free = fs.f_bavail.saturating_mul(fs.f_frsize);
            if len > free {
                return Err(Error::unsupported(
                    crate::code::TOO_LARGE,
                    format!(
                        "{}: the object is said to hold {len} bytes, more than the {free} free for its temporary copy",
                        name.display()
                    ),
                ));
            }
        }
        let mut out = std::io::BufWriter::new(&file);
        let mut written = 0u64;
        for piece in pieces {
            let piece = piece?;
            written += piece.len() as u64;
            out.write_all(&piece).map_err(|e| Error::io(name, e))?;
        }
        out.flush().map_err(|e| Error::io(name, e))?;
        drop(out);
        if written == 0 {
            return Ok(Bytes(Repr::Owned(Vec::new())));
        }
        // SAFETY: an unnamed temporary file only this process can reach.
        #[allow(unsafe_code)]
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(name, e))?;
        Ok(Bytes(Repr::Mapped(map, file)))
    }

    /// Whether these are a ranged object's bytes (see [`Bytes::ranged`]).
    pub fn is_ranged(&self) -> bool {
        matches!(self.0, Repr::Remote(_))
    }

    /// Brings `offset..offset + len` (clipped to the end) of a ranged object
    /// into these bytes, so readers can parse it; a no-op for other bytes
    /// and ranges already fetched.
    pub fn fetch(&mut self, offset: u64, len: u64) -> Result<()> {
        self.fetch_many(&[(offset, len)])
    }

    /// [`Bytes::fetch`] for many `(offset, len)` ranges at once: ranges
    /// close together are read as one, and up to eight requests run at a
    /// time (a checkpoint's local headers, say).
    pub fn fetch_many(&mut self, ranges: &[(u64, u64)]) -> Result<()> {
        /// Ranges this close are fetched as one request.
        const MERGE_GAP: u64 = 64 << 10;
        const PARALLEL: usize = 8;
        let Repr::Remote(r) = &mut self.0 else {
            return Ok(());
        };
        let total = r.map.len() as u64;
        let mut wanted: Vec<(u64, u64)> = Vec::new();
        for &(offset, len) in ranges {
            let (start, end) = (offset.min(total), offset.saturating_add(len).min(total));
            let mut at = start;
            for &(s, e) in &r.fetched {
                if e <= at || s >= end {
                    continue;
                }
                if s > at {
                    wanted.push((at, s));
                }
                at = at.max(e);
            }
            if at < end {
                wanted.push((at, end));
            }
        }
        wanted.sort_unstable();
        let mut gaps: Vec<(u64, u64)> = Vec::with_capacity(wanted.len());
        for (s, e) in wanted {
            match gaps.last_mut() {
                Some(last) if s <= last.1.saturating_add(MERGE_GAP) => last.1 = last.1.max(e),
                _ => gaps.push((s, e)),
            }
        }
        for batch in gaps.chunks(PARALLEL) {
            let object = &r.object;
            let pieces: Vec<Result<Vec<u8>>> = std::thread::scope(|scope| {
                let handles: Vec<_> = batch
                    .iter()
                    .map(|&(s, e)| {
                        scope.spawn(move || {
                            let mut buf = vec![0u8; (e - s) as usize];
                            object.read_at(s, &mut buf).map(|()| buf)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(Error::usage(code::INTERNAL, "a fetch thread panicked")))
                    })
                    .collect()
            });
            for (&(s, e), piece) in batch.iter().zip(pieces) {
                r.map[s as usize..e as usize].copy_from_slice(&piece?);
                r.fetched.push((s, e));
            }
        }
        r.fetched.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(r.fetched.len());
        for &(s, e) in &r.fetched {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        r.fetched = merged;
        Ok(())
    }

    /// How many bytes of a ranged object have been fetched (0 for others).
    pub fn fetched_bytes(&self) -> u64 {
        match &self.0 {
            Repr::Remote(r) => r.fetched.iter().map(|(s, e)| e - s).sum(),
            _ => 0,
        }
    }

    /// Whether `offset..offset + len` can be read from these bytes as they
    /// are (always, except for a ranged object's ranges not fetched).
    fn holds(&self, offset: u64, len: u64) -> bool {
        match &self.0 {
            Repr::Remote(r) => {
                let end = offset.saturating_add(len);
                len == 0 || r.fetched.iter().any(|&(s, e)| s <= offset && end <= e)
            }
            _ => true,
        }
    }

    /// `bytes[offset..offset + len]`: borrowed where held, read from a
    /// ranged object otherwise (one request: for bounded pieces such as a
    /// compressed chunk). `None` when out of bounds.
    pub fn read_range(&self, offset: u64, len: u64) -> Option<Result<Cow<'_, [u8]>>> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        let held = self.get(start..end)?;
        match &self.0 {
            Repr::Remote(r) if !self.holds(offset, len) => {
                let mut buf = vec![0u8; end - start];
                Some(r.object.read_at(offset, &mut buf).map(|()| Cow::Owned(buf)))
            }
            _ => Some(Ok(Cow::Borrowed(held))),
        }
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
        if let Repr::Remote(r) = &self.0 {
            if !self.holds(offset, len) {
                return Some(TensorData::Chunks(stream_range(
                    Arc::clone(&r.object),
                    offset,
                    len,
                )));
            }
        }
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

    /// The place `by` bytes further into the same source (a piece of a
    /// located tensor).
    pub fn advanced(&self, by: u64) -> Origin<'a> {
        Origin {
            source: self.source,
            offset: self.offset + by,
        }
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
            Repr::Remote(r) => &r.map,
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
