//! Typed metadata values to and from Python objects.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use tensorcast::{Array, Metadata, Value};

/// `metadata` as a dict, keys in file order.
pub fn metadata_to_py<'py>(py: Python<'py>, metadata: &Metadata) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in metadata.iter() {
        d.set_item(k, to_py(py, v)?)?;
    }
    Ok(d)
}

/// One value: integers as `int`, floats as `float`, arrays as `list`.
pub fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::U8(x) => x.into_pyobject(py)?.into_any(),
        Value::I8(x) => x.into_pyobject(py)?.into_any(),
        Value::U16(x) => x.into_pyobject(py)?.into_any(),
        Value::I16(x) => x.into_pyobject(py)?.into_any(),
        Value::U32(x) => x.into_pyobject(py)?.into_any(),
        Value::I32(x) => x.into_pyobject(py)?.into_any(),
        Value::U64(x) => x.into_pyobject(py)?.into_any(),
        Value::I64(x) => x.into_pyobject(py)?.into_any(),
        Value::F32(x) => PyFloat::new(py, f64::from(*x)).into_any(),
        Value::F64(x) => PyFloat::new(py, *x).into_any(),
        Value::Str(s) => PyString::new(py, s).into_any(),
        Value::Array(a) => array_to_py(py, a)?,
        Value::Map(m) => metadata_to_py(py, m)?.into_any(),
        // A kind newer than this binding: its JSON text.
        other => PyString::new(py, &other.to_metadata_string()).into_any(),
    })
}

/// A list of the array's elements, built from the packed buffer directly.
fn array_to_py<'py>(py: Python<'py>, a: &Array) -> PyResult<Bound<'py, PyAny>> {
    Ok(match a {
        Array::Bool(v) => PyList::new(py, v)?.into_any(),
        Array::U8(v) => PyList::new(py, v)?.into_any(),
        Array::I8(v) => PyList::new(py, v)?.into_any(),
        Array::U16(v) => PyList::new(py, v)?.into_any(),
        Array::I16(v) => PyList::new(py, v)?.into_any(),
        Array::U32(v) => PyList::new(py, v)?.into_any(),
        Array::I32(v) => PyList::new(py, v)?.into_any(),
        Array::U64(v) => PyList::new(py, v)?.into_any(),
        Array::I64(v) => PyList::new(py, v)?.into_any(),
        Array::F32(v) => PyList::new(py, v.iter().map(|&x| f64::from(x)))?.into_any(),
        Array::F64(v) => PyList::new(py, v)?.into_any(),
        Array::Str(v) => PyList::new(py, v.iter())?.into_any(),
        Array::Values(_, items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        // A kind newer than this binding: element by element.
        other => {
            let list = PyList::empty(py);
            for item in other.iter() {
                list.append(to_py(py, &item)?)?;
            }
            list.into_any()
        }
    })
}

/// Deepest nesting accepted from Python (a self-referencing list would
/// otherwise recurse forever).
const MAX_DEPTH: usize = 64;

/// A dict of metadata from Python: `str` keys; values `str`, `int`, `float`,
/// `bool`, `None`, lists and dicts of them.
pub fn metadata_from_py(dict: &Bound<'_, PyDict>) -> PyResult<Metadata> {
    let mut m = Metadata::new();
    for (k, v) in dict.iter() {
        let key: String = match k.extract() {
            Ok(key) => key,
            Err(_) => {
                let type_name = k.get_type().name()?;
                return Err(PyTypeError::new_err(format!(
                    "metadata keys are str, not {type_name}"
                )));
            }
        };
        let value =
            from_py(&v, 0).map_err(|e| PyValueError::new_err(format!("metadata key '{key}': {e}")))?;
        // A dict's keys are unique: appended, not looked up.
        m.push_unchecked(key, value);
    }
    Ok(m)
}

fn from_py(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "nested deeper than {MAX_DEPTH} levels"
        )));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::Str(s.to_cow()?.into_owned()));
    }
    if obj.is_instance_of::<PyInt>() || obj.hasattr("__index__")? && !obj.is_instance_of::<PyFloat>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::I64(i));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::U64(u));
        }
        return Err(PyValueError::new_err("an integer beyond 64 bits"));
    }
    if let Ok(f) = obj.extract::<f64>() {
        return Ok(Value::F64(f));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let items = obj
            .try_iter()?
            .map(|item| from_py(&item?, depth + 1))
            .collect::<PyResult<Vec<_>>>()?;
        return Ok(Value::array(items));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut m = Metadata::new();
        for (k, v) in d.iter() {
            let key: String = k.extract()?;
            m.push_unchecked(key, from_py(&v, depth + 1)?);
        }
        return Ok(Value::Map(m));
    }
    Err(PyTypeError::new_err(format!(
        "a {} is not a metadata value (str, int, float, bool, None, list, dict)",
        obj.get_type().name()?
    )))
}
