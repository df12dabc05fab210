//! Chunk codecs (spec §3): raw, zstd, and byte planes + zstd for floats.

use crate::rules;
use std::io::Read;
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
}

impl Codec {
    /// The id the manifest stores.
    pub fn id(self) -> u32 {
        match self {
            Codec::Raw => 0,
            Codec::Zstd => 1,
            Codec::Planes(2) => 2,
            Codec::Planes(4) => 3,
            _ => 4,
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
            _ => return None,
        })
    }

    /// Bytes per element the decoded length must be a multiple of.
    pub fn plane_width(self) -> usize {
        match self {
            Codec::Planes(w) => w as usize,
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
            _ => "planes8",
        }
    }

    /// The compressing codec a writer uses for `dtype`: byte planes for
    /// floats (exponent bytes compress, mantissa bytes do not), zstd otherwise.
    pub fn for_dtype(dtype: DType) -> Codec {
        match dtype {
            DType::F16 | DType::BF16 => Codec::Planes(2),
            DType::F32 | DType::C64 => Codec::Planes(4),
            DType::F64 => Codec::Planes(8),
            _ => Codec::Zstd,
        }
    }
}

/// Regroups `data` (elements of `w` bytes) into byte planes.
fn to_planes(data: &[u8], w: usize) -> Vec<u8> {
    let n = data.len() / w;
    let mut out = vec![0u8; data.len()];
    for (j, plane) in out.chunks_exact_mut(n.max(1)).enumerate().take(w) {
        for (i, b) in plane.iter_mut().enumerate() {
            *b = data[i * w + j];
        }
    }
    out
}

/// Inverse of [`to_planes`].
fn from_planes(planes: &[u8], w: usize) -> Vec<u8> {
    let n = planes.len() / w;
    let mut out = vec![0u8; planes.len()];
    for (j, plane) in planes.chunks_exact(n.max(1)).enumerate().take(w) {
        for (i, &b) in plane.iter().enumerate() {
            out[i * w + j] = b;
        }
    }
    out
}

/// Encodes one chunk with `codec` at zstd `level`; falls back to raw when
/// that is not smaller. Returns the codec used and the stored bytes.
pub fn encode(data: &[u8], codec: Codec, level: i32) -> (Codec, Vec<u8>) {
    let staged;
    let input = match codec {
        Codec::Raw => return (Codec::Raw, data.to_vec()),
        Codec::Zstd => data,
        Codec::Planes(w) => {
            if !data.len().is_multiple_of(w as usize) {
                return encode(data, Codec::Zstd, level);
            }
            staged = to_planes(data, w as usize);
            &staged
        }
    };
    match zstd::bulk::compress(input, level) {
        Ok(z) if z.len() < data.len() => (codec, z),
        _ => (Codec::Raw, data.to_vec()),
    }
}

/// Decodes one stored chunk to exactly `decoded_len` bytes (T13).
pub fn decode(stored: &[u8], codec: Codec, decoded_len: u64) -> Result<Vec<u8>, FormatError> {
    let bad = |detail: String| FormatError::new(crate::FORMAT, rules::CODEC, detail);
    if codec == Codec::Raw {
        return Ok(stored.to_vec());
    }
    let cap = usize::try_from(decoded_len).map_err(|_| bad("chunk too large".into()))?;
    // Decode through a bounded reader: a frame claiming more than the
    // manifest says never allocates beyond `decoded_len + 1`.
    let mut out = Vec::with_capacity(cap.min(64 << 20));
    let decoder = zstd::stream::read::Decoder::with_buffer(stored).map_err(|e| bad(format!("zstd: {e}")))?;
    decoder
        .take(decoded_len + 1)
        .read_to_end(&mut out)
        .map_err(|e| bad(format!("zstd frame does not decode: {e}")))?;
    if out.len() as u64 != decoded_len {
        return Err(bad(format!(
            "zstd frame decodes to {} bytes, the manifest says {decoded_len}",
            out.len()
        )));
    }
    Ok(match codec {
        Codec::Planes(w) => from_planes(&out, w as usize),
        _ => out,
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
        ] {
            let (used, stored) = encode(&data, codec, 3);
            assert_eq!(
                decode(&stored, used, data.len() as u64).unwrap(),
                data,
                "{codec:?}"
            );
            assert!(stored.len() <= data.len());
        }
        assert_eq!(to_planes(&[1, 2, 3, 4], 2), [1, 3, 2, 4]);
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
