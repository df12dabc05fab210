//! `merge`: the models a mergekit configuration names, opened from anywhere
//! by their Hugging Face names, merged tensor by tensor into any writer or a
//! model folder.

use crate::convert::{occupied, quantized_to, select_adapt_write};
use crate::merge_vocab::MadeTokenizer;
use crate::{ConvertOptions, Report};
use std::path::{Path, PathBuf};
use tensorcast_core::{
    code, Array, CommitGroup, DType, Error, FileTarget, Format, Location, MemoryFiles, Result, Source, Value,
    WriteTarget,
};
use tensorcast_merge::ExpertFusion;
pub use tensorcast_merge::{MergeConfig, MergedSource, Method};

/// The largest merge configuration read (its text, in bytes).
pub const MAX_CONFIG_BYTES: usize = tensorcast_merge::MAX_CONFIG_TEXT;

/// The files of a model folder besides its weights: the model's own and the
/// tokenizer's (taken from `tokenizer_source` when the configuration names one).
const MODEL_FILES: &[&str] = &["config.json", "generation_config.json"];
const TOKENIZER_FILES: &[&str] = &[
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "added_tokens.json",
];

/// Opens the model `text` names (a folder, a file of any format, a URL)
/// with Hugging Face tensor names: a model folder's weights as they are; a
/// file a folder format views as a model (GGUF) through that view, so a GGUF
/// fine-tune merges with its Hugging Face base; quantized blocks dequantized
/// exactly.
pub fn open_model(text: &str, opts: &ConvertOptions) -> Result<Box<dyn Source>> {
    open_model_and_tokens(text, opts).map(|(source, _)| source)
}

/// [`open_model`], and for a file a folder format views as a model, the
/// tokens it holds (`tokenizer.ggml.tokens`: a token's id is its place), as
/// the view's own metadata does not carry them.
fn open_model_and_tokens(
    text: &str,
    opts: &ConvertOptions,
) -> Result<(Box<dyn Source>, Option<tensorcast_merge::TokenIds>)> {
    let location = Location::parse(text);
    let registry = &opts.registry;
    let mut tokens = None;
    let mut source = match registry.folder_format(&location)? {
        Some(_) => registry.open(&location, &opts.options)?,
        None => {
            let source = registry.open(&location, &opts.options)?;
            if let Some(Value::Array(Array::Str(list))) = source.metadata().get("tokenizer.ggml.tokens") {
                tokens = Some(
                    list.iter()
                        .enumerate()
                        .map(|(i, t)| (t.to_string(), i as u64))
                        .collect(),
                );
            }
            let viewer = registry.get(source.format()).and_then(|own| {
                registry
                    .formats()
                    .find(|f| f.folder_entry().is_some() && f.folder_converts_to(own))
            });
            match viewer {
                Some(folder) => folder.view_for_writing(source)?,
                None => source,
            }
        }
    };
    if source
        .tensors()
        .iter()
        .any(|t| matches!(t.dtype, DType::Quant(_)))
    {
        source = Box::new(tensorcast_quant::Dequantize::new(source)?);
    }
    Ok((source, tokens))
}

/// Merges the models of `config` into `output`: a folder (when the output
/// format is a folder format, or `opts.to` says so) gets the merged weights
/// and the base model's config and tokenizer files, committed together; a
/// file gets the merged tensors in the format its extension names. The
/// method, and the configuration as text, are recorded in the metadata.
/// `seed` keys the random masks of DARE.
pub fn merge(
    config: &MergeConfig,
    output: impl Into<Location>,
    opts: &ConvertOptions,
    seed: u64,
) -> Result<Report> {
    let output = output.into();
    if let Some(t) = config
        .chat_template
        .as_deref()
        .filter(|t| !t.contains('{') && *t != "auto")
    {
        return Err(Error::unsupported(
            code::MERGE_CONFIG,
            format!("chat_template '{t}': named templates are not built in; give the template's text"),
        ));
    }
    let models = config.inputs();
    let (inputs, tokens): (Vec<_>, Vec<_>) = models
        .iter()
        .map(|m| open_model_and_tokens(m, opts))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    let layers = local_folder(&models[0])
        .and_then(|d| read_json(&d.join("config.json")))
        .and_then(|c| c.get("num_hidden_layers")?.as_u64());
    let vocab = crate::merge_vocab::plan(config, &models, &tokens, opts.options.limits.max_header_bytes)?;
    let (vocab, made_tokenizer) = match vocab {
        Some(v) => (Some(v.plan), v.tokenizer_json),
        None => (None, None),
    };
    let fusion = architecture(&models, &inputs).and_then(|a| ExpertFusion::for_architecture(&a));
    let mut merged = MergedSource::with_vocabulary(config.clone(), inputs, layers, seed, vocab)?;
    if let Some(fusion) = fusion {
        merged = merged.fuse_experts(&fusion)?;
    }
    let merged = Box::new(merged);
    let format = opts
        .registry
        .output_format(output.as_path(), opts.to.as_deref())?;
    if let Some(weights) = format.folder_target() {
        return write_folder(config, merged, &output, weights, made_tokenizer.as_ref(), opts);
    }
    // A format some folder format converts its models into (GGUF): the
    // merged weights become that model, with the base's config and the
    // tokenizer's files, so the output loads in that format's clients.
    let folder = opts
        .registry
        .formats()
        .find(|f| f.folder_entry().is_some() && f.folder_converts_to(format));
    if let Some(folder) = folder {
        return write_model(
            config,
            merged,
            &output,
            folder,
            format,
            made_tokenizer.as_ref(),
            opts,
        );
    }
    if !opts.force && occupied(&output) {
        return Err(Error::usage(
            code::OUTPUT_EXISTS,
            format!("{output} already exists"),
        ));
    }
    select_adapt_write(merged, format, crate::remote::target(&output, format)?, opts)
}

/// The models' Hugging Face architecture (config.json's
/// `architectures[0]`): the first model folder's, or a GGUF model's table's
/// class; it decides how mergekit would read their experts.
fn architecture(models: &[String], inputs: &[Box<dyn Source>]) -> Option<String> {
    let from_folder = models
        .iter()
        .filter_map(|m| read_json(&local_folder(m)?.join("config.json")))
        .find_map(|c| Some(c.get("architectures")?.get(0)?.as_str()?.to_string()));
    #[cfg(feature = "model")]
    let from_gguf = || {
        inputs
            .iter()
            .filter(|s| s.metadata().get("general.architecture").is_some())
            .find_map(|s| Some(tensorcast_model::arch_of(s.metadata()).ok()?.hf_class.to_string()))
    };
    #[cfg(not(feature = "model"))]
    let from_gguf = || {
        let _ = inputs;
        None
    };
    from_folder.or_else(from_gguf)
}

/// The base model's folder: where a model output's config comes from.
fn base_folder(config: &MergeConfig, what: &str) -> Result<PathBuf> {
    let models = config.inputs();
    local_folder(&models[0]).ok_or_else(|| {
        Error::unsupported(
            code::MODEL_FOLDER,
            format!(
                "a merged {what} takes its config.json from the base model, and {} is not a model folder: name a file output (e.g. model.safetensors)",
                models[0]
            ),
        )
    })
}

/// A merged model's side file: its name in the folder and the file it is
/// made from.
struct Side {
    name: &'static str,
    from: PathBuf,
}

/// What a merged folder's side files take from the merge (its dtype, the
/// layers slices made, the vocabulary's rows), kept once the merged source
/// is handed to the writer.
struct Facts {
    dtype: Option<DType>,
    origins: Option<Vec<u64>>,
    vocab_rows: Option<u64>,
    /// The chat template the configuration sets (`chat_template`: its
    /// text, or with `auto` the one most of the models have).
    template: Option<String>,
}

impl Facts {
    fn of(merged: &MergedSource, config: &MergeConfig, max_bytes: u64) -> Facts {
        Facts {
            dtype: merged.tensors().first().map(|t| t.dtype),
            origins: merged.layer_origins().map(<[u64]>::to_vec),
            vocab_rows: merged.vocab_rows(),
            template: match config.chat_template.as_deref() {
                Some("auto") => plurality_template(&config.inputs(), max_bytes),
                other => other.map(str::to_string),
            },
        }
    }
}

/// mergekit's `chat_template: auto`: the template most of the models'
/// tokenizers have (stripped; the first of them in configuration order
/// where counts tie), or none when none has one. A folder's template is
/// its chat_template.jinja (transformers 5 writes it there), else its
/// tokenizer_config.json's `chat_template` (a text, or the `default` of a
/// list of named templates).
fn plurality_template(models: &[String], max_bytes: u64) -> Option<String> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for folder in models.iter().filter_map(|m| local_folder(m)) {
        let jinja = folder.join("chat_template.jinja");
        let template = match crate::merge_vocab::side_file(&jinja, max_bytes) {
            Ok(true) => std::fs::read_to_string(&jinja).ok(),
            _ => crate::merge_vocab::side_file(&folder.join("tokenizer_config.json"), max_bytes)
                .ok()
                .filter(|&there| there)
                .and_then(|_| read_json(&folder.join("tokenizer_config.json")))
                .and_then(|c| match c.get("chat_template")? {
                    serde_json::Value::String(t) => Some(t.clone()),
                    serde_json::Value::Array(named) => named
                        .iter()
                        .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                        .and_then(|t| Some(t.get("template")?.as_str()?.to_string())),
                    _ => None,
                }),
        };
        let Some(template) = template.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()) else {
            continue;
        };
        match counts.iter_mut().find(|(t, _)| *t == template) {
            Some((_, n)) => *n += 1,
            None => counts.push((template, 1)),
        }
    }
    let best = counts.iter().map(|(_, n)| *n).max()?;
    counts.into_iter().find(|(_, n)| *n == best).map(|(t, _)| t)
}

/// The side files of the merged model: the base's config files and the
/// tokenizer source's tokenizer files, each checked to be a regular file
/// within `max_bytes`; read only when written.
fn side_files(config: &MergeConfig, max_bytes: u64, what: &str) -> Result<Vec<Side>> {
    let base = base_folder(config, what)?;
    // A union reaches here only when every vocabulary is the base's.
    let tokenizer = match config.vocabulary_source() {
        None | Some("base") | Some("union") => base.clone(),
        Some(other) => local_folder(other).ok_or_else(|| {
            Error::unsupported(
                code::MODEL_FOLDER,
                format!("tokenizer_source {other} is not a model folder"),
            )
        })?,
    };
    let sides = MODEL_FILES
        .iter()
        .map(|n| (base.join(n), *n))
        .chain(TOKENIZER_FILES.iter().map(|n| (tokenizer.join(n), *n)));
    let mut files = Vec::new();
    for (from, name) in sides {
        if crate::merge_vocab::side_file(&from, max_bytes)? {
            files.push(Side { name, from });
        }
    }
    Ok(files)
}

/// Writes side file `side` through `out`: config.json and
/// tokenizer_config.json edited (small JSON files), tokenizer.json the
/// made one when tokens were added, any other file copied a piece at a time.
fn write_side(
    side: &Side,
    facts: &Facts,
    made: Option<&MadeTokenizer>,
    out: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let read = || std::fs::read(&side.from).map_err(|e| Error::io(&side.from, e));
    match (side.name, made) {
        ("config.json", _) => out(&with_dtype(
            &read()?,
            facts.dtype,
            facts.origins.as_deref(),
            facts.vocab_rows,
        )),
        ("tokenizer_config.json", _) => out(&with_template(&read()?, facts.template.as_deref())),
        // transformers 5 takes a folder's chat_template.jinja over
        // tokenizer_config.json's: the configured template goes there too.
        ("chat_template.jinja", _) if facts.template.is_some() => {
            out(facts.template.as_deref().unwrap_or_default().as_bytes())
        }
        ("tokenizer.json", Some(made)) => made.write(out),
        _ => {
            let mut file = std::fs::File::open(&side.from).map_err(|e| Error::io(&side.from, e))?;
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = std::io::Read::read(&mut file, &mut buf).map_err(|e| Error::io(&side.from, e))?;
                if n == 0 {
                    return Ok(());
                }
                out(&buf[..n])?;
            }
        }
    }
}

/// The merged model in a format a folder format converts its models into:
/// the merged weights under their Hugging Face names stand in for the
/// folder's own, beside the base's side files (held in memory), and the
/// conversion runs as `convert FOLDER -o OUTPUT` would, `--quantize` included.
fn write_model(
    config: &MergeConfig,
    merged: Box<MergedSource>,
    output: &Location,
    folder: &dyn Format,
    format: &dyn Format,
    made_tokenizer: Option<&MadeTokenizer>,
    opts: &ConvertOptions,
) -> Result<Report> {
    let what = format!("{} model", format.name());
    let mut files = MemoryFiles::new();
    let facts = Facts::of(&merged, config, opts.options.limits.max_header_bytes);
    for side in side_files(config, opts.options.limits.max_header_bytes, &what)? {
        let mut bytes = Vec::new();
        write_side(&side, &facts, made_tokenizer, &mut |piece| {
            bytes.extend_from_slice(piece);
            Ok(())
        })?;
        files.insert(side.name, bytes);
    }
    let entry = folder.folder_entry().unwrap_or_default();
    let mut input = files.input(entry)?;
    // Named as if in a folder called as the output is (`merged.gguf` from
    // `merged/`): the model's name (general.name) comes from there.
    let stem = output.as_path().file_stem().unwrap_or_default();
    input.name = Path::new(stem).join(entry);
    let model = folder.open_as_model_for(
        input,
        format,
        &opts.options,
        opts.dtype,
        quantized_to(opts),
        Some(merged),
    )?;
    if !opts.force && occupied(output) {
        return Err(Error::usage(
            code::OUTPUT_EXISTS,
            format!("{output} already exists"),
        ));
    }
    // The model view casts already; the quantizer still follows it.
    let opts = ConvertOptions {
        dtype: None,
        ..opts.clone()
    };
    select_adapt_write(model, format, crate::remote::target(output, format)?, &opts)
}

/// The merged model as a folder: its weights (`weights`, in the format
/// that file name says) and side files, committed together, config.json last.
fn write_folder(
    config: &MergeConfig,
    merged: Box<MergedSource>,
    output: &Location,
    weights: &str,
    made_tokenizer: Option<&MadeTokenizer>,
    opts: &ConvertOptions,
) -> Result<Report> {
    let Location::Local(dir) = output else {
        return Err(Error::unsupported(
            code::MODEL_FOLDER,
            format!("{output}: a merged model folder is written on this machine; name a local folder"),
        ));
    };
    let sides = side_files(config, opts.options.limits.max_header_bytes, "model folder")?;
    let facts = Facts::of(&merged, config, opts.options.limits.max_header_bytes);
    for name in [weights, "config.json"] {
        if !opts.force && occupied(dir.join(name)) {
            return Err(Error::usage(
                code::OUTPUT_EXISTS,
                format!("{} already exists", dir.join(name).display()),
            ));
        }
    }
    let created = !occupied(dir);
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let group = CommitGroup::new();
    let result = (|| {
        let target = dir.join(weights);
        let file_format = opts.registry.output_format(&target, None)?;
        let report = select_adapt_write(
            merged,
            file_format,
            Box::new(FileTarget::grouped(&target, &group)),
            opts,
        )?;
        for side in &sides {
            let mut file = FileTarget::grouped(dir.join(side.name), &group);
            write_side(side, &facts, made_tokenizer, &mut |piece| file.write_all(piece))?;
            Box::new(file).commit()?;
        }
        group.commit(&["config.json"])?;
        Ok(report)
    })();
    if result.is_err() && created {
        let _ = std::fs::remove_dir(dir);
    }
    result
}

/// The local folder `text` names, if it is one.
pub(crate) fn local_folder(text: &str) -> Option<PathBuf> {
    match Location::parse(text) {
        Location::Local(p) if p.is_dir() => Some(p),
        _ => None,
    }
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// config.json with its dtype key (`dtype`, or transformers 4's
/// `torch_dtype`) saying the merged weights' dtype, and, when slices
/// renumbered the layers, the layer count they made (as mergekit writes
/// it) and the per-layer settings (`layer_types`, `no_rope_layers`) taken
/// from the layers each merged layer was made from (mergekit leaves them
/// as they were, which transformers refuses for Qwen3 or Gemma 3:
/// "num_hidden_layers must be equal to the number of layer_types").
fn with_dtype(bytes: &[u8], dtype: Option<DType>, origins: Option<&[u64]>, vocab: Option<u64>) -> Vec<u8> {
    let name = match dtype {
        Some(DType::F32) => Some("float32"),
        Some(DType::BF16) => Some("bfloat16"),
        Some(DType::F16) => Some("float16"),
        _ => None,
    };
    if name.is_none() && origins.is_none() && vocab.is_none() {
        return bytes.to_vec();
    }
    let Ok(serde_json::Value::Object(mut map)) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return bytes.to_vec();
    };
    if let Some(name) = name {
        for key in ["dtype", "torch_dtype"] {
            if map.contains_key(key) {
                map.insert(key.to_string(), name.into());
            }
        }
    }
    if let Some(origins) = origins {
        for key in ["layer_types", "no_rope_layers"] {
            if let Some(serde_json::Value::Array(per_layer)) = map.get(key) {
                let remapped: Option<Vec<serde_json::Value>> = origins
                    .iter()
                    .map(|&l| per_layer.get(l as usize).cloned())
                    .collect();
                if let Some(remapped) = remapped {
                    map.insert(key.to_string(), remapped.into());
                }
            }
        }
        map.insert("num_hidden_layers".to_string(), origins.len().into());
    }
    // The rows of the tokenizer source's vocabulary (mergekit's
    // _update_config_vocab): the text model's, where only it says.
    if let Some(rows) = vocab {
        let top = map.contains_key("vocab_size");
        match map.get_mut("text_config") {
            Some(serde_json::Value::Object(text)) if !top => {
                text.insert("vocab_size".to_string(), rows.into());
            }
            _ => {
                map.insert("vocab_size".to_string(), rows.into());
            }
        }
    }
    serde_json::to_vec_pretty(&map).unwrap_or_else(|_| bytes.to_vec())
}

/// tokenizer_config.json with the configuration's chat template, if any.
fn with_template(bytes: &[u8], template: Option<&str>) -> Vec<u8> {
    let Some(template) = template else {
        return bytes.to_vec();
    };
    let Ok(serde_json::Value::Object(mut map)) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return bytes.to_vec();
    };
    map.insert("chat_template".to_string(), template.into());
    serde_json::to_vec_pretty(&map).unwrap_or_else(|_| bytes.to_vec())
}
