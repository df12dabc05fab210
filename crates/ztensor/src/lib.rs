//! zTensor (`.zt`) files, container version 2 (ztensor 2.x): a reader for
//! dense objects (raw and `zt.zstd-seekable/1` parts, every storage type and
//! the registered logical types tensorcast has) and `zt.sparse_csr/1`
//! objects (sparse CSR tensors), and a writer of valid, digest-carrying
//! files of both. The manifest is deterministic CBOR, parsed and
//! written here (cbor.rs); the footer's XXH3-64 is always checked, part
//! digests by `verify`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod cbor;
mod dtypes;
mod plugin;
mod read;
pub mod rules;
mod write;

pub use plugin::Ztensor;
pub use read::ZtFile;
pub use write::ZtWriter;

/// The format name in errors and `inspect`.
pub const FORMAT: &str = "ztensor";

/// The magic at offset 0 and at the end of the footer.
pub const MAGIC: [u8; 8] = [0x89, b'Z', b'T', b'2', 0x0d, 0x0a, 0x1a, 0x0a];

/// Blob alignment floor.
pub const ALIGN: u64 = 4096;

/// Footer length.
pub const FOOTER: u64 = 40;

/// The spec's name rule (§3.5) for objects, parts and attribute keys:
/// non-empty, at most 1024 bytes, no U+0000.
pub(crate) fn name_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= 1024 && !s.contains('\0')
}
