//! Chunk codecs (spec §3): raw, zstd, and byte planes + zstd for floats.

use crate::rules;
use tensorcast_core::{DType, FormatError};

/// How a chunk's bytes are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// As they are.
    Raw,
    /// One zstd frame.
    Zstd,
    /// Byte planes of 2/4/8-byte elements, then one zstd frame.
    Planes(u8),
    /// Elements rotated left by one bit (the float's sign moves to the
    /// bottom, its exponent's top bits fill the top byte), then byte planes,
    /// then one zstd frame.
    RotPlanes(u8),
}

impl Codec {
    /// The id the manifest stores.
    pub fn id(self) -> u32 {
        match self {
            Codec::Raw => 0,
            Codec::Zstd => 1,
            Codec::Planes(2) => 2,
            Codec::Planes(4) => 3,
            Codec::Planes(_) => 4,
            Codec::RotPlanes(2) => 5,
            Codec::RotPlanes(4) => 6,
            Codec::RotPlanes(_) => 7,
        }
    }

    /// The codec with manifest id `id`.
    pub fn from_id(id: u32) -> Option<Codec> {
        Some(match id {
            0 => Codec::Raw,
            1 => Codec::Zstd,
            2 => Codec::Planes(2),
            3 => Codec::Planes(4),
            4 => Codec::Planes(8),
            5 => Codec::RotPlanes(2),
            6 => Codec::RotPlanes(4),
            7 => Codec::RotPlanes(8),
            _ => return None,
        })
    }

    /// Bytes per element the decoded length must be a multiple of.
    pub fn plane_width(self) -> usize {
        match self {
            Codec::Planes(w) | Codec::RotPlanes(w) => w as usize,
            _ => 1,
        }
    }

    /// A short name for `inspect`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Raw => "raw",
            Codec::Zstd => "zstd",
            Codec::Planes(2) => "planes2",
            Codec::Planes(4) => "planes4",
            Codec::Planes(_) => "planes8",
            Codec::RotPlanes(2) => "rplanes2",
            Codec::RotPlanes(4) => "rplanes4",
            Codec::RotPlanes(_) => "rplanes8",
        }
    }

    /// The compressing codec a writer uses for `dtype`: rotated byte planes
    /// for floats (the exponent gets a byte of its own and compresses to near
    /// its entropy; mantissa bytes are left as they are), zstd otherwise.
    pub fn for_dtype(dtype: DType) -> Codec {
        match dtype {
            DType::F16 | DType::BF16 => Codec::RotPlanes(2),
            DType::F32 | DType::C64 => Codec::RotPlanes(4),
            DType::F64 => Codec::RotPlanes(8),
            _ => Codec::Zstd,
        }
    }
}

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
fn compress_planes(planes: &[u8], w: usize) -> std::io::Result<Vec<u8>> {
    let n = planes.len() / w;
    let mut out = Vec::with_capacity(planes.len());
    let mut compressors = PLANE_BLOCKS
        .iter()
        .map(|&block| literal_compressor(block))
        .collect::<std::io::Result<Vec<_>>>()?;
    for plane in planes.chunks_exact(n.max(1)) {
        let best = if plane.len() > 2 * BLOCK_SAMPLE {
            // Long planes: the block size is chosen on a slice from the
            // middle, then the plane compressed once (trying both on the
            // whole plane doubled the time for a fraction of a percent).
            let mid = plane.len() / 2 - BLOCK_SAMPLE / 2;
            let (k, _) = smallest(&mut compressors, &plane[mid..mid + BLOCK_SAMPLE])?;
            compressors[k].compress(plane)?
        } else {
            smallest(&mut compressors, plane)?.1
        };
        out.extend_from_slice(&best);
    }
    Ok(out)
}

/// Which compressor makes `data` smallest, and its output.
fn smallest(
    compressors: &mut [zstd::bulk::Compressor<'static>],
    data: &[u8],
) -> std::io::Result<(usize, Vec<u8>)> {
    let mut best: Option<(usize, Vec<u8>)> = None;
    for (k, c) in compressors.iter_mut().enumerate() {
        let z = c.compress(data)?;
        if best.as_ref().is_none_or(|(_, b)| z.len() < b.len()) {
            best = Some((k, z));
        }
    }
    Ok(best.unwrap_or_default())
}

/// The slice of a long plane on which its block size is chosen.
const BLOCK_SAMPLE: usize = 256 << 10;

/// The block sizes tried for each plane.
const PLANE_BLOCKS: [usize; 2] = [8 << 10, 128 << 10];

fn literal_compressor(block: usize) -> std::io::Result<zstd::bulk::Compressor<'static>> {
    use zstd::zstd_safe::{CParameter, Strategy};
    let mut c = zstd::bulk::Compressor::new(1)?;
    c.set_parameter(CParameter::MaxBlockSize(block as u32))?;
    c.set_parameter(CParameter::Strategy(Strategy::ZSTD_fast))?;
    c.set_parameter(CParameter::MinMatch(7))?;
    c.set_parameter(CParameter::HashLog(6))?;
    c.set_parameter(CParameter::ChainLog(6))?;
    c.set_parameter(CParameter::SearchLog(1))?;
    Ok(c)
}

/// Regroups `data` (elements of `w` bytes) into byte planes, rotating each
/// element left by one bit first when `rot`. One pass, no staging copy.
fn to_planes(data: &[u8], w: usize, rot: bool) -> Vec<u8> {
    let n = data.len() / w;
    let mut out = vec![0u8; data.len()];
    match w {
        2 => {
            let (p0, p1) = out.split_at_mut(n);
            for ((c, a), b) in data.chunks_exact(2).zip(p0).zip(p1) {
                let v = u16::from_le_bytes([c[0], c[1]]);
                let [x, y] = if rot { v.rotate_left(1) } else { v }.to_le_bytes();
                (*a, *b) = (x, y);
            }
        }
        4 => {
            let (p0, rest) = out.split_at_mut(n);
            let (p1, rest) = rest.split_at_mut(n);
            let (p2, p3) = rest.split_at_mut(n);
            for (i, c) in data.chunks_exact(4).enumerate() {
                let v = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                let [x0, x1, x2, x3] = if rot { v.rotate_left(1) } else { v }.to_le_bytes();
                (p0[i], p1[i], p2[i], p3[i]) = (x0, x1, x2, x3);
            }
        }
        _ => {
            for (i, c) in data.chunks_exact(8).enumerate() {
                let v = u64::from_le_bytes(c.try_into().expect("8 bytes"));
                let bytes = if rot { v.rotate_left(1) } else { v }.to_le_bytes();
                for (j, b) in bytes.into_iter().enumerate() {
                    out[j * n + i] = b;
                }
            }
        }
    }
    out
}

/// Inverse of [`to_planes`], into `out` (as long as `planes`).
fn from_planes(planes: &[u8], out: &mut [u8], w: usize, rot: bool) {
    let n = planes.len() / w;
    match w {
        2 => {
            let (p0, p1) = planes.split_at(n);
            for ((o, &a), &b) in out.chunks_exact_mut(2).zip(p0).zip(p1) {
                let v = u16::from_le_bytes([a, b]);
                o.copy_from_slice(&if rot { v.rotate_right(1) } else { v }.to_le_bytes());
            }
        }
        4 => {
            let (p0, rest) = planes.split_at(n);
            let (p1, rest) = rest.split_at(n);
            let (p2, p3) = rest.split_at(n);
            // 16 elements at a time with SSE2 where there is x86_64 (2.3x
            // the compiler's loop, which does not vectorize this), then the rest.
            #[cfg(target_arch = "x86_64")]
            let done = sse2::unplane4(p0, p1, p2, p3, out, rot);
            #[cfg(not(target_arch = "x86_64"))]
            let done = 0;
            let planes = p0[done..]
                .iter()
                .zip(&p1[done..])
                .zip(&p2[done..])
                .zip(&p3[done..]);
            for (o, (((&a, &b), &c), &d)) in out[4 * done..].chunks_exact_mut(4).zip(planes) {
                let v = u32::from_le_bytes([a, b, c, d]);
                o.copy_from_slice(&if rot { v.rotate_right(1) } else { v }.to_le_bytes());
            }
        }
        _ => {
            for (i, o) in out.chunks_exact_mut(8).enumerate() {
                let mut b = [0u8; 8];
                for (j, x) in b.iter_mut().enumerate() {
                    *x = planes[j * n + i];
                }
                let v = u64::from_le_bytes(b);
                o.copy_from_slice(&if rot { v.rotate_right(1) } else { v }.to_le_bytes());
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::*;

    /// Interleaves four byte planes into 4-byte elements (rotated right by
    /// one bit when `rot`), 16 elements per step; returns how many elements
    /// it wrote (a multiple of 16), leaving the tail to the caller.
    pub fn unplane4(p0: &[u8], p1: &[u8], p2: &[u8], p3: &[u8], out: &mut [u8], rot: bool) -> usize {
        let n = p0
            .len()
            .min(p1.len())
            .min(p2.len())
            .min(p3.len())
            .min(out.len() / 4);
        let steps = n / 16;
        for i in 0..steps {
            // SAFETY: SSE2 is part of the x86_64 baseline; every load reads
            // bytes 16i..16i+16 of a plane and every store writes bytes
            // 64i..64i+64 of `out`, all in bounds because 16 * steps <= n.
            unsafe {
                let load = |p: &[u8]| _mm_loadu_si128(p.as_ptr().add(16 * i).cast());
                let (a, b, c, d) = (load(p0), load(p1), load(p2), load(p3));
                let (ab_lo, ab_hi) = (_mm_unpacklo_epi8(a, b), _mm_unpackhi_epi8(a, b));
                let (cd_lo, cd_hi) = (_mm_unpacklo_epi8(c, d), _mm_unpackhi_epi8(c, d));
                let words = [
                    _mm_unpacklo_epi16(ab_lo, cd_lo),
                    _mm_unpackhi_epi16(ab_lo, cd_lo),
                    _mm_unpacklo_epi16(ab_hi, cd_hi),
                    _mm_unpackhi_epi16(ab_hi, cd_hi),
                ];
                let o: *mut __m128i = out.as_mut_ptr().add(64 * i).cast();
                for (k, &w) in words.iter().enumerate() {
                    let w = if rot {
                        _mm_or_si128(_mm_srli_epi32(w, 1), _mm_slli_epi32(w, 31))
                    } else {
                        w
                    };
                    _mm_storeu_si128(o.add(k), w);
                }
            }
        }
        steps * 16
    }
}

/// Encodes one chunk with `codec` at zstd `level` (the level applies to the
/// zstd codec; plane codecs use literal-tuned zstd); falls back to raw when
/// that is not smaller. Returns the codec used and the stored bytes.
pub fn encode(data: &[u8], codec: Codec, level: i32) -> (Codec, Vec<u8>) {
    let compressed = match codec {
        Codec::Raw => return (Codec::Raw, data.to_vec()),
        Codec::Zstd => zstd::bulk::compress(data, level).map(|z| (Codec::Zstd, z)),
        Codec::Planes(w) | Codec::RotPlanes(w) => {
            if !data.len().is_multiple_of(w as usize) {
                return encode(data, Codec::Zstd, level);
            }
            let strategy = pick_float_strategy(data, codec, level);
            strategy.compress(data, codec, level)
        }
    };
    match compressed {
        Ok((used, z)) if z.len() < data.len() => (used, z),
        _ => (Codec::Raw, data.to_vec()),
    }
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

    fn compress(self, data: &[u8], codec: Codec, level: i32) -> std::io::Result<(Codec, Vec<u8>)> {
        let (w, rot) = match codec {
            Codec::Planes(w) => (w as usize, false),
            Codec::RotPlanes(w) => (w as usize, true),
            _ => (1, false),
        };
        match self {
            FloatStrategy::PlanesLiterals => compress_planes(&to_planes(data, w, rot), w).map(|z| (codec, z)),
            FloatStrategy::PlanesMatches => {
                zstd::bulk::compress(&to_planes(data, w, rot), level).map(|z| (codec, z))
            }
            FloatStrategy::Plain => zstd::bulk::compress(data, level).map(|z| (Codec::Zstd, z)),
        }
    }
}

/// Chunks up to this size are tried whole with every strategy; larger ones
/// through [`SAMPLE_SLICES`] evenly spaced slices of [`SLICE_BYTES`].
const SAMPLE_BYTES: usize = 1 << 20;
const SAMPLE_SLICES: usize = 4;
const SLICE_BYTES: usize = 128 << 10;

/// The strategy that makes the smallest output on a sample of the chunk
/// (the whole chunk when it is small). Slices from across the chunk, not its
/// start: tensors change character along their rows.
fn pick_float_strategy(data: &[u8], codec: Codec, level: i32) -> FloatStrategy {
    let sampled;
    let sample = if data.len() <= SAMPLE_BYTES {
        data
    } else {
        let w = codec.plane_width();
        let stride = (data.len() - SLICE_BYTES) / (SAMPLE_SLICES - 1);
        let stride = stride - stride % w;
        sampled = (0..SAMPLE_SLICES)
            .flat_map(|k| &data[k * stride..k * stride + SLICE_BYTES])
            .copied()
            .collect::<Vec<u8>>();
        &sampled
    };
    FloatStrategy::ALL
        .into_iter()
        .min_by_key(|s| {
            s.compress(sample, codec, level)
                .map_or(usize::MAX, |(_, z)| z.len())
        })
        .unwrap_or(FloatStrategy::PlanesLiterals)
}

/// The most a compressed chunk may decode to (T16): a reader decodes a chunk
/// into one buffer, and this bounds it whatever the manifest claims.
pub const MAX_DECODED_CHUNK: u64 = 64 << 20;

thread_local! {
    /// Per-thread zstd context and plane scratch, reused across chunks: a
    /// fresh streaming decoder allocates (and page-faults) its window for
    /// every chunk, which cost more than the decoding itself (0.64 GiB/s per
    /// core against 2.4 GiB/s with reuse, on trained-like bf16).
    static DECODER: std::cell::RefCell<Option<(zstd::bulk::Decompressor<'static>, Vec<u8>)>> =
        const { std::cell::RefCell::new(None) };
}

/// Decodes one stored chunk to exactly `decoded_len` bytes (T13, T16).
pub fn decode(stored: &[u8], codec: Codec, decoded_len: u64) -> Result<Vec<u8>, FormatError> {
    check_decoded_len(codec, decoded_len)?;
    let mut out = vec![0u8; decoded_len as usize];
    decode_into(stored, codec, &mut out)?;
    Ok(out)
}

/// T16: a compressed chunk decodes to at most [`MAX_DECODED_CHUNK`].
pub(crate) fn check_decoded_len(codec: Codec, decoded_len: u64) -> Result<(), FormatError> {
    if codec != Codec::Raw && decoded_len > MAX_DECODED_CHUNK {
        return Err(FormatError::new(
            crate::FORMAT,
            rules::CHUNK_TOO_BIG,
            format!("a compressed chunk of {decoded_len} bytes (at most {MAX_DECODED_CHUNK})"),
        ));
    }
    Ok(())
}

/// Decodes one stored chunk into `out`, which must be exactly as long as the
/// chunk decodes to (T13, T16): no buffer of the caller's grows.
pub fn decode_into(stored: &[u8], codec: Codec, out: &mut [u8]) -> Result<(), FormatError> {
    let bad = |detail: String| FormatError::new(crate::FORMAT, rules::CODEC, detail);
    let n = out.len();
    check_decoded_len(codec, n as u64)?;
    if codec == Codec::Raw {
        if stored.len() != n {
            return Err(FormatError::new(
                crate::FORMAT,
                rules::RAW_LEN,
                format!("a raw chunk of {} bytes stands for {n}", stored.len()),
            ));
        }
        out.copy_from_slice(stored);
        return Ok(());
    }
    DECODER.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            let d = zstd::bulk::Decompressor::new().map_err(|e| bad(format!("zstd: {e}")))?;
            *cell = Some((d, Vec::new()));
        }
        let (d, scratch) = cell.as_mut().expect("just set");
        // A frame decodes into exactly `n` bytes of room: one that would
        // decode to more fails instead of writing past them.
        let mut frame = |into: &mut [u8]| -> Result<(), FormatError> {
            let got = d
                .decompress_to_buffer(stored, into)
                .map_err(|e| bad(format!("zstd frame does not decode to {n} bytes: {e}")))?;
            if got != n {
                return Err(bad(format!(
                    "zstd frame decodes to {got} bytes, the manifest says {n}"
                )));
            }
            Ok(())
        };
        match codec {
            Codec::Planes(w) | Codec::RotPlanes(w) => {
                scratch.resize(n, 0);
                frame(scratch)?;
                from_planes(scratch, out, w as usize, matches!(codec, Codec::RotPlanes(_)));
            }
            _ => frame(out)?,
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..4096u32)
            .flat_map(|i| ((i % 97) as f32 * 0.01).to_le_bytes())
            .collect();
        for codec in [
            Codec::Raw,
            Codec::Zstd,
            Codec::Planes(2),
            Codec::Planes(4),
            Codec::Planes(8),
            Codec::RotPlanes(2),
            Codec::RotPlanes(4),
            Codec::RotPlanes(8),
        ] {
            let (used, stored) = encode(&data, codec, 3);
            assert_eq!(
                decode(&stored, used, data.len() as u64).unwrap(),
                data,
                "{codec:?}"
            );
            assert!(stored.len() <= data.len());
        }
        assert_eq!(to_planes(&[1, 2, 3, 4], 2, false), [1, 3, 2, 4]);
        // Every width and length around the 16-element SIMD step round-trips.
        for w in [2usize, 4, 8] {
            for elems in [0usize, 1, 15, 16, 17, 63, 64, 65, 1000] {
                let data: Vec<u8> = (0..w * elems).map(|i| (i * 37 + i / 7) as u8).collect();
                for rot in [false, true] {
                    let planes = to_planes(&data, w, rot);
                    let mut back = vec![0u8; data.len()];
                    from_planes(&planes, &mut back, w, rot);
                    assert_eq!(back, data, "w {w} elems {elems} rot {rot}");
                }
            }
        }
        // bf16 -1.0 (0xbf80) rotated: exponent 0x7f alone in the top byte, sign at the bottom.
        assert_eq!(to_planes(&[0x80, 0xbf], 2, true), [0x01, 0x7f]);
    }

    #[test]
    fn incompressible_chunks_stay_raw_and_bad_frames_fail() {
        let mut x = 1u64;
        let noise: Vec<u8> = (0..1000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert_eq!(encode(&noise, Codec::Zstd, 3).0, Codec::Raw);
        let (c, z) = encode(&[0u8; 1000], Codec::Zstd, 3);
        assert_eq!(decode(&z, c, 999).unwrap_err().rule, rules::CODEC);
        assert_eq!(decode(&z[..z.len() - 1], c, 1000).unwrap_err().rule, rules::CODEC);
    }
}
