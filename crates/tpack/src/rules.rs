//! Rule ids a tpack reader error can cite (`tpack/T<n>`), numbered as in spec/tpack.md.

/// T1: the file starts with the magic and a 256-byte preamble.
pub const MAGIC: &str = "T1";
/// T2: major version 1.
pub const VERSION: &str = "T2";
/// T4: a valid commit slot exists and generations differ.
pub const NO_SLOT: &str = "T4";
/// T5: the manifest matches its crc32c.
pub const MANIFEST_CRC: &str = "T5";
/// T6: the manifest is JSON of the specified shape.
pub const MANIFEST: &str = "T6";
/// T7: tensor names are non-empty and unique.
pub const NAMES: &str = "T7";
/// T8: dtype, shape and nbytes agree.
pub const DTYPE: &str = "T8";
/// T9: chunks decode to exactly nbytes, in whole elements.
pub const CHUNK_SIZES: &str = "T9";
/// T10: chunks lie in the data area, below the committed length, and are
/// either the same chunk or disjoint.
pub const CHUNK_RANGE: &str = "T10";
/// T11: a chunk matches its crc32c.
pub const CHUNK_CRC: &str = "T11";
/// T12: typed metadata values are well formed.
pub const METADATA: &str = "T12";
/// T13: known codec; frames decode to the declared length.
pub const CODEC: &str = "T13";
/// T14: raw chunks store exactly their decoded length.
pub const RAW_LEN: &str = "T14";
/// T15: an append may not reuse a tensor name.
pub const APPEND_DUPLICATE: &str = "T15";
/// T16: a compressed chunk decodes to at most 64 MiB.
pub const CHUNK_TOO_BIG: &str = "T16";
/// A sparse tensor's entry or bytes break §2.2 (fields, sizes, indices).
pub const SPARSE: &str = "T17";
/// T18: a metadata array stored as chunks (§2.3) is a top-level value whose
/// chunks decode to its elements.
pub const STORED_ARRAY: &str = "T18";

/// A whole tensor read into a new buffer is refused over
/// `Limits::max_alloc_bytes` (a limit of this reader, not a rule of the file:
/// compressed chunks of zeros can claim gigabytes in a few kilobytes).
pub const ALLOC_LIMIT: &str = "alloc-limit";
