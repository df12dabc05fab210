//! Batch migration: many inputs converted in parallel into a mirrored output
//! tree, resumable, one result per file.

use crate::convert::{convert_file, ConvertOptions};
use crate::Registry;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tensorcast_core::code;
use tensorcast_core::{Format, InputRole, Location};

/// One input and where its output goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// The file to read.
    pub input: Location,
    /// The file to write.
    pub output: Location,
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
    /// With [`ConvertOptions::digest`]: the content ids (for an output
    /// already done, `written` is the output's own id).
    pub digests: Option<crate::Digests>,
}

impl Outcome {
    /// The JSON line the CLI prints.
    pub fn to_json(&self) -> serde_json::Value {
        let mut line = serde_json::json!({
            "input": self.job.input,
            "output": self.job.output,
            "status": self.status.as_str(),
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "seconds": (self.seconds * 1000.0).round() / 1000.0,
            "error": self.error,
        });
        if let (Some(d), Some(map)) = (&self.digests, line.as_object_mut()) {
            map.insert("digest_in".into(), d.input.to_string().into());
            if d.written != d.input {
                map.insert("digest_written".into(), d.written.to_string().into());
            }
            map.insert("digest_out".into(), d.output.to_string().into());
        }
        line
    }
}

/// The output name for `name` in `format`: the model's name as the input's
/// format reads it (without its extension and multi-part naming, so a
/// sharded index or a split GGUF's first part is named after the whole
/// model), with the output format's first extension.
fn output_name(name: &str, registry: &Registry, format: &dyn Format) -> String {
    let stem = match registry.for_path(Path::new(name)) {
        Some(input) => input.stem(name),
        None => name.rsplit_once('.').map_or(name, |(s, _)| s),
    };
    named_in(stem, format)
}

/// `stem` with `format`'s first extension (its name when it has none).
fn named_in(stem: &str, format: &dyn Format) -> String {
    let ext = format.extensions().first().copied().unwrap_or(format.name());
    format!("{stem}.{ext}")
}

/// Whether a walked file is a model input on its own: known extension, and
/// not a shard that an index or a first split part already covers.
fn is_model(path: &Path, registry: &Registry) -> bool {
    let dir = path.parent().unwrap_or(Path::new("."));
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    is_model_named(name, registry, |index| dir.join(index).exists())
}

/// [`is_model`] for a file called `name` whose folder holds a file called
/// `f` when `beside(f)`: its format (by extension) says what role it plays.
fn is_model_named(name: &str, registry: &Registry, beside: impl Fn(&str) -> bool) -> bool {
    if name.ends_with(".tensorcast-tmp") {
        return false;
    }
    registry
        .for_path(Path::new(name))
        .is_some_and(|f| f.input_role(name, &beside) == InputRole::Whole)
}

/// Every model object under the URL `prefix` (recursively, as its store
/// lists them), sorted, as jobs writing `format` into `out_dir` (a folder or
/// a URL prefix) with the same relative layout.
pub fn jobs_from_prefix(
    prefix: impl Into<Location>,
    out_dir: impl Into<Location>,
    format: &dyn Format,
    registry: &Registry,
) -> crate::Result<Vec<Job>> {
    let (prefix, out_dir) = (prefix.into(), out_dir.into());
    let listed = crate::remote::list(&prefix)?;
    let names: std::collections::HashSet<&str> = listed.iter().map(|(rel, _)| rel.as_str()).collect();
    let mut jobs = Vec::new();
    for (rel, _) in &listed {
        let (dir, name) = rel.rsplit_once('/').map_or(("", rel.as_str()), |(d, n)| (d, n));
        let beside = |f: &str| {
            let sibling = if dir.is_empty() {
                f.to_string()
            } else {
                format!("{dir}/{f}")
            };
            names.contains(sibling.as_str())
        };
        if !is_model_named(name, registry, beside) {
            continue;
        }
        let out_rel = if dir.is_empty() {
            output_name(name, registry, format)
        } else {
            format!("{dir}/{}", output_name(name, registry, format))
        };
        // Out of a store's listing no part is `..` or empty; refuse if one is.
        if out_rel.split('/').any(|p| !tensorcast_core::is_plain_name(p)) {
            return Err(crate::Error::usage(
                code::BAD_LOCATION,
                format!("{rel}: not a relative object path"),
            ));
        }
        jobs.push(Job {
            input: prefix.join(rel),
            output: out_dir.join(&out_rel),
        });
    }
    Ok(jobs)
}

/// One share of a batch run as many processes: [`Shard::index`] of
/// [`Shard::count`], counted from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This process's share, `0..count`.
    pub index: u64,
    /// How many shares there are.
    pub count: u64,
}

impl Shard {
    /// `K/N` (0 <= K < N).
    pub fn parse(s: &str) -> crate::Result<Shard> {
        let bad = || {
            crate::Error::usage(
                code::BAD_OPTION,
                format!("shard '{s}' is not K/N with 0 <= K < N"),
            )
        };
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// The share a job runner gives this process: a Kubernetes Indexed Job
    /// (`JOB_COMPLETION_INDEX`, with the completions count in
    /// `JOB_COMPLETIONS`, which the Job's manifest sets) or a Slurm array
    /// (`SLURM_ARRAY_TASK_ID` from `SLURM_ARRAY_TASK_MIN`, of
    /// `SLURM_ARRAY_TASK_COUNT`).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> crate::Result<Shard> {
        let num = |name: &str| -> crate::Result<Option<u64>> {
            match var(name) {
                None => Ok(None),
                Some(v) => v.trim().parse().map(Some).map_err(|_| {
                    crate::Error::usage(code::BAD_OPTION, format!("{name}={v} is not a number"))
                }),
            }
        };
        let (index, count) = if let Some(index) = num("JOB_COMPLETION_INDEX")? {
            let count = num("JOB_COMPLETIONS")?.ok_or_else(|| {
                crate::Error::usage(code::BAD_OPTION,
                    "JOB_COMPLETION_INDEX is set but JOB_COMPLETIONS is not: set it to the Job's completions count",
                )
            })?;
            (index, count)
        } else if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let count = num("SLURM_ARRAY_TASK_COUNT")?.ok_or_else(|| {
                crate::Error::usage(
                    code::BAD_OPTION,
                    "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not",
                )
            })?;
            (id.saturating_sub(min), count)
        } else {
            return Err(crate::Error::usage(code::BAD_OPTION,
                "automatic sharding needs JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID (Slurm array)",
            ));
        };
        Shard::parse(&format!("{index}/{count}"))
    }

    /// Whether the input at `rel` (its path relative to the batch) is in
    /// this share: a stable hash (FNV-1a) of the path, so every process
    /// agrees without talking to the others, whatever order it listed in.
    pub fn takes(&self, rel: &str) -> bool {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in rel.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h % self.count == self.index
    }
}

/// The jobs of `jobs` in `shard`, by their input paths relative to `root`
/// (the batch folder or prefix; a listed path as written when not under it).
pub fn take_shard(jobs: Vec<Job>, root: &Path, shard: Shard) -> Vec<Job> {
    let root = root.to_string_lossy().trim_end_matches('/').to_string();
    jobs.into_iter()
        .filter(|j| {
            let input = j.input.to_string();
            let rel = input
                .strip_prefix(root.as_str())
                .map_or(input.as_str(), |r| r.trim_start_matches('/'));
            shard.takes(rel)
        })
        .collect()
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
                // A folder that converts as a model into `format` (a Hugging
                // Face folder into GGUF) is one input; any other is walked.
                let model = registry
                    .folder_claiming(&Location::Local(path.clone()))
                    .is_some_and(|f| f.folder_converts_to(format));
                if model {
                    files.push((path, true));
                } else if path != out_dir {
                    // Never walk into the output tree.
                    stack.push(path);
                }
            } else if kind.is_file() && is_model(&path, registry) {
                files.push((path, false));
            }
        }
    }
    files.sort();
    Ok(files
        .into_iter()
        .map(|(input, folder)| {
            let rel = input.strip_prefix(dir).unwrap_or(&input);
            let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("model");
            let name = match folder {
                // A model folder's output is named after the folder.
                true => named_in(name, format),
                false => output_name(name, registry, format),
            };
            let output = out_dir.join(rel).with_file_name(name);
            Job {
                input: input.into(),
                output: output.into(),
            }
        })
        .collect())
}

/// Jobs for listed inputs (one path per line; blank lines and `#` comments
/// skipped); relative paths keep their layout under `out_dir`.
pub fn jobs_from_list(text: &str, out_dir: &Path, format: &dyn Format, registry: &Registry) -> Vec<Job> {
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
                output: out_dir
                    .join(&rel)
                    .with_file_name(output_name(&name, registry, format))
                    .into(),
                input: input.into(),
            }
        })
        .collect()
}

fn output_bytes(output: &Location) -> u64 {
    crate::remote::size(output).unwrap_or(0)
}

/// Whether `output` is complete and newer than `input` (outputs only ever
/// appear complete, so existing means complete).
fn up_to_date(input: &Location, output: &Location) -> bool {
    let modified = crate::remote::modified;
    // Only a regular file of ours counts: a symlink there is replaced, not
    // taken for a finished output by its target's size and age. (An object
    // is always ours: uploads appear complete or not at all.)
    let ours = match output {
        Location::Url(_) => true,
        Location::Local(p) => std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file()),
    };
    ours && matches!((modified(input), modified(output)), (Some(i), Some(o)) if o >= i)
}

/// Checks a whole batch before any output is written: no two jobs write the
/// same output (both inputs named), no output is an input, and no output
/// resolves outside `out_dir` (through a symlinked directory inside it).
pub fn check_batch(jobs: &[Job], out_dir: impl Into<Location>) -> crate::Result<()> {
    let out_dir = out_dir.into();
    let usage = |m: String| crate::Error::usage(code::OUTPUT_CONFLICT, m);
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
    // created when the first output is written, not by the check. A store
    // prefix has no symlinks; its keys were checked for `..` when listed.
    let out_dir = match out_dir {
        Location::Local(dir) if crate::occupied(&dir) => dir,
        _ => return Ok(()),
    };
    let out_dir = out_dir.as_path();
    let inputs: std::collections::HashSet<PathBuf> =
        jobs.iter().filter_map(|j| canonical(j.input.as_path())).collect();
    let root = canonical(out_dir)
        .ok_or_else(|| usage(format!("{}: cannot resolve the output folder", out_dir.display())))?;
    for job in jobs {
        // The deepest folder of the output that exists, resolved.
        let mut dir = job.output.as_path().parent().unwrap_or(out_dir).to_path_buf();
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
        let target = canonical(job.output.as_path());
        if target.as_ref().is_some_and(|t| inputs.contains(t)) {
            return Err(usage(format!(
                "{} is an input of this batch and would be overwritten",
                job.output.display()
            )));
        }
    }
    Ok(())
}

/// The content ids of a job an earlier run finished. Without the tensors
/// that were written, the output is held to its input's id unless the
/// options change tensors on purpose (then only the ids are reported).
fn check_done(job: &Job, opts: &ConvertOptions) -> crate::Result<crate::Digests> {
    let input = crate::digest(&*opts.registry.open(&job.input, &opts.options)?)?.id;
    let output = crate::digest(&*opts.registry.open(&job.output, &opts.options)?)?.id;
    if !crate::convert::changes_on_purpose(job, opts)? && input != output {
        return Err(crate::Error::unsupported(
            code::DIGEST_MISMATCH,
            format!(
                "{}, already converted, no longer holds the tensors of {}: content id {output}, input {input} \
                 (changed since it was written)",
                job.output, job.input
            ),
        ));
    }
    Ok(crate::Digests {
        input,
        written: output,
        output,
    })
}

/// Runs every job (in parallel on the current rayon pool), calling `done`
/// as each finishes; returns the outcomes in job order.
pub fn run_batch(jobs: &[Job], opts: &ConvertOptions, done: impl Fn(&Outcome) + Sync) -> Vec<Outcome> {
    jobs.par_iter()
        .map(|job| {
            let start = Instant::now();
            let outcome = if up_to_date(&job.input, &job.output) {
                let mut outcome = Outcome {
                    job: job.clone(),
                    status: Status::Skipped,
                    bytes_in: crate::remote::size(&job.input).unwrap_or(0),
                    bytes_out: output_bytes(&job.output),
                    seconds: 0.0,
                    error: None,
                    digests: None,
                };
                if opts.digest {
                    // Work done by an earlier run is proved too: an output
                    // changed since it was written fails here.
                    match check_done(job, opts) {
                        Ok(d) => outcome.digests = Some(d),
                        Err(e) => {
                            outcome.status = Status::Failed;
                            outcome.error = Some(e.to_string());
                        }
                    }
                    outcome.seconds = start.elapsed().as_secs_f64();
                }
                outcome
            } else {
                let made = match job.output.local().and_then(Path::parent) {
                    Some(dir) => std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir, e)),
                    None => Ok(()),
                };
                let opts = ConvertOptions {
                    force: true,
                    ..opts.clone()
                };
                let result = made.and_then(|()| convert_file(&job.input, &job.output, &opts));
                let file_size = crate::remote::size(&job.input).unwrap_or(0);
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
                    digests: result.as_ref().ok().and_then(|r| r.digests),
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
        assert_eq!(output_name("m.gguf", &r, f("safetensors")), "m.safetensors");
        assert_eq!(
            output_name("model.safetensors.index.json", &r, f("tpack")),
            "model.tpack"
        );
        assert_eq!(
            output_name("llama-00001-of-00003.gguf", &r, f("safetensors")),
            "llama.safetensors"
        );
        assert_eq!(output_name("ckpt.gguf", &r, f("npz")), "ckpt.npz");
        // A shard of a sharded PyTorch checkpoint is a whole file of its own.
        assert_eq!(
            output_name("pytorch_model-00001-of-00002.bin", &r, f("safetensors")),
            "pytorch_model-00001-of-00002.safetensors"
        );
    }
}
