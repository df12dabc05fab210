//! One tensor's merge, planned then applied a chunk at a time: mergekit
//! 0.1.5's arithmetic (`merge_methods/*.py`) op for op, in the dtype it
//! computes in. What needs the whole tensor (a sparsifier's cut, a rescale's
//! norms, slerp's angle) is gathered in streaming passes first, so no step
//! holds more than a chunk of each input.

use crate::method::{Method, Params, Sparsify};
use crate::numeric::{sign, Prec};
use crate::select::{self, Finder, Keeper, Ranks};
use crate::stream::Lockstep;
use crate::torch_sum::{self, CascadeSum};
use rayon::prelude::*;
use tensorcast_core::Result;

/// Elements per parallel part of a chunk.
const PART: usize = 1 << 16;

/// What a task vector keeps.
#[derive(Clone)]
pub(crate) enum Mask {
    All,
    Nothing,
    Cut(Keeper),
    Random {
        density: f64,
        seed: u64,
        stream: u64,
    },
    /// DELLA: decided a chunk of whole rows at a time ([`Mask::prepare`]).
    Ranked(Box<Ranked>),
}

/// DELLA's drop (mergekit's `della_magprune`): in each row (a 2-D tensor's
/// rows; a 1-D tensor is one row), element of ascending magnitude rank `r`
/// of `m` is kept with probability `density - epsilon + 2 epsilon (r-1)/(m-1)`
/// (ranks and probabilities in the merge's dtype, as mergekit computes them
/// in bf16 for bf16 inputs, else in float32; ties by index), drawn from the
/// counter-based generator.
#[derive(Clone)]
pub(crate) struct Ranked {
    density: f64,
    epsilon: f64,
    seed: u64,
    stream: u64,
    row: usize,
    /// The decisions for elements `at..at + kept.len()`.
    at: u64,
    kept: std::sync::Arc<Vec<bool>>,
}

impl Ranked {
    fn decide(&mut self, prec: Prec, at: u64, deltas: &[f32]) {
        let r = |x: f32| prec.r(x);
        let m = self.row.max(1);
        let mut kept = vec![false; deltas.len()];
        let low = (self.density - self.epsilon) as f32;
        let (min, max) = (r(1.0), r(m as f32));
        for (r0, row) in deltas.chunks(m).enumerate() {
            let mut order: Vec<(u32, usize)> = row
                .iter()
                .enumerate()
                .map(|(i, d)| (select::key(*d), i))
                .collect();
            order.sort_unstable();
            for (rank0, &(_, i)) in order.iter().enumerate() {
                let rank = r((rank0 + 1) as f32);
                let norm = r(r(rank - min) / r(max - min)).clamp(0.0, 1.0);
                let norm = if norm.is_nan() { 0.0 } else { norm };
                let p = r(low + r(r(norm * 2.0) * self.epsilon as f32));
                let e = r0 * m + i;
                kept[e] = select::random_at(at + e as u64, f64::from(p), self.seed, self.stream);
            }
        }
        self.at = at;
        self.kept = std::sync::Arc::new(kept);
    }
}

impl Mask {
    /// Whether element `i`, of task-vector value `d`, is kept (called in
    /// index order).
    fn keep(&mut self, i: u64, d: f32) -> bool {
        match self {
            Mask::All => true,
            Mask::Nothing => false,
            Mask::Cut(k) => k.keep(select::key(d)),
            Mask::Random {
                density,
                seed,
                stream,
            } => select::random_at(i, *density, *seed, *stream),
            Mask::Ranked(r) => r.kept.get((i - r.at) as usize).copied().unwrap_or(false),
        }
    }

    /// Whether each decision depends only on the element's value and
    /// index, not on the elements before it (a cut that splits a run of
    /// equal magnitudes keeps the first of them in index order).
    fn order_free(&self) -> bool {
        match self {
            Mask::Cut(k) => k.order_free(),
            _ => true,
        }
    }

    /// Before a chunk (of whole rows) starting at element `at`: the
    /// decisions that need the chunk's task-vector values.
    fn prepare(&mut self, prec: Prec, at: u64, deltas: &[f32]) {
        if let Mask::Ranked(r) = self {
            r.decide(prec, at, deltas);
        }
    }
}

/// The task-arithmetic family's resolved state.
#[derive(Clone)]
pub(crate) struct Tasks {
    /// Per non-base input: weight (in the merge's dtype), mask, rescale.
    weights: Vec<f32>,
    masks: Vec<Mask>,
    scales: Vec<Option<f32>>,
    elect: bool,
    /// Without the sign election: the divisor, the weights' sum (1 near 0).
    total: f32,
    normalize: bool,
    lambda: Option<f32>,
}

/// One tensor's merge, ready to apply chunk by chunk.
#[derive(Clone)]
pub(crate) enum Plan {
    Linear {
        weights: Vec<f32>,
        normalize: bool,
    },
    Scale(f32),
    Nearswap(f32),
    Slerp {
        ca: f32,
        cb: f32,
    },
    /// model_stock: per row (one row unless filter-wise), the factor `t`.
    Stock {
        t: Vec<f32>,
        row: usize,
    },
    /// sce: the variance selection and each task vector's weight.
    Sce {
        keep: Mask,
        weights: Vec<f32>,
    },
    /// multislerp: `base + coefficient_j * task vector j` summed (the
    /// result is a multiple of the weighted mean of the unit task vectors).
    Combine {
        coefficients: Vec<f32>,
        base: bool,
    },
    /// nuslerp: per vector group `g(e)` (the whole tensor, its rows or its
    /// columns), `base + ca[g] v0 + cb[g] v1`.
    Pairwise {
        group: Grouping,
        ca: Vec<f64>,
        cb: Vec<f64>,
        base: bool,
    },
    Tasks(Box<Tasks>),
}

/// Plans tensor `p.name` (`n` elements) for `method`; `open` starts a
/// fresh pass over every input's values.
pub(crate) fn plan<'a>(
    method: Method,
    p: &Params,
    prec: Prec,
    n: u64,
    seed: u64,
    open: &mut dyn FnMut() -> Result<Lockstep<'a>>,
) -> Result<Plan> {
    Ok(match method {
        Method::Linear => Plan::Linear {
            weights: (0..p.models.len())
                .map(|i| p.num("weight", Some(i)).map(|w| w as f32))
                .collect::<Result<_>>()?,
            normalize: p.flag("normalize")?,
        },
        Method::Passthrough => Plan::Scale(p.num("scale", Some(0))? as f32),
        Method::Nearswap => Plan::Nearswap(p.num("t", None)? as f32),
        Method::Slerp => slerp_plan(f64::from(p.num("t", None)? as f32), open)?,
        Method::ModelStock => stock_plan(p, prec, n, open)?,
        Method::Sce => sce_plan(p, prec, n, open)?,
        Method::Multislerp => multislerp_plan(p, open)?,
        Method::Nuslerp => nuslerp_plan(p, n, open)?,
        Method::Karcher => karcher_plan(p, open)?,
        _ => Plan::Tasks(Box::new(tasks_plan(method, p, prec, n, seed, open)?)),
    })
}

/// `slerp` over the whole tensor (mergekit batches same-shaped tensors and
/// interpolates each tensor of a batch as one vector): the angle between
/// the two, from their norms and dot product (double precision here, summed
/// float32 chunks in mergekit), then float32 coefficients
/// `sin((1-t)θ)/sin θ` and `sin(tθ)/sin θ`, or `1-t` and `t` where the two
/// are nearly collinear (|cos θ| > 0.9995).
fn slerp_plan<'a>(t: f64, open: &mut dyn FnMut() -> Result<Lockstep<'a>>) -> Result<Plan> {
    let (mut aa, mut bb, mut ab) = (0.0f64, 0.0f64, 0.0f64);
    let mut pass = open()?;
    while let Some(chunk) = pass.next_chunk() {
        let chunk = chunk?;
        for (&x, &y) in chunk[0].iter().zip(&chunk[1]) {
            let (x, y) = (f64::from(x), f64::from(y));
            aa += x * x;
            bb += y * y;
            ab += x * y;
        }
    }
    let na = if aa.sqrt() > 1e-8 { aa.sqrt() } else { 1.0 };
    let nb = if bb.sqrt() > 1e-8 { bb.sqrt() } else { 1.0 };
    let dot = (ab / (na * nb)).clamp(-1.0, 1.0);
    let (ca, cb) = if dot.abs() > 0.9995 {
        (1.0 - t, t)
    } else {
        let theta = dot.acos();
        let s = theta.sin();
        (((1.0 - t) * theta).sin() / s, (t * theta).sin() / s)
    };
    Ok(Plan::Slerp {
        ca: ca as f32,
        cb: cb as f32,
    })
}

/// `model_stock` (arXiv 2403.19522, mergekit's `model_stock.py`): the
/// cosines between every pair of task vectors (over the whole tensor, or
/// per row of its last dimension when `filter_wise`), their mean `c`, and
/// `t = k c / (1 + (k - 1) c)` for `k` fine-tunes (0 where the denominator
/// is within 1e-6 of 0). Norms and dot products are summed in double
/// precision, then every scalar step rounded to the merge's dtype as torch
/// computes them on tensors of that dtype.
fn stock_plan<'a>(
    p: &Params,
    prec: Prec,
    n: u64,
    open: &mut dyn FnMut() -> Result<Lockstep<'a>>,
) -> Result<Plan> {
    let r = |x: f64| f64::from(prec.r(x as f32));
    let row = if p.flag("filter_wise")? && p.last_dim > 0 && p.rank > 1 {
        p.last_dim as usize
    } else {
        n.max(1) as usize
    };
    let rows = (n as usize).div_ceil(row).max(1);
    let k = p.models.len() - 1;
    let pairs: Vec<(usize, usize)> = (0..k).flat_map(|a| (a + 1..k).map(move |b| (a, b))).collect();
    // Per row: each task vector's squared norm, each pair's dot product.
    let mut norms = vec![vec![0.0f64; k]; rows];
    let mut dots = vec![vec![0.0f64; pairs.len()]; rows];
    let mut pass = open()?;
    let mut at = 0usize;
    while let Some(chunk) = pass.next_chunk() {
        let chunk = chunk?;
        for e in 0..chunk[0].len() {
            let i = (at + e) / row;
            let d: Vec<f32> = (1..=k).map(|j| delta(prec, &chunk, j, e)).collect();
            for (j, x) in d.iter().enumerate() {
                norms[i][j] += f64::from(*x) * f64::from(*x);
            }
            for (q, &(a, b)) in pairs.iter().enumerate() {
                dots[i][q] += f64::from(prec.r(d[a] * d[b]));
            }
        }
        at += chunk[0].len();
    }
    let count = k as f64;
    let t = norms
        .iter()
        .zip(&dots)
        .map(|(norm, dot)| {
            let norm: Vec<f64> = norm.iter().map(|s| r(s.sqrt())).collect();
            let cos: f64 = pairs
                .iter()
                .zip(dot)
                .map(|(&(a, b), &d)| (r(d) / r(norm[a] * norm[b]).max(r(1e-6))).clamp(-1.0, 1.0))
                .map(r)
                .sum::<f64>();
            let cos = r(cos / pairs.len().max(1) as f64);
            let denominator = r(1.0 + r((count - 1.0) * cos));
            if denominator.abs() < 1e-6 {
                0.0
            } else {
                prec.r((r(count * cos) / denominator) as f32)
            }
        })
        .collect();
    Ok(Plan::Stock { t, row })
}

/// `sce` (arXiv 2408.07990, mergekit's `sce.py`): with `select_topk < 1`,
/// only elements among the `int(nonzero * select_topk)` largest variances
/// across the task vectors (see [`variance`]; ties at the cut by index)
/// keep their task vectors; each task vector is weighted by its mean
/// square (a whole-tensor sum in torch's order, [`CascadeSum`]) over their
/// sum, `1/k` each when that sum is under 1e-6.
fn sce_plan<'a>(
    p: &Params,
    prec: Prec,
    n: u64,
    open: &mut dyn FnMut() -> Result<Lockstep<'a>>,
) -> Result<Plan> {
    let topk = p.num("select_topk", None)?;
    let k = p.models.len() - 1;
    let var = |chunk: &[Vec<f32>], e: usize| variance(prec, chunk, k, e);
    let mut keep = Mask::All;
    if topk <= 0.0 {
        keep = Mask::Nothing;
    } else if topk < 1.0 {
        // Pass 1: the nonzero variances, and the high bits of every one.
        let mut high = Finder::new(Ranks { lo: 0, hi: 1 });
        let mut nonzero = 0u64;
        let mut pass = open()?;
        while let Some(chunk) = pass.next_chunk() {
            let chunk = chunk?;
            for e in 0..chunk[0].len() {
                let v = var(&chunk, e);
                nonzero += u64::from(v != 0.0);
                high.count_high(select::key(v));
            }
        }
        let take = (nonzero as f64 * topk) as u64;
        if take == 0 {
            keep = Mask::Nothing;
        } else {
            let mut f = high.with_ranks(Ranks { lo: n - take, hi: n });
            let mut pass = open()?;
            while let Some(chunk) = pass.next_chunk() {
                let chunk = chunk?;
                for e in 0..chunk[0].len() {
                    f.count_low(select::key(var(&chunk, e)));
                }
            }
            keep = Mask::Cut(f.keeper(true));
        }
    }
    // The weights: each task vector's mean square (dropped elements count
    // as zeros), summed in torch's order, over their sum.
    let mut squares: Vec<CascadeSum> = (0..k).map(|_| CascadeSum::new(n)).collect();
    let mut mask = keep.clone();
    let mut pass = open()?;
    let mut at = 0u64;
    while let Some(chunk) = pass.next_chunk() {
        let chunk = chunk?;
        for e in 0..chunk[0].len() {
            let kept = match &mut mask {
                Mask::Cut(keeper) => keeper.keep(select::key(var(&chunk, e))),
                m => m.keep(at + e as u64, 0.0),
            };
            for (j, sq) in squares.iter_mut().enumerate() {
                let d = if kept { delta(prec, &chunk, j + 1, e) } else { 0.0 };
                sq.push(prec.r(d * d));
            }
        }
        at += chunk[0].len() as u64;
    }
    let means: Vec<f32> = squares
        .into_iter()
        .map(|s| prec.r(s.finish() / n.max(1) as f32))
        .collect();
    let total = prec.r(torch_sum::sum(&means));
    let weights = if f64::from(total).abs() < 1e-6 {
        vec![prec.r(1.0 / k as f32); k]
    } else {
        means.iter().map(|&m| prec.r(m / total)).collect()
    };
    Ok(Plan::Sce { keep, weights })
}

/// `multislerp` (mergekit's `multislerp.py`): the task vectors (against the
/// base when there is one, else the models themselves) projected to the unit
/// sphere, their weighted mean `m` (norm `M`), the tangent space at `m̂`, and
/// back. The whole of it is a multiple of `m`: with `D = Σ w_j (u_j · m̂)`
/// the tangent result is `m (1 - D/M)` of norm `|M - D|`, so
/// `result = m (cos τ / M + (1 - D/M) sin τ / τ) · Σ w_j |v_j|`, `τ = |M - D| + eps`.
/// One pass gathers the Gram matrix of the task vectors (double precision);
/// the output is then a weighted sum per element.
fn multislerp_plan<'a>(p: &Params, open: &mut dyn FnMut() -> Result<Lockstep<'a>>) -> Result<Plan> {
    let base = p.config.base_of(p.slice).is_some();
    let first = usize::from(base);
    let k = p.models.len() - first;
    let mut weights: Vec<f64> = (first..p.models.len())
        .map(|j| p.num("weight", Some(j)))
        .collect::<Result<_>>()?;
    if k == 1 {
        // One model: its own tensor (mergekit returns it before subtracting).
        let mut coefficients = vec![0.0; p.models.len()];
        coefficients[first] = 1.0;
        return Ok(Plan::Combine {
            coefficients,
            base: false,
        });
    }
    if p.flag("normalize_weights")? {
        let total: f64 = weights.iter().sum();
        weights.iter_mut().for_each(|w| *w /= total);
    }
    let eps = p.num("eps", None)?;
    let mut gram = vec![vec![0.0f64; k]; k];
    let mut pass = open()?;
    while let Some(chunk) = pass.next_chunk() {
        let chunk = chunk?;
        let mut v = vec![0.0f64; k];
        for e in 0..chunk[0].len() {
            let b = if base { f64::from(chunk[0][e]) } else { 0.0 };
            for (x, input) in v.iter_mut().zip(&chunk[first..]) {
                *x = f64::from(input[e]) - b;
            }
            for (row, &va) in gram.iter_mut().zip(&v) {
                for (g, &vb) in row.iter_mut().zip(&v) {
                    *g += va * vb;
                }
            }
        }
    }
    let norms: Vec<f64> = (0..k).map(|j| gram[j][j].sqrt()).collect();
    let a: Vec<f64> = (0..k).map(|j| weights[j] / (norms[j] + eps)).collect();
    let m2: f64 = (0..k)
        .flat_map(|x| (0..k).map(move |y| (x, y)))
        .map(|(x, y)| a[x] * a[y] * gram[x][y])
        .sum();
    let m = m2.max(0.0).sqrt();
    let mut coefficients = vec![0.0f32; p.models.len()];
    if m < eps {
        if k != 2 {
            return Err(tensorcast_core::Error::unsupported(
                tensorcast_core::code::MERGE_CONFIG,
                format!(
                    "tensor '{}': the weighted sum of the task vectors is zero (antipodal vectors whose weights balance): multislerp is undefined",
                    p.name
                ),
            ));
        }
        for j in 0..k {
            coefficients[first + j] = weights[j] as f32;
        }
        return Ok(Plan::Combine { coefficients, base });
    }
    // D = Σ_j w_j (u_j · m̂), u_j · m = Σ_k a_k G_jk / (|v_j| + eps).
    let d: f64 = (0..k)
        .map(|j| weights[j] * (0..k).map(|x| a[x] * gram[j][x]).sum::<f64>() / (norms[j] + eps) / m)
        .sum();
    let tau = (m - d).abs() + eps;
    let c = tau.cos() / m + (1.0 - d / m) * tau.sin() / tau;
    let average: f64 = (0..k).map(|j| norms[j] * weights[j]).sum();
    for j in 0..k {
        coefficients[first + j] = (c * average * a[j]) as f32;
    }
    Ok(Plan::Combine { coefficients, base })
}

/// The most iterations `karcher` may be asked for: each costs a few
/// products of a k-by-k matrix, so even this many is quick, while an
/// unbounded count from a configuration would never finish.
const KARCHER_MAX_ITER: f64 = 1_000_000.0;

/// `karcher` (arXiv 2603.04972, mergekit's `karcher.py`): the weighted
/// Karcher mean of the models' unit vectors (equal weights over those whose
/// norm exceeds `tol`), found by at most `max_iter` Riemannian gradient
/// steps from their normalized average, then scaled by the mean norm of all
/// the models. Every iterate lies in the span of the unit vectors, so it is
/// kept as coefficients over them: one pass gathers the Gram matrix of the
/// models (double precision), the iteration runs on coefficients, and the
/// output is a weighted sum per element.
fn karcher_plan<'a>(p: &Params, open: &mut dyn FnMut() -> Result<Lockstep<'a>>) -> Result<Plan> {
    let k = p.models.len();
    let max_iter = p.num("max_iter", None)?;
    let tol = p.num("tol", None)?;
    if !(0.0..=KARCHER_MAX_ITER).contains(&max_iter) || max_iter.fract() != 0.0 {
        return Err(tensorcast_core::Error::usage(
            tensorcast_core::code::MERGE_CONFIG,
            format!("karcher's max_iter must be a whole number from 0 to {KARCHER_MAX_ITER}, not {max_iter}"),
        ));
    }
    let mut coefficients = vec![0.0f32; k];
    if k == 1 {
        coefficients[0] = 1.0;
        return Ok(Plan::Combine {
            coefficients,
            base: false,
        });
    }
    let mut gram = vec![vec![0.0f64; k]; k];
    let mut pass = open()?;
    while let Some(chunk) = pass.next_chunk() {
        let chunk = chunk?;
        for (a, row) in gram.iter_mut().enumerate() {
            for (b, g) in row.iter_mut().enumerate().skip(a) {
                *g += chunk[a]
                    .iter()
                    .zip(&chunk[b])
                    .map(|(&x, &y)| f64::from(x) * f64::from(y))
                    .sum::<f64>();
            }
        }
    }
    let norms: Vec<f64> = (0..k).map(|j| gram[j][j].sqrt()).collect();
    // The unit vectors' Gram matrix (a zero model's unit vector is zero).
    let unit = |a: usize, b: usize| {
        let (a, b) = (a.min(b), a.max(b));
        if norms[a] == 0.0 || norms[b] == 0.0 {
            0.0
        } else {
            gram[a][b] / (norms[a] * norms[b])
        }
    };
    let dot = |x: &[f64], y: &[f64]| -> f64 {
        (0..k)
            .flat_map(|a| (0..k).map(move |b| (a, b)))
            .map(|(a, b)| x[a] * y[b] * unit(a, b))
            .sum()
    };
    let valid: Vec<usize> = (0..k).filter(|&j| norms[j] > tol).collect();
    let scale: f64 = norms.iter().map(|n| n / k as f64).sum();
    if valid.is_empty() {
        return Ok(Plan::Combine {
            coefficients,
            base: false,
        });
    }
    let alpha = 1.0 / valid.len() as f64;
    // The mean, as coefficients over the unit vectors.
    let mut mean = vec![0.0f64; k];
    for &j in &valid {
        mean[j] = alpha;
    }
    let norm = dot(&mean, &mean).max(0.0).sqrt();
    if norm < tol {
        mean = vec![0.0; k];
        mean[valid[0]] = 1.0;
    } else {
        mean.iter_mut().for_each(|c| *c /= norm);
    }
    for _ in 0..max_iter as u64 {
        let mut tangent = vec![0.0f64; k];
        for &j in &valid {
            let mut e = vec![0.0f64; k];
            e[j] = 1.0;
            let cos = dot(&mean, &e).clamp(-1.0, 1.0);
            let theta = cos.acos();
            if theta < tol {
                continue;
            }
            let f = alpha * theta / theta.sin();
            for (x, (t, m)) in tangent.iter_mut().zip(e.iter().zip(&mean)) {
                *x += f * (t - cos * m);
            }
        }
        let step = dot(&tangent, &tangent).max(0.0).sqrt();
        if step < tol {
            break;
        }
        for (m, t) in mean.iter_mut().zip(&tangent) {
            *m = step.cos() * *m + step.sin() * (t / step);
        }
        let norm = dot(&mean, &mean).max(0.0).sqrt();
        if norm > tol {
            mean.iter_mut().for_each(|c| *c /= norm);
        }
    }
    for j in 0..k {
        if norms[j] > 0.0 {
            coefficients[j] = (scale * mean[j] / norms[j]) as f32;
        }
    }
    Ok(Plan::Combine {
        coefficients,
        base: false,
    })
}

/// How nuslerp cuts a tensor into the vectors it interpolates.
#[derive(Clone, Copy)]
pub(crate) enum Grouping {
    /// The whole tensor (`nuslerp_flatten`, the default).
    Whole,
    /// Each row of the last dimension.
    Rows(usize),
    /// Each column (`nuslerp_row_wise`: vectors along the first dimension).
    Columns(usize),
}

impl Grouping {
    fn of(self, e: usize) -> usize {
        match self {
            Grouping::Whole => 0,
            Grouping::Rows(len) => e / len.max(1),
            Grouping::Columns(len) => e % len.max(1),
        }
    }
}

/// `nuslerp` (mergekit's `nuslerp.py`): SLERP of the two models (their task
/// vectors when there is a base) with `t = w1 / (w0 + w1)` (0.5 when the
/// weights sum to under 1e-6), per vector of the grouping: normalized
/// vectors (norms at least 1e-7), the angle, `sin((1-t)θ)/sin θ` and
/// `sin(tθ)/sin θ`, or `1-t` and `t` where `1 - cos² θ <= 1e-16`. Norms and
/// dot products in double precision.
fn nuslerp_plan<'a>(p: &Params, n: u64, open: &mut dyn FnMut() -> Result<Lockstep<'a>>) -> Result<Plan> {
    let base = p.config.base_of(p.slice).is_some();
    let first = usize::from(base);
    let (w0, w1) = (p.num("weight", Some(first))?, p.num("weight", Some(first + 1))?);
    let total = w0 + w1;
    let t = if total.abs() < 1e-6 { 0.5 } else { w1 / total };
    let last = p.last_dim.max(1) as usize;
    let group = if p.flag("nuslerp_flatten")? || p.rank < 2 {
        Grouping::Whole
    } else if p.flag("nuslerp_row_wise")? {
        Grouping::Columns(p.columns.max(1) as usize)
    } else {
        Grouping::Rows(last)
    };
    let groups = match group {
        Grouping::Whole => 1,
        Grouping::Rows(len) => (n as usize).div_ceil(len),
        Grouping::Columns(len) => len,
    };
    let mut sums = vec![(0.0f64, 0.0f64, 0.0f64); groups];
    let mut pass = open()?;
    let mut at = 0usize;
    while let Some(chunk) = pass.next_chunk() {
        let chunk = chunk?;
        for e in 0..chunk[0].len() {
            let b = if base { f64::from(chunk[0][e]) } else { 0.0 };
            let (x, y) = (f64::from(chunk[first][e]) - b, f64::from(chunk[first + 1][e]) - b);
            let s = &mut sums[group.of(at + e)];
            s.0 += x * x;
            s.1 += y * y;
            s.2 += x * y;
        }
        at += chunk[0].len();
    }
    let (mut ca, mut cb) = (Vec::with_capacity(groups), Vec::with_capacity(groups));
    for (xx, yy, xy) in sums {
        let (nx, ny) = (xx.sqrt().max(1e-7), yy.sqrt().max(1e-7));
        let cos = (xy / (nx * ny)).clamp(-1.0, 1.0);
        if 1.0 - cos * cos <= 1e-16 {
            ca.push(1.0 - t);
            cb.push(t);
        } else {
            let theta = cos.acos();
            let s = theta.sin();
            ca.push(((1.0 - t) * theta).sin() / s);
            cb.push((t * theta).sin() / s);
        }
    }
    Ok(Plan::Pairwise { group, ca, cb, base })
}

/// sce's population variance of the `k` task vectors at element `e`, as
/// torch's `var(dim=0, unbiased=False)` takes it: Welford's running mean
/// and sum of squared deviations in double precision, one task vector at
/// a time, then rounded to the merge's dtype (through float32).
fn variance(prec: Prec, chunk: &[Vec<f32>], k: usize, e: usize) -> f32 {
    let (mut mean, mut m2) = (0.0f64, 0.0f64);
    for j in 1..=k {
        let x = f64::from(delta(prec, chunk, j, e));
        let d = x - mean;
        mean += d / j as f64;
        m2 += d * (x - mean);
    }
    prec.r((m2 / k as f64) as f32)
}

/// The task vector of input `j` (1-based: 0 is the base) at element `e`.
#[inline]
fn delta(prec: Prec, chunk: &[Vec<f32>], j: usize, e: usize) -> f32 {
    prec.r(chunk[j][e] - chunk[0][e])
}

fn tasks_plan<'a>(
    method: Method,
    p: &Params,
    prec: Prec,
    n: u64,
    seed: u64,
    open: &mut dyn FnMut() -> Result<Lockstep<'a>>,
) -> Result<Tasks> {
    let others = p.models.len() - 1;
    let rescale = p.flag("rescale")?;
    let mut masks = Vec::with_capacity(others);
    let mut finders: Vec<Option<(Finder, bool)>> = Vec::with_capacity(others);
    let mut weights = Vec::with_capacity(others);
    for j in 1..=others {
        let density = p.num("density", Some(j))?;
        let (ranks, first) = match method.sparsify() {
            Sparsify::None => (None, false),
            Sparsify::Magnitude => (Ranks::magnitude(n, density), true),
            Sparsify::Outliers => (Ranks::outliers(n, density, p.num("gamma", Some(j))?), false),
            Sparsify::Ranked => {
                let epsilon = p.num("epsilon", Some(j))?;
                if density < 1.0 && density > 0.0 && (density + epsilon >= 1.0 || density - epsilon <= 0.0) {
                    return Err(tensorcast_core::Error::usage(
                        tensorcast_core::code::MERGE_CONFIG,
                        format!(
                            "{}: epsilon {epsilon} must keep density {density} +/- epsilon inside (0, 1)",
                            p.models[j]
                        ),
                    ));
                }
                masks.push(if density >= 1.0 {
                    Mask::All
                } else if density <= 0.0 {
                    Mask::Nothing
                } else {
                    Mask::Ranked(Box::new(Ranked {
                        density,
                        epsilon,
                        seed,
                        stream: select::name_key(p.name) ^ select::splitmix(j as u64),
                        row: p.row,
                        at: 0,
                        kept: Default::default(),
                    }))
                });
                finders.push(None);
                weights.push(prec.r(p.num("weight", Some(j))? as f32));
                continue;
            }
            Sparsify::Random => {
                let stream = select::name_key(p.name) ^ select::splitmix(j as u64);
                masks.push(if density >= 1.0 {
                    Mask::All
                } else {
                    Mask::Random {
                        density,
                        seed,
                        stream,
                    }
                });
                finders.push(None);
                weights.push(prec.r(p.num("weight", Some(j))? as f32));
                continue;
            }
        };
        match ranks {
            None => masks.push(Mask::All),
            Some(r) if r.lo >= r.hi => masks.push(Mask::Nothing),
            Some(r) => {
                masks.push(Mask::All); // replaced once the cut is found
                finders.push(Some((Finder::new(r), first)));
                weights.push(prec.r(p.num("weight", Some(j))? as f32));
                continue;
            }
        }
        finders.push(None);
        weights.push(prec.r(p.num("weight", Some(j))? as f32));
    }
    if finders.iter().any(Option::is_some) {
        for stage in 0..2 {
            let mut pass = open()?;
            while let Some(chunk) = pass.next_chunk() {
                let chunk = chunk?;
                // One input per core: each finder sees its own task vector.
                finders.par_iter_mut().enumerate().for_each(|(j, f)| {
                    let Some((f, _)) = f else { return };
                    for e in 0..chunk[0].len() {
                        let k = select::key(delta(prec, &chunk, j + 1, e));
                        if stage == 0 {
                            f.count_high(k);
                        } else {
                            f.count_low(k);
                        }
                    }
                });
            }
            if stage == 0 {
                finders.iter_mut().flatten().for_each(|(f, _)| f.end_high());
            }
        }
        for (mask, f) in masks.iter_mut().zip(finders) {
            if let Some((f, first)) = f {
                *mask = Mask::Cut(f.keeper(first));
            }
        }
    }
    let mut scales = vec![None; others];
    if rescale && masks.iter().any(|m| !matches!(m, Mask::All)) {
        scales = l1_rescales(prec, &masks, open)?;
    }
    let lambda = p.num("lambda", None)?;
    let total = prec.r(weights.iter().fold(0.0f32, |a, &w| a + w));
    Ok(Tasks {
        weights,
        masks,
        scales,
        elect: method.elects_signs(),
        total: if total.abs() < 1e-8 { 1.0 } else { total },
        normalize: p.flag("normalize")?,
        lambda: (lambda != 1.0).then_some(lambda as f32),
    })
}

/// mergekit's `rescaled_masked_tensor` with the L1 norm: each kept task
/// vector times `Σ|δ| / Σ|kept δ|` (unless either is below 1e-7), the sums
/// taken in double precision, the ratio in the merge's dtype.
fn l1_rescales<'a>(
    prec: Prec,
    masks: &[Mask],
    open: &mut dyn FnMut() -> Result<Lockstep<'a>>,
) -> Result<Vec<Option<f32>>> {
    let mut masks = masks.to_vec();
    let mut sums = vec![(0.0f64, 0.0f64); masks.len()];
    let mut pass = open()?;
    let mut at = 0u64;
    while let Some(chunk) = pass.next_chunk() {
        let chunk = chunk?;
        for (j, mask) in masks.iter_mut().enumerate() {
            if matches!(mask, Mask::Ranked(_)) {
                let d: Vec<f32> = (0..chunk[0].len())
                    .map(|e| delta(prec, &chunk, j + 1, e))
                    .collect();
                mask.prepare(prec, at, &d);
            }
        }
        for e in 0..chunk[0].len() {
            for (j, (mask, (before, after))) in masks.iter_mut().zip(&mut sums).enumerate() {
                let d = delta(prec, &chunk, j + 1, e);
                *before += f64::from(d.abs());
                if mask.keep(at + e as u64, d) {
                    *after += f64::from(d.abs());
                }
            }
        }
        at += chunk[0].len() as u64;
    }
    Ok(sums
        .into_iter()
        .zip(&masks)
        .map(|((before, after), m)| {
            let (b, a) = (prec.r(before as f32), prec.r(after as f32));
            (!matches!(m, Mask::All) && b >= 1e-7 && a >= 1e-7).then(|| prec.r(b / a))
        })
        .collect())
}

impl Plan {
    /// Whether a copy of this plan decides any part of the tensor alone:
    /// false where a cut splits a run of equal magnitudes, whose kept ones
    /// are the first in index order, so a later part needs the count of
    /// them before it ([`Plan::apply`] over everything before it).
    pub(crate) fn order_free(&self) -> bool {
        match self {
            Plan::Tasks(t) => t.masks.iter().all(Mask::order_free),
            Plan::Sce { keep, .. } => keep.order_free(),
            _ => true,
        }
    }

    /// The merged values of elements `at..at + chunk[0].len()`, in `prec`.
    /// Called for consecutive chunks in order; computed on every core.
    pub(crate) fn apply(&mut self, prec: Prec, at: u64, chunk: &[Vec<f32>]) -> Vec<f32> {
        let r = |x: f32| prec.r(x);
        let each = |f: &(dyn Fn(usize) -> f32 + Sync)| (0..chunk[0].len()).into_par_iter().map(f).collect();
        match self {
            // `result.addcmul_(tensor, w)` from zero in model order (one
            // fused multiply-add each), divided by the float32 sum of the
            // weights; float32 whatever the inputs.
            Plan::Linear { weights, normalize } => {
                let denominator = weights.iter().fold(0.0f32, |a, &w| a + w);
                let (weights, normalize) = (&*weights, *normalize);
                each(&|e| {
                    let mut acc = 0.0f32;
                    for (x, &w) in chunk.iter().zip(weights) {
                        acc = x[e].mul_add(w, acc);
                    }
                    r(if normalize { acc / denominator } else { acc })
                })
            }
            Plan::Scale(s) => {
                let s = *s;
                each(&|e| if s == 1.0 { chunk[0][e] } else { r(chunk[0][e] * s) })
            }
            // `w = clamp(t / max(|a - b|, 1e-6), 0, 1)` (Python's `t / tensor`
            // is torch's `tensor.reciprocal() * t`), then `w * b + (1 - w) * a`.
            Plan::Nearswap(t) => {
                let (t, floor) = (*t, r(1e-6));
                each(&|e| {
                    let (a, b) = (chunk[0][e], chunk[1][e]);
                    let diff = r((a - b).abs()).max(floor);
                    let w = r(r(1.0 / diff) * t).clamp(0.0, 1.0);
                    r(r(w * b) + r(r(1.0 - w) * a))
                })
            }
            // `coef_a * x + coef_b * y` in float32, then the inputs' dtype.
            Plan::Slerp { ca, cb } => {
                let (ca, cb) = (*ca, *cb);
                each(&|e| r(ca * chunk[0][e] + cb * chunk[1][e]))
            }
            // `average = sum(ws) / k` (Python's sum: from 0, one model at a
            // time), then `t * average + (1 - t) * w0`.
            Plan::Stock { t, row } => {
                let (t, row) = (&*t, *row);
                let k = (chunk.len() - 1) as f32;
                each(&|e| {
                    let t = t[(at as usize + e) / row];
                    let sum = chunk[1..].iter().fold(0.0f32, |a, w| r(a + w[e]));
                    let average = r(sum / k);
                    r(r(t * average) + r(r(1.0 - t) * chunk[0][e]))
                })
            }
            // Task vectors (selected), sign-elected by sum, weighted and
            // summed, over the sum of the weights that agree (at least 1e-6).
            Plan::Sce { keep, weights } => {
                let k = weights.len();
                let floor = r(1e-6);
                (0..chunk[0].len())
                    .map(|e| {
                        let kept = match &mut *keep {
                            Mask::Cut(keeper) => keeper.keep(select::key(variance(prec, chunk, k, e))),
                            m => m.keep(at + e as u64, 0.0),
                        };
                        let tv: Vec<f32> = (1..=k)
                            .map(|j| {
                                let d = delta(prec, chunk, j, e);
                                if kept {
                                    d
                                } else {
                                    d * 0.0
                                }
                            })
                            .collect();
                        let total = tv.iter().fold(0.0f32, |a, &d| a + d);
                        let majority = if total >= 0.0 { 1.0 } else { -1.0 };
                        let (mut merged, mut weight) = (0.0f32, 0.0f32);
                        for (&d, &w) in tv.iter().zip(weights.iter()) {
                            let ew = if sign(d) == majority { w } else { 0.0 };
                            merged += r(d * ew);
                            weight += ew;
                        }
                        let denominator = r(weight).max(floor);
                        r(chunk[0][e] + r(r(merged) / denominator))
                    })
                    .collect()
            }
            Plan::Pairwise { group, ca, cb, base } => {
                let (group, ca, cb, base) = (*group, &*ca, &*cb, *base);
                let first = usize::from(base);
                each(&|e| {
                    let g = group.of(at as usize + e);
                    let b = if base { f64::from(chunk[0][e]) } else { 0.0 };
                    let (x, y) = (f64::from(chunk[first][e]) - b, f64::from(chunk[first + 1][e]) - b);
                    r((b + ca[g] * x + cb[g] * y) as f32)
                })
            }
            // Σ c_j v_j (+ the base), the task vectors v_j = x_j - base.
            Plan::Combine { coefficients, base } => {
                let (coefficients, base) = (&*coefficients, *base);
                each(&|e| {
                    let b = if base { chunk[0][e] } else { 0.0 };
                    let mut acc = 0.0f64;
                    for (j, &c) in coefficients.iter().enumerate() {
                        if c != 0.0 {
                            acc += f64::from(c) * (f64::from(chunk[j][e]) - f64::from(b));
                        }
                    }
                    r((acc + f64::from(b)) as f32)
                })
            }
            Plan::Tasks(t) => t.apply(prec, at, chunk),
        }
    }
}

impl Tasks {
    /// Task vectors sparsified (and rescaled), weighted, sign-elected when
    /// the method does, summed, normalized, times lambda, plus the base;
    /// every op rounded to the merge's dtype, sums accumulated in float32.
    /// The chunk is cut in parts merged on every core, each part's masks
    /// moved past the parts before it.
    fn apply(&mut self, prec: Prec, at: u64, chunk: &[Vec<f32>]) -> Vec<f32> {
        let n = chunk[0].len();
        let deltas: Vec<Vec<f32>> = (1..chunk.len())
            .into_par_iter()
            .map(|j| (0..n).map(|e| delta(prec, chunk, j, e)).collect())
            .collect();
        for (mask, d) in self.masks.iter_mut().zip(&deltas) {
            mask.prepare(prec, at, d);
        }
        let mut starts = Vec::with_capacity(n.div_ceil(PART));
        for part in (0..n).step_by(PART) {
            starts.push(self.masks.clone());
            let end = (part + PART).min(n);
            for (mask, d) in self.masks.iter_mut().zip(&deltas) {
                if let Mask::Cut(k) = mask {
                    k.advance(d[part..end].iter().map(|&x| select::key(x)));
                }
            }
        }
        let this = &*self;
        let parts: Vec<Vec<f32>> = starts
            .into_par_iter()
            .enumerate()
            .map(|(i, mut masks)| {
                let (from, to) = (i * PART, ((i + 1) * PART).min(n));
                (from..to)
                    .map(|e| this.element(prec, &mut masks, &deltas, chunk[0][e], at + e as u64, e))
                    .collect()
            })
            .collect();
        parts.concat()
    }

    /// Element `e` of the chunk (`i` in the tensor), of base value `base`.
    fn element(
        &self,
        prec: Prec,
        masks: &mut [Mask],
        deltas: &[Vec<f32>],
        base: f32,
        i: u64,
        e: usize,
    ) -> f32 {
        let r = |x: f32| prec.r(x);
        let mut weighted = [0.0f32; 8];
        let mut spill = Vec::new();
        let slots: &mut [f32] = if deltas.len() <= weighted.len() {
            &mut weighted[..deltas.len()]
        } else {
            spill.resize(deltas.len(), 0.0);
            &mut spill
        };
        for (j, slot) in slots.iter_mut().enumerate() {
            let mut d = deltas[j][e];
            if !masks[j].keep(i, d) {
                d *= 0.0;
            }
            if let Some(s) = self.scales[j] {
                d = r(d * s);
            }
            *slot = r(d * self.weights[j]);
        }
        let (mut mixed, divisor) = if self.elect {
            // Sign election by sum: the sum's sign, zero counting as +.
            let total = slots.iter().fold(0.0f32, |a, &d| a + d);
            let majority = if total >= 0.0 { 1.0 } else { -1.0 };
            let (mut m, mut w) = (0.0f32, 0.0f32);
            for (&d, &wt) in slots.iter().zip(&self.weights) {
                let agree = sign(d) == majority;
                m += if agree { d } else { d * 0.0 };
                w += if agree { wt } else { 0.0 };
            }
            let w = r(w);
            (r(m), if w == 0.0 { 1.0 } else { w })
        } else {
            (r(slots.iter().fold(0.0f32, |a, &d| a + d)), self.total)
        };
        if self.normalize {
            mixed = r(mixed / divisor);
        }
        if let Some(l) = self.lambda {
            mixed = r(mixed * l);
        }
        r(base + mixed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MergeConfig;
    use tensorcast_core::{DType, TensorData};

    /// Every plan gives the same bytes whatever the chunking: the passes
    /// and the keepers carry their state across chunk boundaries.
    #[test]
    fn chunking_changes_nothing() {
        let n = 1000usize;
        let mut x = 1u64;
        let mut noise = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Few distinct values, so magnitudes tie at the cuts.
            ((x % 64) as f32 - 32.0) / 64.0
        };
        let inputs: Vec<Vec<u8>> = (0..3)
            .map(|_| (0..n).flat_map(|_| noise().to_le_bytes()).collect())
            .collect();
        let models = ["b".to_string(), "x".to_string(), "y".to_string()];
        for (method, extra) in [
            ("ties", "density: 0.37"),
            ("breadcrumbs_ties", "density: 0.5, gamma: 0.1"),
            ("dare_ties", "density: 0.4"),
            ("della", "density: 0.4, epsilon: 0.1"),
            ("task_arithmetic", "density: 1.0"),
        ] {
            let yaml = format!(
                "merge_method: {method}\nbase_model: b\nmodels:\n  - {{model: x, parameters: {{weight: 0.7, {extra}}}}}\n  - {{model: y, parameters: {{weight: 0.4, {extra}}}}}\n"
            );
            let config = MergeConfig::from_yaml(&yaml).unwrap();
            let p = Params {
                config: &config,
                name: "w",
                t: 0.0,
                models: &models,
                slice: None,
                rank: 1,
                last_dim: n as u64,
                columns: 1,
                row: 10,
            };
            let run = |chunk: usize| {
                let mut open = || {
                    let data = inputs
                        .iter()
                        .map(|b| (TensorData::Borrowed(b), DType::F32))
                        .collect();
                    Lockstep::with_chunk(data, Prec::Bf16, n, chunk)
                };
                let mut plan = plan(config.method, &p, Prec::Bf16, n as u64, 5, &mut open).unwrap();
                let mut pass = open().unwrap();
                let (mut out, mut at) = (Vec::new(), 0u64);
                while let Some(c) = pass.next_chunk() {
                    let v = plan.apply(Prec::Bf16, at, &c.unwrap());
                    at += v.len() as u64;
                    out.extend(v.iter().map(|f| f.to_bits()));
                }
                out
            };
            let whole = run(n);
            // DELLA ranks within rows (of 10 here): its chunks hold whole rows.
            let chunks = if method == "della" {
                [10, 70, 330]
            } else {
                [1, 7, 333]
            };
            for chunk in chunks {
                assert_eq!(run(chunk), whole, "{method}, {chunk} per chunk");
            }
        }
    }
}
