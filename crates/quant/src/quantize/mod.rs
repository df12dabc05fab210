//! Quantizers for every block type `llama-quantize` writes without an
//! importance matrix, each bit-identical to what ggml's
//! `ggml_quantize_chunk` produces on x86-64 (ggml-base is compiled without
//! FMA there, and Rust never fuses `a * b + c` on its own).
//!
//! Blocks never straddle rows (a row is a whole number of blocks), so a
//! tensor is quantized as one flat run of blocks, in any split along block
//! boundaries, with the same bytes.

mod grid;
mod groups;
mod iq1;
mod iq2;
mod iq3;
mod iq4;
mod kquants;
mod legacy;
mod search;
mod ternary;
mod weighted;

use tensorcast_core::cast::float::{f16_to_f32, f32_to_f16};
use tensorcast_core::QuantType;

/// ggml's `GGML_FP32_TO_FP16`: round to nearest even, every NaN as a quiet
/// NaN with no payload (the core cast keeps payload bits).
pub(crate) fn ggml_f16(v: f32) -> u16 {
    if v.is_nan() {
        (((v.to_bits() >> 16) & 0x8000) as u16) | 0x7e00
    } else {
        f32_to_f16(v)
    }
}

/// The value of f16 bits (ggml re-reads scales it has just stored).
pub(crate) fn f16_value(h: u16) -> f32 {
    f16_to_f32(h)
}

/// One block type's quantizer: one block of values in, its bytes appended.
type BlockFn = fn(&[f32], &mut Vec<u8>);

/// The quantizer of `q`, if tensorcast has one.
fn block_fn(q: QuantType) -> Option<BlockFn> {
    Some(match q.name() {
        "Q4_0" => legacy::q4_0,
        "Q4_1" => legacy::q4_1,
        "Q5_0" => legacy::q5_0,
        "Q5_1" => legacy::q5_1,
        "Q8_0" => legacy::q8_0,
        "Q2_K" => kquants::q2_k,
        "Q3_K" => kquants::q3_k,
        "Q4_K" => kquants::q4_k,
        "Q5_K" => kquants::q5_k,
        "Q6_K" => kquants::q6_k,
        "IQ2_S" => |x, out| iq2::iq2_s(x, None, out),
        "IQ1_M" => |x, out| iq1::iq1_m(x, None, out),
        "IQ3_XXS" => |x, out| iq3::iq3_xxs(x, None, out),
        "IQ3_S" => |x, out| iq3::iq3_s(x, None, out),
        "IQ4_NL" => iq4::iq4_nl,
        "IQ4_XS" => iq4::iq4_xs,
        "TQ1_0" => ternary::tq1_0,
        "TQ2_0" => ternary::tq2_0,
        "MXFP4" => ternary::mxfp4,
        _ => return None,
    })
}

/// Types whose ggml quantizer works only with importance weights (it
/// asserts without): [`quantize_weighted`] produces them, [`quantize`] not.
fn needs_weights(q: QuantType) -> bool {
    matches!(q.name(), "IQ2_XXS" | "IQ2_XS" | "IQ1_S")
}

/// True for the types [`quantize`] or (given weights) [`quantize_weighted`] produces.
pub fn can_quantize(q: QuantType) -> bool {
    block_fn(q).is_some() || needs_weights(q)
}

/// Quantizes `rows` of `n_per_row` values each to `q` with importance
/// weights `imatrix` (one per column), appending bytes identical to
/// `ggml_quantize_chunk` given that imatrix. Types whose ggml quantizer
/// ignores the weights (Q8_0, TQ1_0, TQ2_0, MXFP4) quantize as without.
/// `None` for types without a quantizer or when the lengths do not fit.
pub fn quantize_weighted(
    q: QuantType,
    rows: &[f32],
    n_per_row: usize,
    imatrix: &[f32],
    out: &mut Vec<u8>,
) -> Option<()> {
    let block = q.block_elems() as usize;
    if n_per_row == 0
        || imatrix.len() != n_per_row
        || !n_per_row.is_multiple_of(block)
        || !rows.len().is_multiple_of(n_per_row)
    {
        return None;
    }
    if !can_quantize(q) {
        return None;
    }
    for row in rows.chunks_exact(n_per_row) {
        if weighted::quantize_row(q.name(), row, imatrix, out).is_none() {
            quantize(q, row, out)?;
        }
    }
    Some(())
}

/// Quantizes `values` (a whole number of `q`'s blocks; a trailing partial
/// block is ignored) to `q`, appending bytes identical to ggml's
/// `ggml_quantize_chunk` without an importance matrix. `None` for types
/// without a quantizer.
pub fn quantize(q: QuantType, values: &[f32], out: &mut Vec<u8>) -> Option<()> {
    let f = block_fn(q)?;
    let block = q.block_elems() as usize;
    out.reserve(values.len() / block * q.block_bytes() as usize);
    for b in values.chunks_exact(block) {
        f(b, out);
    }
    Some(())
}
