//! The merged model as a [`Source`]: the base's (or first model's) tensors,
//! each computed on demand from the same-named tensor of every input.

use crate::config::MergeConfig;
use crate::kernel::{self, Plan};
use crate::method::Params;
use crate::numeric::{from_f32, Prec};
use crate::stream::Lockstep;
use tensorcast_core::{code, DType, Error, Metadata, Result, Source, TensorData, TensorInfo, Value};

/// A merge of several sources, one tensor at a time.
pub struct MergedSource {
    config: MergeConfig,
    inputs: Vec<Box<dyn Source>>,
    /// The models, parallel to `inputs`.
    models: Vec<String>,
    /// Output tensors and, per tensor, its index in every input.
    tensors: Vec<TensorInfo>,
    found: Vec<Vec<usize>>,
    /// Per tensor: the precision it is merged in.
    prec: Vec<Prec>,
    /// Layers in the model, for gradients.
    layers: Option<u64>,
    metadata: Metadata,
    seed: u64,
}

impl MergedSource {
    /// Merges `inputs`, opened in the order of [`MergeConfig::inputs`] and
    /// named alike (Hugging Face names), per `config`. `layers` is the
    /// model's layer count (`num_hidden_layers`) when known; otherwise the
    /// highest layer index in the names plus one. Every tensor of the first
    /// input must be in every other, with the same shape.
    pub fn new(
        config: MergeConfig,
        inputs: Vec<Box<dyn Source>>,
        layers: Option<u64>,
        seed: u64,
    ) -> Result<MergedSource> {
        let models = config.inputs();
        if inputs.len() != models.len() || inputs.is_empty() {
            return Err(Error::usage(
                code::INTERNAL,
                format!("{} sources for {} models", inputs.len(), models.len()),
            ));
        }
        let mut tensors = Vec::new();
        let mut found = Vec::new();
        let mut prec = Vec::new();
        for info in inputs[0].tensors() {
            let mut at = Vec::with_capacity(inputs.len());
            let mut p: Option<Prec> = None;
            for (source, model) in inputs.iter().zip(&models) {
                let i = source.find(&info.name).ok_or_else(|| {
                    Error::usage(
                        code::MERGE_MISMATCH,
                        format!("tensor '{}' is not in {model}", info.name),
                    )
                })?;
                let other = &source.tensors()[i];
                if other.shape != info.shape {
                    return Err(Error::usage(
                        code::MERGE_MISMATCH,
                        format!(
                            "tensor '{}' is {:?} in {} but {:?} in {model}",
                            info.name, info.shape, models[0], other.shape
                        ),
                    ));
                }
                let this = Prec::of(other.dtype).map_err(|_| {
                    Error::unsupported(
                        code::MERGE_MISMATCH,
                        format!(
                            "tensor '{}' of {model} is {}: only float tensors merge",
                            info.name, other.dtype
                        ),
                    )
                })?;
                p = Some(p.map_or(this, |q| q.promote(this)));
                at.push(i);
            }
            let p = match config.dtype {
                Some(d) => Prec::of(d)?,
                None => p.unwrap_or(Prec::F32),
            };
            let out = config.out_dtype.unwrap_or(p.dtype());
            let described = TensorInfo::new(info.name.clone(), out, info.shape.clone()).ok_or_else(|| {
                Error::usage(
                    code::TOO_LARGE,
                    format!("tensor '{}': shape {:?}", info.name, info.shape),
                )
            })?;
            tensors.push(described);
            found.push(at);
            prec.push(p);
        }
        let layers = layers.or_else(|| {
            tensors
                .iter()
                .filter_map(|t| layer_of(&t.name))
                .max()
                .map(|i| i + 1)
        });
        let mut metadata = Metadata::new();
        metadata.insert("merge_method", Value::Str(config.method.name().to_string()));
        metadata.insert("mergekit_config", Value::Str(config.text.clone()));
        Ok(MergedSource {
            config,
            inputs,
            models,
            tensors,
            found,
            prec,
            layers,
            metadata,
            seed,
        })
    }

    /// Gradient position of tensor `name`: layer `i` of `L` at `i / (L-1)`
    /// (1 for a one-layer model), 0 outside the layers, as mergekit plans.
    fn t_of(&self, name: &str) -> f64 {
        match (layer_of(name), self.layers) {
            (Some(i), Some(l)) if l > 1 => i as f64 / (l - 1) as f64,
            (Some(_), _) => 1.0,
            (None, _) => 0.0,
        }
    }
}

/// The layer index in a Hugging Face tensor name (`model.layers.3.…`,
/// `transformer.h.3.…`, `….blocks.3.…`, `….layer.3.…`).
fn layer_of(name: &str) -> Option<u64> {
    let parts: Vec<&str> = name.split('.').collect();
    parts.windows(2).find_map(|w| match w[0] {
        "layers" | "h" | "blocks" | "layer" => w[1].parse().ok(),
        _ => None,
    })
}

impl Source for MergedSource {
    fn format(&self) -> &'static str {
        "merge"
    }

    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        let info = self
            .tensors
            .get(index)
            .ok_or_else(|| Error::usage(code::INTERNAL, format!("no tensor {index}")))?;
        let prec = self.prec[index];
        let n = info.shape.iter().product::<u64>();
        let mut open = || -> Result<Lockstep<'_>> {
            let inputs = self
                .inputs
                .iter()
                .zip(&self.found[index])
                .map(|(source, &i)| Ok((source.tensor_data(i)?, source.tensors()[i].dtype)))
                .collect::<Result<Vec<_>>>()?;
            Lockstep::new(inputs, prec, n as usize)
        };
        let params = Params {
            config: &self.config,
            name: &info.name,
            t: self.t_of(&info.name),
            models: &self.models,
        };
        let plan = kernel::plan(self.config.method, &params, prec, n, self.seed, &mut open)?;
        Ok(TensorData::Chunks(Box::new(Merged {
            plan,
            pass: open()?,
            prec,
            at: 0,
            dtype: info.dtype,
        })))
    }
}

/// The output pass: each chunk of every input merged and encoded.
struct Merged<'a> {
    plan: Plan,
    pass: Lockstep<'a>,
    prec: Prec,
    at: u64,
    dtype: DType,
}

impl Iterator for Merged<'_> {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Result<Vec<u8>>> {
        let chunk = match self.pass.next_chunk()? {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        let values = self.plan.apply(self.prec, self.at, &chunk);
        self.at += values.len() as u64;
        Some(from_f32(&values, self.dtype))
    }
}
