//! Where an input or output is: a local path or a URL. Front ends parse
//! what the user typed once, into a [`Location`]; every step after that
//! matches on it instead of asking again whether a path's text is a URL
//! (`std::fs` quietly fails on `s3://…` taken as a path).

use std::fmt;
use std::path::{Path, PathBuf};

/// The URL schemes of object stores and web servers tensorcast reads and
/// writes (with the facade's `remote` feature).
pub const URL_SCHEMES: &[&str] = &[
    "s3", "s3a", "gs", "az", "abfs", "abfss", "adl", "azure", "http", "https", "hf",
];

/// A local path, or a URL with one of [`URL_SCHEMES`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Location {
    /// A file or folder on this machine.
    Local(PathBuf),
    /// An object, prefix or repository in a store (`s3://bucket/key`,
    /// `hf://org/repo`, `https://host/file`).
    Url(String),
}

impl Location {
    /// `text` as a URL when it is `scheme://…` with a known scheme,
    /// otherwise as a local path.
    pub fn parse(text: &str) -> Location {
        match text.split_once("://") {
            Some((scheme, _)) if URL_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) => {
                Location::Url(text.to_string())
            }
            _ => Location::Local(PathBuf::from(text)),
        }
    }

    /// The URL, if this is one.
    pub fn url(&self) -> Option<&str> {
        match self {
            Location::Url(u) => Some(u),
            Location::Local(_) => None,
        }
    }

    /// The local path, if this is one.
    pub fn local(&self) -> Option<&Path> {
        match self {
            Location::Local(p) => Some(p),
            Location::Url(_) => None,
        }
    }

    /// The location as a path, for names in messages and inputs (a URL's
    /// text as it is).
    pub fn as_path(&self) -> &Path {
        match self {
            Location::Local(p) => p,
            Location::Url(u) => Path::new(u),
        }
    }

    /// The location for messages (`{}` shows the path or URL as given).
    pub fn display(&self) -> &Location {
        self
    }

    /// `name` inside this folder or under this prefix.
    pub fn join(&self, name: &str) -> Location {
        match self {
            Location::Local(p) => Location::Local(p.join(name)),
            Location::Url(u) => Location::Url(format!("{}/{name}", u.trim_end_matches('/'))),
        }
    }

    /// Whether this is a Hugging Face model repository, `hf://ORG/REPO[@REV]`
    /// (a model folder, as a local directory is).
    pub fn is_repository(&self) -> bool {
        self.url()
            .and_then(|u| u.strip_prefix("hf://"))
            .is_some_and(|rest| rest.trim_end_matches('/').split('/').count() == 2)
    }

    /// Whether this is a folder: a local directory or a model repository.
    pub fn is_folder(&self) -> bool {
        match self {
            Location::Local(p) => p.is_dir(),
            Location::Url(_) => self.is_repository(),
        }
    }
}

/// As its text (a path or URL), as JSON reports show it.
impl serde::Serialize for Location {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::Url(u) => f.write_str(u),
        }
    }
}

/// A path whose text is a URL (as a shell hands one over) is a URL.
impl From<&Path> for Location {
    fn from(p: &Path) -> Location {
        match p.to_str() {
            Some(s) => Location::parse(s),
            None => Location::Local(p.to_path_buf()),
        }
    }
}

impl From<&PathBuf> for Location {
    fn from(p: &PathBuf) -> Location {
        Location::from(p.as_path())
    }
}

impl From<PathBuf> for Location {
    fn from(p: PathBuf) -> Location {
        Location::from(p.as_path())
    }
}

impl From<&str> for Location {
    fn from(s: &str) -> Location {
        Location::parse(s)
    }
}

impl From<String> for Location {
    fn from(s: String) -> Location {
        Location::parse(&s)
    }
}

impl From<&Location> for Location {
    fn from(l: &Location) -> Location {
        l.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths() {
        assert_eq!(Location::parse("S3://b/k").url(), Some("S3://b/k"));
        assert_eq!(
            Location::parse("model.gguf").local(),
            Some(Path::new("model.gguf"))
        );
        assert_eq!(Location::parse("file:///x").local(), Some(Path::new("file:///x")));
        assert_eq!(
            Location::from(Path::new("hf://o/r")),
            Location::Url("hf://o/r".into())
        );
        assert!(Location::parse("hf://o/r@v2/").is_repository());
        assert!(!Location::parse("hf://o/r/config.json").is_repository());
        assert_eq!(
            Location::parse("s3://b/p/").join("x.gguf").to_string(),
            "s3://b/p/x.gguf"
        );
        assert_eq!(Location::parse("d").join("x").as_path(), Path::new("d/x"));
    }
}
