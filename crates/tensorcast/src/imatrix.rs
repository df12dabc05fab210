//! Reading importance matrices as llama-quantize's loader does: llama.cpp's
//! imatrix GGUF (`<tensor>.in_sum2` and `<tensor>.counts` per tensor, the
//! `imatrix.*` keys) or the legacy `.dat` file of `llama-imatrix`.

use crate::Registry;
use tensorcast_core::code;
use tensorcast_core::{Array, DType, Error, Location, Options, Result, Value};
use tensorcast_quant::{normalize_counts, normalize_legacy, Imatrix};

fn bad(file: &str, rule: &str) -> Error {
    Error::unsupported(code::BAD_DATA, format!("imatrix {file}: {rule}"))
}

/// Reads the imatrix at `location`, recording it under the name `given`
/// (the spelling llama-quantize writes into the output).
pub fn load_imatrix(
    location: &Location,
    given: &str,
    options: &Options,
    registry: &Registry,
) -> Result<Imatrix> {
    match registry.open(location.clone(), options) {
        // Any container the registry reads holding `.in_sum2`/`.counts`
        // tensors and the imatrix keys (llama.cpp writes them as GGUF).
        Ok(src) => from_gguf(&*src, given),
        Err(_) => {
            let Location::Local(path) = location else {
                return Err(bad(
                    given,
                    "not a GGUF imatrix, and a legacy .dat imatrix must be a local file",
                ));
            };
            let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
            // A FIFO or device would block the read (or never end).
            if !meta.is_file() {
                return Err(bad(given, "not a regular file"));
            }
            let len = meta.len();
            if len > options.limits.max_alloc_bytes {
                return Err(bad(given, "larger than the allocation limit"));
            }
            let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            from_legacy(&bytes, given)
        }
    }
}

/// The GGUF imatrix: entries from `.in_sum2`/`.counts` pairs (both F32),
/// which need the three `imatrix.*` keys llama-quantize insists on.
fn from_gguf(src: &dyn tensorcast_core::Source, given: &str) -> Result<Imatrix> {
    let meta = src.metadata();
    let datasets = match meta.get("imatrix.datasets") {
        Some(Value::Array(Array::Str(s))) => s.iter().map(str::to_string).collect(),
        _ => Vec::new(),
    };
    let has_metadata = ["imatrix.datasets", "imatrix.chunk_count", "imatrix.chunk_size"]
        .iter()
        .all(|k| meta.get(k).is_some());
    if !has_metadata {
        return Err(bad(
            given,
            "missing imatrix metadata (imatrix.datasets, imatrix.chunk_count, imatrix.chunk_size)",
        ));
    }
    let chunk_count = match meta.get("imatrix.chunk_count") {
        Some(Value::U32(n)) => *n,
        _ => 0,
    };
    let mut pairs: std::collections::BTreeMap<String, (Option<usize>, Option<usize>)> = Default::default();
    for (i, t) in src.tensors().iter().enumerate() {
        if let Some(name) = t.name.strip_suffix(".in_sum2") {
            pairs.entry(name.to_string()).or_default().0 = Some(i);
        } else if let Some(name) = t.name.strip_suffix(".counts") {
            pairs.entry(name.to_string()).or_default().1 = Some(i);
        }
    }
    let read = |i: usize| -> Result<Vec<f32>> {
        let t = &src.tensors()[i];
        if t.dtype != DType::F32 {
            return Err(bad(given, &format!("tensor '{}' must be F32", t.name)));
        }
        let bytes = src.tensor_data(i)?.into_vec()?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    };
    let mut im = Imatrix {
        file: given.to_string(),
        datasets,
        chunk_count,
        ..Default::default()
    };
    for (name, pair) in pairs {
        let (Some(s), Some(c)) = pair else {
            return Err(bad(given, &format!("mismatched sums and counts for {name}")));
        };
        let weights = normalize_counts(&read(s)?, &read(c)?).ok_or_else(|| {
            bad(
                given,
                &format!("the sums of {name} do not divide among its counts"),
            )
        })?;
        im.entries.insert(name, weights);
    }
    if im.entries.is_empty() {
        return Err(bad(given, "no data"));
    }
    Ok(im)
}

/// Little-endian reads over the legacy file, failing at its end.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
}

/// The legacy `.dat`: an entry count, then per entry its name, call count
/// and sums, then optionally the chunk count and dataset name.
fn from_legacy(bytes: &[u8], given: &str) -> Result<Imatrix> {
    let mut c = Cursor(bytes);
    let n = c
        .i32()
        .filter(|&n| n >= 1)
        .ok_or_else(|| bad(given, "not a GGUF file, and no legacy entries"))?;
    let mut im = Imatrix {
        file: given.to_string(),
        ..Default::default()
    };
    for i in 0..n {
        let entry = |rule: &str| bad(given, &format!("legacy entry {}: {rule}", i + 1));
        let len = c
            .i32()
            .and_then(|l| usize::try_from(l).ok())
            .ok_or_else(|| entry("no name length"))?;
        let name = c.take(len).ok_or_else(|| entry("name past the end"))?;
        // C reads the name as a C string: it ends at the first NUL.
        let name = name.split(|&b| b == 0).next().unwrap_or_default();
        let name = String::from_utf8_lossy(name).into_owned();
        let ncall = c.i32().ok_or_else(|| entry("no call count"))?;
        let nval = c.i32().filter(|&v| v >= 1).ok_or_else(|| entry("no values"))? as usize;
        let raw = c
            .take(nval.checked_mul(4).ok_or_else(|| entry("too many values"))?)
            .ok_or_else(|| entry("values past the end"))?;
        let sums: Vec<f32> = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        im.entries.insert(name, normalize_legacy(&sums, i64::from(ncall)));
    }
    if !c.0.is_empty() {
        if let Some(calls) = c.i32() {
            im.chunk_count = u32::try_from(calls).unwrap_or(0);
            if let Some(len) = c.i32().and_then(|l| usize::try_from(l).ok()).filter(|&l| l > 0) {
                if let Some(name) = c.take(len) {
                    let name = name.split(|&b| b == 0).next().unwrap_or_default();
                    im.datasets.push(String::from_utf8_lossy(name).into_owned());
                }
            }
        }
    }
    Ok(im)
}
