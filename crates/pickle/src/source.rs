//! A torch checkpoint as a [`Source`]: every tensor validated against its
//! storage record at open time, bytes read on demand.

use crate::archive::{self, Archive, Record};
use crate::flatten::{flatten, FlattenOptions};
use crate::rules;
use crate::torch::Sparse;
use crate::torch::{interpret_with_depth, TensorRef};
use crate::view::{self, Layout};
use std::path::{Path, PathBuf};
use tensorcast_core::code;
use tensorcast_core::{Bytes, Error, FormatError, Limits, Metadata, Result, Source, TensorData, TensorInfo};

/// How to read a checkpoint.
#[derive(Clone, Debug, Default)]
pub struct PytorchOptions {
    /// Record classes outside the allowlist as opaque values instead of
    /// refusing them (code-running globals are refused regardless).
    pub lenient: bool,
    /// Sub-tree selection, prefix stripping and tied-tensor handling.
    pub flatten: FlattenOptions,
    /// Resource limits.
    pub limits: Limits,
}

/// An open PyTorch checkpoint (zip, legacy, or bare pickle).
pub struct PytorchFile {
    path: PathBuf,
    bytes: Bytes,
    kind: &'static str,
    tensors: Vec<TensorInfo>,
    /// How to read each tensor; `None` for one listed but not readable.
    plans: Vec<Option<Plan>>,
    metadata: Metadata,
    warnings: Vec<String>,
    limits: Limits,
}

/// How one tensor's bytes come out of its record.
struct Plan {
    record: Record,
    layout: Layout,
    /// A sparse tensor: how to read each part and its byte count, in the
    /// order of the tensor's bytes.
    sparse: Option<Vec<(Plan, u64)>>,
    /// Bytes that were in the pickle itself (a NumPy array, lenient).
    inline: Option<std::sync::Arc<[u8]>>,
}

fn err(rule: &'static str, detail: impl Into<String>) -> FormatError {
    FormatError::new(crate::FORMAT, rule, detail)
}

impl PytorchFile {
    /// Opens and validates `path`.
    pub fn open(path: &Path, opts: &PytorchOptions) -> Result<PytorchFile> {
        let bytes = Bytes::open(path)?;
        Self::from_bytes(path, bytes, opts)
    }

    /// Validates bytes already in hand; `path` only names them in errors.
    pub fn from_bytes(path: &Path, bytes: Bytes, opts: &PytorchOptions) -> Result<PytorchFile> {
        let parts = Self::parse(&bytes, opts).map_err(|e| Error::from(e.in_file(path)))?;
        let (kind, tensors, plans, metadata, warnings) = parts;
        Ok(PytorchFile {
            path: path.to_path_buf(),
            bytes,
            kind,
            tensors,
            plans,
            metadata,
            warnings,
            limits: opts.limits.clone(),
        })
    }

    #[allow(clippy::type_complexity)]
    fn parse(
        bytes: &[u8],
        opts: &PytorchOptions,
    ) -> Result<
        (
            &'static str,
            Vec<TensorInfo>,
            Vec<Option<Plan>>,
            Metadata,
            Vec<String>,
        ),
        FormatError,
    > {
        let Archive {
            pickle,
            records,
            big_endian,
            kind,
        } = archive::open(bytes, &opts.limits)?;
        let (root, mut warnings) = interpret_with_depth(&pickle, opts.lenient, opts.limits.max_depth)?;
        drop(pickle);
        let mut flat = flatten(root, &opts.flatten)?;
        warnings.append(&mut flat.warnings);
        if flat.tensors.len() as u64 > opts.limits.max_tensors {
            return Err(err(
                rules::TOO_MANY_OBJECTS,
                format!("more than {} tensors", opts.limits.max_tensors),
            )
            .limit("max_tensors"));
        }
        let mut tensors = Vec::with_capacity(flat.tensors.len());
        let mut plans = Vec::with_capacity(flat.tensors.len());
        for (name, t) in flat.tensors {
            if let Some(kind) = t.unreadable {
                let info = TensorInfo::unreadable(&name, t.size.clone(), format!("torch {kind}"));
                tensors.push(info.ok_or_else(|| {
                    err(rules::SHAPE_OVERFLOW, format!("shape {:?} overflows", t.size)).tensor(&name)
                })?);
                plans.push(None);
                continue;
            }
            let (plan, info) = match &t.sparse {
                None if t.inline.is_some() => (
                    Layout::new(&t, false).map(|layout| Plan {
                        record: Record {
                            offset: 0,
                            len: 0,
                            deflated: None,
                        },
                        layout,
                        sparse: None,
                        inline: t.inline.clone(),
                    }),
                    TensorInfo::new(&name, t.dtype, t.size.clone()),
                ),
                None => (
                    plan(&t, &records, big_endian),
                    TensorInfo::new(&name, t.dtype, t.size.clone()),
                ),
                Some(s) => match sparse_plan(s, &t, &records, big_endian) {
                    Ok((plan, info)) => (Ok(plan), Some(info)),
                    Err(e) => (Err(e), None),
                },
            };
            let plan = plan.map_err(|e| e.tensor(&name))?;
            let mut info = info.ok_or_else(|| {
                err(rules::SHAPE_OVERFLOW, format!("shape {:?} overflows", t.size)).tensor(&name)
            })?;
            info.name = name;
            // Raw in the file only when stored (not deflated) and handed out
            // as stored (no byte swap, conjugation or negation).
            let raw = plan.record.deflated.is_none()
                && !plan.layout.transforms()
                && plan.sparse.is_none()
                && plan.inline.is_none();
            info.file_offset = plan
                .layout
                .contiguous_offset()
                .filter(|_| raw)
                .map(|o| plan.record.offset + o);
            tensors.push(info);
            plans.push(Some(plan));
        }
        Ok((kind, tensors, plans, flat.metadata, warnings))
    }

    /// `zip`, `legacy` or `pickle`.
    pub fn container(&self) -> &'static str {
        self.kind
    }

    /// What was not kept, or kept only as an opaque record.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// Valid record keys are plain names: torch writes decimal numbers.
fn check_key(key: &str) -> Result<(), FormatError> {
    let plain = !key.is_empty()
        && key != "."
        && key != ".."
        && !key.contains(['/', '\\', '\0'])
        && !key.contains("..");
    if plain {
        Ok(())
    } else {
        Err(err(
            rules::BAD_RECORD_KEY,
            format!("storage key {key:?} is not a plain record name"),
        ))
    }
}

fn plan(
    t: &TensorRef,
    records: &std::collections::HashMap<String, Record>,
    big_endian: bool,
) -> Result<Plan, FormatError> {
    check_key(&t.key)?;
    let record = *records.get(&t.key).ok_or_else(|| {
        err(
            rules::MISSING_RECORD,
            format!("storage record '{}' is not in the file", t.key),
        )
    })?;
    if record.len < t.storage_bytes {
        return Err(err(
            rules::VIEW_OUT_OF_BOUNDS,
            format!(
                "storage '{}' should hold {} bytes but its record has {}",
                t.key, t.storage_bytes, record.len
            ),
        ));
    }
    let layout = Layout::new(t, big_endian)?;
    let extent = layout.extent_bytes()?;
    if extent > t.storage_bytes {
        return Err(err(
            rules::VIEW_OUT_OF_BOUNDS,
            format!(
                "view (offset {}, size {:?}, stride {:?}) reaches byte {extent} of a {}-byte storage",
                t.offset, t.size, t.stride, t.storage_bytes
            ),
        ));
    }
    // Stride-0 views (`expand`) materialise more bytes than they read; a
    // tiny file must not turn into terabytes of output.
    let out_bytes = layout.numel().saturating_mul(layout.elem() as u64);
    if out_bytes > MAX_EXPANSION.saturating_mul(extent.max(4096)) {
        return Err(err(
            rules::VIEW_EXPANSION,
            format!(
                "view (size {:?}, stride {:?}) would write {out_bytes} bytes from {extent} stored bytes (more than {MAX_EXPANSION}x)",
                t.size, t.stride
            ),
        ));
    }
    Ok(Plan {
        record,
        layout,
        sparse: None,
        inline: None,
    })
}

/// Plans for a sparse tensor's parts and its descriptor (the first
/// part's record stands in for the tensor's own, which it has none of).
fn sparse_plan(
    s: &Sparse,
    t: &TensorRef,
    records: &std::collections::HashMap<String, Record>,
    big_endian: bool,
) -> Result<(Plan, TensorInfo), FormatError> {
    use tensorcast_core::sparse::{sparse_info, SparseLayout};
    let bad = |d: String| err(rules::BAD_CALL, format!("_rebuild_sparse_tensor: {d}"));
    let (first, last) = match (s.parts.first(), s.parts.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => return Err(bad("a sparse tensor without parts".into())),
    };
    let (nnz, sparse_dims) = match s.layout {
        SparseLayout::Coo => (first.size.get(1).copied(), first.size.first().copied()),
        SparseLayout::Csr => (last.size.first().copied(), Some(2)),
        other => return Err(bad(format!("a {} tensor has no torch reading", other.name()))),
    };
    let sparse = tensorcast_core::sparse::Sparse {
        layout: s.layout,
        index: first.dtype,
        nnz: nnz.unwrap_or(0),
        sparse_dims: sparse_dims.unwrap_or(0),
    };
    let expected = sparse.parts(t.dtype, &t.size).map_err(bad)?;
    let info = sparse_info(String::new(), t.dtype, t.size.clone(), sparse).map_err(bad)?;
    let mut parts = Vec::with_capacity(s.parts.len());
    for (p, want) in s.parts.iter().zip(&expected) {
        if p.dtype != want.dtype || p.size != want.shape {
            return Err(bad(format!(
                "{} of {} {:?}, where the tensor needs {} {:?}",
                want.name, p.dtype, p.size, want.dtype, want.shape
            )));
        }
        parts.push((plan(p, records, big_endian)?, want.nbytes));
    }
    if parts.len() != expected.len() {
        return Err(bad(format!("{} parts for {}", parts.len(), expected.len())));
    }
    let (record, layout) = (parts[0].0.record, parts[0].0.layout.clone());
    Ok((
        Plan {
            record,
            layout,
            sparse: Some(parts),
            inline: None,
        },
        info,
    ))
}

/// How many times its stored bytes an expanded view may grow to.
const MAX_EXPANSION: u64 = 256;

impl Source for PytorchFile {
    fn format(&self) -> &'static str {
        crate::FORMAT
    }

    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        let (info, plan) = self
            .tensors
            .get(index)
            .zip(self.plans.get(index))
            .ok_or_else(|| {
                Error::usage(
                    code::CALL_ORDER,
                    format!("{}: no tensor #{index}", self.path.display()),
                )
            })?;
        // No plan: a tensor listed but not readable (the one error it gives).
        let Some(plan) = plan else {
            let e = info.unreadable_error(crate::FORMAT);
            return Err(e
                .unwrap_or_else(|| Error::usage(code::CALL_ORDER, "no plan"))
                .in_file(&self.path));
        };
        if let Some(parts) = &plan.sparse {
            // Torch checks a loaded sparse tensor's indices; so does this.
            let read = parts
                .iter()
                .map(|(p, nbytes)| self.plan_data(p, *nbytes, &info.name));
            return tensorcast_core::sparse::checked_parts(
                info,
                read,
                &self.limits,
                crate::FORMAT,
                rules::BAD_CALL,
            )
            .map_err(|e| e.in_file(&self.path));
        }
        self.plan_data(plan, info.nbytes, &info.name)
    }
}

impl PytorchFile {
    /// A plain (strided) tensor's bytes, by its plan.
    fn plan_data<'a>(&'a self, plan: &'a Plan, nbytes: u64, name: &str) -> Result<TensorData<'a>> {
        if let Some(bytes) = &plan.inline {
            return Ok(TensorData::Borrowed(bytes));
        }
        let rec = plan.record;
        if rec.deflated.is_none() {
            if let Some(off) = plan.layout.contiguous_offset() {
                if !plan.layout.transforms() {
                    // Validated at open: the range lies inside the record.
                    return self
                        .bytes
                        .tensor_data(rec.offset + off, nbytes)
                        .ok_or_else(|| Error::usage(code::CALL_ORDER, "record range outside the file"));
                }
            }
            // A view gathers from its whole record: fetched first when the
            // bytes are a ranged object's (bounded by the allocation limit).
            if self.bytes.is_ranged() {
                self.limits
                    .check_alloc(rec.len, "reading a viewed storage of a remote checkpoint")
                    .map_err(|d| Error::limit(&self.path, "max_alloc_bytes", d))?;
            }
            let record = self
                .bytes
                .read_range(rec.offset, rec.len)
                .ok_or_else(|| Error::usage(code::CALL_ORDER, "record range outside the file"))??;
            return Ok(TensorData::Chunks(Box::new(view::gather(
                record,
                plan.layout.clone(),
            ))));
        }
        let start = rec.offset as usize;
        let raw = &self.bytes[start..start + rec.deflated.unwrap_or(0) as usize];
        let path = self.path.clone();
        view::inflated(raw, rec.len, plan.layout.clone(), &self.limits)
            .map_err(|e| Error::from(e.in_file(&path).tensor(name)))
    }
}
