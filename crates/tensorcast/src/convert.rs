//! The conversion pipeline: open → adapters → sink.

use crate::detect::Format;
use crate::open::{open, OpenOptions};
use std::path::Path;
use tensorcast_core::cast::CastSource;
use tensorcast_core::{convert, DType, Error, Limits, Result, Sink, Source};
use tensorcast_safetensors::SafetensorsWriter;

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
    /// Limits for the reader.
    pub limits: Limits,
}

/// A sink for `format` that will write `output`.
pub fn create_sink(output: &Path, format: Format, opts: &ConvertOptions) -> Result<Box<dyn Sink>> {
    match format {
        Format::Safetensors => Ok(Box::new(
            SafetensorsWriter::new(output).max_shard_bytes(opts.max_shard_bytes),
        )),
        other => Err(Error::Unsupported(format!(
            "writing {other} files is not implemented yet"
        ))),
    }
}

/// Converts `input` into `output`. The output appears only once complete;
/// on any error nothing is left at its path.
pub fn convert_file(input: &Path, output: &Path, opts: &ConvertOptions) -> Result<()> {
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
    let source = open(
        input,
        &OpenOptions {
            limits: opts.limits.clone(),
        },
    )?;
    let source: Box<dyn Source> = match opts.dtype {
        Some(dtype) => Box::new(CastSource::floats_to(source, dtype)?),
        None => source,
    };
    let mut sink = create_sink(output, format, opts)?;
    convert(&*source, &mut *sink)
}
