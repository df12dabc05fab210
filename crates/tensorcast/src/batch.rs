//! Batch migration: many inputs converted in parallel into a mirrored output
//! tree, resumable, one result per file.

use crate::convert::{convert_file, ConvertOptions};
use crate::Registry;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tensorcast_core::Format;

/// One input and where its output goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// The file to read.
    pub input: PathBuf,
    /// The file to write.
    pub output: PathBuf,
}

/// How one job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// Converted.
    Ok,
    /// Not converted: the output is complete and newer than the input.
    Skipped,
    /// The conversion failed (see [`Outcome::error`]).
    Failed,
}

impl Status {
    /// `ok`, `skipped` or `failed`, as the JSON report spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Skipped => "skipped",
            Status::Failed => "failed",
        }
    }
}

/// What happened to one job.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The job.
    pub job: Job,
    /// How it ended.
    pub status: Status,
    /// Tensor bytes read (all shards of an index); the file's size when it
    /// could not be read.
    pub bytes_in: u64,
    /// Output size in bytes.
    pub bytes_out: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// The error, for failures.
    pub error: Option<String>,
}

impl Outcome {
    /// The JSON line the CLI prints.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "input": self.job.input,
            "output": self.job.output,
            "status": self.status.as_str(),
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "seconds": (self.seconds * 1000.0).round() / 1000.0,
            "error": self.error,
        })
    }
}

/// The output name for `name` in `format`: the extension replaced, a
/// sharded index (`x.safetensors.index.json`) or a split GGUF first part
/// (`x-00001-of-00003.gguf`) named after the whole model.
fn output_name(name: &str, format: &dyn Format) -> String {
    let lower = name.to_ascii_lowercase();
    let stem = if let Some(s) = lower.strip_suffix(".safetensors.index.json") {
        &name[..s.len()]
    } else {
        match name.rsplit_once('.') {
            Some((s, _)) => s,
            None => name,
        }
    };
    let stem = strip_split_suffix(stem);
    let ext = format.extensions().first().copied().unwrap_or(format.name());
    format!("{stem}.{ext}")
}

/// `model-00001-of-00003` → `model`.
fn strip_split_suffix(stem: &str) -> &str {
    let b = stem.as_bytes();
    let n = b.len();
    let shaped = n > 15
        && b[n - 15] == b'-'
        && b[n - 9..n - 5] == *b"-of-"
        && b[n - 14..n - 9].iter().chain(&b[n - 5..]).all(u8::is_ascii_digit);
    if shaped {
        &stem[..n - 15]
    } else {
        stem
    }
}

/// Whether a walked file is a model input on its own: known extension, and
/// not a shard that an index or a first split part already covers.
fn is_model(path: &Path, registry: &Registry) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    if registry.for_path(path).is_none() || name.ends_with(".tensorcast-tmp") {
        return false;
    }
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".json") {
        return lower.ends_with(".safetensors.index.json");
    }
    let stem = lower.rsplit_once('.').map_or(lower.as_str(), |(s, _)| s);
    if strip_split_suffix(stem).len() != stem.len() {
        // A shard: GGUF's first part opens the whole model; safetensors
        // shards are covered by their index when it is there.
        if lower.ends_with(".gguf") {
            let n = stem.len();
            return &stem[n - 14..n - 9] == "00001";
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let index = format!(
            "{}.safetensors.index.json",
            &name[..strip_split_suffix(stem).len()]
        );
        return !dir.join(index).exists();
    }
    true
}

/// Every model file under `dir` (a file any format of `registry` names),
/// sorted, as jobs writing `format` into `out_dir` with the same relative layout.
pub fn jobs_from_dir(
    dir: &Path,
    out_dir: &Path,
    format: &dyn Format,
    registry: &Registry,
) -> std::io::Result<Vec<Job>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                // Never walk into the output tree.
                if path != out_dir {
                    stack.push(path);
                }
            } else if kind.is_file() && is_model(&path, registry) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files
        .into_iter()
        .map(|input| {
            let rel = input.strip_prefix(dir).unwrap_or(&input);
            let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("model");
            let output = out_dir.join(rel).with_file_name(output_name(name, format));
            Job { input, output }
        })
        .collect())
}

/// Jobs for listed inputs (one path per line; blank lines and `#` comments
/// skipped); relative paths keep their layout under `out_dir`.
pub fn jobs_from_list(text: &str, out_dir: &Path, format: &dyn Format) -> Vec<Job> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let input = PathBuf::from(l);
            let rel: PathBuf = if input.is_absolute() {
                input.file_name().map(PathBuf::from).unwrap_or_default()
            } else {
                input
                    .components()
                    .filter(|c| matches!(c, std::path::Component::Normal(_)))
                    .collect()
            };
            let name = rel
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("model")
                .to_string();
            Job {
                output: out_dir.join(&rel).with_file_name(output_name(&name, format)),
                input,
            }
        })
        .collect()
}

fn output_bytes(output: &Path) -> u64 {
    std::fs::metadata(output).map(|m| m.len()).unwrap_or(0)
}

/// Whether `output` is complete and newer than `input` (outputs only ever
/// appear complete, so existing means complete).
fn up_to_date(input: &Path, output: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    // Only a regular file of ours counts: a symlink there is replaced, not
    // taken for a finished output by its target's size and age.
    let ours = std::fs::symlink_metadata(output).is_ok_and(|m| m.file_type().is_file());
    ours && matches!((modified(input), modified(output)), (Some(i), Some(o)) if o >= i)
}

/// Checks a whole batch before any output is written: no two jobs write the
/// same output (both inputs named), no output is an input, and no output
/// resolves outside `out_dir` (through a symlinked directory inside it).
pub fn check_batch(jobs: &[Job], out_dir: &Path) -> crate::Result<()> {
    let usage = |m: String| crate::Error::usage(m);
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    let mut outputs = std::collections::HashMap::new();
    for job in jobs {
        if let Some(first) = outputs.insert(job.output.clone(), job.input.clone()) {
            return Err(usage(format!(
                "{} and {} would both be written to {}",
                first.display(),
                job.input.display(),
                job.output.display()
            )));
        }
    }
    // A folder that does not exist yet holds no symlink and no input: it is
    // created when the first output is written, not by the check.
    if !crate::occupied(out_dir) {
        return Ok(());
    }
    let inputs: std::collections::HashSet<PathBuf> =
        jobs.iter().filter_map(|j| canonical(&j.input)).collect();
    let root = canonical(out_dir)
        .ok_or_else(|| usage(format!("{}: cannot resolve the output folder", out_dir.display())))?;
    for job in jobs {
        // The deepest folder of the output that exists, resolved.
        let mut dir = job.output.parent().unwrap_or(out_dir).to_path_buf();
        while !dir.exists() && dir.pop() {}
        let resolved = canonical(&dir).unwrap_or_default();
        if !resolved.starts_with(&root) {
            return Err(usage(format!(
                "{} would be written outside {} (through {})",
                job.output.display(),
                out_dir.display(),
                resolved.display()
            )));
        }
        let target = canonical(&job.output);
        if target.as_ref().is_some_and(|t| inputs.contains(t)) {
            return Err(usage(format!(
                "{} is an input of this batch and would be overwritten",
                job.output.display()
            )));
        }
    }
    Ok(())
}

/// Runs every job (in parallel on the current rayon pool), calling `done`
/// as each finishes; returns the outcomes in job order.
pub fn run_batch(jobs: &[Job], opts: &ConvertOptions, done: impl Fn(&Outcome) + Sync) -> Vec<Outcome> {
    jobs.par_iter()
        .map(|job| {
            let start = Instant::now();
            let outcome = if up_to_date(&job.input, &job.output) {
                Outcome {
                    job: job.clone(),
                    status: Status::Skipped,
                    bytes_in: std::fs::metadata(&job.input).map(|m| m.len()).unwrap_or(0),
                    bytes_out: output_bytes(&job.output),
                    seconds: 0.0,
                    error: None,
                }
            } else {
                let made = job
                    .output
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .map_err(|e| crate::Error::io(&job.output, e));
                let opts = ConvertOptions {
                    force: true,
                    ..opts.clone()
                };
                let result = made.and_then(|()| convert_file(&job.input, &job.output, &opts));
                let file_size = std::fs::metadata(&job.input).map(|m| m.len()).unwrap_or(0);
                Outcome {
                    job: job.clone(),
                    status: if result.is_ok() {
                        Status::Ok
                    } else {
                        Status::Failed
                    },
                    bytes_in: result.as_ref().map_or(file_size, |r| r.bytes_in),
                    bytes_out: output_bytes(&job.output),
                    seconds: start.elapsed().as_secs_f64(),
                    error: result.err().map(|e| e.to_string()),
                }
            };
            done(&outcome);
            outcome
        })
        .collect()
}

#[cfg(all(test, feature = "safetensors", feature = "tpack", feature = "numpy"))]
mod tests {
    use super::*;

    #[test]
    fn output_names() {
        let r = Registry::builtin();
        let f = |name: &str| r.get(name).unwrap();
        assert_eq!(output_name("m.gguf", f("safetensors")), "m.safetensors");
        assert_eq!(
            output_name("model.safetensors.index.json", f("tpack")),
            "model.tpack"
        );
        assert_eq!(
            output_name("llama-00001-of-00003.gguf", f("safetensors")),
            "llama.safetensors"
        );
        assert_eq!(output_name("ckpt.gguf", f("npz")), "ckpt.npz");
    }
}
