//! The conversion pipeline: open → adapters → sink.

use crate::Registry;
use tensorcast_core::cast::CastSource;
use tensorcast_core::code;
use tensorcast_core::{
    convert, CommitGroup, DType, Error, FileTarget, Format, Input, Location, Options, Result, Sink, Source,
    WriteTarget,
};

/// What a conversion should do besides changing the container.
#[derive(Clone, Debug, Default)]
pub struct ConvertOptions {
    /// Output format by name; `None` takes it from the output's extension.
    pub to: Option<String>,
    /// Cast floating-point tensors to this dtype (integers and bools keep theirs).
    pub dtype: Option<DType>,
    /// Replace an existing output.
    pub force: bool,
    /// Keep block-quantized tensors as raw blocks, and refuse a target that
    /// cannot hold them. Without it blocks are kept where the target holds
    /// them (GGUF, tpack: lossless and several times smaller) unless `dtype`
    /// asks for a float type, and dequantized to F32 (then cast) otherwise.
    pub keep_quantized: bool,
    /// Write this `llama-quantize` file type (Q4_K_M, Q8_0, IQ4_XS, F16 …):
    /// a model gets llama.cpp's per-tensor plan, other files the type's
    /// blocks on every float matrix (the target must hold blocks).
    pub quantize: Option<tensorcast_quant::FileType>,
    /// An importance matrix for `quantize` (llama.cpp's imatrix GGUF or
    /// legacy `.dat`), used as llama-quantize's `--imatrix` uses it.
    pub imatrix: Option<Location>,
    /// Limits and each format's own reading and writing options.
    pub options: Options,
    /// Which tensors to write, under which names.
    pub select: crate::Selection,
    /// Called as the conversion goes (progress bars, logs).
    pub progress: Option<crate::ProgressHook>,
    /// The formats to choose from.
    pub registry: Registry,
    /// Write sparse tensors as the dense tensors they stand for (torch's
    /// `to_dense()`); without it a target that cannot hold one is refused.
    pub densify: bool,
    /// Convert the container only: no model-aware view (a GGUF into a
    /// Hugging Face folder keeps GGUF names and metadata in its
    /// model.safetensors; a folder's weights file converts as it is).
    pub keep_names: bool,
    /// Prove the conversion (spec/digest.md §5): the content ids of the
    /// input, of the tensors handed to the writer and of the output read
    /// back go into [`Report::digests`]; the conversion fails, and its
    /// output is removed, when the output does not hold what was written, or
    /// when a conversion that asked for no change (no cast, quantization,
    /// selection, densifying or model view) changed the tensors.
    pub digest: bool,
}

/// The content ids of one conversion (spec/digest.md §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digests {
    /// The input as read (`digest INPUT`).
    pub input: crate::ContentId,
    /// The tensors handed to the writer.
    pub written: crate::ContentId,
    /// The output read back (`digest OUTPUT`).
    pub output: crate::ContentId,
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
    /// With [`ConvertOptions::digest`]: the content ids.
    pub digests: Option<Digests>,
    /// With [`ConvertOptions::digest`]: the id of what the writer was
    /// handed, before the output is read back.
    written: Option<crate::ContentId>,
}

/// Applies the options as adapters: densify, dequantize (unless kept),
/// cast floats, quantize. Refuses impossible combinations before anything
/// is written.
pub fn adapt(source: Box<dyn Source>, target: &dyn Format, opts: &ConvertOptions) -> Result<Box<dyn Source>> {
    if let Some(e) = source
        .tensors()
        .iter()
        .find_map(|t| t.unreadable_error(source.format()))
    {
        return Err(e);
    }
    let source = densify(source, target, opts)?;
    let quantized = source
        .tensors()
        .iter()
        .any(|t| matches!(t.dtype, DType::Quant(_)));
    if opts.keep_quantized && quantized && !target.holds_blocks() {
        return Err(Error::usage(
            code::BLOCKS_NOT_HELD,
            format!(
                "{} cannot hold quantized blocks; write a format that can (gguf, tpack) or dequantize",
                target.name()
            ),
        ));
    }
    if opts.quantize.is_some() && !target.holds_blocks() {
        return Err(Error::usage(
            code::BLOCKS_NOT_HELD,
            format!(
                "quantizing writes ggml blocks, which {} cannot hold",
                target.name()
            ),
        ));
    }
    // Quantizing takes blocks as they are: a tensor already in its planned
    // type is copied, others are decoded by the quantizer itself.
    let keep =
        opts.keep_quantized || (target.holds_blocks() && (opts.dtype.is_none() || opts.quantize.is_some()));
    let mut source = source;
    if quantized && !keep {
        source = Box::new(tensorcast_quant::Dequantize::new(source)?);
    }
    // Into a format without blocks, the shapes the file records as its
    // tensors' original ones (the reader's format knows where).
    if !target.holds_blocks() {
        if let Some(reader) = opts.registry.get(source.format()) {
            source = reader.restore_shapes(source)?;
        }
    }
    if let Some(dtype) = opts.dtype {
        source = Box::new(CastSource::floats_to(source, dtype)?);
    }
    if opts.imatrix.is_some() && opts.quantize.is_none() {
        return Err(Error::usage(
            code::BAD_OPTION,
            "an importance matrix is used only when quantizing (give a file type to quantize to)",
        ));
    }
    if let Some(ft) = opts.quantize {
        let imatrix = match &opts.imatrix {
            Some(at) => Some(std::sync::Arc::new(crate::imatrix::load_imatrix(
                at,
                &at.to_string(),
                &opts.options,
                &opts.registry,
            )?)),
            None => None,
        };
        source = Box::new(tensorcast_quant::Quantize::with_imatrix(source, ft, imatrix)?);
    }
    Ok(source)
}

/// Sparse tensors made dense when asked; otherwise refused unless the
/// target holds them as they are.
fn densify(source: Box<dyn Source>, target: &dyn Format, opts: &ConvertOptions) -> Result<Box<dyn Source>> {
    let mut sparse = source.tensors().iter().filter(|t| t.sparse.is_some()).peekable();
    if sparse.peek().is_none() {
        return Ok(source);
    }
    if opts.densify {
        let limits = opts.options.limits.clone();
        return Ok(Box::new(tensorcast_core::sparse::Densify::new(source, limits)?));
    }
    if let Some(t) = sparse.find(|t| !target.holds_sparse(t)) {
        return Err(Error::unsupported(code::SPARSE_NOT_HELD, format!(
            "tensor '{}' is {}, which {} cannot hold; its dense form (torch's to_dense()) can be written instead",
            t.name,
            t.sparse.as_ref().map_or_else(String::new, |s| s.describe()),
            target.name()
        )));
    }
    Ok(source)
}

/// Converts `input` into the local file `output`. The output appears only
/// once complete; on any error nothing is left at its path.
///
/// A folder (or a repository URL) in a folder format converts as the model
/// it holds, or with `keep_names` as the weights it holds; an output format
/// whose outputs are folders gets its target file inside `output`.
pub fn convert_file(
    input: impl Into<Location>,
    output: impl Into<Location>,
    opts: &ConvertOptions,
) -> Result<Report> {
    let (input, output) = (input.into(), output.into());
    if !opts.digest {
        return convert_located(input, &output, opts);
    }
    let digest_in = crate::digest(&*opts.registry.open(&input, &opts.options)?)?.id;
    let mut report = convert_located(input.clone(), &output, opts)?;
    let written = report
        .written
        .ok_or_else(|| Error::unsupported(code::INTERNAL, "the conversion recorded no content id"))?;
    let digests = Digests {
        input: digest_in,
        written,
        output: crate::digest(&*opts.registry.open(&output, &opts.options)?)?.id,
    };
    let format = opts
        .registry
        .output_format(output.as_path(), opts.to.as_deref())?;
    let job = crate::Job {
        input: input.clone(),
        output: output.clone(),
    };
    let asked = changes_on_purpose(&job, opts)?;
    let wrong = if digests.output != digests.written {
        Some(format!(
            "{output} does not hold the tensors written to it: content id {} read back, {} written",
            digests.output, digests.written
        ))
    } else if !asked && digests.written != digests.input {
        Some(format!(
            "converting {input} changed its tensors although no change was asked for \
             (content id {} in, {} out): quantized blocks dequantized for a format \
             that cannot hold them?",
            digests.input, digests.output
        ))
    } else {
        None
    };
    if let Some(text) = wrong {
        remove_output(&output, format);
        return Err(Error::unsupported(code::DIGEST_MISMATCH, text));
    }
    report.digests = Some(digests);
    Ok(report)
}

/// Whether converting `job` changes tensors because the options ask for it:
/// a cast, quantization, selection, densifying, or a model view (a model
/// folder in or out: names rewritten on purpose).
pub(crate) fn changes_on_purpose(job: &crate::Job, opts: &ConvertOptions) -> Result<bool> {
    if opts.dtype.is_some() || opts.quantize.is_some() || !opts.select.is_empty() || opts.densify {
        return Ok(true);
    }
    if opts.keep_names {
        return Ok(false);
    }
    let format = opts
        .registry
        .output_format(job.output.as_path(), opts.to.as_deref())?;
    Ok(format.folder_target().is_some() || opts.registry.folder_format(&job.input)?.is_some())
}

/// Removes an output that failed its proof, so no later run takes it for
/// finished work: the file, or a folder output's weights file.
fn remove_output(output: &Location, format: &dyn Format) {
    let Location::Local(path) = output else {
        return;
    };
    let file = match format.folder_target() {
        Some(name) => path.join(name),
        None => path.clone(),
    };
    let _ = std::fs::remove_file(file);
}

/// [`convert_file`] without the proof.
fn convert_located(input: Location, output: &Location, opts: &ConvertOptions) -> Result<Report> {
    let output = &output;
    let format = opts
        .registry
        .output_format(output.as_path(), opts.to.as_deref())?;
    if let Some(folder) = opts.registry.folder_format(&input)? {
        return convert_folder(&input, folder, output, format, opts);
    }
    let input = opts.registry.input(&input, &opts.options.limits)?;
    let Some(target_name) = format.folder_target() else {
        refuse_occupied(output, opts)?;
        return convert_input(input, crate::remote::target(output, format)?, format.name(), opts);
    };
    // A folder output whose name ends like another format's file is a
    // mistake (`-o model.safetensors` for a folder): refuse it before
    // creating a folder called that.
    if let Some(other) = opts.registry.for_path(output.as_path()) {
        return Err(Error::usage(
            code::BAD_OPTION,
            format!(
                "{output} names a {} file, but a {} output is a folder: name a folder",
                other.name(),
                format.name()
            ),
        ));
    }
    let target = output.join(target_name);
    if opts.keep_names {
        // The container into the folder, names and metadata as they are, in
        // the format the target file's name says.
        let entry = format.folder_entry();
        let format = opts.registry.output_format(target.as_path(), None)?;
        refuse_occupied(&target, opts)?;
        let group = CommitGroup::new();
        let target = folder_file(&target, format, &group)?;
        return into_folder(output, group, entry, || {
            convert_input(input, target, format.name(), opts)
        });
    }
    if let Some(entry) = format.folder_entry() {
        if !opts.force && occupied(output.join(entry)) {
            return Err(Error::usage(
                code::OUTPUT_EXISTS,
                format!("{output} already holds a model"),
            ));
        }
    }
    // Any file the conversion would write (the weights, their shards and
    // index, the tokenizer files) is a user's file until --force says
    // otherwise: only the entry file used to be checked.
    if !opts.force {
        let ext = target_name.rsplit('.').next().unwrap_or_default();
        let stem = crate::parts::strip_extension(target_name, &[ext]).unwrap_or(target_name);
        let listed = format.folder_side_files().iter().copied().chain([target_name]);
        let mut taken = listed
            .filter(|name| occupied(output.join(name)))
            .map(str::to_string)
            .collect::<Vec<_>>();
        if let Location::Local(dir) = output {
            // Shards: NAME-0000K-of-0000N.EXT beside the target.
            if let Ok(entries) = std::fs::read_dir(dir) {
                taken.extend(entries.flatten().filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let shard = crate::parts::part_of(&name, &[ext]).is_some_and(|p| p.base == stem);
                    shard.then_some(name)
                }));
            }
        }
        if let Some(name) = taken.first() {
            return Err(Error::usage(
                code::OUTPUT_EXISTS,
                format!("{output} already holds {name}"),
            ));
        }
    }
    let group = CommitGroup::new();
    let target = folder_file(&target, format, &group)?;
    into_folder(output, group, format.folder_entry(), || {
        convert_input(input, target, format.name(), opts)
    })
}

/// The target of a file in a folder output: for a local folder, one of a
/// group that appears together (see [`into_folder`]).
fn folder_file(
    location: &Location,
    format: &dyn Format,
    group: &CommitGroup,
) -> Result<Box<dyn WriteTarget>> {
    match location {
        Location::Local(path) => Ok(Box::new(FileTarget::grouped(path, group))),
        url => crate::remote::target(url, format),
    }
}

fn refuse_occupied(location: &Location, opts: &ConvertOptions) -> Result<()> {
    if !opts.force && occupied(location) {
        return Err(Error::usage(
            code::OUTPUT_EXISTS,
            format!("{location} already exists"),
        ));
    }
    Ok(())
}

/// Whether anything is at `path`: a file, a directory, or a symlink, dangling
/// or not (`Path::exists` follows links and misses a dangling one, which the
/// rename would then replace).
pub fn occupied(location: impl Into<Location>) -> bool {
    crate::remote::exists(&location.into())
}

/// Runs `write` into the folder `dir`, creating it first, then renames the
/// files it wrote (fsynced under temporary names) into place together, the
/// folder's entry file (`entry`) last. If `write` fails nothing is renamed
/// (no file of the folder is replaced, no partial model appears) and a
/// folder created here is removed again.
fn into_folder(
    dir: &Location,
    group: CommitGroup,
    entry: Option<&str>,
    write: impl FnOnce() -> Result<Report>,
) -> Result<Report> {
    let Location::Local(dir) = dir else {
        // A prefix in a store exists once objects are written under it.
        return write();
    };
    let created = !occupied(dir);
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let result = write().and_then(|report| {
        group.commit(entry.as_slice())?;
        Ok(report)
    });
    if result.is_err() && created {
        // Only removes an empty folder: never what a failed run left in it.
        let _ = std::fs::remove_dir(dir);
    }
    result
}

/// A folder in the format `folder` in: with its names kept, the weights it
/// holds, as any other source; otherwise the model, as `format` holds models.
fn convert_folder(
    dir: &Location,
    folder: &dyn Format,
    output: &Location,
    format: &dyn Format,
    opts: &ConvertOptions,
) -> Result<Report> {
    let entry = dir.join(folder.folder_entry().unwrap_or_default());
    if opts.keep_names {
        let input = opts.registry.input(&entry, &opts.options.limits)?;
        let opts = ConvertOptions {
            keep_names: false,
            ..opts.clone()
        };
        refuse_occupied(output, &opts)?;
        let source = folder.open(input, &opts.options)?;
        let target = crate::remote::target(output, format)?;
        return select_adapt_write(source, format, target, &opts);
    }
    let input = opts.registry.input(&entry, &opts.options.limits)?;
    let source =
        folder.open_as_model_for(input, format, &opts.options, opts.dtype, quantized_to(opts), None)?;
    refuse_occupied(output, opts)?;
    // The model view casts already; the quantizer still follows it.
    let opts = ConvertOptions {
        dtype: None,
        ..opts.clone()
    };
    select_adapt_write(source, format, crate::remote::target(output, format)?, &opts)
}

/// The block type a `--quantize` file type starts its tensors from, which a
/// model view records as the file's type the way convert_hf_to_gguf does.
pub(crate) fn quantized_to(opts: &ConvertOptions) -> Option<tensorcast_core::QuantType> {
    match opts.quantize?.default_type() {
        DType::Quant(q) => Some(q),
        _ => None,
    }
}

/// Converts `input` (from anywhere: a file, memory, a store) into `target`
/// in the format called `format`.
pub fn convert_input(
    input: Input,
    target: Box<dyn WriteTarget>,
    format: &str,
    opts: &ConvertOptions,
) -> Result<Report> {
    let format = opts.registry.output_named(format)?;
    let name = input.name.clone();
    let source = format.view_for_writing(opts.registry.open_input(input, &opts.options)?)?;
    // The reader named its file in its own errors; a tensor it listed but
    // cannot read is refused here, after selection, and named the same way.
    select_adapt_write(source, format, target, opts).map_err(|e| match e.rule() {
        Some("unsupported-dtype") => e.in_file(&name),
        _ => e,
    })
}

/// Writes the tensors of `source` (from anywhere: another reader, arrays a
/// language binding holds) into the local file `output`, in the format its
/// extension (or `opts.to`) names, through the same selection, adapters and
/// atomic target as [`convert_file`].
pub fn write_source(
    source: Box<dyn Source>,
    output: impl Into<Location>,
    opts: &ConvertOptions,
) -> Result<Report> {
    let output = &output.into();
    let format = opts
        .registry
        .output_format(output.as_path(), opts.to.as_deref())?;
    if format.folder_target().is_some() {
        return Err(Error::unsupported(
            code::MODEL_FOLDER,
            "a Hugging Face model folder is written from a GGUF model, not from loose tensors",
        ));
    }
    refuse_occupied(output, opts)?;
    select_adapt_write(source, format, crate::remote::target(output, format)?, opts)
}

/// The rest of every conversion: selection, the adapters, the sink.
pub(crate) fn select_adapt_write(
    mut source: Box<dyn Source>,
    format: &dyn Format,
    target: Box<dyn WriteTarget>,
    opts: &ConvertOptions,
) -> Result<Report> {
    if !opts.select.is_empty() {
        source = Box::new(crate::Select::new(source, &opts.select)?);
    }
    let (tensors, bytes_in) = (
        source.tensors().len(),
        source.tensors().iter().map(|t| t.nbytes).sum(),
    );
    let source = adapt(source, format, opts)?;
    // The adapters' warnings too (the quantizer's fallbacks and requantized
    // tensors); each adapter forwards the reader's.
    let mut report = Report {
        tensors,
        bytes_in,
        warnings: source.warnings().to_vec(),
        ..Report::default()
    };
    let mut sink = format.create(target, &opts.options)?;
    if opts.digest {
        let tee = crate::digest::Tee::new(source);
        write(&tee, &mut *sink, opts)?;
        report.written = Some(tee.id()?);
    } else {
        write(&*source, &mut *sink, opts)?;
    }
    Ok(report)
}

fn write(source: &dyn Source, sink: &mut dyn Sink, opts: &ConvertOptions) -> Result<()> {
    match &opts.progress {
        Some(hook) => convert(source, &mut crate::ProgressSink::new(sink, hook.0.clone())),
        None => convert(source, sink),
    }
}
