//! tensorcast's library facade: open any supported file as a [`Source`]
//! (format detected from its bytes), and convert it into any writer.
//!
//! ```no_run
//! use tensorcast::{convert_file, ConvertOptions};
//! # fn main() -> tensorcast::Result<()> {
//! let opts = ConvertOptions { dtype: Some("bf16".parse().unwrap()), ..Default::default() };
//! convert_file("model.safetensors".as_ref(), "model-bf16.safetensors".as_ref(), &opts)?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod batch;
mod convert;
mod detect;
mod diff;
mod inspect;
mod open;
mod progress;
mod select;

pub use batch::{jobs_from_dir, jobs_from_list, run_batch, Job, Outcome};
pub use convert::{adapt, convert_file, create_sink, tpack_level, ConvertOptions, Report};
pub use detect::{detect, Format};
pub use diff::{diff, Difference, Tolerance};
pub use inspect::{inspect_json, inspect_table, verify};
pub use open::{open, OpenOptions};
pub use progress::{Progress, ProgressHook, ProgressSink};
pub use select::{glob, Select, Selection};
pub use tensorcast_core::{
    cast, convert, DType, Error, FormatError, Limits, Metadata, Plan, QuantType, Result, Sink, Source,
    TensorBuf, TensorData, TensorInfo, Value,
};
pub use tensorcast_safetensors::parse_size;
pub use tensorcast_tpack as tpack;
