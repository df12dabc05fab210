//! Which elements of a task vector are kept: mergekit's sparsifiers
//! (`sparsify.py`). Magnitudes are compared as float32, as mergekit does on
//! the CPU. Where magnitudes tie exactly at the cut, torch's unstable sort
//! decides which survive; here the lower index wins, so the choice is
//! deterministic.

/// The order of magnitudes: ascending `|x|` as f32 bits, then index.
fn key(x: f32, i: usize) -> u64 {
    (u64::from(x.abs().to_bits()) << 32) | i as u64
}

/// `magnitude`: keeps the `max(1, int(density * n))` largest magnitudes;
/// all when `density >= 1`, none when `density <= 0`.
pub fn magnitude(values: &[f32], density: f64) -> Vec<bool> {
    let n = values.len();
    if density >= 1.0 {
        return vec![true; n];
    }
    if density <= 0.0 || n == 0 {
        return vec![false; n];
    }
    let k = ((density * n as f64) as usize).max(1).min(n);
    // Descending magnitude, ascending index: the complement of the key order.
    let mut keys: Vec<u64> = values
        .iter()
        .enumerate()
        .map(|(i, &x)| (u64::from(!x.abs().to_bits()) << 32) | i as u64)
        .collect();
    keys.select_nth_unstable(k - 1);
    let mut keep = vec![false; n];
    for &k in &keys[..k] {
        keep[(k & 0xffff_ffff) as usize] = true;
    }
    keep
}

/// `magnitude_outliers`: drops the `int(gamma * n)` largest magnitudes and
/// the smallest, keeping `int(density * n)` in between (ascending order,
/// positions `n_bot .. n_bot + target`).
pub fn outliers(values: &[f32], density: f64, gamma: f64) -> Vec<bool> {
    let n = values.len();
    if density >= 1.0 {
        return vec![true; n];
    }
    let target = (density * n as f64) as usize;
    let top = (gamma * n as f64) as usize;
    let bottom = n.saturating_sub(target + top);
    let mut keys: Vec<u64> = values.iter().enumerate().map(|(i, &x)| key(x, i)).collect();
    keys.sort_unstable();
    let mut keep = vec![false; n];
    for &k in keys.iter().skip(bottom).take(target) {
        keep[(k & 0xffff_ffff) as usize] = true;
    }
    keep
}

/// DARE's random drop: element `i` is kept with probability `density`,
/// drawn from a counter-based generator (SplitMix64 of the seed, the
/// tensor's and model's key and `i`), so the mask depends on nothing but
/// those: not the thread count, not the chunking.
pub fn random(n: usize, density: f64, seed: u64, stream: u64) -> Vec<bool> {
    if density >= 1.0 {
        return vec![true; n];
    }
    (0..n as u64)
        .map(|i| {
            let u = splitmix(seed ^ splitmix(stream) ^ splitmix(i.wrapping_add(0x9e37_79b9_7f4a_7c15)));
            // 53 random bits as a double in [0, 1).
            ((u >> 11) as f64) * (1.0 / (1u64 << 53) as f64) < density
        })
        .collect()
}

/// SplitMix64's output function.
pub fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a of a name: the per-tensor part of a DARE stream key.
pub fn name_key(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magnitude_keeps_the_largest_and_outliers_the_middle() {
        let v = [0.5f32, -3.0, 1.0, -0.25, 2.0];
        assert_eq!(magnitude(&v, 0.4), [false, true, false, false, true]);
        assert_eq!(magnitude(&v, 0.01), [false, true, false, false, false]);
        // n = 5, density 0.6 -> 3 kept, gamma 0.2 -> the largest dropped.
        assert_eq!(outliers(&v, 0.6, 0.2), [true, false, true, false, true]);
    }

    #[test]
    fn random_masks_depend_only_on_their_keys() {
        let a = random(10_000, 0.3, 7, 11);
        assert_eq!(a, random(10_000, 0.3, 7, 11));
        assert_ne!(a, random(10_000, 0.3, 8, 11));
        let kept = a.iter().filter(|&&k| k).count() as f64;
        // Within 4 standard deviations of n * p.
        let sd = (10_000.0f64 * 0.3 * 0.7).sqrt();
        assert!((kept - 3000.0).abs() < 4.0 * sd, "{kept}");
    }
}
