//! Gemma's RMSNorm weights are zero-centred: llama.cpp stores `w + 1`
//! (computed in the source dtype, as torch adds), transformers' loader
//! subtracts 1 in f32. Element-wise, on f32/f16/bf16 bytes (and any other
//! element-wise transform, [`map`]).

use tensorcast_core::cast::float::{bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16};
use tensorcast_core::code;
use tensorcast_core::{DType, Error, Result, TensorData};

/// `data` (of `dtype`) with `delta` added to every element, each computed in
/// f32 and rounded back to `out` (f32, or the same half type).
pub fn add(data: TensorData<'_>, dtype: DType, out: DType, delta: f32) -> Result<TensorData<'_>> {
    map(data, dtype, out, move |x| x + delta)
}

/// `data` (of `dtype`) with `f` applied to every element widened to f32,
/// each result rounded to `out` (f32, or the same half type).
pub fn map<'a>(
    data: TensorData<'a>,
    dtype: DType,
    out: DType,
    f: impl Fn(f32) -> f32 + Send + 'a,
) -> Result<TensorData<'a>> {
    let elem = match dtype {
        DType::F32 => 4,
        DType::F16 | DType::BF16 => 2,
        other => {
            return Err(Error::unsupported(
                code::CAST,
                format!("an element-wise transform of {other} weights"),
            ))
        }
    };
    if out != DType::F32 && out != dtype {
        return Err(Error::unsupported(
            code::CAST,
            format!("an element-wise transform from {dtype} into {out}"),
        ));
    }
    let chunks = data
        .aligned_chunks(elem, tensorcast_core::CHUNK_BYTES)
        .map(move |piece| {
            let piece = piece?;
            let mut v = Vec::with_capacity(piece.len() / elem * out.byte_size().unwrap_or(4));
            for e in piece.chunks_exact(elem) {
                let x = match dtype {
                    DType::F32 => f32::from_le_bytes([e[0], e[1], e[2], e[3]]),
                    DType::F16 => f16_to_f32(u16::from_le_bytes([e[0], e[1]])),
                    _ => bf16_to_f32(u16::from_le_bytes([e[0], e[1]])),
                };
                let y = f(x);
                match out {
                    DType::F32 => v.extend_from_slice(&y.to_le_bytes()),
                    DType::F16 => v.extend_from_slice(&f32_to_f16(y).to_le_bytes()),
                    _ => v.extend_from_slice(&f32_to_bf16(y, 0x7fc0).to_le_bytes()),
                }
            }
            Ok(v)
        });
    Ok(TensorData::Chunks(Box::new(chunks)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_like_torch() {
        let w = [0.25f32, -1.0, 3.0e-8];
        let bytes: Vec<u8> = w.iter().flat_map(|x| x.to_le_bytes()).collect();
        let got = add(TensorData::Borrowed(&bytes), DType::F32, DType::F32, 1.0)
            .unwrap()
            .into_vec()
            .unwrap();
        let got: Vec<f32> = got
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        // 1 + 3e-8 rounds to 1 in f32, as torch's f32 add does.
        assert_eq!(got, [1.25, 0.0, 1.0]);
        // bf16: 0.00390625 + 1 = 1.00390625 is not a bf16, rounds to even (1.0).
        let b = f32_to_bf16(0.003_906_25, 0x7fc0).to_le_bytes();
        let got = add(TensorData::Borrowed(&b), DType::BF16, DType::BF16, 1.0)
            .unwrap()
            .into_vec()
            .unwrap();
        assert_eq!(bf16_to_f32(u16::from_le_bytes([got[0], got[1]])), 1.0);
    }
}
