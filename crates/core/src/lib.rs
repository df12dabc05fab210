//! tensorcast's tensor IR.
//!
//! Every format crate reads into and writes out of the types defined here:
//! [`DType`] (every safetensors dtype plus opaque ggml blocks), [`TensorInfo`],
//! typed [`Metadata`], the [`Source`] and [`Sink`] traits that a conversion flows
//! through one tensor at a time, dtype casts bit-identical to PyTorch, and
//! [`AtomicFile`] for outputs that appear all at once or not at all.
#![deny(missing_docs)]

mod atomic;
mod buffer;
mod bytes;
pub mod cast;
mod dtype;
mod error;
mod limits;
mod metadata;
mod pipeline;
mod quant;
mod source;
pub mod strided;
mod tensor;

pub use atomic::{file_identity, AtomicFile};
pub use buffer::TensorBuf;
pub use bytes::Bytes;
pub use dtype::DType;
pub use error::{Error, FormatError, Result, Subject};
pub use limits::Limits;
pub use metadata::{Metadata, Value, ValueKind};
pub use pipeline::{check_size, convert, Plan, Sink};
pub use quant::QuantType;
pub use source::{Source, TensorData, CHUNK_BYTES};
pub use tensor::{element_count, TensorInfo};
