//! Outputs in object stores: a multipart upload completed on commit and
//! aborted otherwise — the store's form of a temporary file renamed into
//! place. Memory holds at most a couple of parts.

use crate::error::store_error;
use crate::runtime::{block_on, runtime};
use crate::Location;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use tensorcast_core::code;
use tensorcast_core::{Error, Result, WriteTarget};

/// Bytes per uploaded part (S3's minimum part is 5 MiB).
pub const PART_BYTES: usize = 8 << 20;

/// Parts being uploaded at once.
const PARTS_IN_FLIGHT: usize = 2;

/// An object written front to back and made visible on commit. With
/// [`UploadTarget::staged`], bytes go to an unnamed local file first (for
/// writers that rewrite what they wrote) and are uploaded on commit.
pub struct UploadTarget {
    location: Location,
    name: PathBuf,
    upload: Option<WriteMultipart>,
    stage: Option<std::fs::File>,
}

impl UploadTarget {
    /// A target that streams into a multipart upload of `location`.
    pub fn new(location: Location) -> UploadTarget {
        UploadTarget {
            name: PathBuf::from(location.url()),
            location,
            upload: None,
            stage: None,
        }
    }

    /// A target staged in a local unnamed file, uploaded on commit: for
    /// writers that use [`WriteTarget::write_at`].
    pub fn staged(location: Location) -> Result<UploadTarget> {
        let mut t = UploadTarget::new(location);
        t.stage = Some(tempfile::tempfile().map_err(|e| Error::io(&t.name, e))?);
        Ok(t)
    }

    fn upload(&mut self) -> Result<&mut WriteMultipart> {
        if self.upload.is_none() {
            let store = self.location.store();
            let upload = block_on(store.put_multipart(self.location.path()))?
                .map_err(|e| store_error(self.location.url(), e))?;
            self.upload = Some(WriteMultipart::new_with_chunk_size(upload, PART_BYTES));
        }
        self.upload
            .as_mut()
            .ok_or_else(|| Error::usage(code::CALL_ORDER, "multipart upload missing"))
    }

    /// Hands `buf` to the upload, waiting while too many parts are in flight.
    fn send(&mut self, buf: &[u8]) -> Result<()> {
        let url = self.location.url().to_string();
        let rt = runtime()?;
        let upload = self.upload()?;
        {
            // Parts are spawned onto the runtime as they fill.
            let _guard = rt.enter();
            upload.write(buf);
        }
        rt.block_on(upload.wait_for_capacity(PARTS_IN_FLIGHT))
            .map_err(|e| store_error(&url, e))
    }
}

impl WriteTarget for UploadTarget {
    fn name(&self) -> &Path {
        &self.name
    }

    fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        if let Some(file) = &mut self.stage {
            return file.write_all(buf).map_err(|e| Error::io(&self.name, e));
        }
        self.send(buf)
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        let Some(file) = &mut self.stage else {
            return Err(Error::unsupported(
                code::NO_REWRITE,
                format!(
                    "{}: an upload cannot rewrite bytes already sent",
                    self.name.display()
                ),
            ));
        };
        let io = |e| Error::io(&self.name, e);
        let end = file.stream_position().map_err(io)?;
        file.seek(SeekFrom::Start(offset)).map_err(io)?;
        file.write_all(buf).map_err(io)?;
        file.seek(SeekFrom::Start(end)).map_err(io)?;
        Ok(())
    }

    fn sibling(&self, file_name: &str) -> Result<Box<dyn WriteTarget>> {
        let location = self.location.sibling(file_name)?;
        Ok(Box::new(if self.stage.is_some() {
            UploadTarget::staged(location)?
        } else {
            UploadTarget::new(location)
        }))
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        if let Some(mut file) = self.stage.take() {
            let name = self.name.clone();
            let io = |e| Error::io(&name, e);
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            let mut buf = vec![0u8; PART_BYTES];
            loop {
                let n = file.read(&mut buf).map_err(io)?;
                if n == 0 {
                    break;
                }
                self.send(&buf[..n])?;
            }
        }
        let url = self.location.url().to_string();
        match self.upload.take() {
            Some(upload) => block_on(upload.finish())?.map_err(|e| store_error(&url, e))?,
            // Nothing was written: an empty object.
            None => block_on(self.location.store().put(self.location.path(), PutPayload::new()))?
                .map_err(|e| store_error(&url, e))?,
        };
        Ok(())
    }
}

impl Drop for UploadTarget {
    /// Not committed: the upload is aborted, so no object appears and the
    /// store drops the parts sent.
    fn drop(&mut self) {
        if let Some(upload) = self.upload.take() {
            let _ = block_on(upload.abort());
        }
    }
}
