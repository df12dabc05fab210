//! Sparse tensors (COO and CSR) as a tensor kind: kept as stored by the
//! formats that hold them (tpack, .zt for CSR), densified only on request
//! ([`Densify`]) for the others, never silently.
//!
//! A sparse tensor's [`TensorInfo`] keeps the dense shape and the values'
//! dtype; its bytes are its parts one after the other, in the order
//! [`Sparse::parts`] gives (COO: indices then values; CSR: row pointers,
//! column indices, values), each little-endian and row-major, so every
//! writer that holds sparse tensors stores and every reader hands out the
//! same bytes.

use crate::code;
use crate::{element_count, DType, Error, FormatError, Limits, Result, Source, TensorData, TensorInfo};

/// How the stored positions are written down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SparseLayout {
    /// Coordinates: an `[sparse_dims, nnz]` index matrix (torch's `sparse_coo`).
    Coo,
    /// Compressed rows: row pointers and column indices (torch's `sparse_csr`).
    Csr,
}

impl SparseLayout {
    /// `COO` or `CSR`.
    pub fn name(self) -> &'static str {
        match self {
            SparseLayout::Coo => "COO",
            SparseLayout::Csr => "CSR",
        }
    }
}

/// What makes a tensor sparse: its layout, index type and value count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sparse {
    /// COO or CSR.
    pub layout: SparseLayout,
    /// Element type of the index parts (I32, I64, U32 or U64).
    pub index: DType,
    /// Number of stored values (for COO with dense trailing dimensions: of
    /// stored positions, each holding a dense block).
    pub nnz: u64,
    /// Leading dimensions the indices address; the rest are dense within
    /// each stored value. Always 2 for CSR.
    pub sparse_dims: u64,
}

/// One part of a sparse tensor's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparsePart {
    /// `indices`, `crow_indices`, `col_indices` or `values` (torch's names).
    pub name: &'static str,
    /// Element type.
    pub dtype: DType,
    /// Shape of the part.
    pub shape: Vec<u64>,
    /// Bytes of the part.
    pub nbytes: u64,
}

fn part(name: &'static str, dtype: DType, shape: Vec<u64>) -> Option<SparsePart> {
    let nbytes = dtype.storage_bytes(element_count(&shape)?)?;
    Some(SparsePart {
        name,
        dtype,
        shape,
        nbytes,
    })
}

impl Sparse {
    /// The parts of a sparse tensor of `values` elements and dense `shape`,
    /// in byte order; `Err` names the first shape rule broken.
    pub fn parts(&self, values: DType, shape: &[u64]) -> std::result::Result<Vec<SparsePart>, String> {
        if !matches!(self.index, DType::I32 | DType::I64 | DType::U32 | DType::U64) {
            return Err(format!(
                "sparse indices of {} (I32, I64, U32 or U64 are)",
                self.index
            ));
        }
        if values.byte_size().is_none() {
            return Err(format!(
                "sparse values of {values} (whole-byte element types are)"
            ));
        }
        let overflow = || "the size of a sparse part overflows".to_string();
        let dims = usize::try_from(self.sparse_dims).unwrap_or(usize::MAX);
        match self.layout {
            SparseLayout::Coo => {
                if dims == 0 || dims > shape.len() {
                    return Err(format!(
                        "a COO tensor of rank {} with {} sparse dimensions",
                        shape.len(),
                        self.sparse_dims
                    ));
                }
                let mut value_shape = vec![self.nnz];
                value_shape.extend_from_slice(&shape[dims..]);
                Ok(vec![
                    part("indices", self.index, vec![self.sparse_dims, self.nnz]).ok_or_else(overflow)?,
                    part("values", values, value_shape).ok_or_else(overflow)?,
                ])
            }
            SparseLayout::Csr => {
                if shape.len() != 2 || self.sparse_dims != 2 {
                    return Err(format!("a CSR tensor of rank {} (2 is read)", shape.len()));
                }
                let rows = shape[0].checked_add(1).ok_or_else(overflow)?;
                Ok(vec![
                    part("crow_indices", self.index, vec![rows]).ok_or_else(overflow)?,
                    part("col_indices", self.index, vec![self.nnz]).ok_or_else(overflow)?,
                    part("values", values, vec![self.nnz]).ok_or_else(overflow)?,
                ])
            }
        }
    }

    /// `sparse COO, 7 values, I64 indices` for `inspect`.
    pub fn describe(&self) -> String {
        format!(
            "sparse {}, {} values, {} indices",
            self.layout.name(),
            self.nnz,
            self.index
        )
    }
}

/// The descriptor of a sparse tensor: dense `shape`, `values` dtype, its
/// byte size the sum of its parts. `Err` names the shape rule broken.
pub fn sparse_info(
    name: impl Into<String>,
    values: DType,
    shape: Vec<u64>,
    sparse: Sparse,
) -> std::result::Result<TensorInfo, String> {
    element_count(&shape).ok_or("the dense shape overflows")?;
    let nbytes = sparse
        .parts(values, &shape)?
        .iter()
        .try_fold(0u64, |a, p| a.checked_add(p.nbytes))
        .ok_or("the sparse parts' size overflows")?;
    Ok(TensorInfo {
        name: name.into(),
        dtype: values,
        shape,
        nbytes,
        file_offset: None,
        sparse: Some(Box::new(sparse)),
        unreadable: None,
    })
}

/// Index part bytes as u64, refusing negative values.
fn indices(bytes: &[u8], dtype: DType) -> std::result::Result<Vec<u64>, String> {
    let neg = |v: i64| format!("a negative sparse index ({v})");
    match dtype {
        DType::I64 => bytes
            .chunks_exact(8)
            .map(|c| {
                let v = i64::from_le_bytes(c.try_into().unwrap_or_default());
                u64::try_from(v).map_err(|_| neg(v))
            })
            .collect(),
        DType::I32 => bytes
            .chunks_exact(4)
            .map(|c| {
                let v = i32::from_le_bytes(c.try_into().unwrap_or_default());
                u64::try_from(v).map_err(|_| neg(v.into()))
            })
            .collect(),
        DType::U64 => Ok(bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect()),
        DType::U32 => Ok(bytes
            .chunks_exact(4)
            .map(|c| u64::from(u32::from_le_bytes(c.try_into().unwrap_or_default())))
            .collect()),
        other => Err(format!("sparse indices of {other}")),
    }
}

/// The stored positions of a sparse tensor (row-major element index of
/// each stored block) and the byte length of one block, checked as torch
/// checks a loaded sparse tensor: every index inside the dense shape, CSR
/// row pointers from 0, never decreasing, ending at `nnz`, and column
/// indices strictly increasing within a row (the zTensor CSR profile's
/// rules too).
fn positions(
    info: &TensorInfo,
    sparse: &Sparse,
    bytes: &[u8],
) -> std::result::Result<(Vec<u64>, u64), String> {
    let parts = sparse.parts(info.dtype, &info.shape)?;
    let total: u64 = parts.iter().map(|p| p.nbytes).sum();
    if total != bytes.len() as u64 {
        return Err(format!("{} bytes for sparse parts of {total}", bytes.len()));
    }
    let mut at = 0usize;
    let mut cut = |n: u64| {
        let s = &bytes[at..at + n as usize];
        at += n as usize;
        s
    };
    let nnz = sparse.nnz as usize;
    match sparse.layout {
        SparseLayout::Coo => {
            let dims = sparse.sparse_dims as usize;
            let idx = indices(cut(parts[0].nbytes), sparse.index)?;
            let block: u64 = info.shape[dims..].iter().product();
            let mut pos = Vec::with_capacity(nnz);
            for k in 0..nnz {
                let mut lin = 0u64;
                for d in 0..dims {
                    let i = idx[d * nnz + k];
                    if i >= info.shape[d] {
                        return Err(format!("index {i} in dimension {d} of size {}", info.shape[d]));
                    }
                    lin = lin * info.shape[d] + i;
                }
                pos.push(lin);
            }
            Ok((pos, block))
        }
        SparseLayout::Csr => {
            let (rows, cols) = (info.shape[0] as usize, info.shape[1]);
            let crow = indices(cut(parts[0].nbytes), sparse.index)?;
            let col = indices(cut(parts[1].nbytes), sparse.index)?;
            if crow.first() != Some(&0) || crow.last() != Some(&(nnz as u64)) {
                return Err("CSR row pointers must run from 0 to the number of values".into());
            }
            let mut pos = Vec::with_capacity(nnz);
            for r in 0..rows {
                let (a, b) = (crow[r], crow[r + 1]);
                if b < a {
                    return Err(format!("CSR row pointers decrease at row {r}"));
                }
                if b > nnz as u64 {
                    return Err(format!("CSR row pointer {b} at row {r} is past the {nnz} values"));
                }
                let row = &col[a as usize..b as usize];
                for (j, &c) in row.iter().enumerate() {
                    if c >= cols {
                        return Err(format!("column {c} in a matrix of {cols} columns"));
                    }
                    if j > 0 && row[j - 1] >= c {
                        return Err(format!("columns of row {r} are not strictly increasing"));
                    }
                    pos.push(r as u64 * cols + c);
                }
            }
            Ok((pos, 1))
        }
    }
}

/// Checks a sparse tensor's bytes as torch checks a loaded one (indices in
/// range, CSR row pointers and columns in order); `Ok` for dense tensors.
pub fn check(info: &TensorInfo, bytes: &[u8]) -> std::result::Result<(), String> {
    match &info.sparse {
        Some(s) => positions(info, s, bytes).map(|_| ()),
        None => Ok(()),
    }
}

/// The dense bytes of a sparse tensor, as torch's `to_dense()` gives them:
/// zeros everywhere but the stored positions. A position given twice is
/// refused (torch would sum an uncoalesced tensor's values; coalesce it).
pub fn densify(info: &TensorInfo, bytes: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let Some(sparse) = &info.sparse else {
        return Ok(bytes.to_vec());
    };
    let (pos, block) = positions(info, sparse, bytes)?;
    let elem = info.dtype.byte_size().unwrap_or(1) as u64;
    let dense_len = info.numel().checked_mul(elem).ok_or("the dense size overflows")? as usize;
    let run = (block * elem) as usize;
    let mut dense = vec![0u8; dense_len];
    if run == 0 {
        return Ok(dense);
    }
    let values = &bytes[bytes.len() - pos.len() * run..];
    let mut seen = vec![0u64; (dense_len / run).div_ceil(64)];
    for (k, &p) in pos.iter().enumerate() {
        let (word, bit) = ((p / 64) as usize, p % 64);
        if seen[word] >> bit & 1 == 1 {
            return Err(format!(
                "position {p} is given twice (an uncoalesced sparse tensor): coalesce() it before saving"
            ));
        }
        seen[word] |= 1 << bit;
        let at = p as usize * run;
        dense[at..at + run].copy_from_slice(&values[k * run..(k + 1) * run]);
    }
    Ok(dense)
}

/// A sparse tensor's bytes collected (within the allocation limit) and
/// checked before a reader hands them out, so no writer stores indices
/// that point outside the tensor. `format` and `rule` name the reader's
/// rule in errors. Dense tensors pass through.
pub fn checked<'a>(
    info: &TensorInfo,
    data: TensorData<'a>,
    limits: &Limits,
    format: &'static str,
    rule: &'static str,
) -> Result<TensorData<'a>> {
    if info.sparse.is_none() {
        return Ok(data);
    }
    checked_parts(info, std::iter::once(Ok(data)), limits, format, rule)
}

/// As [`checked`], for a sparse tensor whose parts a reader reads one by
/// one (in the order of the tensor's bytes).
pub fn checked_parts<'a>(
    info: &TensorInfo,
    parts: impl IntoIterator<Item = Result<TensorData<'a>>>,
    limits: &Limits,
    format: &'static str,
    rule: &'static str,
) -> Result<TensorData<'a>> {
    limits
        .check_alloc(info.nbytes, "reading a sparse tensor")
        .map_err(|d| {
            FormatError::new(format, "alloc-limit", d)
                .tensor(&info.name)
                .limit("max_alloc_bytes")
        })?;
    let mut bytes = Vec::with_capacity(info.nbytes as usize);
    for part in parts {
        part?.for_each_chunk(|c| {
            bytes.extend_from_slice(c);
            Ok(())
        })?;
    }
    check(info, &bytes).map_err(|d| FormatError::new(format, rule, d).tensor(&info.name))?;
    Ok(TensorData::Chunks(Box::new(std::iter::once(Ok(bytes)))))
}

/// The first sparse tensor of `tensors`, for writers that refuse them.
pub fn refuse_sparse(tensors: &[TensorInfo], format: &str) -> Result<()> {
    match tensors.iter().find(|t| t.sparse.is_some()) {
        None => Ok(()),
        Some(t) => Err(Error::unsupported(
            code::SPARSE_NOT_HELD,
            format!(
                "tensor '{}' is {}: {format} has no sparse tensors; its dense form can be written instead",
                t.name,
                t.sparse.as_ref().map_or_else(String::new, |s| s.describe())
            ),
        )),
    }
}

/// A source whose sparse tensors read as the dense tensors they stand for.
pub struct Densify<S> {
    inner: S,
    tensors: Vec<TensorInfo>,
    limits: Limits,
}

impl<S: Source> Densify<S> {
    /// Wraps `inner`; `limits` bounds the dense buffers.
    pub fn new(inner: S, limits: Limits) -> Result<Densify<S>> {
        let mut tensors = Vec::with_capacity(inner.tensors().len());
        for t in inner.tensors() {
            let mut out = t.clone();
            if out.sparse.take().is_some() {
                out = TensorInfo::new(t.name.clone(), t.dtype, t.shape.clone()).ok_or_else(|| {
                    Error::unsupported(
                        code::TOO_LARGE,
                        format!("tensor '{}': its dense size overflows", t.name),
                    )
                })?;
            }
            tensors.push(out);
        }
        Ok(Densify {
            inner,
            tensors,
            limits,
        })
    }
}

impl<S: Source> Source for Densify<S> {
    crate::forward_to_inner!();
    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }
    fn storage_note(&self, index: usize) -> Option<String> {
        self.inner.storage_note(index)
    }
    fn raw_location(&self, index: usize) -> Option<crate::RawLocation<'_>> {
        let sparse = self.inner.tensors().get(index)?.sparse.is_some();
        if sparse {
            None
        } else {
            self.inner.raw_location(index)
        }
    }
    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        let sparse_info = self
            .inner
            .tensors()
            .get(index)
            .ok_or_else(|| Error::usage(code::CALL_ORDER, format!("no tensor #{index}")))?;
        let data = self.inner.tensor_data(index)?;
        if sparse_info.sparse.is_none() {
            return Ok(data);
        }
        let format = self.inner.format();
        let name = &sparse_info.name;
        let alloc = |what: &str, n: u64| {
            self.limits.check_alloc(n, what).map_err(|d| {
                FormatError::new(format, "alloc-limit", d)
                    .tensor(name)
                    .limit("max_alloc_bytes")
            })
        };
        alloc("reading a sparse tensor", sparse_info.nbytes)?;
        alloc("densifying a sparse tensor", self.tensors[index].nbytes)?;
        let bytes = data.into_vec()?;
        let dense =
            densify(sparse_info, &bytes).map_err(|d| FormatError::new(format, "sparse", d).tensor(name))?;
        Ok(TensorData::Chunks(Box::new(std::iter::once(Ok(dense)))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coo(nnz: u64, dims: u64) -> Sparse {
        Sparse {
            layout: SparseLayout::Coo,
            index: DType::I64,
            nnz,
            sparse_dims: dims,
        }
    }

    fn le(v: &[i64]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn coo_densifies_with_a_dense_trailing_dimension() {
        // [[0, (1,2)], [(3,4), 0]] of shape [2, 2, 2], positions (0,1), (1,0).
        let info = sparse_info("t", DType::I64, vec![2, 2, 2], coo(2, 2)).unwrap();
        assert_eq!(info.nbytes, 4 * 8 + 4 * 8);
        let mut bytes = le(&[0, 1, 1, 0]);
        bytes.extend(le(&[1, 2, 3, 4]));
        assert_eq!(densify(&info, &bytes).unwrap(), le(&[0, 0, 1, 2, 3, 4, 0, 0]));
    }

    #[test]
    fn bad_indices_are_refused_by_rule() {
        let info = sparse_info("t", DType::I64, vec![2, 2], coo(2, 2)).unwrap();
        let mut bytes = le(&[0, 0, 1, 1]);
        bytes.extend(le(&[5, 6]));
        assert!(densify(&info, &bytes).unwrap_err().contains("given twice"));
        let mut out_of_range = le(&[0, 2, 1, 1]);
        out_of_range.extend(le(&[5, 6]));
        assert!(check(&info, &out_of_range)
            .unwrap_err()
            .contains("dimension 0 of size 2"));
        let csr = Sparse {
            layout: SparseLayout::Csr,
            index: DType::I64,
            nnz: 2,
            sparse_dims: 2,
        };
        let info = sparse_info("c", DType::I64, vec![2, 3], csr).unwrap();
        let unsorted = [le(&[0, 2, 2]), le(&[2, 1]), le(&[7, 8])].concat();
        assert!(check(&info, &unsorted)
            .unwrap_err()
            .contains("strictly increasing"));
        // A middle row pointer past the values (found by the bit-flip sweep).
        let past = [le(&[0, 9, 2]), le(&[0, 2]), le(&[7, 8])].concat();
        assert!(check(&info, &past).unwrap_err().contains("past the 2 values"));
        let good = [le(&[0, 2, 2]), le(&[0, 2]), le(&[7, 8])].concat();
        assert_eq!(densify(&info, &good).unwrap(), le(&[7, 0, 8, 0, 0, 0]));
        assert!(sparse_info(
            "c",
            DType::Quant(crate::QuantType::from_name("Q8_0").unwrap()),
            vec![2, 32],
            coo(1, 1)
        )
        .is_err());
    }
}
