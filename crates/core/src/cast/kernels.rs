//! Slice-at-a-time cast kernels over little-endian bytes.

use super::float::*;
use crate::DType;
use std::fmt;

/// A value that has no image in the target dtype.
#[derive(Debug, Clone, PartialEq)]
pub struct CastError {
    /// Element index within the slice.
    pub index: usize,
    /// The offending value.
    pub value: f64,
}

impl fmt::Display for CastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "element {} ({}) is NaN or out of range for the target integer type",
            self.index, self.value
        )
    }
}

/// Elements converted per inner step: keeps the intermediate buffer in cache.
const STEP: usize = 16 * 1024;

fn castable(d: DType) -> bool {
    d.is_int()
        || matches!(
            d,
            DType::Bool
                | DType::F16
                | DType::BF16
                | DType::F32
                | DType::F64
                | DType::F8E4M3
                | DType::F8E5M2
                | DType::F8E4M3Fnuz
                | DType::F8E5M2Fnuz
                | DType::F8E8M0
        )
}

/// True when [`cast_slice`] converts `from` into `to`.
pub fn can_cast(from: DType, to: DType) -> bool {
    from == to || (castable(from) && castable(to))
}

/// Inputs at least this large are split across rayon's threads.
const PARALLEL_BYTES: usize = 1 << 20;

/// Casts the little-endian elements in `input` from `from` to `to`, appending
/// to `out`. `input` must hold whole elements. Large inputs are converted in
/// parallel pieces; the result is the same as converting in one piece.
pub fn cast_slice(from: DType, to: DType, input: &[u8], out: &mut Vec<u8>) -> Result<(), CastError> {
    use rayon::prelude::*;
    if from == to {
        out.extend_from_slice(input);
        return Ok(());
    }
    let size = from.byte_size().unwrap_or(1);
    if input.len() < 2 * PARALLEL_BYTES {
        return cast_serial(from, to, input, out);
    }
    let piece = PARALLEL_BYTES - PARALLEL_BYTES % size;
    let parts: Vec<Result<Vec<u8>, CastError>> = input
        .par_chunks(piece)
        .enumerate()
        .map(|(k, chunk)| {
            let mut v = Vec::new();
            cast_serial(from, to, chunk, &mut v).map(|_| v).map_err(|mut e| {
                e.index += k * (piece / size);
                e
            })
        })
        .collect();
    for part in parts {
        out.extend_from_slice(&part?);
    }
    Ok(())
}

fn cast_serial(from: DType, to: DType, input: &[u8], out: &mut Vec<u8>) -> Result<(), CastError> {
    let size = from.byte_size().unwrap_or(1);
    let mut base = 0usize;
    for piece in input.chunks(STEP * size) {
        match to {
            DType::F64 => {
                let mut vals = Vec::new();
                decode_f64(from, piece, &mut vals);
                out.reserve(vals.len() * 8);
                for v in vals {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            t if t.is_float() => cast_to_float(from, t, piece, out),
            t if from.is_float() => {
                let mut vals = Vec::new();
                decode_f64(from, piece, &mut vals);
                encode_int_checked(t, &vals, out).map_err(|mut e| {
                    e.index += base;
                    e
                })?;
            }
            t => {
                let mut vals = Vec::new();
                decode_int(from, piece, &mut vals);
                encode_int_wrapping(t, &vals, out);
            }
        }
        base += piece.len() / size;
    }
    Ok(())
}

/// Maps each `I`-byte element of `input` to `O` bytes appended to `out`: a
/// fixed-width loop over pre-sized output the compiler can keep tight.
fn map_elems<const I: usize, const O: usize>(
    input: &[u8],
    out: &mut Vec<u8>,
    f: impl Fn([u8; I]) -> [u8; O],
) {
    let n = input.len() / I;
    let start = out.len();
    out.resize(start + n * O, 0);
    for (src, dst) in input.chunks_exact(I).zip(out[start..].chunks_exact_mut(O)) {
        let mut e = [0u8; I];
        e.copy_from_slice(src);
        dst.copy_from_slice(&f(e));
    }
}

/// Every source into a float target other than f64: decode to f32 (exact for
/// all but f64 and wide ints, which round as torch rounds them), then encode.
fn cast_to_float(from: DType, to: DType, input: &[u8], out: &mut Vec<u8>) {
    macro_rules! from_any {
        ($o:literal, $enc:expr) => {{
            let enc = $enc;
            match from {
                DType::F32 => map_elems::<4, $o>(input, out, |b| enc(f32::from_le_bytes(b))),
                DType::F64 => map_elems::<8, $o>(input, out, |b| enc(f64_to_f32(f64::from_le_bytes(b)))),
                DType::F16 => map_elems::<2, $o>(input, out, |b| enc(f16_to_f32(u16::from_le_bytes(b)))),
                DType::BF16 => map_elems::<2, $o>(input, out, |b| enc(bf16_to_f32(u16::from_le_bytes(b)))),
                DType::F8E4M3 => map_elems::<1, $o>(input, out, |b| enc(e4m3_to_f32(b[0]))),
                DType::F8E5M2 => map_elems::<1, $o>(input, out, |b| enc(e5m2_to_f32(b[0]))),
                DType::F8E4M3Fnuz => map_elems::<1, $o>(input, out, |b| enc(e4m3fnuz_to_f32(b[0]))),
                DType::F8E5M2Fnuz => map_elems::<1, $o>(input, out, |b| enc(e5m2fnuz_to_f32(b[0]))),
                DType::F8E8M0 => map_elems::<1, $o>(input, out, |b| enc(e8m0_to_f32(b[0]))),
                DType::Bool => map_elems::<1, $o>(input, out, |b| enc(if b[0] != 0 { 1.0 } else { 0.0 })),
                DType::U8 => map_elems::<1, $o>(input, out, |b| enc(f32::from(b[0]))),
                DType::I8 => map_elems::<1, $o>(input, out, |b| enc(f32::from(b[0] as i8))),
                DType::U16 => map_elems::<2, $o>(input, out, |b| enc(f32::from(u16::from_le_bytes(b)))),
                DType::I16 => map_elems::<2, $o>(input, out, |b| enc(f32::from(i16::from_le_bytes(b)))),
                DType::U32 => map_elems::<4, $o>(input, out, |b| enc(u32::from_le_bytes(b) as f32)),
                DType::I32 => map_elems::<4, $o>(input, out, |b| enc(i32::from_le_bytes(b) as f32)),
                DType::U64 => map_elems::<8, $o>(input, out, |b| enc(u64::from_le_bytes(b) as f32)),
                DType::I64 => map_elems::<8, $o>(input, out, |b| enc(i64::from_le_bytes(b) as f32)),
                _ => {}
            }
        }};
    }
    // torch's vectorized f32/f64→bf16 loop writes 0xFFFF for NaN; the other
    // sources go through c10's scalar conversion, which writes 0x7FC0.
    let bf16_nan = if matches!(from, DType::F32 | DType::F64) {
        0xffff
    } else {
        0x7fc0
    };
    match to {
        DType::F32 => from_any!(4, |x: f32| x.to_le_bytes()),
        DType::F16 => from_any!(2, |x: f32| f32_to_f16(x).to_le_bytes()),
        DType::BF16 => from_any!(2, |x: f32| f32_to_bf16(x, bf16_nan).to_le_bytes()),
        DType::F8E4M3 => from_any!(1, |x: f32| [f32_to_e4m3(x)]),
        DType::F8E5M2 => from_any!(1, |x: f32| [f32_to_e5m2(x)]),
        DType::F8E4M3Fnuz => from_any!(1, |x: f32| [f32_to_e4m3fnuz(x)]),
        DType::F8E5M2Fnuz => from_any!(1, |x: f32| [f32_to_e5m2fnuz(x)]),
        DType::F8E8M0 => from_any!(1, |x: f32| [f32_to_e8m0(x)]),
        _ => {}
    }
}

macro_rules! le {
    ($t:ty, $bytes:expr) => {
        $bytes
            .chunks_exact(std::mem::size_of::<$t>())
            .map(|c| <$t>::from_le_bytes(c.try_into().unwrap_or_default()))
    };
}

fn decode_f32(from: DType, b: &[u8], v: &mut Vec<f32>) {
    v.reserve(b.len());
    match from {
        DType::F32 => v.extend(le!(f32, b)),
        DType::F64 => v.extend(le!(f64, b).map(f64_to_f32)),
        DType::F16 => v.extend(le!(u16, b).map(f16_to_f32)),
        DType::BF16 => v.extend(le!(u16, b).map(bf16_to_f32)),
        DType::F8E4M3 => v.extend(b.iter().map(|&x| e4m3_to_f32(x))),
        DType::F8E5M2 => v.extend(b.iter().map(|&x| e5m2_to_f32(x))),
        DType::F8E4M3Fnuz => v.extend(b.iter().map(|&x| e4m3fnuz_to_f32(x))),
        DType::F8E5M2Fnuz => v.extend(b.iter().map(|&x| e5m2fnuz_to_f32(x))),
        DType::F8E8M0 => v.extend(b.iter().map(|&x| e8m0_to_f32(x))),
        DType::Bool => v.extend(b.iter().map(|&x| if x != 0 { 1.0 } else { 0.0 })),
        DType::U8 => v.extend(b.iter().map(|&x| f32::from(x))),
        DType::I8 => v.extend(b.iter().map(|&x| f32::from(x as i8))),
        DType::U16 => v.extend(le!(u16, b).map(f32::from)),
        DType::I16 => v.extend(le!(i16, b).map(f32::from)),
        DType::U32 => v.extend(le!(u32, b).map(|x| x as f32)),
        DType::I32 => v.extend(le!(i32, b).map(|x| x as f32)),
        DType::U64 => v.extend(le!(u64, b).map(|x| x as f32)),
        DType::I64 => v.extend(le!(i64, b).map(|x| x as f32)),
        _ => {}
    }
}

fn decode_f64(from: DType, b: &[u8], v: &mut Vec<f64>) {
    match from {
        DType::F64 => v.extend(le!(f64, b)),
        DType::U32 => v.extend(le!(u32, b).map(f64::from)),
        DType::I32 => v.extend(le!(i32, b).map(f64::from)),
        DType::U64 => v.extend(le!(u64, b).map(|x| x as f64)),
        DType::I64 => v.extend(le!(i64, b).map(|x| x as f64)),
        _ => {
            // Every other source is exact in f32; widen from there.
            let mut f = Vec::new();
            decode_f32(from, b, &mut f);
            v.extend(f.into_iter().map(f32_to_f64));
        }
    }
}

fn decode_int(from: DType, b: &[u8], v: &mut Vec<i128>) {
    match from {
        DType::Bool => v.extend(b.iter().map(|&x| i128::from(x != 0))),
        DType::U8 => v.extend(b.iter().map(|&x| i128::from(x))),
        DType::I8 => v.extend(b.iter().map(|&x| i128::from(x as i8))),
        DType::U16 => v.extend(le!(u16, b).map(i128::from)),
        DType::I16 => v.extend(le!(i16, b).map(i128::from)),
        DType::U32 => v.extend(le!(u32, b).map(i128::from)),
        DType::I32 => v.extend(le!(i32, b).map(i128::from)),
        DType::U64 => v.extend(le!(u64, b).map(i128::from)),
        DType::I64 => v.extend(le!(i64, b).map(i128::from)),
        _ => {}
    }
}

fn encode_int_checked(to: DType, vals: &[f64], out: &mut Vec<u8>) -> Result<(), CastError> {
    if to == DType::Bool {
        out.extend(vals.iter().map(|&v| u8::from(v != 0.0)));
        return Ok(());
    }
    let (lo, hi) = int_range(to);
    let mut ints = Vec::with_capacity(vals.len());
    for (index, &value) in vals.iter().enumerate() {
        let t = value.trunc();
        // hi + 1 is a power of two, so the bound is exact in f64.
        if value.is_nan() || t < lo as f64 || t >= (hi + 1) as f64 {
            return Err(CastError { index, value });
        }
        ints.push(t as i128);
    }
    encode_int_wrapping(to, &ints, out);
    Ok(())
}

fn int_range(d: DType) -> (i128, i128) {
    match d {
        DType::U8 => (0, u8::MAX.into()),
        DType::I8 => (i8::MIN.into(), i8::MAX.into()),
        DType::U16 => (0, u16::MAX.into()),
        DType::I16 => (i16::MIN.into(), i16::MAX.into()),
        DType::U32 => (0, u32::MAX.into()),
        DType::I32 => (i32::MIN.into(), i32::MAX.into()),
        DType::U64 => (0, u64::MAX.into()),
        _ => (i64::MIN.into(), i64::MAX.into()),
    }
}

fn encode_int_wrapping(to: DType, vals: &[i128], out: &mut Vec<u8>) {
    for &v in vals {
        match to {
            DType::Bool => out.push(u8::from(v != 0)),
            DType::U8 | DType::I8 => out.push(v as u8),
            DType::U16 | DType::I16 => out.extend_from_slice(&(v as u16).to_le_bytes()),
            DType::U32 | DType::I32 => out.extend_from_slice(&(v as u32).to_le_bytes()),
            _ => out.extend_from_slice(&(v as u64).to_le_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cast(from: DType, to: DType, bytes: &[u8]) -> Result<Vec<u8>, CastError> {
        let mut out = Vec::new();
        cast_slice(from, to, bytes, &mut out).map(|_| out)
    }

    #[test]
    fn f64_to_f16_rounds_twice_like_torch() {
        // 1 + 2^-11 + 2^-40: f32 rounds to the f16 tie, which then goes to even (1.0).
        let x = 1.0f64 + 2f64.powi(-11) + 2f64.powi(-40);
        let out = cast(DType::F64, DType::F16, &x.to_le_bytes()).unwrap();
        assert_eq!(out, 0x3c00u16.to_le_bytes());
    }

    #[test]
    fn float_to_int_truncates_and_refuses_nan() {
        let vals: Vec<u8> = [1.7f32, -1.7, 2.5].iter().flat_map(|v| v.to_le_bytes()).collect();
        let out = cast(DType::F32, DType::I32, &vals).unwrap();
        let ints: Vec<i32> = out
            .chunks(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(ints, [1, -1, 2]);
        let err = cast(DType::F32, DType::U8, &(-1.0f32).to_le_bytes()).unwrap_err();
        assert_eq!(err.index, 0);
        assert!(cast(DType::F32, DType::I64, &f32::NAN.to_le_bytes()).is_err());
    }

    #[test]
    fn parallel_pieces_match_serial_and_report_global_index() {
        let n = 3 * PARALLEL_BYTES / 4 + 3;
        let vals: Vec<u8> = (0..n as u32)
            .flat_map(|i| (i as f32 * 0.37).to_le_bytes())
            .collect();
        let mut serial = Vec::new();
        cast_serial(DType::F32, DType::BF16, &vals, &mut serial).unwrap();
        assert_eq!(cast(DType::F32, DType::BF16, &vals).unwrap(), serial);
        let mut bad = vals.clone();
        let at = n - 2;
        bad[at * 4..at * 4 + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        assert_eq!(cast(DType::F32, DType::I32, &bad).unwrap_err().index, at);
    }

    #[test]
    fn int_to_int_wraps() {
        let out = cast(DType::I32, DType::I8, &300i32.to_le_bytes()).unwrap();
        assert_eq!(out, [44]);
    }

    #[test]
    fn packed_and_complex_are_refused() {
        assert!(!can_cast(DType::F4, DType::F32));
        assert!(!can_cast(DType::F6E2M3, DType::BF16));
        assert!(!can_cast(DType::C64, DType::F32));
        assert!(can_cast(DType::C64, DType::C64));
    }
}
