//! The native half of the `tensorcast` Python package (`tensorcast._native`):
//! opening any file the library reads as a `Handle`, tensors as
//! `RawTensor` buffers numpy can view without copying, writing
//! arrays a caller holds, conversion and inspection. The public Python API
//! (`safe_open`, `load_file`, `save_file`, ...) is `tensorcast/__init__.py`,
//! which turns these buffers into numpy arrays or torch tensors.
#![deny(missing_docs)]

mod arrays;
mod errors;
mod handle;
mod location;
mod options;
mod values;
mod virtual_zarr;

use pyo3::prelude::*;
use std::path::PathBuf;

/// Opens `path` (any format the library reads; a directory is a Hugging
/// Face model folder) with reading options `options` (a dict: `lenient`,
/// `select`, `strip_prefix`, `dedupe_tied`, limits). `dequantize` turns
/// ggml blocks into F32 as gguf-py does. The GIL is released while headers
/// are read and checked.
#[pyfunction]
#[pyo3(signature = (path, dequantize = true, options = None))]
fn open(
    py: Python<'_>,
    path: &Bound<'_, PyAny>,
    dequantize: bool,
    options: Option<&Bound<'_, pyo3::types::PyDict>>,
) -> PyResult<handle::Handle> {
    let path = location::location(path)?;
    let read = options::read_options(options)?;
    let densify = options::densify(options)?;
    handle::Handle::open(py, path, dequantize, densify, read)
}

/// Converts the file `src` into `dst` with the CLI's options (a dict);
/// returns `{"tensors", "bytes_in", "warnings"}`.
#[pyfunction]
#[pyo3(signature = (src, dst, options = None))]
fn convert<'py>(
    py: Python<'py>,
    src: &Bound<'py, PyAny>,
    dst: &Bound<'py, PyAny>,
    options: Option<&Bound<'py, pyo3::types::PyDict>>,
) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
    let (src, dst) = (location::location(src)?, location::location(dst)?);
    let opts = options::convert_options(options)?;
    let report = py
        .detach(|| tensorcast::convert_file(&src, &dst, &opts))
        .map_err(|e| errors::to_py(py, e))?;
    options::report(py, &report)
}

/// Writes `tensors` (a list of `(name, dtype, shape, array)`, each array a
/// C-contiguous buffer exposing `__array_interface__` whose bytes are the
/// tensor's, little-endian) and `metadata` into `path`, the format chosen
/// by its extension or `options["to"]`.
#[pyfunction]
#[pyo3(signature = (tensors, path, metadata = None, options = None))]
fn save<'py>(
    py: Python<'py>,
    tensors: &Bound<'py, pyo3::types::PyList>,
    path: &Bound<'py, PyAny>,
    metadata: Option<&Bound<'py, pyo3::types::PyDict>>,
    options: Option<&Bound<'py, pyo3::types::PyDict>>,
) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
    let path = location::location(path)?;
    let opts = options::convert_options(options)?;
    let source = arrays::ArraysSource::new(tensors, metadata)?;
    let report = py
        .detach(|| tensorcast::write_source(Box::new(source), &path, &opts))
        .map_err(|e| errors::to_py(py, e))?;
    options::report(py, &report)
}

/// `inspect --json` of `path` as JSON text: format, metadata, tensors
/// (headers only; no tensor data is read).
#[pyfunction]
#[pyo3(signature = (path, options = None))]
fn inspect_json(
    py: Python<'_>,
    path: &Bound<'_, PyAny>,
    options: Option<&Bound<'_, pyo3::types::PyDict>>,
) -> PyResult<String> {
    let path = location::location(path)?;
    let read = options::read_options(options)?;
    py.detach(|| {
        let source = tensorcast::open(&path, &read)?;
        serde_json::to_string(&tensorcast::inspect_json(&*source))
            .map_err(|e| tensorcast::Error::unsupported(tensorcast::code::INTERNAL, e.to_string()))
    })
    .map_err(|e| errors::to_py(py, e))
}

/// Writes the kerchunk reference set of `src` into `dst` (see
/// `tensorcast refs`); returns the counts and the tensors left out.
#[pyfunction]
#[pyo3(signature = (src, dst, url = None, dims = None, inline = None, inline_below = None, chunk_bytes = None, materialize = None, force = false, options = None))]
#[allow(clippy::too_many_arguments)]
fn refs<'py>(
    py: Python<'py>,
    src: &Bound<'py, PyAny>,
    dst: PathBuf,
    url: Option<String>,
    dims: Option<std::collections::HashMap<String, Vec<String>>>,
    inline: Option<Vec<String>>,
    inline_below: Option<u64>,
    chunk_bytes: Option<u64>,
    materialize: Option<PathBuf>,
    force: bool,
    options: Option<&Bound<'py, pyo3::types::PyDict>>,
) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
    let src = location::location(src)?;
    let read = options::read_options(options)?;
    let mut opts = tensorcast::RefsOptions::new(url.unwrap_or_else(|| src.to_string()));
    opts.dims = dims.unwrap_or_default();
    opts.inline = inline.unwrap_or_default();
    opts.inline_below = inline_below;
    opts.chunk_bytes = chunk_bytes.unwrap_or(tensorcast::DEFAULT_CHUNK_BYTES).max(1);
    if let (Some(dir), Some(name)) = (materialize, src.as_path().file_name()) {
        let path = dir.join(format!("{}.materialized", name.to_string_lossy()));
        opts.materialize = Some((path.clone(), path.display().to_string()));
    }
    let refs = py
        .detach(|| tensorcast::references_file(&src, &dst, &read, &opts, force))
        .map_err(|e| errors::to_py(py, e))?;
    let d = pyo3::types::PyDict::new(py);
    d.set_item("variables", refs.variables)?;
    d.set_item("chunks", refs.chunks)?;
    d.set_item("inlined", refs.inlined)?;
    d.set_item("materialized", refs.materialized)?;
    d.set_item("not_virtualizable", refs.not_virtualizable)?;
    Ok(d)
}

/// Checks the whole file: an empty list when sound, else one line per
/// damaged part.
#[pyfunction]
fn verify(py: Python<'_>, path: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    let path = location::location(path)?;
    let read = tensorcast::Options::default();
    py.detach(|| tensorcast::verify(&path, &read))
        .map_err(|e| errors::to_py(py, e))
}

/// The content id of `path` (spec/digest.md) as `(id, [(name, kind,
/// shape, nbytes, digest)])`, tensors in name order.
#[pyfunction]
#[pyo3(signature = (path, options = None))]
#[allow(clippy::type_complexity)]
fn digest(
    py: Python<'_>,
    path: &Bound<'_, PyAny>,
    options: Option<&Bound<'_, pyo3::types::PyDict>>,
) -> PyResult<(String, Vec<(String, String, Vec<u64>, u64, String)>)> {
    let path = location::location(path)?;
    let read = options::read_options(options)?;
    let d = py
        .detach(|| tensorcast::digest(&*tensorcast::open(&path, &read)?))
        .map_err(|e| errors::to_py(py, e))?;
    let tensors = d
        .tensors
        .iter()
        .map(|t| (t.name.clone(), t.kind.clone(), t.shape.clone(), t.nbytes, t.hex()))
        .collect();
    Ok((d.id.to_string(), tensors))
}

/// Edits the metadata of `path` (see `tensorcast edit`): deletes first,
/// then each `(key, type or None, text)` set, into `output` or in place.
#[pyfunction]
#[pyo3(signature = (path, sets, deletes, output = None, force = false))]
fn edit(
    py: Python<'_>,
    path: PathBuf,
    sets: Vec<(String, Option<String>, String)>,
    deletes: Vec<String>,
    output: Option<PathBuf>,
    force: bool,
) -> PyResult<(u64, u64, bool)> {
    let edits: Vec<_> = deletes
        .into_iter()
        .map(tensorcast::MetaEdit::Delete)
        .chain(
            sets.into_iter()
                .map(|(key, ty, text)| tensorcast::MetaEdit::Set { key, ty, text }),
        )
        .collect();
    let limits = tensorcast::Limits::default();
    let r = py
        .detach(|| tensorcast::edit(&path, &edits, output.as_deref(), force, &limits))
        .map_err(|e| errors::to_py(py, e))?;
    Ok((r.header_bytes, r.data_bytes, r.in_place))
}

/// Merges the models a mergekit configuration (YAML or JSON text) names
/// into `output` (see `tensorcast merge`); returns the tensor count.
#[pyfunction]
#[pyo3(signature = (config, output, to = None, force = false, seed = 0, quantize = None, imatrix = None))]
#[allow(clippy::too_many_arguments)]
fn merge(
    py: Python<'_>,
    config: String,
    output: &Bound<'_, PyAny>,
    to: Option<String>,
    force: bool,
    seed: u64,
    quantize: Option<String>,
    imatrix: Option<&Bound<'_, PyAny>>,
) -> PyResult<usize> {
    let output = location::location(output)?;
    let config = tensorcast::merge::MergeConfig::from_yaml(&config).map_err(|e| errors::to_py(py, e))?;
    let opts = tensorcast::ConvertOptions {
        to,
        force,
        quantize: quantize.as_deref().map(options::quant).transpose()?,
        imatrix: imatrix.map(location::location).transpose()?,
        ..Default::default()
    };
    let report = py
        .detach(|| tensorcast::merge::merge(&config, output, &opts, seed))
        .map_err(|e| errors::to_py(py, e))?;
    Ok(report.tensors)
}

/// The module `tensorcast._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("TensorcastError", m.py().get_type::<errors::TensorcastError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<handle::Handle>()?;
    m.add_class::<handle::RawTensor>()?;
    m.add_function(wrap_pyfunction!(open, m)?)?;
    m.add_function(wrap_pyfunction!(virtual_zarr::zarr_manifest, m)?)?;
    m.add_function(wrap_pyfunction!(virtual_zarr::decode_f32, m)?)?;
    m.add_function(wrap_pyfunction!(virtual_zarr::element_count, m)?)?;
    m.add_function(wrap_pyfunction!(convert, m)?)?;
    m.add_function(wrap_pyfunction!(save, m)?)?;
    m.add_function(wrap_pyfunction!(inspect_json, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(digest, m)?)?;
    m.add_function(wrap_pyfunction!(edit, m)?)?;
    m.add_function(wrap_pyfunction!(refs, m)?)?;
    m.add_function(wrap_pyfunction!(merge, m)?)?;
    Ok(())
}
