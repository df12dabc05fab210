//! `convert`: one file, or a batch of them (`--batch`), with the progress
//! bar and the closing line.

use crate::args::ConvertArgs;
use crate::progress::{self, Verbosity};
use crate::{report, Session};
use anyhow::Context;
use std::io::Write;

/// Writer flags the chosen output format would ignore are usage errors
/// (exit 2): a `--max-shard-size` for a GGUF output used to be dropped
/// without a word.
fn refuse_unused_writer_flags(format: &dyn tensorcast::Format, sharded: bool, compressed: bool) {
    use clap::CommandFactory;
    // Folder outputs (--to hf) write their weights as safetensors shards.
    let shards = format.name() == "safetensors" || format.folder_target().is_some();
    let refusal = if sharded && !shards {
        Some(format!(
            "--max-shard-size applies to safetensors outputs, not {}",
            format.name()
        ))
    } else if compressed && format.name() != "tpack" {
        Some(format!(
            "--compress applies to tpack outputs, not {}",
            format.name()
        ))
    } else {
        None
    };
    if let Some(msg) = refusal {
        crate::Cli::command()
            .error(clap::error::ErrorKind::ArgumentConflict, msg)
            .exit();
    }
}

pub(crate) fn convert(args: ConvertArgs, cx: &Session) -> anyhow::Result<()> {
    let (batch, input, output) = (args.batch.clone(), args.input.clone(), args.output.clone());
    let (out_dir, report) = (args.out_dir.clone(), args.report.clone());
    let shard_arg = args.shard.clone();
    let (sharded, compressed) = (args.max_shard_size.is_some(), args.compress.is_some());
    let opts = args.options(&cx.limits);
    match (batch, input, output) {
        (Some(batch), _, _) => {
            let out_dir = out_dir.context("--batch needs --out-dir")?;
            let format = opts.to.clone().context("--batch needs --to")?;
            if let Ok(f) = opts.registry.output_named(&format) {
                refuse_unused_writer_flags(f, sharded, compressed);
            }
            let shard = match shard_arg.as_deref() {
                None => None,
                Some("auto") => Some(tensorcast::Shard::from_env(|v| std::env::var(v).ok())?),
                Some(k_n) => Some(tensorcast::Shard::parse(k_n)?),
            };
            run_batch(
                &batch,
                &out_dir,
                &format,
                &opts,
                report.as_deref(),
                shard,
                cx.verbosity,
            )
        }
        (None, Some(input), Some(output)) => {
            // A folder output (--to hf) is checked by the library: a folder
            // may exist, a model in it may not.
            let format = opts.registry.output_format(output.as_path(), opts.to.as_deref());
            if let Ok(f) = &format {
                refuse_unused_writer_flags(*f, sharded, compressed);
            }
            let folder = format.is_ok_and(|f| f.folder_target().is_some());
            if !opts.force && !folder && tensorcast::occupied(&output) {
                anyhow::bail!("{} already exists (use --force to replace it)", output.display());
            }
            let label = output
                .as_path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let opts = tensorcast::ConvertOptions {
                progress: progress::ConvertProgress::new(cx.verbosity)
                    .map(|p| tensorcast::ProgressHook(std::sync::Arc::new(p.label(&label)))),
                ..opts
            };
            let start = std::time::Instant::now();
            let report = tensorcast::convert_file(&input, &output, &opts)?;
            cx.warn(&report.warnings);
            if cx.verbosity != Verbosity::Quiet {
                eprintln!(
                    "wrote {}: {} tensors, {} in {:.1} s",
                    output.display(),
                    report.tensors,
                    human_bytes(written_bytes(output.as_path())),
                    start.elapsed().as_secs_f64()
                );
            }
            if let Some(d) = report.digests {
                // The proof, on stdout: a script keeps it.
                println!("digest_in {}", d.input);
                if d.written != d.input {
                    println!("digest_written {}", d.written);
                }
                println!("digest_out {}", d.output);
            }
            Ok(())
        }
        _ => anyhow::bail!("convert needs INPUT and -o OUTPUT, or --batch"),
    }
}

/// `convert --batch`: builds the jobs, runs them, prints one JSON line each
/// and a summary; fails if any file failed (after all others completed).
pub(crate) fn run_batch(
    batch: &str,
    out_dir: &std::path::Path,
    format: &str,
    opts: &tensorcast::ConvertOptions,
    report: Option<&std::path::Path>,
    shard: Option<tensorcast::Shard>,
    verbosity: Verbosity,
) -> anyhow::Result<()> {
    let registry = &opts.registry;
    let format = registry.output_named(format)?;
    let jobs = if batch == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("reading the list from stdin")?;
        tensorcast::jobs_from_list(&text, out_dir, format, registry)
    } else if tensorcast::Location::parse(batch).url().is_some() {
        tensorcast::jobs_from_prefix(batch, out_dir, format, registry)?
    } else if std::path::Path::new(batch).is_dir() {
        tensorcast::jobs_from_dir(batch.as_ref(), out_dir, format, registry)
            .with_context(|| format!("walking {batch}"))?
    } else {
        let text = std::fs::read_to_string(batch).with_context(|| format!("reading the list {batch}"))?;
        tensorcast::jobs_from_list(&text, out_dir, format, registry)
    };
    let jobs = match shard {
        Some(shard) => tensorcast::take_shard(jobs, batch.as_ref(), shard),
        None => jobs,
    };
    let report = report::Report::create(report)?;
    let sink = std::sync::Mutex::new(report.writer());
    let bar = progress::batch_bar(verbosity, jobs.len());
    // Every output planned before any is written.
    tensorcast::check_batch(&jobs, out_dir)?;
    let outcomes = tensorcast::run_batch(&jobs, opts, |o| {
        if let Ok(mut w) = sink.lock() {
            let _ = writeln!(w, "{}", o.to_json());
            let _ = w.flush();
        }
        if let Some(bar) = &bar {
            bar.inc(1);
            bar.set_message(o.job.input.display().to_string());
        }
        if verbosity == Verbosity::Verbose {
            eprintln!(
                "{} {} -> {} ({:.2} s)",
                o.status.as_str(),
                o.job.input.display(),
                o.job.output.display(),
                o.seconds
            );
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    drop(sink);
    report.finish()?;
    use tensorcast::Status;
    let count = |s: Status| outcomes.iter().filter(|o| o.status == s).count();
    let (ok, skipped, failed) = (count(Status::Ok), count(Status::Skipped), count(Status::Failed));
    let bytes_in: u64 = outcomes.iter().map(|o| o.bytes_in).sum();
    let bytes_out: u64 = outcomes
        .iter()
        .filter(|o| o.status != Status::Failed)
        .map(|o| o.bytes_out)
        .sum();
    if verbosity != Verbosity::Quiet {
        eprintln!(
            "batch: {} files: {ok} converted, {skipped} already done, {failed} failed; {bytes_in} bytes in, {bytes_out} bytes out",
            outcomes.len()
        );
    }
    for o in outcomes.iter().filter(|o| o.status == Status::Failed) {
        // The error names the file already.
        eprintln!("failed: {}", o.error.as_deref().unwrap_or(""));
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} files failed", outcomes.len());
    }
    Ok(())
}

/// Bytes at `path`: a file's size, or a folder's files together (shards, a
/// Hugging Face folder).
pub(crate) fn written_bytes(path: &std::path::Path) -> u64 {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => std::fs::read_dir(path)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

/// `1.07 GB`, `236.4 MB`, `912 B` (decimal units, as file managers show).
pub(crate) fn human_bytes(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", units[u])
    }
}
