//! Parsing and validating a safetensors header, independent of any file.

use crate::{rules, FORMAT};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value as Json;
use std::fmt;
use tensorcast_core::{element_count, DType, FormatError, Limits, Metadata, Result, TensorInfo, Value};

/// A validated header: tensors in data order with their byte ranges.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Tensors sorted by data offset (their physical order in the file).
    /// `file_offset` is the absolute offset of each tensor's bytes.
    pub tensors: Vec<TensorInfo>,
    /// `__metadata__` entries, as strings, in header order.
    pub metadata: Metadata,
    /// Absolute offset of the data buffer (8 + header length).
    pub data_start: u64,
    /// The stsw version the header names (`"__version__"`): such files may
    /// leave alignment gaps between tensors and carry a `crc32` per tensor.
    pub stsw: Option<String>,
    /// The `crc32` stsw recorded for each tensor (in `tensors` order).
    pub crcs: Vec<Option<u32>>,
}

fn err(rule: &'static str, detail: impl Into<String>) -> FormatError {
    FormatError::new(FORMAT, rule, detail)
}

/// Validates `file` (a whole safetensors file's bytes) against every rule of
/// the format and returns its header.
pub fn parse_header(file: &[u8], limits: &Limits) -> Result<Header> {
    let len = file.len() as u64;
    let Some(prefix) = file.get(..8) else {
        return Err(err(
            rules::FILE_TOO_SMALL,
            format!("file has {len} bytes, fewer than the 8-byte header length"),
        )
        .into());
    };
    let n = u64::from_le_bytes(prefix.try_into().unwrap_or_default());
    if n > limits.max_header_bytes {
        return Err(err(
            rules::HEADER_TOO_LARGE,
            format!(
                "header length {n} exceeds the limit of {} bytes",
                limits.max_header_bytes
            ),
        )
        .limit("max_header_bytes")
        .at(0)
        .into());
    }
    let data_start = n + 8; // cannot overflow: n ≤ limit
    if data_start > len {
        return Err(err(
            rules::HEADER_OUT_OF_BOUNDS,
            format!("header length {n} runs past the end of the {len}-byte file"),
        )
        .at(0)
        .into());
    }
    let raw = &file[8..data_start as usize];
    let text = std::str::from_utf8(raw).map_err(|e| {
        err(rules::HEADER_NOT_UTF8, format!("header is not UTF-8: {e}")).at(8 + e.valid_up_to() as u64)
    })?;
    let text_head = text.get(..16).unwrap_or(text);
    let Entries {
        metadata,
        found,
        stsw,
    } = parse_entries(text, limits).map_err(|e| {
        // stsw's known bug leaves a cut header starting with its version key.
        if e.rule() == Some(rules::HEADER_NOT_JSON) && text_head.starts_with("{\"__version__\":") {
            err(
                rules::STSW_HEADER_OVERRUN,
                "the header was cut off: stsw 1.0 with crc32=True rewrites a longer header over the space it \
                 reserved (a known stsw bug), overwriting the first tensor bytes too; write the file again \
                 without crc32 or with a fixed stsw",
            )
            .at(8)
            .into()
        } else {
            e
        }
    })?;
    let mut found = found;

    if stsw.is_none() {
        if let Some((info, ..)) = found.iter().find(|(_, _, _, crc)| crc.is_some()) {
            return Err(err(
                rules::NOT_STSW,
                "a crc32 field, which only stsw files carry (they say \"__version__\")",
            )
            .tensor(&info.name)
            .into());
        }
    }
    // Data must be tiled exactly, in offset order, whatever the JSON order;
    // stsw aligns each tensor to 64 bytes, leaving shorter gaps.
    const STSW_ALIGN: u64 = 64;
    let gap_ok = |start: u64, expected: u64| {
        stsw.is_some() && start.is_multiple_of(STSW_ALIGN) && start - expected < STSW_ALIGN
    };
    found.sort_by_key(|(_, start, end, _)| (*start, *end));
    let mut expected = 0u64;
    for (info, start, end, _) in &found {
        if *start > expected && !gap_ok(*start, expected) {
            return Err(err(
                rules::DATA_GAP,
                format!("data starts at {start}, expected {expected} (no gaps allowed)"),
            )
            .tensor(&info.name)
            .into());
        }
        if *start < expected {
            return Err(err(
                rules::DATA_OVERLAP,
                format!("data starts at {start}, overlapping the previous tensor that ends at {expected}"),
            )
            .tensor(&info.name)
            .into());
        }
        expected = *end;
    }
    let data_len = len - data_start;
    // stsw pads the last tensor to its alignment too: its files end exactly
    // there (so a file cut inside that padding is still caught).
    let end = match stsw {
        Some(_) => expected.next_multiple_of(STSW_ALIGN),
        None => expected,
    };
    if end != data_len {
        return Err(err(
            rules::FILE_SIZE_MISMATCH,
            format!("tensor data ends at {expected} but the data buffer holds {data_len} bytes"),
        )
        .at(data_start)
        .into());
    }
    let crcs = found.iter().map(|(.., crc)| *crc).collect();
    let tensors = found
        .into_iter()
        .map(|(mut info, start, ..)| {
            info.file_offset = Some(data_start + start);
            info
        })
        .collect();
    Ok(Header {
        tensors,
        metadata,
        data_start,
        stsw,
        crcs,
    })
}

fn parse_metadata(value: Json) -> Result<Metadata> {
    let bad = || {
        err(
            rules::METADATA_NOT_STRING_MAP,
            "__metadata__ must map strings to strings",
        )
        .key("__metadata__")
    };
    match value {
        Json::Null => Ok(Metadata::new()),
        Json::Object(map) => {
            let mut m = Metadata::new();
            for (k, v) in map {
                let Json::String(s) = v else {
                    return Err(bad().key(format!("__metadata__.{k}")).into());
                };
                // Moved, not copied: a metadata string may be most of the header.
                m.push_unchecked(k, Value::Str(s));
            }
            Ok(m)
        }
        _ => Err(bad().into()),
    }
}

fn parse_tensor(name: String, value: &Json, limits: &Limits) -> Result<(TensorInfo, u64, u64, Option<u32>)> {
    if name.is_empty() {
        return Err(err(rules::EMPTY_NAME, "tensor names must not be empty")
            .tensor("")
            .into());
    }
    let invalid = |what: &str| err(rules::TENSOR_ENTRY_INVALID, what.to_string()).tensor(&name);
    let obj = value
        .as_object()
        .ok_or_else(|| invalid("entry is not an object"))?;
    let dtype_name = obj
        .get("dtype")
        .and_then(Json::as_str)
        .ok_or_else(|| invalid("missing or non-string \"dtype\""))?;
    let dtype = match dtype_name.parse::<DType>() {
        Ok(d) if d.bits().is_some() && d.name() == dtype_name => d,
        _ => {
            return Err(
                err(rules::UNKNOWN_DTYPE, format!("unknown dtype \"{dtype_name}\""))
                    .tensor(&name)
                    .into(),
            )
        }
    };
    let shape_json = obj
        .get("shape")
        .and_then(Json::as_array)
        .ok_or_else(|| invalid("missing or non-array \"shape\""))?;
    if shape_json.len() > limits.max_dims {
        return Err(invalid(&format!(
            "{} dimensions exceed the limit of {}",
            shape_json.len(),
            limits.max_dims
        ))
        .into());
    }
    let shape = shape_json
        .iter()
        .map(Json::as_u64)
        .collect::<Option<Vec<u64>>>()
        .ok_or_else(|| invalid("\"shape\" must hold non-negative integers"))?;
    let offsets = obj
        .get("data_offsets")
        .and_then(Json::as_array)
        .filter(|a| a.len() == 2)
        .and_then(|a| Some((a[0].as_u64()?, a[1].as_u64()?)))
        .ok_or_else(|| invalid("\"data_offsets\" must be two non-negative integers"))?;
    let (start, end) = offsets;
    if start > end {
        return Err(err(
            rules::OFFSETS_REVERSED,
            format!("data_offsets [{start}, {end}] start after they end"),
        )
        .tensor(&name)
        .into());
    }
    let bits = element_count(&shape)
        .and_then(|n| n.checked_mul(dtype.bits().unwrap_or(8)))
        .ok_or_else(|| {
            err(
                rules::SHAPE_OVERFLOW,
                format!("shape {shape:?} of {dtype} overflows 64 bits"),
            )
            .tensor(&name)
        })?;
    if bits % 8 != 0 {
        return Err(err(
            rules::PARTIAL_BYTE,
            format!("shape {shape:?} of {dtype} is {bits} bits, not whole bytes"),
        )
        .tensor(&name)
        .into());
    }
    if bits / 8 != end - start {
        return Err(err(
            rules::SIZE_MISMATCH,
            format!(
                "shape {shape:?} of {dtype} needs {} bytes but data_offsets [{start}, {end}] hold {}",
                bits / 8,
                end - start
            ),
        )
        .tensor(&name)
        .into());
    }
    let crc = match obj.get("crc32") {
        None => None,
        Some(c) => Some(
            c.as_u64()
                .and_then(|c| u32::try_from(c).ok())
                .ok_or_else(|| invalid("\"crc32\" must be a 32-bit unsigned integer"))?,
        ),
    };
    let info = TensorInfo {
        name,
        dtype,
        shape,
        nbytes: end - start,
        file_offset: None,
        sparse: None,
        unreadable: None,
    };
    Ok((info, start, end, crc))
}

/// What the header's entries give: `__metadata__` and each tensor with its
/// data offsets, in header order.
struct Entries {
    metadata: Metadata,
    found: Vec<(TensorInfo, u64, u64, Option<u32>)>,
    stsw: Option<String>,
}

/// Reads the top-level JSON object one entry at a time (each entry's JSON is
/// dropped as soon as it is checked, so a header of 200,000 tensors never
/// exists as a tree), refusing duplicate keys (serde_json's maps would keep
/// the last one). Errors keep their precedence: a duplicate key first, then
/// the first broken entry in header order.
fn parse_entries(text: &str, limits: &Limits) -> Result<Entries> {
    let mut de = serde_json::Deserializer::from_str(text);
    let walked = de
        .deserialize_any(EntriesVisitor { limits })
        .and_then(|e| de.end().map(|_| e))
        .map_err(|e| {
            if e.is_data() {
                err(
                    rules::HEADER_NOT_OBJECT,
                    format!("header must be a JSON object: {e}"),
                )
                .at(8)
            } else {
                err(rules::HEADER_NOT_JSON, format!("header is not valid JSON: {e}")).at(8)
            }
        })?;
    let mut seen = std::collections::HashSet::with_capacity(walked.names.len());
    for k in walked.names.iter() {
        if !seen.insert(k) {
            let e = err(rules::DUPLICATE_NAME, "appears more than once in the header");
            let e = if k == "__metadata__" {
                e.key(k)
            } else {
                e.tensor(k)
            };
            return Err(e.into());
        }
    }
    if let Some(e) = walked.first_error {
        return Err(e);
    }
    Ok(Entries {
        metadata: walked.metadata,
        found: walked.found,
        stsw: walked.stsw,
    })
}

/// The visitor's result: every key (for the duplicate check), the entries
/// checked so far, and the first broken one.
struct Walked {
    names: tensorcast_core::Strings,
    metadata: Metadata,
    found: Vec<(TensorInfo, u64, u64, Option<u32>)>,
    stsw: Option<String>,
    first_error: Option<tensorcast_core::Error>,
}

struct EntriesVisitor<'l> {
    limits: &'l Limits,
}

impl<'de> Visitor<'de> for EntriesVisitor<'_> {
    type Value = Walked;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Walked {
            names: tensorcast_core::Strings::new(),
            metadata: Metadata::new(),
            found: Vec::new(),
            stsw: None,
            first_error: None,
        };
        let mut count = 0u64;
        while let Some(k) = map.next_key::<String>()? {
            let v: Json = map.next_value()?;
            out.names.push(&k);
            if out.first_error.is_some() {
                continue; // only the keys matter now (duplicates come first)
            }
            let checked = if k == "__metadata__" {
                parse_metadata(v).map(|m| out.metadata = m)
            } else if k == "__version__" && v.is_string() {
                // stsw's marker (its files say which version wrote them).
                out.stsw = v.as_str().map(str::to_string);
                Ok(())
            } else if k == "__incomplete__" && v.as_bool() == Some(true) {
                Err(err(
                    rules::STSW_INCOMPLETE,
                    "stsw did not finish writing this file (\"__incomplete__\": true)",
                )
                .key(k)
                .into())
            } else {
                count += 1;
                if count > self.limits.max_tensors {
                    Err(err(
                        rules::TOO_MANY_TENSORS,
                        format!("more than {} tensors", self.limits.max_tensors),
                    )
                    .limit("max_tensors")
                    .into())
                } else {
                    parse_tensor(k, &v, self.limits).map(|t| out.found.push(t))
                }
            };
            if let Err(e) = checked {
                out.first_error = Some(e);
            }
        }
        Ok(out)
    }
}
