//! The conversion pipeline: open → adapters → sink.

use crate::detect::Format;
use crate::open::{open, OpenOptions};
use std::path::Path;
use tensorcast_core::cast::CastSource;
use tensorcast_core::{convert, DType, Error, QuantType, Result, Sink, Source};
use tensorcast_gguf::quant::{Dequantize, Quantize};
use tensorcast_gguf::GgufWriter;
use tensorcast_numpy::NpzWriter;
use tensorcast_safetensors::SafetensorsWriter;
use tensorcast_tpack::TpackWriter;

/// What a conversion should do besides changing the container.
#[derive(Clone, Debug, Default)]
pub struct ConvertOptions {
    /// Output format; `None` takes it from the output's extension.
    pub to: Option<Format>,
    /// Cast floating-point tensors to this dtype (integers and bools keep theirs).
    pub dtype: Option<DType>,
    /// Replace an existing output.
    pub force: bool,
    /// Split safetensors output into shards of at most this many bytes.
    pub max_shard_bytes: Option<u64>,
    /// Keep block-quantized tensors as raw blocks (the target must hold them);
    /// otherwise they are dequantized to F32 (then cast by `dtype`).
    pub keep_quantized: bool,
    /// Quantize float weight matrices to this legacy ggml type (GGUF output).
    pub quantize: Option<QuantType>,
    /// How to open the input (limits, PyTorch options).
    pub open: OpenOptions,
    /// tpack output: zstd level; `None` takes the default, `Some(0)` stores raw.
    pub compress: Option<i32>,
    /// Which tensors to write, under which names.
    pub select: crate::Selection,
    /// Called as the conversion goes (progress bars, logs).
    pub progress: Option<crate::ProgressHook>,
}

/// What a finished conversion reports.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Tensors written.
    pub tensors: usize,
    /// Bytes of tensor data read (before any cast or dequantization).
    pub bytes_in: u64,
    /// The reader's warnings (values not carried over exactly).
    pub warnings: Vec<String>,
}

/// A sink for `format` that will write `output`.
pub fn create_sink(output: &Path, format: Format, opts: &ConvertOptions) -> Result<Box<dyn Sink>> {
    match format {
        Format::Safetensors => Ok(Box::new(
            SafetensorsWriter::new(output).max_shard_bytes(opts.max_shard_bytes),
        )),
        Format::Gguf => Ok(Box::new(GgufWriter::new(output))),
        Format::Tpack => Ok(Box::new(
            TpackWriter::new(output).level(tpack_level(opts.compress)),
        )),
        Format::Npz => Ok(Box::new(NpzWriter::new(output))),
        Format::Pytorch => Err(Error::Unsupported(format!(
            "{}: tensorcast does not write pickle checkpoints (they can run code when loaded); write safetensors",
            output.display()
        ))),
        Format::Npy => Err(Error::Unsupported(format!(
            "{}: a .npy holds one array; write .npz (a zip of .npy arrays) instead",
            output.display()
        ))),
    }
}

/// The tpack writer's level for `--compress`: default when unset, raw for 0.
pub fn tpack_level(compress: Option<i32>) -> Option<i32> {
    match compress {
        None => Some(tensorcast_tpack::DEFAULT_LEVEL),
        Some(0) => None,
        Some(level) => Some(level),
    }
}

/// Formats that can hold raw ggml blocks.
fn holds_blocks(format: Format) -> bool {
    matches!(format, Format::Gguf | Format::Tpack)
}

/// Applies the options as adapters: dequantize (unless kept), cast floats,
/// quantize. Refuses impossible combinations before anything is written.
pub fn adapt(source: Box<dyn Source>, format: Format, opts: &ConvertOptions) -> Result<Box<dyn Source>> {
    let quantized = source
        .tensors()
        .iter()
        .any(|t| matches!(t.dtype, DType::Quant(_)));
    if opts.keep_quantized && quantized && !holds_blocks(format) {
        return Err(Error::Unsupported(format!(
            "--keep-quantized: {format} cannot hold quantized blocks; write GGUF or tpack, or drop the flag to dequantize"
        )));
    }
    if opts.quantize.is_some() && format != Format::Gguf {
        return Err(Error::Unsupported(format!(
            "--quantize writes ggml blocks, which {format} cannot hold: use a GGUF output"
        )));
    }
    let mut source = source;
    if quantized && !opts.keep_quantized {
        source = Box::new(Dequantize::new(source)?);
    }
    if let Some(dtype) = opts.dtype {
        source = Box::new(CastSource::floats_to(source, dtype)?);
    }
    if let Some(q) = opts.quantize {
        source = Box::new(Quantize::new(source, q)?);
    }
    Ok(source)
}

/// Converts `input` into `output`. The output appears only once complete;
/// on any error nothing is left at its path.
pub fn convert_file(input: &Path, output: &Path, opts: &ConvertOptions) -> Result<Report> {
    let format = match opts.to {
        Some(f) => f,
        None => Format::from_extension(output).ok_or_else(|| {
            Error::Unsupported(format!(
                "cannot tell the output format from '{}': name it with --to",
                output.display()
            ))
        })?,
    };
    if !opts.force && output.exists() {
        return Err(Error::Unsupported(format!(
            "{} already exists (use --force to replace it)",
            output.display()
        )));
    }
    let mut source = open(input, &opts.open)?;
    if !opts.select.is_empty() {
        source = Box::new(crate::Select::new(source, &opts.select)?);
    }
    let report = Report {
        tensors: source.tensors().len(),
        bytes_in: source.tensors().iter().map(|t| t.nbytes).sum(),
        warnings: source.warnings().to_vec(),
    };
    let source = adapt(source, format, opts)?;
    let mut sink = create_sink(output, format, opts)?;
    match &opts.progress {
        Some(hook) => convert(
            &*source,
            &mut crate::ProgressSink::new(&mut *sink, hook.0.clone()),
        )?,
        None => convert(&*source, &mut *sink)?,
    }
    Ok(report)
}
