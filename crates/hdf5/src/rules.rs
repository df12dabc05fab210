//! Rule ids an HDF5 reader error can cite (`hdf5/<id>`).

/// The file is not HDF5, or its structure cannot be decoded.
pub const STRUCTURE: &str = "structure";
/// A dataset's element type tensorcast does not hold (strings, compounds,
/// variable-length data, references, opaque or bitfield types).
pub const DTYPE: &str = "dtype";
/// A dataset whose data cannot be read (a missing chunk index, a filter
/// that fails or is not supported, a checksum mismatch).
pub const READ: &str = "read";
/// A dataset's size overflows or disagrees with its type and shape.
pub const SIZE: &str = "size";
/// Groups nested deeper than `Limits::max_depth`, or linked in a cycle.
pub const DEPTH: &str = "depth";
/// More datasets than `Limits::max_tensors`.
pub const COUNT: &str = "count";
/// A dataset decoded whole would need more than `Limits::max_alloc_bytes`.
pub const ALLOC_LIMIT: &str = "alloc-limit";
/// A `.keras` archive that is not a readable zip holding `model.weights.h5`.
pub const ARCHIVE: &str = "archive";
