//! Dequantization (and, for the legacy types, quantization) of ggml blocks,
//! bit-identical to gguf-py's `gguf.quants`, which is bit-exact to ggml.
//!
//! Every kernel keeps the reference's order of float operations and never
//! fuses `a * b + c` (Rust only fuses through `mul_add`, which is not used).
//! Kernels work one block at a time on byte slices, so file payloads need no
//! alignment; [`dequantize`] spreads large inputs over rayon's threads.
//!
//! The kernels live apart from the GGUF crate because every format that
//! holds blocks (GGUF, tpack) and every front end that decodes them needs
//! them, and a build without GGUF still dequantizes a tpack's blocks.
#![deny(missing_docs)]

mod adapter;
mod filetype;
mod fp4;
pub mod grids;
mod imatrix;
mod iquants;
mod kquants;
mod legacy;
pub mod plan;
mod quantize;
mod requant;
mod ternary;

pub use adapter::{no_dequantizer, Dequantize};
pub use filetype::{file_type_names, FileType};
pub use imatrix::{normalize_counts, normalize_legacy, Imatrix};
pub use quantize::{can_quantize, quantize, quantize_weighted};
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

/// A 16-entry i8 codebook as f32 (exactly), so a lookup needs no conversion.
pub(crate) const fn widen16(t: &[i8; 16]) -> [f32; 16] {
    let mut w = [0f32; 16];
    let mut i = 0;
    while i < 16 {
        w[i] = t[i] as f32;
        i += 1;
    }
    w
}

/// `d × table[nibble]` for the `N` bytes of `qs`: low nibbles into `lo`,
/// high nibbles into `hi` (the layout of every 4-bit codebook block).
#[inline(always)]
pub(crate) fn nibble_lookup<const N: usize>(
    d: f32,
    table: &[f32; 16],
    qs: &[u8],
    lo: &mut [f32],
    hi: &mut [f32],
) {
    let (Ok(qs), Ok(lo), Ok(hi)) = (
        <&[u8; N]>::try_from(qs),
        <&mut [f32; N]>::try_from(lo),
        <&mut [f32; N]>::try_from(hi),
    ) else {
        return;
    };
    for ((&x, l), h) in qs.iter().zip(lo).zip(hi) {
        *l = d * table[usize::from(x & 0x0f)];
        *h = d * table[usize::from(x >> 4)];
    }
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

/// One block type's decoder as a type, so a loop generic over it calls
/// `decode` statically and inlines it into the loop's target features. (A
/// kernel passed as a fn item went through `Fn::call`, a shim LLVM left out
/// of line and compiled for the baseline: SSE2 code under the AVX2 loop.)
pub(crate) trait Kernel {
    /// Decodes one block into its `block_elems` values.
    fn decode(block: &[u8], out: &mut [f32]);
}

/// Declares `$k`, a [`Kernel`] type for the kernel function `$f`.
macro_rules! kernel {
    ($k:ident = $f:path) => {
        struct $k;
        impl Kernel for $k {
            #[inline(always)]
            fn decode(block: &[u8], out: &mut [f32]) {
                $f(block, out)
            }
        }
    };
}

/// Expands `$body` once per kernel, with the type `$k` its [`Kernel`], so
/// every kernel is inlined into whichever loop (baseline or AVX2) is
/// compiled around it.
macro_rules! for_each_kernel {
    ($q:expr, $k:ident => $body:expr) => {
        match $q.name() {
            "Q4_0" => {
                kernel!($k = legacy::q4_0);
                Some($body)
            }
            "Q4_1" => {
                kernel!($k = legacy::q4_1);
                Some($body)
            }
            "Q5_0" => {
                kernel!($k = legacy::q5_0);
                Some($body)
            }
            "Q5_1" => {
                kernel!($k = legacy::q5_1);
                Some($body)
            }
            "Q8_0" => {
                kernel!($k = legacy::q8_0);
                Some($body)
            }
            "Q2_K" => {
                kernel!($k = kquants::q2_k);
                Some($body)
            }
            "Q3_K" => {
                kernel!($k = kquants::q3_k);
                Some($body)
            }
            "Q4_K" => {
                kernel!($k = kquants::q4_k);
                Some($body)
            }
            "Q5_K" => {
                kernel!($k = kquants::q5_k);
                Some($body)
            }
            "Q6_K" => {
                kernel!($k = kquants::q6_k);
                Some($body)
            }
            "IQ2_XXS" => {
                kernel!($k = iquants::iq2_xxs);
                Some($body)
            }
            "IQ2_XS" => {
                kernel!($k = iquants::iq2_xs);
                Some($body)
            }
            "IQ2_S" => {
                kernel!($k = iquants::iq2_s);
                Some($body)
            }
            "IQ3_XXS" => {
                kernel!($k = iquants::iq3_xxs);
                Some($body)
            }
            "IQ3_S" => {
                kernel!($k = iquants::iq3_s);
                Some($body)
            }
            "IQ1_S" => {
                kernel!($k = iquants::iq1_s);
                Some($body)
            }
            "IQ1_M" => {
                kernel!($k = iquants::iq1_m);
                Some($body)
            }
            "IQ4_NL" => {
                kernel!($k = iquants::iq4_nl);
                Some($body)
            }
            "IQ4_XS" => {
                kernel!($k = iquants::iq4_xs);
                Some($body)
            }
            "TQ1_0" => {
                kernel!($k = ternary::tq1_0);
                Some($body)
            }
            "TQ2_0" => {
                kernel!($k = ternary::tq2_0);
                Some($body)
            }
            "MXFP4" => {
                kernel!($k = fp4::mxfp4);
                Some($body)
            }
            "NVFP4" => {
                kernel!($k = fp4::nvfp4);
                Some($body)
            }
            _ => None,
        }
    };
}

/// Runs `K` over every block (inlined into the caller's target features).
#[inline(always)]
fn blocks<K: Kernel>(input: &[u8], out: &mut [f32], bb: usize, be: usize) {
    for (block, dst) in input.chunks_exact(bb).zip(out.chunks_exact_mut(be)) {
        K::decode(block, dst);
    }
}

/// The block loop for `q` compiled for the baseline target.
fn run_baseline(q: QuantType, input: &[u8], out: &mut [f32]) -> Option<()> {
    let (bb, be) = (q.block_bytes() as usize, q.block_elems() as usize);
    for_each_kernel!(q, K => blocks::<K>(input, out, bb, be))
}

/// The same loop compiled with AVX2 enabled. IEEE multiply/add/subtract give
/// the same bits whatever the instruction set, and Rust never contracts to
/// FMA, so the results equal the baseline's exactly. One function per
/// kernel: in a single function holding all 23, LLVM's choices for one
/// kernel moved with edits to another (MXFP4 and Q3_K lost their vector
/// code, at half speed, when the streaming loop gained a few lines).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn blocks_avx2<K: Kernel>(input: &[u8], out: &mut [f32], bb: usize, be: usize) {
    blocks::<K>(input, out, bb, be)
}

/// The AVX2 loop writing through [`streamed`]: blocks decode into a scratch
/// that stays in L1, which is then streamed to `out` past the caches.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn streamed_avx2<K: Kernel>(input: &[u8], out: &mut [f32], bb: usize, be: usize) {
    streamed::<K>(input, out, bb, be)
}

/// Floats decoded per step of [`streamed`] (2 KiB): small, so a step's
/// streaming stores drain while the next step decodes (4096 was a third
/// slower), and a multiple of every block's element count (32, 64 or 256).
#[cfg(target_arch = "x86_64")]
const STEP_ELEMS: usize = 512;

/// Floats of a 64-byte cache line.
#[cfg(target_arch = "x86_64")]
const LINE_ELEMS: usize = 16;

/// A step's decoded values, after the part of a line the last step left
/// (and a line of room, so that part moves as one fixed-size copy).
#[cfg(target_arch = "x86_64")]
#[repr(align(64))]
struct Scratch([f32; STEP_ELEMS + 2 * LINE_ELEMS]);

/// Runs `K` over every block, a step of [`STEP_ELEMS`] values at a time,
/// into a scratch that stays in L1, and moves each step's whole cache lines
/// of `out` there with non-temporal stores; the values short of a line wait
/// in the scratch for the next step. A decoded value is then written once to
/// memory, instead of its line being read first and evicted later: kernels
/// write 4–30 bytes per byte they read, so stores are their cost. Only the
/// lines at the two ends of `out` get plain stores: a line written both ways
/// is flushed and refetched (on this 2-core VM Q8_0 went from 4–8 to
/// 15–20 GB/s of output, twice a one-core memcpy).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn streamed<K: Kernel>(input: &[u8], out: &mut [f32], bb: usize, be: usize) {
    let mut scratch = Scratch([0f32; STEP_ELEMS + 2 * LINE_ELEMS]);
    let per_step = STEP_ELEMS / be;
    // Values until out reaches a line boundary: plain stores.
    let mut head = (out.as_ptr() as usize).wrapping_neg() % 64 / 4;
    let (mut carry, mut done) = (0usize, 0usize);
    for src in input.chunks(bb * per_step) {
        let n = src.len() / bb * be;
        let Some(step) = scratch.0.get_mut(carry..carry + n) else {
            return;
        };
        blocks::<K>(src, step, bb, be);
        let ready = carry + n;
        let plain = head.min(ready);
        let Some(dst) = out.get_mut(done..) else { return };
        let lines = (ready - plain) / LINE_ELEMS * LINE_ELEMS;
        if dst.len() < plain + lines {
            return;
        }
        if plain > 0 {
            dst[..plain].copy_from_slice(&scratch.0[..plain]);
        }
        // SAFETY: only reached from `streamed_avx2`, which runs when
        // the CPU has AVX2; `dst` holds plain + lines values, checked above.
        unsafe { stream_lines(&scratch.0[plain..plain + lines], dst[plain..].as_mut_ptr()) };
        head -= plain;
        done += plain + lines;
        carry = ready - plain - lines;
        // The (under a line of) values left move to the front as one
        // fixed-size copy: a memmove call per step cost a fifth of Q8_0's time.
        let rest = plain + lines;
        let Some(Ok(left)) = scratch
            .0
            .get(rest..rest + LINE_ELEMS)
            .map(<[f32; LINE_ELEMS]>::try_from)
        else {
            return;
        };
        scratch.0[..LINE_ELEMS].copy_from_slice(&left);
    }
    if let Some(dst) = out.get_mut(done..done + carry) {
        dst.copy_from_slice(&scratch.0[..carry]);
    }
    // SAFETY: SSE is part of x86_64. Streaming stores are weakly ordered:
    // the fence makes them visible before anything this thread does next
    // (handing the buffer to another thread among it).
    unsafe { std::arch::x86_64::_mm_sfence() };
}

/// Writes `src` (whole cache lines of values) to `dst` with non-temporal
/// stores. `dst` must be 64-byte aligned and hold `src.len()` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn stream_lines(src: &[f32], dst: *mut f32) {
    use std::arch::x86_64::{_mm256_loadu_ps, _mm256_stream_ps};
    for (i, line) in src.chunks_exact(LINE_ELEMS).enumerate() {
        // SAFETY: the caller gives room for src.len() values at an aligned
        // `dst`, so both 8-value stores of a line are inside it and 32-byte
        // aligned.
        unsafe {
            let at = dst.add(LINE_ELEMS * i);
            _mm256_stream_ps(at, _mm256_loadu_ps(line.as_ptr()));
            _mm256_stream_ps(at.add(8), _mm256_loadu_ps(line.as_ptr().add(8)));
        }
    }
}

/// Outputs from this size on are written with streaming stores: they do not
/// stay in the caches anyway (twice a core's L2 here), so a store that reads
/// the line first only halves the bandwidth. Smaller outputs — the 4 MiB
/// chunks a conversion decodes and hands to `write` at once — keep plain
/// stores, so the write finds them in cache.
const STREAM_FROM_BYTES: usize = 8 << 20;

fn run(q: QuantType, input: &[u8], out: &mut [f32], stream: bool) -> Option<()> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        let (bb, be) = (q.block_bytes() as usize, q.block_elems() as usize);
        // SAFETY: the CPU supports AVX2, checked just above.
        return for_each_kernel!(q, K => unsafe {
            if stream {
                streamed_avx2::<K>(input, out, bb, be)
            } else {
                blocks_avx2::<K>(input, out, bb, be)
            }
        });
    }
    let _ = stream;
    run_baseline(q, input, out)
}

/// True when `q` has a reference dequantizer (Q8_1, Q8_K, Q1_0 and Q2_0 do not).
pub fn can_dequantize(q: QuantType) -> bool {
    for_each_kernel!(q, _K => ()).is_some()
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
    let stream = out.len() * 4 >= STREAM_FROM_BYTES;
    if input.len() / bb <= BLOCKS_PER_TASK {
        run(q, input, out, stream);
    } else {
        input
            .par_chunks(bb * BLOCKS_PER_TASK)
            .zip(out.par_chunks_mut(be * BLOCKS_PER_TASK))
            .for_each(|(i, o)| {
                run(q, i, o, stream);
            });
    }
    Ok(())
}

/// The streaming loop against the plain one (it exists only on x86_64).
#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// Pseudo-random block bytes (any bits: NaN and subnormal scales too,
    /// which both loops must decode alike).
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn streamed_stores_write_what_the_plain_loop_writes() {
        for q in QuantType::all().filter(|&q| can_dequantize(q)) {
            let (bb, be) = (q.block_bytes() as usize, q.block_elems() as usize);
            let per_step = STEP_ELEMS / be;
            for count in [1, 2, per_step, per_step + 1, 3 * per_step + 5] {
                let input = noise(count * bb, (count * bb) as u64 ^ u64::from(q.ggml_id()));
                let n = count * be;
                let mut want = vec![0f32; n];
                run_baseline(q, &input, &mut want).unwrap();
                // Every start within a cache line, and a sentinel either side.
                for offset in 0..17 {
                    let mut got = vec![-7.5f32; n + 34];
                    run(q, &input, &mut got[offset..offset + n], true).unwrap();
                    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&got[offset..offset + n]),
                        bits(&want),
                        "{} ×{count} at +{offset}",
                        q.name()
                    );
                    assert!(got[..offset].iter().chain(&got[offset + n..]).all(|&v| v == -7.5));
                }
                let mut plain = vec![0f32; n];
                run(q, &input, &mut plain, false).unwrap();
                assert_eq!(
                    plain.iter().map(|f| f.to_bits()).collect::<Vec<_>>(),
                    want.iter().map(|f| f.to_bits()).collect::<Vec<_>>()
                );
            }
        }
    }
}
