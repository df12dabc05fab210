//! The native half of `tensorcast.virtualizarr`: a file's virtual Zarr
//! variables (chunk manifests as plain values) read through the caller's
//! object store, and the `tensorcast.decode` codec's decoder.
//!
//! Objects in a store are read through Python callables (the VirtualiZarr
//! registry's store, via obstore), so the file's headers are fetched by range
//! exactly as the library's own remote reader fetches them; local files are
//! mapped.

use crate::errors;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tensorcast::code;
use tensorcast::{DType, Error, Input, Limits, ReadAt, Result, SiblingFiles};

/// An object read through a Python callable `read(offset, length) -> bytes`.
struct PyObjectReader {
    read: Py<PyAny>,
    len: u64,
    url: String,
}

impl ReadAt for PyObjectReader {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let fail = |why: String| Error::io(&self.url, std::io::Error::other(why));
        Python::attach(|py| {
            let got = self
                .read
                .call1(py, (offset, buf.len() as u64))
                .map_err(|e| fail(e.to_string()))?;
            let got = got.bind(py);
            let bytes: &[u8] = if let Ok(b) = got.cast::<PyBytes>() {
                b.as_bytes()
            } else {
                return Err(fail("the store's read returned no bytes object".into()));
            };
            // A store that answers with another length than asked is refused:
            // the reader would otherwise parse bytes from elsewhere.
            if bytes.len() != buf.len() {
                return Err(fail(format!(
                    "asked for {} bytes at {offset}, the store returned {}",
                    buf.len(),
                    bytes.len()
                )));
            }
            buf.copy_from_slice(bytes);
            Ok(())
        })
    }

    fn describe(&self) -> String {
        self.url.clone()
    }
}

/// Files beside an object, opened through a Python callable
/// `sibling(file_name) -> (read, size, url)`.
struct PySiblings {
    open: Py<PyAny>,
    base: String,
    registry: tensorcast::Registry,
    limits: Limits,
}

impl SiblingFiles for PySiblings {
    fn open(&self, file_name: &str) -> Result<tensorcast::Bytes> {
        let name = self.name_of(file_name);
        let (read, len, url) = Python::attach(|py| {
            self.open
                .call1(py, (file_name,))
                .and_then(|r| r.extract::<(Py<PyAny>, u64, String)>(py))
        })
        .map_err(|e| Error::io(&name, std::io::Error::other(e.to_string())))?;
        let object = Arc::new(PyObjectReader { read, len, url });
        tensorcast::remote::object_bytes(&self.registry, object, &self.limits)
    }

    fn name_of(&self, file_name: &str) -> PathBuf {
        PathBuf::from(match self.base.rfind('/') {
            Some(i) => format!("{}{file_name}", &self.base[..=i]),
            None => file_name.to_string(),
        })
    }
}

/// The virtual variables of the object at `url`: a local file when `read`
/// is None (then `url` is its `file://` URL and `path` its path), else read
/// through `read(offset, length)` of `size` bytes with siblings through
/// `sibling(name)`. Returns `{"format", "metadata", "arrays", "not_virtual"}`,
/// each array a dict of name, shape, data_type, decode (a dtype name or
/// None), chunk_shape, dims, chunks (list of (url, offset, length)), attrs.
#[pyfunction]
#[pyo3(signature = (url, path = None, read = None, size = None, sibling = None, dims = None, skip = None, chunk_bytes = None, load = None, options = None))]
#[allow(clippy::too_many_arguments)]
pub fn zarr_manifest<'py>(
    py: Python<'py>,
    url: String,
    path: Option<PathBuf>,
    read: Option<Py<PyAny>>,
    size: Option<u64>,
    sibling: Option<Py<PyAny>>,
    dims: Option<HashMap<String, Vec<String>>>,
    skip: Option<Vec<String>>,
    chunk_bytes: Option<u64>,
    load: Option<&Bound<'py, PyAny>>,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let read_opts = crate::options::read_options(options)?;
    let mut opts = tensorcast::ManifestOptions::new(url.clone());
    opts.dims = dims.unwrap_or_default();
    opts.skip = skip.unwrap_or_default();
    opts.chunk_bytes = chunk_bytes.unwrap_or(tensorcast::DEFAULT_CHUNK_BYTES).max(1);
    opts.load = match load {
        None => tensorcast::Load::Nothing,
        Some(v) if v.is_instance_of::<pyo3::types::PyBool>() => {
            if v.extract::<bool>()? {
                tensorcast::Load::All
            } else {
                tensorcast::Load::Nothing
            }
        }
        Some(v) => tensorcast::Load::Named(v.extract()?),
    };
    let registry = opts.registry.clone();
    let manifest = py
        .detach(|| {
            let source = match (path, read) {
                (Some(path), None) => registry.open(tensorcast::Location::Local(path), &read_opts)?,
                (None, Some(read)) => {
                    let object = Arc::new(PyObjectReader {
                        read,
                        len: size.unwrap_or(0),
                        url: url.clone(),
                    });
                    let limits = read_opts.limits.clone();
                    let input = Input {
                        bytes: tensorcast::remote::object_bytes(&registry, object, &limits)?,
                        name: PathBuf::from(&url),
                        siblings: sibling.map(|open| {
                            Arc::new(PySiblings {
                                open,
                                base: url.clone(),
                                registry: registry.clone(),
                                limits,
                            }) as Arc<dyn SiblingFiles>
                        }),
                    };
                    registry.open_input(input, &read_opts)?
                }
                _ => {
                    return Err(Error::usage(
                        code::BAD_OPTION,
                        "zarr_manifest: give a local path or a read callable, not both",
                    ))
                }
            };
            tensorcast::zarr_manifest(&*source, &opts)
        })
        .map_err(|e| errors::to_py(py, e))?;
    let out = PyDict::new(py);
    out.set_item("format", manifest.format)?;
    out.set_item("metadata", crate::values::metadata_to_py(py, &manifest.metadata)?)?;
    let arrays = PyList::empty(py);
    for a in &manifest.arrays {
        let d = PyDict::new(py);
        d.set_item("name", &a.name)?;
        d.set_item("shape", &a.shape)?;
        d.set_item("data_type", a.data_type)?;
        d.set_item(
            "decode",
            match &a.encoding {
                tensorcast::Encoding::Plain => None,
                tensorcast::Encoding::Decode(name) => Some(name.as_str()),
            },
        )?;
        d.set_item("chunk_shape", &a.chunk_shape)?;
        d.set_item("dims", &a.dims)?;
        d.set_item("chunks", &a.chunks)?;
        d.set_item("attrs", a.attrs.iter().cloned().collect::<HashMap<_, _>>())?;
        arrays.append(d)?;
    }
    out.set_item("arrays", arrays)?;
    out.set_item("not_virtual", &manifest.not_virtual)?;
    let loaded = PyList::empty(py);
    for a in &manifest.loaded {
        let d = PyDict::new(py);
        d.set_item("name", &a.name)?;
        d.set_item("shape", &a.shape)?;
        d.set_item("data_type", a.data_type)?;
        d.set_item("bytes", PyBytes::new(py, &a.bytes))?;
        d.set_item("attrs", a.attrs.iter().cloned().collect::<HashMap<_, _>>())?;
        loaded.append(d)?;
    }
    out.set_item("loaded", loaded)?;
    Ok(out)
}

/// Decodes `count` elements of `dtype` (`BF16`, `F8_E4M3`, `Q4_K`…) stored
/// in `data` to float32 little-endian bytes: the `tensorcast.decode` codec.
/// ggml blocks decode bit-identically to gguf-py.
#[pyfunction]
pub fn decode_f32<'py>(
    py: Python<'py>,
    data: &[u8],
    dtype: &str,
    count: u64,
) -> PyResult<Bound<'py, PyBytes>> {
    let dtype: DType = dtype.parse().map_err(PyValueError::new_err)?;
    let values = py
        .detach(|| tensorcast::decode_to_f32(dtype, data, count))
        .map_err(|e| errors::to_py(py, e))?;
    let n = values.len() * 4;
    PyBytes::new_with(py, n, |buf| {
        for (out, v) in buf.chunks_exact_mut(4).zip(&values) {
            out.copy_from_slice(&v.to_le_bytes());
        }
        Ok(())
    })
}

/// How many elements of `dtype` `nbytes` stored bytes hold (whole elements,
/// whole blocks for ggml types); an error otherwise.
#[pyfunction]
pub fn element_count(dtype: &str, nbytes: u64) -> PyResult<u64> {
    let parsed: DType = dtype.parse().map_err(PyValueError::new_err)?;
    tensorcast::elements_in(parsed, nbytes).ok_or_else(|| {
        PyValueError::new_err(format!(
            "tensorcast.decode ({dtype}): {nbytes} bytes are not whole elements"
        ))
    })
}
