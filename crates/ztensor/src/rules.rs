//! The rules a `.zt` file can break (zTensor container v2, §3.6), as error
//! rule ids.

/// Too short, or the magic at the start or in the footer is wrong.
pub const MAGIC: &str = "magic";
/// A footer version other than 2 (v1 files have another magic).
pub const VERSION: &str = "version";
/// A data shard (no manifest), or a manifest outside the file.
pub const MANIFEST: &str = "manifest";
/// The manifest's XXH3-64 does not match the footer.
pub const MANIFEST_HASH: &str = "manifest-hash";
/// The manifest is not deterministic CBOR, or not the schema.
pub const SCHEMA: &str = "schema";
/// A blob misaligned, before 4096, past the data region, or partially
/// overlapping another.
pub const BLOB: &str = "blob";
/// A name that is empty, longer than 1024 bytes or holds U+0000.
pub const NAME: &str = "name";
/// A shape of rank > 64 or whose element count overflows.
pub const SHAPE: &str = "shape";
/// A part whose decoded size is not what its shape and type need.
pub const SIZE: &str = "size";
/// A layout, logical type or encoding this reader does not interpret, or a
/// multi-file (sharded) model: refused, never guessed at.
pub const UNSUPPORTED: &str = "unsupported";
/// A part's decoded bytes do not match its digest, or a zstd part decodes
/// to another length than its `decoded_length`.
pub const DIGEST: &str = "digest";
/// A `bool` element other than 0 or 1.
pub const BOOL: &str = "bool-value";
/// A `zt.sparse_csr/1` object whose data breaks the profile: row pointers
/// not from 0 to nnz or decreasing, a column index out of range or not
/// strictly increasing within its row.
pub const CSR: &str = "csr";
