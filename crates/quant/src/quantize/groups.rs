//! Helpers the grid quantizers (IQ1, IQ2, IQ3) and the weighted paths share:
//! sums in ggml's order, the largest value as C's `MAX` chain finds it, and
//! the split of values into magnitudes and sign bytes.

/// Σx², in order.
pub(super) fn sum_sq(x: &[f32]) -> f32 {
    let mut s = 0f32;
    for &v in x {
        s += v * v;
    }
    s
}

/// Twice the mean x² of a 256-value super-block (ggml's `sigma2`).
pub(super) fn sigma2(x: &[f32]) -> f32 {
    2.0 * sum_sq(x) / 256.0
}

/// The largest of `xval`, as C's `MAX` chain from the first.
pub(super) fn max_of(xval: &[f32]) -> f32 {
    let mut max = xval[0];
    for &v in &xval[1..] {
        max = if max > v { max } else { v };
    }
    max
}

/// |x| per value and a sign byte per eight; with `parity`, an odd count of
/// minus signs is made even by flipping the least important value (its
/// magnitude goes negative), so seven bits carry the signs.
pub(super) fn magnitudes<const N: usize>(
    xb: &[f32],
    weight: &[f32; N],
    parity: bool,
    xval: &mut [f32; N],
    signs: &mut [u8],
) {
    for k in 0..N / 8 {
        let (mut s, mut nflip) = (0u8, 0);
        for i in 0..8 {
            let v = xb[8 * k + i];
            if v >= 0.0 {
                xval[8 * k + i] = v;
            } else {
                xval[8 * k + i] = -v;
                nflip += 1;
                s |= 1 << i;
            }
        }
        if parity && nflip % 2 == 1 {
            let (mut imin, mut min) = (0, weight[8 * k] * xb[8 * k] * xb[8 * k]);
            for i in 1..8 {
                let ax = weight[8 * k + i] * xb[8 * k + i] * xb[8 * k + i];
                if ax < min {
                    min = ax;
                    imin = i;
                }
            }
            xval[8 * k + imin] = -xval[8 * k + imin];
            s ^= 1 << imin;
        }
        signs[k] = if parity { s & 127 } else { s };
    }
}
