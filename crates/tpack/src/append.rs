//! Appending tensors to an existing file without touching its committed bytes
//! (spec §4): new chunks and manifest past the committed length, fsync, then
//! the other commit slot, fsync. A crash at any instant leaves the old or the
//! new contents.

use crate::format::{SLOT_A, SLOT_BYTES};
use crate::manifest::Entry;
use crate::read::TpackFile;
use crate::rules;
use crate::write::{manifest_bytes, slot_for, ChunkWriter};
use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom};
use std::path::Path;
use tensorcast_core::edit::{apply_edits, kept_mode, EditReport, MetaEdit, Spliced};
use tensorcast_core::{crash_point, Error, FormatError, Limits, Result, Source};

/// Adds every tensor and metadata entry of `source` to the tpack file at
/// `path`. `level`: zstd level, or `None` for raw chunks.
pub fn append(path: &Path, source: &dyn Source, level: Option<i32>, limits: &Limits) -> Result<()> {
    let io = |e| Error::io(path, e);
    let mut file = OpenOptions::new().read(true).write(true).open(path).map_err(io)?;
    // One append at a time (an advisory lock, held until `file` closes): a
    // second waits for the first to commit, then reads that commit and
    // appends after it. Two at once wrote over each other's chunks past the
    // same committed length and one append was lost.
    file.lock().map_err(io)?;
    let current = TpackFile::open(path, limits)?;
    let (slot, slot_index) = current.commit();
    let mut manifest = current.manifest().clone();
    drop(current);
    for t in source.tensors() {
        if manifest.tensors.iter().any(|e| e.info.name == t.name) {
            return Err(FormatError::new(
                crate::FORMAT,
                rules::APPEND_DUPLICATE,
                "the file already has a tensor of this name",
            )
            .tensor(&t.name)
            .in_file(path)
            .into());
        }
    }
    // Anything past the committed length is a crashed append's leftovers.
    file.seek(SeekFrom::Start(slot.committed_len)).map_err(io)?;
    let mut out = ChunkWriter::new(&mut file, slot.committed_len, level);
    for (i, info) in source.tensors().iter().enumerate() {
        crash_point("append-tensor");
        let chunks = out.write_tensor(info, source.tensor_data(i)?, path)?;
        let mut info = info.clone();
        info.file_offset = None;
        manifest.tensors.push(Entry { info, chunks });
    }
    for (k, v) in source.metadata().iter() {
        manifest.set_metadata(k, v.clone());
    }
    // The new large arrays as chunks; the old ones stay where they are.
    let arrays = out.write_arrays(source.metadata(), path)?;
    manifest.stored.extend(arrays);
    let (stored, raw_len) = manifest_bytes(&manifest);
    let offset = out.write_blob(&stored, path)?;
    drop(out);
    publish(&file, path, slot, slot_index, offset, &stored, raw_len)
}

/// Steps 3–5 of an append (spec §4): the manifest written at `offset` is
/// made durable, then named by the other slot, then that is made durable;
/// the file is cut at the new committed length.
fn publish(
    file: &std::fs::File,
    path: &Path,
    slot: crate::format::Slot,
    slot_index: usize,
    offset: u64,
    stored: &[u8],
    raw_len: u64,
) -> Result<()> {
    let io = |e| Error::io(path, e);
    crash_point("append-manifest");
    file.sync_all().map_err(io)?;
    let next = slot_for(slot.generation + 1, offset, stored, raw_len);
    let other = SLOT_A + ((1 - slot_index) * SLOT_BYTES) as u64;
    crash_point("append-slot");
    write_at(file, other, &next.encode()).map_err(io)?;
    crash_point("append-slot-written");
    file.sync_all().map_err(io)?;
    crash_point("append-committed");
    // Leftovers of an earlier crashed, longer append are past the new end.
    file.set_len(next.committed_len).map_err(io)?;
    Ok(())
}

/// Rewrites the metadata of the tpack file at `input` as `edits` say, the
/// tensors untouched: when `output` is `input`, in place, as one more
/// commit (spec §4: a crash leaves the old or the new metadata); otherwise
/// into a copy at `output` (its bytes shared with the input where the file
/// system can, see `tensorcast_core::edit`) that is committed there.
pub fn edit_metadata(input: &Path, edits: &[MetaEdit], output: &Path, limits: &Limits) -> Result<EditReport> {
    let io = |e| Error::io(input, e);
    if kept_mode(input, output).is_some() {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(input)
            .map_err(io)?;
        // One commit at a time, as appends take turns.
        file.lock().map_err(io)?;
        let header_bytes = commit_edit(&mut file, input, input, edits, limits)?;
        return Ok(EditReport {
            header_bytes,
            data_bytes: 0,
            in_place: true,
        });
    }
    let src = std::fs::File::open(input).map_err(io)?;
    src.lock_shared().map_err(io)?;
    let len = src.metadata().map_err(io)?.len();
    let spliced = Spliced::create(output, &[], &src, 0, None)?;
    let mut copy = spliced.file().try_clone().map_err(|e| Error::io(output, e))?;
    let header_bytes = commit_edit(&mut copy, input, output, edits, limits)?;
    spliced.commit()?;
    Ok(EditReport {
        header_bytes,
        data_bytes: len,
        in_place: false,
    })
}

/// Commits into `file` (whose committed bytes are those of `input`) a
/// manifest with the edited metadata; returns the bytes written.
fn commit_edit(
    file: &mut std::fs::File,
    input: &Path,
    path: &Path,
    edits: &[MetaEdit],
    limits: &Limits,
) -> Result<u64> {
    let current = TpackFile::open(input, limits)?;
    let (slot, slot_index) = current.commit();
    let mut manifest = current.manifest().clone();
    drop(current);
    manifest.metadata = apply_edits(input, &manifest.metadata, edits, true)?;
    let touched: HashSet<&str> = edits.iter().map(MetaEdit::key).collect();
    // An edited or deleted key's stored array is no longer the value.
    manifest.stored.retain(|s| !touched.contains(s.key.as_str()));
    let mut changed = tensorcast_core::Metadata::new();
    for (k, v) in manifest.metadata.iter().filter(|(k, _)| touched.contains(k)) {
        changed.push_str(k, v.clone());
    }
    file.seek(SeekFrom::Start(slot.committed_len))
        .map_err(|e| Error::io(path, e))?;
    let mut out = ChunkWriter::new(&mut *file, slot.committed_len, None);
    let arrays = out.write_arrays(&changed, path)?;
    manifest.stored.extend(arrays);
    let (stored, raw_len) = manifest_bytes(&manifest);
    let offset = out.write_blob(&stored, path)?;
    let written = out_len(offset, &stored, slot.committed_len);
    drop(out);
    publish(file, path, slot, slot_index, offset, &stored, raw_len)?;
    Ok(written)
}

/// Bytes an edit added past the committed length.
fn out_len(manifest_at: u64, stored: &[u8], committed: u64) -> u64 {
    manifest_at + stored.len() as u64 - committed
}

#[cfg(unix)]
fn write_at(file: &std::fs::File, offset: u64, buf: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.write_all_at(buf, offset)
}

#[cfg(not(unix))]
fn write_at(mut file: &std::fs::File, offset: u64, buf: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(buf)
}
