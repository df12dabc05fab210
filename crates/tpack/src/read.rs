//! Reading tpack: the current commit, the manifest, and tensors chunk by chunk
//! with every chunk's crc32c checked before it is decoded.

use crate::codec::{decode, Codec};
use crate::format::{check_preamble, current_slot, Slot, MANIFEST_RAW, MANIFEST_ZSTD};
use crate::manifest::{Chunk, Entry, Manifest};
use crate::rules;
use rayon::prelude::*;
use std::collections::VecDeque;
use std::io::Read;
use std::path::{Path, PathBuf};
use tensorcast_core::{Bytes, Error, FormatError, Limits, Metadata, Result, Source, TensorData, TensorInfo};

/// An open tpack file.
pub struct TpackFile {
    path: PathBuf,
    bytes: Bytes,
    slot: Slot,
    slot_index: usize,
    manifest: Manifest,
    infos: Vec<TensorInfo>,
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
        let (slot, slot_index, manifest) = parse(&bytes, limits).map_err(|e| Error::from(e.in_file(path)))?;
        let infos = manifest.tensors.iter().map(|e| e.info.clone()).collect();
        Ok(TpackFile {
            path: path.to_path_buf(),
            bytes,
            slot,
            slot_index,
            manifest,
            infos,
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
    pub fn chunk_bytes(&self, chunk: &Chunk) -> Result<&[u8], FormatError> {
        let start = chunk.offset as usize;
        let stored = &self.bytes[start..start + chunk.stored_len as usize];
        let crc = crc32c::crc32c(stored);
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

    /// Checks every chunk of every tensor; returns one line per damaged chunk.
    pub fn verify(&self) -> Vec<String> {
        let mut damage = Vec::new();
        for e in &self.manifest.tensors {
            for (k, c) in e.chunks.iter().enumerate() {
                let checked = self
                    .chunk_bytes(c)
                    .and_then(|s| decode(s, c.codec, c.decoded_len).map(|_| ()));
                if let Err(problem) = checked {
                    damage.push(format!("tensor '{}' chunk {k}: {}", e.info.name, problem));
                }
            }
        }
        damage
    }

    fn entry(&self, index: usize) -> Result<&Entry> {
        self.manifest
            .tensors
            .get(index)
            .ok_or_else(|| Error::Unsupported(format!("{}: no tensor #{index}", self.path.display())))
    }
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
        ));
    }
    let text = match slot.manifest_codec {
        MANIFEST_RAW => stored.to_vec(),
        MANIFEST_ZSTD => {
            let mut out = Vec::new();
            zstd::stream::read::Decoder::with_buffer(stored)
                .and_then(|d| d.take(slot.manifest_raw_len).read_to_end(&mut out))
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
        ));
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
        Some(format!(
            "{} {} chunks {ratio:.2}x",
            codecs.join("+"),
            e.chunks.len()
        ))
    }

    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        let entry = self.entry(index)?;
        let name = entry.info.name.clone();
        let path = self.path.clone();
        let contiguous_raw = entry.chunks.iter().all(|c| c.codec == Codec::Raw)
            && entry
                .chunks
                .windows(2)
                .all(|w| w[0].offset + w[0].stored_len == w[1].offset);
        if contiguous_raw {
            for c in &entry.chunks {
                self.chunk_bytes(c)
                    .map_err(|e| Error::from(e.tensor(&name).in_file(&path)))?;
            }
            let offset = entry.chunks.first().map_or(0, |c| c.offset);
            return self
                .bytes
                .tensor_data(offset, entry.info.nbytes)
                .ok_or_else(|| Error::Unsupported("chunk range outside the file".into()));
        }
        Ok(TensorData::Chunks(Box::new(ParallelDecode {
            file: self,
            chunks: &entry.chunks,
            next: 0,
            ready: VecDeque::new(),
            name,
            path,
        })))
    }
}

/// Decodes a tensor's chunks a batch at a time on all cores, handing them out
/// in order; at most one batch (2 chunks per thread) is held.
struct ParallelDecode<'a> {
    file: &'a TpackFile,
    chunks: &'a [Chunk],
    next: usize,
    ready: VecDeque<Result<Vec<u8>>>,
    name: String,
    path: PathBuf,
}

impl Iterator for ParallelDecode<'_> {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ready.is_empty() && self.next < self.chunks.len() {
            let batch = (rayon::current_num_threads() * 2).max(1);
            let end = (self.next + batch).min(self.chunks.len());
            let (file, name, path) = (self.file, &self.name, &self.path);
            let decoded: Vec<Result<Vec<u8>>> = self.chunks[self.next..end]
                .par_iter()
                .map(|c| {
                    file.chunk_bytes(c)
                        .and_then(|stored| decode(stored, c.codec, c.decoded_len))
                        .map_err(|e| Error::from(e.tensor(name).in_file(path)))
                })
                .collect();
            self.ready.extend(decoded);
            self.next = end;
        }
        let item = self.ready.pop_front()?;
        if item.is_err() {
            // Stop after the first damaged chunk.
            self.next = self.chunks.len();
            self.ready.clear();
        }
        Some(item)
    }
}
