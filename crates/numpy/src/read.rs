//! `.npy` (one array) and `.npz` (a zip of `.npy` members, stored or
//! deflated) as [`Source`]s.

use crate::header::{self, NpyHeader};
use crate::rules;
use std::io::Read;
use std::path::{Path, PathBuf};
use tensorcast_core::code;
use tensorcast_core::strided;
use tensorcast_core::{
    Bytes, Error, FormatError, Limits, Metadata, Result, Source, TensorData, TensorInfo, CHUNK_BYTES,
};

fn err(rule: &'static str, detail: impl Into<String>) -> FormatError {
    FormatError::new(crate::FORMAT, rule, detail)
}

/// Where one array's bytes are.
#[derive(Clone, Debug)]
struct Array {
    header: NpyHeader,
    /// Offset of the member (or file) start.
    start: u64,
    /// `Some(compressed length)` for a deflated npz member.
    deflated: Option<u64>,
}

/// An open `.npy` or `.npz`.
pub struct NumpyFile {
    path: PathBuf,
    bytes: Bytes,
    format: &'static str,
    tensors: Vec<TensorInfo>,
    arrays: Vec<Array>,
    metadata: Metadata,
    limits: Limits,
}

impl NumpyFile {
    /// Opens `path` (`.npy` or `.npz`, told apart by the bytes).
    pub fn open(path: &Path, limits: &Limits) -> Result<NumpyFile> {
        let bytes = Bytes::open(path)?;
        Self::from_bytes(path, bytes, limits)
    }

    /// Validates bytes already in hand; `path` names them in errors and, for
    /// a `.npy`, gives the tensor its name (the file stem).
    pub fn from_bytes(path: &Path, bytes: Bytes, limits: &Limits) -> Result<NumpyFile> {
        let parsed = if bytes.starts_with(b"PK") {
            parse_npz(&bytes, limits).map(|a| ("npz", a))
        } else {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("array")
                .to_string();
            parse_npy(&bytes, limits).map(|a| ("npy", vec![(stem, a)]))
        };
        let (format, named) = parsed.map_err(|e| Error::from(e.in_file(path)))?;
        let mut tensors = Vec::with_capacity(named.len());
        let mut arrays = Vec::with_capacity(named.len());
        for (name, a) in named {
            let mut info =
                TensorInfo::new(&name, a.header.dtype, a.header.shape.clone()).ok_or_else(|| {
                    Error::from(err(rules::SIZE, "shape overflows").tensor(&name).in_file(path))
                })?;
            if a.deflated.is_none() && !a.header.big_endian && !a.header.fortran_order {
                info.file_offset = Some(a.start + a.header.data_offset as u64);
            }
            tensors.push(info);
            arrays.push(a);
        }
        Ok(NumpyFile {
            path: path.to_path_buf(),
            bytes,
            format,
            tensors,
            arrays,
            metadata: Metadata::new(),
            limits: limits.clone(),
        })
    }
}

fn parse_npy(bytes: &[u8], limits: &Limits) -> Result<Array, FormatError> {
    let header = header::parse(bytes, limits.max_header_bytes)?;
    let nbytes = data_bytes(&header)?;
    let have = (bytes.len() - header.data_offset) as u64;
    if have != nbytes {
        return Err(err(
            rules::SIZE,
            format!("the array needs {nbytes} data bytes, the file has {have}"),
        ));
    }
    Ok(Array {
        header,
        start: 0,
        deflated: None,
    })
}

fn data_bytes(h: &NpyHeader) -> Result<u64, FormatError> {
    tensorcast_core::element_count(&h.shape)
        .and_then(|n| h.dtype.storage_bytes(n))
        .ok_or_else(|| err(rules::SIZE, format!("shape {:?} overflows", h.shape)))
}

fn parse_npz(bytes: &[u8], limits: &Limits) -> Result<Vec<(String, Array)>, FormatError> {
    let bad = |detail: String| err(rules::ARCHIVE, detail);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| bad(format!("not a readable zip: {e}")))?;
    let mut spans = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let file = zip
            .by_index_raw(i)
            .map_err(|e| bad(format!("zip entry {i}: {e}")))?;
        let deflated = matches!(file.compression(), zip::CompressionMethod::Deflated);
        spans.push((
            String::from_utf8_lossy(file.name_raw()).into_owned(),
            file.data_start().unwrap_or(0),
            if deflated {
                file.compressed_size()
            } else {
                file.size()
            },
            deflated.then(|| file.size()),
        ));
    }
    if let Some((name, why)) = tensorcast_core::check_zip_entries(&spans) {
        return Err(bad(format!("member '{name}': {why}")));
    }
    let mut out = Vec::new();
    let mut names = std::collections::HashSet::new();
    for i in 0..zip.len() {
        let file = zip
            .by_index_raw(i)
            .map_err(|e| bad(format!("zip entry {i}: {e}")))?;
        let member = String::from_utf8_lossy(file.name_raw()).into_owned();
        let Some(name) = member.strip_suffix(".npy") else {
            return Err(bad(format!("member '{member}' is not a .npy array")));
        };
        let start = file
            .data_start()
            .ok_or_else(|| bad(format!("member '{member}' has no data offset")))?;
        let (deflated, stored_len) = match file.compression() {
            zip::CompressionMethod::Stored => (None, file.size()),
            zip::CompressionMethod::Deflated => (Some(file.compressed_size()), file.compressed_size()),
            other => {
                return Err(bad(format!(
                    "member '{member}' uses unsupported compression {other:?}"
                )))
            }
        };
        if start
            .checked_add(stored_len)
            .is_none_or(|e| e > bytes.len() as u64)
        {
            return Err(bad(format!("member '{member}' runs past the end of the file")));
        }
        let size = file.size();
        let s = start as usize;
        let head: Vec<u8> = match deflated {
            None => bytes[s..s + (size as usize).min(1 << 20)].to_vec(),
            Some(c) => {
                let mut h = Vec::new();
                flate2::read::DeflateDecoder::new(&bytes[s..s + c as usize])
                    .take(1 << 20)
                    .read_to_end(&mut h)
                    .map_err(|e| bad(format!("member '{member}': {e}")))?;
                h
            }
        };
        let header = header::parse(&head, limits.max_header_bytes).map_err(|e| e.tensor(name))?;
        let nbytes = data_bytes(&header).map_err(|e| e.tensor(name))?;
        if size != header.data_offset as u64 + nbytes {
            return Err(err(
                rules::SIZE,
                format!(
                    "member holds {size} bytes, its header implies {}",
                    header.data_offset as u64 + nbytes
                ),
            )
            .tensor(name));
        }
        if !names.insert(name.to_string()) {
            return Err(bad(format!("two members named '{member}'")));
        }
        out.push((
            name.to_string(),
            Array {
                header,
                start,
                deflated,
            },
        ));
    }
    Ok(out)
}

impl Source for NumpyFile {
    fn format(&self) -> &'static str {
        self.format
    }

    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        let (info, a) = self
            .tensors
            .get(index)
            .zip(self.arrays.get(index))
            .ok_or_else(|| {
                Error::usage(
                    code::CALL_ORDER,
                    format!("{}: no tensor #{index}", self.path.display()),
                )
            })?;
        let elem = a.header.dtype.byte_size().unwrap_or(1);
        let swap = a.header.big_endian;
        let data_start = a.start as usize + a.header.data_offset;
        match (a.deflated, a.header.fortran_order) {
            (None, false) if !swap => self
                .bytes
                .tensor_data(data_start as u64, info.nbytes)
                .ok_or_else(|| Error::usage(code::CALL_ORDER, "array outside the file")),
            (None, false) => {
                let src = &self.bytes[data_start..data_start + info.nbytes as usize];
                Ok(TensorData::Chunks(Box::new(
                    src.chunks(CHUNK_BYTES - CHUNK_BYTES % elem).map(move |c| {
                        let mut v = c.to_vec();
                        a.header.dtype.swap_byte_order(&mut v);
                        Ok(v)
                    }),
                )))
            }
            (None, true) => {
                let src = &self.bytes[data_start..data_start + info.nbytes as usize];
                Ok(TensorData::Chunks(Box::new(from_fortran(
                    src,
                    a.header.clone(),
                    elem,
                ))))
            }
            (Some(clen), fortran) => {
                let s = a.start as usize;
                let raw = &self.bytes[s..s + clen as usize];
                let mut decoder = flate2::read::DeflateDecoder::new(raw);
                let path = self.path.clone();
                let io = move |e: std::io::Error| Error::io(&path, e);
                std::io::copy(
                    &mut (&mut decoder).take(a.header.data_offset as u64),
                    &mut std::io::sink(),
                )
                .map_err(io.clone())?;
                if fortran {
                    // A column-major array needs random access: inflate it.
                    self.limits
                        .check_alloc(info.nbytes, "this deflated column-major array")
                        .map_err(|d| {
                            Error::from(
                                err(rules::ALLOC_LIMIT, d)
                                    .limit("max_alloc_bytes")
                                    .tensor(&info.name)
                                    .in_file(&self.path),
                            )
                        })?;
                    let mut all = Vec::new();
                    decoder.take(info.nbytes).read_to_end(&mut all).map_err(io)?;
                    if all.len() as u64 != info.nbytes {
                        return Err(
                            err(rules::ARCHIVE, "deflated member is shorter than its header says")
                                .tensor(&info.name)
                                .into(),
                        );
                    }
                    return Ok(TensorData::Chunks(Box::new(from_fortran(
                        all,
                        a.header.clone(),
                        elem,
                    ))));
                }
                let mut left = info.nbytes;
                let dtype = a.header.dtype;
                Ok(TensorData::Chunks(Box::new(std::iter::from_fn(move || {
                    if left == 0 {
                        return None;
                    }
                    let n = left.min((CHUNK_BYTES - CHUNK_BYTES % elem) as u64) as usize;
                    let mut buf = vec![0u8; n];
                    if let Err(e) = decoder.read_exact(&mut buf) {
                        left = 0;
                        return Some(Err(io(e)));
                    }
                    left -= n as u64;
                    if swap {
                        dtype.swap_byte_order(&mut buf);
                    }
                    Some(Ok(buf))
                }))))
            }
        }
    }
}

/// Row-major chunks from a column-major array, little-endian.
fn from_fortran<S: AsRef<[u8]> + Send>(
    src: S,
    h: NpyHeader,
    elem: usize,
) -> impl Iterator<Item = Result<Vec<u8>>> + Send {
    let view = strided::Strided::column_major(elem, &h.shape);
    strided::gather(src, view, move |buf| {
        if h.big_endian {
            h.dtype.swap_byte_order(buf);
        }
    })
}
