//! The scale searches ggml's quantizers share (`nearest_int`,
//! `make_qx_quants`, `make_q3_quants`, `make_qkx2_quants`).
//!
//! Each keeps ggml's order of single-precision operations exactly: C's
//! `w*x[i]*l` is `(w * x) * l as f32`, and `int / float` converts the integer
//! first. Nothing is fused, so x86-64 results match ggml-base bit for bit.

/// Smallest group maximum treated as non-zero (ggml's `GROUP_MAX_EPS`).
pub(crate) const GROUP_MAX_EPS: f32 = 1e-15;

/// ggml's `nearest_int`: rounds half to even by adding 1.5 × 2^23 and
/// reading the mantissa. Kept as the bit trick (not `round_ties_even`) so
/// values outside ±2^22, where ggml only asserts in debug builds, come out
/// as ggml's release builds give them.
#[inline(always)]
pub(crate) fn nearest_int(f: f32) -> i32 {
    let v = f + 12_582_912.0;
    (v.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// The element of largest magnitude (the first one on ties) and that magnitude.
#[inline(always)]
fn signed_absmax(x: &[f32]) -> (f32, f32) {
    let (mut max, mut amax) = (0f32, 0f32);
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    (max, amax)
}

/// The weight `make_qx_quants` gives element `x` for `rmse_type` 1–4.
#[inline(always)]
fn rmse_weight(rmse_type: i32, x: f32) -> f32 {
    match rmse_type {
        1 => x * x,
        2 => 1.0,
        3 => x.abs(),
        _ => x.abs().sqrt(),
    }
}

/// `make_qx_quants`: symmetric levels in `0..2·nmax` around `nmax`, the scale
/// refined over 18 nearby inverse scales. `qw` replaces the rmse weights.
pub(crate) fn make_qx_quants<const N: usize>(
    nmax: i32,
    x: &[f32; N],
    l_out: &mut [i8; N],
    mut rmse_type: i32,
    qw: Option<&[f32; N]>,
) -> f32 {
    let (max, amax) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        l_out.iter_mut().for_each(|l| *l = 0);
        return 0.0;
    }
    let nmaxf = nmax as f32;
    let iscale = -nmaxf / max;
    let clamp = |l: i32| l.clamp(-nmax, nmax - 1);
    if rmse_type == 0 {
        for (l, &v) in l_out.iter_mut().zip(x) {
            *l = (nmax + clamp(nearest_int(iscale * v))) as i8;
        }
        return 1.0 / iscale;
    }
    let return_early = rmse_type < 0;
    if return_early {
        rmse_type = -rmse_type;
    }
    // ggml computes each weight inside every loop; the values are the same
    // computed once.
    let mut weights = [0f32; N];
    for (w, (i, &v)) in weights.iter_mut().zip(x.iter().enumerate()) {
        *w = qw.map_or_else(|| rmse_weight(rmse_type, v), |q| q[i]);
    }
    let (mut sumlx, mut suml2) = (0f32, 0f32);
    for ((l, &v), &w) in l_out.iter_mut().zip(x).zip(&weights) {
        let q = clamp(nearest_int(iscale * v));
        *l = (q + nmax) as i8;
        sumlx += w * v * q as f32;
        suml2 += w * q as f32 * q as f32;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    if return_early {
        return if suml2 > 0.0 {
            0.5 * (scale + 1.0 / iscale)
        } else {
            1.0 / iscale
        };
    }
    let mut best = scale * sumlx;
    // The 18 trial scales depend only on `max`, so their sums are computed
    // side by side: each trial still adds its terms in ggml's order (the
    // element loop is outside), but the trials' additions overlap instead
    // of waiting on one another.
    const TRIALS: usize = 18;
    let mut iscales = [0f32; TRIALS];
    for (k, is) in (-9..=9).filter(|&is| is != 0).enumerate() {
        iscales[k] = -(nmaxf + 0.1 * is as f32) / max;
    }
    let mut levels = [[0i32; TRIALS]; N];
    for (lv, &v) in levels.iter_mut().zip(x) {
        for (q, &isc) in lv.iter_mut().zip(&iscales) {
            *q = clamp(nearest_int(isc * v));
        }
    }
    let (mut sums_lx, mut sums_l2) = ([0f32; TRIALS], [0f32; TRIALS]);
    for ((lv, &v), &w) in levels.iter().zip(x).zip(&weights) {
        for k in 0..TRIALS {
            let q = lv[k] as f32;
            sums_lx[k] += w * v * q;
            sums_l2[k] += w * q * q;
        }
    }
    for k in 0..TRIALS {
        let (sumlx, suml2) = (sums_lx[k], sums_l2[k]);
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            // ggml computes the levels again here; they are these.
            for (l, lv) in l_out.iter_mut().zip(&levels) {
                *l = (nmax + lv[k]) as i8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// `make_q3_quants`: symmetric levels refined one element at a time (up to
/// five passes) when `do_rmse`, weighted by x².
pub(crate) fn make_q3_quants<const N: usize>(
    nmax: i32,
    x: &[f32; N],
    l_out: &mut [i8; N],
    do_rmse: bool,
) -> f32 {
    let (max, amax) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        l_out.iter_mut().for_each(|l| *l = 0);
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    let clamp = |l: i32| l.clamp(-nmax, nmax - 1);
    if !do_rmse {
        for (l, &v) in l_out.iter_mut().zip(x) {
            *l = (clamp(nearest_int(iscale * v)) + nmax) as i8;
        }
        return 1.0 / iscale;
    }
    let (mut sumlx, mut suml2) = (0f32, 0f32);
    for (l, &v) in l_out.iter_mut().zip(x) {
        let q = clamp(nearest_int(iscale * v));
        *l = q as i8;
        let w = v * v;
        sumlx += w * v * q as f32;
        suml2 += w * q as f32 * q as f32;
    }
    for _ in 0..5 {
        let mut changed = false;
        for (l, &v) in l_out.iter_mut().zip(x) {
            let w = v * v;
            let cur = f32::from(*l);
            let mut slx = sumlx - w * v * cur;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * cur * cur;
                let new_l = clamp(nearest_int(v * sl2 / slx));
                if new_l != i32::from(*l) {
                    let nl = new_l as f32;
                    slx += w * v * nl;
                    sl2 += w * nl * nl;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        *l = new_l as i8;
                        sumlx = slx;
                        suml2 = sl2;
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    for l in l_out.iter_mut() {
        *l += nmax as i8;
    }
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}

/// The parameters of one `make_qkx2_quants` search.
pub(crate) struct Qkx2 {
    pub nmax: i32,
    pub rmin: f32,
    pub rdelta: f32,
    pub nstep: i32,
    pub use_mad: bool,
}

/// `make_qkx2_quants`: asymmetric levels `0..=nmax` with a minimum; returns
/// the scale and the (negated, so non-negative) minimum, trying `nstep + 1`
/// inverse scales and a weighted least-squares fit for each.
pub(crate) fn make_qkx2_quants<const N: usize>(
    p: &Qkx2,
    x: &[f32; N],
    weights: &[f32; N],
    l_out: &mut [u8; N],
) -> (f32, f32) {
    let n = N;
    let (mut min, mut max) = (x[0], x[0]);
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l_out.iter_mut().for_each(|l| *l = 0);
        return (0.0, -min);
    }
    let nmaxf = p.nmax as f32;
    let level = |iscale: f32, v: f32, min: f32| nearest_int(iscale * (v - min)).clamp(0, p.nmax);
    let err = |d: f32| if p.use_mad { d.abs() } else { d * d };
    let iscale = nmaxf / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0f32;
    for i in 0..n {
        let l = level(iscale, x[i], min);
        l_out[i] = l as u8;
        let diff = scale * l as f32 + min - x[i];
        best_error += weights[i] * err(diff);
    }
    if p.nstep < 1 {
        return (scale, -min);
    }
    let mut laux = [0u8; N];
    for is in 0..=p.nstep {
        let iscale = (p.rmin + p.rdelta * is as f32 + nmaxf) / (max - min);
        // Levels first (independent, so vectorizable), then the sums in
        // ggml's order. (The trials cannot overlap as make_qx_quants' do: a
        // winning trial moves `min`, which every later trial reads.)
        for (la, &v) in laux.iter_mut().zip(x) {
            *la = level(iscale, v, min) as u8;
        }
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0f32, 0f32, 0f32);
        for ((&la, &w), &v) in laux.iter().zip(weights).zip(x) {
            let l = f32::from(la);
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * v;
        }
        let d = sum_w * sum_l2 - sum_l * sum_l;
        if d > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / d;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut errs = [0f32; N];
            for ((e, &la), &v) in errs.iter_mut().zip(laux.iter()).zip(x) {
                *e = err(this_scale * f32::from(la) + this_min - v);
            }
            let mut cur_error = 0f32;
            for (&w, &e) in weights.iter().zip(&errs) {
                cur_error += w * e;
            }
            if cur_error < best_error {
                *l_out = laux;
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// `make_qp_quants`: non-negative levels `0..=nmax` for non-negative
/// values (the sub-block scales and minimums of a K-quant block, weighted by
/// their importance), refined one element at a time.
pub(crate) fn make_qp_quants<const N: usize>(
    nmax: i32,
    x: &[f32; N],
    l_out: &mut [u8; N],
    qw: &[f32; N],
) -> f32 {
    let mut max = 0f32;
    for &v in x {
        max = if max > v { max } else { v };
    }
    if max < GROUP_MAX_EPS {
        l_out.iter_mut().for_each(|l| *l = 0);
        return 0.0;
    }
    let nmaxf = nmax as f32;
    let mut iscale = nmaxf / max;
    for (l, &v) in l_out.iter_mut().zip(x) {
        // Stored unclamped into a byte, as ggml does.
        *l = nearest_int(iscale * v) as u8;
    }
    let scale = 1.0 / iscale;
    let mut best_mse = 0f32;
    for ((&l, &v), &w) in l_out.iter().zip(x).zip(qw) {
        let diff = v - scale * f32::from(l);
        best_mse += w * diff * diff;
    }
    for is in -4..=4 {
        if is == 0 {
            continue;
        }
        let iscale_is = (0.1 * is as f32 + nmaxf) / max;
        let scale_is = 1.0 / iscale_is;
        let mut mse = 0f32;
        for (&v, &w) in x.iter().zip(qw) {
            let l = nearest_int(iscale_is * v).min(nmax);
            let diff = v - scale_is * l as f32;
            mse += w * diff * diff;
        }
        if mse < best_mse {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    let (mut sumlx, mut suml2) = (0f32, 0f32);
    for ((o, &v), &w) in l_out.iter_mut().zip(x).zip(qw) {
        let l = nearest_int(iscale * v).min(nmax);
        *o = l as u8;
        sumlx += w * v * l as f32;
        suml2 += w * l as f32 * l as f32;
    }
    for _ in 0..5 {
        let mut changed = false;
        for ((o, &v), &w) in l_out.iter_mut().zip(x).zip(qw) {
            let cur = f32::from(*o);
            let mut slx = sumlx - w * v * cur;
            let mut sl2 = suml2 - w * cur * cur;
            if slx > 0.0 && sl2 > 0.0 {
                let new_l = nearest_int(v * sl2 / slx).min(nmax);
                if new_l != i32::from(*o) {
                    slx += w * v * new_l as f32;
                    sl2 += w * new_l as f32 * new_l as f32;
                    if slx * slx * suml2 > sumlx * sumlx * sl2 {
                        *o = new_l as u8;
                        sumlx = slx;
                        suml2 = sl2;
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::nearest_int;

    #[test]
    fn nearest_int_rounds_half_to_even() {
        assert_eq!(nearest_int(0.5), 0);
        assert_eq!(nearest_int(1.5), 2);
        assert_eq!(nearest_int(2.5), 2);
        assert_eq!(nearest_int(-0.5), 0);
        assert_eq!(nearest_int(-1.5), -2);
        assert_eq!(nearest_int(-3.7), -4);
        assert_eq!(nearest_int(4_194_303.0), 4_194_303);
    }
}
