//! Editing a GGUF's key/values without rewriting its tensors: a new header
//! (untouched entries copied as their bytes, changed ones re-encoded, the
//! tensor infos as they were) in front of the data section, which is carried
//! over unchanged and starts at the same offset modulo 4096, so file systems
//! that share extents share it (see `tensorcast_core::edit`).
//!
//! Keeping that offset takes a padding entry: the last key/value is
//! [`PADDING_KEY`], a string of spaces whose length puts the end of the
//! header exactly where the data must start. llama.cpp and gguf-py read it
//! as one more string key; an edit drops and recomputes it.

use crate::read::parse;
use crate::value::{encode, encode_str, type_of};
use std::collections::HashSet;
use std::path::Path;
use tensorcast_core::edit::{apply_edits, congruent_offset, EditReport, MetaEdit, Spliced};
use tensorcast_core::{code, Bytes, Error, Limits, Result, Value};

/// The key of the padding entry an edit adds to keep the data section's
/// place modulo 4096 (its value is blank: spaces).
pub const PADDING_KEY: &str = "tensorcast.header_padding";

/// Keys an edit may not touch: the data layout depends on them.
const LAYOUT_KEYS: [&str; 2] = ["general.alignment", PADDING_KEY];

/// Bytes of a string key/value entry with an empty value.
fn entry_overhead(key: &str) -> u64 {
    8 + key.len() as u64 + 4 + 8
}

/// Applies `edits` to the GGUF at `input`, writing `output` (or replacing
/// `input` when they are the same path).
pub fn edit(input: &Path, edits: &[MetaEdit], output: &Path, limits: &Limits) -> Result<EditReport> {
    let file = std::fs::File::open(input).map_err(|e| Error::io(input, e))?;
    let bytes = Bytes::open(input)?;
    let parsed = parse(&bytes, limits).map_err(|e| e.in_file(input))?;
    if parsed.version == 1 || parsed.big_endian {
        return Err(Error::unsupported(
            code::NO_EDIT,
            format!(
                "{}: a {} GGUF is edited by converting it to a current one first",
                input.display(),
                if parsed.big_endian {
                    "big-endian"
                } else {
                    "version 1"
                }
            ),
        ));
    }
    if let Some(e) = edits.iter().find(|e| LAYOUT_KEYS.contains(&e.key())) {
        return Err(Error::usage(
            code::BAD_OPTION,
            format!(
                "{}: metadata key `{}` places the tensor data; it is not edited",
                input.display(),
                e.key()
            ),
        ));
    }
    let mut old = parsed.metadata.clone();
    old.remove(PADDING_KEY);
    let new = apply_edits(input, &old, edits, true)?;
    let touched: HashSet<&str> = edits.iter().map(MetaEdit::key).collect();
    let raw_entry = |key: &str| -> Option<&[u8]> {
        let i = parsed.metadata.iter().position(|(k, _)| k == key)?;
        Some(&bytes[parsed.kv_bounds[i]..parsed.kv_bounds[i + 1]])
    };

    let mut kvs = Vec::new();
    for (key, value) in new.iter() {
        match raw_entry(key).filter(|_| !touched.contains(key)) {
            Some(raw) => kvs.extend_from_slice(raw),
            None => encode_entry(key, value, &mut kvs),
        }
    }
    let infos = &bytes[*parsed.kv_bounds.last().unwrap_or(&24)..parsed.header_end as usize];
    let data_start = parsed
        .header_end
        .checked_next_multiple_of(parsed.alignment)
        .ok_or_else(|| Error::unsupported(code::INTERNAL, "data section offset overflows"))?;
    let bare = 24 + kvs.len() as u64 + infos.len() as u64;

    // Without padding if the header happens to end in the right place;
    // else one padding entry sized to end it exactly at a congruent offset.
    let aligned = bare.next_multiple_of(parsed.alignment);
    let padding = if congruent_offset(aligned, data_start, parsed.alignment) == Some(aligned) {
        None
    } else {
        congruent_offset(bare + entry_overhead(PADDING_KEY), data_start, parsed.alignment)
            .map(|start| start - bare - entry_overhead(PADDING_KEY))
    };
    let count = new.len() as u64 + u64::from(padding.is_some());
    let mut header = Vec::with_capacity(bare as usize + 4096);
    header.extend_from_slice(b"GGUF");
    header.extend_from_slice(&parsed.version.to_le_bytes());
    header.extend_from_slice(&(parsed.tensors.len() as u64).to_le_bytes());
    header.extend_from_slice(&count.to_le_bytes());
    header.extend_from_slice(&kvs);
    drop(kvs);
    if let Some(n) = padding {
        encode_entry(PADDING_KEY, &Value::Str(" ".repeat(n as usize)), &mut header);
    }
    header.extend_from_slice(infos);
    let start = (header.len() as u64).next_multiple_of(parsed.alignment);
    header.resize(start as usize, 0);
    drop(bytes);

    let mode = tensorcast_core::edit::kept_mode(input, output);
    // A file with no tensors may end before its (empty) data section.
    let len = file.metadata().map_err(|e| Error::io(input, e))?.len();
    let data_from = data_start.min(len);
    let spliced = Spliced::create(output, &header, &file, data_from, mode)?;
    let data_bytes = len - data_from;
    spliced.commit()?;
    Ok(EditReport {
        header_bytes: header.len() as u64,
        data_bytes,
        in_place: false,
    })
}

/// A key/value entry as GGUF v3 spells it.
fn encode_entry(key: &str, value: &Value, out: &mut Vec<u8>) {
    encode_str(key, out);
    let ty = match value {
        Value::Array(..) => 9,
        v => type_of(v.kind()).unwrap_or(8),
    };
    out.extend_from_slice(&ty.to_le_bytes());
    encode(value, out);
}
