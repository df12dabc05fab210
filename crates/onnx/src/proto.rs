//! The parts of onnx.proto (ONNX IR) that hold weights, as prost messages.
//! Fields a converter does not need (nodes, value infos, functions) are not
//! declared, so decoding skips them without allocating anything for them.

use bytes::Bytes;

/// `ModelProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Model {
    /// `ir_version`.
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    /// `producer_name`.
    #[prost(string, tag = "2")]
    pub producer_name: String,
    /// `producer_version`.
    #[prost(string, tag = "3")]
    pub producer_version: String,
    /// `domain`.
    #[prost(string, tag = "4")]
    pub domain: String,
    /// `model_version`.
    #[prost(int64, tag = "5")]
    pub model_version: i64,
    /// `doc_string`.
    #[prost(string, tag = "6")]
    pub doc_string: String,
    // `graph` (7) is not decoded here: the reader walks it on the wire
    // (wire.rs) and decodes one initializer at a time.
    /// `opset_import`.
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSet>,
    /// `metadata_props`.
    #[prost(message, repeated, tag = "14")]
    pub metadata_props: Vec<StringPair>,
}

/// `OperatorSetIdProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSet {
    /// `domain` ("" is the default ONNX domain).
    #[prost(string, tag = "1")]
    pub domain: String,
    /// `version`.
    #[prost(int64, tag = "2")]
    pub version: i64,
}

/// `StringStringEntryProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StringPair {
    /// `key`.
    #[prost(string, tag = "1")]
    pub key: String,
    /// `value`.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `GraphProto`: only its name (initializers are found on the wire).
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphName {
    /// `name`.
    #[prost(string, tag = "2")]
    pub name: String,
}

/// `SparseTensorProto`: only what names it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SparseTensor {
    /// `values` (its name is the sparse tensor's).
    #[prost(message, optional, tag = "1")]
    pub values: Option<Tensor>,
}

/// `TensorProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Tensor {
    /// `dims`.
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    /// `data_type` (`TensorProto.DataType`).
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    /// `segment` (a tensor split across protos; refused).
    #[prost(message, optional, tag = "3")]
    pub segment: Option<Segment>,
    /// `float_data`: FLOAT, COMPLEX64.
    #[prost(float, repeated, tag = "4")]
    pub float_data: Vec<f32>,
    /// `int32_data`: INT32, INT16, INT8, UINT16, UINT8, BOOL, FLOAT16,
    /// BFLOAT16, the FLOAT8 types, INT4/UINT4 (the bits, zero-extended).
    #[prost(int32, repeated, tag = "5")]
    pub int32_data: Vec<i32>,
    /// `string_data`: STRING (refused: not numbers).
    #[prost(bytes = "bytes", repeated, tag = "6")]
    pub string_data: Vec<Bytes>,
    /// `int64_data`: INT64.
    #[prost(int64, repeated, tag = "7")]
    pub int64_data: Vec<i64>,
    /// `name`.
    #[prost(string, tag = "8")]
    pub name: String,
    /// `raw_data`: the elements, little-endian, packed.
    #[prost(bytes = "bytes", tag = "9")]
    pub raw_data: Bytes,
    /// `double_data`: DOUBLE, COMPLEX128.
    #[prost(double, repeated, tag = "10")]
    pub double_data: Vec<f64>,
    /// `uint64_data`: UINT32, UINT64.
    #[prost(uint64, repeated, tag = "11")]
    pub uint64_data: Vec<u64>,
    /// `external_data`: `location`, `offset`, `length`, `checksum`.
    #[prost(message, repeated, tag = "13")]
    pub external_data: Vec<StringPair>,
    /// `data_location`: 0 DEFAULT, 1 EXTERNAL.
    #[prost(int32, tag = "14")]
    pub data_location: i32,
}

/// `TensorProto.Segment`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Segment {
    /// `begin`.
    #[prost(int64, tag = "1")]
    pub begin: i64,
    /// `end`.
    #[prost(int64, tag = "2")]
    pub end: i64,
}
