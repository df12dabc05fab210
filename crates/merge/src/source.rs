//! The merged model as a [`Source`]: the base's (or first model's) tensors,
//! each computed on demand from the same-named tensor of every input.

use crate::config::MergeConfig;
use crate::experts::{ExpertFusion, FusedGroup};
use crate::kernel::{self, Plan};
use crate::method::{Params, Sparsify};
use crate::numeric::{from_f32, Prec};
use crate::stream::{Lockstep, Open, CHUNK_ELEMENTS};
use crate::vocab::{is_token_indexed, VocabPlan};
use crate::vocab_rows::permuted;
use std::sync::Mutex;
use tensorcast_core::{code, DType, Error, Metadata, Result, Source, TensorData, TensorInfo, Value};

/// A merge of several sources, one tensor at a time.
pub struct MergedSource {
    config: MergeConfig,
    inputs: Vec<Box<dyn Source>>,
    tensors: Vec<TensorInfo>,
    /// Per output tensor: where its inputs are and how it is merged.
    outs: Vec<Out>,
    /// Per layer of the merged model when slices renumber them: the layer
    /// of its slice's first source it was made from.
    layers_out: Option<Vec<u64>>,
    metadata: Metadata,
    seed: u64,
    /// With a tokenizer source: how token-indexed tensors' rows are laid out.
    vocab: Option<VocabPlan>,
    /// Groups of per-expert tensors merged as the fused tensor they stack
    /// into, and per output tensor its group and place in it.
    fused: Vec<Fused>,
    fused_of: Vec<Option<(usize, usize)>>,
}

/// Per-expert output tensors merged as one (see [`crate::experts`]).
struct Fused {
    name: String,
    shape: Vec<u64>,
    /// Output tensor indices, in stacking order, and where each starts.
    members: Vec<usize>,
    offsets: Vec<u64>,
    /// The group's plan while its members are being written.
    plan: Mutex<Option<FusedPlan>>,
}

/// A fused group's plan, and when its decisions depend on what came
/// before (ties at a cut), its state at each member's start.
struct FusedPlan {
    plan: Plan,
    starts: Option<Vec<Plan>>,
    served: usize,
}

/// One output tensor's group.
struct Out {
    /// (input, tensor index in it), in group order (the base first).
    parts: Vec<(usize, usize)>,
    /// The group's models, parallel to `parts`.
    models: Vec<String>,
    slice: Option<usize>,
    /// Gradient position.
    t: f64,
    prec: Prec,
    /// Its rows are laid out in the output vocabulary.
    permuted: bool,
}

/// Which part of a model a tensor is, for slices: before the layers
/// (embeddings), a layer's, or after them (final norm, output head).
fn is_pre(name: &str) -> bool {
    ["embed", "wte", "wpe"].iter().any(|p| name.contains(p))
}

/// `name` with its layer index replaced by `layer`.
fn with_layer(name: &str, layer: u64) -> String {
    let mut parts: Vec<String> = name.split('.').map(str::to_string).collect();
    if let Some(i) = (0..parts.len().saturating_sub(1)).find(|&i| {
        matches!(parts[i].as_str(), "layers" | "h" | "blocks" | "layer")
            && parts[i + 1].parse::<u64>().is_ok()
    }) {
        parts[i + 1] = layer.to_string();
    }
    parts.join(".")
}

impl MergedSource {
    /// Merges `inputs`, opened in the order of [`MergeConfig::inputs`] and
    /// named alike (Hugging Face names), per `config`. `layers` is the
    /// model's layer count (`num_hidden_layers`) when known; otherwise the
    /// highest layer index in the names plus one. Without slices the output
    /// has the first input's tensors, each merged from the same-named tensor
    /// of every input; with slices, the first slice's embeddings, each
    /// slice's layers renumbered in order, and the last slice's final
    /// tensors. Tensors missing from an input or of another shape are
    /// refused by name.
    pub fn new(
        config: MergeConfig,
        inputs: Vec<Box<dyn Source>>,
        layers: Option<u64>,
        seed: u64,
    ) -> Result<MergedSource> {
        MergedSource::with_vocabulary(config, inputs, layers, seed, None)
    }

    /// As [`MergedSource::new`], with token-indexed tensors (embeddings,
    /// output head) laid out in an output vocabulary first, as mergekit does
    /// with a tokenizer source: each input's rows may then differ in number,
    /// and the merged tensor has the plan's rows.
    pub fn with_vocabulary(
        config: MergeConfig,
        inputs: Vec<Box<dyn Source>>,
        layers: Option<u64>,
        seed: u64,
        vocab: Option<VocabPlan>,
    ) -> Result<MergedSource> {
        let models = config.inputs();
        if inputs.len() != models.len() || inputs.is_empty() {
            return Err(Error::usage(
                code::INTERNAL,
                format!("{} sources for {} models", inputs.len(), models.len()),
            ));
        }
        let index_of = |m: &str| models.iter().position(|x| x == m).unwrap_or(0);
        // (output name, [(input, its tensor name)], group models, slice, t)
        type Wanted = (String, Vec<(usize, String)>, Vec<String>, Option<usize>, f64);
        let mut wanted: Vec<Wanted> = Vec::new();
        let mut layers_out = None;
        if config.slices.is_empty() {
            let layers = layers.or_else(|| {
                inputs[0]
                    .tensors()
                    .iter()
                    .filter_map(|t| layer_of(&t.name))
                    .max()
                    .map(|i| i + 1)
            });
            for info in inputs[0].tensors() {
                let t = match (layer_of(&info.name), layers) {
                    (Some(i), Some(l)) if l > 1 => i as f64 / (l - 1) as f64,
                    (Some(_), _) => 1.0,
                    (None, _) => 0.0,
                };
                let parts = (0..inputs.len()).map(|i| (i, info.name.clone())).collect();
                wanted.push((info.name.clone(), parts, models.clone(), None, t));
            }
        } else {
            let first = &config.slices[0].sources[0];
            let reference = &inputs[index_of(&first.model)];
            let names: Vec<&str> = reference.tensors().iter().map(|t| t.name.as_str()).collect();
            let template: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| layer_of(n) == Some(first.layers.0))
                .collect();
            let last = config.slices.len() - 1;
            let group_parts = |slice: usize, name: &dyn Fn(u64) -> String, offset: u64| {
                let s = &config.slices[slice];
                config
                    .group(Some(slice))
                    .iter()
                    .map(|m| {
                        let src = s.sources.iter().find(|x| &x.model == m).map_or(0, |x| x.layers.0);
                        (index_of(m), name(src + offset))
                    })
                    .collect::<Vec<_>>()
            };
            for n in names.iter().filter(|n| layer_of(n).is_none() && is_pre(n)) {
                let parts = group_parts(0, &|_| n.to_string(), 0);
                wanted.push((n.to_string(), parts, config.group(Some(0)), Some(0), 0.0));
            }
            // Every range within the layers its model holds, checked before
            // anything is planned: a range from a configuration is otherwise
            // a count nothing bounds ([0, 10^9] planned forever).
            for x in config.slices.iter().flat_map(|s| &s.sources) {
                let held = inputs[index_of(&x.model)]
                    .tensors()
                    .iter()
                    .filter_map(|t| layer_of(&t.name))
                    .max()
                    .map_or(0, |i| i + 1);
                if x.layers.1 > held {
                    return Err(Error::usage(
                        code::MERGE_MISMATCH,
                        format!(
                            "layer_range [{}, {}] of {}: the model holds {held} layers",
                            x.layers.0, x.layers.1, x.model
                        ),
                    ));
                }
            }
            let mut out_layer = 0u64;
            let mut origins = Vec::new();
            for (si, s) in config.slices.iter().enumerate() {
                let len = s.sources[0].layers.1 - s.sources[0].layers.0;
                for k in 0..len {
                    origins.push(s.sources[0].layers.0 + k);
                    let t = if len > 1 { k as f64 / (len - 1) as f64 } else { 1.0 };
                    for tpl in &template {
                        let parts = group_parts(si, &|l| with_layer(tpl, l), k);
                        wanted.push((
                            with_layer(tpl, out_layer),
                            parts,
                            config.group(Some(si)),
                            Some(si),
                            t,
                        ));
                    }
                    out_layer += 1;
                }
            }
            for n in names.iter().filter(|n| layer_of(n).is_none() && !is_pre(n)) {
                let parts = group_parts(last, &|_| n.to_string(), 0);
                wanted.push((n.to_string(), parts, config.group(Some(last)), Some(last), 0.0));
            }
            layers_out = Some(origins);
        }
        let mut tensors = Vec::with_capacity(wanted.len());
        let mut outs = Vec::with_capacity(wanted.len());
        for (name, parts, group, slice, t) in wanted {
            let mut found = Vec::with_capacity(parts.len());
            let mut shape: Option<&Vec<u64>> = None;
            let mut p: Option<Prec> = None;
            let permute = vocab.is_some() && is_token_indexed(&name);
            // Permuted rows: the inputs' row counts may differ, the rest not.
            let key = |s: &[u64]| {
                if permute {
                    s.get(1..).unwrap_or_default().to_vec()
                } else {
                    s.to_vec()
                }
            };
            for ((input, tensor), model) in parts.iter().zip(&group) {
                let source = &inputs[*input];
                let i = source.find(tensor).ok_or_else(|| {
                    Error::usage(
                        code::MERGE_MISMATCH,
                        format!("tensor '{tensor}' is not in {model}"),
                    )
                })?;
                let info = &source.tensors()[i];
                if let Some(s) = shape.filter(|s| key(s) != key(&info.shape)) {
                    return Err(Error::usage(
                        code::MERGE_MISMATCH,
                        format!(
                            "tensor '{tensor}' is {:?} in {model} but {s:?} in {}",
                            info.shape, group[0]
                        ),
                    ));
                }
                if let Some(plan) = vocab.as_ref().filter(|_| permute) {
                    let rows = info.shape.first().copied().unwrap_or(0);
                    if let Some(r) = plan.max_row_of(*input).filter(|&r| r >= rows) {
                        return Err(Error::usage(
                            code::MERGE_MISMATCH,
                            format!("tensor '{tensor}' of {model} has {rows} rows; its tokenizer puts a token at row {r}"),
                        ));
                    }
                }
                shape = Some(&info.shape);
                let this = Prec::of(info.dtype).map_err(|_| {
                    Error::unsupported(
                        code::MERGE_MISMATCH,
                        format!(
                            "tensor '{tensor}' of {model} is {}: only float tensors merge",
                            info.dtype
                        ),
                    )
                })?;
                p = Some(p.map_or(this, |q| q.promote(this)));
                found.push((*input, i));
            }
            let prec = match config.dtype {
                Some(d) => Prec::of(d)?,
                None => p.unwrap_or(Prec::F32),
            };
            let mut shape = shape.cloned().unwrap_or_default();
            let rows_in: Vec<u64> = found
                .iter()
                .map(|&(input, i)| inputs[input].tensors()[i].shape.first().copied().unwrap_or(0))
                .collect();
            let inputs_of: Vec<usize> = found.iter().map(|&(input, _)| input).collect();
            let permuted = match vocab.as_ref().filter(|_| permute && !shape.is_empty()) {
                Some(plan) => {
                    shape[0] = plan.rows();
                    let moved = !plan.is_identity(&inputs_of, &rows_in);
                    // A made row reads the other models' rows of this
                    // tensor: every one must be in its group.
                    if moved && plan.fill_inputs().any(|k| !inputs_of.contains(&k)) {
                        return Err(Error::unsupported(
                            code::MERGE_CONFIG,
                            format!("tensor '{name}': its rows are laid out in the tokenizer source's vocabulary from every model, and this slice merges only some of them; not built by tensorcast yet"),
                        ));
                    }
                    moved
                }
                None => false,
            };
            let out = config.out_dtype.unwrap_or(prec.dtype());
            tensors.push(
                TensorInfo::new(name.clone(), out, shape.clone()).ok_or_else(|| {
                    Error::usage(code::TOO_LARGE, format!("tensor '{name}': shape {shape:?}"))
                })?,
            );
            outs.push(Out {
                parts: found,
                models: group,
                slice,
                t,
                prec,
                permuted,
            });
        }
        let mut metadata = Metadata::new();
        metadata.insert("merge_method", Value::Str(config.method.name().to_string()));
        metadata.insert("mergekit_config", Value::Str(config.text.clone()));
        Ok(MergedSource {
            config,
            inputs,
            tensors,
            outs,
            layers_out,
            metadata,
            seed,
            vocab,
            fused: Vec::new(),
            fused_of: Vec::new(),
        })
    }

    /// Merges the per-expert tensors `fusion` groups as the fused tensors
    /// they stack into, as mergekit 0.1.5 does for that architecture: every
    /// statistic over a layer's experts at once. Each member is still
    /// written as its own tensor. Members of one group must share a shape.
    pub fn fuse_experts(mut self, fusion: &ExpertFusion) -> Result<MergedSource> {
        let groups = fusion.groups(self.tensors.iter().map(|t| t.name.as_str()));
        self.fused_of = vec![None; self.tensors.len()];
        // Name to index once: a large MoE has tens of thousands of experts.
        let position: std::collections::HashMap<&str, usize> = self
            .tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.as_str(), i))
            .collect();
        for FusedGroup {
            name,
            members,
            experts,
        } in groups
        {
            let index: Vec<usize> = members
                .iter()
                .filter_map(|m| position.get(m.as_str()).copied())
                .collect();
            let Some(&first) = index.first() else { continue };
            let shape = self.tensors[first].shape.clone();
            if let Some(&other) = index.iter().find(|&&i| self.tensors[i].shape != shape) {
                return Err(Error::usage(
                    code::MERGE_MISMATCH,
                    format!(
                        "tensor '{}' is {:?} but '{}' is {:?}: the experts of {name} must have one shape",
                        self.tensors[other].name, self.tensors[other].shape, self.tensors[first].name, shape
                    ),
                ));
            }
            let [rows, cols] = shape[..] else {
                return Err(Error::usage(
                    code::MERGE_MISMATCH,
                    format!(
                        "tensor '{}' is {shape:?}: an expert's projection is 2-D",
                        self.tensors[first].name
                    ),
                ));
            };
            let per = index.len() as u64 / experts.max(1);
            let g = self.fused.len();
            for (k, &i) in index.iter().enumerate() {
                self.fused_of[i] = Some((g, k));
            }
            self.fused.push(Fused {
                name,
                shape: vec![experts, per * rows, cols],
                offsets: (0..index.len() as u64).map(|k| k * rows * cols).collect(),
                members: index,
                plan: Mutex::new(None),
            });
        }
        Ok(self)
    }

    /// The rows of the merged token-indexed tensors, when a tokenizer
    /// source laid them out (a folder's `vocab_size`).
    pub fn vocab_rows(&self) -> Option<u64> {
        self.vocab.as_ref().map(VocabPlan::rows)
    }

    /// The merged model's layer count when slices set it (a folder's
    /// `num_hidden_layers`), else None (the base's).
    pub fn layers(&self) -> Option<u64> {
        self.layers_out.as_ref().map(|o| o.len() as u64)
    }

    /// When slices renumber the layers: for each merged layer, the layer
    /// (of its slice's first source) it was made from, so per-layer
    /// settings of a config (`layer_types`) can follow the layers.
    pub fn layer_origins(&self) -> Option<&[u64]> {
        self.layers_out.as_deref()
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
        let out = &self.outs[index];
        if let Some((g, k)) = self.fused_of.get(index).copied().flatten() {
            return self.member_data(index, g, k);
        }
        let prec = out.prec;
        let n = info.shape.iter().product::<u64>();
        let params = self.params(&info.name, &info.shape, out)?;
        // Row-wise sparsifiers see whole rows in every chunk.
        let chunk = if self.config.method.sparsify() == Sparsify::Ranked {
            (CHUNK_ELEMENTS / params.row).max(1) * params.row
        } else {
            CHUNK_ELEMENTS
        };
        let mut rows = None;
        let mut open = || -> Result<Lockstep<'_>> {
            let inputs = match self.vocab.as_ref().filter(|_| out.permuted) {
                // Each input's rows gathered into the output vocabulary
                // (values in the merge's precision, as f32).
                Some(plan) => permuted(plan, &self.inputs, &out.parts, &info.shape, prec, &mut rows)?,
                None => self.read(&out.parts)?,
            };
            Lockstep::with_chunk(inputs, prec, n as usize, chunk)
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

impl MergedSource {
    /// Every input's data of one tensor (`parts`: input, tensor index).
    fn read(&self, parts: &[(usize, usize)]) -> Result<Vec<(TensorData<'_>, DType)>> {
        parts
            .iter()
            .map(|&(input, i)| {
                let source = &self.inputs[input];
                Ok((source.tensor_data(i)?, source.tensors()[i].dtype))
            })
            .collect()
    }

    /// The parameters of tensor `name` of `shape` in `out`'s group.
    fn params<'s>(&'s self, name: &'s str, shape: &[u64], out: &'s Out) -> Result<Params<'s>> {
        let n = shape.iter().product::<u64>();
        if self.config.method.sparsify() == Sparsify::Ranked && shape.len() > 2 {
            return Err(Error::unsupported(
                code::MERGE_CONFIG,
                format!(
                    "tensor '{name}' has {} dimensions: {} ranks 1-D and 2-D tensors only",
                    shape.len(),
                    self.config.method.name()
                ),
            ));
        }
        let row = match shape {
            [_, cols] => *cols as usize,
            _ => n as usize,
        }
        .max(1);
        Ok(Params {
            config: &self.config,
            name,
            t: out.t,
            models: &out.models,
            slice: out.slice,
            rank: shape.len(),
            row,
            last_dim: shape.last().copied().unwrap_or(1),
            columns: n / shape.first().copied().unwrap_or(1).max(1),
        })
    }

    /// Member `k` of fused group `g` (output tensor `index`): its own
    /// values, merged by the group's plan from where the member starts.
    fn member_data(&self, index: usize, g: usize, k: usize) -> Result<TensorData<'_>> {
        let group = &self.fused[g];
        let info = &self.tensors[index];
        let prec = self.outs[group.members[0]].prec;
        let plan = self.member_plan(group, k)?;
        let n = info.shape.iter().product::<u64>() as usize;
        Ok(TensorData::Chunks(Box::new(Merged {
            plan,
            pass: Lockstep::with_chunk(self.read(&self.outs[index].parts)?, prec, n, CHUNK_ELEMENTS)?,
            prec,
            at: group.offsets[k],
            dtype: info.dtype,
        })))
    }

    /// The plan member `k` of `group` starts with: the group's plan is made
    /// once (over every member as one tensor) and kept until every member
    /// has taken its copy.
    fn member_plan(&self, group: &Fused, k: usize) -> Result<Plan> {
        let lock = || group.plan.lock().unwrap_or_else(|e| e.into_inner());
        // Planned without the lock held: the passes run on rayon's pool,
        // where a thread waiting for its tasks may take up another member's
        // request, which would wait for this lock forever.
        let planned = lock().is_some();
        let made = match planned {
            true => None,
            false => Some(self.plan_group(group)?),
        };
        let mut slot = lock();
        if let (None, Some(made)) = (slot.as_ref(), made) {
            *slot = Some(made);
        }
        let Some(state) = slot.as_mut() else {
            // Every member was served in between: a member asked for again.
            drop(slot);
            return self.member_plan(group, k);
        };
        let plan = match &state.starts {
            Some(starts) => starts[k].clone(),
            None => state.plan.clone(),
        };
        state.served += 1;
        if state.served >= group.members.len() {
            *slot = None;
        }
        Ok(plan)
    }

    /// A fused group's plan, from passes over its members read one after
    /// the other as one tensor; where ties at a cut make a decision depend
    /// on the elements before it, one more pass finds the state at each
    /// member's start.
    fn plan_group(&self, group: &Fused) -> Result<FusedPlan> {
        let first = &self.outs[group.members[0]];
        let prec = first.prec;
        let n = group.shape.iter().product::<u64>();
        let params = self.params(&group.name, &group.shape, first)?;
        let mut open = || -> Result<Lockstep<'_>> {
            let inputs = (0..first.parts.len())
                .map(|j| {
                    group
                        .members
                        .iter()
                        .map(|&m| {
                            let (input, i) = self.outs[m].parts[j];
                            let source = &self.inputs[input];
                            Box::new(move || Ok((source.tensor_data(i)?, source.tensors()[i].dtype)))
                                as Open<'_>
                        })
                        .collect()
                })
                .collect();
            Lockstep::chained(inputs, prec, n as usize, CHUNK_ELEMENTS)
        };
        let plan = kernel::plan(self.config.method, &params, prec, n, self.seed, &mut open)?;
        let starts = if plan.order_free() {
            None
        } else {
            let mut starts = vec![plan.clone()];
            let mut walking = plan.clone();
            let mut pass = open()?;
            let (mut at, mut next) = (0u64, 1usize);
            // A chunk's part, copied only when a member starts inside it.
            let apply = |plan: &mut Plan, chunk: &[Vec<f32>], at: u64, from: u64, to: u64| {
                if from == 0 && to as usize == chunk[0].len() {
                    plan.apply(prec, at, chunk);
                } else {
                    let part: Vec<Vec<f32>> = chunk
                        .iter()
                        .map(|v| v[from as usize..to as usize].to_vec())
                        .collect();
                    plan.apply(prec, at + from, &part);
                }
            };
            while let Some(chunk) = pass.next_chunk() {
                let chunk = chunk?;
                let len = chunk[0].len() as u64;
                let mut from = 0u64;
                while next < group.offsets.len() && group.offsets[next] <= at + len {
                    let cut = group.offsets[next] - at;
                    if cut > from {
                        apply(&mut walking, &chunk, at, from, cut);
                    }
                    starts.push(walking.clone());
                    (from, next) = (cut, next + 1);
                }
                if len > from {
                    apply(&mut walking, &chunk, at, from, len);
                }
                at += len;
            }
            Some(starts)
        };
        Ok(FusedPlan {
            plan,
            starts,
            served: 0,
        })
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
