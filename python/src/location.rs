//! Paths and URLs from Python, told apart where they come in: a `str` is a
//! URL when it spells one (`s3://bucket/key`, `hf://org/repo`), a local path
//! otherwise; an `os.PathLike` (a `pathlib.Path`) is always a local path.

use pyo3::prelude::*;
use std::path::PathBuf;
use tensorcast::Location;

/// The location `obj` names.
pub fn location(obj: &Bound<'_, PyAny>) -> PyResult<Location> {
    if let Ok(text) = obj.extract::<String>() {
        return Ok(Location::parse(&text));
    }
    Ok(Location::Local(obj.extract::<PathBuf>()?))
}
