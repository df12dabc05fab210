//! What a URL names: an object store and a path inside it. Stores are
//! built once per bucket (or HTTP origin) and shared, configured from the
//! environment as the stores' own tools are.

use object_store::path::Path as StorePath;
use object_store::{ClientOptions, ObjectStore, RetryConfig};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tensorcast_core::code;
use tensorcast_core::{Error, Result};
use url::Url;

/// The schemes handled here: core's list, the one every front end parses by.
const SCHEMES: &[&str] = tensorcast_core::URL_SCHEMES;

/// Whether `s` is a URL this crate handles (`scheme://...` with a known
/// scheme), rather than a local path.
pub fn is_url(s: &str) -> bool {
    s.split_once("://")
        .is_some_and(|(scheme, _)| SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()))
}

/// One object (or prefix) in a store.
#[derive(Clone)]
pub struct Location {
    store: Arc<dyn ObjectStore>,
    path: StorePath,
    /// The URL as given (hf:// stays hf://), without user info.
    shown: String,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Location {
    /// Parses `url` and finds (or builds) its store.
    pub fn parse(url: &str) -> Result<Location> {
        let parsed = Url::parse(url)
            .map_err(|e| Error::usage(code::BAD_LOCATION, format!("'{}' is not a URL: {e}", redact(url))))?;
        let shown = redacted(&parsed);
        let (store_url, object_url) = match parsed.scheme() {
            "hf" => hub_url(&parsed)?,
            _ => (parsed.clone(), parsed.clone()),
        };
        let key = format!("{}://{}", store_url.scheme(), store_url.authority());
        let store = cached_store(&key, &store_url)?;
        let path = StorePath::from_url_path(object_url.path())
            .map_err(|e| Error::usage(code::BAD_LOCATION, format!("'{shown}': not an object path: {e}")))?;
        Ok(Location { store, path, shown })
    }

    /// An object in a store the caller built (an in-memory store, a store
    /// with its own HTTP connector or credentials), shown as `shown` in
    /// errors. `shown` should carry no credentials: it is printed as given.
    pub fn in_store(store: Arc<dyn ObjectStore>, path: &str, shown: &str) -> Result<Location> {
        let path = StorePath::parse(path)
            .map_err(|e| Error::usage(code::BAD_LOCATION, format!("'{shown}': not an object path: {e}")))?;
        Ok(Location {
            store,
            path,
            shown: shown.to_string(),
        })
    }

    /// The URL, as errors show it.
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// The store.
    pub(crate) fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The object's path in its store.
    pub(crate) fn path(&self) -> &StorePath {
        &self.path
    }

    /// The object `name` beside this one (same prefix): shards, split
    /// parts, an index's files. `name` must be one plain file name.
    pub fn sibling(&self, name: &str) -> Result<Location> {
        if !tensorcast_core::is_plain_name(name) {
            return Err(Error::usage(
                code::BAD_LOCATION,
                format!("'{name}' is not a plain file name beside {}", self.shown),
            ));
        }
        let mut parts: Vec<_> = self.path.parts().collect();
        parts.pop();
        let path: StorePath = parts.into_iter().chain(std::iter::once(name.into())).collect();
        let base = self
            .shown
            .rsplit_once('/')
            .map_or(self.shown.as_str(), |(b, _)| b);
        Ok(Location {
            store: Arc::clone(&self.store),
            path,
            shown: format!("{base}/{name}"),
        })
    }

    /// The object at `rel` (a `/`-separated relative path) under this
    /// location taken as a prefix. Parts that are empty, `.` or `..` are refused.
    pub fn join(&self, rel: &str) -> Result<Location> {
        let mut path: Vec<object_store::path::PathPart<'static>> =
            self.path.parts().map(|p| p.as_ref().to_string().into()).collect();
        for part in rel.split('/') {
            if !tensorcast_core::is_plain_name(part) {
                return Err(Error::usage(
                    code::BAD_LOCATION,
                    format!("'{rel}' is not a relative object path under {}", self.shown),
                ));
            }
            path.push(part.to_string().into());
        }
        Ok(Location {
            store: Arc::clone(&self.store),
            path: path.into_iter().collect(),
            shown: format!("{}/{rel}", self.shown.trim_end_matches('/')),
        })
    }

    /// The last part of the path (the object's file name).
    pub fn file_name(&self) -> Option<String> {
        self.path.filename().map(str::to_string)
    }
}

/// An `hf://ORG/REPO[@REV]/PATH` URL as the Hub's resolve URL under
/// `HF_ENDPOINT` (default `https://huggingface.co`): (origin, object URL).
fn hub_url(url: &Url) -> Result<(Url, Url)> {
    let org = url.host_str().unwrap_or_default();
    let mut segments = url
        .path_segments()
        .map(|s| s.collect::<Vec<_>>())
        .unwrap_or_default();
    segments.retain(|s| !s.is_empty());
    if org.is_empty() || segments.len() < 2 {
        return Err(Error::usage(
            code::BAD_LOCATION,
            format!(
                "'{}': an hf:// file URL is hf://ORG/REPO[@REVISION]/PATH",
                redacted(url)
            ),
        ));
    }
    let (repo, rev) = match segments[0].split_once('@') {
        Some((repo, rev)) => (repo, rev),
        None => (segments[0], "main"),
    };
    let endpoint = std::env::var("HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".to_string());
    let full = format!(
        "{}/{org}/{repo}/resolve/{rev}/{}",
        endpoint.trim_end_matches('/'),
        segments[1..].join("/")
    );
    let object = Url::parse(&full).map_err(|e| {
        Error::usage(
            code::BAD_LOCATION,
            format!("HF_ENDPOINT gives a bad URL '{}': {e}", redact(&full)),
        )
    })?;
    Ok((object.clone(), object))
}

fn cached_store(key: &str, url: &Url) -> Result<Arc<dyn ObjectStore>> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let stores = STORES.get_or_init(Default::default);
    let mut stores = stores.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = stores.get(key) {
        return Ok(Arc::clone(s));
    }
    let store = build_store(url)?;
    stores.insert(key.to_string(), Arc::clone(&store));
    Ok(store)
}

/// Retries with exponential backoff on transient errors (5xx, timeouts,
/// connection resets), as object_store does them.
fn retry() -> RetryConfig {
    RetryConfig {
        max_retries: 6,
        retry_timeout: Duration::from_secs(120),
        backoff: object_store::BackoffConfig {
            init_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
    }
}

fn build_store(url: &Url) -> Result<Arc<dyn ObjectStore>> {
    let shown = redacted(url);
    let fail = |e: object_store::Error| Error::usage(code::BAD_LOCATION, format!("{shown}: {e}"));
    let store: Arc<dyn ObjectStore> = match url.scheme() {
        "s3" | "s3a" => Arc::new(
            object_store::aws::AmazonS3Builder::from_env()
                .with_url(url.as_str())
                .with_retry(retry())
                .build()
                .map_err(fail)?,
        ),
        "gs" => Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(url.as_str())
                .with_retry(retry())
                .build()
                .map_err(fail)?,
        ),
        "az" | "abfs" | "abfss" | "adl" | "azure" => Arc::new(
            object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(url.as_str())
                .with_retry(retry())
                .build()
                .map_err(fail)?,
        ),
        "http" | "https" => {
            let mut options = ClientOptions::new().with_allow_http(url.scheme() == "http");
            if let Some(headers) = hub_headers(url) {
                options = options.with_default_headers(headers);
            }
            Arc::new(
                object_store::http::HttpBuilder::new()
                    .with_url(&url[..url::Position::BeforePath])
                    .with_client_options(options)
                    .with_retry(retry())
                    .build()
                    .map_err(fail)?,
            )
        }
        other => {
            return Err(Error::usage(
                code::BAD_LOCATION,
                format!("{shown}: no object store for '{other}://'"),
            ))
        }
    };
    Ok(store)
}

/// `Authorization: Bearer $HF_TOKEN` for requests to the Hub's endpoint.
fn hub_headers(url: &Url) -> Option<http::HeaderMap> {
    let token = std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty())?;
    let endpoint = std::env::var("HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".to_string());
    let endpoint = Url::parse(&endpoint).ok()?;
    if endpoint.origin() != url.origin() {
        return None;
    }
    let mut value = http::HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    value.set_sensitive(true);
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::AUTHORIZATION, value);
    Some(headers)
}

/// `url` without user info or query (which may carry credentials).
fn redacted(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.to_string()
}

/// [`redacted`] for text that may not parse.
fn redact(s: &str) -> String {
    Url::parse(s).map_or_else(|_| "<url>".to_string(), |u| redacted(&u))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_by_scheme() {
        for url in [
            "s3://b/k",
            "HTTPS://h/x",
            "hf://org/repo/f.gguf",
            "gs://b/k",
            "az://c/k",
        ] {
            assert!(is_url(url), "{url}");
        }
        for not in [
            "model.gguf",
            "/tmp/s3://x",
            "file:///tmp/x",
            "ftp://h/x",
            "s3:/b/k",
        ] {
            assert!(!is_url(not), "{not}");
        }
    }

    #[test]
    fn credentials_never_shown() {
        let shown = redact("http://alice:s3cret@127.0.0.1:9/a/b.gguf?X-Amz-Signature=abc");
        assert_eq!(shown, "http://127.0.0.1:9/a/b.gguf");
        assert_eq!(redact("not a url"), "<url>");
        let l = Location::parse("http://alice:s3cret@127.0.0.1:9/a/b.gguf").unwrap();
        assert_eq!(l.url(), "http://127.0.0.1:9/a/b.gguf");
        assert!(!format!("{l:?}").contains("s3cret"));
        let e = Location::parse("http://alice:s3cret@[::1/x").unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    #[test]
    fn siblings_and_joins_stay_under_their_prefix() {
        let l = Location::parse("http://127.0.0.1:9/models/m-00001-of-00002.gguf").unwrap();
        let s = l.sibling("m-00002-of-00002.gguf").unwrap();
        assert_eq!(s.url(), "http://127.0.0.1:9/models/m-00002-of-00002.gguf");
        assert_eq!(s.file_name().as_deref(), Some("m-00002-of-00002.gguf"));
        for bad in ["../x", "a/b", "", ".", ".."] {
            let e = l.sibling(bad).unwrap_err();
            assert_eq!(e.code(), Some(code::BAD_LOCATION), "{bad}: {e}");
        }
        let prefix = Location::parse("http://127.0.0.1:9/models/").unwrap();
        assert_eq!(
            prefix.join("a/b.gguf").unwrap().url(),
            "http://127.0.0.1:9/models/a/b.gguf"
        );
        for bad in ["../b", "a//b", "a/./b", "/abs"] {
            assert_eq!(
                prefix.join(bad).unwrap_err().code(),
                Some(code::BAD_LOCATION),
                "{bad}"
            );
        }
    }

    #[test]
    fn hub_urls_resolve_under_the_endpoint() {
        let endpoint = std::env::var("HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".into());
        let url = Url::parse("hf://org/repo@v1.0/sub/model.gguf").unwrap();
        let (_, object) = hub_url(&url).unwrap();
        assert_eq!(
            object.as_str(),
            format!(
                "{}/org/repo/resolve/v1.0/sub/model.gguf",
                endpoint.trim_end_matches('/')
            )
        );
        let (_, main) = hub_url(&Url::parse("hf://org/repo/model.gguf").unwrap()).unwrap();
        assert!(
            main.as_str().ends_with("/org/repo/resolve/main/model.gguf"),
            "{main}"
        );
        for bad in ["hf://org/repo", "hf://org"] {
            let e = hub_url(&Url::parse(bad).unwrap()).unwrap_err();
            assert_eq!(e.code(), Some(code::BAD_LOCATION), "{bad}");
        }
    }
}
