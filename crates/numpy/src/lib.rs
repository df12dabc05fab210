//! NumPy arrays for tensorcast: `.npy` and `.npz` (stored or deflated
//! members) read as a [`tensorcast_core::Source`] — big-endian and
//! Fortran-order arrays come out little-endian row-major, object arrays are
//! refused without unpickling — and `.npz` written by [`NpzWriter`].
#![deny(missing_docs)]
#![forbid(unsafe_code)]

#[doc(hidden)] // public for the fixture tests
pub mod header;
mod plugin;
mod read;
pub mod rules;
mod write;

pub use plugin::{Npy, Npz};
pub use read::NumpyFile;
pub use write::{check_plan, NpzWriter};

/// The format name used in errors.
pub const FORMAT: &str = "numpy";
