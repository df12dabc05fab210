//! Interprets a pickle's nodes as a torch checkpoint: tensors, containers and
//! plain values, calling nothing.
//!
//! First every global in the pickle is checked against the allowlist (so a
//! refused global is reported even where it is unreachable from the root),
//! then the root is walked into an [`Item`] tree. The walk is bounded in depth
//! and in total visits, so a memo bomb (a value shared 2^n ways) or a cycle is
//! refused instead of unfolded.

use crate::allowlist::{classify, Global, RebuildVersion};
use crate::dtypes::{StorageClass, TorchDtype};
use crate::rules;
use crate::vm::{Node, NodeId, Pickle};
use tensorcast_core::{Array, DType, FormatError, Value};

/// Default deepest container nesting walked (state dicts nest a handful of levels).
pub const MAX_DEPTH: usize = 200;

/// A checkpoint value after interpretation.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// A tensor, not yet read.
    Tensor(Box<TensorRef>),
    /// A dict (plain, `OrderedDict`, `Counter`), keys as text, last key wins.
    Map(Vec<(String, Item)>),
    /// A list, tuple or set.
    Seq(Vec<Item>),
    /// A plain value (None, bool, int, float, str, bytes, dtype, device).
    Scalar(Value),
    /// A class lenient mode recorded without calling it.
    Opaque {
        /// `module.name` of the class.
        class: String,
        /// The arguments it would have been called with.
        args: Box<Item>,
        /// The state `BUILD` would have given it.
        state: Option<Box<Item>>,
    },
}

/// Where a tensor's bytes are and how to read them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorRef {
    /// The storage record key (`data/<key>` in a zip).
    pub key: String,
    /// Element type of the tensor.
    pub dtype: DType,
    /// Bytes the persistent id says the storage holds (from the start of
    /// the record, including a legacy storage-view offset).
    pub storage_bytes: u64,
    /// Offset of the first element, in elements of `dtype`.
    pub offset: u64,
    /// Shape.
    pub size: Vec<u64>,
    /// Strides in elements.
    pub stride: Vec<u64>,
    /// Values are stored unconjugated and must be conjugated (`x.conj()`).
    pub conj: bool,
    /// Values are stored unnegated and must be negated (torch's neg bit).
    pub neg: bool,
    /// A sparse tensor, described as the dense tensor it stands for (dtype,
    /// size, contiguous strides) with its parts here.
    pub sparse: Option<Box<Sparse>>,
    /// A tensor of a torch type with no equivalent here (its family name):
    /// listed, never read.
    pub unreadable: Option<&'static str>,
    /// Bytes held in the pickle itself (a NumPy array, lenient only):
    /// little-endian, row-major, already converted; `key` is then empty.
    pub inline: Option<std::sync::Arc<[u8]>>,
}

/// A sparse tensor's layout and parts, as `_rebuild_sparse_tensor` gets them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Sparse {
    /// COO or CSR.
    pub layout: SparseLayout,
    /// COO: indices (int64, `[sparse_dims, nnz]`), values. CSR: crow
    /// indices, column indices (both int64 or both int32), values.
    pub parts: Vec<TensorRef>,
}

pub use tensorcast_core::sparse::SparseLayout;

/// Interprets `pickle` (after checking its globals); also returns what was
/// left out (path and class), for the user to see.
pub fn interpret(pickle: &Pickle, lenient: bool) -> Result<(Item, Vec<String>), FormatError> {
    interpret_with_depth(pickle, lenient, MAX_DEPTH)
}

/// [`interpret`] with a nesting limit other than [`MAX_DEPTH`].
pub fn interpret_with_depth(
    pickle: &Pickle,
    lenient: bool,
    max_depth: usize,
) -> Result<(Item, Vec<String>), FormatError> {
    check_globals(pickle, lenient)?;
    let mut walk = Walk {
        max_depth,
        pickle,
        budget: pickle.nodes.len().saturating_mul(4).saturating_add(100_000),
        // Shared strings are copied on each use: bound the copies by the
        // pickle's size, so a 100 KB string referenced 50 000 times through
        // the memo is refused instead of becoming 5 GB.
        byte_budget: pickle.end.saturating_mul(16).saturating_add(64 << 20),
        warnings: Vec::new(),
    };
    let root = walk.item(pickle.root, 0, "")?;
    Ok((root, walk.warnings))
}

/// Refuses the first global the allowlist does not admit, naming it and its position.
pub fn check_globals(pickle: &Pickle, lenient: bool) -> Result<(), FormatError> {
    for node in &pickle.nodes {
        if let Node::Global { module, name, pos } = node {
            if classify(module, name, lenient).is_none() {
                let how = if lenient {
                    "is refused even when lenient: it exists to run code"
                } else {
                    "is not on the allowlist (nothing was imported or called; lenient reading records harmless classes as opaque values)"
                };
                return Err(err(rules::FORBIDDEN_GLOBAL, format!("global '{module}.{name}' {how}")).at(*pos));
            }
        }
    }
    Ok(())
}

fn err(rule: &'static str, detail: impl Into<String>) -> FormatError {
    FormatError::new(crate::FORMAT, rule, detail)
}

fn at_path(e: FormatError, path: &str) -> FormatError {
    if path.is_empty() || e.subject.is_some() {
        e
    } else {
        e.key(path)
    }
}

/// The path of a child, for error messages. Capped: every ancestor's path is
/// alive while the walk descends, so uncapped paths built from long shared
/// keys would grow quadratically with depth.
fn join(path: &str, key: &str) -> String {
    const MAX: usize = 1024;
    if path.len() >= MAX {
        return path.to_string();
    }
    let key: String = key.chars().take(MAX).collect();
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

struct Walk<'p> {
    pickle: &'p Pickle,
    max_depth: usize,
    budget: usize,
    byte_budget: usize,
    warnings: Vec<String>,
}

impl<'p> Walk<'p> {
    fn node(&self, id: NodeId) -> &'p Node {
        self.pickle.node(id)
    }

    fn enter(&mut self, depth: usize, path: &str) -> Result<(), FormatError> {
        if depth > self.max_depth {
            return Err(at_path(
                err(
                    rules::TOO_DEEP,
                    format!(
                        "values nest deeper than {} levels (or refer to themselves)",
                        self.max_depth
                    ),
                )
                .limit("max_depth"),
                path,
            ));
        }
        self.budget = self.budget.checked_sub(1).ok_or_else(|| {
            at_path(
                err(
                    rules::TOO_MANY_OBJECTS,
                    "shared values unfold into far more objects than the pickle holds (a memo bomb)",
                ),
                path,
            )
        })?;
        Ok(())
    }

    /// Charges `n` bytes of copied text or bytes against the byte budget.
    fn spend(&mut self, n: usize, path: &str) -> Result<(), FormatError> {
        self.byte_budget = self.byte_budget.checked_sub(n).ok_or_else(|| {
            at_path(
                err(
                    rules::TOO_MANY_OBJECTS,
                    "shared strings unfold into far more bytes than the pickle holds (a memo bomb)",
                ),
                path,
            )
        })?;
        Ok(())
    }

    fn item(&mut self, id: NodeId, depth: usize, path: &str) -> Result<Item, FormatError> {
        self.enter(depth, path)?;
        match self.node(id) {
            Node::Str(s) => self.spend(s.len(), path)?,
            // Bytes become one metadata value per byte (about 32 bytes each).
            Node::Bytes(b) => self.spend(b.len().saturating_mul(32), path)?,
            Node::BigInt(b) => self.spend(b.len().saturating_mul(2), path)?,
            _ => {}
        }
        Ok(match self.node(id) {
            Node::None => Item::Scalar(Value::Null),
            Node::Bool(b) => Item::Scalar(Value::Bool(*b)),
            Node::Int(v) => Item::Scalar(Value::I64(*v)),
            Node::BigInt(b) => Item::Scalar(Value::Str(bigint_hex(b))),
            Node::Float(v) => Item::Scalar(Value::F64(*v)),
            Node::Str(s) => Item::Scalar(Value::Str(s.clone())),
            Node::Bytes(b) => Item::Scalar(bytes_value(b)),
            Node::Tuple(items) | Node::List(items) | Node::Set(items) => {
                Item::Seq(self.seq(items, depth, path)?)
            }
            Node::Dict(pairs) => Item::Map(self.map(pairs, depth, path)?),
            Node::Global { module, name, .. } => self.global_value(module, name),
            Node::Persistent(_) => {
                return Err(at_path(
                    err(
                        rules::UNSUPPORTED_TENSOR,
                        "a storage saved on its own, outside a tensor",
                    ),
                    path,
                ))
            }
            Node::Object(o) => self.call(
                Call {
                    callable: o.callable,
                    args: o.args,
                    state: o.state,
                    items: &o.items,
                    pos: o.pos,
                },
                depth,
                path,
            )?,
        })
    }

    fn seq(&mut self, items: &[NodeId], depth: usize, path: &str) -> Result<Vec<Item>, FormatError> {
        items
            .iter()
            .enumerate()
            .map(|(i, &id)| self.item(id, depth + 1, &join(path, &i.to_string())))
            .collect()
    }

    fn map(
        &mut self,
        pairs: &[(NodeId, NodeId)],
        depth: usize,
        path: &str,
    ) -> Result<Vec<(String, Item)>, FormatError> {
        let mut out: Vec<(String, Item)> = Vec::with_capacity(pairs.len());
        let mut index = std::collections::HashMap::with_capacity(pairs.len());
        for &(k, v) in pairs {
            let key = self.key_text(k, depth + 1, path)?;
            let kind = key_kind(self.node(k));
            let value = self.item(v, depth + 1, &join(path, &key))?;
            match index.get(&key) {
                // The same key again: a dict keeps the last value.
                Some(&(i, seen)) if seen == kind => out[i] = (key, value),
                // Different keys (`1` and `'1'`) that name alike: torch sees
                // two entries, a flat name could hold one. Refuse.
                Some(&(_, seen)) => {
                    return Err(at_path(
                        err(
                            rules::DUPLICATE_NAME,
                            format!("keys of two kinds ({seen}, {kind}) both name '{key}'"),
                        ),
                        path,
                    ))
                }
                None => {
                    index.insert(key.clone(), (out.len(), kind));
                    out.push((key, value));
                }
            }
        }
        Ok(out)
    }

    /// A dict key as text, the way `state_dict` names render: strings as-is,
    /// numbers in decimal, tuples joined with dots.
    fn key_text(&mut self, id: NodeId, depth: usize, path: &str) -> Result<String, FormatError> {
        // Tuple keys nest: the depth limit applies to them too.
        self.enter(depth, path)?;
        match self.node(id) {
            Node::Str(s) => self.spend(s.len(), path)?,
            Node::Bytes(b) => self.spend(b.len(), path)?,
            _ => {}
        }
        Ok(match self.node(id) {
            Node::Str(s) => s.clone(),
            Node::Int(v) => v.to_string(),
            Node::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            Node::None => "None".to_string(),
            Node::Float(f) => f.to_string(),
            Node::BigInt(b) => bigint_hex(b),
            Node::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            Node::Tuple(items) => {
                let parts: Result<Vec<String>, _> =
                    items.iter().map(|&i| self.key_text(i, depth + 1, path)).collect();
                parts?.join(".")
            }
            Node::Global { module, name, .. } => format!("{module}.{name}"),
            _ => {
                return Err(at_path(
                    err(rules::BAD_OPERAND, "a dict key that is not a plain value"),
                    path,
                ))
            }
        })
    }

    fn global_value(&self, module: &str, name: &str) -> Item {
        Item::Scalar(Value::Str(format!("{module}.{name}")))
    }

    fn kind_of(&self, callable: NodeId) -> Option<(Global, String)> {
        match self.node(callable) {
            // Globals were all checked already; lenient is irrelevant here
            // because a refused one never gets this far.
            Node::Global { module, name, .. } => {
                Some((classify(module, name, true)?, format!("{module}.{name}")))
            }
            _ => None,
        }
    }

    fn args(&self, id: NodeId) -> &'p [NodeId] {
        match self.node(id) {
            Node::Tuple(items) => items,
            _ => &[],
        }
    }

    fn call(&mut self, o: Call<'p>, depth: usize, path: &str) -> Result<Item, FormatError> {
        let Some((kind, class)) = self.kind_of(o.callable) else {
            return Err(at_path(
                err(rules::BAD_CALL, "a call whose callee is not a global").at(o.pos),
                path,
            ));
        };
        let args = self.args(o.args);
        let bad_call = |what: &str| at_path(err(rules::BAD_CALL, format!("{class}: {what}")).at(o.pos), path);
        match kind {
            Global::RebuildTensor(version) => {
                let t = self
                    .tensor(version, args, path)
                    .map_err(|e| at_path(e.at(o.pos), path))?;
                Ok(Item::Tensor(Box::new(t)))
            }
            Global::Parameter => {
                let &first = args.first().ok_or_else(|| bad_call("no tensor argument"))?;
                self.item(first, depth + 1, path)
            }
            Global::RebuildFromType => {
                // (func, new_type, args, state): the tensor is func(*args);
                // the subclass and its Python state carry no data.
                let (&func, &inner) = match args {
                    [func, _, inner, ..] => (func, inner),
                    _ => return Err(bad_call("expected (func, type, args, state)")),
                };
                self.enter(depth + 1, path)?;
                let inner = Call {
                    callable: func,
                    args: inner,
                    state: None,
                    items: &[],
                    pos: o.pos,
                };
                self.call(inner, depth + 1, path)
            }
            Global::SparseTensor => {
                let t = self
                    .sparse(args, depth, path)
                    .map_err(|e| at_path(e.at(o.pos), path))?;
                Ok(Item::Tensor(Box::new(t)))
            }
            Global::UnsupportedTensor => Err(at_path(
                err(
                    rules::UNSUPPORTED_TENSOR,
                    format!("{class}: quantized, sparse, meta and device-only tensors carry no plain data"),
                ),
                path,
            )),
            Global::DictClass => self.dict_class(&o, args, &class, depth, path),
            Global::Size => {
                let &first = args.first().ok_or_else(|| bad_call("no dims"))?;
                self.item(first, depth + 1, path)
            }
            Global::Device => self
                .device(args)
                .ok_or_else(|| bad_call("device arguments are not text or an index")),
            Global::CodecsEncode => match args {
                [text, ..] => match self.node(*text) {
                    // Protocol 2 spells bytes b as encode(b.decode('latin1'), 'latin1').
                    Node::Str(s) => Ok(Item::Scalar(bytes_value(
                        &latin1(s).ok_or_else(|| bad_call("not latin-1"))?,
                    ))),
                    _ => Err(bad_call("expected text")),
                },
                _ => Err(bad_call("no argument")),
            },
            Global::Set => match args.first() {
                Some(&first) => self.item(first, depth + 1, path),
                None => Ok(Item::Seq(Vec::new())),
            },
            Global::ByteArray => match args.first() {
                Some(&first) => self.item(first, depth + 1, path),
                None => Ok(Item::Scalar(bytes_value(&[]))),
            },
            Global::Complex => self
                .complex(args)
                .ok_or_else(|| bad_call("complex parts are not numbers")),
            Global::NumpyReconstruct => match self.numpy_array(&o) {
                Some(t) => Ok(Item::Tensor(Box::new(t?))),
                // Object and text arrays hold no numbers: a record.
                None => Ok(Item::Opaque {
                    class,
                    args: Box::new(Item::Scalar(Value::Null)),
                    state: None,
                }),
            },
            Global::NumpyScalar => Ok(self.numpy_scalar(args).unwrap_or_else(|| Item::Opaque {
                class: class.clone(),
                args: Box::new(Item::Scalar(Value::Null)),
                state: None,
            })),
            Global::Dtype(_)
            | Global::Storage(_)
            | Global::Constant
            | Global::NumpyDtype
            | Global::Opaque => {
                let args = Item::Seq(self.seq(args, depth, path)?);
                let state = match o.state {
                    Some(s) => Some(Box::new(self.item(s, depth + 1, path)?)),
                    None => None,
                };
                Ok(Item::Opaque {
                    class,
                    args: Box::new(args),
                    state,
                })
            }
        }
    }

    /// `OrderedDict` and friends: items from the arguments (protocol 0/1)
    /// and from SETITEMS.
    fn dict_class(
        &mut self,
        o: &Call<'p>,
        args: &'p [NodeId],
        class: &str,
        depth: usize,
        path: &str,
    ) -> Result<Item, FormatError> {
        let mut pairs: Vec<(NodeId, NodeId)> = Vec::new();
        // OrderedDict([(k, v), ...]) in protocol 0/1 saves.
        if let Some(&first) = args.first() {
            if let Node::List(items) | Node::Tuple(items) = self.node(first) {
                for &pair in items {
                    match self.node(pair) {
                        Node::Tuple(kv) | Node::List(kv) if kv.len() == 2 => pairs.push((kv[0], kv[1])),
                        _ => {
                            return Err(at_path(
                                err(
                                    rules::BAD_CALL,
                                    format!("{class}: items are not (key, value) pairs"),
                                )
                                .at(o.pos),
                                path,
                            ))
                        }
                    }
                }
            }
        }
        pairs.extend_from_slice(o.items);
        // `state_dict()` attaches `_metadata` (module versions) with
        // BUILD: an attribute, not an item, so torch.load's dict
        // iteration does not show it either.
        if o.state.is_some() {
            let at = if path.is_empty() { "(root)" } else { path };
            self.warnings.push(format!(
                "{at}: attributes set on {class} (a state_dict's `_metadata` module versions) are not kept"
            ));
        }
        Ok(Item::Map(self.map(&pairs, depth, path)?))
    }
    /// `torch.device('cuda', 0)` as the text `cuda:0`.
    fn device(&self, args: &[NodeId]) -> Option<Item> {
        let parts: Option<Vec<String>> = args
            .iter()
            .map(|&a| match self.node(a) {
                Node::Str(s) => Some(s.clone()),
                Node::Int(i) => Some(i.to_string()),
                _ => None,
            })
            .collect();
        Some(Item::Scalar(Value::Str(parts?.join(":"))))
    }

    /// `complex(re, im)` as a two-element f64 array.
    fn complex(&self, args: &[NodeId]) -> Option<Item> {
        let parts: Option<Vec<f64>> = args
            .iter()
            .map(|&a| match self.node(a) {
                Node::Float(f) => Some(*f),
                Node::Int(i) => Some(*i as f64),
                _ => None,
            })
            .collect();
        let parts = parts?;
        let (re, im) = (
            parts.first().copied().unwrap_or(0.0),
            parts.get(1).copied().unwrap_or(0.0),
        );
        Some(Item::Scalar(Value::Array(Array::F64(vec![re, im]))))
    }

    fn int(&self, id: NodeId, what: &str) -> Result<i64, FormatError> {
        match self.node(id) {
            Node::Int(v) => Ok(*v),
            Node::Bool(b) => Ok(i64::from(*b)),
            _ => Err(err(rules::BAD_CALL, format!("{what} is not an integer"))),
        }
    }

    /// `_rebuild_sparse_tensor(layout, data)`: COO data is `(indices,
    /// values, size[, is_coalesced])`, CSR `(crow, col, values, size)`.
    /// The result describes the dense tensor; the parts are checked for the
    /// shapes the layout needs (their values when densified).
    fn sparse(&mut self, args: &'p [NodeId], depth: usize, path: &str) -> Result<TensorRef, FormatError> {
        let bad = |d: String| err(rules::BAD_CALL, format!("_rebuild_sparse_tensor: {d}"));
        let (Some(&layout), Some(&data)) = (args.first(), args.get(1)) else {
            return Err(bad("expected (layout, data)".into()));
        };
        // The layout is `torch.sparse_coo` itself, or (as torch.save writes
        // it) `torch.serialization._get_layout("torch.sparse_coo")`.
        let name = match self.node(layout) {
            Node::Global { module, name, .. } => format!("{module}.{name}"),
            Node::Object(o) => match (
                self.node(o.callable),
                self.args(o.args).first().map(|&a| self.node(a)),
            ) {
                (Node::Global { module, name, .. }, Some(Node::Str(s)))
                    if module == "torch.serialization" && name == "_get_layout" =>
                {
                    s.clone()
                }
                _ => return Err(bad("the layout is not a torch layout".into())),
            },
            _ => return Err(bad("the layout is not a torch layout".into())),
        };
        let layout = match name.as_str() {
            "torch.sparse_coo" => SparseLayout::Coo,
            "torch.sparse_csr" => SparseLayout::Csr,
            other => {
                return Err(err(
                    rules::UNSUPPORTED_TENSOR,
                    format!("{other} sparse tensors are not read (COO and CSR are)"),
                ))
            }
        };
        let Node::Tuple(items) = self.node(data) else {
            return Err(bad("data is not a tuple".into()));
        };
        let n_tensors = if layout == SparseLayout::Coo { 2 } else { 3 };
        if items.len() < n_tensors + 1 {
            return Err(bad(format!("data has {} items", items.len())));
        }
        let mut parts = Vec::with_capacity(n_tensors);
        for &item in &items[..n_tensors] {
            match self.item(item, depth + 1, path)? {
                Item::Tensor(t) if t.sparse.is_none() && t.unreadable.is_none() => parts.push(*t),
                _ => return Err(bad("a part is not a dense tensor".into())),
            }
        }
        let size: Vec<u64> = self
            .dims(items[n_tensors], "size")?
            .into_iter()
            .map(|d| u64::try_from(d).map_err(|_| bad("a negative size".into())))
            .collect::<Result<_, _>>()?;
        let values = &parts[n_tensors - 1];
        let rank = |t: &TensorRef| t.size.len();
        let ok = match layout {
            SparseLayout::Coo => {
                let idx = &parts[0];
                idx.dtype == DType::I64
                    && rank(idx) == 2
                    && rank(values) >= 1
                    && idx.size[1] == values.size[0]
                    && idx.size[0] as usize + rank(values) - 1 == size.len()
                    && idx.size[0] as usize <= size.len()
            }
            SparseLayout::Csr => {
                let (crow, col) = (&parts[0], &parts[1]);
                matches!(crow.dtype, DType::I64 | DType::I32)
                    && col.dtype == crow.dtype
                    && size.len() == 2
                    && rank(crow) == 1
                    && rank(col) == 1
                    && rank(values) == 1
                    && crow.size[0] == size[0].saturating_add(1)
                    && col.size[0] == values.size[0]
            }
            // A layout torch's rebuild functions do not name.
            _ => false,
        };
        if !ok {
            return Err(bad(format!(
                "parts whose shapes do not make a {layout:?} tensor of size {size:?}"
            )));
        }
        let mut stride = vec![1u64; size.len()];
        for i in (0..size.len().saturating_sub(1)).rev() {
            stride[i] = stride[i + 1].saturating_mul(size[i + 1].max(1));
        }
        Ok(TensorRef {
            key: values.key.clone(),
            dtype: values.dtype,
            storage_bytes: 0,
            offset: 0,
            size,
            stride,
            conj: false,
            neg: false,
            sparse: Some(Box::new(Sparse { layout, parts })),
            unreadable: None,
            inline: None,
        })
    }

    /// A tuple of non-negative integers (also spelled `torch.Size((...))`).
    fn dims(&self, id: NodeId, what: &str) -> Result<Vec<i64>, FormatError> {
        let items = match self.node(id) {
            Node::Tuple(items) | Node::List(items) => items,
            Node::Object(o) if matches!(self.kind_of(o.callable), Some((Global::Size, _))) => {
                return match self.args(o.args).first() {
                    Some(&inner) => self.dims(inner, what),
                    None => Ok(Vec::new()),
                };
            }
            _ => return Err(err(rules::BAD_CALL, format!("{what} is not a tuple"))),
        };
        items.iter().map(|&i| self.int(i, what)).collect()
    }

    fn tensor(
        &mut self,
        version: RebuildVersion,
        args: &[NodeId],
        path: &str,
    ) -> Result<TensorRef, FormatError> {
        let need = match version {
            RebuildVersion::V1 => 4,
            RebuildVersion::V2 => 6,
            RebuildVersion::V3 => 7,
        };
        if args.len() < need {
            return Err(err(
                rules::BAD_CALL,
                format!(
                    "_rebuild_tensor takes at least {need} arguments, got {}",
                    args.len()
                ),
            ));
        }
        let storage = self.storage(args[0])?;
        let offset = self.int(args[1], "storage offset")?;
        let size = self.dims(args[2], "size")?;
        let stride = self.dims(args[3], "stride")?;
        let dtype = match self.rebuild_dtype(version, args, &storage)? {
            Ok(d) => d,
            // Listed (name and shape), never read: no format here holds it.
            Err(kind) => {
                let dims = size
                    .iter()
                    .map(|&d| u64::try_from(d))
                    .collect::<Result<Vec<u64>, _>>()
                    .map_err(|_| err(rules::VIEW_OUT_OF_BOUNDS, "a negative size"))?;
                return Ok(TensorRef {
                    key: storage.key,
                    dtype: DType::U8,
                    storage_bytes: 0,
                    offset: 0,
                    stride: vec![0; dims.len()],
                    size: dims,
                    conj: false,
                    neg: false,
                    sparse: None,
                    unreadable: Some(kind),
                    inline: None,
                });
            }
        };
        let (conj, neg) = self.view_flags(version, args);
        if size.len() != stride.len() {
            return Err(err(
                rules::BAD_CALL,
                format!("size has {} dims but stride has {}", size.len(), stride.len()),
            ));
        }
        let elem = dtype.storage_bytes(1).unwrap_or(1);
        let storage_unit = match storage.class {
            StorageClass::Untyped => 1,
            StorageClass::Typed(TorchDtype::Known(d)) => d.storage_bytes(1).unwrap_or(1),
            StorageClass::Typed(TorchDtype::NoEquivalent(name)) => {
                return Err(err(
                    rules::UNSUPPORTED_DTYPE,
                    format!("storage of {name} has no safetensors equivalent"),
                ))
            }
        };
        let negative = |v: &i64| *v < 0;
        if offset < 0 || size.iter().any(negative) || stride.iter().any(negative) {
            return Err(err(
                rules::VIEW_OUT_OF_BOUNDS,
                format!(
                    "negative offset, size or stride (offset {offset}, size {size:?}, stride {stride:?})"
                ),
            ));
        }
        let overflow = || err(rules::SHAPE_OVERFLOW, "storage size overflows");
        let storage_bytes = storage.numel.checked_mul(storage_unit).ok_or_else(overflow)?;
        let view_elems = storage
            .view_offset
            .checked_mul(storage_unit)
            .ok_or_else(overflow)?
            / elem;
        let _ = path;
        Ok(TensorRef {
            key: storage.key,
            dtype,
            storage_bytes: storage_bytes
                .checked_add(
                    storage
                        .view_offset
                        .checked_mul(storage_unit)
                        .ok_or_else(overflow)?,
                )
                .ok_or_else(overflow)?,
            offset: (offset as u64).checked_add(view_elems).ok_or_else(overflow)?,
            size: size.into_iter().map(|v| v as u64).collect(),
            stride: stride.into_iter().map(|v| v as u64).collect(),
            conj,
            neg,
            sparse: None,
            unreadable: None,
            inline: None,
        })
    }

    /// The element dtype: the 7th argument of `_rebuild_tensor_v3`, else the
    /// typed storage's class; `Ok(Err(kind))` for a torch type with no
    /// equivalent here (quantized, complex32, …).
    fn rebuild_dtype(
        &self,
        version: RebuildVersion,
        args: &[NodeId],
        storage: &Storage,
    ) -> Result<Result<DType, &'static str>, FormatError> {
        let dtype = match version {
            RebuildVersion::V3 => match self.node(args[6]) {
                Node::Global { module, name, .. } if module == "torch" => crate::dtypes::dtype_by_name(name)
                    .ok_or_else(|| err(rules::BAD_CALL, format!("'{name}' is not a dtype")))?,
                _ => return Err(err(rules::BAD_CALL, "the dtype argument is not a torch dtype")),
            },
            _ => match storage.class {
                StorageClass::Typed(d) => d,
                StorageClass::Untyped => {
                    return Err(err(
                        rules::BAD_CALL,
                        "an untyped storage without a dtype (_rebuild_tensor_v3)",
                    ))
                }
            },
        };
        Ok(match dtype {
            TorchDtype::Known(d) => Ok(d),
            TorchDtype::NoEquivalent(name) => Err(name),
        })
    }

    /// The conj/neg bits of a v2/v3 rebuild's metadata dict.
    fn view_flags(&self, version: RebuildVersion, args: &[NodeId]) -> (bool, bool) {
        let meta_index = match version {
            RebuildVersion::V1 => None,
            RebuildVersion::V2 => Some(6),
            RebuildVersion::V3 => Some(7),
        };
        let (mut conj, mut neg) = (false, false);
        if let Some(&meta) = meta_index.and_then(|i| args.get(i)) {
            if let Node::Dict(pairs) = self.node(meta) {
                for &(k, v) in pairs {
                    let on = matches!(self.node(v), Node::Bool(true));
                    match self.node(k) {
                        Node::Str(s) if s == "conj" => conj = on,
                        Node::Str(s) if s == "neg" => neg = on,
                        _ => {}
                    }
                }
            }
        }
        (conj, neg)
    }

    /// A persistent id `('storage', class, key, location, numel[, view])`.
    fn storage(&self, id: NodeId) -> Result<Storage, FormatError> {
        let bad = |what: &str| err(rules::BAD_PERSISTENT_ID, format!("storage reference: {what}"));
        let Node::Persistent(pid) = self.node(id) else {
            return Err(bad("the first argument is not a persistent id"));
        };
        let Node::Tuple(parts) = self.node(*pid) else {
            return Err(bad("not a tuple"));
        };
        if parts.len() < 5 || !matches!(self.node(parts[0]), Node::Str(s) if s == "storage") {
            return Err(bad("expected ('storage', class, key, location, numel)"));
        }
        let class = match self.node(parts[1]) {
            Node::Global { module, name, .. } => match classify(module, name, false) {
                Some(Global::Storage(c)) => c,
                // Legacy files name the dtype instead of a storage class.
                Some(Global::Dtype(d)) => StorageClass::Typed(d),
                _ => return Err(bad(&format!("'{module}.{name}' is not a storage class"))),
            },
            _ => return Err(bad("the storage class is not a global")),
        };
        let key = match self.node(parts[2]) {
            Node::Str(s) => s.clone(),
            Node::Int(i) => i.to_string(),
            _ => return Err(bad("the key is not text")),
        };
        let numel = self
            .int(parts[4], "numel")
            .map_err(|_| bad("numel is not an integer"))?;
        let numel = u64::try_from(numel).map_err(|_| bad("negative numel"))?;
        // Legacy storage views: (view_key, offset, size) into the root storage.
        let mut view_offset = 0;
        let mut numel = numel;
        if let Some(&view) = parts.get(5) {
            if let Node::Tuple(v) = self.node(view) {
                if v.len() != 3 {
                    return Err(bad("storage view metadata is not (key, offset, size)"));
                }
                let off = self.int(v[1], "view offset").map_err(|_| bad("view offset"))?;
                let len = self.int(v[2], "view size").map_err(|_| bad("view size"))?;
                view_offset = u64::try_from(off).map_err(|_| bad("negative view offset"))?;
                let len = u64::try_from(len).map_err(|_| bad("negative view size"))?;
                if view_offset.checked_add(len).is_none_or(|end| end > numel) {
                    return Err(err(
                        rules::VIEW_OUT_OF_BOUNDS,
                        "storage view reaches past its storage",
                    ));
                }
                numel = len;
            }
        }
        Ok(Storage {
            class,
            key,
            numel,
            view_offset,
        })
    }

    /// A NumPy scalar: `scalar(dtype('<f8'), raw bytes)` decoded to a number.
    fn numpy_scalar(&self, args: &[NodeId]) -> Option<Item> {
        let [dtype, data, ..] = args else { return None };
        let Node::Object(d) = self.node(*dtype) else {
            return None;
        };
        let code = match self.args(d.args).first().map(|&i| self.node(i)) {
            Some(Node::Str(s)) => s.clone(),
            _ => return None,
        };
        // BUILD state (version, byteorder, ...): '>' means big-endian.
        let big = d.state.is_some_and(|s| match self.node(s) {
            Node::Tuple(t) => t
                .get(1)
                .is_some_and(|&b| matches!(self.node(b), Node::Str(o) if o == ">")),
            _ => false,
        });
        let raw = match self.node(*data) {
            Node::Bytes(b) => b.clone(),
            Node::Str(s) => latin1(s)?,
            Node::Object(o) if matches!(self.kind_of(o.callable), Some((Global::CodecsEncode, _))) => {
                match self.args(o.args).first().map(|&i| self.node(i)) {
                    Some(Node::Str(s)) => latin1(s)?,
                    _ => return None,
                }
            }
            _ => return None,
        };
        let mut raw = raw;
        if big {
            raw.reverse();
        }
        let v = numpy_value(&code, &raw)?;
        Some(Item::Scalar(v))
    }
}

impl Walk<'_> {
    /// A NumPy array from `_reconstruct`'s BUILD state `(version, shape,
    /// dtype, is_fortran, data)`: the bytes converted to little-endian,
    /// row-major. `None` for arrays of no numeric dtype (objects, text).
    fn numpy_array(&self, o: &Call<'_>) -> Option<Result<TensorRef, FormatError>> {
        let bad = |d: &str| err(rules::BAD_CALL, format!("numpy array: {d}"));
        let state = self.args(o.state?);
        let [_, shape, dtype, fortran, data, ..] = state else {
            return Some(Err(bad("its state is not (version, shape, dtype, order, data)")));
        };
        let Node::Object(d) = self.node(*dtype) else {
            return Some(Err(bad("no dtype")));
        };
        let code = match self.args(d.args).first().map(|&i| self.node(i)) {
            Some(Node::Str(s)) => s.clone(),
            _ => return Some(Err(bad("a dtype without a type code"))),
        };
        let big = d.state.is_some_and(|s| {
            self.args(s)
                .get(1)
                .is_some_and(|&b| matches!(self.node(b), Node::Str(o) if o == ">"))
        });
        let (dtype, unit) = numpy_dtype(&code)?;
        let mut size = Vec::new();
        for &dim in self.args(*shape) {
            match self.node(dim) {
                Node::Int(n) if *n >= 0 => size.push(*n as u64),
                _ => return Some(Err(bad("a dimension that is not a count"))),
            }
        }
        let fortran = matches!(self.node(*fortran), Node::Bool(true));
        let raw = match self.node(*data) {
            Node::Bytes(b) => b.clone(),
            Node::Str(s) => latin1(s)?,
            Node::Object(e) if matches!(self.kind_of(e.callable), Some((Global::CodecsEncode, _))) => {
                match self.args(e.args).first().map(|&i| self.node(i)) {
                    Some(Node::Str(s)) => latin1(s)?,
                    _ => return Some(Err(bad("data that is not bytes"))),
                }
            }
            _ => return None,
        };
        let elem = dtype.byte_size()? as u64;
        let count = tensorcast_core::element_count(&size);
        if count.and_then(|c| c.checked_mul(elem)) != Some(raw.len() as u64) {
            return Some(Err(bad(&format!(
                "{} data bytes for shape {size:?} of {code}",
                raw.len()
            ))));
        }
        let mut raw = raw;
        if big && unit > 1 {
            raw.chunks_exact_mut(unit).for_each(<[u8]>::reverse);
        }
        if fortran && size.len() > 1 {
            raw = fortran_to_c(&raw, &size, elem as usize);
        }
        let mut stride = vec![1u64; size.len()];
        for i in (0..size.len().saturating_sub(1)).rev() {
            stride[i] = stride[i + 1] * size[i + 1].max(1);
        }
        Some(Ok(TensorRef {
            key: String::new(),
            dtype,
            storage_bytes: raw.len() as u64,
            offset: 0,
            size,
            stride,
            conj: false,
            neg: false,
            sparse: None,
            unreadable: None,
            inline: Some(raw.into()),
        }))
    }
}

/// The IR dtype of a NumPy type code, and the byte unit a byte swap
/// reverses (a complex number swaps each part).
fn numpy_dtype(code: &str) -> Option<(DType, usize)> {
    Some(match code {
        "f2" => (DType::F16, 2),
        "f4" => (DType::F32, 4),
        "f8" => (DType::F64, 8),
        "i1" => (DType::I8, 1),
        "i2" => (DType::I16, 2),
        "i4" => (DType::I32, 4),
        "i8" => (DType::I64, 8),
        "u1" => (DType::U8, 1),
        "u2" => (DType::U16, 2),
        "u4" => (DType::U32, 4),
        "u8" => (DType::U64, 8),
        "b1" => (DType::Bool, 1),
        "c8" => (DType::C64, 4),
        "c16" => (DType::C128, 8),
        _ => return None,
    })
}

/// Column-major element bytes in row-major order.
fn fortran_to_c(raw: &[u8], size: &[u64], elem: usize) -> Vec<u8> {
    let n = raw.len() / elem.max(1);
    let mut out = vec![0u8; raw.len()];
    let mut index = vec![0u64; size.len()];
    for c in 0..n {
        // Fortran offset of the C-order index.
        let mut f = 0u64;
        let mut step = 1u64;
        for (i, &d) in index.iter().zip(size) {
            f += i * step;
            step *= d;
        }
        let f = f as usize * elem;
        out[c * elem..(c + 1) * elem].copy_from_slice(&raw[f..f + elem]);
        for k in (0..size.len()).rev() {
            index[k] += 1;
            if index[k] < size[k] {
                break;
            }
            index[k] = 0;
        }
    }
    out
}

/// The parts of a call the interpretation needs (a [`crate::vm::Object`], or the
/// inner call of `_rebuild_from_type_v2`).
#[derive(Clone, Copy)]
struct Call<'p> {
    callable: NodeId,
    args: NodeId,
    state: Option<NodeId>,
    items: &'p [(NodeId, NodeId)],
    pos: u64,
}

struct Storage {
    class: StorageClass,
    key: String,
    numel: u64,
    view_offset: u64,
}

/// What kind of value a dict key is, to tell keys apart that render alike.
fn key_kind(node: &Node) -> &'static str {
    match node {
        Node::Str(_) => "string",
        Node::Int(_) | Node::BigInt(_) => "integer",
        Node::Bool(_) => "boolean",
        Node::None => "None",
        Node::Float(_) => "float",
        Node::Bytes(_) => "bytes",
        Node::Tuple(_) => "tuple",
        Node::Global { .. } => "global",
        _ => "other",
    }
}

fn numpy_value(code: &str, raw: &[u8]) -> Option<Value> {
    fn arr<const N: usize>(raw: &[u8]) -> Option<[u8; N]> {
        raw.try_into().ok()
    }
    Some(match code {
        "f8" => Value::F64(f64::from_le_bytes(arr(raw)?)),
        "f4" => Value::F32(f32::from_le_bytes(arr(raw)?)),
        "f2" => Value::F32(half_to_f32(u16::from_le_bytes(arr(raw)?))),
        "i8" => Value::I64(i64::from_le_bytes(arr(raw)?)),
        "i4" => Value::I32(i32::from_le_bytes(arr(raw)?)),
        "i2" => Value::I16(i16::from_le_bytes(arr(raw)?)),
        "i1" => Value::I8(i8::from_le_bytes(arr(raw)?)),
        "u8" => Value::U64(u64::from_le_bytes(arr(raw)?)),
        "u4" => Value::U32(u32::from_le_bytes(arr(raw)?)),
        "u2" => Value::U16(u16::from_le_bytes(arr(raw)?)),
        "u1" => Value::U8(raw.first().copied()?),
        "b1" => Value::Bool(raw.first().copied()? != 0),
        _ => return None,
    })
}

fn half_to_f32(bits: u16) -> f32 {
    tensorcast_core::cast::float::f16_to_f32(bits)
}

/// Bytes as metadata: a list of byte values (JSON has no bytes type).
fn bytes_value(b: &[u8]) -> Value {
    Value::Array(Array::U8(b.to_vec()))
}

fn latin1(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

fn bigint_hex(le: &[u8]) -> String {
    let digits: String = le.iter().rev().map(|b| format!("{b:02x}")).collect();
    format!("0x{digits}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm;

    #[test]
    fn deeply_nested_tuple_keys_are_refused_not_recursed() {
        // {((((...1,),),),): 1} nested 100 000 deep: must not overflow the stack.
        let mut p = b"\x80\x02}".to_vec();
        p.push(b'K');
        p.push(1);
        p.extend(std::iter::repeat_n(b'\x85', 100_000));
        p.extend_from_slice(b"K\x01s.");
        let pickle = vm::run(&p, 0, vm::VmLimits::default()).unwrap();
        assert_eq!(interpret(&pickle, false).unwrap_err().rule, rules::TOO_DEEP);
    }

    #[test]
    fn a_shared_string_cannot_unfold_into_gigabytes() {
        // One 1 MiB string, memoised, then 5000 references to it in a list:
        // 10 KB of pickle that would copy 5 GB.
        let mut p = b"\x80\x04]q\x00".to_vec();
        p.extend_from_slice(b"\x8d");
        p.extend_from_slice(&(1u64 << 20).to_le_bytes());
        p.extend(std::iter::repeat_n(b'x', 1 << 20));
        p.extend_from_slice(b"q\x01h\x00(");
        p.extend(std::iter::repeat_n(&b"h\x01"[..], 5000).flatten());
        p.extend_from_slice(b"e.");
        let pickle = vm::run(&p, 0, vm::VmLimits::default()).unwrap();
        let err = interpret(&pickle, false).unwrap_err();
        assert_eq!(err.rule, rules::TOO_MANY_OBJECTS);
        assert!(err.detail.contains("bytes"), "{}", err.detail);
    }
}
