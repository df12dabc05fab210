//! tensorcast's tensor IR.
//!
//! Every format crate reads into and writes out of the types defined here:
//! [`DType`] (every safetensors dtype plus opaque ggml blocks), [`TensorInfo`],
//! typed [`Metadata`], the [`Source`] and [`Sink`] traits that a conversion flows
//! through one tensor at a time, dtype casts bit-identical to PyTorch, byte
//! sources ([`Bytes`], [`ReadAt`], [`Input`]) that readers read from, write
//! targets ([`WriteTarget`]: atomic local files, memory) that writers write
//! to, and the [`Format`] trait each format crate implements once.
#![deny(missing_docs)]

mod array;
mod atomic;
mod buffer;
mod bytes;
pub mod cast;
pub mod code;
mod crash;
mod dtype;
pub mod edit;
mod error;
mod format;
mod input;
mod limits;
mod location;
mod metadata;
mod metadata_json;
mod multipart;
mod panics;
pub mod parts;
mod pipeline;
mod quant;
mod size;
mod source;
pub mod sparse;
pub mod strided;
mod target;
mod temporaries;
mod tensor;
mod zipcheck;

pub use array::{Array, Strings};
pub use atomic::{file_identity, AtomicFile, Prepared};
pub use buffer::TensorBuf;
pub use bytes::{open_regular, stream_range, Bytes, ChunkStream, Origin, ReadAt, SourceId};
#[doc(hidden)] // for the crash-safety tests (feature crash-points)
pub use crash::{crash_point, CRASH_AT_VAR, FAIL_AT_VAR, PAUSE_AT_VAR, PAUSE_FILE_VAR};
pub use dtype::DType;
pub use error::{Error, ErrorKind, FormatError, Refusal, Result, Subject};
pub use format::InputRole;
pub use format::{zip_first_member, Detection, Format, FormatOptions, Options, Stage};
pub use input::{is_plain_name, Input, LocalDir, MemoryFiles, SiblingFiles};
pub use limits::Limits;
pub use location::{Location, URL_SCHEMES};
pub use metadata::{Metadata, Value, ValueKind};
pub use multipart::MultiPart;
pub use panics::catch_quietly;
pub use pipeline::{check_size, convert, Plan, Sink};
pub use quant::QuantType;
pub use size::parse_size;
pub use source::{RawLocation, Source, TensorData, CHUNK_BYTES};
pub use target::{CommitGroup, FileTarget, MemoryStore, MemoryTarget, TargetWriter, WriteTarget};
pub use temporaries::{register_temporary, remove_temporaries, Registered};
pub use tensor::{element_count, TensorInfo};
pub use zipcheck::{check_zip_entries, check_zip_spans, ZipSpan};
