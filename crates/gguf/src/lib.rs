//! GGUF for tensorcast: a validating reader for versions 1–3 in either byte
//! order (split models open as one source) and a streaming writer whose
//! files ggml loads. The block kernels are in `tensorcast-quant`.
//!
//! Rule ids (cited as `gguf/<rule>` in errors) are listed in [`rules`].
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod comfy;
mod edit;
mod plugin;
mod read;
pub mod rules;
mod split;
mod types;
mod value;
mod write;

pub use edit::{edit, PADDING_KEY};
pub use plugin::Gguf;
pub use read::GgufFile;
pub use split::{is_split_first, open_split, open_split_beside, SplitGguf};
pub use types::{ggml_type_id, ggml_type_name};
pub use write::GgufWriter;

/// The format name used in errors and `inspect`.
pub const FORMAT: &str = "gguf";
