//! PyTorch checkpoints for tensorcast, read without running anything.
//!
//! - [`vm`]: a pickle virtual machine for protocols 0–5 that only builds
//!   values: globals stay names, calls stay unevaluated nodes, persistent ids
//!   stay data, memo entries are shared (a memo bomb stays small).
//! - [`torch`]: an allowlist interpreter that recognises torch's tensor
//!   rebuild calls and plain containers, refusing every other global.
//! - [`PytorchFile`]: the zip (torch ≥ 1.6) and legacy containers, opened as a
//!   [`tensorcast_core::Source`] with tensors flattened to `state_dict` names.
//!
//! Rule ids (cited as `pytorch/<rule>` in errors) are listed in [`rules`].
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod allowlist;
mod archive;
mod dtypes;
mod flatten;
pub mod opcodes;
mod plugin;
mod ranged;
pub mod rules;
mod source;
mod stdlib;
pub mod torch;
mod view;
pub mod vm;
mod write;

pub use flatten::{FlattenOptions, BARE_TENSOR_NAME};
pub use plugin::Pytorch;
pub use source::{PytorchFile, PytorchOptions};
pub use write::PytorchWriter;

/// The format name used in errors and `inspect`.
pub const FORMAT: &str = "pytorch";
