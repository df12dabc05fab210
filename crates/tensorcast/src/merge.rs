//! `merge`: the models a mergekit configuration names, opened from anywhere
//! by their Hugging Face names, merged tensor by tensor into any writer or a
//! model folder.

use crate::convert::{occupied, select_adapt_write};
use crate::{ConvertOptions, Report};
use std::path::{Path, PathBuf};
use tensorcast_core::{code, CommitGroup, DType, Error, FileTarget, Location, Result, Source, WriteTarget};
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
];

/// Opens the model `text` names (a folder, a file of any format, a URL)
/// with Hugging Face tensor names: a model folder's weights as they are; a
/// file a folder format views as a model (GGUF) through that view, so a GGUF
/// fine-tune merges with its Hugging Face base; quantized blocks dequantized
/// exactly.
pub fn open_model(text: &str, opts: &ConvertOptions) -> Result<Box<dyn Source>> {
    let location = Location::parse(text);
    let registry = &opts.registry;
    let mut source = match registry.folder_format(&location)? {
        Some(_) => registry.open(&location, &opts.options)?,
        None => {
            let source = registry.open(&location, &opts.options)?;
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
    Ok(source)
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
    if let Some(t) = config.chat_template.as_deref().filter(|t| !t.contains('{')) {
        return Err(Error::unsupported(
            code::MERGE_CONFIG,
            format!("chat_template '{t}': named templates are not built in; give the template's text"),
        ));
    }
    let models = config.inputs();
    let inputs = models
        .iter()
        .map(|m| open_model(m, opts))
        .collect::<Result<Vec<_>>>()?;
    let layers = local_folder(&models[0])
        .and_then(|d| read_json(&d.join("config.json")))
        .and_then(|c| c.get("num_hidden_layers")?.as_u64());
    let merged = Box::new(MergedSource::new(config.clone(), inputs, layers, seed)?);
    let format = opts
        .registry
        .output_format(output.as_path(), opts.to.as_deref())?;
    let Some(weights) = format.folder_target() else {
        if !opts.force && occupied(&output) {
            return Err(Error::usage(
                code::OUTPUT_EXISTS,
                format!("{output} already exists"),
            ));
        }
        return select_adapt_write(merged, format, crate::remote::target(&output, format)?, opts);
    };
    let Location::Local(dir) = &output else {
        return Err(Error::unsupported(
            code::MODEL_FOLDER,
            format!("{output}: a merged model folder is written on this machine; name a local folder"),
        ));
    };
    let base = local_folder(&models[0]).ok_or_else(|| {
        Error::unsupported(
            code::MODEL_FOLDER,
            format!(
                "a merged model folder takes its config.json from the base model, and {} is not a model folder: name a file output (e.g. model.safetensors)",
                models[0]
            ),
        )
    })?;
    let tokenizer = match config.tokenizer_source.as_deref() {
        None | Some("base") => base.clone(),
        Some("union") => {
            return Err(Error::unsupported(
                code::MERGE_CONFIG,
                "tokenizer_source: union (a merged vocabulary) is not built by tensorcast yet",
            ))
        }
        Some(other) => local_folder(other).ok_or_else(|| {
            Error::unsupported(
                code::MODEL_FOLDER,
                format!("tokenizer_source {other} is not a model folder"),
            )
        })?,
    };
    for name in [weights, "config.json"] {
        if !opts.force && occupied(dir.join(name)) {
            return Err(Error::usage(
                code::OUTPUT_EXISTS,
                format!("{} already exists", dir.join(name).display()),
            ));
        }
    }
    let out_dtype = merged.tensors().first().map(|t| t.dtype);
    let layers_out = merged.layers();
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
        let sides = MODEL_FILES
            .iter()
            .map(|n| (base.join(n), *n))
            .chain(TOKENIZER_FILES.iter().map(|n| (tokenizer.join(n), *n)));
        for (from, name) in sides {
            if !from.is_file() {
                continue;
            }
            let bytes = std::fs::read(&from).map_err(|e| Error::io(&from, e))?;
            let bytes = match name {
                "config.json" => with_dtype(&bytes, out_dtype, layers_out),
                "tokenizer_config.json" => with_template(&bytes, config.chat_template.as_deref()),
                _ => bytes,
            };
            let mut file = FileTarget::grouped(dir.join(name), &group);
            file.write_all(&bytes)?;
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
fn local_folder(text: &str) -> Option<PathBuf> {
    match Location::parse(text) {
        Location::Local(p) if p.is_dir() => Some(p),
        _ => None,
    }
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// config.json with its dtype key (`dtype`, or transformers 4's
/// `torch_dtype`) saying the merged weights' dtype, and the layer count
/// slices made, as mergekit writes it.
fn with_dtype(bytes: &[u8], dtype: Option<DType>, layers: Option<u64>) -> Vec<u8> {
    let name = match dtype {
        Some(DType::F32) => "float32",
        Some(DType::BF16) => "bfloat16",
        Some(DType::F16) => "float16",
        _ => return bytes.to_vec(),
    };
    let Ok(serde_json::Value::Object(mut map)) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return bytes.to_vec();
    };
    for key in ["dtype", "torch_dtype"] {
        if map.contains_key(key) {
            map.insert(key.to_string(), name.into());
        }
    }
    if let Some(n) = layers {
        map.insert("num_hidden_layers".to_string(), n.into());
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
