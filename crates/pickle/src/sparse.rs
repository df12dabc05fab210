//! Sparse tensors made dense, as torch's `to_dense()` makes them: zeros
//! everywhere but the stored positions. Indices come from the file, so each
//! is checked against the dense size, CSR row pointers must not decrease,
//! and a position given twice is refused (torch would sum the values of an
//! uncoalesced tensor; coalesce it first).

use crate::rules;
use crate::torch::SparseLayout;
use tensorcast_core::{DType, FormatError, TensorInfo};

fn err(detail: impl Into<String>) -> FormatError {
    FormatError::new(crate::FORMAT, rules::BAD_CALL, detail)
}

/// Little-endian integers of `dtype` (int64 or int32) as u64, refusing
/// negative ones.
fn indices(bytes: &[u8], dtype: DType) -> Result<Vec<u64>, FormatError> {
    let neg = || err("a negative sparse index");
    match dtype {
        DType::I64 => bytes
            .chunks_exact(8)
            .map(|c| u64::try_from(i64::from_le_bytes(c.try_into().unwrap_or_default())).map_err(|_| neg()))
            .collect(),
        DType::I32 => bytes
            .chunks_exact(4)
            .map(|c| u64::try_from(i32::from_le_bytes(c.try_into().unwrap_or_default())).map_err(|_| neg()))
            .collect(),
        other => Err(err(format!("sparse indices of {other}"))),
    }
}

/// The dense bytes of a sparse tensor whose parts are `parts` (read in
/// full, shapes and dtypes beside them) and whose dense form `info` says.
pub fn densify(
    layout: SparseLayout,
    parts: &[Vec<u8>],
    shapes: &[Vec<u64>],
    dtypes: &[DType],
    info: &TensorInfo,
) -> Result<Vec<u8>, FormatError> {
    let elem = info
        .dtype
        .byte_size()
        .ok_or_else(|| err(format!("sparse values of {}", info.dtype)))?;
    let mut dense = vec![0u8; info.nbytes as usize];
    // Every stored position is a run of `block` elements (COO values may
    // carry trailing dense dimensions).
    let (positions, block, values): (Vec<u64>, usize, &[u8]) = match layout {
        SparseLayout::Coo => {
            let (sparse_dims, nnz) = (shapes[0][0] as usize, shapes[0][1] as usize);
            let idx = indices(&parts[0], dtypes[0])?;
            let block: u64 = info.shape[sparse_dims..].iter().product();
            let mut pos = Vec::with_capacity(nnz);
            for k in 0..nnz {
                let mut lin = 0u64;
                for d in 0..sparse_dims {
                    let i = idx[d * nnz + k];
                    if i >= info.shape[d] {
                        return Err(err(format!(
                            "index {i} in dimension {d} of size {}",
                            info.shape[d]
                        )));
                    }
                    lin = lin * info.shape[d] + i;
                }
                pos.push(lin);
            }
            (pos, block as usize, &parts[1])
        }
        SparseLayout::Csr => {
            let (rows, cols) = (info.shape[0], info.shape[1]);
            let crow = indices(&parts[0], dtypes[0])?;
            let col = indices(&parts[1], dtypes[1])?;
            if crow.first() != Some(&0) || crow.last() != Some(&(col.len() as u64)) {
                return Err(err("CSR row pointers must run from 0 to the number of values"));
            }
            let mut pos = Vec::with_capacity(col.len());
            for r in 0..rows as usize {
                let (a, b) = (crow[r], crow[r + 1]);
                if b < a {
                    return Err(err(format!("CSR row pointers decrease at row {r}")));
                }
                for &c in &col[a as usize..b as usize] {
                    if c >= cols {
                        return Err(err(format!("column {c} in a matrix of {cols} columns")));
                    }
                    pos.push(r as u64 * cols + c);
                }
            }
            (pos, 1, &parts[2])
        }
    };
    let run = block * elem;
    if run == 0 {
        // A zero-sized trailing dimension: nothing to place.
        return Ok(dense);
    }
    if values.len() != positions.len() * run {
        return Err(err("sparse values do not match the number of indices"));
    }
    let mut seen = vec![0u64; (info.nbytes as usize / run.max(1)).div_ceil(64)];
    for (k, &p) in positions.iter().enumerate() {
        let (word, bit) = ((p / 64) as usize, p % 64);
        if seen[word] >> bit & 1 == 1 {
            return Err(err(format!(
                "position {p} is given twice (an uncoalesced sparse tensor): coalesce() it before saving"
            )));
        }
        seen[word] |= 1 << bit;
        let at = p as usize * run;
        dense[at..at + run].copy_from_slice(&values[k * run..(k + 1) * run]);
    }
    Ok(dense)
}
