//! tpack, tensorcast's own container (byte-exact spec: `spec/tpack.md`):
//! tensors in independently decodable chunks (raw, zstd, or byte planes +
//! zstd for floats), crc32c on every chunk and on the manifest, typed
//! metadata, and an append that is atomic under crashes (two commit slots).
//!
//! - [`TpackWriter`]: a [`tensorcast_core::Sink`] for new files.
//! - [`TpackFile`]: a [`tensorcast_core::Source`]; every chunk's crc is
//!   checked before it is used; [`TpackFile::verify`] checks them all.
//! - [`append`]: adds tensors and metadata to an existing file.
//!
//! Rule ids (cited as `tpack/T<n>` in errors) are listed in [`rules`].
#![deny(missing_docs)]

mod append;
mod chunk;
#[doc(hidden)] // public for the spec tests and the encode fuzz target
pub mod codec;
mod encode;
#[doc(hidden)] // public for the rule and memory tests
pub mod format;
#[doc(hidden)] // public for the spec tests
pub mod manifest;
mod manifest_read;
mod planes;
mod plugin;
mod read;
pub mod rules;
pub mod stored;
mod write;

pub use append::{append, edit_metadata};
pub use plugin::{Tpack, TpackWriteOptions};
pub use read::TpackFile;
pub use write::{ChunkWriter, TpackWriter, DEFAULT_LEVEL};

/// The format name used in errors and `inspect`.
pub const FORMAT: &str = "tpack";
