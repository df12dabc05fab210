//! Strided views of a buffer (torch tensor views, NumPy Fortran-order
//! arrays), read out as contiguous row-major bytes a chunk at a time.

use crate::{Result, CHUNK_BYTES};

/// Where a view's elements sit in a buffer: element size, offset and strides
/// in elements, shape outermost first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Strided {
    /// Bytes per element.
    pub elem: usize,
    /// Offset of the first element, in elements.
    pub offset: u64,
    /// Shape (a 0-dim view is stored as `[1]`).
    pub size: Vec<u64>,
    /// Strides in elements, one per dimension.
    pub stride: Vec<u64>,
}

impl Strided {
    /// A view; an empty `size` (0-dim) is one element.
    pub fn new(elem: usize, offset: u64, size: Vec<u64>, stride: Vec<u64>) -> Strided {
        let (size, stride) = if size.is_empty() {
            (vec![1], vec![1])
        } else {
            (size, stride)
        };
        Strided {
            elem,
            offset,
            size,
            stride,
        }
    }

    /// The column-major (Fortran) layout of `shape`.
    pub fn column_major(elem: usize, shape: &[u64]) -> Strided {
        let mut stride = Vec::with_capacity(shape.len());
        let mut s = 1u64;
        for &n in shape {
            stride.push(s);
            s = s.saturating_mul(n);
        }
        Strided::new(elem, 0, shape.to_vec(), stride)
    }

    /// Elements in the view (saturating).
    pub fn numel(&self) -> u64 {
        self.size
            .iter()
            .try_fold(1u64, |a, &n| a.checked_mul(n))
            .unwrap_or(u64::MAX)
    }

    /// One past the last byte the view reads (0 when empty); `None` on overflow.
    pub fn extent_bytes(&self) -> Option<u64> {
        if self.numel() == 0 {
            return Some(0);
        }
        let mut last = self.offset;
        for (&n, &s) in self.size.iter().zip(&self.stride) {
            last = (n - 1).checked_mul(s).and_then(|d| last.checked_add(d))?;
        }
        last.checked_add(1)?.checked_mul(self.elem as u64)
    }

    /// The byte offset when the view is one contiguous row-major run
    /// (size-1 dims may have any stride).
    pub fn contiguous_offset(&self) -> Option<u64> {
        if self.numel() == 0 {
            return Some(0);
        }
        let mut expect = 1u64;
        for (&n, &s) in self.size.iter().zip(&self.stride).rev() {
            if n != 1 && s != expect {
                return None;
            }
            expect = expect.checked_mul(n)?;
        }
        self.offset.checked_mul(self.elem as u64)
    }
}

/// Reads `view` out of `src` in row-major order, at most [`CHUNK_BYTES`] per
/// chunk, calling `fix` on each chunk (byte order, sign bits). The caller has
/// checked that `view.extent_bytes()` fits in `src`.
pub fn gather<S, F>(src: S, view: Strided, fix: F) -> Gather<S, F>
where
    S: AsRef<[u8]> + Send,
    F: FnMut(&mut [u8]) + Send,
{
    let done = view.numel() == 0;
    let outer = vec![0; view.size.len() - 1];
    Gather {
        src,
        view,
        fix,
        outer,
        inner: 0,
        done,
    }
}

/// The iterator [`gather`] returns.
pub struct Gather<S, F> {
    src: S,
    view: Strided,
    fix: F,
    /// Index over every dim but the last.
    outer: Vec<u64>,
    /// Next element within the current row.
    inner: u64,
    done: bool,
}

impl<S: AsRef<[u8]>, F: FnMut(&mut [u8])> Iterator for Gather<S, F> {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let v = &self.view;
        let elem = v.elem;
        let src = self.src.as_ref();
        let last = v.size.len() - 1;
        let (row_len, row_stride) = (v.size[last], v.stride[last]);
        let budget = (CHUNK_BYTES / elem).max(1) as u64;
        let mut out = Vec::with_capacity((budget.min(v.numel()) as usize) * elem);
        while !self.done && ((out.len() / elem) as u64) < budget {
            let base = v.offset + self.outer.iter().zip(&v.stride).map(|(i, s)| i * s).sum::<u64>();
            let take = (row_len - self.inner).min(budget - (out.len() / elem) as u64);
            let first = base + self.inner * row_stride;
            if row_stride == 1 || row_len == 1 {
                let a = first as usize * elem;
                out.extend_from_slice(&src[a..a + take as usize * elem]);
            } else {
                for j in 0..take {
                    let a = (first + j * row_stride) as usize * elem;
                    out.extend_from_slice(&src[a..a + elem]);
                }
            }
            self.inner += take;
            if self.inner == row_len {
                self.inner = 0;
                self.done = !advance(&mut self.outer, &v.size[..last]);
            }
        }
        (self.fix)(&mut out);
        Some(Ok(out))
    }
}

/// Steps a multi-index; false when it wraps around (iteration is over).
fn advance(index: &mut [u64], dims: &[u64]) -> bool {
    for (i, &n) in index.iter_mut().zip(dims).rev() {
        *i += 1;
        if *i < n {
            return true;
        }
        *i = 0;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(v: Strided) -> Vec<i16> {
        let src: Vec<u8> = (0..100i16).flat_map(|v| v.to_le_bytes()).collect();
        let bytes: Vec<u8> = gather(src, v, |_| {}).flat_map(|c| c.unwrap()).collect();
        bytes
            .chunks(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect()
    }

    #[test]
    fn views_gather_in_row_major_order() {
        // Transposed 2x3 -> 3x2.
        assert_eq!(
            values(Strided::new(2, 0, vec![3, 2], vec![1, 3])),
            [0, 3, 1, 4, 2, 5]
        );
        // Stepped slice with an offset.
        assert_eq!(values(Strided::new(2, 5, vec![3], vec![2])), [5, 7, 9]);
        // Expanded (stride 0).
        assert_eq!(
            values(Strided::new(2, 1, vec![2, 3], vec![0, 1])),
            [1, 2, 3, 1, 2, 3]
        );
        // 0-dim.
        assert_eq!(values(Strided::new(2, 42, vec![], vec![])), [42]);
        // Empty.
        assert_eq!(
            values(Strided::new(2, 0, vec![0, 3], vec![7, 9])),
            Vec::<i16>::new()
        );
        // Column-major 2x3: stored 0 1 / 2 3 / 4 5 by columns.
        assert_eq!(values(Strided::column_major(2, &[2, 3])), [0, 2, 4, 1, 3, 5]);
    }

    #[test]
    fn contiguity_and_extent() {
        assert_eq!(
            Strided::new(2, 4, vec![2, 3], vec![3, 1]).contiguous_offset(),
            Some(8)
        );
        assert_eq!(
            Strided::new(2, 0, vec![3, 1], vec![1, 99]).contiguous_offset(),
            Some(0)
        );
        assert_eq!(
            Strided::new(2, 0, vec![3, 2], vec![1, 3]).contiguous_offset(),
            None
        );
        assert_eq!(
            Strided::new(2, 0, vec![3, 2], vec![1, 3]).extent_bytes(),
            Some(12)
        );
        assert_eq!(
            Strided::new(2, 0, vec![2, 2], vec![u64::MAX, 1]).extent_bytes(),
            None
        );
    }
}
