//! Rule ids a GGUF reader error can cite (`gguf/<id>`).

/// The file does not start with `GGUF`.
pub const BAD_MAGIC: &str = "bad-magic";
/// A version other than 1, 2 or 3.
pub const BAD_VERSION: &str = "bad-version";
/// The file ends inside the header (a count, length or value runs past the end).
pub const TRUNCATED: &str = "truncated";
/// A tensor or key count larger than the bytes left could hold, or above the limit.
pub const COUNT_TOO_LARGE: &str = "count-too-large";
/// A string that is not UTF-8.
pub const STRING_NOT_UTF8: &str = "string-not-utf8";
/// A metadata value type id outside 0–12.
pub const BAD_VALUE_TYPE: &str = "bad-value-type";
/// A BOOL value byte other than 0 or 1.
pub const BAD_BOOL: &str = "bad-bool";
/// Arrays nested deeper than the limit.
pub const NESTING_TOO_DEEP: &str = "nesting-too-deep";
/// The same metadata key twice.
pub const DUPLICATE_KEY: &str = "duplicate-key";
/// The same tensor name twice.
pub const DUPLICATE_TENSOR: &str = "duplicate-tensor";
/// `general.alignment` that is not a non-zero power of two held in an unsigned integer.
pub const BAD_ALIGNMENT: &str = "bad-alignment";
/// A tensor with more than 4 dimensions.
pub const TOO_MANY_DIMS: &str = "too-many-dims";
/// The element count or byte size of a tensor overflows.
pub const SHAPE_OVERFLOW: &str = "shape-overflow";
/// A ggml type id that was never defined.
pub const UNKNOWN_TYPE: &str = "unknown-type";
/// A ggml type id that ggml has removed (4, 5, 31–33, 36–38).
pub const REMOVED_TYPE: &str = "removed-type";
/// A block-quantized tensor whose first (fastest) dimension is not a multiple of its block size.
pub const PARTIAL_BLOCK: &str = "partial-block";
/// A tensor offset that is not a multiple of the alignment.
pub const MISALIGNED_OFFSET: &str = "misaligned-offset";
/// A tensor whose bytes run past the end of the file.
pub const TENSOR_OUT_OF_BOUNDS: &str = "tensor-out-of-bounds";
/// Two tensors whose bytes overlap.
pub const TENSOR_OVERLAP: &str = "tensor-overlap";
/// A big-endian file holding block-quantized tensors (tools byte-swap them inconsistently).
pub const BIG_ENDIAN_QUANTIZED: &str = "big-endian-quantized";
/// A split model whose parts disagree or are missing.
pub const BAD_SPLIT: &str = "bad-split";
/// Metadata and tensor infos together exceed the header size limit.
pub const HEADER_TOO_LARGE: &str = "header-too-large";
