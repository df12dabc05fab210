//! Every quantizer against ggml's own output (`ggml_quantize_chunk` from the
//! llama-cpp-python 0.3.36 build; fixtures/quant/generate.py made the files).

use sha2::{Digest, Sha256};
use std::path::PathBuf;
use tensorcast_core::QuantType;

const TYPES: [&str; 22] = [
    "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ1_S", "IQ1_M", "IQ3_XXS", "IQ3_S", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
    "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0", "MXFP4",
];
const ROW: usize = 256;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/quant")
}

/// Types ggml quantizes only with importance weights (it asserts without).
const WEIGHTS_ONLY: [&str; 3] = ["IQ2_XXS", "IQ2_XS", "IQ1_S"];

fn quantized(name: &str, x: &[f32]) -> Vec<u8> {
    let q = QuantType::from_name(name).unwrap();
    assert!(tensorcast_quant::can_quantize(q), "{name}");
    let mut out = Vec::new();
    tensorcast_quant::quantize(q, x, &mut out).unwrap();
    out
}

fn weighted(name: &str, x: &[f32], w: &[f32]) -> Vec<u8> {
    let q = QuantType::from_name(name).unwrap();
    let mut out = Vec::new();
    tensorcast_quant::quantize_weighted(q, x, ROW, w, &mut out).unwrap();
    out
}

fn floats(file: &str) -> Vec<f32> {
    let bytes = std::fs::read(fixtures().join(file)).unwrap();
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Rows on which ggml aborts for this reference file (IQ3's neighbour
/// search asserts when every distance is infinite): tensorcast writes a
/// block there instead of aborting, but ggml gives nothing to compare.
fn skipped(file: &str) -> Vec<usize> {
    std::fs::read(fixtures().join("edge").join(file))
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or_default()
}

/// Each edge row (zeros, equal values, one huge value, subnormals, values
/// beyond f16, ties …) gives ggml's bytes, row by row so a failure names it.
#[test]
fn edge_rows_match_ggml() {
    let x = floats("edge.f32");
    let names: Vec<String> =
        serde_json::from_slice(&std::fs::read(fixtures().join("edge.json")).unwrap()).unwrap();
    assert_eq!(names.len() * ROW, x.len());
    let mut failures = Vec::new();
    for t in TYPES {
        if WEIGHTS_ONLY.contains(&t) {
            // Refused without weights, as ggml refuses.
            let q = QuantType::from_name(t).unwrap();
            assert!(
                tensorcast_quant::quantize(q, &x[..ROW], &mut Vec::new()).is_none(),
                "{t}"
            );
            continue;
        }
        let want = std::fs::read(fixtures().join("edge").join(format!("{t}.bin"))).unwrap();
        let per_row = want.len() / names.len();
        let skip = skipped(&format!("{t}.skip.json"));
        for (i, name) in names.iter().enumerate() {
            let got = quantized(t, &x[i * ROW..(i + 1) * ROW]);
            if skip.contains(&i) {
                assert_eq!(got.len(), per_row, "{t}: {name}");
                continue;
            }
            if got != want[i * per_row..(i + 1) * per_row] {
                failures.push(format!("{t}: {name}"));
            }
        }
    }
    assert!(failures.is_empty(), "differ from ggml: {failures:#?}");
}

/// The same rows with an importance matrix (weights from 0 to 5, some zero,
/// one of 10⁶): ggml's `quantize_row_*_impl` paths, byte for byte.
#[test]
fn edge_rows_with_an_imatrix_match_ggml() {
    let x = floats("edge.f32");
    let w = floats("edge.imatrix.f32");
    let names: Vec<String> =
        serde_json::from_slice(&std::fs::read(fixtures().join("edge.json")).unwrap()).unwrap();
    let mut failures = Vec::new();
    for t in TYPES {
        let want = std::fs::read(fixtures().join("edge").join(format!("{t}.imatrix.bin"))).unwrap();
        let per_row = want.len() / names.len();
        let skip = skipped(&format!("{t}.imatrix.skip.json"));
        for (i, name) in names.iter().enumerate() {
            let got = weighted(t, &x[i * ROW..(i + 1) * ROW], &w);
            if skip.contains(&i) {
                assert_eq!(got.len(), per_row, "{t}: {name}");
                continue;
            }
            if got != want[i * per_row..(i + 1) * per_row] {
                failures.push(format!("{t}: {name}"));
            }
        }
    }
    assert!(failures.is_empty(), "differ from ggml: {failures:#?}");
}

/// The generator's splitmix64 stream.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// u − 0.5 with u = (bits >> 40) · 2⁻²⁴, exactly as numpy computes it.
    fn centered(&mut self) -> f32 {
        (self.next() >> 40) as f32 * (2f32).powi(-24) - 0.5
    }
}

/// generate.py's `random_weights`.
fn random_weights() -> Vec<f32> {
    let mut rng = SplitMix(0x1A71_21C5);
    (0..ROW)
        .map(|i| {
            let bits = rng.next();
            if i % 17 == 0 {
                0.0
            } else {
                (bits >> 40) as f32 * (2f32).powi(-24) * 4.0
            }
        })
        .collect()
}

/// generate.py's `random_rows`, float step by float step.
fn random_rows(rows: usize) -> Vec<f32> {
    let mut rng = SplitMix(0x7E57_CA57);
    let mut out = Vec::with_capacity(rows * ROW);
    for r in 0..rows {
        let scale = (2f32).powi(-((r % 12) as i32));
        for i in 0..ROW {
            let a = rng.centered();
            let mut v = if r % 2 == 1 { a * rng.centered() * 8.0 } else { a };
            v *= scale;
            if i == (r * 37) % ROW {
                v *= 64.0;
            }
            out.push(v);
        }
    }
    out
}

/// A million pseudo-random values (4,096 rows, scales 1 to 2⁻¹¹, an outlier
/// per row) give the bytes whose sha256 ggml's output has, without and
/// with an importance matrix.
#[test]
fn random_rows_match_ggml_digests() {
    let want: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("random.json")).unwrap()).unwrap();
    let rows = want["rows"].as_u64().unwrap() as usize;
    let x = random_rows(rows);
    let first: Vec<f64> = x[ROW..ROW + 4].iter().map(|&v| f64::from(v)).collect();
    let recorded: Vec<f64> = want["first_values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(first, recorded, "the input stream differs from the generator's");
    let w = random_weights();
    let recorded: Vec<f64> = want["first_weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(w[..4].iter().map(|&v| f64::from(v)).collect::<Vec<_>>(), recorded);
    let mut failures = Vec::new();
    for t in TYPES {
        if !WEIGHTS_ONLY.contains(&t) {
            let digest = format!("{:x}", Sha256::digest(quantized(t, &x)));
            if digest != want["sha256"][t].as_str().unwrap() {
                failures.push(t.to_string());
            }
        }
        let digest = format!("{:x}", Sha256::digest(weighted(t, &x, &w)));
        if digest != want["sha256_imatrix"][t].as_str().unwrap() {
            failures.push(format!("{t} with imatrix"));
        }
    }
    assert!(failures.is_empty(), "differ from ggml: {failures:?}");
}
