//! Object stores for tensorcast: a URL (`s3://`, `gs://`, `az://`,
//! `http(s)://`, `hf://`) read by range ([`RemoteObject`], a
//! [`ReadAt`](tensorcast_core::ReadAt) whose version is pinned at open) and
//! written as a multipart upload that appears only when complete
//! ([`UploadTarget`], a [`WriteTarget`](tensorcast_core::WriteTarget)),
//! through Apache Arrow's `object_store` crate and configured the way its
//! users configure their tools (`AWS_*`, `GOOGLE_*`, `AZURE_*`, `HF_ENDPOINT`,
//! `HF_TOKEN`).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod error;
mod list;
mod location;
mod object;
mod runtime;
mod upload;

pub use list::{list, stat, Listed};
pub use location::{is_url, Location};
pub use object::{RemoteObject, PIECE_BYTES};
pub use upload::{UploadTarget, PART_BYTES};
