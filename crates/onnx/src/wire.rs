//! The protobuf wire format, walked without decoding: where a model's
//! initializers are (in the main graph and in the subgraphs of `If`,
//! `Loop` and `Scan` nodes), and how many elements a tensor's repeated
//! fields hold, so counts are checked against the limits before prost
//! allocates anything for them. Each initializer is then decoded on its
//! own (a million of them are never one decoded tree).

use std::ops::Range;

/// One field: its number and where its payload is.
pub(crate) enum Payload {
    /// A varint (wire type 0); its value is not needed.
    Varint,
    /// A fixed 32- or 64-bit value (wire types 5 and 1).
    Fixed,
    /// A length-delimited payload (wire type 2): these bytes of the buffer.
    Bytes(Range<usize>),
}

/// Walks the fields of the message in `buf[range]`.
pub(crate) struct Fields<'a> {
    buf: &'a [u8],
    at: usize,
    end: usize,
}

pub(crate) fn fields(buf: &[u8], range: Range<usize>) -> Fields<'_> {
    Fields {
        buf,
        at: range.start,
        end: range.end.min(buf.len()),
    }
}

fn varint(buf: &[u8], at: &mut usize, end: usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..70).step_by(7) {
        if *at >= end {
            return Err("a varint runs past its message".into());
        }
        let b = buf[*at];
        *at += 1;
        if shift == 63 && b > 1 {
            return Err("a varint over 64 bits".into());
        }
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("a varint over 10 bytes".into())
}

impl Iterator for Fields<'_> {
    type Item = Result<(u32, Payload), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.end {
            return None;
        }
        Some(self.field())
    }
}

impl Fields<'_> {
    fn field(&mut self) -> Result<(u32, Payload), String> {
        let key = varint(self.buf, &mut self.at, self.end)?;
        let number = u32::try_from(key >> 3).map_err(|_| "a field number over 32 bits".to_string())?;
        let payload = match key & 7 {
            0 => {
                varint(self.buf, &mut self.at, self.end)?;
                Payload::Varint
            }
            1 | 5 => {
                let n = if key & 7 == 1 { 8 } else { 4 };
                if self.end - self.at < n {
                    return Err("a fixed-size value runs past its message".into());
                }
                self.at += n;
                Payload::Fixed
            }
            2 => {
                let len = varint(self.buf, &mut self.at, self.end)?;
                let len = usize::try_from(len).map_err(|_| "a length over the address space".to_string())?;
                if self.end - self.at < len {
                    return Err("a length-delimited field runs past its message".into());
                }
                let r = self.at..self.at + len;
                self.at += len;
                Payload::Bytes(r)
            }
            t => return Err(format!("wire type {t} (groups and others are not used by ONNX)")),
        };
        Ok((number, payload))
    }
}

/// An initializer found in the model: its bytes, and the path of the node
/// attributes that hold it (empty in the main graph).
pub(crate) struct Found {
    pub(crate) range: Range<usize>,
    pub(crate) scope: String,
}

/// Graphs nested deeper than this (subgraphs of subgraphs…) are refused.
pub(crate) const MAX_GRAPH_DEPTH: usize = 32;

/// The graph's initializers (`GraphProto.initializer`, field 5), then those
/// of every subgraph held by a node attribute (`NodeProto.attribute`, field
/// 5; `AttributeProto.g` 6 and `graphs` 11), depth first. Counting stops
/// with an error past `max` initializers; a sparse initializer (field 15)
/// is reported by the caller.
pub(crate) fn initializers(
    buf: &[u8],
    graph: Range<usize>,
    scope: &str,
    depth: usize,
    max: u64,
    out: &mut Vec<Found>,
    sparse: &mut Option<Range<usize>>,
) -> Result<(), String> {
    if depth > MAX_GRAPH_DEPTH {
        return Err(format!("subgraphs nested deeper than {MAX_GRAPH_DEPTH}"));
    }
    let mut nodes = Vec::new();
    for f in fields(buf, graph) {
        match f? {
            (5, Payload::Bytes(r)) => {
                if out.len() as u64 >= max {
                    return Err(format!("more than {max} initializers"));
                }
                out.push(Found {
                    range: r,
                    scope: scope.to_string(),
                });
            }
            (15, Payload::Bytes(r)) => {
                sparse.get_or_insert(r);
            }
            (1, Payload::Bytes(r)) => nodes.push(r),
            _ => {}
        }
    }
    for (i, node) in nodes.into_iter().enumerate() {
        let mut name = None;
        let mut attributes = Vec::new();
        for f in fields(buf, node) {
            match f? {
                (3, Payload::Bytes(r)) => name = Some(r),
                (5, Payload::Bytes(r)) => attributes.push(r),
                _ => {}
            }
        }
        let node_name = name
            .and_then(|r| std::str::from_utf8(&buf[r]).ok())
            .filter(|n| !n.is_empty())
            .map_or_else(|| format!("node{i}"), str::to_string);
        for attribute in attributes {
            let mut attr_name = String::new();
            let mut graphs = Vec::new();
            for f in fields(buf, attribute) {
                match f? {
                    (1, Payload::Bytes(r)) => {
                        attr_name = String::from_utf8_lossy(&buf[r]).into_owned();
                    }
                    (6, Payload::Bytes(r)) | (11, Payload::Bytes(r)) => graphs.push(r),
                    _ => {}
                }
            }
            let many = graphs.len() > 1;
            for (k, g) in graphs.into_iter().enumerate() {
                let mut inner = format!("{scope}{node_name}/{attr_name}");
                if many {
                    inner.push_str(&format!("/{k}"));
                }
                inner.push('/');
                initializers(buf, g, &inner, depth + 1, max, out, sparse)?;
            }
        }
    }
    Ok(())
}

/// What a tensor's fields hold, counted before it is decoded.
#[derive(Default)]
pub(crate) struct TensorCounts {
    /// `dims` entries.
    pub(crate) dims: u64,
    /// `string_data` entries.
    pub(crate) strings: u64,
    /// `name` (field 8), when valid UTF-8.
    pub(crate) name: Option<Range<usize>>,
    /// `external_data` entries.
    pub(crate) external: u64,
}

/// Counts a `TensorProto`'s repeated fields (packed or not).
pub(crate) fn tensor_counts(buf: &[u8], tensor: Range<usize>) -> Result<TensorCounts, String> {
    let mut c = TensorCounts::default();
    for f in fields(buf, tensor) {
        match f? {
            (1, Payload::Varint) => c.dims += 1,
            (1, Payload::Bytes(r)) => {
                // Packed: one varint per byte whose high bit is clear.
                c.dims += buf[r].iter().filter(|&&b| b & 0x80 == 0).count() as u64;
            }
            (6, _) => c.strings += 1,
            (8, Payload::Bytes(r)) => c.name = Some(r),
            (13, _) => c.external += 1,
            _ => {}
        }
    }
    Ok(c)
}
