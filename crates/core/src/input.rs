//! One input to open: its bytes, the name errors use, and how to reach the
//! files that sit beside it (shards of a sharded index, parts of a split
//! GGUF), wherever the input lives.

use crate::code;
use crate::{Bytes, Error, Result};
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// The files beside an input, by plain file name.
pub trait SiblingFiles: Send + Sync {
    /// Opens `file_name` (one plain name: no separators, no `..`).
    fn open(&self, file_name: &str) -> Result<Bytes>;

    /// What errors call `file_name`.
    fn name_of(&self, file_name: &str) -> PathBuf;
}

/// An input ready for a format's reader.
pub struct Input {
    /// The input's bytes.
    pub bytes: Bytes,
    /// What errors call it (a path, a URL, a name given for memory).
    pub name: PathBuf,
    /// Files beside it, when it has a place (a local directory, a store prefix).
    pub siblings: Option<Arc<dyn SiblingFiles>>,
}

impl Input {
    /// Maps the local file `path`; siblings are looked up in its directory.
    pub fn open(path: &Path) -> Result<Input> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ok(Input {
            bytes: Bytes::open(path)?,
            name: path.to_path_buf(),
            siblings: Some(Arc::new(LocalDir(dir))),
        })
    }

    /// Bytes in memory called `name`, with no siblings.
    pub fn memory(name: impl Into<PathBuf>, bytes: impl Into<Bytes>) -> Input {
        Input {
            bytes: bytes.into(),
            name: name.into(),
            siblings: None,
        }
    }

    /// Takes the bytes out (for a reader that keeps them), leaving the name
    /// and siblings to open the files beside them.
    pub fn take_bytes(&mut self) -> Bytes {
        std::mem::replace(&mut self.bytes, Bytes::from(Vec::new()))
    }

    /// The input's file name, if it has one that is UTF-8.
    pub fn file_name(&self) -> Option<&str> {
        self.name.file_name()?.to_str()
    }

    /// Opens the sibling `file_name` as an input of its own (with the same
    /// siblings), refusing names that are not one plain file name.
    pub fn sibling(&self, file_name: &str) -> Result<Input> {
        if !is_plain_name(file_name) {
            return Err(Error::usage(
                code::BAD_LOCATION,
                format!(
                    "'{file_name}' is not a plain file name beside {}",
                    self.name.display()
                ),
            ));
        }
        let siblings = self.siblings.clone().ok_or_else(|| {
            Error::unsupported(
                code::BAD_LOCATION,
                format!(
                    "{} has no directory to find '{file_name}' in",
                    self.name.display()
                ),
            )
        })?;
        Ok(Input {
            bytes: siblings.open(file_name)?,
            name: siblings.name_of(file_name),
            siblings: Some(siblings),
        })
    }
}

/// One normal path component: no separators, no `.`/`..`, not empty.
pub fn is_plain_name(name: &str) -> bool {
    let mut parts = Path::new(name).components();
    matches!(parts.next(), Some(Component::Normal(_)))
        && parts.next().is_none()
        && !name.contains(['/', '\\', '\0'])
}

/// A local directory.
pub struct LocalDir(pub PathBuf);

impl SiblingFiles for LocalDir {
    fn open(&self, file_name: &str) -> Result<Bytes> {
        Bytes::open(&self.0.join(file_name))
    }

    fn name_of(&self, file_name: &str) -> PathBuf {
        self.0.join(file_name)
    }
}

/// Named buffers in memory, for multi-file inputs that never touch a disk.
#[derive(Clone, Default)]
pub struct MemoryFiles(HashMap<String, Arc<Vec<u8>>>);

impl MemoryFiles {
    /// No files.
    pub fn new() -> MemoryFiles {
        MemoryFiles::default()
    }

    /// Adds (or replaces) `name`.
    pub fn insert(&mut self, name: &str, bytes: Vec<u8>) {
        self.0.insert(name.to_string(), Arc::new(bytes));
    }

    /// `name` as an input whose siblings are the other files.
    pub fn input(&self, name: &str) -> Result<Input> {
        Ok(Input {
            bytes: self.open(name)?,
            name: self.name_of(name),
            siblings: Some(Arc::new(self.clone())),
        })
    }
}

impl SiblingFiles for MemoryFiles {
    fn open(&self, file_name: &str) -> Result<Bytes> {
        let buf = self
            .0
            .get(file_name)
            .ok_or_else(|| Error::io(file_name, std::io::Error::from(std::io::ErrorKind::NotFound)))?;
        Ok(Bytes::shared(buf.clone()))
    }

    fn name_of(&self, file_name: &str) -> PathBuf {
        PathBuf::from(file_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names() {
        for ok in ["a.safetensors", "model-00001-of-00002.gguf", "..x"] {
            assert!(is_plain_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "../a", "a/b", "/abs", "a\\b", "a\0b", "./a"] {
            assert!(!is_plain_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn memory_siblings() {
        let mut files = MemoryFiles::new();
        files.insert("a", vec![1]);
        files.insert("b", vec![2, 3]);
        let a = files.input("a").unwrap();
        assert_eq!(&*a.sibling("b").unwrap().bytes, &[2, 3]);
        assert!(a.sibling("c").is_err());
        assert!(a.sibling("../b").is_err());
        assert!(Input::memory("m", vec![0]).sibling("b").is_err());
    }
}
