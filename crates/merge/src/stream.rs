//! Every input's values of one tensor, read side by side a chunk at a time:
//! a merge pass holds one chunk per input, never a whole tensor.

use crate::numeric::{to_f32, Prec};
use rayon::prelude::*;
use std::borrow::Cow;
use tensorcast_core::{code, DType, Error, Result, TensorData};

/// Elements per chunk and input (4 MiB of f32).
pub const CHUNK_ELEMENTS: usize = 1 << 20;

/// An input's bytes piece by piece, each with its dtype (an input may be
/// several tensors read one after the other: a fused group of experts).
type Pieces<'a> = Box<dyn Iterator<Item = Result<(DType, Cow<'a, [u8]>)>> + Send + 'a>;

/// Opens one tensor of an input: its bytes and dtype.
pub type Open<'a> = Box<dyn FnOnce() -> Result<(TensorData<'a>, DType)> + Send + 'a>;

/// One input's values, as f32 rounded to the merge's precision.
struct Reader<'a> {
    pieces: Pieces<'a>,
    prec: Prec,
    buf: Vec<f32>,
    at: usize,
}

impl Reader<'_> {
    /// Appends the next `n` values to `out`.
    fn take(&mut self, n: usize, out: &mut Vec<f32>) -> Result<()> {
        let mut want = n;
        while want > 0 {
            if self.at == self.buf.len() {
                let piece = self.pieces.next().ok_or_else(|| {
                    Error::usage(code::INTERNAL, "an input tensor ended before its shape says")
                })?;
                let (dtype, piece) = piece?;
                self.buf = to_f32(dtype, &piece)?;
                if Prec::of(dtype)? != self.prec {
                    for x in &mut self.buf {
                        *x = self.prec.r(*x);
                    }
                }
                self.at = 0;
            }
            let k = want.min(self.buf.len() - self.at);
            out.extend_from_slice(&self.buf[self.at..self.at + k]);
            self.at += k;
            want -= k;
        }
        Ok(())
    }
}

/// All inputs of one tensor in step.
pub struct Lockstep<'a> {
    readers: Vec<Reader<'a>>,
    /// Elements left.
    left: usize,
    /// Elements per chunk.
    chunk: usize,
}

impl<'a> Lockstep<'a> {
    /// `inputs`: each input's bytes and dtype; `prec`: the precision the
    /// values are rounded to; `n`: the element count; `chunk`: elements per
    /// step (a multiple of the row for row-wise methods).
    pub fn with_chunk(
        inputs: Vec<(TensorData<'a>, DType)>,
        prec: Prec,
        n: usize,
        chunk: usize,
    ) -> Result<Lockstep<'a>> {
        let inputs = inputs
            .into_iter()
            .map(|x| vec![Box::new(move || Ok(x)) as Open<'a>])
            .collect();
        Lockstep::chained(inputs, prec, n, chunk)
    }

    /// As [`Lockstep::with_chunk`], each input being several tensors read
    /// one after the other (`n` counts all of them), each opened when the
    /// one before it is done.
    pub fn chained(inputs: Vec<Vec<Open<'a>>>, prec: Prec, n: usize, chunk: usize) -> Result<Lockstep<'a>> {
        let chunk = chunk.max(1);
        let readers = inputs
            .into_iter()
            .map(|parts| Reader {
                pieces: Box::new(parts.into_iter().flat_map(move |open| -> Pieces<'a> {
                    match open() {
                        Ok((data, dtype)) => {
                            let size = dtype.storage_bytes(1).unwrap_or(4) as usize;
                            Box::new(
                                data.aligned_chunks(size, chunk * size)
                                    .map(move |piece| piece.map(|p| (dtype, p))),
                            )
                        }
                        Err(e) => Box::new(std::iter::once(Err(e))),
                    }
                })),
                prec,
                buf: Vec::new(),
                at: 0,
            })
            .collect();
        Ok(Lockstep {
            readers,
            left: n,
            chunk: chunk.max(1),
        })
    }

    /// The next chunk of every input (same length each), or None at the end.
    pub fn next_chunk(&mut self) -> Option<Result<Vec<Vec<f32>>>> {
        if self.left == 0 {
            return None;
        }
        let n = self.left.min(self.chunk);
        self.left -= n;
        // One input per core: decoding (a cast, dequantized blocks) is the work.
        let out: Result<Vec<Vec<f32>>> = self
            .readers
            .par_iter_mut()
            .map(|r| {
                let mut v = Vec::with_capacity(n);
                r.take(n, &mut v).map(|()| v)
            })
            .collect();
        if out.is_err() {
            self.left = 0;
        }
        Some(out)
    }
}
