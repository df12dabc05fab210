//! An open file ([`Handle`]) and one tensor's bytes ([`RawTensor`]), exposed
//! through numpy's `__array_interface__` so `numpy.asarray` views them
//! without a copy and keeps them alive.

use crate::errors;
use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use std::path::PathBuf;
use std::sync::Arc;
use tensorcast::code;
use tensorcast::{DType, Options, Source, TensorData, TensorInfo};

/// An open file: descriptors and metadata read, tensor bytes on demand.
#[pyclass(frozen, module = "tensorcast._native")]
pub struct Handle {
    source: Arc<dyn Source>,
    path: PathBuf,
    /// Blocks were asked for as F32: a tensor still in blocks has no
    /// reference dequantizer and is refused when read.
    dequantize: bool,
}

impl Handle {
    /// Opens `path` with the built-in formats, dequantizing ggml blocks and
    /// densifying sparse tensors when asked.
    pub fn open(
        py: Python<'_>,
        location: tensorcast::Location,
        dequantize: bool,
        densify: bool,
        options: Options,
    ) -> PyResult<Handle> {
        let opened = py.detach(|| -> tensorcast::Result<Arc<dyn Source>> {
            let mut source = tensorcast::open(&location, &options)?;
            if densify {
                source = Box::new(tensorcast::sparse::Densify::new(source, options.limits.clone())?);
            }
            let quantized = source
                .tensors()
                .iter()
                .any(|t| matches!(t.dtype, DType::Quant(_)));
            if dequantize && quantized {
                let all = tensorcast::quant::Dequantize::keeping_undecodable(source)?;
                return Ok(Arc::new(all));
            }
            Ok(Arc::from(source))
        });
        let source = opened.map_err(|e| errors::to_py(py, e))?;
        Ok(Handle {
            source,
            path: location.as_path().to_path_buf(),
            dequantize,
        })
    }

    fn index(&self, name: &str) -> PyResult<usize> {
        self.source
            .find(name)
            .ok_or_else(|| PyKeyError::new_err(format!("{}: no tensor named '{name}'", self.path.display())))
    }
}

#[pymethods]
impl Handle {
    /// The format name (`safetensors`, `gguf`, `pytorch`, `tpack`, `npy`, `npz`).
    #[getter]
    fn format(&self) -> &'static str {
        self.source.format()
    }

    /// The path this handle was opened from.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// Tensor names in file order.
    fn keys(&self) -> Vec<String> {
        self.source.tensors().iter().map(|t| t.name.clone()).collect()
    }

    /// The file's metadata as typed Python values, in file order.
    fn metadata<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        crate::values::metadata_to_py(py, self.source.metadata())
    }

    /// `(dtype, shape, nbytes)` of the tensor `name`, read from the header only.
    fn info(&self, name: &str) -> PyResult<(&'static str, Vec<u64>, u64)> {
        let t = &self.source.tensors()[self.index(name)?];
        Ok((t.dtype.name(), t.shape.clone(), t.nbytes))
    }

    /// For each tensor in file order, whether its bytes lie raw in the file
    /// (so reading it is mapping it, with nothing to decode).
    fn raw_in_file(&self) -> Vec<bool> {
        self.source
            .tensors()
            .iter()
            .map(|t| t.file_offset.is_some())
            .collect()
    }

    /// What the reader could not carry over exactly, one line each.
    fn warnings(&self) -> Vec<String> {
        self.source.warnings().to_vec()
    }

    /// The bytes of tensor `name`: a view of the mapped file where they lie
    /// raw in it (read-only), else (or with `copy`) a new writable buffer,
    /// decoded or copied with the GIL released.
    #[pyo3(signature = (name, copy = false))]
    fn tensor(&self, py: Python<'_>, name: &str, copy: bool) -> PyResult<RawTensor> {
        let index = self.index(name)?;
        let info = self.source.tensors()[index].clone();
        if let (true, DType::Quant(q)) = (self.dequantize, info.dtype) {
            let e = tensorcast::quant::no_dequantizer(&info.name, q);
            return Err(errors::to_py(py, e));
        }
        if let Some(e) = info.unreadable_error(self.source.format()) {
            return Err(errors::to_py(py, e.in_file(&self.path)));
        }
        if let Some(sp) = &info.sparse {
            let e = tensorcast::Error::unsupported(
                code::SPARSE_NOT_HELD,
                format!(
                "{}: tensor '{}' is {}: open with densify=True for the dense tensor torch's to_dense() gives",
                self.path.display(),
                info.name,
                sp.describe()
            ),
            );
            return Err(errors::to_py(py, e));
        }
        let source = self.source.clone();
        let read = py.detach(move || RawTensor::read(source, index, info, copy));
        read.map_err(|e| errors::to_py(py, e))
    }
}

/// Who keeps a tensor's bytes alive (held, never read: dropping it is
/// what frees or unmaps).
#[allow(dead_code)]
enum Backing {
    /// The bytes lie in memory the source holds (a map, a buffer): holding
    /// the source keeps them where they are.
    Source(Arc<dyn Source>),
    /// A buffer of our own, freed when the last array viewing it goes.
    Owned(OwnedBuffer),
}

/// A heap buffer addressed only through its raw pointer, so that numpy may
/// write into it while no Rust reference to it exists.
struct OwnedBuffer {
    ptr: *mut [u8],
}

// SAFETY: the buffer is plain bytes owned by this value alone; Rust never
// reads it after handing the pointer out, and numpy's access is the caller's.
unsafe impl Send for OwnedBuffer {}
// SAFETY: as above; shared access from Rust is limited to the pointer value.
unsafe impl Sync for OwnedBuffer {}

impl Drop for OwnedBuffer {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `Box::into_raw` and is dropped exactly once.
        drop(unsafe { Box::from_raw(self.ptr) });
    }
}

/// One tensor's bytes with the numpy description of them. `numpy.asarray`
/// of it is an array viewing the bytes, which keeps this object (and so the
/// file's map or the decoded buffer) alive.
#[pyclass(frozen, module = "tensorcast._native")]
pub struct RawTensor {
    _backing: Backing,
    addr: usize,
    len: usize,
    readonly: bool,
    dtype: DType,
    /// The shape numpy sees: the logical shape, or for ggml blocks the rows
    /// as bytes (`[..., row_bytes]`, as gguf-py gives raw blocks).
    view_shape: Vec<u64>,
    shape: Vec<u64>,
}

impl RawTensor {
    fn read(
        source: Arc<dyn Source>,
        index: usize,
        info: TensorInfo,
        copy: bool,
    ) -> tensorcast::Result<RawTensor> {
        let view_shape = view_shape(&info)?;
        let data = source.tensor_data(index)?;
        let (backing, addr, len, readonly) = match data {
            TensorData::Borrowed(bytes) | TensorData::Located { bytes, .. } if copy => {
                // A plain allocation: numpy's own copy asks for huge pages,
                // whose compaction stalls a loaded machine for many times
                // the copy's cost.
                let ptr = Box::into_raw(Box::<[u8]>::from(bytes));
                let (addr, len) = (ptr as *mut u8 as usize, ptr.len());
                (Backing::Owned(OwnedBuffer { ptr }), addr, len, false)
            }
            TensorData::Borrowed(bytes) | TensorData::Located { bytes, .. } => {
                let (addr, len) = (bytes.as_ptr() as usize, bytes.len());
                // The bytes borrow from `source` for as long as it lives;
                // the Arc held in the backing keeps it alive and unmoved.
                (Backing::Source(source.clone()), addr, len, true)
            }
            // Chunks, and any form newer than this binding: one copy.
            chunks => {
                let ptr = Box::into_raw(chunks.into_vec()?.into_boxed_slice());
                let (addr, len) = (ptr as *mut u8 as usize, ptr.len());
                (Backing::Owned(OwnedBuffer { ptr }), addr, len, false)
            }
        };
        if len as u64 != info.nbytes {
            return Err(tensorcast::FormatError::new(
                source.format(),
                "tensor-size",
                format!("{} bytes read where the header promises {}", len, info.nbytes),
            )
            .tensor(&info.name)
            .into());
        }
        Ok(RawTensor {
            _backing: backing,
            addr,
            len,
            readonly,
            dtype: info.dtype,
            view_shape,
            shape: info.shape,
        })
    }
}

/// numpy's shape for the bytes of `info`.
fn view_shape(info: &TensorInfo) -> tensorcast::Result<Vec<u64>> {
    match info.dtype {
        DType::Quant(_) => {
            let rows: u64 = info.shape.iter().rev().skip(1).product();
            let row_bytes = info.nbytes.checked_div(rows).unwrap_or(0);
            let mut shape: Vec<u64> = info.shape.iter().rev().skip(1).rev().copied().collect();
            shape.push(row_bytes);
            Ok(shape)
        }
        // Two 4-bit values a byte, as torch's float4_e2m1fn_x2 holds them
        // (and safetensors writes them): the bytes' shape halves the last dim.
        DType::F4 if info.shape.last().is_some_and(|d| d % 2 == 0) => {
            let mut shape = info.shape.clone();
            if let Some(last) = shape.last_mut() {
                *last /= 2;
            }
            Ok(shape)
        }
        DType::F4 | DType::F6E2M3 | DType::F6E3M2 => Err(tensorcast::Error::unsupported(code::DTYPE_NOT_HELD, format!(
            "tensor '{}' is {}, packed below one byte per element, which numpy and torch have no type for: convert the file with dtype=\"f16\" (or the CLI's --dtype f16) to read it",
            info.name,
            info.dtype.name()
        ))),
        _ => Ok(info.shape.clone()),
    }
}

/// The `__array_interface__` type string of the stored bytes: the dtype's
/// own where numpy has it, else unsigned integers of its width (the Python
/// side views those as bfloat16/float8 through torch or ml_dtypes).
fn typestr(dtype: DType) -> &'static str {
    match dtype {
        DType::Bool => "|b1",
        DType::U8 | DType::Quant(_) | DType::F4 => "|u1",
        DType::I8 => "|i1",
        DType::F8E5M2 | DType::F8E4M3 | DType::F8E8M0 | DType::F8E4M3Fnuz | DType::F8E5M2Fnuz => "|u1",
        DType::I16 => "<i2",
        DType::U16 | DType::BF16 => "<u2",
        DType::F16 => "<f2",
        DType::I32 => "<i4",
        DType::U32 => "<u4",
        DType::F32 => "<f4",
        DType::C64 => "<c8",
        DType::C128 => "<c16",
        DType::F64 => "<f8",
        DType::I64 => "<i8",
        DType::U64 => "<u8",
        // Refused by view_shape before a RawTensor exists (sub-byte floats),
        // or kinds newer than this binding: viewed as bytes.
        _ => "|u1",
    }
}

#[pymethods]
impl RawTensor {
    /// numpy's array interface (version 3): the data pointer, read-only
    /// where it views a mapped file.
    #[getter]
    fn __array_interface__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("version", 3)?;
        d.set_item("shape", PyTuple::new(py, &self.view_shape)?)?;
        d.set_item("typestr", typestr(self.dtype))?;
        d.set_item("data", (self.addr, self.readonly))?;
        d.set_item("strides", py.None())?;
        Ok(d)
    }

    /// The tensor's dtype name (`F32`, `BF16`, `Q4_K`, ...).
    #[getter]
    fn dtype(&self) -> &'static str {
        self.dtype.name()
    }

    /// The logical shape (for ggml blocks: elements, not bytes).
    #[getter]
    fn shape(&self) -> Vec<u64> {
        self.shape.clone()
    }

    /// Size in bytes.
    #[getter]
    fn nbytes(&self) -> usize {
        self.len
    }

    /// Whether the bytes are a read-only view of the file.
    #[getter]
    fn readonly(&self) -> bool {
        self.readonly
    }
}
