//! Importance matrices as llama-quantize uses them: per tensor name, one
//! weight per column (per expert and column for 3-D expert tensors),
//! already normalized the way its loader does (sums over counts).

use std::collections::BTreeMap;

/// The importance data of one imatrix file.
#[derive(Clone, Debug, Default)]
pub struct Imatrix {
    /// The file as named on the command line; llama-quantize writes this
    /// string into `quantize.imatrix.file`.
    pub file: String,
    /// Normalized weights by tensor name.
    pub entries: BTreeMap<String, Vec<f32>>,
    /// The datasets it was computed on (the first is written to the output).
    pub datasets: Vec<String>,
    /// How many chunks of text it was computed on (0 when not recorded).
    pub chunk_count: u32,
}

/// Legacy `.dat` entries hold sums already divided by the call count and
/// multiplied back by it: dividing by `ncall` (when positive) gives the
/// weights, as llama-quantize's loader does.
pub fn normalize_legacy(sums: &[f32], ncall: i64) -> Vec<f32> {
    if ncall > 0 {
        let n = ncall as f32;
        sums.iter().map(|&s| s / n).collect()
    } else {
        sums.to_vec()
    }
}

/// GGUF imatrix entries hold `in_sum2` (ne0 per expert) and one count per
/// expert: each expert's sums over its count (rounded to an integer first,
/// as `std::lround` does), or 1 where the count is 0.
pub fn normalize_counts(sums: &[f32], counts: &[f32]) -> Option<Vec<f32>> {
    if counts.is_empty() || !sums.len().is_multiple_of(counts.len()) {
        return None;
    }
    let ne0 = sums.len() / counts.len();
    let mut out = Vec::with_capacity(sums.len());
    for (chunk, &c) in sums.chunks(ne0.max(1)).zip(counts) {
        // lround: half away from zero; then the int64 as float.
        let count = c.round() as i64 as f32;
        if count > 0.0 {
            out.extend(chunk.iter().map(|&s| s / count));
        } else {
            out.extend(std::iter::repeat_n(1.0, chunk.len()));
        }
    }
    Some(out)
}
