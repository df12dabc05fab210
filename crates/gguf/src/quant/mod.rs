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

pub use adapter::{no_dequantizer, Dequantize};
pub use legacy::{can_quantize, quantize};
pub use requant::Quantize;

use rayon::prelude::*;
use tensorcast_core::cast::float::f16_to_f32;
use tensorcast_core::QuantType;

/// Reads the little-endian f16 at `at` as f32.
#[inline(always)]
pub(crate) fn f16_at(b: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// A block and its output as fixed-size arrays: kernels that index them
/// need no bounds checks, and their loops compile to vector code (slices of
/// unknown length kept Q4_0 at half the speed of a copy).
#[inline(always)]
pub(crate) fn fixed<'a, 'b, const B: usize, const E: usize>(
    b: &'a [u8],
    out: &'b mut [f32],
) -> Option<(&'a [u8; B], &'b mut [f32; E])> {
    Some((b.get(..B)?.try_into().ok()?, out.get_mut(..E)?.try_into().ok()?))
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

/// Expands `$body` once per kernel, with `$k` bound to it, so every kernel
/// is inlined into whichever loop (baseline or AVX2) is compiled around it.
macro_rules! for_each_kernel {
    ($q:expr, $k:ident => $body:expr) => {
        match $q.name() {
            "Q4_0" => {
                let $k = legacy::q4_0;
                Some($body)
            }
            "Q4_1" => {
                let $k = legacy::q4_1;
                Some($body)
            }
            "Q5_0" => {
                let $k = legacy::q5_0;
                Some($body)
            }
            "Q5_1" => {
                let $k = legacy::q5_1;
                Some($body)
            }
            "Q8_0" => {
                let $k = legacy::q8_0;
                Some($body)
            }
            "Q2_K" => {
                let $k = kquants::q2_k;
                Some($body)
            }
            "Q3_K" => {
                let $k = kquants::q3_k;
                Some($body)
            }
            "Q4_K" => {
                let $k = kquants::q4_k;
                Some($body)
            }
            "Q5_K" => {
                let $k = kquants::q5_k;
                Some($body)
            }
            "Q6_K" => {
                let $k = kquants::q6_k;
                Some($body)
            }
            "IQ2_XXS" => {
                let $k = iquants::iq2_xxs;
                Some($body)
            }
            "IQ2_XS" => {
                let $k = iquants::iq2_xs;
                Some($body)
            }
            "IQ2_S" => {
                let $k = iquants::iq2_s;
                Some($body)
            }
            "IQ3_XXS" => {
                let $k = iquants::iq3_xxs;
                Some($body)
            }
            "IQ3_S" => {
                let $k = iquants::iq3_s;
                Some($body)
            }
            "IQ1_S" => {
                let $k = iquants::iq1_s;
                Some($body)
            }
            "IQ1_M" => {
                let $k = iquants::iq1_m;
                Some($body)
            }
            "IQ4_NL" => {
                let $k = iquants::iq4_nl;
                Some($body)
            }
            "IQ4_XS" => {
                let $k = iquants::iq4_xs;
                Some($body)
            }
            "TQ1_0" => {
                let $k = ternary::tq1_0;
                Some($body)
            }
            "TQ2_0" => {
                let $k = ternary::tq2_0;
                Some($body)
            }
            "MXFP4" => {
                let $k = fp4::mxfp4;
                Some($body)
            }
            "NVFP4" => {
                let $k = fp4::nvfp4;
                Some($body)
            }
            _ => None,
        }
    };
}

/// Runs `k` over every block (inlined into the caller's target features).
#[inline(always)]
fn blocks(k: impl Fn(&[u8], &mut [f32]), input: &[u8], out: &mut [f32], bb: usize, be: usize) {
    for (block, dst) in input.chunks_exact(bb).zip(out.chunks_exact_mut(be)) {
        k(block, dst);
    }
}

/// The block loop for `q` compiled for the baseline target.
fn run_baseline(q: QuantType, input: &[u8], out: &mut [f32]) -> Option<()> {
    let (bb, be) = (q.block_bytes() as usize, q.block_elems() as usize);
    for_each_kernel!(q, k => blocks(k, input, out, bb, be))
}

/// The same loop compiled with AVX2 enabled. IEEE multiply/add/subtract give
/// the same bits whatever the instruction set, and Rust never contracts to
/// FMA, so the results equal the baseline's exactly.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn run_avx2(q: QuantType, input: &[u8], out: &mut [f32]) -> Option<()> {
    let (bb, be) = (q.block_bytes() as usize, q.block_elems() as usize);
    for_each_kernel!(q, k => blocks(k, input, out, bb, be))
}

fn run(q: QuantType, input: &[u8], out: &mut [f32]) -> Option<()> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { run_avx2(q, input, out) };
    }
    run_baseline(q, input, out)
}

/// True when `q` has a reference dequantizer (Q8_1, Q8_K, Q1_0 and Q2_0 do not).
pub fn can_dequantize(q: QuantType) -> bool {
    for_each_kernel!(q, _k => ()).is_some()
}

/// Blocks per parallel task: large enough to amortise scheduling.
const BLOCKS_PER_TASK: usize = 4096;

/// Dequantizes the whole blocks in `input` into `out`, which must hold
/// `blocks × block_elems` values. Errors name the type when it has no
/// reference dequantizer or the sizes disagree.
pub fn dequantize(q: QuantType, input: &[u8], out: &mut [f32]) -> Result<(), String> {
    if !can_dequantize(q) {
        return Err(format!(
            "{} has no reference dequantizer (ggml defines none)",
            q.name()
        ));
    }
    let (bb, be) = (q.block_bytes() as usize, q.block_elems() as usize);
    if !input.len().is_multiple_of(bb) || input.len() / bb * be != out.len() {
        return Err(format!(
            "{}: {} bytes do not make whole blocks for {} values",
            q.name(),
            input.len(),
            out.len()
        ));
    }
    if input.len() / bb <= BLOCKS_PER_TASK {
        run(q, input, out);
    } else {
        input
            .par_chunks(bb * BLOCKS_PER_TASK)
            .zip(out.par_chunks_mut(be * BLOCKS_PER_TASK))
            .for_each(|(i, o)| {
                run(q, i, o);
            });
    }
    Ok(())
}
