//! Llama 3.1's rope scaling (`rope_type: llama3`, Llama 3.1-3.3 and their
//! derivatives) as llama.cpp holds it: not as keys but as a `rope_freqs`
//! tensor of one factor per rotary pair, which `convert_hf_to_gguf.py`'s
//! `LlamaModel.generate_extra_tensors` computes in float32 torch arithmetic.
//! Back, the four parameters are recovered from the factors and checked by
//! computing them again: a file whose factors no parameters give is refused.

use serde_json::{json, Value as Json};

/// The tensor's GGUF name.
pub(crate) const ROPE_FREQS: &str = "rope_freqs.weight";

/// Llama 3's scaling parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Scaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: f64,
}

/// The scaling config.json states, where its (full-attention) rope is
/// `llama3`, with the reference's defaults for absent fields.
pub(crate) fn scaling(config: &Json) -> Option<Scaling> {
    let rope = config
        .get("rope_parameters")
        .or_else(|| config.get("rope_scaling"))?;
    let rope = rope.get("full_attention").unwrap_or(rope);
    let kind = rope
        .get("rope_type")
        .or_else(|| rope.get("type"))
        .and_then(Json::as_str)?;
    if !kind.eq_ignore_ascii_case("llama3") {
        return None;
    }
    let f = |k: &str, d: f64| rope.get(k).and_then(Json::as_f64).unwrap_or(d);
    Some(Scaling {
        factor: f("factor", 8.0),
        low_freq_factor: f("low_freq_factor", 1.0),
        high_freq_factor: f("high_freq_factor", 4.0),
        original_max_position_embeddings: f("original_max_position_embeddings", 8192.0),
    })
}

/// The factors for rotary width `dim` and rope base `base`, step for step
/// as the reference's float32 torch code computes them (`scalar / tensor`
/// is torch's `reciprocal() * scalar`; Python floats meet float32 tensors
/// as float32).
pub(crate) fn factors(s: Scaling, base: f64, dim: u64) -> Vec<f32> {
    let low_wavelen = s.original_max_position_embeddings / s.low_freq_factor;
    let high_wavelen = s.original_max_position_embeddings / s.high_freq_factor;
    let two_pi = (2.0 * std::f64::consts::PI) as f32;
    (0..dim)
        .step_by(2)
        .map(|i| {
            let x = i as f32 / dim as f32;
            let freq = 1.0 / base.powf(f64::from(x)) as f32;
            let wavelen = (1.0 / freq) * two_pi;
            if f64::from(wavelen) < high_wavelen {
                1.0
            } else if f64::from(wavelen) > low_wavelen {
                s.factor as f32
            } else {
                let ratio = (1.0 / wavelen) * s.original_max_position_embeddings as f32;
                let smooth =
                    (ratio - s.low_freq_factor as f32) / (s.high_freq_factor - s.low_freq_factor) as f32;
                1.0 / ((1.0 - smooth) / s.factor as f32 + smooth)
            }
        })
        .collect()
}

/// The `rope_freqs` bytes for `config`, `None` unless its rope is Llama 3's.
pub(crate) fn tensor(config: &Json) -> Option<Vec<u8>> {
    let s = scaling(config)?;
    let rope = config.get("rope_parameters");
    let base = rope
        .and_then(|r| r.get("rope_theta"))
        .or_else(|| config.get("rope_theta"))
        .and_then(Json::as_f64)
        .unwrap_or(10000.0);
    let int = |k: &str| config.get(k).and_then(Json::as_u64);
    let dim = int("head_dim").or_else(|| Some(int("hidden_size")? / int("num_attention_heads")?.max(1)))?;
    Some(
        factors(s, base, dim.min(1 << 16))
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
    )
}

/// The scaling whose factors are `values` (f32 bytes) for `base` and
/// `dim`: Llama 3.1's and 3.2's own first, else solved from the smooth
/// region (low_freq_factor taken as 1, as every Llama 3 has it); `None`
/// when no parameters give these factors exactly.
pub(crate) fn recover(values: &[u8], base: f64, dim: u64) -> Option<Scaling> {
    let v: Vec<f32> = values
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if v.len() as u64 != dim / 2 || v.is_empty() {
        return None;
    }
    let factor = f64::from(v.iter().copied().fold(f32::MIN, f32::max));
    let matches = |s: Scaling| factors(s, base, dim) == v;
    let llama = Scaling {
        factor,
        low_freq_factor: 1.0,
        high_freq_factor: 4.0,
        original_max_position_embeddings: 8192.0,
    };
    if matches(llama) {
        return Some(llama);
    }
    // s = a / wavelen - b on the smooth pairs, where each factor F gives
    // s = (1/F - 1/factor) / (1 - 1/factor); with low 1: old = a/b, high = 1 + 1/b.
    let two_pi = 2.0 * std::f64::consts::PI;
    let smooth: Vec<(f64, f64)> = v
        .iter()
        .enumerate()
        .filter(|(_, &f)| f > 1.0 && f64::from(f) < factor)
        .map(|(i, &f)| {
            let wavelen = two_pi * base.powf(2.0 * i as f64 / dim as f64);
            let s = (1.0 / f64::from(f) - 1.0 / factor) / (1.0 - 1.0 / factor);
            (1.0 / wavelen, s)
        })
        .collect();
    let [(x0, s0), .., (x1, s1)] = smooth[..] else {
        return None;
    };
    let a = (s1 - s0) / (x1 - x0);
    let b = a * x0 - s0;
    let solved = Scaling {
        factor,
        low_freq_factor: 1.0,
        high_freq_factor: ((1.0 + 1.0 / b) * 1000.0).round() / 1000.0,
        original_max_position_embeddings: (a / b).round(),
    };
    matches(solved).then_some(solved)
}

/// config.json's `rope_parameters` for `s` at `base`.
pub(crate) fn rope_parameters(s: Scaling, base: f64) -> Json {
    json!({
        "rope_type": "llama3",
        "rope_theta": base,
        "factor": s.factor,
        "low_freq_factor": s.low_freq_factor,
        "high_freq_factor": s.high_freq_factor,
        "original_max_position_embeddings": s.original_max_position_embeddings as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// torch 2.15's float32 factors for Llama 3.1 8B (dim 128, base 5e5,
    /// factor 8): pairs 0-28 are 1, 35-63 are 8, 29-34 (the smooth region)
    /// these bits.
    #[test]
    fn factors_as_torch_computes_them() {
        let s = Scaling {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192.0,
        };
        let f = factors(s, 500000.0, 128);
        assert_eq!(f.len(), 64);
        assert!(f[..29].iter().all(|&v| v == 1.0) && f[35..].iter().all(|&v| v == 8.0));
        let smooth: Vec<u32> = f[29..35].iter().map(|v| v.to_bits()).collect();
        assert_eq!(
            smooth,
            [0x3f9a8ed5, 0x3fc6d64a, 0x4001af1d, 0x402c732e, 0x406bcace, 0x40a83c06]
        );
        let bytes: Vec<u8> = f.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(recover(&bytes, 500000.0, 128), Some(s));
        // Another set of parameters is solved from the smooth pairs.
        let other = Scaling {
            factor: 16.0,
            low_freq_factor: 1.0,
            high_freq_factor: 2.0,
            original_max_position_embeddings: 4096.0,
        };
        let bytes: Vec<u8> = factors(other, 500000.0, 128)
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(recover(&bytes, 500000.0, 128), Some(other));
        assert_eq!(recover(&bytes[..8], 500000.0, 128), None);
    }
}
