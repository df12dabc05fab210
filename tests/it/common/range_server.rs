//! A loopback HTTP server with Range support, for the remote tests: it
//! serves files from a map, counts the body bytes it sends, sends an ETag
//! and honours If-Match, and can be told to answer 503 a number of times or
//! to replace a file once some bytes of it have been served.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A served file: its content and its generation (which the ETag names).
pub type Served = (Arc<Vec<u8>>, u64);

/// Shared state of a running server.
#[derive(Default)]
pub struct State {
    /// Path (with leading `/`) → (content, generation for the ETag).
    pub files: Mutex<HashMap<String, Served>>,
    /// Body bytes sent.
    pub served: AtomicU64,
    /// Requests answered with 503 before serving normally.
    pub fail_next: AtomicU64,
    /// 503s sent.
    pub failures: AtomicU64,
    /// Requests seen (with their method and Range header).
    pub log: Mutex<Vec<String>>,
    /// Replace (path, new content) for the first request of a range that
    /// starts at or past this offset, and every request after it. A byte
    /// offset, not a count of bytes served or a moment: requests in flight
    /// at once finish in any order, the offsets they ask for do not change.
    pub replace_after: Mutex<Option<(u64, String, Vec<u8>)>>,
    /// Serve whatever is current, ignoring If-Match (a server that does not
    /// keep the promise the client relies on).
    pub ignore_if_match: std::sync::atomic::AtomicBool,
    /// Answer ranged GETs with the whole file (200, no Content-Range).
    pub ignore_range: std::sync::atomic::AtomicBool,
    /// A size to claim for every file (HEAD's Content-Length and every
    /// Content-Range total) instead of its real one; 0 claims the truth.
    pub claim_len: AtomicU64,
}

/// A server on 127.0.0.1 (stopped when the process ends).
pub struct RangeServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// What it has served.
    pub state: Arc<State>,
}

impl RangeServer {
    /// Starts a server with no files.
    pub fn start() -> RangeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(State::default());
        let s = Arc::clone(&state);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let s = Arc::clone(&s);
                std::thread::spawn(move || {
                    let _ = serve(conn, &s);
                });
            }
        });
        RangeServer { base, state }
    }

    /// Serves `content` at `path` (leading `/`).
    pub fn put(&self, path: &str, content: Vec<u8>) {
        let mut files = self.state.files.lock().unwrap();
        let generation = files.get(path).map_or(1, |(_, g)| g + 1);
        files.insert(path.to_string(), (Arc::new(content), generation));
    }

    /// `base + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Body bytes sent so far.
    pub fn served(&self) -> u64 {
        self.state.served.load(Ordering::SeqCst)
    }

    /// Resets the byte count and the log.
    pub fn reset(&self) {
        self.state.served.store(0, Ordering::SeqCst);
        self.state.log.lock().unwrap().clear();
    }
}

fn etag(generation: u64, len: usize) -> String {
    format!("\"g{generation}-{len}\"")
}

fn serve(conn: TcpStream, s: &State) -> std::io::Result<()> {
    // As HTTP servers do: no Nagle delay on the end of each response.
    conn.set_nodelay(true)?;
    let mut reader = BufReader::new(conn.try_clone()?);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let range = headers.get("range").cloned();
        let auth = headers.get("authorization").cloned().unwrap_or_default();
        s.log.lock().unwrap().push(format!(
            "{method} {path} {} auth={auth}",
            range.clone().unwrap_or_default()
        ));
        let mut out = conn.try_clone()?;
        if s.fail_next.load(Ordering::SeqCst) > 0 {
            s.fail_next.fetch_sub(1, Ordering::SeqCst);
            s.failures.fetch_add(1, Ordering::SeqCst);
            write!(
                out,
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
            )?;
            continue;
        }
        let from = range.as_deref().and_then(parse_range).map_or(0, |(a, _)| a);
        maybe_replace(s, from);
        let file = s.files.lock().unwrap().get(&path).cloned();
        let Some((content, generation)) = file else {
            write!(out, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?;
            continue;
        };
        let tag = etag(generation, content.len());
        let honours = !s.ignore_if_match.load(Ordering::SeqCst);
        if honours && headers.get("if-match").is_some_and(|m| m != &tag && m != "*") {
            write!(
                out,
                "HTTP/1.1 412 Precondition Failed\r\nContent-Length: 0\r\n\r\n"
            )?;
            continue;
        }
        let len = content.len() as u64;
        let ranged = range
            .as_deref()
            .filter(|_| !(method == "GET" && s.ignore_range.load(Ordering::SeqCst)));
        let (status, start, end) = match ranged.and_then(parse_range) {
            Some((a, b)) if a < len => ("206 Partial Content", a, b.min(len - 1) + 1),
            Some(_) => {
                write!(out, "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\n\r\n")?;
                continue;
            }
            None => ("200 OK", 0, len),
        };
        let claimed = match s.claim_len.load(Ordering::SeqCst) {
            0 => len,
            c => c,
        };
        let shown_len = if method == "HEAD" { claimed } else { end - start };
        let mut head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {shown_len}\r\nETag: {tag}\r\nLast-Modified: Tue, 01 Dec 2026 00:00:00 GMT\r\nAccept-Ranges: bytes\r\n"
        );
        if status.starts_with("206") {
            head.push_str(&format!("Content-Range: bytes {start}-{}/{claimed}\r\n", end - 1));
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes())?;
        if method != "HEAD" {
            out.write_all(&content[start as usize..end as usize])?;
            s.served.fetch_add(end - start, Ordering::SeqCst);
        }
        out.flush()?;
    }
}

fn maybe_replace(s: &State, from: u64) {
    let mut pending = s.replace_after.lock().unwrap();
    if let Some((after, _, _)) = &*pending {
        if from >= *after {
            let (_, path, content) = pending.take().unwrap();
            let mut files = s.files.lock().unwrap();
            let generation = files.get(&path).map_or(1, |(_, g)| g + 1);
            files.insert(path, (Arc::new(content), generation));
        }
    }
}

/// `bytes=A-B` or `bytes=A-`.
fn parse_range(v: &str) -> Option<(u64, u64)> {
    let (a, b) = v.strip_prefix("bytes=")?.split_once('-')?;
    Some((
        a.parse().ok()?,
        if b.is_empty() {
            u64::MAX - 1
        } else {
            b.parse().ok()?
        },
    ))
}
