//! What `inspect` prints: a table for people, JSON for scripts.

use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;
use tensorcast_core::Source;

/// `{"format", "metadata", "tensors": [{"name", "dtype", "shape", "nbytes"}]}`,
/// tensors in file order, metadata values as JSON values: serialize it
/// (`serde_json::to_writer`), and the text is written straight from the
/// source, with no JSON tree of a vocabulary in between.
pub fn inspect_json(source: &dyn Source) -> Inspection<'_> {
    Inspection(source)
}

/// What [`inspect_json`] returns: serializable, borrowed from the source.
pub struct Inspection<'a>(&'a dyn Source);

/// One tensor's entry.
struct Entry<'a>(&'a dyn Source, usize);

/// Every tensor's entry.
struct Entries<'a>(&'a dyn Source);

impl Serialize for Inspection<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("format", self.0.format())?;
        m.serialize_entry("metadata", self.0.metadata())?;
        m.serialize_entry("tensors", &Entries(self.0))?;
        m.end()
    }
}

impl Serialize for Entries<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.tensors().len()))?;
        for i in 0..self.0.tensors().len() {
            seq.serialize_element(&Entry(self.0, i))?;
        }
        seq.end()
    }
}

impl Serialize for Entry<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = &self.0.tensors()[self.1];
        let note = self.0.storage_note(self.1);
        let fields = 4
            + usize::from(note.is_some())
            + usize::from(t.sparse.is_some())
            + usize::from(t.unreadable.is_some());
        let mut m = s.serialize_map(Some(fields))?;
        m.serialize_entry("name", &t.name)?;
        // A tensor listed but not readable has no dtype of ours: null, and
        // the type the file names.
        match &t.unreadable {
            None => m.serialize_entry("dtype", t.dtype.name())?,
            Some(kind) => {
                m.serialize_entry("dtype", &None::<&str>)?;
                m.serialize_entry("unreadable", kind)?;
            }
        }
        m.serialize_entry("shape", &t.shape)?;
        m.serialize_entry("nbytes", &t.nbytes)?;
        if let Some(sp) = &t.sparse {
            m.serialize_entry(
                "sparse",
                &serde_json::json!({
                    "layout": sp.layout.name(),
                    "index": sp.index.name(),
                    "nnz": sp.nnz,
                    "sparse_dims": sp.sparse_dims,
                }),
            )?;
        }
        if let Some(note) = note {
            m.serialize_entry("storage", &note)?;
        }
        m.end()
    }
}

/// A readable table: one line per tensor, then metadata and totals.
pub fn inspect_table(source: &dyn Source) -> String {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = write_inspect_table(source, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// [`inspect_table`] written line by line into `out` (a listing of millions
/// of keys is never one string).
pub fn write_inspect_table(source: &dyn Source, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let tensors = source.tensors();
    let name_w = tensors
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(4)
        .clamp(4, 80);
    // Sparse tensors say so in the storage column (their bytes are parts).
    let noted = !tensors.is_empty() && source.storage_note(0).is_some()
        || tensors
            .iter()
            .any(|t| t.sparse.is_some() || t.unreadable.is_some());
    let storage = if noted { "  storage" } else { "" };
    writeln!(
        out,
        "{:<name_w$}  {:<8}  {:<24}  {:>12}{storage}",
        "name", "dtype", "shape", "bytes"
    )?;
    for (i, t) in tensors.iter().enumerate() {
        let shape = format!("{:?}", t.shape);
        let note = t
            .sparse
            .as_ref()
            .map(|s| s.describe())
            .into_iter()
            .chain(
                t.unreadable
                    .as_ref()
                    .map(|_| "not readable: leaving it out converts the rest".into()),
            )
            .chain(source.storage_note(i))
            .collect::<Vec<_>>()
            .join("; ");
        let note = if note.is_empty() {
            note
        } else {
            format!("  {note}")
        };
        writeln!(
            out,
            "{:<name_w$}  {:<8}  {:<24}  {:>12}{note}",
            t.name,
            t.unreadable.as_deref().unwrap_or(t.dtype.name()),
            shape,
            t.nbytes
        )?;
    }
    for (k, v) in source.metadata().iter() {
        // Only what is printed is produced: a huge array stops at 100 bytes.
        writeln!(out, "metadata {k} = {}", v.preview(100))?;
    }
    // Saturating: each count was checked, their sum over a file was not.
    let total = tensors.iter().fold(0u64, |a, t| a.saturating_add(t.nbytes));
    let params = tensors.iter().fold(0u64, |a, t| a.saturating_add(t.numel()));
    writeln!(
        out,
        "{}: {} tensors, {} elements, {} bytes ({})",
        source.format(),
        tensors.len(),
        params,
        total,
        human(total)
    )
}

fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", units[u])
}
