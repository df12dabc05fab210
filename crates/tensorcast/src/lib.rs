//! tensorcast's library facade: one [`Registry`] of formats (each a crate
//! implementing [`Format`], one cargo feature each), opening any input as a
//! [`Source`] (format detected from its bytes), and converting into any
//! writable format, from and to files or memory.
//!
//! ```no_run
//! use tensorcast::{convert_file, ConvertOptions};
//! # fn main() -> tensorcast::Result<()> {
//! let opts = ConvertOptions { dtype: Some("bf16".parse().unwrap()), ..Default::default() };
//! convert_file("model.safetensors", "model-bf16.safetensors", &opts)?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod batch;
mod convert;
mod diff;
pub(crate) mod digest;
mod imatrix;
mod inspect;
#[cfg(feature = "merge")]
pub mod merge;
#[cfg(feature = "merge")]
mod merge_vocab;
mod progress;
mod refs;
mod registry;
pub mod remote;
mod select;
mod zarr_manifest;

pub use batch::{
    check_batch, jobs_from_dir, jobs_from_list, jobs_from_prefix, run_batch, take_shard, Job, Outcome, Shard,
    Status,
};
pub use convert::{
    adapt, convert_file, convert_input, occupied, write_source, ConvertOptions, Digests, Report,
};
pub use diff::{diff, Difference, Tolerance};
pub use digest::{digest, ContentId, Digest, TensorDigest, DIGEST_SCHEME};
pub use imatrix::load_imatrix;
pub use inspect::{inspect_json, inspect_table, write_inspect_table, Inspection};
pub use progress::{Progress, ProgressHook, ProgressSink};
pub use refs::{references, references_file, Refs, RefsOptions, DEFAULT_CHUNK_BYTES};
pub use registry::{detect, Registry};
pub use select::{glob, Select, Selection};
pub use tensorcast_core::edit::{EditReport, MetaEdit};
pub use tensorcast_core::{
    cast, convert, sparse, Array, Bytes, DType, Detection, Error, ErrorKind, FileTarget, Format, FormatError,
    FormatOptions, Input, InputRole, Limits, Location, MemoryFiles, MemoryStore, MemoryTarget, Metadata,
    MultiPart, Options, Plan, QuantType, RawLocation, ReadAt, Refusal, Result, SiblingFiles, Sink, Source,
    Stage, Strings, Subject, TensorBuf, TensorData, TensorInfo, Value, ValueKind, WriteTarget,
};
pub use tensorcast_core::{code, parts, remove_temporaries};
pub use zarr_manifest::{
    decodable, decode_to_f32, elements_in, zarr_manifest, Encoding, Load, LoadedArray, ManifestOptions,
    VirtualArray, ZarrManifest,
};

#[doc(hidden)] // for the crash-safety tests (feature crash-points)
pub use tensorcast_core::{CRASH_AT_VAR, PAUSE_AT_VAR, PAUSE_FILE_VAR};

/// Options for opening inputs: the limits and each format's reading options.
pub type OpenOptions = Options;

#[cfg(feature = "gguf")]
pub use tensorcast_gguf as gguf;
#[cfg(feature = "hdf5")]
pub use tensorcast_hdf5 as hdf5;
#[cfg(feature = "model")]
pub use tensorcast_model as model;
#[cfg(feature = "numpy")]
pub use tensorcast_numpy as numpy;
#[cfg(feature = "onnx")]
pub use tensorcast_onnx as onnx;
#[cfg(feature = "pytorch")]
pub use tensorcast_pickle as pytorch;
pub use tensorcast_quant as quant;
pub use tensorcast_quant::FileType;
#[cfg(feature = "safetensors")]
pub use tensorcast_safetensors as safetensors;
#[cfg(feature = "tpack")]
pub use tensorcast_tpack as tpack;
#[cfg(feature = "ztensor")]
pub use tensorcast_ztensor as ztensor;

/// Parses a size like `5GB` (decimal, as Hugging Face uses), `2GiB` or a
/// plain byte count.
pub use tensorcast_core::parse_size;

/// Opens the local file at `path` with the built-in formats. A directory is
/// a Hugging Face model folder: its weights file (`model.safetensors`, the
/// sharded index or `pytorch_model.bin`) opens with the names it holds.
pub fn open(location: impl Into<Location>, options: &Options) -> Result<Box<dyn Source>> {
    Registry::builtin().open(location, options)
}

/// Edits the metadata of the local file `input` with the built-in formats
/// (GGUF key/values, safetensors `__metadata__`, tpack metadata): every
/// tensor byte unchanged, the data region shared with the input where the
/// file system can (spec in `tensorcast_core::edit`); into `output`, or
/// replacing `input` atomically when `output` is `None`.
pub fn edit(
    input: &std::path::Path,
    edits: &[MetaEdit],
    output: Option<&std::path::Path>,
    force: bool,
    limits: &Limits,
) -> Result<EditReport> {
    Registry::builtin().edit(input, edits, output, force, limits)
}

/// Checks the whole local file at `path` with the built-in formats and the
/// limits in `options`: one line per damaged part.
pub fn verify(location: impl Into<Location>, options: &Options) -> Result<Vec<String>> {
    Registry::builtin().verify(location, options)
}
