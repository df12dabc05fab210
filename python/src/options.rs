//! Keyword options (the CLI's flags, by their long names with `_`) into the
//! library's option structs, and reports back into dicts.

use crate::errors;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tensorcast::{ConvertOptions, DType, Limits, Options, Report, TensorInfo};

/// Options that shape reading (`safe_open`, `load_file`, `inspect`).
const READ_KEYS: &[&str] = &[
    "lenient",
    "select",
    "strip_prefix",
    "dedupe_tied",
    "densify",
    "max_tensors",
    "max_header_size",
    "max_objects",
    "max_depth",
    "max_alloc",
];

/// Options that shape writing (`convert`, `save_file`), besides READ_KEYS.
const WRITE_KEYS: &[&str] = &[
    "to",
    "dtype",
    "force",
    "digest",
    "keep_quantized",
    "quantize",
    "imatrix",
    "max_shard_size",
    "compress",
    "include",
    "exclude",
    "rename",
    "names",
    "tokenizer_pre",
    "progress",
];

/// The dict's entries after refusing any key not in `allowed`.
fn entries<'py>(
    dict: Option<&Bound<'py, PyDict>>,
    allowed: &[&[&str]],
) -> PyResult<Vec<(String, Bound<'py, PyAny>)>> {
    let Some(dict) = dict else { return Ok(Vec::new()) };
    let mut out = Vec::with_capacity(dict.len());
    for (k, v) in dict.iter() {
        let key: String = k.extract()?;
        if !allowed.iter().any(|keys| keys.contains(&key.as_str())) {
            let mut known: Vec<&str> = allowed.iter().flat_map(|k| k.iter().copied()).collect();
            known.sort_unstable();
            return Err(PyTypeError::new_err(format!(
                "unexpected option '{key}' (options: {})",
                known.join(", ")
            )));
        }
        if !v.is_none() {
            out.push((key, v));
        }
    }
    Ok(out)
}

fn size(key: &str, v: &Bound<'_, PyAny>) -> PyResult<u64> {
    if let Ok(n) = v.extract::<u64>() {
        return Ok(n);
    }
    let text: String = v
        .extract()
        .map_err(|_| PyTypeError::new_err(format!("{key} takes a byte count or a size like '5GB'")))?;
    tensorcast::parse_size(&text).map_err(|e| PyValueError::new_err(format!("{key}: {e}")))
}

fn strings(key: &str, v: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if let Ok(s) = v.extract::<String>() {
        return Ok(vec![s]);
    }
    v.extract()
        .map_err(|_| PyTypeError::new_err(format!("{key} takes a str or a list of str")))
}

/// Limits and PyTorch reading options; PyTorch's are set only when one was
/// given, so the library refuses them for a file of another format.
fn read_parts(items: &[(String, Bound<'_, PyAny>)]) -> PyResult<Options> {
    let mut limits = Limits::default();
    let mut pytorch = tensorcast::pytorch::PytorchOptions::default();
    let mut pytorch_set = false;
    for (key, v) in items {
        match key.as_str() {
            "lenient" => {
                pytorch.lenient = v.extract()?;
                pytorch_set |= pytorch.lenient;
            }
            "select" => {
                pytorch.flatten.select = Some(v.extract()?);
                pytorch_set = true;
            }
            "strip_prefix" => {
                pytorch.flatten.strip_prefix = Some(v.extract()?);
                pytorch_set = true;
            }
            "dedupe_tied" => {
                pytorch.flatten.dedupe_tied = v.extract()?;
                pytorch_set |= pytorch.flatten.dedupe_tied;
            }
            "max_tensors" => limits.max_tensors = v.extract()?,
            "max_header_size" => limits.max_header_bytes = size(key, v)?,
            "max_objects" => limits.max_objects = v.extract()?,
            "max_depth" => limits.max_depth = v.extract()?,
            "max_alloc" => limits.max_alloc_bytes = size(key, v)?,
            _ => {}
        }
    }
    let mut options = Options::with_limits(limits.clone());
    if pytorch_set {
        pytorch.limits = limits;
        options.set(pytorch);
    }
    Ok(options)
}

/// Reading options from a dict of READ_KEYS.
pub fn read_options(dict: Option<&Bound<'_, PyDict>>) -> PyResult<Options> {
    read_parts(&entries(dict, &[READ_KEYS])?)
}

/// Whether a dict of READ_KEYS asks for sparse tensors as dense ones.
pub fn densify(dict: Option<&Bound<'_, PyDict>>) -> PyResult<bool> {
    match dict.map(|d| d.get_item("densify")).transpose()?.flatten() {
        Some(v) => v.extract(),
        None => Ok(false),
    }
}

/// Conversion options from a dict of READ_KEYS and WRITE_KEYS.
pub fn convert_options(dict: Option<&Bound<'_, PyDict>>) -> PyResult<ConvertOptions> {
    let items = entries(dict, &[READ_KEYS, WRITE_KEYS])?;
    let mut opts = ConvertOptions {
        options: read_parts(&items)?,
        ..ConvertOptions::default()
    };
    let mut st = tensorcast::safetensors::SafetensorsWriteOptions::default();
    let mut tpack = tensorcast::tpack::TpackWriteOptions::default();
    for (key, v) in &items {
        match key.as_str() {
            "to" => opts.to = Some(format_name(v)?),
            "dtype" => opts.dtype = Some(cast_dtype(&v.extract::<String>()?)?),
            "force" => opts.force = v.extract()?,
            "digest" => opts.digest = v.extract()?,
            "keep_quantized" => opts.keep_quantized = v.extract()?,
            "densify" => opts.densify = v.extract()?,
            "quantize" => opts.quantize = Some(quant(&v.extract::<String>()?)?),
            "imatrix" => opts.imatrix = Some(crate::location::location(v)?),
            "max_shard_size" => st.max_shard_bytes = Some(size(key, v)?),
            "compress" => tpack.compress = Some(level(v)?),
            "include" => opts.select.include = strings(key, v)?,
            "exclude" => opts.select.exclude = strings(key, v)?,
            "rename" => opts.select.rename = renames(v)?,
            "names" => {
                let names: String = v.extract()?;
                opts.keep_names = match names.as_str() {
                    "model" => false,
                    "keep" => true,
                    _ => {
                        return Err(errors::usage(format!(
                            "names is 'model' or 'keep', not '{names}'"
                        )))
                    }
                }
            }
            "tokenizer_pre" => {
                opts.options.set(tensorcast::model::ModelOptions {
                    tokenizer_pre: Some(v.extract()?),
                });
            }
            "progress" => {
                if v.is_callable() {
                    opts.progress = Some(tensorcast::ProgressHook(Arc::new(Callback::new(
                        v.clone().unbind(),
                    ))));
                } else if v.extract::<bool>()? {
                    return Err(PyTypeError::new_err(
                        "progress takes a callable(done_bytes, total_bytes), or False",
                    ));
                }
            }
            _ => {}
        }
    }
    opts.options.set(st).set(tpack);
    Ok(opts)
}

fn format_name(v: &Bound<'_, PyAny>) -> PyResult<String> {
    let name: String = v.extract()?;
    let registry = tensorcast::Registry::builtin();
    match registry.get(&name) {
        Some(f) if f.can_write() => Ok(f.name().to_string()),
        _ => Err(errors::usage(format!(
            "to='{name}': writable formats are {}",
            registry.writable().join(", ")
        ))),
    }
}

/// A float dtype the cast kernels can produce (as the CLI's --dtype).
fn cast_dtype(s: &str) -> PyResult<DType> {
    let d: DType = s.parse().map_err(errors::usage)?;
    if d.is_float() && tensorcast::cast::can_cast(DType::F32, d) {
        Ok(d)
    } else {
        Err(errors::usage(format!(
            "dtype takes a float type (f64, f32, f16, bf16, f8_e4m3, f8_e5m2, ...), not {d}"
        )))
    }
}

pub(crate) fn quant(s: &str) -> PyResult<tensorcast::FileType> {
    tensorcast::FileType::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = tensorcast::quant::file_type_names().collect();
        errors::usage(format!(
            "quantize takes a llama-quantize type ({}), not '{s}'",
            names.join(", ")
        ))
    })
}

/// tpack's zstd level: 1-22, or 0 / "none" / False for raw chunks.
fn level(v: &Bound<'_, PyAny>) -> PyResult<i32> {
    if let Ok(s) = v.extract::<String>() {
        if s.eq_ignore_ascii_case("none") {
            return Ok(0);
        }
        return Err(errors::usage(format!(
            "compress takes a zstd level 1-22 or 'none', not '{s}'"
        )));
    }
    if let Ok(false) = v.extract::<bool>() {
        return Ok(0);
    }
    match v.extract::<i32>() {
        Ok(l) if (0..=22).contains(&l) => Ok(l),
        _ => Err(errors::usage("compress takes a zstd level 1-22 or 'none'")),
    }
}

/// `{"FROM": "TO"}` or a list of `"FROM=TO"` (`re:PATTERN=TO` for regexes).
fn renames(v: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    if let Ok(d) = v.cast::<PyDict>() {
        return d.iter().map(|(k, v)| Ok((k.extract()?, v.extract()?))).collect();
    }
    strings("rename", v)?
        .iter()
        .map(|r| tensorcast::Selection::parse_rename(r).map_err(errors::usage))
        .collect()
}

/// A Python callable called as `progress(done_bytes, total_bytes)` with
/// the output bytes written so far, once at the start and after each chunk.
struct Callback {
    f: Py<PyAny>,
    total: AtomicU64,
    done: AtomicU64,
}

impl Callback {
    fn new(f: Py<PyAny>) -> Callback {
        Callback {
            f,
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
        }
    }

    fn call(&self, done: u64) {
        let total = self.total.load(Ordering::Relaxed);
        Python::attach(|py| {
            // A callback that raises cannot stop the conversion from here;
            // its exception is reported as unraisable instead.
            if let Err(e) = self.f.call1(py, (done, total)) {
                e.write_unraisable(py, None);
            }
        });
    }
}

impl tensorcast::Progress for Callback {
    fn begin(&self, _tensors: usize, bytes: u64) {
        self.total.store(bytes, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
        self.call(0);
    }
    fn tensor_done(&self, _info: &TensorInfo) {}
    fn bytes_done(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        self.call(done);
    }
}

/// A conversion's report as `{"tensors", "bytes_in", "warnings"}`.
pub fn report<'py>(py: Python<'py>, report: &Report) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("tensors", report.tensors)?;
    d.set_item("bytes_in", report.bytes_in)?;
    d.set_item("warnings", report.warnings.clone())?;
    if let Some(ids) = &report.digests {
        d.set_item("digest_in", ids.input.to_string())?;
        d.set_item("digest_written", ids.written.to_string())?;
        d.set_item("digest_out", ids.output.to_string())?;
    }
    Ok(d)
}
