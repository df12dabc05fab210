//! Arrays a Python caller holds, as a [`Source`] the writers read without
//! copying them.

use crate::values;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use tensorcast::code;
use tensorcast::{DType, Metadata, Result, Source, TensorData, TensorInfo};

/// Tensors whose bytes live in Python objects (numpy arrays) held here until
/// the write is done.
pub struct ArraysSource {
    tensors: Vec<TensorInfo>,
    /// Address and length of each tensor's bytes inside its owner.
    spans: Vec<(usize, usize)>,
    metadata: Metadata,
    /// The arrays themselves: holding them keeps their buffers alive.
    _owners: Vec<Py<PyAny>>,
}

impl ArraysSource {
    /// From `(name, dtype, shape, array)` tuples and an optional metadata dict.
    pub fn new(items: &Bound<'_, PyList>, metadata: Option<&Bound<'_, PyDict>>) -> PyResult<ArraysSource> {
        let mut source = ArraysSource {
            tensors: Vec::with_capacity(items.len()),
            spans: Vec::with_capacity(items.len()),
            metadata: match metadata {
                Some(d) => values::metadata_from_py(d)?,
                None => Metadata::new(),
            },
            _owners: Vec::with_capacity(items.len()),
        };
        for item in items.iter() {
            let (name, dtype, shape, array): (String, String, Vec<u64>, Bound<'_, PyAny>) = item.extract()?;
            let dtype: DType = dtype
                .parse()
                .map_err(|e: String| PyValueError::new_err(format!("tensor '{name}': {e}")))?;
            let info = TensorInfo::new(&name, dtype, shape.clone()).ok_or_else(|| {
                PyValueError::new_err(format!("tensor '{name}': shape {shape:?} overflows"))
            })?;
            let span = span(&name, &array, info.nbytes)?;
            source.tensors.push(info);
            source.spans.push(span);
            source._owners.push(array.unbind());
        }
        Ok(source)
    }
}

/// Where the bytes of `array` are, checked against the tensor's size: the
/// array must be C-contiguous (its interface has no strides).
fn span(name: &str, array: &Bound<'_, PyAny>, nbytes: u64) -> PyResult<(usize, usize)> {
    let interface = array.getattr("__array_interface__")?;
    let interface = interface
        .cast::<PyDict>()
        .map_err(|_| PyTypeError::new_err(format!("tensor '{name}': __array_interface__ is not a dict")))?;
    let strides = interface.get_item("strides")?;
    if strides.is_some_and(|s| !s.is_none()) {
        return Err(PyValueError::new_err(format!(
            "tensor '{name}': the array is not C-contiguous"
        )));
    }
    let data = interface
        .get_item("data")?
        .ok_or_else(|| PyTypeError::new_err(format!("tensor '{name}': the array interface has no data")))?;
    let data = data.cast::<PyTuple>()?;
    let addr: usize = data.get_item(0)?.extract()?;
    let shape: Vec<u64> = match interface.get_item("shape")? {
        Some(s) => s.extract()?,
        None => Vec::new(),
    };
    let typestr: String = match interface.get_item("typestr")? {
        Some(t) => t.extract()?,
        None => return Err(PyTypeError::new_err(format!("tensor '{name}': no typestr"))),
    };
    let itemsize: u64 = typestr
        .get(2..)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| PyValueError::new_err(format!("tensor '{name}': type string '{typestr}'")))?;
    if typestr.starts_with('>') && itemsize > 1 {
        return Err(PyValueError::new_err(format!(
            "tensor '{name}': big-endian arrays are written little-endian; convert it first"
        )));
    }
    let len = shape
        .iter()
        .try_fold(itemsize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| PyValueError::new_err(format!("tensor '{name}': size overflows")))?;
    if len != nbytes {
        return Err(PyValueError::new_err(format!(
            "tensor '{name}': the array holds {len} bytes, its dtype and shape need {nbytes}"
        )));
    }
    if addr == 0 && len != 0 {
        return Err(PyValueError::new_err(format!(
            "tensor '{name}': null data pointer"
        )));
    }
    Ok((addr, len as usize))
}

impl Source for ArraysSource {
    fn format(&self) -> &'static str {
        "python"
    }

    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        let (addr, len) = *self
            .spans
            .get(index)
            .ok_or_else(|| tensorcast::Error::usage(code::CALL_ORDER, format!("no tensor {index}")))?;
        if len == 0 {
            return Ok(TensorData::Borrowed(&[]));
        }
        // SAFETY: `addr..addr+len` is the C-contiguous data of an array held
        // in `_owners` (checked against its interface in `span`), which keeps
        // it allocated for as long as `self` lives.
        Ok(TensorData::Borrowed(unsafe {
            std::slice::from_raw_parts(addr as *const u8, len)
        }))
    }
}
