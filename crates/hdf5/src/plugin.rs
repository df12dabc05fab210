//! HDF5 files and Keras `.keras` archives as registered [`Format`]s.

use crate::{rules, Hdf5File};
use std::io::Read;
use tensorcast_core::code;
use tensorcast_core::{
    zip_first_member, Bytes, Detection, Error, Format, FormatError, Input, Limits, Metadata, Options, Result,
    Sink, Source, Value, WriteTarget,
};

/// HDF5's signature (a user block may move it to 512, 1024, ... bytes in;
/// the head the registry sees holds only the start).
const MAGIC: &[u8] = b"\x89HDF\r\n\x1a\n";

/// An HDF5 file (`.h5`, `.hdf5`, Keras' `*.weights.h5`); read-only.
pub struct Hdf5;

/// A Keras 3 model archive (`.keras`): a zip of `metadata.json`,
/// `config.json` and `model.weights.h5`; read-only.
pub struct Keras;

fn read_only(what: &str) -> Error {
    Error::unsupported(
        code::READ_ONLY,
        format!("tensorcast reads {what} but does not write it; write safetensors, GGUF, .npz or tpack"),
    )
}

impl Format for Hdf5 {
    fn name(&self) -> &'static str {
        crate::FORMAT
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["h5", "hdf5", "he5"]
    }

    fn detect(&self, head: &[u8]) -> Detection {
        Detection::magic(head, MAGIC)
    }

    fn open(&self, input: Input, options: &Options) -> Result<Box<dyn Source>> {
        Ok(Box::new(Hdf5File::from_bytes(
            &input.name,
            input.bytes,
            &options.limits,
            Metadata::new(),
        )?))
    }

    fn create(&self, _: Box<dyn WriteTarget>, _: &Options) -> Result<Box<dyn Sink>> {
        Err(read_only("HDF5"))
    }
}

/// The members a Keras 3 archive starts with (`saving_lib` writes
/// `metadata.json`, `config.json`, then `model.weights.h5`).
const KERAS_FIRST: &[&[u8]] = &[b"metadata.json", b"config.json"];
/// The weights member.
const WEIGHTS: &str = "model.weights.h5";

impl Format for Keras {
    fn name(&self) -> &'static str {
        "keras"
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["keras"]
    }

    fn detect(&self, head: &[u8]) -> Detection {
        match zip_first_member(head) {
            Some(first) if KERAS_FIRST.contains(&first) => Detection::Strong,
            _ => Detection::No,
        }
    }

    fn open(&self, input: Input, options: &Options) -> Result<Box<dyn Source>> {
        let (weights, metadata) =
            unpack(&input.bytes, &options.limits).map_err(|e| Error::from(e.in_file(&input.name)))?;
        let name = input.name.join(WEIGHTS);
        Ok(Box::new(Hdf5File::from_bytes(
            &name,
            Bytes::from(weights),
            &options.limits,
            metadata,
        )?))
    }

    fn create(&self, _: Box<dyn WriteTarget>, _: &Options) -> Result<Box<dyn Sink>> {
        Err(read_only("Keras archives"))
    }
}

/// The weights member's bytes (inflated under `max_alloc`) and the archive's
/// JSON members as metadata (`keras.config`, `keras.metadata`).
fn unpack(bytes: &[u8], limits: &Limits) -> std::result::Result<(Vec<u8>, Metadata), FormatError> {
    let bad = |detail: String| FormatError::new("keras", rules::ARCHIVE, detail);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| bad(format!("not a readable zip: {e}")))?;
    let mut spans = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let f = zip
            .by_index_raw(i)
            .map_err(|e| bad(format!("zip entry {i}: {e}")))?;
        let deflated = matches!(f.compression(), zip::CompressionMethod::Deflated);
        spans.push((
            String::from_utf8_lossy(f.name_raw()).into_owned(),
            f.data_start().unwrap_or(0),
            f.compressed_size(),
            deflated.then(|| f.size()),
        ));
    }
    if let Some((name, why)) = tensorcast_core::check_zip_entries(&spans) {
        return Err(bad(format!("member '{name}': {why}")));
    }
    let mut read_member = |name: &str, cap: u64| -> std::result::Result<Option<Vec<u8>>, FormatError> {
        let Ok(f) = zip.by_name(name) else {
            return Ok(None);
        };
        let size = f.size();
        limits
            .check_alloc(
                size.min(cap.saturating_add(1)),
                &format!("the archive member '{name}'"),
            )
            .map_err(|d| FormatError::new("keras", rules::ALLOC_LIMIT, d).limit("max_alloc_bytes"))?;
        if size > cap {
            return Err(bad(format!(
                "member '{name}' holds {size} bytes, more than {cap}"
            )));
        }
        let mut out = Vec::with_capacity(size as usize);
        f.take(size)
            .read_to_end(&mut out)
            .map_err(|e| bad(format!("member '{name}': {e}")))?;
        if out.len() as u64 != size {
            return Err(bad(format!("member '{name}' is shorter than its header says")));
        }
        Ok(Some(out))
    };
    let mut metadata = Metadata::new();
    for (member, key) in [
        ("metadata.json", "keras.metadata"),
        ("config.json", "keras.config"),
    ] {
        if let Some(text) = read_member(member, limits.max_header_bytes)? {
            let text = String::from_utf8(text).map_err(|_| bad(format!("member '{member}' is not UTF-8")))?;
            metadata.insert(key, Value::Str(text));
        }
    }
    let weights = read_member(WEIGHTS, limits.max_alloc_bytes)?.ok_or_else(|| {
        bad(format!(
            "no '{WEIGHTS}' member (a Keras 3 archive holds its weights there)"
        ))
    })?;
    Ok((weights, metadata))
}
