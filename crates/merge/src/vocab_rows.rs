//! Token-indexed tensors gathered into the output vocabulary as they are
//! streamed: each input's rows in the order a [`VocabPlan`] says, made rows
//! (a donor's, a mean, zeros) computed in the merge's precision as torch
//! computes them in mergekit's `PermutedVocabulary`.

use crate::numeric::{to_f32, Prec};
use crate::stream::CHUNK_ELEMENTS;
use crate::torch_sum::ColumnSums;
use crate::vocab::{Fill, RowOf, VocabPlan};
use std::sync::Arc;
use tensorcast_core::{code, Bytes, DType, Error, Result, Source, TensorData};

/// One input's tensor bytes: borrowed from its source, or spooled.
enum Held<'a> {
    Borrowed(&'a [u8]),
    Spooled(Bytes),
}

impl Held<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Held::Borrowed(b) => b,
            Held::Spooled(b) => b,
        }
    }
}

/// Every input's whole tensor, readable by row: mapped bytes are borrowed;
/// a tensor its source produces piece by piece (a dequantized GGUF
/// embedding) is spooled once to an unnamed temporary file and mapped, so
/// the page cache holds it, not the heap.
pub(crate) struct Rows<'a> {
    data: Vec<Held<'a>>,
    dtypes: Vec<DType>,
    /// The merged source's input of each part.
    inputs: Vec<usize>,
    /// Elements per row.
    width: usize,
    prec: Prec,
}

impl Rows<'_> {
    /// Row `row` of input `input`, in the merge's precision.
    fn own(&self, input: usize, row: u64) -> Result<Vec<f32>> {
        let part = self.inputs.iter().position(|&k| k == input).ok_or_else(|| {
            Error::usage(
                code::INTERNAL,
                format!("input {input} is not in this tensor's group"),
            )
        })?;
        let size = self.dtypes[part].storage_bytes(1).unwrap_or(4) as usize;
        let bytes = self.width * size;
        let start = row as usize * bytes;
        let slice = self.data[part].bytes().get(start..start + bytes).ok_or_else(|| {
            Error::usage(
                code::MERGE_MISMATCH,
                format!("row {row} is past the tensor's rows"),
            )
        })?;
        let mut values = to_f32(self.dtypes[part], slice)?;
        for x in &mut values {
            *x = self.prec.r(*x);
        }
        Ok(values)
    }

    fn fill(&self, fill: &Fill) -> Result<Vec<f32>> {
        Ok(match fill {
            Fill::Row(k, r) => self.own(*k, *r)?,
            Fill::Zero => vec![0.0; self.width],
            // `embed = zeros; embed = embed + row …; embed /= count`, each op
            // rounded to the dtype (a +0.0 start turns a -0.0 into +0.0).
            Fill::Average(from) => {
                let mut acc = vec![0.0f32; self.width];
                for &(k, r) in from {
                    for (a, x) in acc.iter_mut().zip(self.own(k, r)?) {
                        *a = self.prec.r(*a + x);
                    }
                }
                let count = from.len() as f32;
                for a in &mut acc {
                    *a = self.prec.r(*a / count);
                }
                acc
            }
        })
    }
}

/// Each input of a token-indexed tensor (`parts`: input and tensor index)
/// as its rows laid out per `plan`: f32 values in `prec`, a few MiB at a
/// time. `rows` caches the inputs' tensors between a merge's passes.
pub(crate) fn permuted<'a>(
    plan: &'a VocabPlan,
    inputs: &'a [Box<dyn Source>],
    parts: &[(usize, usize)],
    shape: &[u64],
    prec: Prec,
    rows: &mut Option<Arc<Rows<'a>>>,
) -> Result<Vec<(TensorData<'a>, DType)>> {
    let width = shape.get(1..).unwrap_or_default().iter().product::<u64>() as usize;
    let held = match rows {
        Some(r) => r.clone(),
        None => {
            let mut data = Vec::with_capacity(parts.len());
            let mut dtypes = Vec::with_capacity(parts.len());
            for &(input, i) in parts {
                let source = &inputs[input];
                let info = &source.tensors()[i];
                data.push(match source.tensor_data(i)? {
                    TensorData::Borrowed(b) | TensorData::Located { bytes: b, .. } => Held::Borrowed(b),
                    other => {
                        let name = std::path::PathBuf::from(format!("{} (its rows, spooled)", info.name));
                        Held::Spooled(match other {
                            TensorData::Chunks(pieces) => Bytes::spool(&name, info.nbytes, pieces)?,
                            whole => Bytes::spool(&name, info.nbytes, std::iter::once(whole.into_vec()))?,
                        })
                    }
                });
                dtypes.push(source.tensors()[i].dtype);
            }
            let r = Arc::new(Rows {
                data,
                dtypes,
                inputs: parts.iter().map(|&(k, _)| k).collect(),
                width,
                prec,
            });
            *rows = Some(r.clone());
            r
        }
    };
    let total = plan.rows();
    let per_chunk = (CHUNK_ELEMENTS / width.max(1)).max(1) as u64;
    Ok(parts
        .iter()
        .map(|&(input, _)| {
            let held = held.clone();
            let mut next = 0u64;
            // The rows before the padding, summed as torch's mean(dim=0)
            // sums them; the mean once the padding starts.
            let mut sums = Some(ColumnSums::new(plan.tokens(), held.width));
            let mut mean: Option<Vec<f32>> = None;
            let chunks = std::iter::from_fn(move || {
                if next >= total {
                    return None;
                }
                let end = (next + per_chunk).min(total);
                let chunk = (next..end).try_fold(
                    Vec::with_capacity((end - next) as usize * held.width * 4),
                    |mut out, row| {
                        let values = match plan.row(input, row) {
                            RowOf::Own(r) => held.own(input, r)?,
                            RowOf::Fill(f) => held.fill(f)?,
                            // `mean(new_embed[:n], dim=0)`: summed in float32,
                            // divided, rounded once to the dtype.
                            RowOf::Pad => mean
                                .get_or_insert_with(|| {
                                    let n = plan.tokens() as f32;
                                    let sums = sums.take().map(ColumnSums::finish).unwrap_or_default();
                                    sums.iter().map(|s| held.prec.r(s / n)).collect()
                                })
                                .clone(),
                        };
                        if let Some(s) = sums.as_mut().filter(|_| row < plan.tokens()) {
                            s.push_row(&values);
                        }
                        values
                            .iter()
                            .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
                        Ok(out)
                    },
                );
                // After an error, nothing more.
                next = if chunk.is_ok() { end } else { total };
                Some(chunk)
            });
            (TensorData::Chunks(Box::new(chunks)), DType::F32)
        })
        .collect())
}
