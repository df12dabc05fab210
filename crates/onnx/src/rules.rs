//! The rules an ONNX model can break, as error rule ids.

/// The bytes are not a protobuf `ModelProto`.
pub const NOT_A_MODEL: &str = "not-a-model";
/// The model has no graph.
pub const NO_GRAPH: &str = "no-graph";
/// An initializer without a name, or a name used twice.
pub const NAME: &str = "initializer-name";
/// A data type the IR has no place for (strings, 4-bit integers, complex128…).
pub const DTYPE: &str = "unsupported-dtype";
/// A negative dimension, or a shape whose size overflows.
pub const SHAPE: &str = "bad-shape";
/// raw_data, typed values or external bytes that do not match the shape.
pub const SIZE: &str = "data-size";
/// Data in more than one place, or in a segment.
pub const DATA: &str = "data-location";
/// An external data location that is not one plain file name beside the
/// model (an absolute path, `..`, a sub-folder): refused, never followed.
pub const EXTERNAL_PATH: &str = "external-path";
/// An external data range outside its file, or a malformed offset/length.
pub const EXTERNAL_RANGE: &str = "external-range";
/// Sparse initializers (not held by the IR yet).
pub const SPARSE: &str = "sparse-initializer";
/// An external data file that is not there (or cannot be opened).
pub const EXTERNAL_MISSING: &str = "external-missing";
/// More initializers, metadata entries or nested subgraphs than the limits
/// allow, counted before decoding.
pub const COUNT: &str = "count";
