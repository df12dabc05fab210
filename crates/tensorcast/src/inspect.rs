//! What `inspect` prints: a table for people, JSON for scripts.

use serde_json::{json, Value as Json};
use tensorcast_core::Source;

/// `{"format", "metadata", "tensors": [{"name", "dtype", "shape", "nbytes"}]}`,
/// tensors in file order, metadata values as JSON values.
pub fn inspect_json(source: &dyn Source) -> Json {
    let tensors: Vec<Json> = source
        .tensors()
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut j =
                json!({"name": t.name, "dtype": t.dtype.name(), "shape": t.shape, "nbytes": t.nbytes});
            if let Some(note) = source.storage_note(i) {
                j["storage"] = json!(note);
            }
            j
        })
        .collect();
    json!({
        "format": source.format(),
        "metadata": source.metadata().to_json(),
        "tensors": tensors,
    })
}

/// A readable table: one line per tensor, then metadata and totals.
pub fn inspect_table(source: &dyn Source) -> String {
    let tensors = source.tensors();
    let name_w = tensors
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(4)
        .clamp(4, 80);
    let storage = if tensors.is_empty() || source.storage_note(0).is_none() {
        ""
    } else {
        "  storage"
    };
    let mut out = format!(
        "{:<name_w$}  {:<8}  {:<24}  {:>12}{storage}\n",
        "name", "dtype", "shape", "bytes"
    );
    for (i, t) in tensors.iter().enumerate() {
        let shape = format!("{:?}", t.shape);
        let note = source
            .storage_note(i)
            .map(|n| format!("  {n}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "{:<name_w$}  {:<8}  {:<24}  {:>12}{note}\n",
            t.name,
            t.dtype.name(),
            shape,
            t.nbytes
        ));
    }
    for (k, v) in source.metadata().iter() {
        let mut text = v.to_metadata_string();
        if text.len() > 100 {
            let cut = (0..=100).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            text.truncate(cut);
            text.push('…');
        }
        out.push_str(&format!("metadata {k} = {text}\n"));
    }
    let total: u64 = tensors.iter().map(|t| t.nbytes).sum();
    let params: u64 = tensors.iter().map(|t| t.numel()).sum();
    out.push_str(&format!(
        "{}: {} tensors, {} elements, {} bytes ({})\n",
        source.format(),
        tensors.len(),
        params,
        total,
        human(total)
    ));
    out
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
