//! Rule ids a safetensors reader error can cite (`safetensors/<id>`).

/// Fewer than the 8 bytes of the header length.
pub const FILE_TOO_SMALL: &str = "file-too-small";
/// Header length above the limit (100 MB by default, as in the reference).
pub const HEADER_TOO_LARGE: &str = "header-too-large";
/// Header length runs past the end of the file.
pub const HEADER_OUT_OF_BOUNDS: &str = "header-out-of-bounds";
/// Header bytes are not UTF-8.
pub const HEADER_NOT_UTF8: &str = "header-not-utf8";
/// Header is not valid JSON.
pub const HEADER_NOT_JSON: &str = "header-not-json";
/// Header is JSON but not an object.
pub const HEADER_NOT_OBJECT: &str = "header-not-object";
/// `__metadata__` is not a map of strings to strings.
pub const METADATA_NOT_STRING_MAP: &str = "metadata-not-string-map";
/// A tensor entry lacks `dtype`, `shape` or `data_offsets`, or has the wrong types.
pub const TENSOR_ENTRY_INVALID: &str = "tensor-entry-invalid";
/// A dtype name safetensors does not define.
pub const UNKNOWN_DTYPE: &str = "unknown-dtype";
/// The same tensor name twice.
pub const DUPLICATE_NAME: &str = "duplicate-name";
/// A tensor with an empty name.
pub const EMPTY_NAME: &str = "empty-name";
/// More tensors than the limit.
pub const TOO_MANY_TENSORS: &str = "too-many-tensors";
/// The element count, or its size in bits, overflows 64 bits.
pub const SHAPE_OVERFLOW: &str = "shape-overflow";
/// The tensor's size in bits is not a whole number of bytes.
pub const PARTIAL_BYTE: &str = "partial-byte";
/// `data_offsets` start after they end.
pub const OFFSETS_REVERSED: &str = "offsets-reversed";
/// `end - start` differs from element count × dtype size.
pub const SIZE_MISMATCH: &str = "size-mismatch";
/// A tensor starts after the previous one ends (or the first after 0).
pub const DATA_GAP: &str = "data-gap";
/// A tensor starts before the previous one ends.
pub const DATA_OVERLAP: &str = "data-overlap";
/// The data buffer does not end exactly at the end of the file.
pub const FILE_SIZE_MISMATCH: &str = "file-size-mismatch";
/// A sharded index is malformed (not JSON, no `weight_map`, non-string file names).
pub const INDEX_INVALID: &str = "index-invalid";
/// A shard file name in an index leaves the index's directory.
pub const SHARD_PATH_ESCAPES: &str = "shard-path-escapes";
/// A tensor listed in `weight_map` is missing from its shard.
pub const INDEX_TENSOR_MISSING: &str = "index-tensor-missing";
/// A shard holds a tensor the index does not map to it.
pub const INDEX_TENSOR_UNLISTED: &str = "index-tensor-unlisted";
/// An stsw file whose header was cut: stsw 1.0 with `crc32=True` rewrites a
/// longer header over the space it reserved (a known stsw bug), overwriting
/// the first data bytes too.
pub const STSW_HEADER_OVERRUN: &str = "stsw-header-overrun";
/// An stsw file stsw never finished (`"__incomplete__": true`).
pub const STSW_INCOMPLETE: &str = "stsw-incomplete";
/// A tensor's bytes do not match the `crc32` stsw recorded for it (neither
/// as zlib CRC-32 nor as XXH32, which stsw 1.0 writes there when the
/// `xxhash` module is installed).
pub const STSW_CRC: &str = "stsw-crc";
/// An stsw-only field (`crc32`) in a file that does not say it is stsw.
pub const NOT_STSW: &str = "stsw-field-outside-stsw";
