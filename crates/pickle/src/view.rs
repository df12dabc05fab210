//! Tensor views over storage records, materialised as contiguous row-major
//! little-endian bytes: strided gathers, byte-order swaps, and torch's
//! conjugate and negative bits.

use crate::rules;
use crate::torch::TensorRef;
use std::io::Read;
use tensorcast_core::strided::{self, Strided};
use tensorcast_core::{DType, FormatError, Limits, Result, TensorData, CHUNK_BYTES};

/// Geometry and value transforms of one view.
#[derive(Clone, Debug)]
pub struct Layout {
    dtype: DType,
    view: Strided,
    swap: bool,
    conj: bool,
    neg: bool,
}

fn err(rule: &'static str, detail: impl Into<String>) -> FormatError {
    FormatError::new(crate::FORMAT, rule, detail)
}

impl Layout {
    /// The layout of `t`; `big_endian` when its record stores big-endian values.
    pub fn new(t: &TensorRef, big_endian: bool) -> Result<Layout, FormatError> {
        let elem = t
            .dtype
            .storage_bytes(1)
            .and_then(|b| usize::try_from(b).ok())
            .filter(|&b| b > 0)
            .ok_or_else(|| {
                err(
                    rules::UNSUPPORTED_DTYPE,
                    format!("{} is not a whole-byte dtype", t.dtype),
                )
            })?;
        Ok(Layout {
            dtype: t.dtype,
            view: Strided::new(elem, t.offset, t.size.clone(), t.stride.clone()),
            swap: big_endian && elem > 1,
            conj: t.conj && matches!(t.dtype, DType::C64 | DType::C128),
            neg: t.neg,
        })
    }

    /// Elements in the view (validated not to overflow at open).
    pub fn numel(&self) -> u64 {
        self.view.numel()
    }

    /// Bytes per element.
    pub fn elem(&self) -> usize {
        self.view.elem
    }

    /// One past the last byte of the storage the view reads (0 when empty).
    pub fn extent_bytes(&self) -> Result<u64, FormatError> {
        self.view
            .extent_bytes()
            .ok_or_else(|| err(rules::SHAPE_OVERFLOW, "view extent overflows"))
    }

    /// The byte offset in the record when the view is one contiguous
    /// row-major run (size-1 dims may have any stride).
    pub fn contiguous_offset(&self) -> Option<u64> {
        self.view.contiguous_offset()
    }

    /// Whether values change on the way out (byte order, conj, neg).
    pub fn transforms(&self) -> bool {
        self.swap || self.conj || self.neg
    }

    fn apply(&self, buf: &mut [u8]) {
        if self.swap {
            self.dtype.swap_byte_order(buf);
        }
        if self.conj {
            // Flip the sign of the imaginary part (its top byte, little-endian).
            let elem = self.view.elem;
            buf.chunks_exact_mut(elem).for_each(|c| c[elem - 1] ^= 0x80);
        }
        if self.neg {
            negate(self.dtype, self.view.elem, buf);
        }
    }
}

/// Negates every element in place as torch's `neg` does.
fn negate(dtype: DType, elem: usize, buf: &mut [u8]) {
    use DType::*;
    match dtype {
        F64 | F32 | F16 | BF16 | F8E4M3 | F8E5M2 => {
            buf.chunks_exact_mut(elem).for_each(|c| c[elem - 1] ^= 0x80)
        }
        C64 => buf.chunks_exact_mut(4).for_each(|c| c[3] ^= 0x80),
        C128 => buf.chunks_exact_mut(8).for_each(|c| c[7] ^= 0x80),
        // fnuz formats have no -0: 0x00 stays zero and 0x80 (their NaN) stays NaN.
        F8E4M3Fnuz | F8E5M2Fnuz => buf
            .iter_mut()
            .filter(|b| **b & 0x7f != 0)
            .for_each(|b| *b ^= 0x80),
        I8 | U8 => buf.iter_mut().for_each(|b| *b = b.wrapping_neg()),
        I16 | U16 => buf.chunks_exact_mut(2).for_each(|c| {
            let v = u16::from_le_bytes([c[0], c[1]]).wrapping_neg();
            c.copy_from_slice(&v.to_le_bytes());
        }),
        I32 | U32 => buf.chunks_exact_mut(4).for_each(|c| {
            let v = u32::from_le_bytes(c.try_into().expect("4 bytes")).wrapping_neg();
            c.copy_from_slice(&v.to_le_bytes());
        }),
        I64 | U64 => buf.chunks_exact_mut(8).for_each(|c| {
            let v = u64::from_le_bytes(c.try_into().expect("8 bytes")).wrapping_neg();
            c.copy_from_slice(&v.to_le_bytes());
        }),
        _ => {}
    }
}

/// Reads a view out of `src` (the whole storage record) in row-major order,
/// a chunk of at most [`CHUNK_BYTES`] at a time, values fixed up as the
/// layout says. The layout was validated against `src` when the file was opened.
pub fn gather<S: AsRef<[u8]> + Send>(src: S, layout: Layout) -> impl Iterator<Item = Result<Vec<u8>>> + Send {
    let view = layout.view.clone();
    strided::gather(src, view, move |buf| layout.apply(buf))
}

/// A view of a deflated record: contiguous views stream through the
/// decompressor; strided ones inflate the prefix of the record they reach.
pub fn inflated<'a>(
    raw: &'a [u8],
    record_len: u64,
    layout: Layout,
    limits: &Limits,
) -> Result<TensorData<'a>, FormatError> {
    let decoder = flate2::read::DeflateDecoder::new(raw).take(record_len);
    if let Some(start) = layout.contiguous_offset() {
        let len = layout.numel() * layout.elem() as u64;
        return Ok(TensorData::Chunks(Box::new(Inflate {
            decoder,
            skip: start,
            left: len,
            layout,
        })));
    }
    let extent = layout.extent_bytes()?;
    limits
        .check_alloc(extent, "this view of a deflated storage")
        .map_err(|d| err(rules::ALLOC_LIMIT, d).limit("max_alloc_bytes"))?;
    let mut buf = Vec::new();
    decoder
        .take(extent)
        .read_to_end(&mut buf)
        .map_err(|e| err(rules::BAD_ARCHIVE, format!("deflated record: {e}")))?;
    if (buf.len() as u64) < extent {
        return Err(err(
            rules::BAD_ARCHIVE,
            "deflated record is shorter than its declared size",
        ));
    }
    Ok(TensorData::Chunks(Box::new(gather(buf, layout))))
}

struct Inflate<'a> {
    decoder: std::io::Take<flate2::read::DeflateDecoder<&'a [u8]>>,
    skip: u64,
    left: u64,
    layout: Layout,
}

impl Iterator for Inflate<'_> {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        let fail = |e: std::io::Error| {
            Some(Err(
                err(rules::BAD_ARCHIVE, format!("deflated record: {e}")).into()
            ))
        };
        if self.skip > 0 {
            if let Err(e) = std::io::copy(&mut (&mut self.decoder).take(self.skip), &mut std::io::sink()) {
                return fail(e);
            }
            self.skip = 0;
        }
        if self.left == 0 {
            return None;
        }
        let n = self
            .left
            .min((CHUNK_BYTES - CHUNK_BYTES % self.layout.elem()) as u64) as usize;
        let mut buf = vec![0; n];
        if let Err(e) = self.decoder.read_exact(&mut buf) {
            return fail(e);
        }
        self.left -= n as u64;
        self.layout.apply(&mut buf);
        Some(Ok(buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: &[u64], stride: &[u64], offset: u64) -> Layout {
        let t = TensorRef {
            key: "0".into(),
            dtype: DType::I16,
            storage_bytes: 200,
            offset,
            size: size.to_vec(),
            stride: stride.to_vec(),
            conj: false,
            neg: false,
            sparse: None,
            unreadable: None,
            inline: None,
        };
        Layout::new(&t, false).unwrap()
    }

    fn values(l: Layout) -> Vec<i16> {
        let src: Vec<u8> = (0..100i16).flat_map(|v| v.to_le_bytes()).collect();
        let bytes: Vec<u8> = gather(src, l).flat_map(|c| c.unwrap()).collect();
        bytes
            .chunks(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect()
    }

    #[test]
    fn strided_views_gather_in_row_major_order() {
        // Transposed 2x3 -> 3x2.
        assert_eq!(values(layout(&[3, 2], &[1, 3], 0)), [0, 3, 1, 4, 2, 5]);
        // Stepped slice with an offset.
        assert_eq!(values(layout(&[3], &[2], 5)), [5, 7, 9]);
        // Expanded (stride 0).
        assert_eq!(values(layout(&[2, 3], &[0, 1], 1)), [1, 2, 3, 1, 2, 3]);
        // 0-dim.
        assert_eq!(values(layout(&[], &[], 42)), [42]);
        // Empty.
        assert_eq!(values(layout(&[0, 3], &[7, 9], 0)), Vec::<i16>::new());
    }

    #[test]
    fn contiguity_and_extent() {
        assert_eq!(layout(&[2, 3], &[3, 1], 4).contiguous_offset(), Some(8));
        assert_eq!(layout(&[3, 1], &[1, 99], 0).contiguous_offset(), Some(0));
        assert_eq!(layout(&[3, 2], &[1, 3], 0).contiguous_offset(), None);
        assert_eq!(layout(&[3, 2], &[1, 3], 0).extent_bytes().unwrap(), 12);
        assert!(layout(&[2, 2], &[u64::MAX, 1], 0).extent_bytes().is_err());
    }
}
