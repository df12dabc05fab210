//! Output files that appear complete or not at all.

use crate::{Error, Result, TensorData};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// Write buffer: large enough that small tensors coalesce into few syscalls;
/// larger writes bypass it.
const BUFFER: usize = 1 << 20;

/// How much new output makes [`AtomicFile::start_writeback`] start the
/// disk on it.
#[cfg(target_os = "linux")]
const WRITEBACK_WINDOW: u64 = 32 << 20;

/// Page size that kernel-side copies want input and output offsets to agree on.
#[cfg(target_os = "linux")]
const PAGE: u64 = 4096;

/// A file written beside its target under a temporary name, fsynced and
/// renamed into place by [`AtomicFile::commit`]. Dropped uncommitted, the
/// temporary file is removed and the target is untouched.
///
/// Tensor bytes that sit unchanged in an input file are not read at all: they
/// are recorded as a pending range, extended while the next tensor continues
/// it, and copied by the kernel (`copy_file_range`, as `cp` does) in one call
/// when anything else is written.
pub struct AtomicFile {
    out: BufWriter<NamedTempFile>,
    target: PathBuf,
    pending: Option<PendingCopy>,
    /// Where writeback was last started (see [`AtomicFile::start_writeback`]).
    writeback_from: u64,
    /// On the list a signal handler clears (dropped after the file is
    /// renamed or removed: fields drop in order).
    _registered: crate::temporaries::Registered,
}

/// A run of input-file bytes still to be copied into the output.
struct PendingCopy {
    file: File,
    identity: (u64, u64),
    offset: u64,
    len: u64,
}

/// Marks a temporary file as in use by this process: an exclusive advisory
/// lock, which the kernel drops when the process ends, however it ends.
#[cfg(target_os = "linux")]
fn hold(file: &File) {
    use rustix::fs::{flock, FlockOperation};
    let _ = flock(file, FlockOperation::NonBlockingLockExclusive);
}

#[cfg(not(target_os = "linux"))]
fn hold(_file: &File) {}

/// Removes temporaries for the same target left by killed runs: files named
/// `{prefix}*.tensorcast-tmp` that nobody holds (see [`hold`]) and that are a
/// minute old (so a run that has created its file but not yet locked it is
/// never touched). Anything that cannot be checked is left alone.
#[cfg(target_os = "linux")]
pub(crate) fn remove_stale(dir: &Path, prefix: &str) {
    use rustix::fs::{flock, FlockOperation};
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(prefix) && name.ends_with(".tensorcast-tmp")) {
            continue;
        }
        let path = entry.path();
        let old = std::fs::symlink_metadata(&path)
            .ok()
            .filter(|m| m.file_type().is_file())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() >= STALE_AFTER_SECS);
        if !old {
            continue;
        }
        let Ok(file) = File::open(&path) else { continue };
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok() {
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn remove_stale(_dir: &Path, _prefix: &str) {}

/// How old an unheld temporary must be before it counts as stale.
#[cfg(target_os = "linux")]
const STALE_AFTER_SECS: u64 = 60;

impl AtomicFile {
    /// Starts writing a file that will become `target`. The temporary file is
    /// created in the target's directory (so the rename stays on one file
    /// system) with mode 0666 less the umask, like any new file.
    pub fn create(target: &Path) -> Result<AtomicFile> {
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "output".into());
        let prefix = format!(".{name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tensorcast-tmp");
        // tempfile defaults to 0600; a converted model should get the mode
        // any new file gets (0666 less the umask, applied by open(2)).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        remove_stale(dir, &prefix);
        let tmp = builder.tempfile_in(dir).map_err(|e| Error::io(target, e))?;
        hold(tmp.as_file());
        let registered = crate::temporaries::register_temporary(tmp.path());
        Ok(AtomicFile {
            out: BufWriter::with_capacity(BUFFER, tmp),
            target: target.to_path_buf(),
            pending: None,
            writeback_from: 0,
            _registered: registered,
        })
    }

    /// The path this file will have once committed.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Appends a tensor's bytes and returns how many were written. Bytes that
    /// sit in a file are copied kernel-side (see the type's notes); anything
    /// else is written through the buffer.
    pub fn write_data(&mut self, data: TensorData<'_>) -> Result<u64> {
        crate::crash_point("file-write");
        crate::crash::fail_point("file-write").map_err(|e| Error::io(&self.target, e))?;
        if let TensorData::Located { bytes, origin } = &data {
            if let Some(file) = origin.source().file() {
                self.defer_copy(file, origin.offset(), bytes.len() as u64)
                    .map_err(|e| Error::io(&self.target, e))?;
                return Ok(bytes.len() as u64);
            }
        }
        self.flush_pending().map_err(|e| Error::io(&self.target, e))?;
        let (out, target) = (&mut self.out, &self.target);
        let n = data.for_each_chunk(|c| out.write_all(c).map_err(|e| Error::io(target, e)))?;
        self.start_writeback();
        Ok(n)
    }

    /// Starts the disk writing what has reached the file since the last
    /// call, once that is [`WRITEBACK_WINDOW`] or more, instead of leaving
    /// it all to the final fsync: a conversion that decodes while it writes
    /// then overlaps its own disk traffic (as `dd conv=fsync` cannot), and
    /// the page cache holds at most a window or two of dirty output.
    /// `POSIX_FADV_DONTNEED` is Linux's non-blocking way to do that from
    /// safe code: it starts writeback of the range's dirty pages and drops
    /// the ones already written (the previous window's). Advice only: any
    /// error is ignored, and the final fsync still makes the file durable.
    /// Measured on the real Gemma 3 GGUF to f32 safetensors (1.08 GB, same
    /// runs alternating, 8 pairs): 0.90x of the fresh-write floor (`dd
    /// conv=fsync`'s time over ours) with it, 0.86x without; `TENSORCAST_NO_WRITEBACK` turns it off, for such
    /// comparisons.
    fn start_writeback(&mut self) {
        #[cfg(target_os = "linux")]
        {
            let file = self.out.get_ref().as_file();
            let Ok(pos) = io::Seek::stream_position(&mut &*file) else {
                return;
            };
            if pos < self.writeback_from + WRITEBACK_WINDOW
                || std::env::var_os("TENSORCAST_NO_WRITEBACK").is_some()
            {
                return;
            }
            // From the window before (now written, so dropped) to here.
            let from = self.writeback_from.saturating_sub(WRITEBACK_WINDOW);
            let len = std::num::NonZeroU64::new(pos - from);
            let _ = rustix::fs::fadvise(file, from, len, rustix::fs::Advice::DontNeed);
            self.writeback_from = pos;
        }
    }

    /// Extends the pending copy when `file[offset..offset + len]` continues
    /// it, or starts a new one.
    fn defer_copy(&mut self, file: &File, offset: u64, len: u64) -> io::Result<()> {
        let identity = file_identity(file)?;
        if let Some(p) = &mut self.pending {
            if p.identity == identity && p.offset.checked_add(p.len) == Some(offset) {
                p.len += len;
                return Ok(());
            }
        }
        self.flush_pending()?;
        self.pending = Some(PendingCopy {
            file: file.try_clone()?,
            identity,
            offset,
            len,
        });
        Ok(())
    }

    /// Whether `buf` (a writer's padding between tensors, say) is exactly
    /// the bytes that follow the pending copy in its source file: then the
    /// copy grows over them instead, so a file that keeps its input's
    /// layout (GGUF to GGUF with blocks kept) is one run the kernel can
    /// clone whole. Only short writes are compared.
    fn continues_pending(&mut self, buf: &[u8]) -> io::Result<bool> {
        const MAX_COMPARED: usize = 64 << 10;
        let Some(p) = &mut self.pending else {
            return Ok(false);
        };
        if buf.is_empty() || buf.len() > MAX_COMPARED {
            return Ok(false);
        }
        let mut same = vec![0u8; buf.len()];
        if read_exact_at(&p.file, &mut same, p.offset + p.len).is_err() || same != buf {
            return Ok(false);
        }
        p.len += buf.len() as u64;
        Ok(true)
    }

    /// Performs the pending copy: kernel-side where the platform and file
    /// systems allow, otherwise (or for whatever is left) read and written.
    fn flush_pending(&mut self) -> io::Result<()> {
        let Some(p) = self.pending.take() else {
            return Ok(());
        };
        self.out.flush()?;
        let mut off_in = p.offset;
        let end = p.offset + p.len;
        #[cfg(target_os = "linux")]
        {
            let mut out = self.out.get_ref().as_file();
            // The kernel copies fast only when input and output offsets sit at
            // the same place within a page; otherwise (measured on ext4: 1.5x
            // slower copy and fsync) plain reads and writes win.
            let out_pos = io::Seek::stream_position(&mut out)?;
            let congruent = off_in % PAGE == out_pos % PAGE;
            // Up to the next page boundary first: the rest then starts
            // page-aligned on both sides, which file systems that share
            // extents (XFS, btrfs) need to clone it instead of copying.
            let head = (end - off_in).min((PAGE - off_in % PAGE) % PAGE);
            'runs: for stop in [off_in + head, end] {
                while congruent && off_in < stop {
                    let want = usize::try_from(stop - off_in).unwrap_or(usize::MAX).min(1 << 30);
                    match rustix::fs::copy_file_range(&p.file, Some(&mut off_in), out, None, want) {
                        Ok(n) if n > 0 => {}
                        // 0 (input shorter than it was) or an error (EXDEV on
                        // old kernels, EINVAL/EOPNOTSUPP on some file
                        // systems): fall back to reading for the rest.
                        _ => break 'runs,
                    }
                }
            }
        }
        let mut buf = vec![0u8; (end - off_in).min(BUFFER as u64) as usize];
        while off_in < end {
            let k = ((end - off_in) as usize).min(buf.len());
            read_exact_at(&p.file, &mut buf[..k], off_in)?;
            self.out.get_mut().write_all(&buf[..k])?;
            off_in += k as u64;
        }
        self.start_writeback();
        Ok(())
    }

    /// Overwrites bytes already written at `offset` (fields known only at
    /// the end, like tpack's commit slot); the append position is unchanged.
    pub fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        let target = self.target.clone();
        self.flush().map_err(|e| Error::io(&target, e))?;
        let file = self.out.get_ref().as_file();
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            file.write_all_at(buf, offset).map_err(|e| Error::io(&target, e))
        }
        #[cfg(not(unix))]
        {
            use std::io::{Seek, SeekFrom};
            let mut f = file;
            let end = f.stream_position().map_err(|e| Error::io(&target, e))?;
            f.seek(SeekFrom::Start(offset))
                .map_err(|e| Error::io(&target, e))?;
            f.write_all(buf).map_err(|e| Error::io(&target, e))?;
            f.seek(SeekFrom::Start(end))
                .map(|_| ())
                .map_err(|e| Error::io(&target, e))
        }
    }

    /// Flushes, fsyncs and renames into place, then fsyncs the directory so
    /// the rename itself survives a crash.
    pub fn commit(self) -> Result<()> {
        self.prepare()?.persist()
    }

    /// Flushes and fsyncs, leaving the file under its temporary name: the
    /// first half of [`AtomicFile::commit`], for outputs that appear
    /// together (a model folder's files are renamed only once all are
    /// written). Dropped unpersisted, the temporary file is removed.
    pub fn prepare(mut self) -> Result<Prepared> {
        self.flush_pending().map_err(|e| Error::io(&self.target, e))?;
        let target = self.target;
        let tmp = self
            .out
            .into_inner()
            .map_err(|e| Error::io(&target, e.into_error()))?;
        crate::crash_point("file-fsync");
        tmp.as_file().sync_all().map_err(|e| Error::io(&target, e))?;
        Ok(Prepared {
            tmp,
            target,
            _registered: self._registered,
        })
    }
}

/// A complete, fsynced file under its temporary name
/// ([`AtomicFile::prepare`]).
pub struct Prepared {
    tmp: NamedTempFile,
    target: PathBuf,
    _registered: crate::temporaries::Registered,
}

impl Prepared {
    /// The path the file will have.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Renames the file into place and fsyncs its folder.
    pub fn persist(self) -> Result<()> {
        let target = self.target;
        crate::crash_point("file-rename");
        self.tmp
            .persist(&target)
            .map_err(|e| Error::io(&target, e.error))?;
        crate::crash_point("file-renamed");
        if let Some(dir) = target.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            // Some file systems refuse fsync on directories; the data is safe
            // already, only the rename's durability is at stake.
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.flush_pending()?;
        self.out.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        crate::crash_point("file-write");
        crate::crash::fail_point("file-write")?;
        // Nothing to write (a writer's zero-length padding after a tensor
        // whose size is already aligned) must not end the pending copy:
        // GGUF -> GGUF on XFS otherwise flushed it after every such tensor,
        // so each tensor's partial first and last blocks were copied apart
        // (and the clone after each waited for them to be written back):
        // 0.07-0.11 s for 1.1 GB instead of one run.
        if buf.is_empty() || self.continues_pending(buf)? {
            return Ok(());
        }
        self.flush_pending()?;
        self.out.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_pending()?;
        self.out.flush()
    }
}

/// (device, inode): which file a handle refers to, however it was opened.
/// Where there is no cheap identity, every call gives a new value, so two
/// handles never look like one file.
#[cfg(unix)]
pub fn file_identity(file: &File) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = file.metadata()?;
    Ok((m.dev(), m.ino()))
}

/// (device, inode) where the platform has them; elsewhere a fresh value per
/// call, so two handles never look like one file.
#[cfg(not(unix))]
pub fn file_identity(file: &File) -> io::Result<(u64, u64)> {
    // No cheap identity: never merge ranges (each copy is still correct).
    Ok((file as *const File as u64, next_unique()))
}

#[cfg(not(unix))]
fn next_unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(unix)]
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(not(unix))]
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = file;
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_renames_and_drop_discards() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        let mut f = AtomicFile::create(&target).unwrap();
        f.write_all(b"abc").unwrap();
        assert!(!target.exists());
        f.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"abc");

        let other = dir.path().join("never.bin");
        let mut f = AtomicFile::create(&other).unwrap();
        f.write_all(b"xyz").unwrap();
        drop(f);
        assert!(!other.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// Padding equal to the bytes that follow a located run in its source
    /// joins the run (one kernel copy, clonable whole); other bytes end it.
    #[test]
    fn padding_that_matches_the_source_extends_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("in.bin");
        let mut data = vec![7u8; 100];
        data.extend_from_slice(&[0u8; 28]);
        data.extend_from_slice(&[9u8; 64]);
        std::fs::write(&src, &data).unwrap();
        let bytes = crate::Bytes::open(&src).unwrap();
        let target = dir.path().join("out.bin");
        let mut f = AtomicFile::create(&target).unwrap();
        f.write_data(bytes.tensor_data(0, 100).unwrap()).unwrap();
        f.write_all(&[0u8; 28]).unwrap();
        f.write_data(bytes.tensor_data(128, 64).unwrap()).unwrap();
        assert_eq!(f.pending.as_ref().map(|p| (p.offset, p.len)), Some((0, 192)));
        f.write_all(b"tail").unwrap();
        assert!(f.pending.is_none(), "bytes the source lacks end the run");
        f.commit().unwrap();
        let mut want = data.clone();
        want.extend_from_slice(b"tail");
        assert_eq!(std::fs::read(&target).unwrap(), want);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn stale_temporaries_go_but_held_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("m.bin");
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(600);
        // One left by a dead run (nobody holds it) and one being written now.
        let dead = dir.path().join(".m.bin.dead.tensorcast-tmp");
        std::fs::write(&dead, b"partial").unwrap();
        let live = AtomicFile::create(&target).unwrap();
        let temporaries = || {
            std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.to_string_lossy().ends_with(".tensorcast-tmp"))
                .collect::<Vec<_>>()
        };
        for p in temporaries() {
            File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        remove_stale(dir.path(), ".m.bin.");
        let left = temporaries();
        assert_eq!(left.len(), 1, "{left:?}");
        assert!(!dead.exists());
        drop(live);
        assert!(temporaries().is_empty());
    }

    #[test]
    fn in_file_data_is_copied_exactly_around_buffered_writes() {
        let dir = tempfile::tempdir().unwrap();
        let src_path = dir.path().join("src.bin");
        let src: Vec<u8> = (0..3 << 20).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&src_path, &src).unwrap();
        let mapped = crate::Bytes::open(&src_path).unwrap();
        let target = dir.path().join("dst.bin");
        let mut f = AtomicFile::create(&target).unwrap();
        f.write_all(b"head").unwrap();
        let big = &src[100..100 + (2 << 20)];
        let n = f.write_data(mapped.tensor_data(100, 2 << 20).unwrap()).unwrap();
        assert_eq!(n, 2 << 20);
        f.write_all(b"tail").unwrap();
        f.write_data(mapped.tensor_data(7, 2).unwrap()).unwrap();
        f.commit().unwrap();
        let got = std::fs::read(&target).unwrap();
        assert_eq!(&got[..4], b"head");
        assert_eq!(&got[4..4 + (2 << 20)], big);
        assert_eq!(&got[4 + (2 << 20)..], [b"tail".as_slice(), &src[7..9]].concat());
    }

    #[cfg(unix)]
    #[test]
    fn mode_follows_umask_not_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("m.bin");
        AtomicFile::create(&target).unwrap().commit().unwrap();
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        // Read the process umask without changing it for good.
        let mask = unsafe_umask();
        assert_eq!(mode, 0o666 & !mask);
    }

    #[cfg(unix)]
    fn unsafe_umask() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            .unwrap_or(0o022)
    }
}
