//! The merge methods: mergekit 0.1.5's `merge_methods/*.py`, op for op.

use crate::config::{MergeConfig, Resolved};
use tensorcast_core::{code, Error, Result};

/// A merge method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Weighted average (`linear`).
    Linear,
    /// Base plus the weighted sum of task vectors (`task_arithmetic`).
    TaskArithmetic,
    /// Task vectors pruned by magnitude, signs elected (`ties`).
    Ties,
    /// Task vectors dropped at random and rescaled (`dare_linear`).
    DareLinear,
    /// DARE with TIES' sign election (`dare_ties`).
    DareTies,
    /// Task vectors without their largest and smallest entries (`breadcrumbs`).
    Breadcrumbs,
    /// Task vectors dropped at random, the larger in a row less likely,
    /// rescaled, signs elected (`della`).
    Della,
    /// DELLA without the sign election (`della_linear`).
    DellaLinear,
    /// Breadcrumbs with TIES' sign election (`breadcrumbs_ties`).
    BreadcrumbsTies,
    /// Spherical interpolation per output row (`slerp`).
    Slerp,
    /// Interpolation toward the other model where the two are near (`nearswap`).
    Nearswap,
    /// One model's tensors, optionally scaled (`passthrough`).
    Passthrough,
    /// The base moved toward the fine-tunes' average by their agreement
    /// (`model_stock`).
    ModelStock,
    /// Task vectors selected by variance across models, weighted by their
    /// energy, sign-elected (`sce`).
    Sce,
    /// Barycentric interpolation on the hypersphere (`multislerp`).
    Multislerp,
    /// SLERP of two models (or task vectors) by their weights (`nuslerp`).
    Nuslerp,
    /// The weighted Karcher (Riemannian) mean on the unit hypersphere,
    /// scaled by the models' mean norm (`karcher`).
    Karcher,
}

/// How a task-arithmetic family method sparsifies each task vector.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sparsify {
    None,
    Magnitude,
    Random,
    Outliers,
    /// DELLA's magnitude-ranked drop probabilities, per row.
    Ranked,
}

const METHODS: &[(&str, Method)] = &[
    ("linear", Method::Linear),
    ("task_arithmetic", Method::TaskArithmetic),
    ("ties", Method::Ties),
    ("dare_linear", Method::DareLinear),
    ("dare_ties", Method::DareTies),
    ("breadcrumbs", Method::Breadcrumbs),
    ("breadcrumbs_ties", Method::BreadcrumbsTies),
    ("della", Method::Della),
    ("della_linear", Method::DellaLinear),
    ("slerp", Method::Slerp),
    ("nearswap", Method::Nearswap),
    ("passthrough", Method::Passthrough),
    ("model_stock", Method::ModelStock),
    ("sce", Method::Sce),
    ("multislerp", Method::Multislerp),
    ("nuslerp", Method::Nuslerp),
    ("karcher", Method::Karcher),
];

/// mergekit's other methods: named, refused as not merged here yet.
const NOT_YET: &[&str] = &["arcee_fusion", "ram", "core_space"];

/// What a parameter applies to, as mergekit's `ParameterScope`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// One value per tensor, from the global parameters.
    Shared,
    /// One value per input, base included.
    Input,
    /// One value per input other than the base.
    NonBase,
}

impl Method {
    /// The method mergekit calls `name`.
    pub fn named(name: &str) -> Result<Method> {
        if let Some((_, m)) = METHODS.iter().find(|(n, _)| *n == name) {
            return Ok(*m);
        }
        if NOT_YET.contains(&name) {
            return Err(Error::unsupported(
                code::MERGE_CONFIG,
                format!("merge_method '{name}' is mergekit's but not merged by tensorcast yet"),
            ));
        }
        let known: Vec<&str> = METHODS.iter().map(|(n, _)| *n).collect();
        Err(Error::usage(
            code::MERGE_CONFIG,
            format!(
                "unknown merge_method '{name}' (tensorcast merges: {})",
                known.join(", ")
            ),
        ))
    }

    /// mergekit's name.
    pub fn name(self) -> &'static str {
        METHODS.iter().find(|(_, m)| *m == self).map_or("?", |(n, _)| n)
    }

    /// Whether the method takes task vectors from (or interpolates from) a base model.
    pub fn takes_base(self) -> bool {
        !matches!(self, Method::Linear | Method::Passthrough)
    }

    /// Whether the method can do without a base (it takes one if given).
    fn base_optional(self) -> bool {
        matches!(self, Method::Multislerp | Method::Nuslerp | Method::Karcher)
    }

    pub(crate) fn sparsify(self) -> Sparsify {
        match self {
            Method::Ties => Sparsify::Magnitude,
            Method::DareLinear | Method::DareTies => Sparsify::Random,
            Method::Breadcrumbs | Method::BreadcrumbsTies => Sparsify::Outliers,
            Method::Della | Method::DellaLinear => Sparsify::Ranked,
            _ => Sparsify::None,
        }
    }

    pub(crate) fn elects_signs(self) -> bool {
        matches!(
            self,
            Method::Ties | Method::DareTies | Method::BreadcrumbsTies | Method::Della
        )
    }

    /// The parameters the method takes, their scope and default.
    fn parameters(self) -> Vec<(&'static str, Scope, Option<Resolved>)> {
        use Resolved::{Bool, Num};
        match self {
            Method::Linear => vec![
                ("weight", Scope::Input, None),
                ("normalize", Scope::Shared, Some(Bool(true))),
            ],
            Method::Slerp | Method::Nearswap => vec![("t", Scope::Shared, None)],
            Method::Passthrough => vec![("scale", Scope::Input, Some(Num(1.0)))],
            Method::ModelStock => vec![("filter_wise", Scope::Shared, Some(Bool(false)))],
            Method::Multislerp => vec![
                ("weight", Scope::NonBase, None),
                ("normalize_weights", Scope::Shared, Some(Bool(true))),
                ("eps", Scope::Shared, Some(Num(1e-8))),
            ],
            Method::Nuslerp => vec![
                ("weight", Scope::NonBase, None),
                ("nuslerp_row_wise", Scope::Shared, Some(Bool(false))),
                ("nuslerp_flatten", Scope::Shared, Some(Bool(true))),
            ],
            Method::Karcher => vec![
                ("max_iter", Scope::Shared, Some(Num(10.0))),
                ("tol", Scope::Shared, Some(Num(1e-5))),
            ],
            Method::Sce => vec![
                ("int8_mask", Scope::Shared, Some(Bool(false))),
                ("select_topk", Scope::Shared, Some(Num(1.0))),
            ],
            _ => {
                let (normalize, rescale) = match self {
                    Method::Ties => (true, false),
                    Method::DareLinear | Method::DareTies | Method::DellaLinear => (false, true),
                    Method::Della => (true, true),
                    _ => (false, false),
                };
                let mut p = vec![
                    ("int8_mask", Scope::Shared, Some(Bool(false))),
                    ("normalize", Scope::Shared, Some(Bool(normalize))),
                    ("rescale", Scope::Shared, Some(Bool(rescale))),
                    ("lambda", Scope::Shared, Some(Num(1.0))),
                    ("weight", Scope::NonBase, None),
                    ("density", Scope::NonBase, Some(Num(1.0))),
                ];
                if self.sparsify() == Sparsify::Outliers {
                    p.push(("gamma", Scope::NonBase, Some(Num(0.01))));
                }
                if self.sparsify() == Sparsify::Ranked {
                    p.push(("epsilon", Scope::NonBase, Some(Num(0.15))));
                }
                p
            }
        }
    }

    /// Checks a configuration against the method: the inputs it needs, and
    /// every parameter named anywhere known to it.
    pub fn check(self, config: &MergeConfig) -> Result<()> {
        let bad = |d: String| Error::usage(code::MERGE_CONFIG, d);
        let known = self.parameters();
        let sliced = config.slices.iter().flat_map(|s| {
            s.parameters
                .iter()
                .chain(s.sources.iter().flat_map(|x| x.parameters.iter()))
        });
        let names = config
            .parameters
            .iter()
            .chain(&config.module_parameters)
            .chain(config.models.iter().flat_map(|e| e.parameters.iter()))
            .chain(sliced)
            .map(|(k, _)| k);
        for name in names {
            if !known.iter().any(|(k, _, _)| k == name) {
                let list: Vec<&str> = known.iter().map(|(k, _, _)| *k).collect();
                return Err(bad(format!(
                    "{} takes no parameter '{name}' (it takes: {})",
                    self.name(),
                    list.join(", ")
                )));
            }
        }
        // Each group's model count, and whether it has a base.
        let groups: Vec<(usize, bool)> = if config.slices.is_empty() {
            vec![(config.inputs().len(), config.base_model.is_some())]
        } else {
            (0..config.slices.len())
                .map(|i| (config.group(Some(i)).len(), config.base_of(Some(i)).is_some()))
                .collect()
        };
        if self.takes_base() {
            for (i, s) in config.slices.iter().enumerate() {
                if let Some(base) = config.base_of(Some(i)) {
                    if s.sources.iter().all(|x| &x.model != base) {
                        return Err(bad(format!(
                            "{} takes its base_model ({base}) from each slice's sources, and slice {i} has it not (mergekit: the base input is not present)",
                            self.name()
                        )));
                    }
                }
            }
        }
        for (inputs, has_base) in groups {
            match self {
                Method::Passthrough if inputs != 1 => {
                    return Err(bad(format!(
                        "passthrough takes one model (per slice), not {inputs}"
                    )))
                }
                Method::Nuslerp if inputs - usize::from(has_base) != 2 => {
                    return Err(bad(format!(
                        "nuslerp takes two models (and an optional base_model), not {inputs} models"
                    )))
                }
                Method::ModelStock if inputs < 3 => {
                    return Err(bad(format!(
                        "model_stock takes a base_model and two or more other models, not {inputs} models"
                    )))
                }
                Method::Slerp | Method::Nearswap if !has_base || inputs != 2 => {
                    return Err(bad(format!(
                        "{} takes a base_model and one other model",
                        self.name()
                    )))
                }
                m if m.takes_base() && !m.base_optional() && !has_base => {
                    return Err(bad(format!("{} needs a base_model", self.name())))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Parameter lookup for one tensor of a merge.
pub(crate) struct Params<'a> {
    pub(crate) config: &'a MergeConfig,
    /// The tensor's name (filters match it).
    pub(crate) name: &'a str,
    /// Layer position for gradients: 0 first layer, 1 last, 0 outside layers.
    pub(crate) t: f64,
    /// The models, in input order.
    pub(crate) models: &'a [String],
    /// The slice the tensor is in, if the merge has slices.
    pub(crate) slice: Option<usize>,
    /// The tensor's rank and last dimension (model_stock's rows).
    pub(crate) rank: usize,
    pub(crate) last_dim: u64,
    /// Elements per index of the first dimension (nuslerp's row-wise
    /// vectors run along the first dimension, one per such element).
    pub(crate) columns: u64,
    /// Elements per row for row-wise sparsifiers (DELLA): a 2-D tensor's
    /// last dimension, else the whole tensor; chunks hold whole rows.
    pub(crate) row: usize,
}

impl Params<'_> {
    fn get(&self, name: &str, input: Option<usize>) -> Result<Resolved> {
        let method = self.config.method;
        let spec = method.parameters();
        let (_, _, default) = spec
            .iter()
            .find(|(k, _, _)| *k == name)
            .ok_or_else(|| Error::usage(code::INTERNAL, format!("no parameter {name}")))?;
        let model = input.map(|i| self.models[i].as_str());
        self.config
            .resolve(name, model, self.slice, self.name, self.t)
            .or_else(|| default.clone())
            .ok_or_else(|| {
                Error::usage(
                    code::MERGE_CONFIG,
                    format!(
                        "missing required parameter '{name}' for {}{}",
                        model.map(|m| format!("{m}.")).unwrap_or_default(),
                        self.name
                    ),
                )
            })
    }

    /// A number: the input's own (`Some(i)`) or the shared one.
    pub(crate) fn num(&self, name: &str, input: Option<usize>) -> Result<f64> {
        match self.get(name, input)? {
            Resolved::Num(x) => Ok(x),
            Resolved::Bool(b) => Ok(f64::from(u8::from(b))),
        }
    }

    /// A shared flag.
    pub(crate) fn flag(&self, name: &str) -> Result<bool> {
        match self.get(name, None)? {
            Resolved::Bool(b) => Ok(b),
            Resolved::Num(x) => Ok(x != 0.0),
        }
    }
}
