//! One object read by range, its version pinned when it is opened.

use crate::error::{changed, store_error};
use crate::runtime::{block_on, runtime};
use crate::Location;
use object_store::{GetOptions, GetRange, ObjectStoreExt};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tensorcast_core::{ChunkStream, Error, ReadAt, Result};
use tokio::task::JoinHandle;

/// Bytes per ranged request when streaming tensor data.
pub const PIECE_BYTES: u64 = 4 << 20;

/// Requests kept in flight while streaming: enough to hide a round trip,
/// few enough that memory stays at a handful of pieces.
const IN_FLIGHT: usize = 4;

/// An object in a store, read by range. The ETag (and version, where the
/// store has versions) seen at open is sent with every read, so an object
/// replaced mid-read fails the read instead of mixing two versions.
pub struct RemoteObject {
    inner: Arc<Inner>,
}

struct Inner {
    location: Location,
    len: u64,
    e_tag: Option<String>,
    version: Option<String>,
    /// Bytes received, for tests and benchmarks ("fetched only the header").
    fetched: AtomicU64,
}

impl RemoteObject {
    /// Opens the object `location` names (one HEAD request).
    pub fn open(location: Location) -> Result<RemoteObject> {
        let meta =
            block_on(location.store().head(location.path()))?.map_err(|e| store_error(location.url(), e))?;
        Ok(RemoteObject {
            inner: Arc::new(Inner {
                len: meta.size,
                e_tag: meta.e_tag,
                version: meta.version,
                location,
                fetched: AtomicU64::new(0),
            }),
        })
    }

    /// The URL.
    pub fn url(&self) -> &str {
        self.inner.location.url()
    }

    /// The ETag pinned at open, if the store gave one.
    pub fn e_tag(&self) -> Option<&str> {
        self.inner.e_tag.as_deref()
    }

    /// Bytes received so far.
    pub fn fetched_bytes(&self) -> u64 {
        self.inner.fetched.load(Ordering::Relaxed)
    }
}

impl Inner {
    fn options(&self, start: u64, end: u64) -> GetOptions {
        GetOptions {
            range: Some(GetRange::Bounded(start..end)),
            if_match: self.e_tag.clone(),
            version: self.version.clone(),
            ..Default::default()
        }
    }

    async fn get(self: Arc<Self>, start: u64, end: u64) -> Result<Vec<u8>> {
        let url = self.location.url();
        let result = self
            .location
            .store()
            .get_opts(self.location.path(), self.options(start, end))
            .await
            .map_err(|e| store_error(url, e))?;
        // What each response says of itself must match what was pinned at
        // open: a server that ignores If-Match and serves another version
        // (another ETag or size), or another range, is refused here rather
        // than mixing two versions into one output.
        if let (Some(pinned), Some(got)) = (&self.e_tag, &result.meta.e_tag) {
            if pinned != got {
                return Err(changed(url, &format!("ETag {got}, not {pinned}")));
            }
        }
        if result.meta.size != self.len {
            return Err(changed(
                url,
                &format!("{} bytes, not {}", result.meta.size, self.len),
            ));
        }
        if result.range != (start..end) {
            return Err(Error::io(
                url,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "asked for bytes {start}..{end}, the store answered {:?}",
                        result.range
                    ),
                ),
            ));
        }
        let bytes = result.bytes().await.map_err(|e| store_error(url, e))?;
        if bytes.len() as u64 != end - start {
            return Err(Error::io(
                url,
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("asked for bytes {start}..{end}, the store sent {}", bytes.len()),
                ),
            ));
        }
        self.fetched.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        // Zero-copy when the body arrived as one buffer (it usually does).
        Ok(Vec::from(bytes))
    }
}

impl ReadAt for RemoteObject {
    fn len(&self) -> u64 {
        self.inner.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.inner.len)
            .ok_or_else(|| {
                Error::io(
                    self.url(),
                    std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "read past the end of the object",
                    ),
                )
            })?;
        let bytes = block_on(Arc::clone(&self.inner).get(offset, end))??;
        buf.copy_from_slice(&bytes);
        Ok(())
    }

    fn stream(&self, offset: u64, len: u64) -> Option<ChunkStream> {
        let rt = runtime().ok()?;
        Some(Box::new(Pieces {
            inner: Arc::clone(&self.inner),
            next: offset,
            end: offset.saturating_add(len).min(self.inner.len),
            pending: VecDeque::new(),
            handle: rt.handle().clone(),
            failed: false,
        }))
    }

    fn describe(&self) -> String {
        self.url().to_string()
    }
}

/// A range streamed as [`PIECE_BYTES`] requests, [`IN_FLIGHT`] at a time,
/// handed out in order.
struct Pieces {
    inner: Arc<Inner>,
    next: u64,
    end: u64,
    pending: VecDeque<JoinHandle<Result<Vec<u8>>>>,
    handle: tokio::runtime::Handle,
    failed: bool,
}

impl Iterator for Pieces {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Result<Vec<u8>>> {
        if self.failed {
            return None;
        }
        while self.pending.len() < IN_FLIGHT && self.next < self.end {
            let stop = (self.next + PIECE_BYTES).min(self.end);
            let task = Arc::clone(&self.inner).get(self.next, stop);
            self.pending.push_back(self.handle.spawn(task));
            self.next = stop;
        }
        let task = self.pending.pop_front()?;
        let r = match self.handle.block_on(task) {
            Ok(r) => r,
            Err(e) => Err(Error::io(
                self.inner.location.url(),
                std::io::Error::other(e.to_string()),
            )),
        };
        if r.is_err() {
            self.failed = true;
        }
        Some(r)
    }
}

impl Drop for Pieces {
    fn drop(&mut self) {
        for task in &self.pending {
            task.abort();
        }
    }
}
