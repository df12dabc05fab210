//! Writing `.zt` (container v2): blobs at 4096-byte boundaries in plan
//! order, each dense part raw with an `xxh3` digest computed as it streams
//! by, then the deterministic-CBOR manifest (file attributes from the
//! metadata) and the 40-byte footer with its XXH3-64. Nothing written is
//! rewritten, so the output can stream into an upload. Files are valid but
//! not canonical (canonical form orders blobs by name at 64 KiB).

use crate::cbor::{self, Cbor};
use crate::{dtypes, name_ok, ALIGN, FORMAT, MAGIC};
use std::path::Path;
use tensorcast_core::code;
use tensorcast_core::sparse::SparseLayout;
use tensorcast_core::{
    check_size, Error, FileTarget, Metadata, Plan, Result, Sink, TensorData, TensorInfo, Value, WriteTarget,
};

const ZEROS: [u8; ALIGN as usize] = [0; ALIGN as usize];

/// A [`Sink`] writing a `.zt` file.
pub struct ZtWriter {
    target: Option<Box<dyn WriteTarget>>,
    out: Option<Box<dyn WriteTarget>>,
    pos: u64,
    plan: Vec<TensorInfo>,
    metadata: Metadata,
    /// (offset, length, xxh3) of each tensor's parts written.
    blobs: Vec<Vec<(u64, u64, u64)>>,
}

impl ZtWriter {
    /// A writer for the local file `target`.
    pub fn new(target: &Path) -> ZtWriter {
        Self::to_target(Box::new(FileTarget::new(target)))
    }

    /// A writer into `target`.
    pub fn to_target(target: Box<dyn WriteTarget>) -> ZtWriter {
        ZtWriter {
            target: Some(target),
            out: None,
            pos: 0,
            plan: Vec::new(),
            metadata: Metadata::new(),
            blobs: Vec::new(),
        }
    }

    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.out
            .as_mut()
            .ok_or_else(|| Error::usage(code::CALL_ORDER, "ztensor writer not begun"))?
            .write_all(b)?;
        self.pos += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> Result<()> {
        let n = (ALIGN - self.pos % ALIGN) % ALIGN;
        self.put(&ZEROS[..n as usize])
    }
}

fn text(s: &str) -> Cbor {
    Cbor::Text(s.to_string())
}

fn to_cbor(v: &Value) -> Option<Cbor> {
    Some(match v {
        Value::Null => Cbor::Null,
        Value::Bool(b) => Cbor::Bool(*b),
        Value::U8(x) => Cbor::Uint(u64::from(*x)),
        Value::U16(x) => Cbor::Uint(u64::from(*x)),
        Value::U32(x) => Cbor::Uint(u64::from(*x)),
        Value::U64(x) => Cbor::Uint(*x),
        Value::I8(x) => int(i64::from(*x)),
        Value::I16(x) => int(i64::from(*x)),
        Value::I32(x) => int(i64::from(*x)),
        Value::I64(x) => int(*x),
        Value::F32(x) => Cbor::Float(f64::from(*x)),
        Value::F64(x) => Cbor::Float(*x),
        Value::Str(s) => text(s),
        Value::Array(a) => Cbor::Array(a.iter().filter_map(|v| to_cbor(&v)).collect()),
        Value::Map(m) => Cbor::Map(
            m.iter()
                .filter_map(|(k, v)| Some((text(k), to_cbor(v)?)))
                .collect(),
        ),
        // A kind newer than this writer has no CBOR form here: left out.
        _ => return None,
    })
}

fn int(x: i64) -> Cbor {
    if x >= 0 {
        Cbor::Uint(x as u64)
    } else {
        Cbor::Neg((-1 - x) as u64)
    }
}

/// One part's manifest entry.
fn part(dtype: &str, logical: Option<&str>, offset: u64, length: u64, digest: u64) -> Cbor {
    let mut part = vec![
        (text("dtype"), text(dtype)),
        (
            text("blob"),
            Cbor::Array(vec![Cbor::Uint(offset), Cbor::Uint(length)]),
        ),
        (text("digest"), text(&format!("xxh3:{digest:016x}"))),
    ];
    if let Some(l) = logical {
        part.push((text("type"), text(l)));
    }
    Cbor::Map(part)
}

impl ZtWriter {
    /// A CSR tensor's bytes (row pointers, column indices, values) as the
    /// three blobs of a `zt.sparse_csr/1` object, its indices checked first
    /// (the profile stores them unsigned).
    fn write_csr(&mut self, info: &TensorInfo, data: TensorData<'_>) -> Result<()> {
        let bytes = data.into_vec()?;
        check_size(info, bytes.len() as u64)?;
        tensorcast_core::sparse::check(info, &bytes)
            .map_err(|d| Error::usage(code::BAD_DATA, format!("tensor '{}': {d}", info.name)))?;
        let sizes: Vec<u64> = info
            .sparse
            .as_ref()
            .and_then(|s| s.parts(info.dtype, &info.shape).ok())
            .map(|ps| ps.iter().map(|p| p.nbytes).collect())
            .unwrap_or_default();
        let mut blobs = Vec::with_capacity(3);
        let mut at = 0usize;
        for n in sizes {
            let piece = &bytes[at..at + n as usize];
            at += n as usize;
            self.pad()?;
            blobs.push((self.pos, n, xxhash_rust::xxh3::xxh3_64(piece)));
            self.put(piece)?;
        }
        self.blobs.push(blobs);
        Ok(())
    }
}

impl Sink for ZtWriter {
    fn begin(&mut self, plan: &Plan) -> Result<()> {
        let mut seen = std::collections::HashSet::with_capacity(plan.tensors.len());
        for t in &plan.tensors {
            // The manifest is a map: a second tensor of one name would vanish.
            if !seen.insert(t.name.as_str()) {
                return Err(Error::usage(
                    code::NAME_NOT_HELD,
                    format!("tensor '{}' appears twice; .zt names are unique", t.name),
                ));
            }
            if let Some(sp) = &t.sparse {
                if sp.layout != SparseLayout::Csr {
                    return Err(Error::unsupported(code::SPARSE_NOT_HELD, format!(
                        "tensor '{}' is {}: .zt has a CSR layout only; its dense form, or tpack, can be written instead",
                        t.name,
                        sp.describe()
                    )));
                }
            }
            if dtypes::to_zt(t.dtype).is_none() {
                return Err(Error::unsupported(
                    code::DTYPE_NOT_HELD,
                    format!(
                        "tensor '{}': .zt has no {} type tensorcast writes; cast it or write gguf/tpack",
                        t.name, t.dtype
                    ),
                ));
            }
            if !name_ok(&t.name) {
                return Err(Error::usage(
                    code::NAME_NOT_HELD,
                    format!(
                        "tensor '{}': .zt names are 1 to 1024 bytes without NUL",
                        t.name.escape_debug()
                    ),
                ));
            }
        }
        self.plan = plan.tensors.clone();
        self.metadata = plan.metadata.clone();
        let target = self
            .target
            .take()
            .ok_or_else(|| Error::usage(code::CALL_ORDER, "ztensor writer begun twice"))?;
        self.out = Some(target);
        self.put(&MAGIC)?;
        Ok(())
    }

    fn write_tensor(&mut self, index: usize, data: TensorData<'_>) -> Result<()> {
        if index != self.blobs.len() || index >= self.plan.len() {
            return Err(Error::usage(
                code::CALL_ORDER,
                format!("ztensor writer got tensor #{index} out of order"),
            ));
        }
        let info = self.plan[index].clone();
        if info.sparse.is_some() {
            return self.write_csr(&info, data);
        }
        self.pad()?;
        let offset = self.pos;
        let mut h = xxhash_rust::xxh3::Xxh3Default::new();
        let written = data.for_each_chunk(|c| {
            h.update(c);
            self.put(c)
        })?;
        check_size(&info, written)?;
        self.blobs.push(vec![(offset, written, h.digest())]);
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        let mut objects = Vec::with_capacity(self.plan.len());
        for (t, blobs) in self.plan.iter().zip(&self.blobs) {
            let value_part = |&(offset, length, digest): &(u64, u64, u64)| -> Result<Cbor> {
                let (dtype, logical) =
                    dtypes::to_zt(t.dtype).ok_or_else(|| Error::unsupported(code::DTYPE_NOT_HELD, FORMAT))?;
                Ok(part(dtype, logical, offset, length, digest))
            };
            let (layout, parts) = match (t.sparse.as_deref(), blobs.as_slice()) {
                (None, [data]) => ("dense", vec![(text("data"), value_part(data)?)]),
                (Some(sp), [indptr, indices, values]) => {
                    // Written unsigned: readers checked the indices are not negative.
                    let index = if sp.index.byte_size() == Some(8) {
                        "u64"
                    } else {
                        "u32"
                    };
                    let plain = |&(o, l, d): &(u64, u64, u64)| part(index, None, o, l, d);
                    (
                        crate::read::CSR,
                        vec![
                            (text("indptr"), plain(indptr)),
                            (text("indices"), plain(indices)),
                            (text("values"), value_part(values)?),
                        ],
                    )
                }
                _ => {
                    return Err(Error::usage(
                        code::CALL_ORDER,
                        format!("tensor '{}' was not written", t.name),
                    ))
                }
            };
            let object = Cbor::Map(vec![
                (
                    text("shape"),
                    Cbor::Array(t.shape.iter().map(|&d| Cbor::Uint(d)).collect()),
                ),
                (text("layout"), text(layout)),
                (text("parts"), Cbor::Map(parts)),
            ]);
            objects.push((text(&t.name), object));
        }
        let mut root = vec![(text("objects"), Cbor::Map(objects))];
        let attributes: Vec<(Cbor, Cbor)> = self
            .metadata
            .iter()
            .filter(|(k, _)| name_ok(k))
            .filter_map(|(k, v)| Some((text(k), to_cbor(v)?)))
            .collect();
        if !attributes.is_empty() {
            root.push((text("attributes"), Cbor::Map(attributes)));
        }
        let mut manifest = Vec::new();
        cbor::encode(&Cbor::Map(root), &mut manifest);
        self.pad()?;
        let offset = self.pos;
        self.put(&manifest)?;
        let mut footer = Vec::with_capacity(40);
        footer.extend_from_slice(&offset.to_le_bytes());
        footer.extend_from_slice(&(manifest.len() as u64).to_le_bytes());
        footer.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(&manifest).to_le_bytes());
        footer.extend_from_slice(&2u32.to_le_bytes());
        footer.extend_from_slice(&0u32.to_le_bytes());
        footer.extend_from_slice(&MAGIC);
        self.put(&footer)?;
        self.out
            .take()
            .ok_or_else(|| Error::usage(code::CALL_ORDER, "ztensor writer not begun"))?
            .commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorcast_core::{DType, MemoryStore};

    fn plan(names: &[&str]) -> Plan {
        Plan {
            tensors: names
                .iter()
                .map(|n| TensorInfo::new(*n, DType::F32, vec![1]).unwrap())
                .collect(),
            metadata: Metadata::new(),
        }
    }

    #[test]
    fn names_that_would_be_lost_or_invalid_are_refused_before_writing() {
        let store = MemoryStore::new();
        for names in [&["a", "a"][..], &[""], &["x\0y"], &[&"n".repeat(70_000)]] {
            let mut w = ZtWriter::to_target(Box::new(store.target("o.zt")));
            assert!(w.begin(&plan(names)).is_err(), "{names:?}");
        }
        assert!(store.names().is_empty());
        // `..` and `/` are ordinary names inside a manifest (no paths here).
        let mut w = ZtWriter::to_target(Box::new(store.target("o.zt")));
        assert!(w.begin(&plan(&["..", "a/b"])).is_ok());
    }
}
