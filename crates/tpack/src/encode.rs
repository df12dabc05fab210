//! The writer's half of the codecs (spec §3): how each chunk is stored, and
//! compressing it. zstd contexts and buffers live per thread and are reused
//! from chunk to chunk: a fresh context allocates its tables and fresh
//! buffers fault their pages in on every chunk, which cost ~0.4 M page
//! faults and 0.7-1.7 s of kernel time per GiB of bf16 on our 2-core VM.

use crate::codec::Codec;
use std::cell::RefCell;
use std::io;
use zstd::bulk::Compressor;

/// Encodes one chunk with `codec` at zstd `level` (the level applies to the
/// zstd codec; plane codecs use literal-tuned zstd); falls back to raw when
/// that is not smaller. Returns the codec used and the stored bytes.
pub fn encode(data: &[u8], codec: Codec, level: i32) -> (Codec, Vec<u8>) {
    encode_or_raw(data, codec, level).unwrap_or_else(|| (Codec::Raw, data.to_vec()))
}

/// As [`encode`], but `None` when the chunk is to be stored raw, so the
/// caller writes the bytes it holds instead of a copy (for quantized blocks,
/// most chunks: a 4 MiB copy each, and the memory two groups of them hold).
pub fn encode_or_raw(data: &[u8], codec: Codec, level: i32) -> Option<(Codec, Vec<u8>)> {
    thread_local! {
        static ENCODER: RefCell<Option<Encoder>> = const { RefCell::new(None) };
    }
    let encoded = ENCODER.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            *cell = Some(Encoder::new()?);
        }
        cell.as_mut().expect("just set").encode(data, codec, level)
    });
    encoded.ok().flatten()
}

/// A thread's compression contexts and scratch buffers. Buffers only grow;
/// each step says how much of one it filled.
struct Encoder {
    contexts: Contexts,
    /// Byte planes of the chunk.
    planes: Vec<u8>,
    /// The slices of a large chunk a strategy is chosen on, and their planes.
    sample: Vec<u8>,
    sample_planes: Vec<u8>,
    /// Compressed output: the chunk's, a sample's, and trials.
    out: Vec<u8>,
    sample_out: Vec<u8>,
    trial: Vec<u8>,
}

struct Contexts {
    /// Literal-tuned compressors, one per entry of [`PLANE_BLOCKS`].
    literal: Vec<Compressor<'static>>,
    /// Plain zstd at the last level asked for (a writer uses one; keeping
    /// only that one bounds what a thread holds after a level-19 write).
    leveled: Option<(i32, Compressor<'static>)>,
}

impl Contexts {
    fn leveled(&mut self, level: i32) -> io::Result<&mut Compressor<'static>> {
        if self.leveled.as_ref().is_none_or(|(l, _)| *l != level) {
            self.leveled = Some((level, Compressor::new(level)?));
        }
        Ok(&mut self.leveled.as_mut().expect("just set").1)
    }
}

/// Compresses `src` into the front of `buf` (grown to zstd's bound first);
/// returns the compressed length.
fn compress_into(c: &mut Compressor<'static>, src: &[u8], buf: &mut Vec<u8>) -> io::Result<usize> {
    c.compress_to_buffer(src, room(buf, zstd::zstd_safe::compress_bound(src.len())))
}

/// The first `n` bytes of `buf`, grown (zero-filled) when shorter.
fn room(buf: &mut Vec<u8>, n: usize) -> &mut [u8] {
    if buf.len() < n {
        buf.resize(n, 0);
    }
    &mut buf[..n]
}

impl Encoder {
    fn new() -> io::Result<Encoder> {
        let literal = PLANE_BLOCKS
            .iter()
            .map(|&block| literal_compressor(block))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Encoder {
            contexts: Contexts {
                literal,
                leveled: None,
            },
            planes: Vec::new(),
            sample: Vec::new(),
            sample_planes: Vec::new(),
            out: Vec::new(),
            sample_out: Vec::new(),
            trial: Vec::new(),
        })
    }

    /// The codec used and the stored bytes, or None when they would not be
    /// smaller than `data` (stored raw).
    fn encode(&mut self, data: &[u8], codec: Codec, level: i32) -> io::Result<Option<(Codec, Vec<u8>)>> {
        let (used, n) = match codec {
            Codec::Raw => return Ok(None),
            Codec::Planes(w) | Codec::RotPlanes(w) if data.len().is_multiple_of(w as usize) => {
                let strategy = self.pick_float_strategy(data, codec, level);
                let planes = planes_of(data, codec, &mut self.planes);
                strategy.compress(
                    &mut self.contexts,
                    data,
                    planes,
                    codec,
                    level,
                    &mut self.out,
                    &mut self.trial,
                )?
            }
            _ => {
                let literal = if data.len() > WORTH_FROM {
                    match self.worth_zstd(data, level)? {
                        None => return Ok(None),
                        Some(literal) => literal,
                    }
                } else {
                    false
                };
                let c = if literal {
                    self.contexts
                        .literal
                        .last_mut()
                        .expect("PLANE_BLOCKS is not empty")
                } else {
                    self.contexts.leveled(level)?
                };
                (Codec::Zstd, compress_into(c, data, &mut self.out)?)
            }
        };
        Ok((n < data.len()).then(|| (used, self.out[..n].to_vec())))
    }

    /// Whether zstd saves at least [`MIN_SAVING`] ([`MIN_SAVING_FAST`] at
    /// the default level and below) on slices from across a
    /// large chunk (None when not), and if so whether the literal-tuned
    /// compressor does as well as the level asked for (`Some(true)`).
    /// Quantized blocks (Q4_K, Q6_K, …) are near-random bytes: compressing a
    /// whole 4 MiB chunk of them only to store it raw was most of a GGUF →
    /// tpack run. Those that do shrink (Q8_0's int8 values and f16 scales)
    /// shrink by their entropy, not by repeats: the real Gemma 3 Q8_0
    /// embedding (178 MB) compressed to the same size within 0.1% with
    /// literal coding, at several times level 3's speed.
    fn worth_zstd(&mut self, data: &[u8], level: i32) -> io::Result<Option<bool>> {
        // Slices in proportion to the chunk: four fixed 32 KiB slices were
        // 40% of a 330 KB tensor, and a 4 GiB model has thousands of those.
        let slice = (data.len() / WORTH_SHARE).clamp(WORTH_SLICE_MIN, SLICE_BYTES);
        let stride = (data.len() - slice) / (SAMPLE_SLICES - 1);
        self.sample.clear();
        for k in 0..SAMPLE_SLICES {
            self.sample
                .extend_from_slice(&data[k * stride..k * stride + slice]);
        }
        let n = compress_into(self.contexts.leveled(level)?, &self.sample, &mut self.sample_out)?;
        let least = if level > LITERAL_UP_TO_LEVEL {
            MIN_SAVING
        } else {
            MIN_SAVING_FAST
        };
        if (n as f64) >= self.sample.len() as f64 * (1.0 - least) {
            return Ok(None);
        }
        // Higher levels are asked for size: they keep their own compressor.
        if level > LITERAL_UP_TO_LEVEL {
            return Ok(Some(false));
        }
        let literal = self
            .contexts
            .literal
            .last_mut()
            .expect("PLANE_BLOCKS is not empty");
        let m = compress_into(literal, &self.sample, &mut self.sample_out)?;
        Ok(Some((m as f64) <= n as f64 * (1.0 + LITERAL_SLACK)))
    }

    /// The strategy that makes the smallest output on a sample of the chunk
    /// (the whole chunk when it is small). Slices from across the chunk, not
    /// its start: tensors change character along their rows.
    fn pick_float_strategy(&mut self, data: &[u8], codec: Codec, level: i32) -> FloatStrategy {
        let sample = if data.len() <= SAMPLE_BYTES {
            data
        } else {
            let w = codec.plane_width();
            let stride = (data.len() - SLICE_BYTES) / (SAMPLE_SLICES - 1);
            let stride = stride - stride % w;
            self.sample.clear();
            for k in 0..SAMPLE_SLICES {
                self.sample
                    .extend_from_slice(&data[k * stride..k * stride + SLICE_BYTES]);
            }
            &self.sample
        };
        let planes = planes_of(sample, codec, &mut self.sample_planes);
        FloatStrategy::ALL
            .into_iter()
            .min_by_key(|s| {
                s.compress(
                    &mut self.contexts,
                    sample,
                    planes,
                    codec,
                    level,
                    &mut self.sample_out,
                    &mut self.trial,
                )
                .map_or(usize::MAX, |(_, n)| n)
            })
            .unwrap_or(FloatStrategy::PlanesLiterals)
    }
}

/// `data`'s byte planes for `codec`, in the front of `buf`.
fn planes_of<'b>(data: &[u8], codec: Codec, buf: &'b mut Vec<u8>) -> &'b [u8] {
    let (w, rot) = match codec {
        Codec::Planes(w) => (w as usize, false),
        Codec::RotPlanes(w) => (w as usize, true),
        _ => (1, false),
    };
    let out = room(buf, data.len());
    crate::planes::to_planes(data, w, rot, out);
    out
}

/// How a float chunk is compressed. Which wins depends on the weights:
/// trained-like values favour planes with literal coding, weights with
/// repeated values (pruned, quantized-then-dequantized, tied rows) favour
/// LZ matches, and some favour plain zstd on the unplaned bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FloatStrategy {
    PlanesLiterals,
    PlanesMatches,
    Plain,
}

impl FloatStrategy {
    const ALL: [FloatStrategy; 3] = [
        FloatStrategy::PlanesLiterals,
        FloatStrategy::PlanesMatches,
        FloatStrategy::Plain,
    ];

    /// Compresses `data` (whose planes are `planes`) into the front of `out`;
    /// returns the codec it stands for and the length.
    #[allow(clippy::too_many_arguments)]
    fn compress(
        self,
        contexts: &mut Contexts,
        data: &[u8],
        planes: &[u8],
        codec: Codec,
        level: i32,
        out: &mut Vec<u8>,
        trial: &mut Vec<u8>,
    ) -> io::Result<(Codec, usize)> {
        let w = codec.plane_width();
        Ok(match self {
            FloatStrategy::PlanesLiterals => (
                codec,
                compress_planes(&mut contexts.literal, planes, w, out, trial)?,
            ),
            FloatStrategy::PlanesMatches => (codec, compress_into(contexts.leveled(level)?, planes, out)?),
            FloatStrategy::Plain => (Codec::Zstd, compress_into(contexts.leveled(level)?, data, out)?),
        })
    }
}

/// Chunks up to this size are tried whole with every strategy; larger ones
/// through [`SAMPLE_SLICES`] evenly spaced slices of [`SLICE_BYTES`]. (Four
/// 128 KiB slices, tried up to 1 MiB, chose the same strategies for every
/// chunk of the bench inputs, silero-vad and facenet, at ~1.4x the CPU.)
const SAMPLE_BYTES: usize = 256 << 10;
/// The least a sample must shrink for a large zstd-codec chunk to be
/// compressed at all: below it the chunk is stored raw, unread by zstd.
const MIN_SAVING: f64 = 0.03;
/// The same at the default level and below, where speed was asked for:
/// a chunk must shrink by a tenth to be worth compressing. Quantized blocks
/// that shrink less (the real Gemma 3's Q8_0 embedding: 9%, for 0.3 s of CPU
/// on 178 MB, GGUF -> tpack at 1.7x GGUF -> GGUF) are stored raw and copied
/// kernel-side; higher levels keep them compressed.
const MIN_SAVING_FAST: f64 = 0.10;
/// zstd-codec chunks above this size are sampled before being compressed.
const WORTH_FROM: usize = 64 << 10;
/// Each sampled slice is this fraction of the chunk (1/128: the four make
/// 1/32), within [`WORTH_SLICE_MIN`]..=[`SLICE_BYTES`].
const WORTH_SHARE: usize = 128;
/// The smallest sampled slice: zstd's statistics need a few KiB to mean anything.
const WORTH_SLICE_MIN: usize = 4 << 10;
const SAMPLE_SLICES: usize = 4;
/// Levels at which a sampled zstd-codec chunk may use the literal-tuned
/// compressor instead (the default level and below).
pub(crate) const LITERAL_UP_TO_LEVEL: i32 = 3;
/// How much larger than the level's own output the literal-tuned
/// compressor's may be on the sample and still be chosen.
const LITERAL_SLACK: f64 = 0.01;
const SLICE_BYTES: usize = 32 << 10;

/// zstd tuned for byte planes of floats: their bytes rarely repeat as
/// sequences, and chasing short matches costs both ratio and speed, so
/// matches must be 7+ bytes and the search is minimal; the entropy stage does
/// the work (measured on trained-like bf16: 0.68 of raw at 1.9 GB/s per core,
/// against 0.72 at 0.35 GB/s with level 3's defaults).
///
/// Each plane becomes a frame of its own, with the block size that makes it
/// smallest, and the frames are concatenated (RFC 8878 §3.1: a zstd decoder
/// decodes concatenated frames as one stream). Small blocks give each 8 KiB
/// of an exponent plane its own entropy tables, which follow the statistics
/// as they change along a tensor (real silero-vad weights: 75.8% of raw with
/// 8 KiB blocks, 79.2% with zstd's 128 KiB); near-uniform mantissa planes
/// gain from Huffman coding only over blocks long enough to pay for a table.
///
/// Writes the frames into the front of `out` and returns their length.
fn compress_planes(
    compressors: &mut [Compressor<'static>],
    planes: &[u8],
    w: usize,
    out: &mut Vec<u8>,
    trial: &mut Vec<u8>,
) -> io::Result<usize> {
    let n = planes.len() / w;
    let bound: usize = planes
        .chunks_exact(n.max(1))
        .map(|p| zstd::zstd_safe::compress_bound(p.len()))
        .sum();
    room(out, bound);
    let mut at = 0;
    for plane in planes.chunks_exact(n.max(1)) {
        at += if plane.len() > 2 * BLOCK_SAMPLE {
            // Long planes: the block size is chosen on a slice from the
            // middle, then the plane compressed once (trying both on the
            // whole plane doubled the time for a fraction of a percent).
            let mid = plane.len() / 2 - BLOCK_SAMPLE / 2;
            let k = smallest(compressors, &plane[mid..mid + BLOCK_SAMPLE], trial)?;
            compressors[k].compress_to_buffer(plane, &mut out[at..])?
        } else {
            smallest_into(compressors, plane, &mut out[at..], trial)?
        };
    }
    Ok(at)
}

/// Which compressor makes `data` smallest (the first of equals). The last
/// (largest blocks) is tried first: when even it cannot shrink `data` (a
/// plane of near-random mantissa bytes), smaller blocks, which only add block
/// headers, are not tried.
fn smallest(compressors: &mut [Compressor<'static>], data: &[u8], trial: &mut Vec<u8>) -> io::Result<usize> {
    let last = compressors.len() - 1;
    let mut best = (last, compress_into(&mut compressors[last], data, trial)?);
    if best.1 >= data.len() {
        return Ok(last);
    }
    for (k, c) in compressors[..last].iter_mut().enumerate().rev() {
        let len = compress_into(c, data, trial)?;
        if len <= best.1 {
            best = (k, len);
        }
    }
    Ok(best.0)
}

/// Compresses `data` with every compressor, keeps the smallest output (the
/// first of equals) in the front of `out`, and returns its length.
fn smallest_into(
    compressors: &mut [Compressor<'static>],
    data: &[u8],
    out: &mut [u8],
    trial: &mut Vec<u8>,
) -> io::Result<usize> {
    let mut best = usize::MAX;
    for (k, c) in compressors.iter_mut().enumerate() {
        if k == 0 {
            best = c.compress_to_buffer(data, &mut *out)?;
            continue;
        }
        let len = compress_into(c, data, trial)?;
        if len < best {
            out[..len].copy_from_slice(&trial[..len]);
            best = len;
        }
    }
    Ok(best)
}

/// The slice of a long plane on which its block size is chosen.
const BLOCK_SAMPLE: usize = 256 << 10;

/// The block sizes tried for each plane.
const PLANE_BLOCKS: [usize; 2] = [8 << 10, 128 << 10];

fn literal_compressor(block: usize) -> io::Result<Compressor<'static>> {
    use zstd::zstd_safe::{CParameter, Strategy};
    let mut c = Compressor::new(1)?;
    c.set_parameter(CParameter::MaxBlockSize(block as u32))?;
    c.set_parameter(CParameter::Strategy(Strategy::ZSTD_fast))?;
    c.set_parameter(CParameter::MinMatch(7))?;
    c.set_parameter(CParameter::HashLog(6))?;
    c.set_parameter(CParameter::ChainLog(6))?;
    c.set_parameter(CParameter::SearchLog(1))?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode;

    /// Bytes that look like bf16/f32 weights: small values, varied mantissas.
    fn weights(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n / 4)
            .flat_map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ((x % 20_000) as f32 * 1e-6 - 0.01).to_le_bytes()
            })
            .collect()
    }

    /// xorshift bytes, one in `small_one_in` of them drawn from 0..16.
    fn noise(n: usize, small_one_in: u64) -> Vec<u8> {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if (x >> 40).is_multiple_of(small_one_in) {
                    (x >> 8) as u8 & 15
                } else {
                    x as u8
                }
            })
            .collect()
    }

    #[test]
    fn large_chunks_zstd_barely_shrinks_are_stored_raw() {
        // Like quantized blocks: near-random bytes that zstd shrinks a
        // little (shown first), under MIN_SAVING, so the chunk stays raw.
        let blocks = noise(4 << 20, 5);
        let whole = zstd::bulk::compress(&blocks, 3).unwrap().len();
        assert!(whole < blocks.len() && (whole as f64) > blocks.len() as f64 * (1.0 - MIN_SAVING));
        assert_eq!(encode(&blocks, Codec::Zstd, 3).0, Codec::Raw);
        // A compressible chunk still compresses, and decodes back.
        let half = noise(4 << 20, 1);
        let (codec, stored) = encode(&half, Codec::Zstd, 3);
        assert_eq!(codec, Codec::Zstd);
        assert!(stored.len() < half.len() * 3 / 4);
        assert_eq!(decode(&stored, codec, half.len() as u64).unwrap(), half);
    }

    #[test]
    fn entropy_only_chunks_use_the_literal_compressor() {
        // Like Q8_0 blocks: bytes with a skewed distribution and no repeats
        // worth matching. At the default level the chunk is stored as the
        // literal-tuned compressor makes it; at level 9 as level 9 does.
        let blocks = noise(4 << 20, 1);
        let mut literal = literal_compressor(*PLANE_BLOCKS.last().unwrap()).unwrap();
        let expected = literal.compress(&blocks).unwrap();
        let (codec, stored) = encode(&blocks, Codec::Zstd, 3);
        assert_eq!((codec, stored.len()), (Codec::Zstd, expected.len()));
        assert_eq!(stored, expected);
        assert_eq!(decode(&stored, codec, blocks.len() as u64).unwrap(), blocks);
        let (codec, stored) = encode(&blocks, Codec::Zstd, 9);
        assert_eq!(stored, zstd::bulk::compress(&blocks, 9).unwrap());
        assert_eq!(decode(&stored, codec, blocks.len() as u64).unwrap(), blocks);
    }

    #[test]
    fn reused_state_changes_nothing() {
        // A large chunk first leaves long scratch buffers and used contexts
        // behind; what a later, smaller chunk encodes to must be what a fresh
        // thread makes of it (the writer's output may not depend on which
        // thread encoded what before).
        let big = weights(3 << 20, 1);
        let small = weights(300_000, 2);
        let codecs = [
            Codec::RotPlanes(2),
            Codec::RotPlanes(4),
            Codec::Planes(8),
            Codec::Zstd,
        ];
        // Plain zstd shrinks these floats by under a tenth: at the default
        // level they would be stored raw, so that codec runs at level 9.
        let level = |c: Codec| if c == Codec::Zstd { 9 } else { 3 };
        let fresh: Vec<_> = std::thread::spawn({
            let small = small.clone();
            move || codecs.map(|c| encode(&small, c, level(c)))
        })
        .join()
        .unwrap()
        .into();
        for (codec, expected) in codecs.into_iter().zip(fresh) {
            let (used, stored) = encode(&big, codec, level(codec));
            assert_eq!(decode(&stored, used, big.len() as u64).unwrap(), big);
            assert_eq!(encode(&small, codec, level(codec)), expected, "{codec:?}");
            assert_eq!(
                decode(&expected.1, expected.0, small.len() as u64).unwrap(),
                small
            );
            assert!(expected.1.len() < small.len());
        }
    }
}
