#![no_main]
//! The remote layer against a server that lies. A fake HTTP transport (an
//! object_store `HttpService`, no sockets) serves one object, and for every
//! request the input picks an honest answer or a lie: another version's
//! bytes under another ETag, a shifted or malformed Content-Range, a wrong
//! total size, a body shorter or longer than promised, the whole object for
//! a ranged request, error statuses, a failed connection. The HEAD answer
//! may also lie about the size or give no ETag.
//!
//! Whatever the answers, nothing panics, and every read that succeeds holds
//! exactly the object's bytes at the asked range: a lie is refused, never
//! mixed into the output. (When HEAD gives no ETag, a silent swap of versions
//! of the same size cannot be seen by anyone, so that lie is not told.)
use async_trait::async_trait;
use libfuzzer_sys::fuzz_target;
use object_store::client::{HttpError, HttpErrorKind, HttpRequest, HttpResponse, HttpService};
use object_store::client::{HttpClient, HttpConnector};
use object_store::{ClientOptions, RetryConfig};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tensorcast_core::ReadAt;
use tensorcast_remote::{Location, RemoteObject};

#[derive(Debug)]
struct Server {
    truth: Vec<u8>,
    /// The object's next version: same size, other bytes.
    other: Vec<u8>,
    head_lie: u8,
    lies: Mutex<VecDeque<u8>>,
}

fn response(status: u16, headers: &[(&str, String)], body: Vec<u8>) -> HttpResponse {
    let mut r = http::Response::builder().status(status);
    for (k, v) in headers {
        r = r.header(*k, v.as_str());
    }
    r.body(body.into()).expect("valid header names and values")
}

impl Server {
    fn etag_pinned(&self) -> bool {
        self.head_lie % 4 != 1
    }

    fn head(&self) -> HttpResponse {
        let len = self.truth.len() as u64;
        let (size, etag) = match self.head_lie % 4 {
            0 => (len, true),
            1 => (len, false),
            2 => (len + 1, true),
            _ => (1 << 40, true),
        };
        let mut headers = vec![("content-length", size.to_string())];
        if etag {
            headers.push(("etag", "\"v1\"".to_string()));
        }
        response(200, &headers, Vec::new())
    }

    fn get(&self, range: Option<(u64, u64)>) -> Result<HttpResponse, HttpError> {
        let lie = self.lies.lock().unwrap().pop_front().unwrap_or(0);
        let len = self.truth.len() as u64;
        let Some((start, last)) = range else {
            return Ok(response(200, &[("content-length", len.to_string())], self.truth.clone()));
        };
        if start > last || last >= len {
            return Ok(response(416, &[("content-range", format!("bytes */{len}"))], Vec::new()));
        }
        let slice = |v: &[u8], a: u64, b: u64| v[a as usize..=b as usize].to_vec();
        let honest = |etag: &str, body: Vec<u8>, a: u64, b: u64, total: u64| {
            response(
                206,
                &[
                    ("content-range", format!("bytes {a}-{b}/{total}")),
                    ("content-length", body.len().to_string()),
                    ("etag", etag.to_string()),
                ],
                body,
            )
        };
        let v1 = "\"v1\"";
        Ok(match lie % 24 {
            8 if self.etag_pinned() => honest("\"v2\"", slice(&self.other, start, last), start, last, len),
            9 if last + 1 < len => honest(v1, slice(&self.truth, start + 1, last + 1), start + 1, last + 1, len),
            10 => honest(v1, slice(&self.truth, start, last), start, last, len + 7),
            // A body shorter, then longer, than the headers promise.
            11 | 12 => {
                let mut body = slice(&self.truth, start, last);
                if lie % 24 == 11 {
                    body.pop();
                } else {
                    body.push(0);
                }
                response(
                    206,
                    &[
                        ("content-range", format!("bytes {start}-{last}/{len}")),
                        ("content-length", (last - start + 1).to_string()),
                        ("etag", v1.to_string()),
                    ],
                    body,
                )
            }
            13 => response(
                200,
                &[("content-length", len.to_string()), ("etag", v1.to_string())],
                self.truth.clone(),
            ),
            14 => response(500, &[], Vec::new()),
            15 => response(404, &[], Vec::new()),
            16 => response(412, &[], Vec::new()),
            17 => response(416, &[], Vec::new()),
            18 => response(
                206,
                &[("content-length", (last - start + 1).to_string()), ("etag", v1.to_string())],
                slice(&self.truth, start, last),
            ),
            19 => response(
                206,
                &[
                    ("content-range", "bytes x-y/z".to_string()),
                    ("etag", v1.to_string()),
                ],
                slice(&self.truth, start, last),
            ),
            20 => response(
                206,
                &[
                    ("content-range", format!("bytes {start}-{last}/{len}")),
                    ("content-length", (last - start + 1).to_string()),
                ],
                slice(&self.truth, start, last),
            ),
            21 => response(
                206,
                &[
                    ("content-range", format!("bytes {last}-{start}/{len}")),
                    ("etag", v1.to_string()),
                ],
                slice(&self.truth, start, last),
            ),
            22 => return Err(HttpError::new(HttpErrorKind::Connect, std::io::Error::other("reset"))),
            23 => response(304, &[("etag", v1.to_string())], Vec::new()),
            _ => honest(v1, slice(&self.truth, start, last), start, last, len),
        })
    }
}

/// `bytes=A-B`, inclusive, as object_store asks.
fn asked_range(req: &HttpRequest) -> Option<(u64, u64)> {
    let v = req.headers().get("range")?.to_str().ok()?;
    let (a, b) = v.strip_prefix("bytes=")?.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The server as a transport object_store can hold.
#[derive(Debug)]
struct Transport(Arc<Server>);

#[async_trait]
impl HttpService for Transport {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        if req.method() == http::Method::HEAD {
            return Ok(self.0.head());
        }
        self.0.get(asked_range(&req))
    }
}

#[derive(Debug)]
struct Connector(Arc<Server>);

impl HttpConnector for Connector {
    fn connect(&self, _: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(Transport(Arc::clone(&self.0))))
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let head_lie = data[0];
    let n = (u16::from_le_bytes([data[1], data[2]]) as usize % 4097).min(data.len() - 3);
    let truth = data[3..3 + n].to_vec();
    let rest = &data[3 + n..];
    let other: Vec<u8> = truth.iter().map(|b| b ^ 0x5a).collect();
    let server = Arc::new(Server {
        truth: truth.clone(),
        other,
        head_lie,
        lies: Mutex::new(rest.iter().rev().copied().collect()),
    });
    let store = object_store::http::HttpBuilder::new()
        .with_url("http://fuzz.invalid")
        .with_client_options(ClientOptions::new().with_allow_http(true))
        .with_retry(RetryConfig {
            max_retries: 0,
            retry_timeout: Duration::from_secs(1),
            ..Default::default()
        })
        .with_http_connector(Connector(Arc::clone(&server)))
        .build()
        .expect("an HTTP store");
    let location = Location::in_store(Arc::new(store), "object", "http://fuzz.invalid/object").unwrap();
    let Ok(object) = RemoteObject::open(location) else { return };
    for op in rest.chunks_exact(5).take(8) {
        let offset = u16::from_le_bytes([op[1], op[2]]) as u64 % (n as u64 + 2);
        let len = u16::from_le_bytes([op[3], op[4]]) as u64 % 600;
        let expect = |got: &[u8], at: u64| {
            if got.is_empty() {
                return; // nothing read (an empty read succeeds anywhere)
            }
            let end = at as usize + got.len();
            assert!(end <= truth.len(), "{} bytes past the object's end read as data", end - truth.len());
            assert!(got == &truth[at as usize..end], "a read at {at} mixed in bytes the object does not hold");
        };
        if op[0] % 2 == 0 {
            let mut buf = vec![0u8; len as usize];
            if object.read_at(offset, &mut buf).is_ok() {
                expect(&buf, offset);
            }
        } else if let Some(pieces) = object.stream(offset, len) {
            let mut at = offset;
            for piece in pieces {
                let Ok(piece) = piece else { break };
                expect(&piece, at);
                at += piece.len() as u64;
            }
        }
    }
});
