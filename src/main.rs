//! The `tensorcast` command: argument parsing and printing; the work is done
//! by the `tensorcast` library crate.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use tensorcast::{DType, Options};

mod advice;
mod progress;
mod refs;
mod report;
use progress::Verbosity;

/// Convert tensor containers: safetensors, GGUF, PyTorch checkpoints, NumPy, tpack.
#[derive(Parser)]
#[command(name = "tensorcast", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Threads for compression, decompression, casts and dequantization
    /// (default: one per core).
    #[arg(short = 'j', long = "jobs", global = true, value_name = "N")]
    jobs: Option<usize>,
    /// Log a line per tensor (per file in batches) on stderr.
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    verbose: bool,
    /// Print nothing but errors (no bar, no warnings, no summaries).
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(flatten)]
    limits: LimitArgs,
}

/// Resource limits every reader enforces; raise them for the rare giant file.
#[derive(clap::Args)]
#[command(next_help_heading = "Limits (every command; raise them for a rare giant file)")]
struct LimitArgs {
    /// Most tensors a file may hold (default 10000000).
    #[arg(long, global = true, value_name = "N")]
    max_tensors: Option<u64>,
    /// Largest header, manifest or pickle read into memory (default 100MB).
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_size)]
    max_header_size: Option<u64>,
    /// Most objects a pickle may build (default 16777216).
    #[arg(long, global = true, value_name = "N")]
    max_objects: Option<u64>,
    /// Deepest nesting of pickled containers (default 200).
    #[arg(long, global = true, value_name = "N")]
    max_depth: Option<usize>,
    /// Largest single buffer a reader may allocate because the file says so,
    /// e.g. a deflated tensor that must be inflated whole (default 4GiB).
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_size)]
    max_alloc: Option<u64>,
}

impl LimitArgs {
    fn limits(&self) -> tensorcast::Limits {
        let d = tensorcast::Limits::default();
        tensorcast::Limits {
            max_tensors: self.max_tensors.unwrap_or(d.max_tensors),
            max_header_bytes: self.max_header_size.unwrap_or(d.max_header_bytes),
            max_objects: self.max_objects.unwrap_or(d.max_objects),
            max_depth: self.max_depth.unwrap_or(d.max_depth),
            max_alloc_bytes: self.max_alloc.unwrap_or(d.max_alloc_bytes),
            ..d
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Convert INPUT into OUTPUT (input format detected from its bytes).
    Convert(Box<ConvertArgs>),
    /// Compare two files of any formats: names, dtypes, shapes and values
    /// (bit for bit unless --atol/--rtol). Exit 0 equal, 1 different.
    Diff {
        /// First file.
        a: PathBuf,
        /// Second file.
        b: PathBuf,
        /// Absolute tolerance for float and integer values.
        #[arg(long)]
        atol: Option<f64>,
        /// Relative tolerance (|a-b| <= atol + rtol*|b|).
        #[arg(long)]
        rtol: Option<f64>,
    },
    /// Add the tensors and metadata of each INPUT to FILE.tpack, one atomic
    /// commit per input (a crash leaves the file as before or after it).
    Append {
        /// The tpack file to extend.
        file: PathBuf,
        /// Files whose tensors to add (any readable format).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// zstd level for the new chunks (default 3), or `none`.
        #[arg(long, value_name = "LEVEL", num_args = 0..=1, default_missing_value = "3", value_parser = parse_level)]
        compress: Option<i32>,
        #[command(flatten)]
        pytorch: PytorchArgs,
    },
    /// Check a file: every tpack chunk against its crc32c and codec; for other
    /// formats, every structural rule and every tensor read. Exit 1 with a
    /// report of what is damaged.
    Verify {
        /// The file to check.
        file: PathBuf,
    },
    /// Write a kerchunk reference set (JSON) that opens INPUT as a virtual
    /// Zarr store (fsspec "reference://", zarr, xarray), pointing into its
    /// bytes instead of copying them. Tensors that are not byte ranges are
    /// listed on stderr (or written to a sidecar with --materialize).
    Refs(Box<refs::RefsArgs>),
    /// Combine the JSON-line reports of batch shards into one (stdout, or
    /// -o FILE), with a summary line on stderr; exit 1 if any file failed.
    Report {
        #[command(subcommand)]
        action: ReportAction,
    },
    /// List a file's tensors and metadata.
    Inspect {
        /// The file to read.
        file: PathBuf,
        #[command(flatten)]
        pytorch: PytorchArgs,
        /// Print JSON: {"format", "metadata", "tensors": [{"name", "dtype", "shape", "nbytes"}]}.
        #[arg(long)]
        json: bool,
    },
}

/// What `report` does.
#[derive(Subcommand)]
enum ReportAction {
    /// Concatenate shard reports, checking every line is a batch result.
    Merge {
        /// The shard reports (files or URLs).
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        /// Where to write the merged report (default stdout).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

/// `convert`'s own flags.
#[derive(clap::Args)]
struct ConvertArgs {
    /// The file to read (a `.safetensors.index.json` opens a sharded checkpoint).
    #[arg(required_unless_present = "batch")]
    input: Option<PathBuf>,
    /// The file to write.
    #[arg(short, long, required_unless_present = "batch")]
    output: Option<PathBuf>,
    /// Convert many files, in parallel (-j): a directory (walked; shards
    /// covered by an index or a first split part are not converted twice),
    /// a file listing one input per line, or `-` for such a list on stdin.
    /// Outputs mirror the inputs' layout under --out-dir; outputs already
    /// complete and newer than their input are skipped. Prints one JSON
    /// line per file; exits 1 if any file failed.
    /// A URL prefix (`s3://bucket/models/`) is listed like a directory.
    #[arg(long, value_name = "DIR|URL|LIST|-", conflicts_with_all = ["input", "output"], requires_all = ["out_dir", "to"])]
    batch: Option<String>,
    /// Where --batch writes its outputs (a folder or a URL prefix).
    #[arg(long, value_name = "DIR|URL")]
    out_dir: Option<PathBuf>,
    /// Write --batch's JSON lines to FILE (or URL) instead of stdout.
    #[arg(long, value_name = "FILE|URL")]
    report: Option<PathBuf>,
    /// Run only share K of N of the batch (0 <= K < N), chosen by a stable
    /// hash of each input's relative path, so N processes started with
    /// 0/N .. N-1/N convert every file exactly once without talking to each
    /// other. `auto`: from a Kubernetes Indexed Job (JOB_COMPLETION_INDEX,
    /// JOB_COMPLETIONS) or a Slurm array (SLURM_ARRAY_TASK_ID,
    /// SLURM_ARRAY_TASK_COUNT).
    #[arg(long, value_name = "K/N|auto", requires = "batch")]
    shard: Option<String>,
    /// Output format (default: from the output's extension).
    #[arg(long, value_parser = parse_format)]
    to: Option<String>,
    /// Cast floating-point tensors to this dtype (f64, f32, f16, bf16,
    /// f8_e4m3, f8_e5m2, f8_e4m3fnuz, f8_e5m2fnuz, f8_e8m0); integer and
    /// bool tensors keep theirs.
    #[arg(long, value_parser = parse_cast_dtype)]
    dtype: Option<DType>,
    /// Replace OUTPUT if it exists.
    #[arg(long)]
    force: bool,
    /// Insist on keeping block-quantized tensors as raw blocks (refusing an
    /// output that cannot hold them). Without it GGUF and tpack outputs keep
    /// them anyway unless --dtype asks for floats; other outputs get them
    /// dequantized to f32 (or --dtype), bit-identical to gguf-py.
    #[arg(long)]
    keep_quantized: bool,
    /// Quantize float weight matrices (2+ dims, rows divisible by 32) to
    /// Q8_0, Q4_0, Q4_1, Q5_0 or Q5_1 (GGUF output), as gguf-py does.
    #[arg(long, value_name = "TYPE", value_parser = parse_quant)]
    quantize: Option<tensorcast::QuantType>,
    /// Write sparse tensors (COO, CSR) as the dense tensors they stand
    /// for, equal to torch's to_dense(). Without it they are kept sparse
    /// where the output holds them (tpack; CSR in .zt) and refused by name
    /// elsewhere.
    #[arg(long)]
    densify: bool,
    /// Split safetensors output into shards of at most SIZE (e.g. 5GB, 2GiB),
    /// with a Hugging Face index file.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_shard_size: Option<u64>,
    /// tpack output: zstd level (1-22; default 3), or `none` for raw
    /// chunks. Floats use byte planes + zstd; chunks that would not
    /// shrink are stored raw.
    #[arg(long, value_name = "LEVEL", num_args = 0..=1, default_missing_value = "3", value_parser = parse_level)]
    compress: Option<i32>,
    /// Keep only tensors whose names match GLOB (`*`, `?`); repeatable.
    #[arg(long, value_name = "GLOB")]
    include: Vec<String>,
    /// Drop tensors whose names match GLOB; repeatable.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Rename tensors whose names start with FROM to start with TO, or with
    /// `re:PATTERN=TO` replace a regex match (`$1` for groups); repeatable,
    /// first matching rule wins.
    #[arg(long, value_name = "FROM=TO", value_parser = tensorcast::Selection::parse_rename)]
    rename: Vec<(String, String)>,
    /// `model` (default): a GGUF into a Hugging Face folder and a folder into
    /// GGUF convert the model (names, transforms, config, tokenizer). `keep`:
    /// the container only, tensor names and metadata as they are.
    #[arg(long, value_name = "model|keep", default_value = "model", value_parser = ["model", "keep"])]
    names: String,
    /// Hugging Face folder -> GGUF: the llama.cpp pre-tokenizer name for a
    /// BPE vocabulary llama.cpp's table does not know (a known one is
    /// always detected).
    #[arg(long, value_name = "NAME")]
    tokenizer_pre: Option<String>,
    #[command(flatten)]
    pytorch: PytorchArgs,
}

/// Options for PyTorch checkpoints (.pt/.pth/.bin/.ckpt).
#[derive(clap::Args, Clone)]
struct PytorchArgs {
    /// Record data classes outside torch's weights-only allowlist (NumPy
    /// scalars, argparse.Namespace, classes of your own or a library's
    /// modules such as Lightning's hyper-parameters) as opaque metadata
    /// instead of refusing the file. Nothing is ever imported or called;
    /// functions and anything from the standard library, torch or NumPy stay
    /// refused.
    #[arg(long)]
    lenient: bool,
    /// Keep only the sub-tree at this dotted path (e.g. `state_dict`).
    #[arg(long, value_name = "PATH")]
    select: Option<String>,
    /// Remove this prefix from tensor names that start with it (e.g. `model.`).
    #[arg(long, value_name = "PREFIX")]
    strip_prefix: Option<String>,
    /// Write tensors that share their bytes once; metadata maps each dropped
    /// name to the kept one (as Hugging Face's convert.py does).
    #[arg(long)]
    dedupe_tied: bool,
}

impl PytorchArgs {
    fn is_set(&self) -> bool {
        self.lenient || self.select.is_some() || self.strip_prefix.is_some() || self.dedupe_tied
    }

    /// Reading options with these flags: PyTorch options are set only when a
    /// flag was given, so the library refuses them for other formats.
    fn options(self, limits: &tensorcast::Limits) -> Options {
        let mut options = Options::with_limits(limits.clone());
        if self.is_set() {
            options.set(tensorcast::pytorch::PytorchOptions {
                lenient: self.lenient,
                flatten: tensorcast::pytorch::FlattenOptions {
                    select: self.select,
                    strip_prefix: self.strip_prefix,
                    dedupe_tied: self.dedupe_tied,
                },
                limits: limits.clone(),
            });
        }
        options
    }
}

impl ConvertArgs {
    /// The library's options for these flags.
    fn options(self, limits: &tensorcast::Limits) -> tensorcast::ConvertOptions {
        let mut options = self.pytorch.options(limits);
        options
            .set(tensorcast::safetensors::SafetensorsWriteOptions {
                max_shard_bytes: self.max_shard_size,
            })
            .set(tensorcast::tpack::TpackWriteOptions {
                compress: self.compress,
            });
        if let Some(pre) = self.tokenizer_pre {
            options.set(tensorcast::model::ModelOptions {
                tokenizer_pre: Some(pre),
            });
        }
        tensorcast::ConvertOptions {
            to: self.to,
            dtype: self.dtype,
            force: self.force,
            keep_quantized: self.keep_quantized,
            quantize: self.quantize,
            options,
            select: tensorcast::Selection {
                include: self.include,
                exclude: self.exclude,
                rename: self.rename,
            },
            progress: None,
            registry: tensorcast::Registry::builtin(),
            keep_names: self.names == "keep",
            densify: self.densify,
        }
    }
}

/// `convert --batch`: builds the jobs, runs them, prints one JSON line each
/// and a summary; fails if any file failed (after all others completed).
fn run_batch(
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
    } else if tensorcast::remote::is_url(batch.as_ref()) {
        tensorcast::jobs_from_prefix(batch.as_ref(), out_dir, format, registry)?
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

fn warn_all(warnings: &[String]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

fn parse_level(s: &str) -> Result<i32, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(0);
    }
    match s.parse::<i32>() {
        Ok(l) if (0..=22).contains(&l) => Ok(l),
        _ => Err(format!("--compress takes a zstd level 1-22 or 'none', not '{s}'")),
    }
}

/// A `--to` value: a format the build can write.
fn parse_format(s: &str) -> Result<String, String> {
    let registry = tensorcast::Registry::builtin();
    match registry.get(s) {
        Some(f) if f.can_write() => Ok(f.name().to_string()),
        Some(f) => Err(format!(
            "{} is read-only here; --to takes {}",
            f.name(),
            registry.writable().join(", ")
        )),
        None => Err(format!(
            "unknown format '{s}'; --to takes {}",
            registry.writable().join(", ")
        )),
    }
}

fn parse_cast_dtype(s: &str) -> Result<DType, String> {
    let d: DType = s.parse()?;
    // Any float dtype the cast kernels can produce.
    if d.is_float() && tensorcast::cast::can_cast(DType::F32, d) {
        Ok(d)
    } else {
        Err(format!(
            "--dtype takes a float type (f64, f32, f16, bf16, f8_e4m3, f8_e5m2, f8_e4m3fnuz, f8_e5m2fnuz, f8_e8m0, or torch's names: bfloat16, float16, float32...), not {d}"
        ))
    }
}

fn parse_quant(s: &str) -> Result<tensorcast::QuantType, String> {
    tensorcast::QuantType::from_name(s)
        .filter(|q| matches!(q.name(), "Q8_0" | "Q4_0" | "Q4_1" | "Q5_0" | "Q5_1"))
        .ok_or_else(|| format!("--quantize takes Q8_0, Q4_0, Q4_1, Q5_0 or Q5_1, not '{s}'"))
}

fn parse_size(s: &str) -> Result<u64, String> {
    tensorcast::parse_size(s)
}

/// What every command shares: how chatty to be and the reader limits.
struct Session {
    verbosity: Verbosity,
    limits: tensorcast::Limits,
}

impl Session {
    fn warn(&self, warnings: &[String]) {
        if self.verbosity != Verbosity::Quiet {
            warn_all(warnings)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let verbosity = match (cli.quiet, cli.verbose) {
        (true, _) => Verbosity::Quiet,
        (_, true) => Verbosity::Verbose,
        _ => Verbosity::Normal,
    };
    let cx = Session {
        verbosity,
        limits: cli.limits.limits(),
    };
    match cli.command {
        Command::Convert(args) => convert(*args, &cx),
        Command::Append {
            file,
            inputs,
            compress,
            pytorch,
        } => append(&file, &inputs, compress, pytorch, &cx),
        Command::Diff { a, b, atol, rtol } => diff(&a, &b, atol, rtol, &cx),
        Command::Verify { file } => verify(&file, &cx),
        Command::Inspect { file, json, pytorch } => inspect(&file, json, pytorch, &cx),
        Command::Refs(args) => refs::run(*args, &cx),
        Command::Report {
            action: ReportAction::Merge { reports, output },
        } => report::merge(&reports, output.as_deref(), &cx),
    }
}

fn convert(args: ConvertArgs, cx: &Session) -> anyhow::Result<()> {
    let (batch, input, output) = (args.batch.clone(), args.input.clone(), args.output.clone());
    let (out_dir, report) = (args.out_dir.clone(), args.report.clone());
    let shard_arg = args.shard.clone();
    let opts = args.options(&cx.limits);
    match (batch, input, output) {
        (Some(batch), _, _) => {
            let out_dir = out_dir.context("--batch needs --out-dir")?;
            let format = opts.to.clone().context("--batch needs --to")?;
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
            let folder = opts
                .registry
                .output_format(&output, opts.to.as_deref())
                .is_ok_and(|f| f.folder_target().is_some());
            if !opts.force && !folder && tensorcast::occupied(&output) {
                anyhow::bail!("{} already exists (use --force to replace it)", output.display());
            }
            let label = output
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
                    human_bytes(written_bytes(&output)),
                    start.elapsed().as_secs_f64()
                );
            }
            Ok(())
        }
        _ => anyhow::bail!("convert needs INPUT and -o OUTPUT, or --batch"),
    }
}

fn append(
    file: &std::path::Path,
    inputs: &[PathBuf],
    compress: Option<i32>,
    pytorch: PytorchArgs,
    cx: &Session,
) -> anyhow::Result<()> {
    let options = pytorch.options(&cx.limits);
    let level = tensorcast::tpack::TpackWriteOptions { compress }.level();
    for input in inputs {
        let source = tensorcast::open(input, &options)?;
        cx.warn(source.warnings());
        tensorcast::tpack::append(file, &*source, level, &options.limits)?;
    }
    Ok(())
}

fn diff(
    a: &std::path::Path,
    b: &std::path::Path,
    atol: Option<f64>,
    rtol: Option<f64>,
    cx: &Session,
) -> anyhow::Result<()> {
    let tol = (atol.is_some() || rtol.is_some()).then(|| tensorcast::Tolerance {
        atol: atol.unwrap_or(0.0),
        rtol: rtol.unwrap_or(0.0),
    });
    let plain = Options::with_limits(cx.limits.clone());
    let sa = tensorcast::open(a, &plain)?;
    let sb = tensorcast::open(b, &plain)?;
    let found = tensorcast::diff(&*sa, &*sb, tol)?;
    if !found.is_empty() {
        for d in &found {
            println!("{d}");
        }
        anyhow::bail!(
            "{} and {} differ in {} place(s)",
            a.display(),
            b.display(),
            found.len()
        );
    }
    println!(
        "{} and {}: {} tensors equal",
        a.display(),
        b.display(),
        sa.tensors().len()
    );
    Ok(())
}

fn verify(file: &std::path::Path, cx: &Session) -> anyhow::Result<()> {
    let damage = tensorcast::verify(file, &Options::with_limits(cx.limits.clone()))?;
    if !damage.is_empty() {
        for d in &damage {
            eprintln!("damaged: {d}");
        }
        anyhow::bail!("{}: {} problem(s) found", file.display(), damage.len());
    }
    println!("{}: ok", file.display());
    Ok(())
}

fn inspect(file: &std::path::Path, json: bool, pytorch: PytorchArgs, cx: &Session) -> anyhow::Result<()> {
    let source = tensorcast::open(file, &pytorch.options(&cx.limits))?;
    cx.warn(source.warnings());
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    // Written as it is produced: a huge metadata array is never one string.
    let written = if json {
        serde_json::to_writer_pretty(&mut stdout, &tensorcast::inspect_json(&*source))
            .map_err(std::io::Error::from)
            .and_then(|()| stdout.write_all(b"\n"))
    } else {
        tensorcast::write_inspect_table(&*source, &mut stdout)
    };
    // A closed pipe (`| head`) is not an error worth reporting.
    match written.and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}

/// An error and its causes, each said once (an I/O error's text is part of
/// the message that wraps it already).
fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// Bytes at `path`: a file's size, or a folder's files together (shards, a
/// Hugging Face folder).
fn written_bytes(path: &std::path::Path) -> u64 {
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
fn human_bytes(n: u64) -> String {
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

/// Keeps freed chunk buffers (a few MiB each) in the heap instead of handing
/// them back to the kernel: glibc would otherwise unmap every one and the next
/// chunk would page-fault its memory in again (measured: 300k faults and 3x
/// the system time decoding a 1 GiB tpack). Memory stays bounded by the
/// chunks in flight.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator thresholds; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}

fn main() -> ExitCode {
    tune_allocator();
    // clap exits with 2 on usage errors and 0 for --help/--version.
    let cli = Cli::parse();
    if let Some(n) = cli.jobs.filter(|&n| n > 0) {
        // Fails only if a pool already exists, which cannot happen this early.
        let _ = rayon::ThreadPoolBuilder::new().num_threads(n).build_global();
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            if let Some(hint) = e.downcast_ref::<tensorcast::Error>().and_then(advice::advice) {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(1)
        }
    }
}
