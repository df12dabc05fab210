//! The merge methods: mergekit 0.1.5's `merge_methods/*.py`, op for op.

use crate::config::{MergeConfig, Resolved};
use crate::numeric::{sign, Prec};
use crate::select;
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
    /// Breadcrumbs with TIES' sign election (`breadcrumbs_ties`).
    BreadcrumbsTies,
    /// Spherical interpolation per output row (`slerp`).
    Slerp,
    /// Interpolation toward the other model where the two are near (`nearswap`).
    Nearswap,
    /// One model's tensors, optionally scaled (`passthrough`).
    Passthrough,
}

/// How a task-arithmetic family method sparsifies each task vector.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sparsify {
    None,
    Magnitude,
    Random,
    Outliers,
}

const METHODS: &[(&str, Method)] = &[
    ("linear", Method::Linear),
    ("task_arithmetic", Method::TaskArithmetic),
    ("ties", Method::Ties),
    ("dare_linear", Method::DareLinear),
    ("dare_ties", Method::DareTies),
    ("breadcrumbs", Method::Breadcrumbs),
    ("breadcrumbs_ties", Method::BreadcrumbsTies),
    ("slerp", Method::Slerp),
    ("nearswap", Method::Nearswap),
    ("passthrough", Method::Passthrough),
];

/// mergekit's other methods: named, refused as not merged here yet.
const NOT_YET: &[&str] = &[
    "della",
    "della_linear",
    "nuslerp",
    "multislerp",
    "karcher",
    "model_stock",
    "sce",
    "arcee_fusion",
    "ram",
    "core_space",
];

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

    fn sparsify(self) -> Sparsify {
        match self {
            Method::Ties => Sparsify::Magnitude,
            Method::DareLinear | Method::DareTies => Sparsify::Random,
            Method::Breadcrumbs | Method::BreadcrumbsTies => Sparsify::Outliers,
            _ => Sparsify::None,
        }
    }

    fn elects_signs(self) -> bool {
        matches!(self, Method::Ties | Method::DareTies | Method::BreadcrumbsTies)
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
            _ => {
                let (normalize, rescale) = match self {
                    Method::Ties => (true, false),
                    Method::DareLinear | Method::DareTies => (false, true),
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
                p
            }
        }
    }

    /// Checks a configuration against the method: the inputs it needs, and
    /// every parameter named anywhere known to it.
    pub fn check(self, config: &MergeConfig) -> Result<()> {
        let bad = |d: String| Error::usage(code::MERGE_CONFIG, d);
        let known = self.parameters();
        let names = config
            .parameters
            .iter()
            .chain(config.models.iter().flat_map(|e| e.parameters.iter()))
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
        let inputs = config.inputs().len();
        match self {
            Method::Passthrough if inputs != 1 => {
                Err(bad(format!("passthrough takes one model, not {inputs}")))
            }
            Method::Slerp | Method::Nearswap if config.base_model.is_none() || inputs != 2 => Err(bad(
                format!("{} takes a base_model and one other model", self.name()),
            )),
            m if m.takes_base() && config.base_model.is_none() => {
                Err(bad(format!("{} needs a base_model", self.name())))
            }
            _ => Ok(()),
        }
    }
}

/// One tensor's inputs and what the method needs to know of it.
pub struct Group<'a> {
    /// The tensor's name (filters match it).
    pub name: &'a str,
    /// Its shape (rows are the first dimension).
    pub shape: &'a [u64],
    /// Layer position for gradients: 0 first layer, 1 last, 0 outside layers.
    pub t: f64,
    /// Every input's values, base first when there is one, as `f32`
    /// already rounded to `prec`.
    pub values: Vec<Vec<f32>>,
    /// The precision the method computes in.
    pub prec: Prec,
    /// The models, parallel to `values`.
    pub models: &'a [String],
    /// The seed of random masks.
    pub seed: u64,
}

impl Method {
    /// The merged values of one tensor (in `group.prec`, as `f32`).
    pub fn merge(self, config: &MergeConfig, group: Group<'_>) -> Result<Vec<f32>> {
        let p = Params {
            config,
            method: self,
            group: &group,
        };
        match self {
            Method::Linear => linear(&p),
            Method::Passthrough => {
                let scale = p.num("scale", Some(0))? as f32;
                let r = group.prec;
                Ok(group.values[0]
                    .iter()
                    .map(|&x| if scale == 1.0 { x } else { r.r(x * scale) })
                    .collect())
            }
            Method::Nearswap => nearswap(&p),
            Method::Slerp => slerp(&p),
            _ => task_arithmetic(&p),
        }
    }
}

/// Parameter lookup for one tensor.
struct Params<'a> {
    config: &'a MergeConfig,
    method: Method,
    group: &'a Group<'a>,
}

impl Params<'_> {
    fn get(&self, name: &str, input: Option<usize>) -> Result<Resolved> {
        let spec = self.method.parameters();
        let (_, _, default) = spec
            .iter()
            .find(|(k, _, _)| *k == name)
            .ok_or_else(|| Error::usage(code::INTERNAL, format!("no parameter {name}")))?;
        let model = input.map(|i| self.group.models[i].as_str());
        self.config
            .resolve(name, model, self.group.name, self.group.t)
            .or_else(|| default.clone())
            .ok_or_else(|| {
                Error::usage(
                    code::MERGE_CONFIG,
                    format!(
                        "missing required parameter '{name}' for {}{}",
                        model.map(|m| format!("{m}.")).unwrap_or_default(),
                        self.group.name
                    ),
                )
            })
    }

    fn num(&self, name: &str, input: Option<usize>) -> Result<f64> {
        match self.get(name, input)? {
            Resolved::Num(x) => Ok(x),
            Resolved::Bool(b) => Ok(f64::from(u8::from(b))),
        }
    }

    fn flag(&self, name: &str) -> Result<bool> {
        match self.get(name, None)? {
            Resolved::Bool(b) => Ok(b),
            Resolved::Num(x) => Ok(x != 0.0),
        }
    }
}

/// `linear`: coefficients as float32, `result.addcmul_(tensor, w)` from zero
/// in model order, divided by the float32 sum of the weights; computed in
/// float32 whatever the inputs, rounded to their dtype at the end.
fn linear(p: &Params) -> Result<Vec<f32>> {
    let g = p.group;
    let weights: Vec<f32> = (0..g.values.len())
        .map(|i| p.num("weight", Some(i)).map(|w| w as f32))
        .collect::<Result<_>>()?;
    let normalize = p.flag("normalize")?;
    let denominator = weights.iter().fold(0.0f32, |a, &w| a + w);
    let n = g.values[0].len();
    let mut out = vec![0.0f32; n];
    for (x, &w) in g.values.iter().zip(&weights) {
        for (o, &v) in out.iter_mut().zip(x) {
            // torch's addcmul_ kernel is one fused multiply-add.
            *o = v.mul_add(w, *o);
        }
    }
    if normalize {
        for o in &mut out {
            *o /= denominator;
        }
    }
    Ok(out.into_iter().map(|x| g.prec.r(x)).collect())
}

/// The task-arithmetic family (`generalized_task_arithmetic.py`): task
/// vectors against the base, sparsified, weighted, optionally sign-elected,
/// summed, normalized, scaled by lambda, added to the base; every op in the
/// inputs' dtype.
fn task_arithmetic(p: &Params) -> Result<Vec<f32>> {
    let g = p.group;
    let r = |x: f32| g.prec.r(x);
    let base = &g.values[0];
    let others = 1..g.values.len();
    if others.is_empty() {
        return Ok(base.clone());
    }
    let rescale = p.flag("rescale")?;
    let mut deltas: Vec<Vec<f32>> = Vec::with_capacity(others.len());
    let mut weights: Vec<f32> = Vec::with_capacity(others.len());
    for i in others {
        let mut delta: Vec<f32> = g.values[i].iter().zip(base).map(|(&x, &b)| r(x - b)).collect();
        let density = p.num("density", Some(i))?;
        let keep = match p.method.sparsify() {
            Sparsify::None => None,
            Sparsify::Magnitude => Some(select::magnitude(&delta, density)),
            Sparsify::Outliers => Some(select::outliers(&delta, density, p.num("gamma", Some(i))?)),
            Sparsify::Random => Some(select::random(
                delta.len(),
                density,
                g.seed,
                select::name_key(g.name) ^ select::splitmix(i as u64),
            )),
        };
        if let Some(keep) = keep {
            apply_mask(&mut delta, &keep, rescale, g.prec);
        }
        let w = r(p.num("weight", Some(i))? as f32);
        for d in &mut delta {
            *d = r(*d * w);
        }
        deltas.push(delta);
        weights.push(w);
    }
    let n = base.len();
    let mut mixed = vec![0.0f32; n];
    let mut divisor = vec![0.0f32; n];
    if p.method.elects_signs() {
        for e in 0..n {
            // Sign election by sum: the sum's sign, zero counting as +.
            let total = deltas.iter().fold(0.0f32, |a, d| a + d[e]);
            let majority = if total >= 0.0 { 1.0 } else { -1.0 };
            let (mut m, mut w) = (0.0f32, 0.0f32);
            for (d, &wt) in deltas.iter().zip(&weights) {
                let agree = sign(d[e]) == majority;
                m += if agree { d[e] } else { d[e] * 0.0 };
                w += if agree { wt } else { 0.0 };
            }
            mixed[e] = r(m);
            let w = r(w);
            divisor[e] = if w == 0.0 { 1.0 } else { w };
        }
    } else {
        let w = r(weights.iter().fold(0.0f32, |a, &w| a + w));
        let w = if w.abs() < 1e-8 { 1.0 } else { w };
        for e in 0..n {
            mixed[e] = r(deltas.iter().fold(0.0f32, |a, d| a + d[e]));
            divisor[e] = w;
        }
    }
    if p.flag("normalize")? {
        for (m, d) in mixed.iter_mut().zip(&divisor) {
            *m = r(*m / d);
        }
    }
    let lambda = p.num("lambda", None)?;
    if lambda != 1.0 {
        let l = lambda as f32;
        for m in &mut mixed {
            *m = r(*m * l);
        }
    }
    Ok(base.iter().zip(&mixed).map(|(&b, &m)| r(b + m)).collect())
}

/// `tensor * mask`, rescaled to the L1 norm it had when asked
/// (`rescaled_masked_tensor`: unless either norm is below 1e-7).
fn apply_mask(delta: &mut [f32], keep: &[bool], rescale: bool, prec: Prec) {
    let before: f64 = delta.iter().map(|&d| f64::from(d.abs())).sum();
    for (d, &k) in delta.iter_mut().zip(keep) {
        if !k {
            *d *= 0.0;
        }
    }
    if !rescale {
        return;
    }
    let after: f64 = delta.iter().map(|&d| f64::from(d.abs())).sum();
    let (before, after) = (prec.r(before as f32), prec.r(after as f32));
    if before < 1e-7 || after < 1e-7 {
        return;
    }
    let scale = prec.r(before / after);
    for d in delta.iter_mut() {
        *d = prec.r(*d * scale);
    }
}

/// `nearswap`: `w = clamp(t / max(|a - b|, 1e-6), 0, 1)` (the division
/// taken as a reciprocal times `t`, as torch does it), then
/// `w * b + (1 - w) * a`, every op rounded to the inputs' dtype.
fn nearswap(p: &Params) -> Result<Vec<f32>> {
    let g = p.group;
    let r = |x: f32| g.prec.r(x);
    let t = p.num("t", None)? as f32;
    let floor = r(1e-6);
    Ok(g.values[0]
        .iter()
        .zip(&g.values[1])
        .map(|(&a, &b)| {
            let diff = r((a - b).abs()).max(floor);
            // Python's `t / tensor` is torch's `tensor.reciprocal() * t`.
            let w = r(r(1.0 / diff) * t).clamp(0.0, 1.0);
            r(r(w * b) + r(r(1.0 - w) * a))
        })
        .collect())
}

/// `slerp` over the whole tensor (mergekit batches same-shaped tensors and
/// interpolates each tensor of the batch as one vector): both normalized,
/// the angle between them, then `sin((1-t)θ)/sin θ · a + sin(tθ)/sin θ · b`,
/// or linear interpolation where they are nearly collinear
/// (|cos θ| > 0.9995). Norms and the dot product are taken in double
/// precision (mergekit sums float32 chunks); the result is rounded to
/// float32, then to the inputs' dtype.
fn slerp(p: &Params) -> Result<Vec<f32>> {
    let g = p.group;
    let t = f64::from(p.num("t", None)? as f32);
    let (a, b) = (&g.values[0], &g.values[1]);
    let len = a.len();
    let mut out = Vec::with_capacity(a.len());
    if len == 0 {
        return Ok(Vec::new());
    }
    for (x, y) in a.chunks(len).zip(b.chunks(len)) {
        let norm = |v: &[f32]| v.iter().map(|&e| f64::from(e) * f64::from(e)).sum::<f64>().sqrt();
        let (na, nb) = (norm(x), norm(y));
        let na = if na > 1e-8 { na } else { 1.0 };
        let nb = if nb > 1e-8 { nb } else { 1.0 };
        let dot: f64 = x
            .iter()
            .zip(y)
            .map(|(&u, &v)| (f64::from(u) / na) * (f64::from(v) / nb))
            .sum::<f64>()
            .clamp(-1.0, 1.0);
        let (ca, cb) = if dot.abs() > 0.9995 {
            (1.0 - t, t)
        } else {
            let theta = dot.acos();
            let s = theta.sin();
            (((1.0 - t) * theta).sin() / s, (t * theta).sin() / s)
        };
        // The coefficients are float32 in mergekit, and so is
        // `coef_a * x + coef_b * y`: two products and a sum, each rounded.
        let (ca, cb) = (ca as f32, cb as f32);
        out.extend(x.iter().zip(y).map(|(&u, &v)| g.prec.r(ca * u + cb * v)));
    }
    Ok(out)
}
