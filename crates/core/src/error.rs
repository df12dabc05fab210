//! Errors: every refusal names the file, the format, the tensor or key, and the rule.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Result with tensorcast's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Anything that can go wrong in a conversion.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input breaks a rule of its format (boxed: errors stay small on
    /// the happy path).
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
    /// The operation asked for cannot be done (a cast that makes no sense, a
    /// target that cannot hold a dtype).
    #[error("{0}")]
    Unsupported(String),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl AsRef<Path>, source: io::Error) -> Error {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
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
}

impl From<FormatError> for Error {
    fn from(e: FormatError) -> Self {
        Error::Format(Box::new(e))
    }
}

/// What part of the file a format error is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A tensor, by name.
    Tensor(String),
    /// A metadata or header key.
    Key(String),
}

/// A broken format rule: file, format, tensor or key, rule id, and detail.
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
        }
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
