//! llama.cpp's rotary layout for Q and K: within each head, the two halves of
//! the rotary pairs are interleaved. A permutation of whole rows (exact, no
//! arithmetic), so it works on raw ggml blocks as well as on floats.
//!
//! With `R` rows and `n` heads, HF row `h·R/n + k·R/(2n) + j` (k ∈ {0, 1})
//! is GGUF row `h·R/n + 2j + k` — `reshape(n, 2, R/n/2).swapaxes(1, 2)` in
//! `convert_hf_to_gguf.py`, undone by transformers' `reverse_permute_weights`.

use tensorcast_core::code;
use tensorcast_core::{Error, Result, TensorData, TensorInfo, CHUNK_BYTES};

/// Which way rows move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Hugging Face order to llama.cpp's.
    ToGguf,
    /// llama.cpp's order back to Hugging Face's.
    ToHf,
}

/// The input row that output row `out` takes, for `rows` rows in `heads` heads.
pub fn source_row(out: u64, rows: u64, heads: u64, direction: Direction) -> u64 {
    let per_head = rows / heads;
    let half = per_head / 2;
    let (h, r) = (out / per_head, out % per_head);
    let within = match direction {
        // out is a GGUF row (j, k) = (r / 2, r % 2): it comes from HF (k, j).
        Direction::ToGguf => (r % 2) * half + r / 2,
        // out is an HF row (k, j) = (r / half, r % half): it comes from GGUF (j, k).
        Direction::ToHf => (r % half) * 2 + r / half,
    };
    h * per_head + within
}

/// Checks that `rows` split into `heads` heads of an even number of rows.
pub fn check(name: &str, rows: u64, heads: u64) -> Result<()> {
    if heads == 0 || !rows.is_multiple_of(heads) || !(rows / heads).is_multiple_of(2) {
        return Err(Error::unsupported(
            code::MODEL_INCONSISTENT,
            format!("tensor '{name}': {rows} rows do not split into {heads} heads of rotary pairs"),
        ));
    }
    Ok(())
}

/// `data` (all `rows` rows of `row_bytes` each, raw) with its rows permuted.
pub fn permute_rows<'a>(
    data: TensorData<'a>,
    rows: u64,
    row_bytes: usize,
    heads: u64,
    direction: Direction,
) -> Result<TensorData<'a>> {
    let bytes: std::borrow::Cow<'a, [u8]> = match data {
        TensorData::Borrowed(b) | TensorData::Located { bytes: b, .. } => b.into(),
        // A computed tensor must be held to be permuted: Q/K matrices are
        // among a model's smaller ones (hidden x hidden at most).
        chunks => chunks.into_vec()?.into(),
    };
    let whole = usize::try_from(rows).ok().and_then(|r| r.checked_mul(row_bytes));
    if whole != Some(bytes.len()) {
        return Err(Error::usage(
            code::MODEL_INCONSISTENT,
            "permuted tensor's size disagrees with its rows",
        ));
    }
    let rows_per_chunk = (CHUNK_BYTES / row_bytes.max(1)).max(1) as u64;
    let chunks = (0..rows).step_by(rows_per_chunk as usize).map(move |first| {
        let last = (first + rows_per_chunk).min(rows);
        let mut out = Vec::with_capacity(((last - first) as usize) * row_bytes);
        for row in first..last {
            let from = source_row(row, rows, heads, direction) as usize * row_bytes;
            out.extend_from_slice(&bytes[from..from + row_bytes]);
        }
        Ok(out)
    });
    Ok(TensorData::Chunks(Box::new(chunks)))
}

/// A 2-D tensor `[rows, cols]` of a plain dtype as `[cols, rows]` (one
/// matrix held at a time: GPT-2's Conv1D weights).
pub fn transpose<'a>(data: TensorData<'a>, t: &TensorInfo) -> Result<TensorData<'a>> {
    let refuse = |why: &str| {
        Error::unsupported(
            code::MODEL_INCONSISTENT,
            format!("tensor '{}' {:?} {:?}: {why}", t.name, t.dtype, t.shape),
        )
    };
    let [rows, cols] = t.shape[..] else {
        return Err(refuse("a transposed matrix is 2-D"));
    };
    let size = t
        .dtype
        .byte_size()
        .ok_or_else(|| refuse("a transposed matrix has a plain element type"))?;
    let (rows, cols) = (
        usize::try_from(rows).unwrap_or(0),
        usize::try_from(cols).unwrap_or(0),
    );
    let bytes = data.into_vec()?;
    if rows.checked_mul(cols).and_then(|n| n.checked_mul(size)) != Some(bytes.len()) {
        return Err(refuse("its bytes are not its shape"));
    }
    // Output element j is column j / rows, row j % rows of the input; the
    // output is made a chunk at a time from the input held whole.
    let n = rows * cols;
    let per_chunk = (CHUNK_BYTES / size).max(1);
    let pieces = (0..n).step_by(per_chunk).map(move |start| {
        let end = (start + per_chunk).min(n);
        let mut out = Vec::with_capacity((end - start) * size);
        for j in start..end {
            let (c, r) = (j / rows, j % rows);
            let from = (r * cols + c) * size;
            out.extend_from_slice(&bytes[from..from + size]);
        }
        Ok(out)
    });
    Ok(TensorData::Chunks(Box::new(pieces)))
}

/// Falcon's QKV row blocks (one head of `head_dim` rows each): in HF,
/// `n_kv` groups of `n_head / n_kv` queries, a key and a value; in GGUF all
/// queries, then all keys, then all values. The GGUF order as HF block
/// indices (its inverse undoes it).
pub fn falcon_qkv_order(n_head: usize, n_kv: usize) -> Vec<usize> {
    let n_kv = n_kv.max(1);
    let per = n_head / n_kv + 2;
    let queries = (0..n_kv).flat_map(|g| (0..per - 2).map(move |s| g * per + s));
    let keys = (0..n_kv).map(|g| g * per + per - 2);
    let values = (0..n_kv).map(|g| g * per + per - 1);
    queries.chain(keys).chain(values).collect()
}

/// Refuses head counts a fused QKV of `rows` rows cannot hold (before any
/// order of that many blocks is built: counts come from config.json).
pub fn check_qkv_blocks(
    name: &str,
    rows: u64,
    kind: crate::arch::QkvRegroup,
    heads: u64,
    kv: u64,
) -> Result<()> {
    let blocks = match kind {
        crate::arch::QkvRegroup::Falcon if kv > 0 && heads.is_multiple_of(kv) => {
            heads.checked_add(kv.saturating_mul(2))
        }
        crate::arch::QkvRegroup::Bloom => heads.checked_mul(3),
        _ => None,
    };
    match blocks {
        Some(b) if b > 0 && b <= rows && rows.is_multiple_of(b) => Ok(()),
        _ => Err(Error::unsupported(
            code::MODEL_INCONSISTENT,
            format!("tensor '{name}': {rows} rows are not the fused Q/K/V of {heads} heads and {kv} key/value heads"),
        )),
    }
}

/// The GGUF order of a fused QKV's head blocks, as HF block indices.
pub fn qkv_order(kind: crate::arch::QkvRegroup, n_head: usize, n_kv: usize) -> Vec<usize> {
    match kind {
        crate::arch::QkvRegroup::Falcon => falcon_qkv_order(n_head, n_kv),
        crate::arch::QkvRegroup::Bloom => bloom_qkv_order(n_head),
        crate::arch::QkvRegroup::None => (0..n_head + 2 * n_kv).collect(),
    }
}

/// BLOOM's QKV head blocks: per head its query, key and value in HF; all
/// queries, keys, values in GGUF. The GGUF order as HF block indices.
pub fn bloom_qkv_order(n_head: usize) -> Vec<usize> {
    (0..3)
        .flat_map(|part| (0..n_head).map(move |h| h * 3 + part))
        .collect()
}

/// `order[i]`'s inverse: where each block goes.
pub fn inverse(order: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; order.len()];
    for (i, &o) in order.iter().enumerate() {
        if let Some(slot) = inv.get_mut(o) {
            *slot = i;
        }
    }
    inv
}

/// Rows in blocks of `block_bytes`, block `i` of the output being block
/// `order[i]` of the input.
pub fn reorder_blocks<'a>(
    data: TensorData<'a>,
    block_bytes: usize,
    order: &[usize],
    name: &str,
) -> Result<TensorData<'a>> {
    let bytes = data.into_vec()?;
    if block_bytes == 0 || bytes.len() != block_bytes * order.len() || order.iter().any(|&o| o >= order.len())
    {
        return Err(Error::unsupported(
            code::MODEL_INCONSISTENT,
            format!(
                "tensor '{name}': {} bytes are not {} head blocks of {block_bytes}",
                bytes.len(),
                order.len()
            ),
        ));
    }
    // A head block per chunk (64 rows of a 40B model's 8192: 1 MiB in bf16).
    let order = order.to_vec();
    let blocks = order
        .into_iter()
        .map(move |o| Ok(bytes[o * block_bytes..(o + 1) * block_bytes].to_vec()));
    Ok(TensorData::Chunks(Box::new(blocks)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Falcon-40B-like: 8 heads in 2 KV groups of 4 queries, a key and a
    /// value (`view(n_kv, n_head / n_kv + 2, head_dim, hidden)` in the
    /// reference) regroup as the 8 queries, 2 keys, 2 values.
    #[test]
    fn falcon_groups_regroup_and_back() {
        let order = falcon_qkv_order(8, 2);
        assert_eq!(order, [0, 1, 2, 3, 6, 7, 8, 9, 4, 10, 5, 11]);
        let inv = inverse(&order);
        assert!((0..12).all(|i| order[inv[i]] == i));
        assert_eq!(falcon_qkv_order(4, 1), [0, 1, 2, 3, 4, 5]);
        // BLOOM: q0 k0 v0 q1 k1 v1 ... into q0 q1 ... k0 k1 ... v0 v1 ...
        assert_eq!(bloom_qkv_order(3), [0, 3, 6, 1, 4, 7, 2, 5, 8]);
    }

    /// The reference's reshape/swapaxes on row indices, written out.
    fn reference_to_gguf(rows: u64, heads: u64) -> Vec<u64> {
        let half = rows / heads / 2;
        let mut out = Vec::new();
        for h in 0..heads {
            for j in 0..half {
                for k in 0..2 {
                    out.push(h * rows / heads + k * half + j);
                }
            }
        }
        out
    }

    #[test]
    fn matches_the_reference_reshape_and_inverts() {
        for (rows, heads) in [(8, 2), (64, 4), (32, 2), (12, 3)] {
            let fwd: Vec<u64> = (0..rows)
                .map(|r| source_row(r, rows, heads, Direction::ToGguf))
                .collect();
            assert_eq!(fwd, reference_to_gguf(rows, heads));
            for r in 0..rows {
                let g = source_row(r, rows, heads, Direction::ToHf);
                assert_eq!(source_row(g, rows, heads, Direction::ToGguf), r);
            }
        }
    }

    #[test]
    fn rows_move_whole() {
        let data: Vec<u8> = (0..8u8).flat_map(|r| [r; 3]).collect();
        let out = permute_rows(TensorData::Borrowed(&data), 8, 3, 2, Direction::ToGguf)
            .unwrap()
            .into_vec()
            .unwrap();
        let order: Vec<u8> = out.chunks(3).map(|c| c[0]).collect();
        assert_eq!(order, [0, 2, 1, 3, 4, 6, 5, 7]);
        assert!(check("q", 8, 2).is_ok() && check("q", 6, 2).is_err() && check("q", 8, 0).is_err());
    }
}
