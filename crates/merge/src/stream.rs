//! Every input's values of one tensor, read side by side a chunk at a time:
//! a merge pass holds one chunk per input, never a whole tensor.

use crate::numeric::{to_f32, Prec};
use rayon::prelude::*;
use std::borrow::Cow;
use tensorcast_core::{code, DType, Error, Result, TensorData};

/// Elements per chunk and input (4 MiB of f32).
pub const CHUNK_ELEMENTS: usize = 1 << 20;

type Pieces<'a> = Box<dyn Iterator<Item = Result<Cow<'a, [u8]>>> + Send + 'a>;

/// One input's values, as f32 rounded to the merge's precision.
struct Reader<'a> {
    pieces: Pieces<'a>,
    dtype: DType,
    round: Option<Prec>,
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
                })??;
                self.buf = to_f32(self.dtype, &piece)?;
                if let Some(p) = self.round {
                    for x in &mut self.buf {
                        *x = p.r(*x);
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
        let readers = inputs
            .into_iter()
            .map(|(data, dtype)| {
                let own = Prec::of(dtype)?;
                let size = dtype.storage_bytes(1).unwrap_or(4) as usize;
                Ok(Reader {
                    pieces: data.aligned_chunks(size, chunk.max(1) * size),
                    dtype,
                    round: (own != prec).then_some(prec),
                    buf: Vec::new(),
                    at: 0,
                })
            })
            .collect::<Result<_>>()?;
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
