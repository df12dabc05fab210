//! Write targets: where a sink's bytes go. A local file that appears
//! atomically ([`FileTarget`]), a buffer in memory ([`MemoryTarget`]), and
//! later object-store uploads — all behind [`WriteTarget`], so writers never
//! name a file system.

use crate::code;
use crate::{AtomicFile, Error, Result, TensorData};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One output being written front to back. Nothing is visible at its name
/// until [`WriteTarget::commit`]; a target dropped uncommitted leaves nothing.
pub trait WriteTarget: Send {
    /// What errors call this output (its path, or a name for memory).
    fn name(&self) -> &Path;

    /// Appends `buf`.
    fn write_all(&mut self, buf: &[u8]) -> Result<()>;

    /// Appends a tensor's bytes and returns how many were written. Targets
    /// that can copy [`TensorData::Located`] bytes without reading them
    /// (kernel-side file copies) override this.
    fn write_data(&mut self, data: TensorData<'_>) -> Result<u64> {
        data.for_each_chunk(|chunk| self.write_all(chunk))
    }

    /// Overwrites bytes already written at `offset` (a field known only at
    /// the end). A capability: targets that cannot seek refuse it.
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        let _ = (offset, buf);
        Err(Error::unsupported(
            code::NO_REWRITE,
            format!(
                "{}: this output cannot rewrite bytes already written",
                self.name().display()
            ),
        ))
    }

    /// Another output beside this one, called `file_name` (shards and their
    /// index). Names with path separators are refused.
    fn sibling(&self, file_name: &str) -> Result<Box<dyn WriteTarget>>;

    /// Makes the output appear, complete.
    fn commit(self: Box<Self>) -> Result<()>;
}

/// Refuses a sibling name that is not one plain file name.
fn plain_name(file_name: &str) -> Result<()> {
    let plain = !file_name.is_empty()
        && file_name != "."
        && file_name != ".."
        && !file_name.contains(['/', '\\', '\0']);
    if plain {
        Ok(())
    } else {
        Err(Error::usage(
            code::BAD_LOCATION,
            format!("output name '{file_name}' is not a plain file name"),
        ))
    }
}

/// A local file written under a temporary name and renamed into place on
/// commit ([`AtomicFile`]). The temporary file is created at the first write,
/// so a plan refused before any byte leaves nothing behind.
pub struct FileTarget {
    path: PathBuf,
    file: Option<AtomicFile>,
    group: Option<CommitGroup>,
}

/// Files that appear together: each target in the group, and each sibling
/// made from one, is written and fsynced under a temporary name at its
/// commit, and renamed into place only by [`CommitGroup::commit`]. A group
/// dropped uncommitted removes every temporary file, so a conversion that
/// fails halfway through a model folder leaves the folder as it was.
#[derive(Clone, Default)]
pub struct CommitGroup(Arc<Mutex<Vec<crate::Prepared>>>);

impl CommitGroup {
    /// An empty group.
    pub fn new() -> CommitGroup {
        CommitGroup::default()
    }

    /// Renames every prepared file into place, those named in `last` after
    /// all others (a model folder's entry file, so a folder never looks
    /// complete before it is).
    pub fn commit(self, last: &[&str]) -> Result<()> {
        let files = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        let is_last = |p: &crate::Prepared| {
            p.target()
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| last.contains(&n))
        };
        let (late, early): (Vec<_>, Vec<_>) = files.into_iter().partition(is_last);
        for f in early.into_iter().chain(late) {
            f.persist()?;
        }
        Ok(())
    }

    fn add(&self, file: crate::Prepared) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(file);
    }
}

impl FileTarget {
    /// A target that will become `path`.
    pub fn new(path: impl Into<PathBuf>) -> FileTarget {
        FileTarget {
            path: path.into(),
            file: None,
            group: None,
        }
    }

    /// A target that becomes `path` when `group` commits.
    pub fn grouped(path: impl Into<PathBuf>, group: &CommitGroup) -> FileTarget {
        FileTarget {
            path: path.into(),
            file: None,
            group: Some(group.clone()),
        }
    }

    fn file(&mut self) -> Result<&mut AtomicFile> {
        if self.file.is_none() {
            self.file = Some(AtomicFile::create(&self.path)?);
        }
        self.file
            .as_mut()
            .ok_or_else(|| Error::usage(code::INTERNAL, "output file could not be created"))
    }
}

impl WriteTarget for FileTarget {
    fn name(&self) -> &Path {
        &self.path
    }

    fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        let path = self.path.clone();
        self.file()?.write_all(buf).map_err(|e| Error::io(path, e))
    }

    fn write_data(&mut self, data: TensorData<'_>) -> Result<u64> {
        self.file()?.write_data(data)
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        self.file()?.write_at(offset, buf)
    }

    fn sibling(&self, file_name: &str) -> Result<Box<dyn WriteTarget>> {
        plain_name(file_name)?;
        Ok(Box::new(FileTarget {
            path: self.path.with_file_name(file_name),
            file: None,
            group: self.group.clone(),
        }))
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        self.file()?;
        let Some(file) = self.file.take() else {
            return Ok(());
        };
        match &self.group {
            Some(group) => {
                group.add(file.prepare()?);
                Ok(())
            }
            None => file.commit(),
        }
    }
}

/// Files written to memory, by name: what [`MemoryTarget`]s commit into.
/// Cloning shares the store.
#[derive(Clone, Default)]
pub struct MemoryStore(Arc<Mutex<BTreeMap<String, Vec<u8>>>>);

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// A target that commits into this store as `name`.
    pub fn target(&self, name: &str) -> MemoryTarget {
        MemoryTarget {
            name: PathBuf::from(name),
            buf: Vec::new(),
            store: self.clone(),
        }
    }

    fn files(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A panic elsewhere while holding the lock leaves a consistent map.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The committed file `name`.
    pub fn get(&self, name: &str) -> Option<Vec<u8>> {
        self.files().get(name).cloned()
    }

    /// Every committed file's name, sorted.
    pub fn names(&self) -> Vec<String> {
        self.files().keys().cloned().collect()
    }
}

/// An output held in memory until committed into its [`MemoryStore`].
pub struct MemoryTarget {
    name: PathBuf,
    buf: Vec<u8>,
    store: MemoryStore,
}

impl WriteTarget for MemoryTarget {
    fn name(&self) -> &Path {
        &self.name
    }

    fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(buf);
        Ok(())
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        let range = usize::try_from(offset)
            .ok()
            .and_then(|s| Some(s..s.checked_add(buf.len())?))
            .filter(|r| r.end <= self.buf.len())
            .ok_or_else(|| Error::usage(code::CALL_ORDER, "write_at past the bytes written"))?;
        self.buf[range].copy_from_slice(buf);
        Ok(())
    }

    fn sibling(&self, file_name: &str) -> Result<Box<dyn WriteTarget>> {
        plain_name(file_name)?;
        Ok(Box::new(self.store.target(file_name)))
    }

    fn commit(self: Box<Self>) -> Result<()> {
        let name = self.name.to_string_lossy().into_owned();
        self.store.files().insert(name, self.buf);
        Ok(())
    }
}

/// [`std::io::Write`] over a target, for encoders written against it.
pub struct TargetWriter(pub Box<dyn WriteTarget>);

impl TargetWriter {
    /// Writes `bytes`, which lie at `origin`, through the target's
    /// [`WriteTarget::write_data`]: a file target copies them kernel-side
    /// where it can, instead of from memory.
    pub fn write_located(&mut self, bytes: &[u8], origin: crate::Origin<'_>) -> std::io::Result<()> {
        self.0
            .write_data(TensorData::Located { bytes, origin })
            .map(|_| ())
            .map_err(into_io)
    }
}

impl Write for TargetWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.0.write_all(buf).map_err(into_io)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An error as `io::Error`, unwrapping I/O errors so they are not wrapped twice.
fn into_io(e: Error) -> std::io::Error {
    match e {
        Error::Io { source, .. } => source,
        other => std::io::Error::other(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_targets_appear_on_commit_only() {
        let store = MemoryStore::new();
        let mut t: Box<dyn WriteTarget> = Box::new(store.target("a.bin"));
        t.write_all(b"hello").unwrap();
        t.write_at(1, b"E").unwrap();
        assert!(t.write_at(4, b"xx").is_err());
        let mut s = t.sibling("b.bin").unwrap();
        assert!(t.sibling("../c").is_err());
        s.write_all(b"x").unwrap();
        drop(s);
        assert!(store.names().is_empty());
        t.commit().unwrap();
        assert_eq!(store.get("a.bin").unwrap(), b"hEllo");
        assert_eq!(store.names(), ["a.bin"]);
    }

    #[test]
    fn file_target_creates_nothing_until_written_and_commits_empty_files() {
        let dir = tempfile::tempdir().unwrap();
        let t = FileTarget::new(dir.path().join("x.bin"));
        drop(t);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        Box::new(FileTarget::new(dir.path().join("e.bin")))
            .commit()
            .unwrap();
        assert_eq!(std::fs::read(dir.path().join("e.bin")).unwrap(), b"");
    }
}
