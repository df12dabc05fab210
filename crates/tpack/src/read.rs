//! Reading tpack: the current commit, the manifest, and tensors chunk by chunk
//! with every chunk's crc32c checked before it is decoded.

use crate::codec::{decode, decode_into, Codec};
use crate::format::{check_preamble, current_slot, Slot, MANIFEST_RAW, MANIFEST_ZSTD};
use crate::manifest::{Chunk, Entry, Manifest};
use crate::rules;
use crate::stored::unpack;
use rayon::prelude::*;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use tensorcast_core::code;
use tensorcast_core::{
    Array, Bytes, Error, FormatError, Limits, Metadata, RawLocation, Result, Source, TensorBuf, TensorData,
    TensorInfo, Value,
};

/// An open tpack file.
pub struct TpackFile {
    path: PathBuf,
    /// Shared with decoding tasks, which outlive any one borrow of the file.
    bytes: Arc<Bytes>,
    slot: Slot,
    slot_index: usize,
    manifest: Manifest,
    infos: Vec<TensorInfo>,
    limits: Limits,
    /// For each tensor stored by reference to an earlier one's chunks (tied
    /// weights), that earlier tensor's index.
    shares: Vec<Option<usize>>,
}

fn err(rule: &'static str, detail: impl Into<String>) -> FormatError {
    FormatError::new(crate::FORMAT, rule, detail)
}

impl TpackFile {
    /// Opens and validates `path` (chunk contents are checked when read).
    pub fn open(path: &Path, limits: &Limits) -> Result<TpackFile> {
        let bytes = Bytes::open(path)?;
        Self::from_bytes(path, bytes, limits)
    }

    /// Validates bytes already in hand; `path` only names them in errors.
    pub fn from_bytes(path: &Path, bytes: Bytes, limits: &Limits) -> Result<TpackFile> {
        let (slot, slot_index, mut manifest) =
            parse(&bytes, limits).map_err(|e| Error::from(e.in_file(path)))?;
        load_stored_arrays(&bytes, &mut manifest, limits).map_err(|e| Error::from(e.in_file(path)))?;
        let infos = manifest.tensors.iter().map(|e| e.info.clone()).collect();
        let shares = shared_chunks(&manifest);
        Ok(TpackFile {
            path: path.to_path_buf(),
            bytes: Arc::new(bytes),
            slot,
            slot_index,
            manifest,
            infos,
            limits: limits.clone(),
            shares,
        })
    }

    /// The commit this file was opened at, and which slot (0 = A, 1 = B) holds it.
    pub fn commit(&self) -> (Slot, usize) {
        (self.slot, self.slot_index)
    }

    /// The manifest (tensors with their chunks, metadata).
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The stored bytes of a chunk, after checking its crc32c (T11).
    pub fn chunk_bytes(&self, chunk: &Chunk) -> Result<Cow<'_, [u8]>, FormatError> {
        checked(&self.bytes, chunk)
    }

    /// Reads bytes `start..start + out.len()` of tensor `index` into `out`,
    /// decoding only the chunks that cover them, in parallel; chunks wholly
    /// inside the range decode straight into `out`. Every chunk touched is
    /// checked against its crc32c first.
    pub fn read_range(&self, index: usize, start: u64, out: &mut [u8]) -> Result<()> {
        let entry = self.entry(index)?;
        let end = start
            .checked_add(out.len() as u64)
            .filter(|&e| e <= entry.info.nbytes);
        let Some(end) = end else {
            return Err(Error::usage(
                code::CALL_ORDER,
                format!(
                    "{}: tensor '{}' has {} bytes; bytes {start}..+{} were asked for",
                    self.path.display(),
                    entry.info.name,
                    entry.info.nbytes,
                    out.len()
                ),
            ));
        };
        // Pair every chunk overlapping the range with its piece of `out`.
        let mut pieces = Vec::new();
        let (mut rest, mut at) = (out, 0u64);
        for (k, c) in entry.chunks.iter().enumerate() {
            let (lo, hi) = (at.max(start), (at + c.decoded_len).min(end));
            if lo < hi {
                let (piece, tail) = std::mem::take(&mut rest).split_at_mut((hi - lo) as usize);
                pieces.push((k, c, lo - at, piece));
                rest = tail;
            }
            at += c.decoded_len;
        }
        let bytes: &Bytes = &self.bytes;
        pieces
            .into_par_iter()
            .try_for_each(|(k, c, skip, piece)| {
                checked(bytes, c)
                    .and_then(|stored| {
                        if skip == 0 && piece.len() as u64 == c.decoded_len {
                            decode_into(&stored, c.codec, piece)
                        } else {
                            let whole = decode(&stored, c.codec, c.decoded_len)?;
                            piece.copy_from_slice(&whole[skip as usize..skip as usize + piece.len()]);
                            Ok(())
                        }
                    })
                    .map_err(|mut e| {
                        e.detail = format!("chunk {k}: {}", e.detail);
                        e
                    })
            })
            .map_err(|e| Error::from(e.tensor(&entry.info.name).in_file(&self.path)))
    }

    /// Reads all of tensor `index` into `out` (as long as the tensor).
    pub fn read_tensor(&self, index: usize, out: &mut [u8]) -> Result<()> {
        let nbytes = self.entry(index)?.info.nbytes;
        if out.len() as u64 != nbytes {
            return Err(Error::usage(
                code::CALL_ORDER,
                format!(
                    "{}: tensor #{index} has {nbytes} bytes, the buffer {}",
                    self.path.display(),
                    out.len()
                ),
            ));
        }
        self.read_range(index, 0, out)?;
        self.check_sparse(index, out)
    }

    /// A whole sparse tensor's bytes checked against §2.2 (T17).
    fn check_sparse(&self, index: usize, bytes: &[u8]) -> Result<()> {
        let info = &self.entry(index)?.info;
        tensorcast_core::sparse::check(info, bytes)
            .map_err(|d| Error::from(err(rules::SPARSE, d).tensor(&info.name).in_file(&self.path)))
    }

    /// Reads all of tensor `index` into a new buffer (huge pages when large,
    /// see [`TensorBuf`]), refused over [`Limits::max_alloc_bytes`].
    pub fn read_tensor_owned(&self, index: usize) -> Result<TensorBuf> {
        let info = &self.entry(index)?.info;
        self.limits
            .check_alloc(info.nbytes, "reading a whole tensor")
            .map_err(|d| {
                Error::from(
                    err(rules::ALLOC_LIMIT, d)
                        .limit("max_alloc_bytes")
                        .tensor(&info.name)
                        .in_file(&self.path),
                )
            })?;
        let mut out = TensorBuf::zeroed(info.nbytes as usize).map_err(|e| Error::io(&self.path, e))?;
        self.read_range(index, 0, &mut out)?;
        self.check_sparse(index, &out)?;
        Ok(out)
    }

    /// Checks every chunk of every tensor (on all cores); returns one line per
    /// damaged chunk, in file order.
    pub fn verify(&self) -> Vec<String> {
        let all: Vec<(usize, usize, &Chunk)> = self
            .manifest
            .tensors
            .iter()
            .enumerate()
            .flat_map(|(i, e)| e.chunks.iter().enumerate().map(move |(k, c)| (i, k, c)))
            .collect();
        let damaged: Vec<(usize, String)> = all
            .par_iter()
            .filter_map(|&(i, k, c)| {
                let name = &self.manifest.tensors[i].info.name;
                // A raw chunk's crc is its whole check (T14 held at open):
                // decoding it was a copy of every raw byte into a new buffer.
                let problem = match c.codec {
                    Codec::Raw => checked(&self.bytes, c).err(),
                    _ => checked_decode(&self.bytes, c).err(),
                };
                problem.map(|problem| (i, format!("tensor '{name}' chunk {k}: {problem}")))
            })
            .collect();
        let mut sound = vec![true; self.manifest.tensors.len()];
        for &(i, _) in &damaged {
            sound[i] = false;
        }
        let mut damage: Vec<String> = damaged.into_iter().map(|(_, d)| d).collect();
        // Sparse tensors whose chunks are sound: their indices too (T17).
        for (i, e) in self.manifest.tensors.iter().enumerate() {
            if e.info.sparse.is_some() && sound[i] {
                if let Err(problem) = self.tensor_data(i).and_then(|d| d.for_each_chunk(|_| Ok(()))) {
                    damage.push(format!("tensor '{}': {problem}", e.info.name));
                }
            }
        }
        damage
    }

    fn entry(&self, index: usize) -> Result<&Entry> {
        self.manifest.tensors.get(index).ok_or_else(|| {
            Error::usage(
                code::CALL_ORDER,
                format!("{}: no tensor #{index}", self.path.display()),
            )
        })
    }
}

/// Which tensors reuse an earlier tensor's chunks (same first chunk).
fn shared_chunks(manifest: &Manifest) -> Vec<Option<usize>> {
    let mut first = std::collections::HashMap::new();
    manifest
        .tensors
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let c = e.chunks.first()?;
            let earlier = *first.entry(c.offset).or_insert(i);
            (earlier != i).then_some(earlier)
        })
        .collect()
}

/// Reads the metadata arrays stored as chunks (§2.3) into the manifest's
/// metadata, in parallel: each chunk's crc checked (T11), decoded (T13,
/// T14), and the whole unpacked (T18). Their packed bytes together are held
/// to the manifest's own limit (`max_header_bytes`), since a manifest would
/// otherwise have carried them.
fn load_stored_arrays(bytes: &Bytes, manifest: &mut Manifest, limits: &Limits) -> Result<(), FormatError> {
    let mut total = 0u64;
    for s in &manifest.stored {
        total = total.saturating_add(s.packed_len());
        if total > limits.max_header_bytes {
            return Err(err(
                rules::MANIFEST,
                format!(
                    "metadata arrays of {total}+ bytes exceed the {}-byte limit",
                    limits.max_header_bytes
                ),
            )
            .key(&s.key)
            .limit("max_header_bytes"));
        }
    }
    let arrays: Vec<Array> = manifest
        .stored
        .par_iter()
        .map(|s| {
            let mut packed = vec![0u8; s.packed_len() as usize];
            let mut rest = packed.as_mut_slice();
            for c in &s.chunks {
                let (piece, tail) = std::mem::take(&mut rest).split_at_mut(c.decoded_len as usize);
                checked(bytes, c)
                    .and_then(|stored| decode_into(&stored, c.codec, piece))
                    .map_err(|e| e.key(&s.key))?;
                rest = tail;
            }
            unpack(s.kind, s.len, packed).map_err(|e| e.key(&s.key))
        })
        .collect::<Result<_, _>>()?;
    for (s, array) in manifest.stored.iter().zip(arrays) {
        manifest.metadata.insert(&s.key, Value::Array(array));
    }
    Ok(())
}

fn parse(bytes: &[u8], limits: &Limits) -> Result<(Slot, usize, Manifest), FormatError> {
    check_preamble(bytes)?;
    let (slot, index) = current_slot(bytes)?;
    let start = slot.manifest_offset as usize;
    let stored = &bytes[start..start + slot.manifest_len as usize];
    if crc32c::crc32c(stored) != slot.manifest_crc {
        return Err(
            err(rules::MANIFEST_CRC, "the manifest does not match its crc32c").at(slot.manifest_offset)
        );
    }
    if slot.manifest_raw_len > limits.max_header_bytes {
        return Err(err(
            rules::MANIFEST,
            format!(
                "a {}-byte manifest exceeds the {}-byte limit",
                slot.manifest_raw_len, limits.max_header_bytes
            ),
        )
        .limit("max_header_bytes"));
    }
    let text = match slot.manifest_codec {
        MANIFEST_RAW => stored.to_vec(),
        MANIFEST_ZSTD => {
            // Into a buffer of the stated size (bounded above), in one call:
            // a stream read zeroed and regrew its buffer, a fifth of
            // inspecting a 262k-token vocabulary.
            let mut out = Vec::with_capacity(slot.manifest_raw_len as usize);
            zstd::bulk::Decompressor::new()
                .and_then(|mut d| d.decompress_to_buffer(stored, &mut out))
                .map_err(|e| err(rules::MANIFEST, format!("manifest does not decompress: {e}")))?;
            out
        }
        other => return Err(err(rules::MANIFEST, format!("unknown manifest codec {other}"))),
    };
    let manifest = Manifest::parse(&text, slot.committed_len)?;
    if manifest.tensors.len() as u64 > limits.max_tensors {
        return Err(err(
            rules::MANIFEST,
            format!("more than {} tensors", limits.max_tensors),
        )
        .limit("max_tensors"));
    }
    Ok((slot, index, manifest))
}

impl Source for TpackFile {
    fn format(&self) -> &'static str {
        crate::FORMAT
    }

    fn tensors(&self) -> &[TensorInfo] {
        &self.infos
    }

    fn metadata(&self) -> &Metadata {
        &self.manifest.metadata
    }

    fn storage_note(&self, index: usize) -> Option<String> {
        let e = self.manifest.tensors.get(index)?;
        let stored: u64 = e.chunks.iter().map(|c| c.stored_len).sum();
        let mut codecs: Vec<&str> = e.chunks.iter().map(|c| c.codec.name()).collect();
        codecs.dedup();
        let ratio = if stored == 0 {
            1.0
        } else {
            e.info.nbytes as f64 / stored as f64
        };
        let shared = match self.shares[index] {
            Some(j) => format!(" (stored once with {})", self.manifest.tensors[j].info.name),
            None => String::new(),
        };
        Some(format!(
            "{} {} chunks {ratio:.2}x{shared}",
            codecs.join("+"),
            e.chunks.len()
        ))
    }

    /// Raw chunks stored back to back are one range of the file (their
    /// crc32c is then the reader's to check: `verify` does).
    fn raw_location(&self, index: usize) -> Option<RawLocation<'_>> {
        let entry = self.manifest.tensors.get(index)?;
        let chunks = &entry.chunks;
        (contiguous_raw(chunks) && entry.info.sparse.is_none()).then(|| RawLocation {
            file: None,
            offset: chunks.first().map_or(0, |c| c.offset),
        })
    }

    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        let entry = self.entry(index)?;
        let data = self.stored_data(index)?;
        tensorcast_core::sparse::checked(&entry.info, data, &self.limits, crate::FORMAT, rules::SPARSE)
            .map_err(|e| e.in_file(&self.path))
    }
}

impl TpackFile {
    /// A tensor's bytes as its chunks hold them.
    fn stored_data(&self, index: usize) -> Result<TensorData<'_>> {
        let entry = self.entry(index)?;
        let name = entry.info.name.clone();
        let path = self.path.clone();
        // Raw chunks of a mapped file are handed out as one range after
        // their crcs are checked; a ranged object's would be fetched twice
        // that way, so they take the chunk path (fetched once, checked,
        // several in flight).
        if contiguous_raw(&entry.chunks) && !self.bytes.is_ranged() {
            for c in &entry.chunks {
                self.chunk_bytes(c)
                    .map_err(|e| Error::from(e.tensor(&name).in_file(&path)))?;
            }
            let offset = entry.chunks.first().map_or(0, |c| c.offset);
            return self
                .bytes
                .tensor_data(offset, entry.info.nbytes)
                .ok_or_else(|| Error::usage(code::CALL_ORDER, "chunk range outside the file"));
        }
        Ok(TensorData::Chunks(Box::new(ParallelDecode {
            bytes: Arc::clone(&self.bytes),
            chunks: entry.chunks.clone().into(),
            next: 0,
            window: (rayon::current_num_threads() * 2).max(2),
            pending: VecDeque::new(),
            name,
            path,
        })))
    }
}

/// Whether a tensor's chunks are stored raw, one after another: its bytes
/// are then one range of the file.
fn contiguous_raw(chunks: &[Chunk]) -> bool {
    chunks.iter().all(|c| c.codec == Codec::Raw)
        && chunks
            .windows(2)
            .all(|w| w[0].offset + w[0].stored_len == w[1].offset)
}

/// A chunk's stored bytes, after checking its crc32c (T11).
/// The manifest check proved the range lies inside the file; a ranged
/// object's chunk is fetched here.
fn checked<'b>(bytes: &'b Bytes, chunk: &Chunk) -> Result<Cow<'b, [u8]>, FormatError> {
    let stored = match bytes.read_range(chunk.offset, chunk.stored_len) {
        Some(Ok(stored)) => stored,
        Some(Err(e)) => {
            return Err(err(
                rules::CHUNK_CRC,
                format!("chunk at byte {} could not be read: {e}", chunk.offset),
            ))
        }
        None => {
            return Err(err(
                rules::CHUNK_CRC,
                format!("chunk at byte {} lies outside the file", chunk.offset),
            ))
        }
    };
    let crc = crc32c::crc32c(&stored);
    if crc != chunk.crc {
        return Err(err(
            rules::CHUNK_CRC,
            format!(
                "chunk at byte {} ({} bytes) has crc32c {crc:08x}, the manifest says {:08x}",
                chunk.offset, chunk.stored_len, chunk.crc
            ),
        ));
    }
    Ok(stored)
}

type Decoded = std::result::Result<Vec<u8>, FormatError>;

/// A whole chunk, crc-checked (T11) and decoded.
fn checked_decode(bytes: &Bytes, chunk: &Chunk) -> Decoded {
    checked(bytes, chunk).and_then(|stored| decode(&stored, chunk.codec, chunk.decoded_len))
}

/// Decodes a tensor's chunks on the thread pool ahead of the consumer and
/// hands them out in order, so decoding overlaps with whatever the consumer
/// does with each chunk (writing it, usually). At most `window` chunks (two
/// per thread) are decoded or in flight at once.
///
/// A consumer that is itself a pool thread (a batch conversion) must not
/// block waiting for tasks queued behind it, so there the chunks are decoded
/// a window at a time with a parallel iterator, which runs queued work while
/// it waits.
struct ParallelDecode {
    bytes: Arc<Bytes>,
    chunks: Arc<[Chunk]>,
    next: usize,
    window: usize,
    pending: VecDeque<Pending>,
    name: String,
    path: PathBuf,
}

enum Pending {
    Spawned(mpsc::Receiver<Decoded>),
    Done(Decoded),
}

impl ParallelDecode {
    /// Tops up the window of chunks being decoded.
    fn schedule(&mut self) {
        let room = self.window.saturating_sub(self.pending.len());
        let end = (self.next + room).min(self.chunks.len());
        if end == self.next {
            return;
        }
        if rayon::current_thread_index().is_some() {
            let bytes: &Bytes = &self.bytes;
            let done: Vec<Decoded> = self.chunks[self.next..end]
                .par_iter()
                .map(|c| checked_decode(bytes, c))
                .collect();
            self.pending.extend(done.into_iter().map(Pending::Done));
        } else {
            for k in self.next..end {
                let (tx, rx) = mpsc::sync_channel(1);
                let (bytes, chunks) = (Arc::clone(&self.bytes), Arc::clone(&self.chunks));
                rayon::spawn(move || {
                    // The receiver is gone only when the consumer stopped early.
                    let _ = tx.send(checked_decode(&bytes, &chunks[k]));
                });
                self.pending.push_back(Pending::Spawned(rx));
            }
        }
        self.next = end;
    }
}

impl Iterator for ParallelDecode {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.schedule();
        let decoded = match self.pending.pop_front()? {
            Pending::Done(d) => d,
            Pending::Spawned(rx) => rx
                .recv()
                .unwrap_or_else(|_| Err(err(rules::CODEC, "a decoding task stopped without a result"))),
        };
        match decoded {
            Ok(bytes) => Some(Ok(bytes)),
            Err(e) => {
                // Stop after the first damaged chunk.
                self.next = self.chunks.len();
                self.pending.clear();
                Some(Err(Error::from(e.tensor(&self.name).in_file(&self.path))))
            }
        }
    }
}
