//! Rule ids a NumPy reader error can cite (`npy/<id>` or `npz/<id>`).

/// The `\x93NUMPY` magic is missing.
pub const MAGIC: &str = "magic";
/// A format version other than 1, 2 or 3.
pub const VERSION: &str = "version";
/// The header dict is malformed or too large.
pub const HEADER: &str = "header";
/// The header or data ends early.
pub const TRUNCATED: &str = "truncated";
/// A dtype tensorcast cannot hold (strings, structured, complex128).
pub const DTYPE: &str = "dtype";
/// An object array: refused, never unpickled.
pub const OBJECT: &str = "object-array";
/// The data length disagrees with dtype × shape.
pub const SIZE: &str = "size";
/// The `.npz` zip is unreadable, or holds something other than `.npy` members.
pub const ARCHIVE: &str = "archive";
/// The header dict repeats a key (numpy would use the last, others the first).
pub const DUPLICATE_KEY: &str = "duplicate-key";
/// Writing: a tensor name that is not a safe zip member name (a path, a
/// separator, a NUL, a drive letter, or longer than a zip name can be).
pub const WRITE_NAME: &str = "write-name";
/// Writing: a tensor whose dtype NumPy has no equivalent for (bf16, fp8, blocks).
pub const WRITE_DTYPE: &str = "write-dtype";
/// A column-major deflated array would need a buffer over `Limits::max_alloc_bytes`.
pub const ALLOC_LIMIT: &str = "alloc-limit";
