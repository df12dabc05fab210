//! A pickle virtual machine (protocols 0–5) that builds values and never runs anything.
//!
//! Every value lands in an arena of [`Node`]s and is referred to by [`NodeId`].
//! Globals stay `(module, name)` pairs; REDUCE/NEWOBJ/INST/OBJ become
//! [`Object`] nodes that record the call without making it; BUILD, SETITEM
//! and APPEND on such an object are recorded on it; persistent ids stay data.
//! The memo holds ids, so `GET` shares a value instead of copying it: a memo
//! bomb costs one id per reference, not an exponential tree.
//!
//! Every length prefix is checked against the bytes that remain before
//! anything is allocated, and the arena is capped, so memory stays bounded by
//! a small multiple of the input whatever the input says.

use crate::opcodes::*;
use crate::rules;
use std::collections::HashMap;
use tensorcast_core::FormatError;

/// Index of a node in [`Pickle::nodes`].
pub type NodeId = u32;

/// One pickled value.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A larger integer, as little-endian two's-complement bytes.
    BigInt(Vec<u8>),
    /// A float.
    Float(f64),
    /// A text string.
    Str(String),
    /// A bytes (or Python 2 str that is not UTF-8, or bytearray) value.
    Bytes(Vec<u8>),
    /// A tuple.
    Tuple(Vec<NodeId>),
    /// A list.
    List(Vec<NodeId>),
    /// A dict, items in insertion order (a repeated key: the last one wins).
    Dict(Vec<(NodeId, NodeId)>),
    /// A set or frozenset.
    Set(Vec<NodeId>),
    /// A global reference, never imported.
    Global {
        /// Module path, e.g. `torch._utils`.
        module: String,
        /// Qualified name, e.g. `_rebuild_tensor_v2`.
        name: String,
        /// Byte offset of the opcode that named it.
        pos: u64,
    },
    /// A persistent id (torch storage references), left as data.
    Persistent(NodeId),
    /// A call or instantiation that was recorded, not made.
    Object(Box<Object>),
}

/// How an [`Object`] was created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// `REDUCE`: `callable(*args)`.
    Reduce,
    /// `NEWOBJ` / `NEWOBJ_EX`: `cls.__new__(cls, *args, **kwargs)`.
    NewObj,
    /// `INST` / `OBJ`: protocol 0/1 instantiation.
    Inst,
}

/// An unevaluated call with everything later opcodes did to its result.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    /// How it was created.
    pub kind: CallKind,
    /// What would be called (normally a [`Node::Global`]).
    pub callable: NodeId,
    /// Positional arguments (a tuple node).
    pub args: NodeId,
    /// Keyword arguments of `NEWOBJ_EX`.
    pub kwargs: Option<NodeId>,
    /// The state given by `BUILD` (the last one, if several).
    pub state: Option<NodeId>,
    /// Items set with `SETITEM(S)` (an `OrderedDict()` is filled this way).
    pub items: Vec<(NodeId, NodeId)>,
    /// Items added with `APPEND(S)`.
    pub appends: Vec<NodeId>,
    /// Byte offset of the creating opcode.
    pub pos: u64,
}

/// A finished pickle: its nodes and the root value.
#[derive(Debug)]
pub struct Pickle {
    /// Every node built.
    pub nodes: Vec<Node>,
    /// The value `STOP` returned.
    pub root: NodeId,
    /// Offset just past `STOP` (the next pickle of a legacy file starts here).
    pub end: usize,
}

impl Pickle {
    /// The node `id` refers to.
    pub fn node(&self, id: NodeId) -> &Node {
        // Ids are only ever created by `push_node`, so they are in range.
        &self.nodes[id as usize]
    }
}

/// Bounds the machine enforces besides the input length.
#[derive(Clone, Copy, Debug)]
pub struct VmLimits {
    /// Most nodes one pickle may build.
    pub max_nodes: usize,
}

impl Default for VmLimits {
    fn default() -> Self {
        VmLimits { max_nodes: 16 << 20 }
    }
}

/// Runs the pickle that starts at `data[start..]` up to its `STOP`.
pub fn run(data: &[u8], start: usize, limits: VmLimits) -> Result<Pickle, FormatError> {
    let mut vm = Vm {
        data,
        pos: start,
        op_pos: start,
        nodes: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        limits,
    };
    let root = vm.execute()?;
    Ok(Pickle {
        nodes: vm.nodes,
        root,
        end: vm.pos,
    })
}

struct Vm<'a> {
    data: &'a [u8],
    pos: usize,
    op_pos: usize,
    nodes: Vec<Node>,
    stack: Vec<NodeId>,
    marks: Vec<usize>,
    memo: HashMap<u64, NodeId>,
    limits: VmLimits,
}

fn err(rule: &'static str, detail: impl Into<String>) -> FormatError {
    FormatError::new(crate::FORMAT, rule, detail)
}

impl<'a> Vm<'a> {
    fn fail(&self, rule: &'static str, detail: impl Into<String>) -> FormatError {
        err(rule, detail).at(self.op_pos as u64)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| {
                self.fail(
                    rules::TRUNCATED,
                    format!(
                        "operand of {n} bytes runs past the end of the pickle ({} bytes left)",
                        self.data.len() - self.pos
                    ),
                )
            })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, FormatError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<usize, FormatError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]) as usize)
    }

    fn u32(&mut self) -> Result<u32, FormatError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, FormatError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// A length prefix, which must fit in what is left of the input.
    fn len_prefix(&mut self, n: u64) -> Result<&'a [u8], FormatError> {
        let n =
            usize::try_from(n).map_err(|_| self.fail(rules::TRUNCATED, format!("length {n} too large")))?;
        self.take(n)
    }

    /// Text up to (not including) the next newline.
    fn line(&mut self) -> Result<&'a [u8], FormatError> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.fail(rules::TRUNCATED, "text operand has no terminating newline"))?;
        self.pos += n + 1;
        Ok(&rest[..n])
    }

    fn line_str(&mut self) -> Result<&'a str, FormatError> {
        let line = self.line()?;
        std::str::from_utf8(line).map_err(|_| self.fail(rules::BAD_OPERAND, "text operand is not UTF-8"))
    }

    fn push_node(&mut self, node: Node) -> Result<NodeId, FormatError> {
        if self.nodes.len() >= self.limits.max_nodes {
            return Err(self
                .fail(
                    rules::TOO_MANY_OBJECTS,
                    format!("more than {} pickle objects", self.limits.max_nodes),
                )
                .limit("max_objects"));
        }
        let id = self.nodes.len() as NodeId;
        self.nodes.push(node);
        Ok(id)
    }

    fn push(&mut self, node: Node) -> Result<(), FormatError> {
        let id = self.push_node(node)?;
        self.stack.push(id);
        Ok(())
    }

    fn pop(&mut self) -> Result<NodeId, FormatError> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err(self.fail(rules::STACK_UNDERFLOW, "pop reaches into a MARK"));
        }
        self.stack
            .pop()
            .ok_or_else(|| self.fail(rules::STACK_UNDERFLOW, "pop from an empty stack"))
    }

    fn top(&self) -> Result<NodeId, FormatError> {
        match (self.stack.last(), self.marks.last()) {
            (Some(&id), m) if m.is_none_or(|&m| m < self.stack.len()) => Ok(id),
            _ => Err(self.fail(rules::STACK_UNDERFLOW, "no value on the stack")),
        }
    }

    /// The items pushed since the last MARK, removing them and the mark.
    fn pop_mark(&mut self) -> Result<Vec<NodeId>, FormatError> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| self.fail(rules::STACK_UNDERFLOW, "no MARK on the stack"))?;
        Ok(self.stack.split_off(mark))
    }

    fn memo_get(&self, key: u64) -> Result<NodeId, FormatError> {
        self.memo
            .get(&key)
            .copied()
            .ok_or_else(|| self.fail(rules::MISSING_MEMO, format!("memo slot {key} was never set")))
    }

    fn memo_put(&mut self, key: u64) -> Result<(), FormatError> {
        let top = self.top()?;
        self.memo.insert(key, top);
        Ok(())
    }

    fn text_u64(&mut self) -> Result<u64, FormatError> {
        let s = self.line_str()?;
        s.trim()
            .parse::<u64>()
            .map_err(|_| self.fail(rules::BAD_OPERAND, format!("bad memo index {s:?}")))
    }

    fn global(&mut self, module: &str, name: &str) -> Result<NodeId, FormatError> {
        self.push_node(Node::Global {
            module: module.to_string(),
            name: name.to_string(),
            pos: self.op_pos as u64,
        })
    }

    fn object(
        &mut self,
        kind: CallKind,
        callable: NodeId,
        args: NodeId,
        kwargs: Option<NodeId>,
    ) -> Result<(), FormatError> {
        let pos = self.op_pos as u64;
        self.push(Node::Object(Box::new(Object {
            kind,
            callable,
            args,
            kwargs,
            state: None,
            items: Vec::new(),
            appends: Vec::new(),
            pos,
        })))
    }

    fn set_items(&mut self, target: NodeId, pairs: Vec<NodeId>) -> Result<(), FormatError> {
        if !pairs.len().is_multiple_of(2) {
            return Err(self.fail(rules::STACK_UNDERFLOW, "SETITEMS with an odd number of items"));
        }
        let pairs = pairs.chunks(2).map(|p| (p[0], p[1]));
        match &mut self.nodes[target as usize] {
            Node::Dict(items) => items.extend(pairs),
            Node::Object(o) => o.items.extend(pairs),
            _ => return Err(self.fail(rules::BAD_OPERAND, "SETITEM on a value that is not a dict")),
        }
        Ok(())
    }

    fn append_items(&mut self, target: NodeId, values: Vec<NodeId>) -> Result<(), FormatError> {
        match &mut self.nodes[target as usize] {
            Node::List(items) => items.extend(values),
            Node::Object(o) => o.appends.extend(values),
            _ => return Err(self.fail(rules::BAD_OPERAND, "APPEND on a value that is not a list")),
        }
        Ok(())
    }

    fn execute(&mut self) -> Result<NodeId, FormatError> {
        loop {
            self.op_pos = self.pos;
            let op = self
                .byte()
                .map_err(|_| self.fail(rules::TRUNCATED, "pickle ends before STOP"))?;
            if let Some(root) = self.step(op)? {
                return Ok(root);
            }
        }
    }

    /// Runs one opcode; `Some(root)` once STOP is reached.
    fn step(&mut self, op: u8) -> Result<Option<NodeId>, FormatError> {
        if op == STOP {
            return self.pop().map(Some);
        }
        match Group::of(op) {
            Some(Group::Control) => self.control(op)?,
            Some(Group::Number) => self.number(op)?,
            Some(Group::Text) => self.text(op)?,
            Some(Group::Container) => self.container(op)?,
            Some(Group::Object) => self.object_op(op)?,
            Some(Group::Memo) => self.memo_op(op)?,
            None => return Err(self.refuse(op)),
        }
        Ok(None)
    }

    /// Why an opcode outside every group is refused.
    fn refuse(&self, op: u8) -> FormatError {
        match op {
            EXT1 | EXT2 | EXT4 => self.fail(
                rules::UNSUPPORTED_OPCODE,
                "EXT opcodes need the copyreg extension registry, which a file cannot supply",
            ),
            NEXT_BUFFER | READONLY_BUFFER => self.fail(
                rules::UNSUPPORTED_OPCODE,
                "out-of-band buffers (protocol 5 NEXT_BUFFER/READONLY_BUFFER) are not part of a file",
            ),
            other => self.fail(rules::BAD_OPCODE, format!("unknown opcode 0x{other:02x}")),
        }
    }

    /// Protocol, framing and stack bookkeeping.
    fn control(&mut self, op: u8) -> Result<(), FormatError> {
        match op {
            PROTO => {
                let p = self.byte()?;
                if p > 5 {
                    return Err(self.fail(rules::BAD_OPCODE, format!("unsupported pickle protocol {p}")));
                }
            }
            FRAME => {
                // Only a hint for buffered readers; the length must still fit.
                let n = self.u64()?;
                if n > (self.data.len() - self.pos) as u64 {
                    return Err(self.fail(rules::TRUNCATED, format!("frame of {n} bytes runs past the end")));
                }
            }
            MARK => self.marks.push(self.stack.len()),
            POP => {
                // CPython: POP on an empty frame discards the MARK instead.
                if self.marks.last() == Some(&self.stack.len()) {
                    self.marks.pop();
                } else {
                    self.pop()?;
                }
            }
            POP_MARK => {
                self.pop_mark()?;
            }
            DUP => {
                let top = self.top()?;
                self.stack.push(top);
            }
            other => return Err(self.refuse(other)),
        }
        Ok(())
    }

    /// None, booleans, integers and floats.
    fn number(&mut self, op: u8) -> Result<(), FormatError> {
        match op {
            NONE => self.push(Node::None)?,
            NEWTRUE => self.push(Node::Bool(true))?,
            NEWFALSE => self.push(Node::Bool(false))?,
            INT => {
                let s = self.line_str()?;
                let node = match s {
                    "00" => Node::Bool(false),
                    "01" => Node::Bool(true),
                    _ => parse_text_int(s)
                        .ok_or_else(|| self.fail(rules::BAD_OPERAND, format!("bad INT {s:?}")))?,
                };
                self.push(node)?;
            }
            BININT => {
                let v = self.u32()? as i32;
                self.push(Node::Int(v.into()))?;
            }
            BININT1 => {
                let v = self.byte()?;
                self.push(Node::Int(v.into()))?;
            }
            BININT2 => {
                let v = self.u16()?;
                self.push(Node::Int(v as i64))?;
            }
            LONG => {
                let s = self.line_str()?;
                let digits = s.strip_suffix('L').unwrap_or(s);
                let node = parse_text_int(digits)
                    .ok_or_else(|| self.fail(rules::BAD_OPERAND, format!("bad LONG {s:?}")))?;
                self.push(node)?;
            }
            LONG1 => {
                let n = self.byte()? as u64;
                let b = self.len_prefix(n)?;
                self.push(long_from_bytes(b))?;
            }
            LONG4 => {
                let n = self.u32()? as i32;
                if n < 0 {
                    return Err(self.fail(rules::BAD_OPERAND, "LONG4 with a negative length"));
                }
                let b = self.len_prefix(n as u64)?;
                self.push(long_from_bytes(b))?;
            }
            FLOAT => {
                let s = self.line_str()?;
                let v = parse_text_float(s.trim())
                    .ok_or_else(|| self.fail(rules::BAD_OPERAND, format!("bad FLOAT {s:?}")))?;
                self.push(Node::Float(v))?;
            }
            BINFLOAT => {
                let b = self.take(8)?;
                self.push(Node::Float(f64::from_be_bytes(b.try_into().expect("8 bytes"))))?;
            }
            other => return Err(self.refuse(other)),
        }
        Ok(())
    }

    /// Python 2 strings, unicode strings and bytes.
    fn text(&mut self, op: u8) -> Result<(), FormatError> {
        match op {
            STRING => {
                let line = self.line()?;
                let bytes =
                    unquote(line).ok_or_else(|| self.fail(rules::BAD_OPERAND, "bad STRING quoting"))?;
                self.push(py2_str(bytes))?;
            }
            BINSTRING => {
                let n = self.u32()? as i32;
                if n < 0 {
                    return Err(self.fail(rules::BAD_OPERAND, "BINSTRING with a negative length"));
                }
                let b = self.len_prefix(n as u64)?;
                self.push(py2_str(b.to_vec()))?;
            }
            SHORT_BINSTRING => {
                let n = self.byte()? as u64;
                let b = self.len_prefix(n)?;
                self.push(py2_str(b.to_vec()))?;
            }
            UNICODE => {
                let line = self.line()?;
                let s = raw_unicode_escape(line)
                    .ok_or_else(|| self.fail(rules::BAD_OPERAND, "bad UNICODE escape"))?;
                self.push(Node::Str(s))?;
            }
            BINUNICODE | SHORT_BINUNICODE | BINUNICODE8 => {
                let n = match op {
                    BINUNICODE => self.u32()? as u64,
                    SHORT_BINUNICODE => self.byte()? as u64,
                    _ => self.u64()?,
                };
                let b = self.len_prefix(n)?;
                let s = std::str::from_utf8(b)
                    .map_err(|_| self.fail(rules::BAD_OPERAND, "unicode string is not UTF-8"))?;
                self.push(Node::Str(s.to_string()))?;
            }
            BINBYTES | SHORT_BINBYTES | BINBYTES8 | BYTEARRAY8 => {
                let n = match op {
                    BINBYTES => self.u32()? as u64,
                    SHORT_BINBYTES => self.byte()? as u64,
                    _ => self.u64()?,
                };
                let b = self.len_prefix(n)?;
                self.push(Node::Bytes(b.to_vec()))?;
            }
            other => return Err(self.refuse(other)),
        }
        Ok(())
    }

    /// Lists, tuples, dicts and sets, and filling them.
    fn container(&mut self, op: u8) -> Result<(), FormatError> {
        match op {
            EMPTY_LIST => self.push(Node::List(Vec::new()))?,
            EMPTY_TUPLE => self.push(Node::Tuple(Vec::new()))?,
            EMPTY_DICT => self.push(Node::Dict(Vec::new()))?,
            EMPTY_SET => self.push(Node::Set(Vec::new()))?,
            LIST => {
                let items = self.pop_mark()?;
                self.push(Node::List(items))?;
            }
            TUPLE => {
                let items = self.pop_mark()?;
                self.push(Node::Tuple(items))?;
            }
            TUPLE1 | TUPLE2 | TUPLE3 => {
                let n = (op - TUPLE1) as usize + 1;
                let mut items = vec![0; n];
                for slot in items.iter_mut().rev() {
                    *slot = self.pop()?;
                }
                self.push(Node::Tuple(items))?;
            }
            DICT => {
                let items = self.pop_mark()?;
                if items.len() % 2 != 0 {
                    return Err(self.fail(rules::STACK_UNDERFLOW, "DICT with an odd number of items"));
                }
                let pairs = items.chunks(2).map(|p| (p[0], p[1])).collect();
                self.push(Node::Dict(pairs))?;
            }
            FROZENSET => {
                let items = self.pop_mark()?;
                self.push(Node::Set(items))?;
            }
            APPEND => {
                let value = self.pop()?;
                let list = self.top()?;
                self.append_items(list, vec![value])?;
            }
            APPENDS => {
                let values = self.pop_mark()?;
                let list = self.top()?;
                self.append_items(list, values)?;
            }
            SETITEM => {
                let value = self.pop()?;
                let key = self.pop()?;
                let dict = self.top()?;
                self.set_items(dict, vec![key, value])?;
            }
            SETITEMS => {
                let pairs = self.pop_mark()?;
                let dict = self.top()?;
                self.set_items(dict, pairs)?;
            }
            ADDITEMS => {
                let values = self.pop_mark()?;
                let set = self.top()?;
                match &mut self.nodes[set as usize] {
                    Node::Set(items) => items.extend(values),
                    _ => return Err(self.fail(rules::BAD_OPERAND, "ADDITEMS on a value that is not a set")),
                }
            }
            other => return Err(self.refuse(other)),
        }
        Ok(())
    }

    /// Globals, calls and object construction: recorded as nodes, never executed.
    fn object_op(&mut self, op: u8) -> Result<(), FormatError> {
        match op {
            GLOBAL => {
                let module = self.line_str()?;
                let name = self.line_str()?;
                let id = self.global(module, name)?;
                self.stack.push(id);
            }
            STACK_GLOBAL => {
                let name = self.pop()?;
                let module = self.pop()?;
                let (Node::Str(module), Node::Str(name)) = (self.node(module), self.node(name)) else {
                    return Err(self.fail(rules::BAD_OPERAND, "STACK_GLOBAL needs two strings"));
                };
                let (module, name) = (module.clone(), name.clone());
                let id = self.global(&module, &name)?;
                self.stack.push(id);
            }
            INST => {
                let module = self.line_str()?;
                let name = self.line_str()?;
                let args = self.pop_mark()?;
                let class = self.global(module, name)?;
                let args = self.push_node(Node::Tuple(args))?;
                self.object(CallKind::Inst, class, args, None)?;
            }
            OBJ => {
                let mut items = self.pop_mark()?;
                if items.is_empty() {
                    return Err(self.fail(rules::STACK_UNDERFLOW, "OBJ without a class"));
                }
                let class = items.remove(0);
                let args = self.push_node(Node::Tuple(items))?;
                self.object(CallKind::Inst, class, args, None)?;
            }
            REDUCE => {
                let args = self.pop()?;
                let callable = self.pop()?;
                self.expect_tuple(args, "REDUCE")?;
                self.object(CallKind::Reduce, callable, args, None)?;
            }
            NEWOBJ => {
                let args = self.pop()?;
                let class = self.pop()?;
                self.expect_tuple(args, "NEWOBJ")?;
                self.object(CallKind::NewObj, class, args, None)?;
            }
            NEWOBJ_EX => {
                let kwargs = self.pop()?;
                let args = self.pop()?;
                let class = self.pop()?;
                self.expect_tuple(args, "NEWOBJ_EX")?;
                self.object(CallKind::NewObj, class, args, Some(kwargs))?;
            }
            BUILD => {
                let state = self.pop()?;
                let target = self.top()?;
                match &mut self.nodes[target as usize] {
                    Node::Object(o) => o.state = Some(state),
                    _ => {
                        return Err(self.fail(
                            rules::BAD_OPERAND,
                            "BUILD on a value that is not an object (would set attributes of a class)",
                        ))
                    }
                }
            }
            PERSID => {
                let line = self.line()?;
                let id = self.push_node(py2_str(line.to_vec()))?;
                self.push(Node::Persistent(id))?;
            }
            BINPERSID => {
                let pid = self.pop()?;
                self.push(Node::Persistent(pid))?;
            }
            other => return Err(self.refuse(other)),
        }
        Ok(())
    }

    /// The memo: shared references by index.
    fn memo_op(&mut self, op: u8) -> Result<(), FormatError> {
        match op {
            GET => {
                let key = self.text_u64()?;
                let id = self.memo_get(key)?;
                self.stack.push(id);
            }
            BINGET => {
                let key = self.byte()? as u64;
                let id = self.memo_get(key)?;
                self.stack.push(id);
            }
            LONG_BINGET => {
                let key = self.u32()? as u64;
                let id = self.memo_get(key)?;
                self.stack.push(id);
            }
            PUT => {
                let key = self.text_u64()?;
                self.memo_put(key)?;
            }
            BINPUT => {
                let key = self.byte()? as u64;
                self.memo_put(key)?;
            }
            LONG_BINPUT => {
                let key = self.u32()? as u64;
                self.memo_put(key)?;
            }
            MEMOIZE => {
                // MEMOIZE stores at index len(memo), exactly as CPython does
                // (not "the next unused index").
                let key = self.memo.len() as u64;
                self.memo_put(key)?;
            }
            other => return Err(self.refuse(other)),
        }
        Ok(())
    }

    fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    fn expect_tuple(&self, id: NodeId, op: &str) -> Result<(), FormatError> {
        match self.node(id) {
            Node::Tuple(_) => Ok(()),
            _ => Err(self.fail(rules::BAD_OPERAND, format!("{op} arguments are not a tuple"))),
        }
    }
}

/// A protocol-0 integer: decimal, maybe signed; beyond 64 bits it becomes a
/// [`Node::BigInt`].
fn parse_text_int(s: &str) -> Option<Node> {
    let s = s.trim();
    if let Ok(v) = s.parse::<i64>() {
        return Some(Node::Int(v));
    }
    let v = s.parse::<i128>().ok()?;
    Some(long_from_bytes(&v.to_le_bytes()))
}

fn parse_text_float(s: &str) -> Option<f64> {
    match s {
        "nan" => Some(f64::NAN),
        "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// A LONG1/LONG4 operand: little-endian two's complement of any length.
fn long_from_bytes(b: &[u8]) -> Node {
    if b.len() <= 8 {
        let fill = if b.last().is_some_and(|&x| x & 0x80 != 0) {
            0xff
        } else {
            0
        };
        let mut buf = [fill; 8];
        buf[..b.len()].copy_from_slice(b);
        return Node::Int(i64::from_le_bytes(buf));
    }
    // Trim redundant sign bytes so equal numbers compare equal.
    let mut v = b.to_vec();
    while v.len() > 8 {
        let last = v[v.len() - 1];
        let prev = v[v.len() - 2];
        if (last == 0 && prev & 0x80 == 0) || (last == 0xff && prev & 0x80 != 0) {
            v.pop();
        } else {
            break;
        }
    }
    if v.len() <= 8 {
        return long_from_bytes(&v);
    }
    Node::BigInt(v)
}

/// A Python 2 `str`: text when it is valid UTF-8 (torch loads with
/// `encoding="utf-8"`), bytes otherwise.
fn py2_str(bytes: Vec<u8>) -> Node {
    match String::from_utf8(bytes) {
        Ok(s) => Node::Str(s),
        Err(e) => Node::Bytes(e.into_bytes()),
    }
}

/// The STRING operand: a quoted Python literal with backslash escapes.
fn unquote(line: &[u8]) -> Option<Vec<u8>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let (&q, rest) = line.split_first()?;
    if !(q == b'\'' || q == b'"') {
        return None;
    }
    let body = rest.strip_suffix(&[q])?;
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let e = *body.get(i)?;
        i += 1;
        match e {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(e),
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'x' => {
                let hex = body.get(i..i + 2)?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match body.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

/// The UNICODE operand: latin-1 text with `\uXXXX` / `\UXXXXXXXX` escapes.
fn raw_unicode_escape(line: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        let c = line[i];
        if c == b'\\' && matches!(line.get(i + 1), Some(b'u') | Some(b'U')) {
            let n = if line[i + 1] == b'u' { 4 } else { 8 };
            let hex = std::str::from_utf8(line.get(i + 2..i + 2 + n)?).ok()?;
            out.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?);
            i += 2 + n;
        } else {
            out.push(char::from(c));
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run0(data: &[u8]) -> Result<Pickle, FormatError> {
        run(data, 0, VmLimits::default())
    }

    #[test]
    fn memoize_indexes_by_memo_length() {
        // PUT 5, then MEMOIZE stores at len(memo) == 1, not 6.
        let p = run0(b"\x80\x04K\x07q\x05K\x08\x94h\x01.").unwrap();
        assert_eq!(p.node(p.root), &Node::Int(8));
        assert_eq!(
            run0(b"\x80\x04K\x07q\x05K\x08\x94h\x06.").unwrap_err().rule,
            rules::MISSING_MEMO
        );
    }

    #[test]
    fn long_encodings() {
        let p = run0(b"\x8a\x02\xff\x7f.").unwrap();
        assert_eq!(p.node(p.root), &Node::Int(0x7fff));
        let p = run0(b"\x8a\x01\xff.").unwrap();
        assert_eq!(p.node(p.root), &Node::Int(-1));
        let p = run0(b"\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.").unwrap();
        assert!(matches!(p.node(p.root), Node::BigInt(b) if b.len() == 10));
        let p = run0(b"L-12L\n.").unwrap();
        assert_eq!(p.node(p.root), &Node::Int(-12));
    }

    #[test]
    fn text_strings() {
        let p = run0(b"S'a\\'b\\x41\\n'\n.").unwrap();
        assert_eq!(p.node(p.root), &Node::Str("a'bA\n".into()));
        let p = run0(b"V\\u00e9x\n.").unwrap();
        assert_eq!(p.node(p.root), &Node::Str("\u{e9}x".into()));
    }

    #[test]
    fn memo_shares_values() {
        // A list referenced twice through the memo is one node.
        let p = run0(b"]q\x00h\x00\x86.").unwrap();
        let Node::Tuple(items) = p.node(p.root) else {
            panic!()
        };
        assert_eq!(items[0], items[1]);
    }

    #[test]
    fn hostile_streams_fail_with_rules() {
        for (data, rule) in [
            (&b"K\x01"[..], rules::TRUNCATED),
            (b"t.", rules::STACK_UNDERFLOW),
            (b"(.", rules::STACK_UNDERFLOW),
            (b"(K\x01\x30.", rules::STACK_UNDERFLOW),
            (b"B\xff\xff\xff\x7f.", rules::TRUNCATED),
            (b"\x8e\xff\xff\xff\xff\xff\xff\xff\xff.", rules::TRUNCATED),
            (b"\xff", rules::BAD_OPCODE),
            (b"\x82\x01.", rules::UNSUPPORTED_OPCODE),
            (b"cos\nsystem\nNb.", rules::BAD_OPERAND),
            (b"h\x09.", rules::MISSING_MEMO),
        ] {
            assert_eq!(run0(data).unwrap_err().rule, rule, "{data:?}");
        }
    }

    #[test]
    fn node_cap_is_enforced() {
        let data = [&[b']'; 100][..], b"."].concat();
        let err = run(&data, 0, VmLimits { max_nodes: 10 }).unwrap_err();
        assert_eq!(err.rule, rules::TOO_MANY_OBJECTS);
    }
}
