//! zTensor as a registered [`Format`].

use crate::{read, ZtFile, ZtWriter, FORMAT, MAGIC};
use tensorcast_core::{Bytes, Detection, Format, Input, Limits, Options, Result, Sink, Source, WriteTarget};

/// `.zt` files (zTensor container v2; v1 files are recognised and refused).
pub struct Ztensor;

impl Format for Ztensor {
    fn name(&self) -> &'static str {
        FORMAT
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["zt"]
    }

    fn detect(&self, head: &[u8]) -> Detection {
        // v1 ("ZTEN1000") and v0.1 ("ZTEN0001") too, so their refusal names the version.
        if head.starts_with(&MAGIC) || head.starts_with(b"ZTEN1000") || head.starts_with(b"ZTEN0001") {
            Detection::Strong
        } else {
            Detection::No
        }
    }

    fn open(&self, input: Input, options: &Options) -> Result<Box<dyn Source>> {
        Ok(Box::new(ZtFile::from_bytes(
            &input.name,
            input.bytes,
            &options.limits,
        )?))
    }

    /// The footer, then the manifest it points at: two ranged reads.
    fn prepare_ranged(&self, bytes: &mut Bytes, limits: &Limits) -> Result<bool> {
        let len = bytes.len() as u64;
        bytes.fetch(0, 8)?;
        bytes.fetch(len.saturating_sub(crate::FOOTER), crate::FOOTER)?;
        if let Ok((offset, length, _)) = read::footer(bytes, limits) {
            bytes.fetch(offset, length)?;
        }
        Ok(true)
    }

    fn can_write(&self) -> bool {
        true
    }

    /// CSR, the one sparse layout profile ztensor writes.
    fn holds_sparse(&self, tensor: &tensorcast_core::TensorInfo) -> bool {
        tensor
            .sparse
            .as_ref()
            .is_some_and(|s| s.layout == tensorcast_core::sparse::SparseLayout::Csr)
    }

    fn create(&self, target: Box<dyn WriteTarget>, _: &Options) -> Result<Box<dyn Sink>> {
        Ok(Box::new(ZtWriter::to_target(target)))
    }

    /// Every part decoded and checked against its xxh3 digest.
    fn verify(&self, input: Input, options: &Options) -> Result<Vec<String>> {
        Ok(ZtFile::from_bytes(&input.name, input.bytes, &options.limits)?.verify())
    }
}
