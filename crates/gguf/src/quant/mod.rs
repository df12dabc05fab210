//! Dequantization (and, for the legacy types, quantization) of ggml blocks,
//! bit-identical to gguf-py's `gguf.quants`, which is bit-exact to ggml.
//!
//! Every kernel keeps the reference's order of float operations and never
//! fuses `a * b + c` (Rust only fuses through `mul_add`, which is not used).
//! Kernels work one block at a time on byte slices, so file payloads need no
//! alignment; [`dequantize`] spreads large inputs over rayon's threads.

mod adapter;
mod fp4;
pub mod grids;
mod iquants;
mod kquants;
mod legacy;
mod requant;
mod ternary;

pub use adapter::Dequantize;
pub use legacy::{can_quantize, quantize};
pub use requant::Quantize;

use rayon::prelude::*;
use tensorcast_core::cast::float::f16_to_f32;
use tensorcast_core::QuantType;

/// A kernel: one block's bytes in, its elements out.
type Kernel = fn(&[u8], &mut [f32]);

/// Reads the little-endian f16 at `at` as f32.
#[inline(always)]
pub(crate) fn f16_at(b: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// Reads the little-endian u16 at `at`.
#[inline(always)]
pub(crate) fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// Reads the little-endian u32 at `at`.
#[inline(always)]
pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn kernel(q: QuantType) -> Option<Kernel> {
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
        "IQ2_XXS" => iquants::iq2_xxs,
        "IQ2_XS" => iquants::iq2_xs,
        "IQ2_S" => iquants::iq2_s,
        "IQ3_XXS" => iquants::iq3_xxs,
        "IQ3_S" => iquants::iq3_s,
        "IQ1_S" => iquants::iq1_s,
        "IQ1_M" => iquants::iq1_m,
        "IQ4_NL" => iquants::iq4_nl,
        "IQ4_XS" => iquants::iq4_xs,
        "TQ1_0" => ternary::tq1_0,
        "TQ2_0" => ternary::tq2_0,
        "MXFP4" => fp4::mxfp4,
        "NVFP4" => fp4::nvfp4,
        _ => return None,
    })
}

/// True when `q` has a reference dequantizer (Q8_1, Q8_K, Q1_0 and Q2_0 do not).
pub fn can_dequantize(q: QuantType) -> bool {
    kernel(q).is_some()
}

/// Blocks per parallel task: large enough to amortise scheduling.
const BLOCKS_PER_TASK: usize = 4096;

/// Dequantizes the whole blocks in `input` into `out`, which must hold
/// `blocks × block_elems` values. Errors name the type when it has no
/// reference dequantizer or the sizes disagree.
pub fn dequantize(q: QuantType, input: &[u8], out: &mut [f32]) -> Result<(), String> {
    let k =
        kernel(q).ok_or_else(|| format!("{} has no reference dequantizer (ggml defines none)", q.name()))?;
    let (bb, be) = (q.block_bytes() as usize, q.block_elems() as usize);
    if input.len() % bb != 0 || input.len() / bb * be != out.len() {
        return Err(format!(
            "{}: {} bytes do not make whole blocks for {} values",
            q.name(),
            input.len(),
            out.len()
        ));
    }
    let run = |inp: &[u8], o: &mut [f32]| {
        for (block, dst) in inp.chunks_exact(bb).zip(o.chunks_exact_mut(be)) {
            k(block, dst);
        }
    };
    if input.len() / bb <= BLOCKS_PER_TASK {
        run(input, out);
    } else {
        input
            .par_chunks(bb * BLOCKS_PER_TASK)
            .zip(out.par_chunks_mut(be * BLOCKS_PER_TASK))
            .for_each(|(i, o)| run(i, o));
    }
    Ok(())
}
