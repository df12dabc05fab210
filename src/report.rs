//! Batch reports: JSON lines to stdout, a file, or an object (uploaded
//! whole when the batch ends: a report is one short line per file), and
//! `tensorcast report merge` for the reports of a sharded batch.

use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Where a batch's JSON lines go.
pub enum Report {
    Stdout,
    File(std::fs::File),
    Object(tensorcast::Location, Arc<Mutex<Vec<u8>>>),
}

impl Report {
    /// Opens the report destination (`None`: stdout).
    pub fn create(path: Option<&Path>) -> anyhow::Result<Report> {
        Ok(match path.map(tensorcast::Location::from) {
            None => Report::Stdout,
            Some(url @ tensorcast::Location::Url(_)) => Report::Object(url, Arc::default()),
            Some(tensorcast::Location::Local(p)) => {
                Report::File(std::fs::File::create(&p).with_context(|| format!("creating {}", p.display()))?)
            }
        })
    }

    /// A writer for the lines.
    pub fn writer(&self) -> Box<dyn Write + Send> {
        match self {
            Report::Stdout => Box::new(std::io::stdout()),
            Report::File(f) => match f.try_clone() {
                Ok(f) => Box::new(f),
                Err(_) => Box::new(std::io::sink()),
            },
            Report::Object(_, buf) => Box::new(Shared(Arc::clone(buf))),
        }
    }

    /// Uploads an object report; files and stdout are already written.
    pub fn finish(self) -> anyhow::Result<()> {
        if let Report::Object(path, buf) = self {
            let bytes = std::mem::take(&mut *buf.lock().unwrap_or_else(|p| p.into_inner()));
            let mut target = tensorcast::remote::plain_target(&path)?;
            target.write_all(&bytes)?;
            target.commit()?;
        }
        Ok(())
    }
}

struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `report merge`: every line of every report, checked to be a batch
/// result; an input reported by two shards is refused (the shards
/// overlapped), and a failed file makes the exit status 1.
pub fn merge(reports: &[PathBuf], output: Option<&Path>, cx: &crate::Session) -> anyhow::Result<()> {
    let mut merged = Vec::new();
    let mut seen = std::collections::HashMap::new();
    let (mut ok, mut skipped, mut failed) = (0usize, 0usize, 0usize);
    for path in reports {
        let text = tensorcast::remote::read_whole(&path.into(), &cx.limits)?;
        let text = String::from_utf8(text).with_context(|| format!("{}: not UTF-8", path.display()))?;
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("{} line {}: not JSON", path.display(), n + 1))?;
            let (Some(input), Some(status)) = (v["input"].as_str(), v["status"].as_str()) else {
                anyhow::bail!(
                    "{} line {}: not a batch result (no input and status)",
                    path.display(),
                    n + 1
                );
            };
            if let Some(first) = seen.insert(input.to_string(), path.clone()) {
                anyhow::bail!(
                    "{input} is reported by both {} and {}: the shards overlapped",
                    first.display(),
                    path.display()
                );
            }
            match status {
                "ok" => ok += 1,
                "skipped" => skipped += 1,
                _ => failed += 1,
            }
            merged.extend_from_slice(line.as_bytes());
            merged.push(b'\n');
        }
    }
    match output {
        Some(p) => {
            let mut target = tensorcast::remote::plain_target(&p.into())?;
            target.write_all(&merged)?;
            target.commit()?;
        }
        None => std::io::stdout().write_all(&merged)?,
    }
    if cx.verbosity != crate::Verbosity::Quiet {
        eprintln!(
            "report: {} files: {ok} converted, {skipped} already done, {failed} failed",
            seen.len()
        );
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} files failed", seen.len());
    }
    Ok(())
}
