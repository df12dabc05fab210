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
            IoError::new(ErrorKind::NotFound, scrub(&format!("no such object ({source})"))),
        ),
        other => Error::io(url, IoError::other(scrub(&other.to_string()))),
    }
}

/// The refusal for a response that contradicts the version pinned at open.
pub(crate) fn changed(url: &str, what: &str) -> Error {
    FormatError::new(
        "remote",
        OBJECT_CHANGED,
        format!(
            "the object changed while it was being read (a response gave {what}): \
             refused rather than mixing two versions"
        ),
    )
    .in_file(std::path::Path::new(url))
    .into()
}

/// `text` with every URL's user info and query removed: the store's own
/// messages repeat the URL they requested, password included.
pub(crate) fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The URL runs to the next whitespace (or quote).
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(tail.len());
        let (url, after) = tail.split_at(end);
        let authority_end = url.find('/').unwrap_or(url.len());
        let url = match url[..authority_end].rfind('@') {
            Some(userinfo) => &url[userinfo + 1..],
            None => url,
        };
        out.push_str(url.split('?').next().unwrap_or(url));
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn user_info_and_queries_leave_store_messages() {
        let said = scrub(
            "Error performing HEAD http://alice:s3cret@127.0.0.1:9/a/b.gguf?X-Amz-Signature=abc in 5ms",
        );
        assert_eq!(said, "Error performing HEAD http://127.0.0.1:9/a/b.gguf in 5ms");
        assert_eq!(scrub("no url here"), "no url here");
        assert_eq!(
            scrub("s3://bucket/key and https://h/p"),
            "s3://bucket/key and https://h/p"
        );
    }
}
