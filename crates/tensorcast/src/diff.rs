//! `diff`: two files of any formats hold the same tensors — names, dtypes,
//! shapes, values (bit for bit, or within a tolerance for lossy paths).

use tensorcast_core::cast::float::{
    bf16_to_f32, e4m3_to_f32, e4m3fnuz_to_f32, e5m2_to_f32, e5m2fnuz_to_f32, e8m0_to_f32, f16_to_f32,
};
use tensorcast_core::{DType, Result, Source, CHUNK_BYTES};

/// `|a - b| <= atol + rtol * |b|` for every element, as numpy's `allclose`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance.
    pub rtol: f64,
}

/// One difference found.
#[derive(Clone, Debug, PartialEq)]
pub enum Difference {
    /// A tensor only the first file has.
    OnlyInA(String),
    /// A tensor only the second file has.
    OnlyInB(String),
    /// Same name, different dtype or shape.
    Layout {
        /// Tensor name.
        name: String,
        /// How it looks in A.
        a: String,
        /// How it looks in B.
        b: String,
    },
    /// Values differ.
    Values {
        /// Tensor name.
        name: String,
        /// Elements that differ (beyond the tolerance, if one is given).
        count: u64,
        /// Largest absolute difference (floats and integers).
        max_abs: f64,
        /// Largest relative difference.
        max_rel: f64,
    },
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::OnlyInA(n) => write!(f, "{n}: only in A"),
            Difference::OnlyInB(n) => write!(f, "{n}: only in B"),
            Difference::Layout { name, a, b } => write!(f, "{name}: {a} vs {b}"),
            Difference::Values {
                name,
                count,
                max_abs,
                max_rel,
            } => write!(
                f,
                "{name}: {count} elements differ (max abs {max_abs:e}, max rel {max_rel:e})"
            ),
        }
    }
}

/// Compares `a` with `b`; returns every difference (empty: equal).
pub fn diff(a: &dyn Source, b: &dyn Source, tol: Option<Tolerance>) -> Result<Vec<Difference>> {
    let mut out = Vec::new();
    for t in a.tensors() {
        if b.find(&t.name).is_none() {
            out.push(Difference::OnlyInA(t.name.clone()));
        }
    }
    for t in b.tensors() {
        if a.find(&t.name).is_none() {
            out.push(Difference::OnlyInB(t.name.clone()));
        }
    }
    for (i, ta) in a.tensors().iter().enumerate() {
        let Some(j) = b.find(&ta.name) else { continue };
        let tb = &b.tensors()[j];
        if ta.dtype != tb.dtype || ta.shape != tb.shape {
            out.push(Difference::Layout {
                name: ta.name.clone(),
                a: format!("{} {:?}", ta.dtype, ta.shape),
                b: format!("{} {:?}", tb.dtype, tb.shape),
            });
            continue;
        }
        let elem = ta.dtype.byte_size().unwrap_or(1);
        let mut xs = a.tensor_data(i)?.aligned_chunks(elem, CHUNK_BYTES);
        let mut ys = b.tensor_data(j)?.aligned_chunks(elem, CHUNK_BYTES);
        let (mut bx, mut by) = (Vec::new(), Vec::new());
        let mut stats = Stats::default();
        loop {
            // Refill whichever side has less buffered, then compare the overlap.
            if bx.len() < CHUNK_BYTES {
                if let Some(c) = xs.next() {
                    bx.extend_from_slice(&c?);
                }
            }
            if by.len() < CHUNK_BYTES {
                if let Some(c) = ys.next() {
                    by.extend_from_slice(&c?);
                }
            }
            let n = bx.len().min(by.len());
            let n = n - n % elem;
            if n == 0 {
                break;
            }
            stats.compare(ta.dtype, elem, &bx[..n], &by[..n], tol);
            bx.drain(..n);
            by.drain(..n);
        }
        if stats.count > 0 {
            out.push(Difference::Values {
                name: ta.name.clone(),
                count: stats.count,
                max_abs: stats.max_abs,
                max_rel: stats.max_rel,
            });
        }
    }
    Ok(out)
}

#[derive(Default)]
struct Stats {
    count: u64,
    max_abs: f64,
    max_rel: f64,
}

impl Stats {
    fn compare(&mut self, dtype: DType, elem: usize, x: &[u8], y: &[u8], tol: Option<Tolerance>) {
        for (a, b) in x.chunks_exact(elem).zip(y.chunks_exact(elem)) {
            if a == b {
                continue;
            }
            let (va, vb) = match (value(dtype, a), value(dtype, b)) {
                (Some(va), Some(vb)) => (va, vb),
                // Opaque bytes (ggml blocks, sub-byte floats): any change counts.
                _ => {
                    self.count += 1;
                    continue;
                }
            };
            if va.is_nan() && vb.is_nan() && tol.is_some() {
                continue;
            }
            let abs = (va - vb).abs();
            let rel = if vb == 0.0 { abs } else { abs / vb.abs() };
            let within = tol.is_some_and(|t| abs <= t.atol + t.rtol * vb.abs());
            if !within {
                self.count += 1;
            }
            if abs.is_finite() {
                self.max_abs = self.max_abs.max(abs);
                self.max_rel = self.max_rel.max(rel);
            } else {
                self.max_abs = f64::INFINITY;
                self.max_rel = f64::INFINITY;
            }
        }
    }
}

/// An element as f64; `None` for types compared bit for bit only (complex,
/// ggml blocks, sub-byte floats).
fn value(dtype: DType, b: &[u8]) -> Option<f64> {
    let u16le = |b: &[u8]| u16::from_le_bytes([b[0], b[1]]);
    Some(match dtype {
        DType::F64 => f64::from_le_bytes(b.try_into().ok()?),
        DType::F32 => f32::from_le_bytes(b.try_into().ok()?) as f64,
        DType::F16 => f16_to_f32(u16le(b)) as f64,
        DType::BF16 => bf16_to_f32(u16le(b)) as f64,
        DType::F8E4M3 => e4m3_to_f32(b[0]) as f64,
        DType::F8E5M2 => e5m2_to_f32(b[0]) as f64,
        DType::F8E4M3Fnuz => e4m3fnuz_to_f32(b[0]) as f64,
        DType::F8E5M2Fnuz => e5m2fnuz_to_f32(b[0]) as f64,
        DType::F8E8M0 => e8m0_to_f32(b[0]) as f64,
        DType::I8 => b[0] as i8 as f64,
        DType::U8 | DType::Bool => b[0] as f64,
        DType::I16 => i16::from_le_bytes([b[0], b[1]]) as f64,
        DType::U16 => u16le(b) as f64,
        DType::I32 => i32::from_le_bytes(b.try_into().ok()?) as f64,
        DType::U32 => u32::from_le_bytes(b.try_into().ok()?) as f64,
        DType::I64 => i64::from_le_bytes(b.try_into().ok()?) as f64,
        DType::U64 => u64::from_le_bytes(b.try_into().ok()?) as f64,
        _ => return None,
    })
}
