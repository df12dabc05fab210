//! ONNX models as tensor sources: the graph's initializers (a model's
//! weights) with their names, dtypes and shapes, read from `raw_data`, from
//! the typed value fields, or from external data files beside the model
//! (plain file names only). Initializers of subgraphs (`If`, `Loop`, `Scan`
//! node attributes) are read too, named `NODE/ATTRIBUTE/NAME`. The graph is
//! walked on the wire and its counts checked before anything is decoded;
//! each initializer is then decoded by prost from the messages in
//! [`proto`].
//! Raw tensor bytes are borrowed from the model's (or external file's)
//! mapping, never copied.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod plugin;
pub mod proto;
mod read;
pub mod rules;
mod wire;

pub use plugin::Onnx;
pub use read::OnnxFile;

/// The format name in errors and `inspect`.
pub const FORMAT: &str = "onnx";
