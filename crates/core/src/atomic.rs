//! Output files that appear complete or not at all.

use crate::{Error, Result};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// Write buffer: large enough that small tensors coalesce into few syscalls;
/// larger writes bypass it.
const BUFFER: usize = 1 << 20;

/// A file written beside its target under a temporary name, fsynced and
/// renamed into place by [`AtomicFile::commit`]. Dropped uncommitted, the
/// temporary file is removed and the target is untouched.
pub struct AtomicFile {
    out: BufWriter<NamedTempFile>,
    target: PathBuf,
}

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
        let tmp = builder.tempfile_in(dir).map_err(|e| Error::io(target, e))?;
        Ok(AtomicFile {
            out: BufWriter::with_capacity(BUFFER, tmp),
            target: target.to_path_buf(),
        })
    }

    /// The path this file will have once committed.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Flushes, fsyncs and renames into place, then fsyncs the directory so
    /// the rename itself survives a crash.
    pub fn commit(self) -> Result<()> {
        let target = self.target;
        let tmp = self
            .out
            .into_inner()
            .map_err(|e| Error::io(&target, e.into_error()))?;
        tmp.as_file().sync_all().map_err(|e| Error::io(&target, e))?;
        tmp.persist(&target).map_err(|e| Error::io(&target, e.error))?;
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
        self.out.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
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
