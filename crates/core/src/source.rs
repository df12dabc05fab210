//! The [`Source`] trait: tensors and metadata known up front, bytes on demand.

use crate::{Metadata, Origin, Result, TensorInfo};
use std::borrow::Cow;

/// Largest chunk a streaming source or adapter hands out at once. Memory use
/// of a conversion is a small multiple of this, whatever the model size.
pub const CHUNK_BYTES: usize = 4 << 20;

/// One tensor's bytes, in the tensor's dtype, little-endian, row-major.
#[non_exhaustive]
pub enum TensorData<'a> {
    /// The bytes sit as-is in memory the source holds.
    Borrowed(&'a [u8]),
    /// The bytes sit as-is in a byte source at a known place: targets may
    /// copy them without reading (kernel-side from a mapped file), and writers
    /// can tell when the same bytes arrive twice (tied weights).
    Located {
        /// The bytes themselves.
        bytes: &'a [u8],
        /// Where they lie.
        origin: Origin<'a>,
    },
    /// The bytes are produced piece by piece (decompressed, cast, gathered
    /// from a view); each chunk is at most a few [`CHUNK_BYTES`].
    Chunks(Box<dyn Iterator<Item = Result<Vec<u8>>> + Send + 'a>),
}

impl<'a> TensorData<'a> {
    /// Calls `f` with each piece in order and returns the total byte count.
    pub fn for_each_chunk(self, mut f: impl FnMut(&[u8]) -> Result<()>) -> Result<u64> {
        match self {
            TensorData::Borrowed(bytes) | TensorData::Located { bytes, .. } => {
                f(bytes)?;
                Ok(bytes.len() as u64)
            }
            TensorData::Chunks(chunks) => {
                let mut total = 0u64;
                for chunk in chunks {
                    let chunk = chunk?;
                    total += chunk.len() as u64;
                    f(&chunk)?;
                }
                Ok(total)
            }
        }
    }

    /// Collects every byte. For small tensors and tests: this is the one place
    /// a whole tensor is held, so streaming writers never call it.
    pub fn into_vec(self) -> Result<Vec<u8>> {
        match self {
            TensorData::Borrowed(bytes) | TensorData::Located { bytes, .. } => Ok(bytes.to_vec()),
            TensorData::Chunks(_) => {
                let mut out = Vec::new();
                self.for_each_chunk(|c| {
                    out.extend_from_slice(c);
                    Ok(())
                })?;
                Ok(out)
            }
        }
    }

    /// Re-cuts the bytes into pieces of at most about `max` bytes that each
    /// hold whole elements of `elem` bytes, borrowing where possible.
    pub fn aligned_chunks(
        self,
        elem: usize,
        max: usize,
    ) -> Box<dyn Iterator<Item = Result<Cow<'a, [u8]>>> + Send + 'a> {
        let elem = elem.max(1);
        let step = (max - max % elem).max(elem);
        match self {
            TensorData::Borrowed(bytes) | TensorData::Located { bytes, .. } => {
                Box::new(bytes.chunks(step).map(|c| Ok(Cow::Borrowed(c))))
            }
            TensorData::Chunks(inner) => Box::new(Aligned {
                inner,
                carry: Vec::new(),
                elem,
                done: false,
            }),
        }
    }
}

/// Joins chunks that split an element so every piece holds whole elements.
struct Aligned<'a> {
    inner: Box<dyn Iterator<Item = Result<Vec<u8>>> + Send + 'a>,
    carry: Vec<u8>,
    elem: usize,
    done: bool,
}

impl<'a> Iterator for Aligned<'a> {
    type Item = Result<Cow<'a, [u8]>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return (!self.carry.is_empty()).then(|| Ok(Cow::Owned(std::mem::take(&mut self.carry))));
            }
            match self.inner.next() {
                None => self.done = true,
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(chunk)) => {
                    let mut buf = std::mem::take(&mut self.carry);
                    if buf.is_empty() {
                        buf = chunk;
                    } else {
                        buf.extend_from_slice(&chunk);
                    }
                    let whole = buf.len() - buf.len() % self.elem;
                    self.carry = buf.split_off(whole);
                    if !buf.is_empty() {
                        return Some(Ok(Cow::Owned(buf)));
                    }
                }
            }
        }
    }
}

/// Inside `impl Source for Adapter { ... }`: forwards what describes the
/// input rather than its bytes (`format`, `metadata`, `warnings`) to the
/// adapter's `inner` source, which every adapter passes on unchanged. The
/// adapter writes `tensors` and `tensor_data`, and `storage_note` /
/// `raw_location` where its bytes are still the input's own.
#[macro_export]
macro_rules! forward_to_inner {
    () => {
        fn format(&self) -> &'static str {
            self.inner.format()
        }
        fn metadata(&self) -> &$crate::Metadata {
            self.inner.metadata()
        }
        fn warnings(&self) -> &[String] {
            self.inner.warnings()
        }
    };
}

/// A readable collection of tensors: descriptors and metadata are known up
/// front (reading them touches headers only); bytes are read one tensor at a time.
pub trait Source: Send + Sync {
    /// The format name (`safetensors`, `gguf`, `pytorch`, `tpack`, `npy`, `npz`).
    fn format(&self) -> &'static str;

    /// Every tensor, in file order.
    fn tensors(&self) -> &[TensorInfo];

    /// Typed metadata, in file order.
    fn metadata(&self) -> &Metadata;

    /// The bytes of tensor `index` (an index into [`Source::tensors`]).
    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>>;

    /// What the reader could not carry over exactly (values dropped or kept
    /// only as opaque records), one line each, naming path and class.
    fn warnings(&self) -> &[String] {
        &[]
    }

    /// How tensor `index` is stored, when the format has a choice (tpack:
    /// codec and compression ratio), for `inspect`.
    fn storage_note(&self, index: usize) -> Option<String> {
        let _ = index;
        None
    }

    /// The index of the tensor called `name`.
    fn find(&self, name: &str) -> Option<usize> {
        self.tensors().iter().position(|t| t.name == name)
    }

    /// Where tensor `index`'s bytes lie in a file exactly as the tensor
    /// holds them (raw, contiguous, little-endian), for references that
    /// point into the file instead of copying it (kerchunk). Sources made of
    /// several files (shards, split parts) name the file.
    fn raw_location(&self, index: usize) -> Option<RawLocation<'_>> {
        let offset = self.tensors().get(index)?.file_offset?;
        Some(RawLocation { file: None, offset })
    }
}

/// A tensor's raw bytes in a file: see [`Source::raw_location`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawLocation<'a> {
    /// The file, by its plain name beside the input; `None` for the input itself.
    pub file: Option<&'a str>,
    /// Byte offset of the tensor's first byte in that file.
    pub offset: u64,
}

impl<S: Source + ?Sized> Source for Box<S> {
    fn format(&self) -> &'static str {
        (**self).format()
    }
    fn warnings(&self) -> &[String] {
        (**self).warnings()
    }
    fn storage_note(&self, index: usize) -> Option<String> {
        (**self).storage_note(index)
    }
    fn tensors(&self) -> &[TensorInfo] {
        (**self).tensors()
    }
    fn metadata(&self) -> &Metadata {
        (**self).metadata()
    }
    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        (**self).tensor_data(index)
    }
    fn raw_location(&self, index: usize) -> Option<RawLocation<'_>> {
        (**self).raw_location(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_chunks_rejoin_split_elements() {
        let pieces = vec![Ok(vec![1u8, 2, 3]), Ok(vec![4, 5]), Ok(vec![6, 7, 8, 9])];
        let data = TensorData::Chunks(Box::new(pieces.into_iter()));
        let out: Vec<Vec<u8>> = data
            .aligned_chunks(4, 1 << 20)
            .map(|c| c.unwrap().into_owned())
            .collect();
        assert!(out.iter().take(out.len() - 1).all(|c| c.len() % 4 == 0));
        assert_eq!(out.concat(), (1..=9).collect::<Vec<u8>>());
    }
}
