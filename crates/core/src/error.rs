//! Errors: every refusal names the file, the format, the tensor or key, and the rule.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Result with tensorcast's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Anything that can go wrong in a conversion. Match on [`Error::kind`] (and
/// [`Error::rule`]) rather than on message text: variants may be added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input breaks a rule of its format, or a reader or writer limit
    /// (boxed: errors stay small on the happy path).
    #[error(transparent)]
    Format(Box<FormatError>),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The caller asked for something invalid: an option that does not apply,
    /// an output that already exists, a name pattern that does not parse, a
    /// sink driven out of order.
    #[error("{0}")]
    Usage(Refusal),
    /// The request is valid but cannot be done: a target that cannot hold a
    /// dtype, a cast without a reference, a format that is read-only.
    #[error("{0}")]
    Unsupported(Refusal),
}

/// What kind of failure an [`Error`] is, for callers that react differently
/// (a CLI choosing its advice and exit code, a batch runner deciding to retry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input breaks a rule of its format ([`Error::rule`] says which).
    Format,
    /// The input is valid but exceeds a [`crate::Limits`] bound
    /// ([`Error::limit`] names the field).
    Limit,
    /// Invalid usage of the library or an option.
    Usage,
    /// A valid request that cannot be carried out.
    Unsupported,
    /// The operating system refused a read or write.
    Io,
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl AsRef<Path>, source: io::Error) -> Error {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// A limit of [`crate::Limits`] (`field`, e.g. `max_alloc_bytes`) exceeded
    /// while reading `path`.
    pub fn limit(path: &Path, field: &'static str, detail: impl Into<String>) -> Error {
        FormatError::new("tensorcast", "limit-exceeded", detail)
            .limit(field)
            .in_file(path)
            .into()
    }

    /// Invalid usage (see [`ErrorKind::Usage`]); `code` is one of
    /// [`crate::code`].
    pub fn usage(code: &'static str, detail: impl Into<String>) -> Error {
        Error::Usage(Refusal::new(code, detail))
    }

    /// A valid request that cannot be done (see [`ErrorKind::Unsupported`]);
    /// `code` is one of [`crate::code`].
    pub fn unsupported(code: &'static str, detail: impl Into<String>) -> Error {
        Error::Unsupported(Refusal::new(code, detail))
    }

    /// The tensor or key a format error concerns.
    pub fn subject(&self) -> Option<&Subject> {
        match self {
            Error::Format(e) => e.subject.as_deref(),
            _ => None,
        }
    }

    /// The stable code of a usage or unsupported refusal ([`crate::code`]);
    /// format errors carry a [`Error::rule`] instead.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Error::Usage(r) | Error::Unsupported(r) => Some(r.code),
            _ => None,
        }
    }

    /// Attaches `path` to a format error that does not name a file yet.
    pub fn in_file(self, path: &Path) -> Error {
        match self {
            Error::Format(e) if e.file.is_none() => Error::Format(Box::new(e.in_file(path))),
            other => other,
        }
    }

    /// The rule a format error cites, if this is one.
    pub fn rule(&self) -> Option<&'static str> {
        match self {
            Error::Format(e) => Some(e.rule),
            _ => None,
        }
    }

    /// The [`crate::Limits`] field a limit error concerns.
    pub fn limit_field(&self) -> Option<&'static str> {
        match self {
            Error::Format(e) => e.limit,
            _ => None,
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Format(e) if e.limit.is_some() => ErrorKind::Limit,
            Error::Format(_) => ErrorKind::Format,
            Error::Io { .. } => ErrorKind::Io,
            Error::Usage(_) => ErrorKind::Usage,
            Error::Unsupported(_) => ErrorKind::Unsupported,
        }
    }
}

/// A refusal that is not a broken format rule: a stable code (one of
/// [`crate::code`]) and the text shown to people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Stable id; front ends and tests match on it.
    pub code: &'static str,
    /// Human explanation; names no front end's flags or arguments.
    pub message: String,
}

impl Refusal {
    /// A refusal with `code` and `message`.
    pub fn new(code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<FormatError> for Error {
    fn from(e: FormatError) -> Self {
        Error::Format(Box::new(e))
    }
}

/// What part of the file a format error is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Subject {
    /// A tensor, by name.
    Tensor(String),
    /// A metadata or header key.
    Key(String),
}

/// A broken format rule (or exceeded limit): file, format, tensor or key, rule id, and detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    /// The file, once known (readers attach it).
    pub file: Option<PathBuf>,
    /// The format whose rule is broken (`safetensors`, `gguf`, ...).
    pub format: &'static str,
    /// The tensor or key concerned, if any (boxed so the error, which every
    /// parse step returns, stays small).
    pub subject: Option<Box<Subject>>,
    /// Stable rule id, e.g. `data-overlap`; tests and users match on it.
    pub rule: &'static str,
    /// Human explanation with the offending values.
    pub detail: String,
    /// Byte offset in the file, when it helps.
    pub offset: Option<u64>,
    /// The [`crate::Limits`] field exceeded, when the refusal is a limit
    /// rather than a broken rule.
    pub limit: Option<&'static str>,
}

impl FormatError {
    /// A new error for `rule` of `format`.
    pub fn new(format: &'static str, rule: &'static str, detail: impl Into<String>) -> Self {
        FormatError {
            file: None,
            format,
            subject: None,
            rule,
            detail: detail.into(),
            offset: None,
            limit: None,
        }
    }

    /// Marks the refusal as a [`crate::Limits`] bound (`field`, e.g.
    /// `max_tensors`) rather than a broken rule.
    pub fn limit(mut self, field: &'static str) -> Self {
        self.limit = Some(field);
        self
    }

    /// Names the tensor concerned.
    pub fn tensor(mut self, name: impl Into<String>) -> Self {
        self.subject = Some(Box::new(Subject::Tensor(name.into())));
        self
    }

    /// Names the key concerned.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.subject = Some(Box::new(Subject::Key(key.into())));
        self
    }

    /// Records the byte offset concerned.
    pub fn at(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    /// Names the file.
    pub fn in_file(mut self, path: &Path) -> Self {
        self.file = Some(path.to_path_buf());
        self
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}: ", file.display())?;
        }
        write!(f, "{}: ", self.format)?;
        match self.subject.as_deref() {
            Some(Subject::Tensor(n)) => write!(f, "tensor '{n}': ")?,
            Some(Subject::Key(k)) => write!(f, "key '{k}': ")?,
            None => {}
        }
        write!(f, "{}", self.detail)?;
        if let Some(o) = self.offset {
            write!(f, " at byte {o}")?;
        }
        write!(f, " [rule {}/{}]", self.format, self.rule)
    }
}

impl std::error::Error for FormatError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_keep_their_code_and_text() {
        let e = Error::unsupported(crate::code::DTYPE_NOT_HELD, "tensor 'w': no C64");
        assert_eq!(e.code(), Some("dtype-not-held"));
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert_eq!(e.to_string(), "tensor 'w': no C64");
        let e = Error::usage(crate::code::OUTPUT_EXISTS, "o exists");
        assert_eq!(
            (e.code(), e.kind(), e.rule()),
            (Some("output-exists"), ErrorKind::Usage, None)
        );
        let f: Error = FormatError::new("gguf", "truncated", "short").into();
        assert_eq!((f.code(), f.rule()), (None, Some("truncated")));
    }

    #[test]
    fn display_names_file_format_subject_and_rule() {
        let e = FormatError::new("safetensors", "data-gap", "starts at 8, expected 4")
            .tensor("w")
            .in_file(Path::new("m.safetensors"));
        assert_eq!(
            e.to_string(),
            "m.safetensors: safetensors: tensor 'w': starts at 8, expected 4 [rule safetensors/data-gap]"
        );
    }
}
