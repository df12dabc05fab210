//! Library errors as `tensorcast.TensorcastError` (a `ValueError`) with the
//! structured fields callers match on: `rule`, `path`, `tensor`, `key`,
//! `format`, `kind`, `limit`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

pyo3::create_exception!(
    tensorcast,
    TensorcastError,
    PyValueError,
    "A file broke a rule of its format, exceeded a limit, or could not be read or written. \
     Attributes: rule, path, tensor, key, format, kind, limit, code (None where they do not apply)."
);

/// The Python exception for `e`, its message the CLI's (file, format,
/// tensor or key, rule).
pub fn to_py(py: Python<'_>, e: tensorcast::Error) -> PyErr {
    let kind = match e.kind() {
        tensorcast::ErrorKind::Format => "format",
        tensorcast::ErrorKind::Limit => "limit",
        tensorcast::ErrorKind::Usage => "usage",
        tensorcast::ErrorKind::Unsupported => "unsupported",
        tensorcast::ErrorKind::Io => "io",
        _ => "other",
    };
    let mut fields = Fields {
        kind,
        ..Fields::default()
    };
    match &e {
        tensorcast::Error::Format(f) => {
            fields.rule = Some(f.rule.to_string());
            fields.format = Some(f.format.to_string());
            fields.path = f.file.as_ref().map(|p| p.display().to_string());
            fields.limit = f.limit.map(str::to_string);
            match f.subject.as_deref() {
                Some(tensorcast::Subject::Tensor(t)) => fields.tensor = Some(t.clone()),
                Some(tensorcast::Subject::Key(k)) => fields.key = Some(k.clone()),
                _ => {}
            }
        }
        tensorcast::Error::Io { path, .. } => fields.path = Some(path.display().to_string()),
        other => fields.code = other.code(),
    }
    let err = TensorcastError::new_err(match hint(&e) {
        Some(h) => format!("{e} (hint: {h})"),
        None => e.to_string(),
    });
    let value = err.value(py);
    for (name, v) in [
        ("rule", fields.rule),
        ("path", fields.path),
        ("tensor", fields.tensor),
        ("key", fields.key),
        ("format", fields.format),
        ("limit", fields.limit),
        ("kind", Some(fields.kind.to_string())),
        ("code", fields.code.map(str::to_string)),
    ] {
        // Setting an attribute on a fresh exception instance cannot fail
        // short of memory exhaustion, which the raise would report anyway.
        let _ = value.setattr(name, v);
    }
    err
}

/// Python's spelling of the way out, keyed on the error's code or rule (the
/// library names no front end's arguments; the CLI adds its flags).
fn hint(e: &tensorcast::Error) -> Option<String> {
    use tensorcast::code;
    match (e.code(), e.rule()) {
        (Some(code::SPARSE_NOT_HELD), _) => Some("densify=True writes the dense tensor".into()),
        (Some(code::NO_MODEL_TABLE | code::MODEL_FOLDER), _) => {
            Some("names=\"keep\" converts the container with its names".into())
        }
        (Some(code::UNKNOWN_PRE_TOKENIZER), _) => Some("name it with tokenizer_pre=".into()),
        (_, Some("unsupported-dtype")) => Some("exclude=[...] leaves the tensor out".into()),
        _ => None,
    }
}

#[derive(Default)]
struct Fields {
    kind: &'static str,
    rule: Option<String>,
    path: Option<String>,
    tensor: Option<String>,
    key: Option<String>,
    format: Option<String>,
    limit: Option<String>,
    /// The stable code of a usage or unsupported refusal.
    code: Option<&'static str>,
}

/// A `TensorcastError` of kind `usage` for a bad argument.
pub fn usage(message: impl Into<String>) -> PyErr {
    Python::attach(|py| {
        to_py(
            py,
            tensorcast::Error::usage(tensorcast::code::BAD_OPTION, message.into()),
        )
    })
}
