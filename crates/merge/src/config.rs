//! mergekit's YAML configuration, read as it is, and its parameter settings
//! resolved per tensor as mergekit resolves them (`config.py`'s
//! `evaluate_setting`, `parameter_resolver.py`).

use crate::method::Method;
use crate::vocab::{TokenRule, TokenSource, TokenizerSection};
use serde_norway::Value as Yaml;
use tensorcast_core::{code, DType, Error, Result};

/// One scalar of a setting.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    /// A number (YAML int or float).
    Num(f64),
    /// `true` / `false`.
    Bool(bool),
    /// Text.
    Str(String),
}

/// A parameter's setting: a value, a gradient over the layers, or a list of
/// settings tried in order, each applying to tensors whose name contains
/// its `filter` (no filter, or `*`, applies to all).
#[derive(Clone, Debug, PartialEq)]
pub enum Setting {
    /// One value for every tensor.
    Scalar(Scalar),
    /// Values spread evenly over the layers, interpolated between.
    Gradient(Vec<Scalar>),
    /// `[{filter: TEXT, value: SETTING}, ...]`: the first matching wins.
    Filtered(Vec<(Option<String>, Setting)>),
}

/// A resolved parameter value.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolved {
    /// A number.
    Num(f64),
    /// A boolean.
    Bool(bool),
}

impl Setting {
    /// The value for tensor `name` at layer position `t` (0 first layer, 1
    /// last; 0 outside layers), or None when no filtered entry applies.
    /// Numbers interpolate along a gradient as mergekit does:
    /// `(1 - frac) * v[i0] + frac * v[i1]` in double precision.
    pub fn evaluate(&self, name: &str, t: f64) -> Option<Scalar> {
        match self {
            Setting::Scalar(s) => Some(s.clone()),
            Setting::Gradient(values) if values.is_empty() => None,
            Setting::Gradient(values) => {
                let nums: Option<Vec<f64>> = values
                    .iter()
                    .map(|v| match v {
                        Scalar::Num(x) => Some(*x),
                        _ => None,
                    })
                    .collect();
                let Some(nums) = nums else {
                    // Booleans and strings select, they do not interpolate.
                    let i = (t * (values.len() - 1) as f64) as usize;
                    return values.get(i).cloned();
                };
                let scaled = t * (nums.len() - 1) as f64;
                let i0 = scaled as usize;
                let i1 = (i0 + 1).min(nums.len() - 1);
                let frac = scaled - i0 as f64;
                Some(Scalar::Num((1.0 - frac) * nums[i0] + frac * nums[i1]))
            }
            Setting::Filtered(list) => list.iter().find_map(|(filter, setting)| match filter.as_deref() {
                None | Some("*") => setting.evaluate(name, t),
                Some(f) if !name.is_empty() && name.contains(f) => setting.evaluate(name, t),
                _ => None,
            }),
        }
    }
}

/// One input model and its own parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The model as written: a folder, a file of any format, a URL.
    pub model: String,
    /// Its parameters, highest precedence.
    pub parameters: Vec<(String, Setting)>,
}

/// One model's layers in a slice.
#[derive(Clone, Debug, PartialEq)]
pub struct SliceSource {
    /// The model.
    pub model: String,
    /// Its layers `start..end`.
    pub layers: (u64, u64),
    /// Its parameters in this slice, highest precedence.
    pub parameters: Vec<(String, Setting)>,
}

/// A run of output layers (mergekit's `slices`): layer `k` of the run
/// merges layer `start + k` of each source.
#[derive(Clone, Debug, PartialEq)]
pub struct Slice {
    /// The sources, each with the same number of layers.
    pub sources: Vec<SliceSource>,
    /// Parameters for this slice, below its sources' own.
    pub parameters: Vec<(String, Setting)>,
    /// The slice's own base model (one of its sources), over the global one.
    pub base_model: Option<String>,
}

/// A merge: mergekit's configuration.
#[derive(Clone, Debug)]
pub struct MergeConfig {
    /// The method.
    pub method: Method,
    /// The base model, for methods that take task vectors from it.
    pub base_model: Option<String>,
    /// The models, in order (the order sums are taken in).
    pub models: Vec<Entry>,
    /// Parameters for every model and tensor, below each model's own.
    pub parameters: Vec<(String, Setting)>,
    /// The parameters of mergekit's one module (`modules: {default:
    /// {parameters}}`), between a slice's and the global ones.
    pub module_parameters: Vec<(String, Setting)>,
    /// Layer slices (instead of `models`): output layers taken, or merged,
    /// from ranges of the sources' layers (frankenmerges).
    pub slices: Vec<Slice>,
    /// The dtype inputs are cast to before merging (`dtype`).
    pub dtype: Option<DType>,
    /// The dtype of the written tensors (`out_dtype`; default `dtype`).
    pub out_dtype: Option<DType>,
    /// The model whose tokenizer files an output folder gets (`base`, a
    /// model, or none: the base model's).
    pub tokenizer_source: Option<String>,
    /// mergekit's `tokenizer:` section (source, configured tokens).
    pub tokenizer: Option<TokenizerSection>,
    /// A chat template for the output's tokenizer config (a template text,
    /// or a name mergekit knows).
    pub chat_template: Option<String>,
    /// The configuration's text, recorded in the output's metadata.
    pub text: String,
}

/// The largest configuration text taken (mergekit's are a few KB; a chat
/// template may add some).
pub const MAX_TEXT: usize = 16 << 20;

/// The deepest bracket nesting taken.
const MAX_NESTING: usize = 64;

const KEYS: &[&str] = &[
    "merge_method",
    "base_model",
    "models",
    "parameters",
    "dtype",
    "out_dtype",
    "tokenizer_source",
    "chat_template",
    "slices",
    "modules",
    "tokenizer",
    "name",
];

fn bad(detail: impl Into<String>) -> Error {
    Error::usage(code::MERGE_CONFIG, detail)
}

impl MergeConfig {
    /// Parses mergekit's YAML. Every key is checked: unknown keys, methods
    /// and parameters are refused by name, as are the parts of mergekit's
    /// schema not merged here yet (`modules`).
    pub fn from_yaml(text: &str) -> Result<MergeConfig> {
        if text.len() > MAX_TEXT {
            return Err(bad(format!(
                "a merge configuration of {} bytes: at most {MAX_TEXT}",
                text.len()
            )));
        }
        // The YAML parser takes quadratic time in its nesting depth (100 000
        // nested lists: 51 s before it refused them); mergekit's schema
        // nests a few levels. Brackets are counted even inside strings:
        // a chat template's `{{ }}` and `{% %}` stay shallow.
        let mut depth = 0usize;
        for b in text.bytes() {
            match b {
                b'[' | b'{' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Err(bad(format!("brackets nested deeper than {MAX_NESTING}")));
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        let doc: Yaml =
            serde_norway::from_str(text).map_err(|e| bad(format!("not a merge configuration: {e}")))?;
        let Yaml::Mapping(map) = doc else {
            return Err(bad(
                "a merge configuration is a mapping of keys (merge_method, models, ...)",
            ));
        };
        let mut method = None;
        let mut config = MergeConfig {
            method: Method::Linear,
            base_model: None,
            models: Vec::new(),
            parameters: Vec::new(),
            module_parameters: Vec::new(),
            slices: Vec::new(),
            dtype: None,
            out_dtype: None,
            tokenizer_source: None,
            tokenizer: None,
            chat_template: None,
            text: text.to_string(),
        };
        for (key, value) in &map {
            let key = key_text(key)?;
            match key {
                "merge_method" => method = Some(Method::named(text_of(key, value)?)?),
                "base_model" => config.base_model = Some(model_ref(key, value)?),
                "models" => config.models = entries(value)?,
                "parameters" => config.parameters = parameters(key, value)?,
                "dtype" => config.dtype = Some(dtype(key, value)?),
                "out_dtype" => config.out_dtype = Some(dtype(key, value)?),
                "tokenizer_source" => config.tokenizer_source = Some(model_ref(key, value)?),
                "chat_template" => config.chat_template = Some(text_of(key, value)?.to_string()),
                "name" => {}
                "slices" => config.slices = slices(value)?,
                "tokenizer" => config.tokenizer = Some(tokenizer_section(value)?),
                "modules" => module(value, &mut config)?,
                other => {
                    return Err(bad(format!(
                        "unknown key '{other}' (mergekit's keys: {})",
                        KEYS.join(", ")
                    )))
                }
            }
        }
        config.method = method.ok_or_else(|| bad("no 'merge_method'"))?;
        if config.tokenizer_source.is_some() && config.tokenizer.is_some() {
            return Err(bad("give 'tokenizer_source' or 'tokenizer', not both"));
        }
        let modules = map.contains_key("modules");
        let given = [map.contains_key("models"), map.contains_key("slices"), modules];
        match given.iter().filter(|&&g| g).count() {
            0 => return Err(bad("no 'models' (or 'slices') to merge")),
            1 => {}
            _ => return Err(bad("give one of 'models', 'slices' or 'modules'")),
        }
        if config.models.is_empty() && config.slices.is_empty() {
            return Err(bad("no 'models' (or 'slices') to merge"));
        }
        config.method.check(&config)?;
        Ok(config)
    }

    /// Where the output's tokenizer comes from (`tokenizer_source`, or the
    /// `tokenizer:` section's source): `base`, `union` or a model.
    pub fn vocabulary_source(&self) -> Option<&str> {
        self.tokenizer_source
            .as_deref()
            .or(self.tokenizer.as_ref().map(|t| t.source.as_str()))
    }

    /// The models in the order a tensor group holds them: the base first
    /// (when the method takes one), then the others in configuration order,
    /// each once.
    pub fn inputs(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if self.method.takes_base() {
            if let Some(base) = &self.base_model {
                out.push(base.clone());
            }
        }
        let sliced = self
            .slices
            .iter()
            .flat_map(|s| s.sources.iter().map(|x| &x.model));
        for m in self.models.iter().map(|e| &e.model).chain(sliced) {
            if !out.contains(m) {
                out.push(m.clone());
            }
        }
        out
    }

    /// The models a tensor group holds, in order: those of `slice` (its
    /// sources; the base first when the method takes one), or all of
    /// [`MergeConfig::inputs`].
    pub fn group(&self, slice: Option<usize>) -> Vec<String> {
        let Some(s) = slice.and_then(|i| self.slices.get(i)) else {
            return self.inputs();
        };
        let mut out: Vec<String> = Vec::new();
        if let Some(base) = self.base_of(slice).filter(|_| self.method.takes_base()) {
            if s.sources.iter().any(|x| &x.model == base) {
                out.push(base.clone());
            }
        }
        for x in &s.sources {
            if !out.contains(&x.model) {
                out.push(x.model.clone());
            }
        }
        out
    }

    /// The base model of `slice` (its own, else the global one), or the
    /// global one outside slices.
    pub fn base_of(&self, slice: Option<usize>) -> Option<&String> {
        slice
            .and_then(|i| self.slices.get(i))
            .and_then(|s| s.base_model.as_ref())
            .or(self.base_model.as_ref())
    }

    /// The base model's index in [`MergeConfig::inputs`], for methods that take one.
    pub fn base_index(&self) -> Option<usize> {
        (self.method.takes_base() && self.base_model.is_some()).then_some(0)
    }

    /// Parameter `name` for input `model` (or shared when `None`) of tensor
    /// `tensor` at layer position `t`, in `slice` if any: the model's own
    /// setting, then the slice's, then the module's, then the global one;
    /// None when none gives a value.
    pub fn resolve(
        &self,
        name: &str,
        model: Option<&str>,
        slice: Option<usize>,
        tensor: &str,
        t: f64,
    ) -> Option<Resolved> {
        let slice = slice.and_then(|i| self.slices.get(i));
        let own = match slice {
            Some(s) => model
                .and_then(|m| s.sources.iter().find(|x| x.model == m))
                .map(|x| x.parameters.as_slice()),
            None => model
                .and_then(|m| self.models.iter().find(|e| e.model == m))
                .map(|e| e.parameters.as_slice()),
        }
        .unwrap_or(&[]);
        let shared = slice.map_or(&[][..], |s| s.parameters.as_slice());
        [
            own,
            shared,
            self.module_parameters.as_slice(),
            self.parameters.as_slice(),
        ]
        .into_iter()
        .flat_map(|list| list.iter().filter(|(k, _)| k == name))
        .find_map(|(_, s)| s.evaluate(tensor, t))
        .map(|s| match s {
            Scalar::Num(x) => Resolved::Num(x),
            Scalar::Bool(b) => Resolved::Bool(b),
            // mergekit's validation turns numeric strings into numbers.
            Scalar::Str(s) => s.parse().map_or(Resolved::Bool(s == "true"), Resolved::Num),
        })
    }
}

/// mergekit's `modules:` for an architecture of one module, which mergekit
/// names `default` (every text model): its `models` or `slices`, and its
/// `parameters`. The modules of multi-module architectures (vision-language
/// models, T5, Whisper) are refused by name.
fn module(value: &Yaml, config: &mut MergeConfig) -> Result<()> {
    let Yaml::Mapping(modules) = value else {
        return Err(bad(format!(
            "'modules' must map module names to modules, not {value:?}"
        )));
    };
    let names: Vec<&str> = modules.keys().filter_map(Yaml::as_str).collect();
    if names != ["default"] || modules.len() != 1 {
        return Err(Error::unsupported(
            code::MERGE_CONFIG,
            format!(
                "modules {names:?}: per-module merges of multi-module architectures (vision-language models, T5, Whisper) are not built by tensorcast yet; a one-module model's module is 'default'"
            ),
        ));
    }
    let Some(Yaml::Mapping(entries)) = modules.get("default") else {
        return Err(bad(
            "module 'default' must be a mapping of 'models' or 'slices' and 'parameters'",
        ));
    };
    for (key, value) in entries {
        match key_text(key)? {
            "models" => config.models = self::entries(value)?,
            "slices" => config.slices = slices(value)?,
            "parameters" => config.module_parameters = parameters("parameters", value)?,
            other => {
                return Err(bad(format!(
                    "module 'default': unknown key '{other}' (it takes models, slices, parameters)"
                )))
            }
        }
    }
    if entries.contains_key("models") == entries.contains_key("slices") {
        return Err(bad("module 'default': give one of 'models' or 'slices'"));
    }
    Ok(())
}

fn key_text(key: &Yaml) -> Result<&str> {
    key.as_str()
        .ok_or_else(|| bad(format!("a key that is not text: {key:?}")))
}

fn text_of<'a>(key: &str, value: &'a Yaml) -> Result<&'a str> {
    value
        .as_str()
        .ok_or_else(|| bad(format!("'{key}' must be text, not {value:?}")))
}

/// A model reference: a path or URL (mergekit's `model+lora` is refused).
fn model_ref(key: &str, value: &Yaml) -> Result<String> {
    let text = match value {
        Yaml::Mapping(m) => m
            .get("model")
            .and_then(Yaml::as_str)
            .ok_or_else(|| bad(format!("'{key}': a model reference needs 'model'")))?,
        other => text_of(key, other)?,
    };
    if text.contains('+') && !text.contains("://") {
        return Err(Error::unsupported(
            code::MERGE_CONFIG,
            format!("'{text}': a model with a LoRA applied (model+lora) is not merged by tensorcast yet"),
        ));
    }
    Ok(text.to_string())
}

/// `tokenizer: {source, tokens, pad_to_multiple_of}` (mergekit's
/// TokenizerConfig; `source` defaults to `union`).
fn tokenizer_section(value: &Yaml) -> Result<TokenizerSection> {
    let Yaml::Mapping(map) = value else {
        return Err(bad(
            "'tokenizer' must be a mapping (source, tokens, pad_to_multiple_of)",
        ));
    };
    let mut section = TokenizerSection {
        source: "union".to_string(),
        tokens: Vec::new(),
        pad_to_multiple_of: None,
    };
    for (key, value) in map {
        match key_text(key)? {
            "source" => section.source = model_ref("tokenizer.source", value)?,
            "pad_to_multiple_of" => {
                section.pad_to_multiple_of = match value {
                    Yaml::Null => None,
                    v => Some(v.as_u64().filter(|&n| n > 0).ok_or_else(|| {
                        bad(format!(
                            "'tokenizer.pad_to_multiple_of' must be a positive integer, not {v:?}"
                        ))
                    })?),
                }
            }
            "tokens" => {
                let Yaml::Mapping(tokens) = value else {
                    return Err(bad("'tokenizer.tokens' must map tokens to {source, force}"));
                };
                for (token, rule) in tokens {
                    let token = key_text(token)?.to_string();
                    section.tokens.push((token.clone(), token_rule(&token, rule)?));
                }
            }
            other => {
                return Err(bad(format!(
                    "unknown key 'tokenizer.{other}' (source, tokens, pad_to_multiple_of)"
                )))
            }
        }
    }
    Ok(section)
}

/// One configured token: `{source: MODEL | {kind: zero} | {kind:
/// model_token, model, token_id | token}, force}`.
fn token_rule(token: &str, value: &Yaml) -> Result<TokenRule> {
    let Yaml::Mapping(map) = value else {
        return Err(bad(format!(
            "tokenizer.tokens.{token}: a mapping of source and force"
        )));
    };
    let mut rule = TokenRule {
        source: None,
        force: false,
    };
    for (key, value) in map {
        match key_text(key)? {
            "force" => {
                rule.force = value
                    .as_bool()
                    .ok_or_else(|| bad(format!("tokenizer.tokens.{token}.force must be true or false")))?
            }
            "source" => {
                rule.source = match value {
                    Yaml::Null => None,
                    Yaml::Mapping(m) if m.contains_key("kind") => {
                        match m.get("kind").and_then(Yaml::as_str) {
                            Some("zero") => Some(TokenSource::Zero),
                            Some("model_token") => {
                                let model = model_ref("source.model", m.get("model").unwrap_or(&Yaml::Null))?;
                                let id = match m.get("token_id") {
                                    None | Some(Yaml::Null) => None,
                                    Some(v) => Some(v.as_u64().ok_or_else(|| {
                                        bad(format!(
                                            "tokenizer.tokens.{token}.source.token_id must be a row number"
                                        ))
                                    })?),
                                };
                                let named = match m.get("token") {
                                    None | Some(Yaml::Null) => None,
                                    Some(v) => Some(text_of("source.token", v)?.to_string()),
                                };
                                if id.is_some() == named.is_some() {
                                    return Err(bad(format!(
                                        "tokenizer.tokens.{token}.source: give one of token_id and token"
                                    )));
                                }
                                Some(TokenSource::ModelToken {
                                    model,
                                    id,
                                    token: named,
                                })
                            }
                            other => {
                                return Err(bad(format!(
                                "tokenizer.tokens.{token}.source: unknown kind {other:?} (zero, model_token)"
                            )))
                            }
                        }
                    }
                    other => Some(TokenSource::Model(model_ref("source", other)?)),
                }
            }
            other => {
                return Err(bad(format!(
                    "unknown key 'tokenizer.tokens.{token}.{other}' (source, force)"
                )))
            }
        }
    }
    Ok(rule)
}

fn dtype(key: &str, value: &Yaml) -> Result<DType> {
    let text = text_of(key, value)?;
    let name = match text {
        "float32" | "fp32" | "f32" => "f32",
        "bfloat16" | "bf16" => "bf16",
        "float16" | "fp16" | "f16" => "f16",
        "float64" | "f64" => "f64",
        other => {
            return Err(bad(format!(
                "'{key}': unknown dtype '{other}' (float32, bfloat16, float16)"
            )))
        }
    };
    name.parse().map_err(|_| bad(format!("'{key}': dtype '{text}'")))
}

fn entries(value: &Yaml) -> Result<Vec<Entry>> {
    let Yaml::Sequence(list) = value else {
        return Err(bad("'models' must be a list of {model: ..., parameters: ...}"));
    };
    list.iter()
        .map(|item| {
            let Yaml::Mapping(m) = item else {
                return Ok(Entry {
                    model: model_ref("models", item)?,
                    parameters: Vec::new(),
                });
            };
            let mut entry = Entry {
                model: String::new(),
                parameters: Vec::new(),
            };
            for (k, v) in m {
                match key_text(k)? {
                    "model" => entry.model = model_ref("model", v)?,
                    "parameters" => entry.parameters = parameters("parameters", v)?,
                    other => {
                        return Err(bad(format!(
                            "unknown key '{other}' in a model entry (model, parameters)"
                        )))
                    }
                }
            }
            if entry.model.is_empty() {
                return Err(bad("a model entry without 'model'"));
            }
            Ok(entry)
        })
        .collect()
}

fn slices(value: &Yaml) -> Result<Vec<Slice>> {
    let Yaml::Sequence(list) = value else {
        return Err(bad("'slices' must be a list of {sources: [...]}"));
    };
    list.iter()
        .map(|item| {
            let Yaml::Mapping(m) = item else {
                return Err(bad("a slice is a mapping with 'sources'"));
            };
            let mut slice = Slice {
                sources: Vec::new(),
                parameters: Vec::new(),
                base_model: None,
            };
            for (k, v) in m {
                match key_text(k)? {
                    "sources" => slice.sources = sources(v)?,
                    "parameters" => slice.parameters = parameters("parameters", v)?,
                    "base_model" => slice.base_model = Some(model_ref("base_model", v)?),
                    "residual_weight" => {
                        return Err(Error::unsupported(
                            code::MERGE_CONFIG,
                            format!("a slice's '{}' is not merged by tensorcast yet", key_text(k)?),
                        ))
                    }
                    other => {
                        return Err(bad(format!(
                            "unknown key '{other}' in a slice (sources, parameters, base_model)"
                        )))
                    }
                }
            }
            let lengths: Vec<u64> = slice.sources.iter().map(|x| x.layers.1 - x.layers.0).collect();
            if lengths.is_empty() {
                return Err(bad("a slice without sources"));
            }
            if lengths.iter().any(|&l| l != lengths[0]) {
                return Err(bad(format!(
                    "the sources of a slice must have the same number of layers, not {lengths:?}"
                )));
            }
            Ok(slice)
        })
        .collect()
}

fn sources(value: &Yaml) -> Result<Vec<SliceSource>> {
    let Yaml::Sequence(list) = value else {
        return Err(bad("'sources' must be a list of {model, layer_range}"));
    };
    list.iter()
        .map(|item| {
            let Yaml::Mapping(m) = item else {
                return Err(bad("a slice source is a mapping of model and layer_range"));
            };
            let (mut model, mut layers, mut params) = (None, None, Vec::new());
            for (k, v) in m {
                match key_text(k)? {
                    "model" => model = Some(model_ref("model", v)?),
                    "layer_range" => {
                        let range = v
                            .as_sequence()
                            .filter(|r| r.len() == 2)
                            .and_then(|r| Some((r[0].as_u64()?, r[1].as_u64()?)))
                            .filter(|(a, b)| a < b)
                            .ok_or_else(|| {
                                bad(format!(
                                    "layer_range must be [start, end] with start < end, not {v:?}"
                                ))
                            })?;
                        layers = Some(range);
                    }
                    "parameters" => params = parameters("parameters", v)?,
                    other => {
                        return Err(bad(format!(
                            "unknown key '{other}' in a slice source (model, layer_range, parameters)"
                        )))
                    }
                }
            }
            Ok(SliceSource {
                model: model.ok_or_else(|| bad("a slice source without 'model'"))?,
                layers: layers.ok_or_else(|| bad("a slice source without 'layer_range'"))?,
                parameters: params,
            })
        })
        .collect()
}

fn parameters(key: &str, value: &Yaml) -> Result<Vec<(String, Setting)>> {
    match value {
        Yaml::Null => Ok(Vec::new()),
        Yaml::Mapping(m) => m
            .iter()
            .map(|(k, v)| {
                let name = key_text(k)?;
                Ok((name.to_string(), setting(name, v)?))
            })
            .collect(),
        other => Err(bad(format!(
            "'{key}' must be a mapping of parameter names, not {other:?}"
        ))),
    }
}

fn scalar(name: &str, value: &Yaml) -> Result<Scalar> {
    match value {
        Yaml::Bool(b) => Ok(Scalar::Bool(*b)),
        Yaml::Number(n) => n
            .as_f64()
            .map(Scalar::Num)
            .ok_or_else(|| bad(format!("parameter '{name}': {n} is not a number"))),
        Yaml::String(s) => Ok(Scalar::Str(s.clone())),
        other => Err(bad(format!("parameter '{name}': {other:?} is not a value"))),
    }
}

fn setting(name: &str, value: &Yaml) -> Result<Setting> {
    match value {
        Yaml::Sequence(list) if list.iter().all(|v| !matches!(v, Yaml::Mapping(_))) => Ok(Setting::Gradient(
            list.iter().map(|v| scalar(name, v)).collect::<Result<_>>()?,
        )),
        Yaml::Sequence(list) => Ok(Setting::Filtered(
            list.iter().map(|v| conditional(name, v)).collect::<Result<_>>()?,
        )),
        Yaml::Mapping(_) => Ok(Setting::Filtered(vec![conditional(name, value)?])),
        other => Ok(Setting::Scalar(scalar(name, other)?)),
    }
}

fn conditional(name: &str, value: &Yaml) -> Result<(Option<String>, Setting)> {
    let Yaml::Mapping(m) = value else {
        return Err(bad(format!(
            "parameter '{name}': a list mixing values and {{filter, value}} entries"
        )));
    };
    let mut filter = None;
    let mut inner = None;
    for (k, v) in m {
        match key_text(k)? {
            "filter" => filter = Some(text_of("filter", v)?.to_string()),
            "value" => inner = Some(setting(name, v)?),
            other => {
                return Err(bad(format!(
                    "parameter '{name}': unknown key '{other}' (filter, value)"
                )))
            }
        }
    }
    let inner = inner.ok_or_else(|| bad(format!("parameter '{name}': a filtered entry without 'value'")))?;
    Ok((filter, inner))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradients_interpolate_as_mergekit_does() {
        let g = Setting::Gradient(vec![Scalar::Num(0.2), Scalar::Num(0.9), Scalar::Num(0.5)]);
        assert_eq!(g.evaluate("x", 0.0), Some(Scalar::Num(0.2)));
        assert_eq!(g.evaluate("x", 1.0), Some(Scalar::Num(0.5)));
        // t = 0.25: scaled 0.5 between 0.2 and 0.9.
        assert_eq!(g.evaluate("x", 0.25), Some(Scalar::Num(0.5 * 0.2 + 0.5 * 0.9)));
        let f = Setting::Filtered(vec![
            (Some("self_attn".into()), Setting::Scalar(Scalar::Num(1.0))),
            (None, Setting::Scalar(Scalar::Num(2.0))),
        ]);
        assert_eq!(
            f.evaluate("model.layers.0.self_attn.q_proj.weight", 0.0),
            Some(Scalar::Num(1.0))
        );
        assert_eq!(f.evaluate("model.norm.weight", 0.0), Some(Scalar::Num(2.0)));
    }

    #[test]
    fn deep_nesting_and_alias_bombs_are_refused_at_once() {
        let deep = format!(
            "merge_method: linear\nmodels: {}{}\n",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(MergeConfig::from_yaml(&deep)
            .unwrap_err()
            .to_string()
            .contains("nested deeper"));
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            bomb += &format!("a{i}: &a{i} [{}]\n", vec![format!("*a{}", i - 1); 10].join(", "));
        }
        bomb += "merge_method: linear\nmodels: [*a9]\n";
        assert!(MergeConfig::from_yaml(&bomb)
            .unwrap_err()
            .to_string()
            .contains("repetition limit"));
    }

    #[test]
    fn unknown_keys_methods_and_parameters_are_refused_by_name() {
        let e = MergeConfig::from_yaml("merge_method: linear\nmodels: [a]\nwat: 1\n").unwrap_err();
        assert!(e.to_string().contains("'wat'"), "{e}");
        let e = MergeConfig::from_yaml("merge_method: blend\nmodels: [a]\n").unwrap_err();
        assert!(e.to_string().contains("'blend'"), "{e}");
        let e = MergeConfig::from_yaml(
            "merge_method: ties\nbase_model: b\nmodels: [{model: a, parameters: {weight: 1, densty: 0.5}}]\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("'densty'"), "{e}");
    }
}
