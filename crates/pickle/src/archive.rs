//! The containers torch.save writes: the zip format (torch ≥ 1.6), the legacy
//! stream of pickles followed by raw storages, a bare pickle, and (refused)
//! the ancient tar format.

use crate::allowlist::{classify, Global};
use crate::dtypes::{StorageClass, TorchDtype};
use crate::rules;
use crate::vm::{self, Node, Pickle, VmLimits};
use std::collections::HashMap;
use std::io::{Cursor, Read};
use tensorcast_core::{FormatError, Limits};

/// Where one storage record's bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// Absolute offset of the (possibly compressed) bytes in the file.
    pub offset: u64,
    /// Length of the uncompressed record.
    pub len: u64,
    /// `Some(compressed length)` when the record is deflated.
    pub deflated: Option<u64>,
}

/// A checkpoint container opened: the main pickle and where its storages are.
#[derive(Debug)]
pub struct Archive {
    /// The main pickle (the object torch.save was given).
    pub pickle: Pickle,
    /// Storage records by key.
    pub records: HashMap<String, Record>,
    /// The storages are big-endian (zip `byteorder` record, legacy sys_info).
    pub big_endian: bool,
    /// `zip`, `legacy` or `pickle`, for `inspect`.
    pub kind: &'static str,
}

fn err(rule: &'static str, detail: impl Into<String>) -> FormatError {
    FormatError::new(crate::FORMAT, rule, detail)
}

/// Opens the container in `bytes`.
pub fn open(bytes: &[u8], limits: &Limits) -> Result<Archive, FormatError> {
    if bytes.get(257..262) == Some(b"ustar") {
        return Err(err(
            rules::TAR_FORMAT,
            "this is the tar format of torch < 0.4; load and re-save it with a newer torch first",
        ));
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return open_zip(bytes, limits);
    }
    open_pickles(bytes, limits)
}

fn vm_limits(limits: &Limits) -> VmLimits {
    VmLimits {
        max_nodes: usize::try_from(limits.max_objects).unwrap_or(usize::MAX),
    }
}

fn open_zip(bytes: &[u8], limits: &Limits) -> Result<Archive, FormatError> {
    let bad = |detail: String| err(rules::BAD_ARCHIVE, detail);
    let mut zip =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| bad(format!("not a readable zip: {e}")))?;
    // torch names every record `<folder>/...` after the first record's folder.
    let mut entries: Vec<(String, Record)> = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let file = zip
            .by_index_raw(i)
            .map_err(|e| bad(format!("zip entry {i}: {e}")))?;
        let name = String::from_utf8_lossy(file.name_raw()).into_owned();
        let offset = file
            .data_start()
            .ok_or_else(|| bad(format!("zip entry '{name}' has no data offset")))?;
        let deflated = match file.compression() {
            zip::CompressionMethod::Stored => None,
            zip::CompressionMethod::Deflated => Some(file.compressed_size()),
            other => {
                return Err(bad(format!(
                    "zip entry '{name}' uses unsupported compression {other:?}"
                )))
            }
        };
        let stored_len = deflated.unwrap_or(file.size());
        if deflated.is_none() && file.size() != file.compressed_size() {
            return Err(bad(format!("stored zip entry '{name}' has different sizes")));
        }
        if offset
            .checked_add(stored_len)
            .is_none_or(|end| end > bytes.len() as u64)
        {
            return Err(bad(format!("zip entry '{name}' runs past the end of the file")));
        }
        entries.push((
            name,
            Record {
                offset,
                len: file.size(),
                deflated,
            },
        ));
    }
    let mut spans: Vec<tensorcast_core::ZipSpan<'_>> = entries
        .iter()
        .map(|(name, r)| tensorcast_core::ZipSpan {
            name,
            start: r.offset,
            stored: r.deflated.unwrap_or(r.len),
            inflated: r.deflated.map(|_| r.len),
        })
        .collect();
    if let Some((name, why)) = tensorcast_core::check_zip_spans(&mut spans) {
        return Err(bad(format!("zip entry '{name}': {why}")));
    }
    let folder = entries
        .iter()
        .find_map(|(name, _)| {
            name.strip_suffix("data.pkl")
                .filter(|f| f.is_empty() || f.ends_with('/'))
        })
        .ok_or_else(|| bad("no data.pkl record: not a torch checkpoint".into()))?
        .to_string();
    let mut records = HashMap::new();
    let mut pkl = None;
    let mut big_endian = false;
    for (name, record) in entries {
        let Some(rest) = name.strip_prefix(&folder) else {
            continue;
        };
        if rest == "data.pkl" {
            pkl = Some(record);
        } else if rest == "byteorder" {
            let text = read_record(bytes, &record, 16)?;
            big_endian = match text.as_slice() {
                b"big" => true,
                b"little" => false,
                other => {
                    return Err(bad(format!(
                        "byteorder record says {:?}",
                        String::from_utf8_lossy(other)
                    )))
                }
            };
        } else if let Some(key) = rest.strip_prefix("data/") {
            records.insert(key.to_string(), record);
        }
    }
    let pkl = pkl.ok_or_else(|| bad("no data.pkl record".into()))?;
    let data = read_record(bytes, &pkl, limits.max_header_bytes)?;
    let pickle = vm::run(&data, 0, vm_limits(limits)).map_err(|e| in_data_pkl(e, &folder))?;
    Ok(Archive {
        pickle,
        records,
        big_endian,
        kind: "zip",
    })
}

fn in_data_pkl(e: FormatError, folder: &str) -> FormatError {
    let detail = format!("{folder}data.pkl: {}", e.detail);
    FormatError { detail, ..e }
}

/// A whole small record (the pickle, `byteorder`), inflating if needed, at
/// most `max` bytes.
fn read_record(bytes: &[u8], r: &Record, max: u64) -> Result<Vec<u8>, FormatError> {
    if r.len > max {
        return Err(err(
            rules::BAD_ARCHIVE,
            format!("a {}-byte metadata record exceeds the {max}-byte limit", r.len),
        )
        .limit("max_header_bytes"));
    }
    let start = r.offset as usize;
    match r.deflated {
        None => Ok(bytes[start..start + r.len as usize].to_vec()),
        Some(clen) => {
            let raw = &bytes[start..start + clen as usize];
            let mut out = Vec::new();
            flate2::read::DeflateDecoder::new(raw)
                .take(r.len)
                .read_to_end(&mut out)
                .map_err(|e| err(rules::BAD_ARCHIVE, format!("deflated record: {e}")))?;
            if out.len() as u64 != r.len {
                return Err(err(
                    rules::BAD_ARCHIVE,
                    "deflated record is shorter than its declared size",
                ));
            }
            Ok(out)
        }
    }
}

/// The legacy format's magic number, as LONG1 bytes (little-endian).
/// (0x1950a86a20f9469cfc6c)
const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/// A bare pickle, or the legacy format that starts with the magic number.
fn open_pickles(bytes: &[u8], limits: &Limits) -> Result<Archive, FormatError> {
    let limits = vm_limits(limits);
    let first = vm::run(bytes, 0, limits)?;
    let is_magic = matches!(first.node(first.root), Node::BigInt(b) if b.as_slice() == LEGACY_MAGIC);
    if !is_magic {
        // Not torch's legacy format: interpret it as a plain pickle, so a
        // hostile one is still refused by the global it names.
        return Ok(Archive {
            pickle: first,
            records: HashMap::new(),
            big_endian: false,
            kind: "pickle",
        });
    }
    let bad = |detail: String| err(rules::BAD_LEGACY, detail);
    let proto = vm::run(bytes, first.end, limits)?;
    if proto.node(proto.root) != &Node::Int(1001) {
        return Err(bad(format!(
            "protocol version is {:?}, expected 1001",
            proto.node(proto.root)
        ))
        .at(first.end as u64));
    }
    let sys_info = vm::run(bytes, proto.end, limits)?;
    let big_endian = little_endian_flag(&sys_info) == Some(false);
    let main = vm::run(bytes, sys_info.end, limits)?;
    let keys_pickle = vm::run(bytes, main.end, limits)?;
    let Node::List(key_ids) = keys_pickle.node(keys_pickle.root) else {
        return Err(bad("the storage key list is not a list".into()).at(main.end as u64));
    };
    let units = storage_units(&main);
    let mut records = HashMap::new();
    let mut pos = keys_pickle.end as u64;
    for &id in key_ids {
        let key = match keys_pickle.node(id) {
            Node::Str(s) => s.clone(),
            other => return Err(bad(format!("storage key {other:?} is not text"))),
        };
        let unit = *units.get(&key).ok_or_else(|| {
            bad(format!(
                "storage '{key}' is listed but no tensor says what type it holds"
            ))
        })?;
        let count_at = pos as usize;
        let count = bytes
            .get(count_at..count_at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .ok_or_else(|| {
                err(
                    rules::TRUNCATED,
                    format!("storage '{key}': element count past the end"),
                )
                .at(pos)
            })?;
        let len = count
            .checked_mul(unit)
            .ok_or_else(|| bad(format!("storage '{key}': {count} elements overflow")))?;
        let offset = pos + 8;
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= bytes.len() as u64)
            .ok_or_else(|| {
                err(
                    rules::TRUNCATED,
                    format!("storage '{key}' of {len} bytes runs past the end"),
                )
                .at(pos)
            })?;
        records.insert(
            key,
            Record {
                offset,
                len,
                deflated: None,
            },
        );
        pos = end;
    }
    Ok(Archive {
        pickle: main,
        records,
        big_endian,
        kind: "legacy",
    })
}

fn little_endian_flag(sys_info: &Pickle) -> Option<bool> {
    let Node::Dict(pairs) = sys_info.node(sys_info.root) else {
        return None;
    };
    pairs
        .iter()
        .find_map(|&(k, v)| match (sys_info.node(k), sys_info.node(v)) {
            (Node::Str(k), Node::Bool(b)) if k == "little_endian" => Some(*b),
            _ => None,
        })
}

/// Bytes per element of each legacy storage, from the persistent ids that name it.
fn storage_units(p: &Pickle) -> HashMap<String, u64> {
    let mut units = HashMap::new();
    for node in &p.nodes {
        let Node::Persistent(pid) = node else { continue };
        let Node::Tuple(parts) = p.node(*pid) else {
            continue;
        };
        let (Some(&class), Some(&key)) = (parts.get(1), parts.get(2)) else {
            continue;
        };
        let class = match p.node(class) {
            Node::Global { module, name, .. } => classify(module, name, false),
            _ => None,
        };
        let unit = match class {
            Some(Global::Storage(StorageClass::Untyped)) => 1,
            Some(Global::Storage(StorageClass::Typed(TorchDtype::Known(d))))
            | Some(Global::Dtype(TorchDtype::Known(d))) => d.storage_bytes(1).unwrap_or(1),
            _ => continue,
        };
        let key = match p.node(key) {
            Node::Str(s) => s.clone(),
            Node::Int(i) => i.to_string(),
            _ => continue,
        };
        units.insert(key, unit);
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_magic_matches_torch() {
        assert_eq!(&0x1950a86a20f9469cfc6cu128.to_le_bytes()[..10], &LEGACY_MAGIC);
    }

    #[test]
    fn tar_is_refused_by_name() {
        let mut data = vec![0u8; 600];
        data[257..262].copy_from_slice(b"ustar");
        assert_eq!(
            open(&data, &Limits::default()).unwrap_err().rule,
            rules::TAR_FORMAT
        );
    }
}
