//! HDF5 for tensorcast: `.h5`/`.hdf5` files, Keras 3's `*.weights.h5` and
//! `.keras` archives (through their `model.weights.h5` member) read as a
//! [`tensorcast_core::Source`]. Every numeric dataset is a tensor named by its
//! path without the leading `/`; root attributes are the file's metadata.
//! Strings, compounds, variable-length data and references are listed and
//! refused per tensor by name.
//!
//! The HDF5 structure is decoded by the pure-Rust `hdf5-reader` crate (no
//! libhdf5), bounded by tensorcast's [`tensorcast_core::Limits`]: object
//! headers by the header limit, a dataset's decoded bytes (chunked and
//! filtered datasets are decoded whole) by the allocation limit, the group
//! walk by the depth and tensor-count limits, with hard-link cycles refused.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod plugin;
mod read;
pub mod rules;

pub use plugin::{Hdf5, Keras};
pub use read::Hdf5File;

/// The format name used in errors.
pub const FORMAT: &str = "hdf5";
