//! GGUF for tensorcast: a validating reader for versions 1–3 in either byte
//! order (split models open as one source), dequantization kernels
//! bit-identical to gguf-py for every type it dequantizes, and a streaming
//! writer whose files ggml loads.
//!
//! Rule ids (cited as `gguf/<rule>` in errors) are listed in [`rules`].
#![deny(missing_docs)]

mod plugin;
pub mod quant;
mod read;
pub mod rules;
mod split;
mod types;
mod value;
mod write;

pub use plugin::Gguf;
pub use read::GgufFile;
pub use split::{is_split_first, SplitGguf};
pub use types::{ggml_type_id, ggml_type_name};
pub use write::GgufWriter;

/// The format name used in errors and `inspect`.
pub const FORMAT: &str = "gguf";
