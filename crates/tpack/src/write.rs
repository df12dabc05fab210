//! Writing tpack: chunking, parallel compression, the manifest and the commit
//! slot. [`TpackWriter`] makes new files; `append` reuses [`ChunkWriter`].

use crate::codec::{encode_or_raw, Codec};
use crate::encode::LITERAL_UP_TO_LEVEL;
use crate::format::{align64, preamble, Slot, DATA_START, MANIFEST_ZSTD, SLOT_A};
use crate::manifest::{unit_bytes, Chunk, Entry, Manifest};
use crate::stored::{chunk_dtype, element_bytes, packed_bytes, StoredArray};
use rayon::prelude::*;
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use tensorcast_core::code;
use tensorcast_core::{
    check_size, DType, Error, FileTarget, Metadata, Origin, Plan, Result, Sink, SourceId, TargetWriter,
    TensorData, TensorInfo, Value, WriteTarget, CHUNK_BYTES,
};

/// zstd level used when none is given: fast, and on float planes within a
/// few percent of much slower levels.
pub const DEFAULT_LEVEL: i32 = 3;

/// Raw tensors at least this large start 64-byte aligned.
const ALIGN_FROM: u64 = 4096;
/// Raw tensors at least this large that lie raw in their input file start
/// at the same offset within a page as there, so the file target copies them
/// kernel-side (`copy_file_range`, which is fast only between offsets
/// congruent mod the page size); the padding, under 4 KiB a tensor, is
/// under 0.4% of such a tensor.
const CONGRUENT_FROM: u64 = 1 << 20;
/// The page size kernel-side copies want offsets to agree on.
const PAGE: u64 = 4096;

/// Level for the manifest. Not higher: with a real vocabulary the manifest is
/// 10+ MB of JSON compressed on one thread at commit time, where level 9 took
/// as long as writing every tensor of a 200 MB model (level 3: ~5x faster,
/// a few percent larger).
const MANIFEST_LEVEL: i32 = 3;

/// Where a tensor's raw bytes came from (source and offset), their length
/// and dtype: equal keys are the same tensor handed out twice.
type TiedKey = ((SourceId, u64), u64, &'static str);

/// A chunk ready to write: codec, stored bytes (a raw chunk's are the
/// piece itself, borrowed or moved, never copied), decoded length, crc32c,
/// and for a raw piece of a located tensor, where it lies in its source.
type Encoded<'a> = (Codec, Cow<'a, [u8]>, u64, u32, Option<Origin<'a>>);

/// An output for [`ChunkWriter`]: raw pieces that lie in a mapped file go
/// through `write_located`, which a file target turns into a kernel copy.
pub trait ChunkOut: Write {
    /// Writes `bytes`, which lie at `origin` (by default from memory).
    fn write_located(&mut self, bytes: &[u8], origin: Origin<'_>) -> std::io::Result<()> {
        let _ = origin;
        self.write_all(bytes)
    }
}

impl ChunkOut for TargetWriter {
    fn write_located(&mut self, bytes: &[u8], origin: Origin<'_>) -> std::io::Result<()> {
        TargetWriter::write_located(self, bytes, origin)
    }
}

impl ChunkOut for &mut std::fs::File {}

impl<T> ChunkOut for std::io::Cursor<T> where std::io::Cursor<T>: Write {}

/// What one tensor has written so far.
#[derive(Default)]
struct Stored {
    chunks: Vec<Chunk>,
    written: u64,
    /// Whether the last chunk was raw (a raw run continues unpadded).
    raw_run: bool,
}

/// Writes chunks at increasing offsets of an output and remembers where.
/// Compression runs on rayon's pool, and the output is written from a pool
/// thread while the next chunks compress, hence `W: Send` for writing tensors.
pub struct ChunkWriter<W: ChunkOut> {
    out: W,
    pos: u64,
    level: Option<i32>,
    /// Tensors already stored, by where their bytes came from (tied weights
    /// arrive as the same source range): stored once, referenced again.
    seen: HashMap<TiedKey, Vec<Chunk>>,
}

impl<W: ChunkOut + Send> ChunkWriter<W> {
    /// Writes to `out`, whose current position is `pos`; `level` None stores raw.
    pub fn new(out: W, pos: u64, level: Option<i32>) -> Self {
        ChunkWriter {
            out,
            pos,
            level,
            seen: HashMap::new(),
        }
    }

    /// Releases the output.
    pub fn into_inner(self) -> W {
        self.out
    }

    fn pad_to(&mut self, offset: u64, path: &Path) -> Result<()> {
        let zeros = [0u8; 64];
        while self.pos < offset {
            let n = (offset - self.pos).min(64) as usize;
            self.out.write_all(&zeros[..n]).map_err(|e| Error::io(path, e))?;
            self.pos += n as u64;
        }
        Ok(())
    }

    /// Writes raw `bytes` (the manifest) and returns their offset.
    pub fn write_blob(&mut self, bytes: &[u8], path: &Path) -> Result<u64> {
        let at = self.pos;
        self.out.write_all(bytes).map_err(|e| Error::io(path, e))?;
        self.pos += bytes.len() as u64;
        Ok(at)
    }

    /// Writes encoded chunks of `info` after those already in `stored`.
    fn store(
        &mut self,
        encoded: Vec<Encoded<'_>>,
        stored: &mut Stored,
        info: &TensorInfo,
        path: &Path,
    ) -> Result<()> {
        for (c, bytes, decoded_len, crc, origin) in encoded {
            // Raw chunks of a tensor sit back to back from an aligned
            // start, so an uncompressed tensor is one mappable range.
            // Tiny tensors skip the padding: for them it would be most of
            // the file, and nobody maps 12 bytes.
            if c == Codec::Raw && !stored.raw_run && info.nbytes >= ALIGN_FROM {
                // Placed by where the tensor lies in its file as the source
                // describes it, not by how its bytes arrive: the same input
                // read locally or over HTTP gives the same output.
                let start = match info.file_offset {
                    Some(from) if info.nbytes >= CONGRUENT_FROM => {
                        self.pos + (from % PAGE + PAGE - self.pos % PAGE) % PAGE
                    }
                    _ => align64(self.pos),
                };
                self.pad_to(start, path)?;
            }
            stored.raw_run = c == Codec::Raw;
            let offset = self.pos;
            match origin {
                Some(o) => self
                    .out
                    .write_located(&bytes, o)
                    .map_err(|e| Error::io(path, e))?,
                None => self.out.write_all(&bytes).map_err(|e| Error::io(path, e))?,
            }
            self.pos += bytes.len() as u64;
            stored.written += decoded_len;
            stored.chunks.push(Chunk {
                offset,
                stored_len: bytes.len() as u64,
                decoded_len,
                codec: c,
                crc,
            });
        }
        Ok(())
    }

    /// Stores each top-level metadata array of at least
    /// [`STORE_FROM`](crate::stored::STORE_FROM) packed bytes as chunks
    /// (§2.3), compressed as a tensor of its element type would be.
    pub fn write_arrays(&mut self, metadata: &Metadata, path: &Path) -> Result<Vec<StoredArray>> {
        let mut stored = Vec::new();
        for (key, value) in metadata.iter() {
            let Value::Array(array) = value else { continue };
            let Some(bytes) = packed_bytes(array) else {
                continue;
            };
            let dtype = chunk_dtype(array.kind());
            let width = element_bytes(array.kind()).unwrap_or(1);
            let info = TensorInfo::new(key.to_string(), dtype, vec![bytes.len() as u64 / width]).ok_or_else(
                || {
                    Error::unsupported(
                        code::TOO_LARGE,
                        format!("tpack: metadata array '{key}' is too large"),
                    )
                },
            )?;
            let chunks = self.write_tensor(&info, TensorData::Borrowed(&bytes), path)?;
            stored.push(StoredArray {
                key: key.to_string(),
                kind: array.kind(),
                len: array.len() as u64,
                chunks,
            });
        }
        Ok(stored)
    }

    /// Stores one tensor's bytes as chunks.
    pub fn write_tensor(
        &mut self,
        info: &TensorInfo,
        data: TensorData<'_>,
        path: &Path,
    ) -> Result<Vec<Chunk>> {
        let key = match &data {
            TensorData::Located { bytes, origin } => {
                Some((origin.key(), bytes.len() as u64, info.dtype.name()))
            }
            _ => None,
        };
        if let Some(chunks) = key.as_ref().and_then(|k| self.seen.get(k)) {
            return Ok(chunks.clone());
        }
        // A sparse tensor's parts mix element sizes: stored as bytes.
        let as_stored = if info.sparse.is_some() {
            DType::U8
        } else {
            info.dtype
        };
        // At the default level and below, ggml's quantized blocks are stored
        // raw without trying zstd: a chunk must shrink by a tenth to be
        // compressed there, and no block type does (Q8_0, the most
        // compressible, by 9% on the real Gemma 3). Sampling them only to
        // decide that was a third of a GGUF -> tpack run of the real SmolLM2.
        let codec = match self.level {
            Some(l) if l <= LITERAL_UP_TO_LEVEL && matches!(as_stored, DType::Quant(_)) => Codec::Raw,
            Some(_) => Codec::for_dtype(as_stored),
            None => Codec::Raw,
        };
        let level = self.level.unwrap_or(0);
        let unit = unit_bytes(as_stored) as usize;
        // One piece per core in flight while the previous group is stored:
        // every core compresses, and the window (two groups of encoded
        // chunks) stays near 2 x cores x CHUNK_BYTES, whatever the model.
        let batch = rayon::current_num_threads().max(1);
        // Where a located tensor's pieces lie: its origin plus each piece's
        // place in its bytes (the pieces are sub-slices of them, in order).
        // Only for tensors placed for a kernel copy: smaller ones are written
        // from memory (a copy the file target would otherwise make by reading).
        let located = match &data {
            TensorData::Located { bytes, origin } if info.nbytes >= CONGRUENT_FROM => {
                Some((bytes.as_ptr() as usize, *origin))
            }
            _ => None,
        };
        let origin_of = |piece: &Cow<'_, [u8]>| match (piece, located) {
            (Cow::Borrowed(p), Some((base, origin))) => {
                Some(origin.advanced((p.as_ptr() as usize - base) as u64))
            }
            _ => None,
        };
        let mut pieces = data.aligned_chunks(unit, CHUNK_BYTES);
        let mut stored = Stored::default();
        let mut encoded: Vec<Encoded<'_>> = Vec::new();
        // Stored raw: a checksum is all the work, done here in turn (handing
        // each chunk to the pool cost more in wake-ups than the crc32c).
        let raw_only = codec == Codec::Raw;
        if raw_only {
            for raw in pieces.by_ref() {
                let raw = raw?;
                let (len, crc, origin) = (raw.len() as u64, crc32c::crc32c(&raw), origin_of(&raw));
                self.store(vec![(Codec::Raw, raw, len, crc, origin)], &mut stored, info, path)?;
            }
        }
        if !raw_only {
            loop {
                let mut group = Vec::with_capacity(batch);
                for piece in pieces.by_ref().take(batch) {
                    group.push(piece?);
                }
                // The previous group is written while this one is compressed
                // (writing in turn left the other cores idle meanwhile).
                let (wrote, next) = rayon::join(
                    || self.store(std::mem::take(&mut encoded), &mut stored, info, path),
                    || {
                        group
                            .into_par_iter()
                            .map(|raw| {
                                let len = raw.len() as u64;
                                match encode_or_raw(&raw, codec, level) {
                                    Some((c, bytes)) => {
                                        let crc = crc32c::crc32c(&bytes);
                                        (c, Cow::Owned(bytes), len, crc, None)
                                    }
                                    None => {
                                        let crc = crc32c::crc32c(&raw);
                                        let origin = origin_of(&raw);
                                        (Codec::Raw, raw, len, crc, origin)
                                    }
                                }
                            })
                            .collect::<Vec<Encoded<'_>>>()
                    },
                );
                wrote?;
                if next.is_empty() {
                    break;
                }
                encoded = next;
            }
        }
        let Stored { chunks, written, .. } = stored;
        check_size(info, written)?;
        if let Some(k) = key {
            self.seen.insert(k, chunks.clone());
        }
        Ok(chunks)
    }
}

/// Encodes `manifest` and returns the slot fields that describe it (offset and
/// committed length filled by the caller).
pub fn manifest_bytes(manifest: &Manifest) -> (Vec<u8>, u64) {
    // The text is produced twice, never held: once to count it (a zstd frame
    // states its content size, which readers may rely on), once into the
    // compressor. A manifest of millions of keys costs its compressed size.
    let mut count = Counter(0);
    manifest.write_json(&mut count).expect("JSON into a counter");
    let mut z = zstd::stream::Encoder::new(Vec::new(), MANIFEST_LEVEL).expect("zstd level is valid");
    z.set_pledged_src_size(Some(count.0))
        .expect("size pledged before data");
    z.include_contentsize(true).expect("zstd frame parameter");
    // serde_json writes a few bytes at a time; each write straight into the
    // encoder was a zstd call, half of a GGUF -> tpack conversion.
    let mut buffered = std::io::BufWriter::with_capacity(1 << 20, z);
    manifest.write_json(&mut buffered).expect("JSON into memory");
    let z = buffered
        .into_inner()
        .map_err(|e| e.into_error())
        .expect("flush into memory");
    (z.finish().expect("zstd finishes into memory"), count.0)
}

/// A writer that only counts.
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The slot for a manifest of `stored` bytes written at `offset`.
pub fn slot_for(generation: u64, offset: u64, stored: &[u8], raw_len: u64) -> Slot {
    Slot {
        generation,
        manifest_offset: offset,
        manifest_len: stored.len() as u64,
        committed_len: offset + stored.len() as u64,
        manifest_raw_len: raw_len,
        manifest_codec: MANIFEST_ZSTD,
        manifest_crc: crc32c::crc32c(stored),
    }
}

/// A [`Sink`] that writes a new tpack file atomically.
pub struct TpackWriter {
    /// The output until `begin` starts writing it.
    target: Option<Box<dyn WriteTarget>>,
    name: PathBuf,
    level: Option<i32>,
    out: Option<ChunkWriter<TargetWriter>>,
    manifest: Manifest,
    plan: Vec<TensorInfo>,
}

impl TpackWriter {
    /// A writer for the local file `target`, compressing at [`DEFAULT_LEVEL`].
    pub fn new(target: &Path) -> TpackWriter {
        Self::to_target(Box::new(FileTarget::new(target)))
    }

    /// A writer into `target` (which must offer `write_at`, for the commit
    /// slot written last), compressing at [`DEFAULT_LEVEL`].
    pub fn to_target(target: Box<dyn WriteTarget>) -> TpackWriter {
        TpackWriter {
            name: target.name().to_path_buf(),
            target: Some(target),
            level: Some(DEFAULT_LEVEL),
            out: None,
            manifest: Manifest::default(),
            plan: Vec::new(),
        }
    }

    /// Compression level (zstd 1–22), or `None` to store every chunk raw.
    pub fn level(mut self, level: Option<i32>) -> Self {
        self.level = level;
        self
    }
}

impl Sink for TpackWriter {
    fn begin(&mut self, plan: &Plan) -> Result<()> {
        let mut names = std::collections::HashSet::new();
        for t in &plan.tensors {
            if t.name.is_empty() || !names.insert(t.name.as_str()) {
                return Err(Error::unsupported(
                    code::NAME_NOT_HELD,
                    format!("tpack: tensor name '{}' is empty or repeated", t.name),
                ));
            }
        }
        let mut file = self
            .target
            .take()
            .ok_or_else(|| Error::usage(code::CALL_ORDER, "tpack writer begun twice"))?;
        file.write_all(&preamble())?;
        let mut out = ChunkWriter::new(TargetWriter(file), DATA_START, self.level);
        // Large metadata arrays (a vocabulary) go first, as chunks (§2.3).
        let stored = out.write_arrays(&plan.metadata, &self.name)?;
        self.out = Some(out);
        self.plan = plan.tensors.clone();
        self.manifest = Manifest {
            metadata: plan.metadata.clone(),
            tensors: Vec::with_capacity(plan.tensors.len()),
            stored,
        };
        Ok(())
    }

    fn write_tensor(&mut self, index: usize, data: TensorData<'_>) -> Result<()> {
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| Error::usage(code::CALL_ORDER, "tpack writer not begun"))?;
        let info = self
            .plan
            .get(index)
            .filter(|_| index == self.manifest.tensors.len())
            .ok_or_else(|| {
                Error::usage(
                    code::CALL_ORDER,
                    format!("tpack writer got tensor #{index} out of order"),
                )
            })?;
        let chunks = out.write_tensor(info, data, &self.name)?;
        let mut info = info.clone();
        info.file_offset = None;
        self.manifest.tensors.push(Entry { info, chunks });
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        let mut out = self
            .out
            .take()
            .ok_or_else(|| Error::usage(code::CALL_ORDER, "tpack writer not begun"))?;
        let (stored, raw_len) = manifest_bytes(&self.manifest);
        let offset = out.write_blob(&stored, &self.name)?;
        let slot = slot_for(1, offset, &stored, raw_len);
        let TargetWriter(mut file) = out.into_inner();
        file.write_at(SLOT_A, &slot.encode())?;
        file.commit()
    }
}
