//! Objects under a prefix, for batches over a store.

use crate::error::store_error;
use crate::runtime::block_on;
use crate::Location;
use futures_util::TryStreamExt;
use object_store::ObjectStoreExt;
use std::time::SystemTime;
use tensorcast_core::Result;

/// One object found under a prefix.
#[derive(Clone, Debug)]
pub struct Listed {
    /// Its path relative to the prefix (`/`-separated).
    pub rel: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written.
    pub modified: SystemTime,
}

/// Every object under `prefix` (recursively), sorted by relative path.
pub fn list(prefix: &Location) -> Result<Vec<Listed>> {
    let base: Vec<String> = prefix.path().parts().map(|p| p.as_ref().to_string()).collect();
    let found: Vec<object_store::ObjectMeta> =
        block_on(prefix.store().list(Some(prefix.path())).try_collect::<Vec<_>>())?
            .map_err(|e| store_error(prefix.url(), e))?;
    let mut out: Vec<Listed> = found
        .into_iter()
        .filter_map(|m| {
            let parts: Vec<String> = m.location.parts().map(|p| p.as_ref().to_string()).collect();
            let rest = parts.strip_prefix(base.as_slice())?;
            (!rest.is_empty()).then(|| Listed {
                rel: rest.join("/"),
                size: m.size,
                modified: m.last_modified.into(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

/// The object at `location`, if there is one: (size, last written).
pub fn stat(location: &Location) -> Result<Option<(u64, SystemTime)>> {
    match block_on(location.store().head(location.path()))? {
        Ok(m) => Ok(Some((m.size, m.last_modified.into()))),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(store_error(location.url(), e)),
    }
}
