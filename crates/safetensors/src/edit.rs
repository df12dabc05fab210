//! Editing `__metadata__` without rewriting the tensors: the header JSON is
//! re-serialized with only `__metadata__` changed (every tensor entry as it
//! was, in order) and padded with trailing spaces, which the format allows
//! and its reference writer uses for alignment, so the data buffer starts at
//! the same offset modulo 4096 and can be shared with the input (see
//! `tensorcast_core::edit`).

use crate::header::parse_header;
use crate::{rules, FORMAT};
use serde_json::{Map, Value as Json};
use std::path::Path;
use tensorcast_core::edit::{apply_edits, congruent_offset, EditReport, JsonEntries, MetaEdit, Spliced};
use tensorcast_core::{Bytes, Error, FormatError, Limits, Result, Value};

/// The safetensors reference's largest header (100 MB).
const MAX_HEADER: u64 = 100_000_000;

/// Applies `edits` to the `__metadata__` of the safetensors file at
/// `input`, writing `output` (or replacing `input` when they are the same).
/// Values are strings; typed keys are refused.
pub fn edit(input: &Path, edits: &[MetaEdit], output: &Path, limits: &Limits) -> Result<EditReport> {
    let file = std::fs::File::open(input).map_err(|e| Error::io(input, e))?;
    let bytes = Bytes::open(input)?;
    // Every rule of the format first: an edit never passes a broken file on.
    let header = parse_header(&bytes, limits).map_err(|e| e.in_file(input))?;
    let metadata = apply_edits(input, &header.metadata, edits, false)?;
    let text = &bytes[8..header.data_start as usize];
    // Each top-level entry kept as its own text (tensor entries are copied
    // as they were, and a header of a million tensors never becomes a
    // JSON tree); only `__metadata__` is written anew.
    let JsonEntries(entries) = serde_json::from_slice(text).map_err(|e| {
        Error::from(FormatError::new(FORMAT, rules::HEADER_NOT_JSON, e.to_string()).in_file(input))
    })?;
    let meta: Map<String, Json> = metadata
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::Str(s) => s.clone(),
                other => other.to_metadata_string(),
            };
            (k.to_string(), Json::String(text))
        })
        .collect();
    let meta = (!meta.is_empty()).then(|| Json::Object(meta).to_string());
    let mut header_text = Vec::with_capacity(text.len() + 4096);
    header_text.push(b'{');
    // A new `__metadata__` goes first, where the reference writer puts it.
    let had = entries.iter().any(|(k, _)| k == "__metadata__");
    let mut parts: Vec<(String, &str)> = Vec::with_capacity(entries.len() + 1);
    if let (false, Some(m)) = (had, &meta) {
        parts.push(("__metadata__".into(), m.as_str()));
    }
    for (k, raw) in &entries {
        match (k.as_str(), &meta) {
            ("__metadata__", Some(m)) => parts.push((k.clone(), m.as_str())),
            ("__metadata__", None) => {}
            _ => parts.push((k.clone(), raw.get())),
        }
    }
    for (i, (k, v)) in parts.iter().enumerate() {
        if i > 0 {
            header_text.push(b',');
        }
        header_text.extend_from_slice(Json::String(k.clone()).to_string().as_bytes());
        header_text.push(b':');
        header_text.extend_from_slice(v.as_bytes());
    }
    header_text.push(b'}');
    let bare = 8 + header_text.len() as u64;
    let start = congruent_offset(bare, header.data_start, 1).unwrap_or(bare.next_multiple_of(8));
    if start - 8 > MAX_HEADER {
        return Err(Error::unsupported(
            tensorcast_core::code::TOO_LARGE,
            format!(
                "{}: the edited header would take {} bytes, over the format's 100 MB",
                input.display(),
                start - 8
            ),
        ));
    }
    header_text.resize((start - 8) as usize, b' ');
    let mut out = Vec::with_capacity(start as usize);
    out.extend_from_slice(&(start - 8).to_le_bytes());
    out.extend_from_slice(&header_text);
    drop(header_text);
    let data_start = header.data_start;
    drop(bytes);
    let mode = tensorcast_core::edit::kept_mode(input, output);
    let spliced = Spliced::create(output, &out, &file, data_start, mode)?;
    let len = file.metadata().map_err(|e| Error::io(input, e))?.len();
    spliced.commit()?;
    Ok(EditReport {
        header_bytes: out.len() as u64,
        data_bytes: len - data_start,
        in_place: false,
    })
}
