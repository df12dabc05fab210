//! `digest`: a content id for a set of tensors that depends on nothing but
//! the tensors — name, dtype, shape and logical bytes — never on the
//! container, tensor order, sharding, alignment, compression or metadata
//! (spec/digest.md, scheme `tc1`). One model stored as safetensors, sharded
//! safetensors, a PyTorch checkpoint, npz, tpack, .zt or GGUF gives one id.
//!
//! BLAKE3: a tree hash, so one large tensor is hashed on every core
//! (`update_rayon`) and small tensors in parallel with each other, at memory
//! bandwidth; 256-bit, with no length-extension weakness, and fast without
//! special CPU instructions (SHA-256 is 3–5x slower where SHA-NI is absent).

use rayon::prelude::*;
use std::sync::{Arc, Mutex};
use tensorcast_core::{code, Error, Result, Source, TensorData, TensorInfo};

/// The scheme's name, the prefix of every id (`tc1:` + 64 hex digits).
pub const DIGEST_SCHEME: &str = "tc1";

/// Domain separation of a tensor record (spec/digest.md §2).
const TENSOR_DOMAIN: &[u8] = b"tensorcast digest tc1 tensor\n";
/// Domain separation of the set record (spec/digest.md §3).
const SET_DOMAIN: &[u8] = b"tensorcast digest tc1 set\n";

/// Runs at least this long are hashed on several threads; below it the
/// threads cost more than they save.
const PARALLEL_MIN: usize = 1 << 20;

/// A 256-bit content id, shown as `tc1:` and 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ContentId(pub [u8; 32]);

impl std::fmt::Display for ContentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{DIGEST_SCHEME}:{}", hex(&self.0))
    }
}

impl std::str::FromStr for ContentId {
    type Err = Error;

    fn from_str(text: &str) -> Result<ContentId> {
        let bad = || {
            Error::usage(
                code::BAD_OPTION,
                format!("`{text}` is not a content id ({DIGEST_SCHEME}: followed by 64 hex digits)"),
            )
        };
        let digits = text
            .strip_prefix(DIGEST_SCHEME)
            .and_then(|t| t.strip_prefix(':'))
            .ok_or_else(bad)?;
        if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(ContentId(out))
    }
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One tensor's part of a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorDigest {
    /// Tensor name.
    pub name: String,
    /// What the bytes are (spec/digest.md §2): a dtype's name (`F32`,
    /// `Q4_K`) or, for a sparse tensor, its layout, index type, value type
    /// and counts.
    pub kind: String,
    /// Logical shape, outermost first.
    pub shape: Vec<u64>,
    /// Logical byte count.
    pub nbytes: u64,
    /// The tensor record's BLAKE3 (spec/digest.md §2).
    pub digest: [u8; 32],
}

impl TensorDigest {
    /// The record digest in lowercase hex.
    pub fn hex(&self) -> String {
        hex(&self.digest)
    }
}

/// The content id of a set of tensors and each tensor's part of it, sorted
/// by name (bytewise), as the id hashes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digest {
    /// The id of the whole set.
    pub id: ContentId,
    /// Per tensor, sorted by name.
    pub tensors: Vec<TensorDigest>,
}

/// Hashes every tensor of `source` (in parallel) into its content id.
/// Tensors whose elements the reader cannot hand out are refused by name.
pub fn digest(source: &dyn Source) -> Result<Digest> {
    let infos = source.tensors();
    if let Some(t) = infos.iter().find(|t| t.unreadable.is_some()) {
        return Err(Error::unsupported(
            code::DTYPE_NOT_HELD,
            format!(
                "tensor `{}` is {}: its elements cannot be read, so it has no digest",
                t.name,
                t.unreadable.as_deref().unwrap_or("unreadable")
            ),
        ));
    }
    let mut tensors = (0..infos.len())
        .into_par_iter()
        .map(|i| {
            let t = &infos[i];
            Ok(TensorDigest {
                name: t.name.clone(),
                kind: kind(t),
                shape: t.shape.clone(),
                nbytes: t.nbytes,
                digest: tensor_digest(source, i)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // Records of one name (a container may hold duplicates) by their own
    // bytes, so storage order never shows (spec/digest.md D8).
    tensors.sort_by(|a, b| (a.name.as_bytes(), a.digest).cmp(&(b.name.as_bytes(), b.digest)));
    Ok(Digest {
        id: set_id(tensors.iter().map(|t| &t.digest)),
        tensors,
    })
}

/// The id of a set from its tensors' record digests, in name order.
fn set_id<'a>(records: impl ExactSizeIterator<Item = &'a [u8; 32]>) -> ContentId {
    let mut h = blake3::Hasher::new();
    h.update(SET_DOMAIN);
    h.update(&(records.len() as u64).to_le_bytes());
    for r in records {
        h.update(r);
    }
    ContentId(*h.finalize().as_bytes())
}

/// What a tensor's bytes are, as its record spells it.
fn kind(t: &TensorInfo) -> String {
    match &t.sparse {
        None => t.dtype.name().to_string(),
        Some(s) => format!(
            "{}[{}]:{}:sparse_dims={}:nnz={}",
            s.layout.name(),
            s.index.name(),
            t.dtype.name(),
            s.sparse_dims,
            s.nnz
        ),
    }
}

/// A hasher holding the head of `t`'s record: domain, name, kind, shape and
/// byte count; the logical bytes follow.
fn record_hasher(t: &TensorInfo) -> blake3::Hasher {
    let mut h = blake3::Hasher::new();
    h.update(TENSOR_DOMAIN);
    field(&mut h, t.name.as_bytes());
    field(&mut h, kind(t).as_bytes());
    h.update(&(t.shape.len() as u64).to_le_bytes());
    for d in &t.shape {
        h.update(&d.to_le_bytes());
    }
    h.update(&t.nbytes.to_le_bytes());
    h
}

/// Adds a run of logical bytes, on several threads when it is long.
fn feed(h: &mut blake3::Hasher, bytes: &[u8]) {
    if bytes.len() >= PARALLEL_MIN {
        h.update_rayon(bytes);
    } else {
        h.update(bytes);
    }
}

/// The record digest, once the bytes seen add up to the descriptor's count.
fn finish(t: &TensorInfo, h: &blake3::Hasher, seen: u64) -> Result<[u8; 32]> {
    if seen != t.nbytes {
        return Err(Error::unsupported(
            code::INTERNAL,
            format!(
                "tensor `{}`: the reader handed out {seen} bytes where its descriptor says {}",
                t.name, t.nbytes
            ),
        ));
    }
    Ok(*h.finalize().as_bytes())
}

/// The BLAKE3 of tensor `index`'s record (spec/digest.md D3).
fn tensor_digest(source: &dyn Source, index: usize) -> Result<[u8; 32]> {
    let t = &source.tensors()[index];
    let mut h = record_hasher(t);
    let seen = source.tensor_data(index)?.for_each_chunk(|c| {
        feed(&mut h, c);
        Ok(())
    })?;
    finish(t, &h, seen)
}

/// A source that hashes each tensor's bytes as a writer pulls them, passing
/// them on unchanged (raw runs stay raw, so kernel-side copies still
/// happen): the id of exactly what a conversion handed its writer, without
/// a second pass. Tensors never pulled are hashed by [`Tee::id`].
pub(crate) struct Tee {
    inner: Box<dyn Source>,
    records: Arc<Mutex<Vec<Option<[u8; 32]>>>>,
}

impl Tee {
    pub(crate) fn new(inner: Box<dyn Source>) -> Tee {
        let n = inner.tensors().len();
        Tee {
            inner,
            records: Arc::new(Mutex::new(vec![None; n])),
        }
    }

    /// The id of every tensor the source holds.
    pub(crate) fn id(&self) -> Result<ContentId> {
        let infos = self.inner.tensors();
        let mut records = Vec::with_capacity(infos.len());
        for (i, t) in infos.iter().enumerate() {
            let known = lock(&self.records)[i];
            let record = match known {
                Some(r) => r,
                None => tensor_digest(&*self.inner, i)?,
            };
            records.push((t.name.as_bytes(), record));
        }
        records.sort();
        Ok(set_id(records.iter().map(|(_, r)| r)))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere cannot leave a half-written Option behind.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Source for Tee {
    fn format(&self) -> &'static str {
        self.inner.format()
    }
    fn tensors(&self) -> &[TensorInfo] {
        self.inner.tensors()
    }
    fn metadata(&self) -> &tensorcast_core::Metadata {
        self.inner.metadata()
    }
    fn warnings(&self) -> &[String] {
        self.inner.warnings()
    }
    fn storage_note(&self, index: usize) -> Option<String> {
        self.inner.storage_note(index)
    }
    fn raw_location(&self, index: usize) -> Option<tensorcast_core::RawLocation<'_>> {
        self.inner.raw_location(index)
    }
    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        let t = &self.inner.tensors()[index];
        let mut h = record_hasher(t);
        let data = self.inner.tensor_data(index)?;
        let (slice, data) = match data {
            TensorData::Borrowed(b) => (b, TensorData::Borrowed(b)),
            TensorData::Located { bytes, origin } => (bytes, TensorData::Located { bytes, origin }),
            TensorData::Chunks(inner) => {
                return Ok(TensorData::Chunks(Box::new(HashingChunks {
                    inner,
                    hasher: h,
                    seen: 0,
                    info: t,
                    index,
                    records: self.records.clone(),
                })))
            }
            other => {
                // A kind of data this adapter does not know: hash it
                // separately when the id is asked for.
                return Ok(other);
            }
        };
        feed(&mut h, slice);
        lock(&self.records)[index] = Some(finish(t, &h, slice.len() as u64)?);
        Ok(data)
    }
}

/// Chunks passed on as they are hashed; the record is stored at the end.
struct HashingChunks<'a> {
    inner: Box<dyn Iterator<Item = Result<Vec<u8>>> + Send + 'a>,
    hasher: blake3::Hasher,
    seen: u64,
    info: &'a TensorInfo,
    index: usize,
    records: Arc<Mutex<Vec<Option<[u8; 32]>>>>,
}

impl Iterator for HashingChunks<'_> {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Result<Vec<u8>>> {
        match self.inner.next() {
            Some(Ok(chunk)) => {
                feed(&mut self.hasher, &chunk);
                self.seen += chunk.len() as u64;
                Some(Ok(chunk))
            }
            Some(Err(e)) => Some(Err(e)),
            None => {
                match finish(self.info, &self.hasher, self.seen) {
                    Ok(r) => lock(&self.records)[self.index] = Some(r),
                    Err(e) => return Some(Err(e)),
                }
                None
            }
        }
    }
}

/// A length-prefixed byte string.
fn field(h: &mut blake3::Hasher, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_back() {
        let id = ContentId([0xab; 32]);
        let text = id.to_string();
        assert_eq!(text.len(), 4 + 64);
        assert_eq!(text.parse::<ContentId>().unwrap(), id);
        let plus = format!("tc1:+a{}", "0".repeat(62));
        for bad in ["tc1:ab", "tc2:", "sha256:00", "tc1:zz", &plus] {
            assert!(bad.parse::<ContentId>().is_err(), "{bad}");
        }
    }
}
