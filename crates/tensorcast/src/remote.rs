//! URLs wherever a path is accepted: an input, an output, a batch and its
//! out-dir, each a [`Location`] (a local path or a URL, told apart once,
//! where the text came in). Remote inputs are read by range
//! (the format fetches its headers, tensor bytes stream); remote outputs are
//! multipart uploads that appear on commit. Without the `remote` feature a
//! URL is refused by name.

use crate::Registry;
use std::path::Path;
use std::sync::Arc;
use tensorcast_core::code;
#[cfg(not(feature = "remote"))]
use tensorcast_core::Error;
use tensorcast_core::{Bytes, FileTarget, Format, Input, Limits, Location, ReadAt, Result, WriteTarget};

#[cfg(not(feature = "remote"))]
fn no_remote(url: &str) -> Error {
    Error::unsupported(
        code::FEATURE_MISSING,
        format!("{url}: reading and writing URLs needs the remote feature of the tensorcast crate"),
    )
}

/// Opens `location` (a local file, or a URL read by range) as an input.
pub fn open_input(registry: &Registry, location: &Location, limits: &Limits) -> Result<Input> {
    let url = match location {
        Location::Local(path) => return Input::open(path),
        Location::Url(url) => url,
    };
    #[cfg(feature = "remote")]
    {
        imp::open_url(registry, url, limits)
    }
    #[cfg(not(feature = "remote"))]
    {
        let _ = (registry, limits);
        Err(no_remote(url))
    }
}

/// Where an output of `format` at `location` is written: a local file
/// renamed into place, or an upload completed on commit (staged locally
/// first for writers that rewrite their output).
pub fn target(location: &Location, format: &dyn Format) -> Result<Box<dyn WriteTarget>> {
    let url = match location {
        Location::Local(path) => return Ok(Box::new(FileTarget::new(path))),
        Location::Url(url) => url,
    };
    #[cfg(feature = "remote")]
    {
        let location = tensorcast_remote::Location::parse(url)?;
        Ok(if format.rewrites_output() {
            Box::new(tensorcast_remote::UploadTarget::staged(location)?)
        } else {
            Box::new(tensorcast_remote::UploadTarget::new(location))
        })
    }
    #[cfg(not(feature = "remote"))]
    {
        let _ = format;
        Err(no_remote(url))
    }
}

/// Whether something exists at `location` (an object, for a URL; a file,
/// folder or symlink, dangling or not, for a path).
pub fn exists(location: &Location) -> bool {
    match location {
        Location::Local(path) => std::fs::symlink_metadata(path).is_ok(),
        Location::Url(_) => modified(location).is_some(),
    }
}

/// The size of the file or object at `location`, if it exists.
pub fn size(location: &Location) -> Option<u64> {
    match location {
        #[cfg(feature = "remote")]
        Location::Url(url) => {
            let location = tensorcast_remote::Location::parse(url).ok()?;
            tensorcast_remote::stat(&location).ok()?.map(|(n, _)| n)
        }
        #[cfg(not(feature = "remote"))]
        Location::Url(_) => None,
        Location::Local(path) => std::fs::metadata(path).map(|m| m.len()).ok(),
    }
}

/// Every object under the URL `prefix`: (path relative to it, size), sorted.
pub fn list(prefix: &Location) -> Result<Vec<(String, u64)>> {
    let Some(url) = prefix.url() else {
        return Err(tensorcast_core::Error::usage(
            code::BAD_LOCATION,
            format!("{prefix} is not a URL"),
        ));
    };
    #[cfg(feature = "remote")]
    {
        let location = tensorcast_remote::Location::parse(url)?;
        Ok(tensorcast_remote::list(&location)?
            .into_iter()
            .map(|l| (l.rel, l.size))
            .collect())
    }
    #[cfg(not(feature = "remote"))]
    Err(no_remote(url))
}

/// A plain upload (or local file) for outputs that are not a format's:
/// reports, references.
pub fn plain_target(location: &Location) -> Result<Box<dyn WriteTarget>> {
    let url = match location {
        Location::Local(path) => return Ok(Box::new(FileTarget::new(path))),
        Location::Url(url) => url,
    };
    #[cfg(feature = "remote")]
    {
        Ok(Box::new(tensorcast_remote::UploadTarget::new(
            tensorcast_remote::Location::parse(url)?,
        )))
    }
    #[cfg(not(feature = "remote"))]
    Err(no_remote(url))
}

/// The whole file or object at `path`, refused over the allocation limit
/// (for small side files: reports, lists).
pub fn read_whole(location: &Location, limits: &Limits) -> Result<Vec<u8>> {
    let url = match location {
        Location::Local(path) => return read_local(path, limits),
        Location::Url(url) => url,
    };
    #[cfg(feature = "remote")]
    {
        let object = tensorcast_remote::RemoteObject::open(tensorcast_remote::Location::parse(url)?)?;
        Ok(tensorcast_core::Bytes::read_all(&object, location.as_path(), limits)?.to_vec())
    }
    #[cfg(not(feature = "remote"))]
    {
        let _ = limits;
        Err(no_remote(url))
    }
}

fn read_local(path: &Path, limits: &Limits) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path)
        .map_err(|e| tensorcast_core::Error::io(path, e))?
        .len();
    limits
        .check_alloc(len, "reading this file whole")
        .map_err(|d| tensorcast_core::Error::limit(path, "max_alloc_bytes", d))?;
    std::fs::read(path).map_err(|e| tensorcast_core::Error::io(path, e))
}

/// When the file or object at `location` was last written, if it exists.
pub fn modified(location: &Location) -> Option<std::time::SystemTime> {
    match location {
        #[cfg(feature = "remote")]
        Location::Url(url) => {
            let location = tensorcast_remote::Location::parse(url).ok()?;
            tensorcast_remote::stat(&location).ok()?.map(|(_, m)| m)
        }
        #[cfg(not(feature = "remote"))]
        Location::Url(_) => None,
        Location::Local(path) => std::fs::metadata(path).and_then(|m| m.modified()).ok(),
    }
}

/// First bytes fetched for detection (the registry looks at 512).
const DETECT_BYTES: u64 = 512;

/// The bytes of an object read by range (a remote object, or one a caller
/// reads for us: a Python store): the ranges its format parses fetched, the
/// rest read on demand; or, for formats whose structure is spread through
/// the file, the whole object in a temporary file.
pub fn object_bytes(registry: &Registry, object: Arc<dyn ReadAt>, limits: &Limits) -> Result<Bytes> {
    let mut bytes = Bytes::ranged(Arc::clone(&object))?;
    bytes.fetch(0, DETECT_BYTES)?;
    let head = &bytes[..ReadAt::len(&bytes).min(DETECT_BYTES) as usize];
    // Only a format that fetched what it parses gets ranged bytes; any
    // other object (a side file such as config.json, an undetected file
    // whose reader is chosen by name) is downloaded whole, so no reader
    // ever sees bytes that were not fetched.
    if let Some(format) = registry.detect_head(head) {
        if format.prepare_ranged(&mut bytes, limits)? {
            return Ok(bytes);
        }
    }
    Bytes::spooled(object)
}

#[cfg(feature = "remote")]
mod imp {
    use crate::Registry;
    use std::path::PathBuf;
    use std::sync::Arc;
    use tensorcast_core::{Bytes, Input, Limits, Result, SiblingFiles};
    use tensorcast_remote::{Location, RemoteObject};

    pub(super) fn open_url(registry: &Registry, url: &str, limits: &Limits) -> Result<Input> {
        let location = Location::parse(url)?;
        Ok(Input {
            bytes: ranged(registry, location.clone(), limits)?,
            name: PathBuf::from(location.url()),
            siblings: Some(Arc::new(UrlDir {
                base: location,
                registry: registry.clone(),
                limits: limits.clone(),
            })),
        })
    }

    fn ranged(registry: &Registry, location: Location, limits: &Limits) -> Result<Bytes> {
        super::object_bytes(registry, Arc::new(RemoteObject::open(location)?), limits)
    }

    /// The objects beside a URL: shards, split parts, a model's files.
    struct UrlDir {
        base: Location,
        registry: Registry,
        limits: Limits,
    }

    impl SiblingFiles for UrlDir {
        fn open(&self, file_name: &str) -> Result<Bytes> {
            ranged(&self.registry, self.base.sibling(file_name)?, &self.limits)
        }

        fn name_of(&self, file_name: &str) -> PathBuf {
            self.base
                .sibling(file_name)
                .map_or_else(|_| PathBuf::from(file_name), |l| PathBuf::from(l.url()))
        }
    }
}
