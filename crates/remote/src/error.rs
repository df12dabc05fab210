//! object_store errors as tensorcast errors: the URL, the store's own
//! message (which carries the HTTP status), never credentials (object_store
//! does not print keys or tokens; URLs are shown without user info).

use tensorcast_core::{Error, FormatError};

/// The rule a version-pinned read breaks when the object was replaced.
pub const OBJECT_CHANGED: &str = "object-changed";

/// `e`, met while working on `url`.
pub(crate) fn store_error(url: &str, e: object_store::Error) -> Error {
    use std::io::{Error as IoError, ErrorKind};
    match e {
        object_store::Error::Precondition { .. } => FormatError::new(
            "remote",
            OBJECT_CHANGED,
            "the object was replaced while it was being read (its ETag no longer matches the one \
             pinned when it was opened): refused rather than mixing two versions",
        )
        .in_file(std::path::Path::new(url))
        .into(),
        object_store::Error::NotFound { source, .. } => Error::io(
            url,
            IoError::new(ErrorKind::NotFound, format!("no such object ({source})")),
        ),
        other => Error::io(url, IoError::other(other.to_string())),
    }
}
