//! safetensors for tensorcast: a validating reader (single files and sharded
//! Hugging Face checkpoints) and a streaming, atomic writer.
//!
//! The reader enforces every rule the reference `safetensors` crate enforces,
//! and also refuses duplicate and empty tensor names, which the reference
//! lets through. Rule ids (cited as `safetensors/<rule>` in errors) are listed
//! in [`rules`].
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod edit;
mod header;
mod index;
mod plugin;
mod read;
pub mod rules;
mod write;

pub use edit::edit;
pub use header::{parse_header, Header};
pub use index::{is_index_file, open_index, open_index_input, ShardedSafetensors, INDEX_SUFFIX};
pub use plugin::{Safetensors, SafetensorsWriteOptions};
pub use read::SafetensorsFile;
pub use tensorcast_core::parse_size;
pub use write::SafetensorsWriter;

/// The format name used in errors and `inspect`.
pub const FORMAT: &str = "safetensors";
