//! The command line: every command's arguments (clap derive), their
//! parsers, and the library options they stand for.

use crate::refs;
use clap::builder::TypedValueParser;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use tensorcast::{DType, Options};

/// Convert tensor files and the models in them: safetensors (sharded too),
/// GGUF (split too), PyTorch checkpoints, NumPy .npy/.npz, ONNX
/// initializers, zTensor .zt, tpack and Hugging Face model folders.
#[derive(Parser)]
#[command(name = "tensorcast", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// Threads for compression, decompression, casts and dequantization,
    /// 1 to 256 (default: one per core).
    #[arg(short = 'j', long = "jobs", global = true, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=MAX_JOBS))]
    pub(crate) jobs: Option<u16>,
    /// Log a line per tensor (per file in batches) on stderr.
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub(crate) verbose: bool,
    /// Print nothing but errors (no bar, no warnings, no summaries).
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
    #[command(flatten)]
    pub(crate) limits: LimitArgs,
}

/// Resource limits every reader enforces; raise them for the rare giant file.
#[derive(clap::Args)]
#[command(next_help_heading = "Limits (every command; raise them for a rare giant file)")]
pub(crate) struct LimitArgs {
    /// Most tensors a file may hold (default 10000000).
    #[arg(long, global = true, value_name = "N")]
    pub(crate) max_tensors: Option<u64>,
    /// Largest header, manifest or pickle read into memory (default 100MB).
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_size)]
    pub(crate) max_header_size: Option<u64>,
    /// Most objects a pickle may build (default 16777216).
    #[arg(long, global = true, value_name = "N")]
    pub(crate) max_objects: Option<u64>,
    /// Deepest nesting of pickled containers (default 200).
    #[arg(long, global = true, value_name = "N")]
    pub(crate) max_depth: Option<usize>,
    /// Largest single buffer a reader may allocate because the file says so,
    /// e.g. a deflated tensor that must be inflated whole (default 4GiB).
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_size)]
    pub(crate) max_alloc: Option<u64>,
}

impl LimitArgs {
    pub(crate) fn limits(&self) -> tensorcast::Limits {
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
pub(crate) enum Command {
    /// Convert INPUT into OUTPUT (input format detected from its bytes).
    Convert(Box<ConvertArgs>),
    /// Compare two files of any formats: names, dtypes, shapes and values
    /// (bit for bit unless --atol/--rtol). Exit 0 equal, 1 different.
    Diff {
        /// First file.
        a: PathBuf,
        /// Second file, or a content id (`tc1:…`, from `digest`) that A's
        /// tensors must have.
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
    /// report of what is damaged (or, with --digest, a different content).
    Verify {
        /// The file to check.
        file: PathBuf,
        /// Also require this content id (`tc1:…`, from `digest`): the file
        /// holds exactly those tensors, whatever container it is now.
        #[arg(long, value_name = "ID", value_parser = content_id)]
        digest: Option<tensorcast::ContentId>,
    },
    /// Print the content id of each INPUT: a hash of its tensors (names,
    /// dtypes, shapes, bytes) that no container, order, sharding,
    /// compression or metadata changes (spec/digest.md). One model stored in
    /// any two formats gives one id.
    Digest {
        /// The files, folders or URLs to hash.
        #[arg(required = true, value_parser = location())]
        inputs: Vec<tensorcast::Location>,
        /// Print JSON with each tensor's digest: {"input", "id", "tensors":
        /// [{"name", "kind", "shape", "nbytes", "digest"}]} (an array for
        /// several inputs).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        pytorch: PytorchArgs,
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
    /// Change a file's metadata without rewriting its tensors: GGUF
    /// key/values, safetensors `__metadata__`, tpack metadata. The tensor
    /// bytes are carried over unchanged (shared, not copied, on file systems
    /// with reflinks: XFS, btrfs); without -o the file is replaced
    /// atomically (tpack: a new commit in place). Deletes apply first, then
    /// sets in order.
    Edit {
        /// The file to edit.
        file: PathBuf,
        /// Write the edited file here instead of replacing FILE.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Replace OUTPUT if it exists.
        #[arg(long)]
        force: bool,
        /// KEY=VALUE: an existing key keeps its type (arrays as JSON, e.g.
        /// [1,2]); a new key is a string unless written KEY:TYPE=VALUE (u8…u64,
        /// i8…i64, f32, f64, bool, str, [TYPE]). VALUE @PATH reads the value
        /// from a file (a chat template); @@ starts a literal @.
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set, required_unless_present = "delete")]
        set: Vec<tensorcast::MetaEdit>,
        /// Remove KEY.
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
    },
    /// Merge models with mergekit's methods: CONFIG.yml (mergekit's YAML as
    /// it is), or the models themselves with --method. Models are Hugging
    /// Face folders, files of any format (GGUF included, matched by Hugging
    /// Face names) or URLs. A folder -o gets the merged weights with the base
    /// model's config and tokenizer; a file -o the merged tensors in the
    /// format its extension names.
    Merge(Box<MergeArgs>),
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
pub(crate) enum ReportAction {
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
pub(crate) struct ConvertArgs {
    /// The file to read (a `.safetensors.index.json` opens a sharded
    /// checkpoint; a model folder or a URL is read as such).
    #[arg(required_unless_present = "batch", value_parser = location())]
    pub(crate) input: Option<tensorcast::Location>,
    /// The file to write (or folder, or URL).
    #[arg(short, long, required_unless_present = "batch", value_parser = location())]
    pub(crate) output: Option<tensorcast::Location>,
    /// Convert many files, in parallel (-j): a directory (walked; shards
    /// covered by an index or a first split part are not converted twice),
    /// a file listing one input per line, or `-` for such a list on stdin.
    /// Outputs mirror the inputs' layout under --out-dir; outputs already
    /// complete and newer than their input are skipped. Prints one JSON
    /// line per file; exits 1 if any file failed.
    /// A URL prefix (`s3://bucket/models/`) is listed like a directory.
    #[arg(long, value_name = "DIR|URL|LIST|-", conflicts_with_all = ["input", "output"], requires_all = ["out_dir", "to"])]
    pub(crate) batch: Option<String>,
    /// Where --batch writes its outputs (a folder or a URL prefix).
    #[arg(long, value_name = "DIR|URL")]
    pub(crate) out_dir: Option<PathBuf>,
    /// Write --batch's JSON lines to FILE (or URL) instead of stdout.
    #[arg(long, value_name = "FILE|URL")]
    pub(crate) report: Option<PathBuf>,
    /// Run only share K of N of the batch (0 <= K < N), chosen by a stable
    /// hash of each input's relative path, so N processes started with
    /// 0/N .. N-1/N convert every file exactly once without talking to each
    /// other. `auto`: from a Kubernetes Indexed Job (JOB_COMPLETION_INDEX,
    /// JOB_COMPLETIONS) or a Slurm array (SLURM_ARRAY_TASK_ID,
    /// SLURM_ARRAY_TASK_COUNT).
    #[arg(long, value_name = "K/N|auto", requires = "batch")]
    pub(crate) shard: Option<String>,
    /// Output format (default: from the output's extension).
    #[arg(long, value_parser = parse_format)]
    pub(crate) to: Option<String>,
    /// Cast floating-point tensors to this dtype (f64, f32, f16, bf16,
    /// f8_e4m3, f8_e5m2, f8_e4m3fnuz, f8_e5m2fnuz, f8_e8m0); integer and
    /// bool tensors keep theirs.
    #[arg(long, value_parser = parse_cast_dtype)]
    pub(crate) dtype: Option<DType>,
    /// Replace OUTPUT if it exists.
    #[arg(long)]
    pub(crate) force: bool,
    /// Prove the conversion with content ids (spec/digest.md): the input's,
    /// the tensors written and the output read back. Fails (removing the
    /// output) when the output does not hold what was written, or when a
    /// conversion that asked for no change (no --dtype, --quantize,
    /// --include/--exclude/--rename, --densify or model view) changed the
    /// tensors. Batch reports gain digest_in, digest_written, digest_out;
    /// outputs already done are checked against their input too.
    #[arg(long)]
    pub(crate) digest: bool,
    /// Insist on keeping block-quantized tensors as raw blocks (refusing an
    /// output that cannot hold them). Without it GGUF and tpack outputs keep
    /// them anyway unless --dtype asks for floats; other outputs get them
    /// dequantized to f32 (or --dtype), bit-identical to gguf-py.
    #[arg(long)]
    pub(crate) keep_quantized: bool,
    /// Write a llama-quantize file type (GGUF or tpack output): Q4_K_M,
    /// Q5_K_M, Q6_K, Q8_0, Q3_K_S/M/L, Q4_K_S, Q5_K_S, Q2_K, Q4_0, Q4_1,
    /// Q5_0, Q5_1, IQ4_NL, IQ4_XS, TQ1_0, TQ2_0, MXFP4_MOE, F16, BF16, F32.
    /// A model gets llama.cpp's per-tensor plan and its bytes; other files
    /// get the type's blocks on every float matrix.
    #[arg(long, value_name = "FTYPE", value_parser = parse_quant)]
    pub(crate) quantize: Option<tensorcast::FileType>,
    /// With --quantize: an importance matrix from llama.cpp's llama-imatrix
    /// (its GGUF or legacy .dat), used as llama-quantize's --imatrix is.
    #[arg(long, value_name = "FILE", value_parser = location(), requires = "quantize")]
    pub(crate) imatrix: Option<tensorcast::Location>,
    /// Write sparse tensors (COO, CSR) as the dense tensors they stand
    /// for, equal to torch's to_dense(). Without it they are kept sparse
    /// where the output holds them (tpack; CSR in .zt) and refused by name
    /// elsewhere.
    #[arg(long)]
    pub(crate) densify: bool,
    /// Split safetensors output into shards of at most SIZE (e.g. 5GB, 2GiB),
    /// with a Hugging Face index file.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub(crate) max_shard_size: Option<u64>,
    /// tpack output: zstd level (1-22; default 3), or `none` for raw
    /// chunks. Floats use byte planes + zstd; chunks that would not
    /// shrink are stored raw.
    #[arg(long, value_name = "LEVEL", num_args = 0..=1, default_missing_value = "3", value_parser = parse_level)]
    pub(crate) compress: Option<i32>,
    /// Keep only tensors whose names match GLOB (`*`, `?`); repeatable.
    #[arg(long, value_name = "GLOB")]
    pub(crate) include: Vec<String>,
    /// Drop tensors whose names match GLOB; repeatable.
    #[arg(long, value_name = "GLOB")]
    pub(crate) exclude: Vec<String>,
    /// Rename tensors whose names start with FROM to start with TO, or with
    /// `re:PATTERN=TO` replace a regex match (`$1` for groups); repeatable,
    /// first matching rule wins.
    #[arg(long, value_name = "FROM=TO", value_parser = tensorcast::Selection::parse_rename)]
    pub(crate) rename: Vec<(String, String)>,
    /// `model` (default): a GGUF into a Hugging Face folder and a folder into
    /// GGUF convert the model (names, transforms, config, tokenizer). `keep`:
    /// the container only, tensor names and metadata as they are.
    #[arg(long, value_name = "model|keep", default_value = "model", value_parser = ["model", "keep"])]
    pub(crate) names: String,
    /// Hugging Face folder -> GGUF: the llama.cpp pre-tokenizer name for a
    /// BPE vocabulary llama.cpp's table does not know (a known one is
    /// always detected).
    #[arg(long, value_name = "NAME")]
    pub(crate) tokenizer_pre: Option<String>,
    #[command(flatten)]
    pub(crate) pytorch: PytorchArgs,
}

/// Options for PyTorch checkpoints (.pt/.pth/.bin/.ckpt).
#[derive(clap::Args, Clone)]
pub(crate) struct PytorchArgs {
    /// Record data classes outside torch's weights-only allowlist (NumPy
    /// scalars, argparse.Namespace, classes of your own or a library's
    /// modules such as Lightning's hyper-parameters) as opaque metadata
    /// instead of refusing the file. Nothing is ever imported or called;
    /// functions and anything from the standard library, torch or NumPy stay
    /// refused.
    #[arg(long)]
    pub(crate) lenient: bool,
    /// Keep only the sub-tree at this dotted path (e.g. `state_dict`).
    #[arg(long, value_name = "PATH")]
    pub(crate) select: Option<String>,
    /// Remove this prefix from tensor names that start with it (e.g. `model.`).
    #[arg(long, value_name = "PREFIX")]
    pub(crate) strip_prefix: Option<String>,
    /// Write tensors that share their bytes once; metadata maps each dropped
    /// name to the kept one (as Hugging Face's convert.py does).
    #[arg(long)]
    pub(crate) dedupe_tied: bool,
}

impl PytorchArgs {
    pub(crate) fn is_set(&self) -> bool {
        self.lenient || self.select.is_some() || self.strip_prefix.is_some() || self.dedupe_tied
    }

    /// Reading options with these flags: PyTorch options are set only when a
    /// flag was given, so the library refuses them for other formats.
    pub(crate) fn options(self, limits: &tensorcast::Limits) -> Options {
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
    pub(crate) fn options(self, limits: &tensorcast::Limits) -> tensorcast::ConvertOptions {
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
            imatrix: self.imatrix,
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
            digest: self.digest,
        }
    }
}

pub(crate) fn parse_level(s: &str) -> Result<i32, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(0);
    }
    match s.parse::<i32>() {
        Ok(l) if (0..=22).contains(&l) => Ok(l),
        _ => Err(format!("--compress takes a zstd level 1-22 or 'none', not '{s}'")),
    }
}

/// A `--to` value: a format the build can write.
pub(crate) fn parse_format(s: &str) -> Result<String, String> {
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

pub(crate) fn parse_cast_dtype(s: &str) -> Result<DType, String> {
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

pub(crate) fn parse_quant(s: &str) -> Result<tensorcast::FileType, String> {
    tensorcast::FileType::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = tensorcast::quant::file_type_names().collect();
        format!(
            "--quantize takes a llama-quantize type ({}), not '{s}'",
            names.join(", ")
        )
    })
}

/// The most threads `-j` may ask for: a bound on what a flag can make the
/// process start (a typo of `-j 100000` would otherwise start them all).
pub(crate) const MAX_JOBS: i64 = 256;

/// A path or URL as typed: a URL when it is `scheme://…` with a store
/// scheme, a local path otherwise (any bytes the OS allows).
pub(crate) fn location() -> impl TypedValueParser<Value = tensorcast::Location> {
    clap::builder::OsStringValueParser::new().map(|s| match s.to_str() {
        Some(text) => tensorcast::Location::parse(text),
        None => tensorcast::Location::Local(PathBuf::from(s)),
    })
}

pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    tensorcast::parse_size(s)
}

/// A content id (`tc1:` and 64 hex digits).
fn content_id(text: &str) -> Result<tensorcast::ContentId, String> {
    text.parse().map_err(|e: tensorcast::Error| e.to_string())
}

/// `KEY[:TYPE]=VALUE` (VALUE `@PATH`: the file's text) as an edit.
fn parse_set(text: &str) -> Result<tensorcast::MetaEdit, String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))?;
    let (key, ty) = match key.rsplit_once(':') {
        Some((k, t)) if is_type_name(t) => (k, Some(t.to_string())),
        _ => (key, None),
    };
    if key.is_empty() {
        return Err(format!("`{text}` names no key"));
    }
    let text = if let Some(rest) = value.strip_prefix("@@") {
        format!("@{rest}")
    } else if let Some(path) = value.strip_prefix('@') {
        value_file(path)?
    } else {
        value.to_string()
    };
    Ok(tensorcast::MetaEdit::Set {
        key: key.to_string(),
        ty,
        text,
    })
}

/// The text of a `--set KEY=@PATH` value: a regular file (a FIFO or a
/// device such as /dev/zero would block or never end), at most 100 MB (a
/// GGUF header's own limit), UTF-8.
fn value_file(path: &str) -> Result<String, String> {
    use std::io::Read;
    const MAX: u64 = 100_000_000;
    let meta = std::fs::metadata(path).map_err(|e| format!("reading {path}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{path} is not a regular file"));
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX + 1).read_to_string(&mut text))
        .map_err(|e| format!("reading {path}: {e}"))?;
    if text.len() as u64 > MAX {
        return Err(format!("{path} is over {MAX} bytes"));
    }
    Ok(text)
}

fn is_type_name(t: &str) -> bool {
    let scalar = |t: &str| {
        matches!(
            t,
            "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "u64" | "i64" | "f32" | "f64" | "bool" | "str"
        )
    };
    scalar(t)
        || t.strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .is_some_and(scalar)
}

/// `tensorcast merge`.
#[derive(clap::Args)]
pub(crate) struct MergeArgs {
    /// mergekit's YAML configuration, or (with --method) the models to merge.
    #[arg(required = true, value_name = "CONFIG.yml | MODEL")]
    pub(crate) inputs: Vec<String>,
    /// The merged model: a folder, or a file of any writable format.
    #[arg(short, long)]
    pub(crate) output: PathBuf,
    /// The method (linear, task_arithmetic, ties, dare_linear, dare_ties,
    /// breadcrumbs, breadcrumbs_ties, slerp, nearswap, passthrough), with
    /// the models given instead of a configuration.
    #[arg(long)]
    pub(crate) method: Option<String>,
    /// Weights of the models, in order (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub(crate) weight: Vec<f64>,
    /// The base model the task vectors are taken from.
    #[arg(long)]
    pub(crate) base: Option<String>,
    /// Fraction of each task vector kept (ties, dare, breadcrumbs).
    #[arg(long)]
    pub(crate) density: Option<f64>,
    /// Interpolation factor (slerp, nearswap).
    #[arg(long)]
    pub(crate) t: Option<f64>,
    /// The dtype to merge in (float32, bfloat16, float16).
    #[arg(long)]
    pub(crate) dtype: Option<String>,
    /// Seed of DARE's random masks: the same seed gives the same bytes.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Output format when the path does not say (hf for a model folder).
    #[arg(long)]
    pub(crate) to: Option<String>,
    /// Replace an existing output.
    #[arg(long)]
    pub(crate) force: bool,
    /// A GGUF output: write this llama-quantize file type (Q4_K_M, Q8_0,
    /// ...; see `convert --help`), with llama.cpp's per-tensor plan, so the
    /// merged model is quantized in the same pass.
    #[arg(long, value_name = "FTYPE", value_parser = parse_quant)]
    pub(crate) quantize: Option<tensorcast::FileType>,
    /// With --quantize: an importance matrix from llama.cpp's llama-imatrix.
    #[arg(long, value_name = "FILE", value_parser = location(), requires = "quantize")]
    pub(crate) imatrix: Option<tensorcast::Location>,
}
