//! Experts whose gate and up projections are one fused tensor, apart in
//! GGUF. Granite MoE (JetMoE's layout) stacks gate rows over up rows in
//! each expert's `input_linear` `[experts, 2 x ffn, hidden]`: halves.
//! gpt-oss, as transformers keeps it unquantized, has one
//! `gate_up_proj` of `[experts, hidden, 2 x ffn]` whose columns alternate
//! gate and up, a `down_proj` of `[experts, ffn, hidden]` (both `[in, out]`),
//! and their biases. llama.cpp holds them as GGUF's stacked `[experts, out,
//! in]` tensors, gate and up apart (`convert_hf_to_gguf.py`'s GptOssModel).
//! Both ways go one expert at a time: each output slab is gathered from the
//! input's slab (borrowed from the mapped file, or decoded from its blocks),
//! a chunk per expert (35 MB for one of gpt-oss-120b's in bf16).

use crate::arch::FusedExperts;
use tensorcast_core::{code, Error, Result, TensorData, TensorInfo};

/// How one expert's slab of an output tensor is gathered from the input's:
/// the input slab is `[rows, cols]`; the output takes every `stride`-th
/// column from `offset`, transposed or not, of the rows of part `half`
/// (0 or 1 of the slab's two halves of rows; `None` for all rows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Gather {
    pub stride: usize,
    pub offset: usize,
    pub transpose: bool,
    pub half: Option<usize>,
}

/// The GGUF tensors an HF expert tensor of block `block` becomes: (name,
/// gather). `None` for any other tensor.
pub(crate) fn to_gguf(kind: FusedExperts, name: &str) -> Option<Vec<(String, Gather)>> {
    let rest = name.strip_prefix("model.layers.")?;
    let (block, part) = rest.split_once('.')?;
    block.parse::<u32>().ok()?;
    let g = |n: &str, stride, offset, transpose| {
        let half = None;
        (
            format!("blk.{block}.{n}"),
            Gather {
                stride,
                offset,
                transpose,
                half,
            },
        )
    };
    if kind == FusedExperts::Halves {
        if part != "block_sparse_moe.input_linear.weight" {
            return None;
        }
        let half = |n: &str, h| {
            let g = Gather {
                stride: 1,
                offset: 0,
                transpose: false,
                half: Some(h),
            };
            (format!("blk.{block}.{n}"), g)
        };
        return Some(vec![
            half("ffn_gate_exps.weight", 0),
            half("ffn_up_exps.weight", 1),
        ]);
    }
    if kind != FusedExperts::Interleaved {
        return None;
    }
    Some(match part {
        "mlp.experts.gate_up_proj" => vec![
            g("ffn_gate_exps.weight", 2, 0, true),
            g("ffn_up_exps.weight", 2, 1, true),
        ],
        "mlp.experts.gate_up_proj_bias" => vec![
            g("ffn_gate_exps.bias", 2, 0, false),
            g("ffn_up_exps.bias", 2, 1, false),
        ],
        "mlp.experts.down_proj" => vec![g("ffn_down_exps.weight", 1, 0, true)],
        "mlp.experts.down_proj_bias" => vec![g("ffn_down_exps.bias", 1, 0, false)],
        _ => return None,
    })
}

/// What a GGUF expert tensor becomes in Hugging Face: the HF name and, for
/// gate and up, which of the interleaved columns it fills (the up tensor
/// is read with its gate, so it yields nothing of its own).
pub(crate) enum FromGguf {
    /// Transposed (weights) or as it is (biases): down_proj and its bias.
    Alone { name: String, transpose: bool },
    /// Gate, interleaved with the up tensor named here (or, `halves`,
    /// stacked over it).
    Woven {
        name: String,
        up: String,
        transpose: bool,
        halves: bool,
    },
    /// Up: part of its gate's output.
    Consumed,
}

/// How GGUF tensor `name` maps back, or `None` for other tensors.
pub(crate) fn from_gguf(kind: FusedExperts, name: &str) -> Option<FromGguf> {
    let rest = name.strip_prefix("blk.")?;
    let (block, part) = rest.split_once('.')?;
    block.parse::<u32>().ok()?;
    let hf = |n: &str| format!("model.layers.{block}.mlp.experts.{n}");
    let up = |s: &str| format!("blk.{block}.ffn_up_exps.{s}");
    if kind == FusedExperts::Halves {
        return Some(match part {
            "ffn_gate_exps.weight" => FromGguf::Woven {
                name: format!("model.layers.{block}.block_sparse_moe.input_linear.weight"),
                up: up("weight"),
                transpose: false,
                halves: true,
            },
            "ffn_up_exps.weight" => FromGguf::Consumed,
            _ => return None,
        });
    }
    if kind != FusedExperts::Interleaved {
        return None;
    }
    Some(match part {
        "ffn_gate_exps.weight" => FromGguf::Woven {
            name: hf("gate_up_proj"),
            up: up("weight"),
            transpose: true,
            halves: false,
        },
        "ffn_gate_exps.bias" => FromGguf::Woven {
            name: hf("gate_up_proj_bias"),
            up: up("bias"),
            transpose: false,
            halves: false,
        },
        "ffn_up_exps.weight" | "ffn_up_exps.bias" => FromGguf::Consumed,
        "ffn_down_exps.weight" => FromGguf::Alone {
            name: hf("down_proj"),
            transpose: true,
        },
        "ffn_down_exps.bias" => FromGguf::Alone {
            name: hf("down_proj_bias"),
            transpose: false,
        },
        _ => return None,
    })
}

/// An expert tensor's `[experts, rows, cols]` (a bias is `[experts, 1, cols]`).
fn dims(t: &TensorInfo) -> Result<(usize, usize, usize)> {
    let d = |x: u64| usize::try_from(x).unwrap_or(usize::MAX);
    match t.shape[..] {
        [e, r, c] => Ok((d(e), d(r), d(c))),
        [e, c] => Ok((d(e), 1, d(c))),
        _ => Err(Error::unsupported(
            code::MODEL_INCONSISTENT,
            format!("expert tensor '{}' is {:?}, not 2-D or 3-D", t.name, t.shape),
        )),
    }
}

/// The output descriptor of gathering `t` by `g` into `name`.
pub(crate) fn gathered_info(name: &str, t: &TensorInfo, g: Gather) -> Result<TensorInfo> {
    let (e, rows, cols) = dims(t)?;
    if g.half.is_some() {
        if rows % 2 != 0 {
            return Err(Error::unsupported(
                code::MODEL_INCONSISTENT,
                format!(
                    "expert tensor '{}' {:?}: {rows} rows do not halve",
                    t.name, t.shape
                ),
            ));
        }
        return TensorInfo::new(name, t.dtype, vec![e as u64, (rows / 2) as u64, cols as u64])
            .ok_or_else(|| Error::unsupported(code::TOO_LARGE, format!("tensor '{name}': size overflows")));
    }
    if g.stride == 0 || cols % g.stride != 0 {
        return Err(Error::unsupported(
            code::MODEL_INCONSISTENT,
            format!(
                "expert tensor '{}' {:?}: {cols} columns do not split in {}",
                t.name, t.shape, g.stride
            ),
        ));
    }
    let taken = (cols / g.stride) as u64;
    let shape = match (g.transpose, t.shape.len()) {
        (true, _) => vec![e as u64, taken, rows as u64],
        (false, 2) => vec![e as u64, taken],
        (false, _) => vec![e as u64, rows as u64, taken],
    };
    TensorInfo::new(name, t.dtype, shape)
        .ok_or_else(|| Error::unsupported(code::TOO_LARGE, format!("tensor '{name}': size overflows")))
}

/// The bytes of a tensor's data, borrowed where it sits whole.
fn whole(data: TensorData<'_>) -> Result<std::borrow::Cow<'_, [u8]>> {
    match data {
        TensorData::Borrowed(b) | TensorData::Located { bytes: b, .. } => Ok(std::borrow::Cow::Borrowed(b)),
        other => Ok(std::borrow::Cow::Owned(other.into_vec()?)),
    }
}

/// `t`'s data gathered by `g`, one expert slab (at most about a chunk) at a time.
pub(crate) fn gather<'a>(data: TensorData<'a>, t: &TensorInfo, g: Gather) -> Result<TensorData<'a>> {
    let (experts, rows, cols) = dims(t)?;
    let size = t.dtype.byte_size().ok_or_else(|| {
        Error::unsupported(
            code::MODEL_INCONSISTENT,
            format!(
                "expert tensor '{}' is {:?}: gathered by element, it takes a plain dtype",
                t.name, t.dtype
            ),
        )
    })?;
    let bytes = whole(data)?;
    let slab = rows * cols * size;
    if bytes.len() != experts * slab {
        return Err(Error::unsupported(
            code::MODEL_INCONSISTENT,
            format!(
                "expert tensor '{}': {} bytes for {:?}",
                t.name,
                bytes.len(),
                t.shape
            ),
        ));
    }
    let taken = cols / g.stride.max(1);
    if let Some(h) = g.half {
        // A contiguous half of each expert's rows.
        let half = slab / 2;
        let pieces = (0..experts).map(move |e| {
            let at = e * slab + h * half;
            Ok(bytes[at..at + half].to_vec())
        });
        return Ok(TensorData::Chunks(Box::new(pieces)));
    }
    let pieces = (0..experts).map(move |e| {
        let input = &bytes[e * slab..(e + 1) * slab];
        let mut out = Vec::with_capacity(rows * taken * size);
        let mut put = |r: usize, j: usize| {
            let at = (r * cols + j * g.stride + g.offset) * size;
            out.extend_from_slice(&input[at..at + size]);
        };
        if g.transpose {
            (0..taken).for_each(|j| (0..rows).for_each(|r| put(r, j)));
        } else {
            (0..rows).for_each(|r| (0..taken).for_each(|j| put(r, j)));
        }
        Ok(out)
    });
    Ok(TensorData::Chunks(Box::new(pieces)))
}

/// One expert's slab of a GGUF expert tensor as plain elements: its own
/// bytes, or its blocks decoded to f32.
fn slab_elements(bytes: &[u8], t: &TensorInfo, e: usize, experts: usize) -> Result<Vec<u8>> {
    let each = bytes.len() / experts.max(1);
    let slab = &bytes[e * each..(e + 1) * each];
    let n = t.numel() / experts.max(1) as u64;
    Ok(crate::decode::elements(slab, t.dtype, n, &t.name)?.into_owned())
}

/// A GGUF expert tensor `[experts, out, in]` back as `[experts, in, out]`
/// (transposed) or as it is, decoded per expert where it is blocks.
pub(crate) fn unstack<'a>(data: TensorData<'a>, t: &TensorInfo, transpose: bool) -> Result<TensorData<'a>> {
    let (experts, rows, cols) = dims(t)?;
    let bytes = whole(data)?;
    let size = crate::decode::plain(t.dtype).byte_size().unwrap_or(4);
    let t = t.clone();
    let pieces = (0..experts).map(move |e| {
        let slab = slab_elements(&bytes, &t, e, experts)?;
        if !transpose {
            return Ok(slab);
        }
        let mut out = Vec::with_capacity(slab.len());
        for c in 0..cols {
            for r in 0..rows {
                let at = (r * cols + c) * size;
                out.extend_from_slice(&slab[at..at + size]);
            }
        }
        Ok(out)
    });
    Ok(TensorData::Chunks(Box::new(pieces)))
}

/// Gate and up `[experts, ffn, hidden]` woven back into gpt-oss's
/// `[experts, hidden, 2 x ffn]` (gate the even columns, up the odd), or
/// their biases `[experts, ffn]` into `[experts, 2 x ffn]`.
pub(crate) fn weave<'a>(
    gate: TensorData<'a>,
    up: TensorData<'a>,
    tg: &TensorInfo,
    tu: &TensorInfo,
    transpose: bool,
    halves: bool,
) -> Result<TensorData<'a>> {
    let (experts, rows, cols) = dims(tg)?;
    if dims(tu)? != (experts, rows, cols) || crate::decode::plain(tg.dtype) != crate::decode::plain(tu.dtype)
    {
        return Err(Error::unsupported(
            code::MODEL_INCONSISTENT,
            format!(
                "'{}' {:?} {:?} and '{}' {:?} {:?} do not interleave",
                tg.name, tg.dtype, tg.shape, tu.name, tu.dtype, tu.shape
            ),
        ));
    }
    let (gate, up) = (whole(gate)?, whole(up)?);
    let size = crate::decode::plain(tg.dtype).byte_size().unwrap_or(4);
    let (tg, tu) = (tg.clone(), tu.clone());
    let pieces = (0..experts).map(move |e| {
        let parts = [
            slab_elements(&gate, &tg, e, experts)?,
            slab_elements(&up, &tu, e, experts)?,
        ];
        let mut out = Vec::with_capacity(2 * parts[0].len());
        if halves {
            // Granite: the expert's gate rows, then its up rows.
            out.extend_from_slice(&parts[0]);
            out.extend_from_slice(&parts[1]);
        } else if transpose {
            // Output [cols (hidden), 2 x rows (ffn)]: element (c, 2r + p) is part p's (r, c).
            for c in 0..cols {
                for r in 0..rows {
                    for part in &parts {
                        let at = (r * cols + c) * size;
                        out.extend_from_slice(&part[at..at + size]);
                    }
                }
            }
        } else {
            for r in 0..rows {
                for c in 0..cols {
                    for part in &parts {
                        let at = (r * cols + c) * size;
                        out.extend_from_slice(&part[at..at + size]);
                    }
                }
            }
        }
        Ok(out)
    });
    Ok(TensorData::Chunks(Box::new(pieces)))
}

/// The HF descriptor of a woven or unstacked expert tensor.
pub(crate) fn hf_info(name: &str, t: &TensorInfo, woven: bool, transpose: bool) -> Result<TensorInfo> {
    let (e, rows, cols) = dims(t)?;
    // (Granite's halves stack as `[e, 2 x rows, cols]`: the untransposed case.)
    let k = if woven { 2 } else { 1 };
    let shape: Vec<u64> = match (transpose, t.shape.len()) {
        (true, _) => vec![e as u64, cols as u64, (k * rows) as u64],
        (false, 2) => vec![e as u64, (k * cols) as u64],
        (false, _) => vec![e as u64, (k * rows) as u64, cols as u64],
    };
    TensorInfo::new(name, crate::decode::plain(t.dtype), shape)
        .ok_or_else(|| Error::unsupported(code::TOO_LARGE, format!("tensor '{name}': size overflows")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorcast_core::DType;

    fn info(name: &str, shape: Vec<u64>) -> TensorInfo {
        TensorInfo::new(name, DType::F32, shape).unwrap()
    }

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// gate_up [E=1, H=2, 2ff=4] split into gate/up [1, 2, 2] and woven back.
    #[test]
    fn gate_up_splits_and_weaves_back() {
        // Row h, column 2r + p: value 100h + 10r + p.
        let vals = [0.0, 1.0, 10.0, 11.0, 100.0, 101.0, 110.0, 111.0];
        let t = info("model.layers.0.mlp.experts.gate_up_proj", vec![1, 2, 4]);
        let parts = to_gguf(FusedExperts::Interleaved, &t.name).unwrap();
        let mut out = Vec::new();
        for (name, g) in &parts {
            let o = gathered_info(name, &t, *g).unwrap();
            assert_eq!(o.shape, vec![1, 2, 2]);
            let bytes = f32s(&vals);
            let d = gather(TensorData::Borrowed(&bytes), &t, *g)
                .unwrap()
                .into_vec()
                .unwrap();
            out.push((o, d));
        }
        // gate [r, h] = 100h + 10r; up = + 1.
        assert_eq!(out[0].1, f32s(&[0.0, 100.0, 10.0, 110.0]));
        assert_eq!(out[1].1, f32s(&[1.0, 101.0, 11.0, 111.0]));
        let back = weave(
            TensorData::Borrowed(&out[0].1),
            TensorData::Borrowed(&out[1].1),
            &out[0].0,
            &out[1].0,
            true,
            false,
        )
        .unwrap()
        .into_vec()
        .unwrap();
        assert_eq!(back, f32s(&vals));
        assert_eq!(hf_info("x", &out[0].0, true, true).unwrap().shape, vec![1, 2, 4]);
    }
}
