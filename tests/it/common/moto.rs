//! A moto S3 server on loopback for the s3:// tests, started per test
//! process and killed when dropped. Its program comes from
//! `TENSORCAST_MOTO_SERVER` (which `.ci/run` sets after installing
//! `moto[server]`) or `moto_server` on PATH; without either the tests say
//! so and pass only outside CI.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};

/// A running moto server.
pub struct Moto {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts moto, or `None` (outside CI) when it is not installed.
    pub fn start() -> Option<Moto> {
        let program = std::env::var("TENSORCAST_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the S3 tests: {program} not found (set TENSORCAST_MOTO_SERVER)"
            );
            eprintln!("moto_server not found: S3 tests not run here");
            return None;
        };
        let mut moto = Moto { child, port };
        // Ready when it answers a request: polled for as long as the server
        // takes to start (no deadline), failing only if it exits.
        loop {
            if moto.request("GET", "/", b"").is_ok_and(|(status, _)| status > 0) {
                return Some(moto);
            }
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto_server exited at start: {status}");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment a tensorcast process needs to reach it.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// One plain HTTP request (moto does not check signatures): status and body.
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        )?;
        s.write_all(body)?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)?;
        let text = String::from_utf8_lossy(&out);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = match out.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(i) => out[i + 4..].to_vec(),
            None => Vec::new(),
        };
        Ok((status, body))
    }

    /// Creates `bucket`.
    pub fn create_bucket(&self, bucket: &str) {
        let (status, _) = self.request("PUT", &format!("/{bucket}"), b"").unwrap();
        assert_eq!(status, 200, "create bucket");
    }

    /// Stores `bytes` at `bucket/key`.
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let (status, _) = self.request("PUT", &format!("/{bucket}/{key}"), bytes).unwrap();
        assert_eq!(status, 200, "put {key}");
    }

    /// The object at `bucket/key`, if there is one.
    pub fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let (status, body) = self.request("GET", &format!("/{bucket}/{key}"), b"").unwrap();
        if status != 200 {
            eprintln!("GET {bucket}/{key}: {status} {}", String::from_utf8_lossy(&body));
        }
        (status == 200).then_some(body)
    }

    /// Every key in `bucket` (one listing page: tests hold few).
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let (_, body) = self
            .request("GET", &format!("/{bucket}?list-type=2"), b"")
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        text.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split_once("</Key>").map(|(k, _)| k.to_string()))
            .collect()
    }

    /// How many multipart uploads of `bucket` are in progress.
    pub fn open_uploads(&self, bucket: &str) -> usize {
        let (_, body) = self.request("GET", &format!("/{bucket}?uploads"), b"").unwrap();
        String::from_utf8_lossy(&body).matches("<Upload>").count()
    }
}
