//! NumPy `.npy` (read) and `.npz` (read and write) as registered [`Format`]s.

use crate::{NpzWriter, NumpyFile};
use tensorcast_core::code;
use tensorcast_core::{
    zip_first_member, Detection, Format, Input, Options, Result, Sink, Source, WriteTarget,
};

/// A single NumPy array (`.npy`), named after the file; read-only.
pub struct Npy;

/// A zip of NumPy arrays (`.npz`), as `numpy.savez` writes.
pub struct Npz;

/// A zip whose first member is a `.npy` (torch zips start with `data.pkl`).
fn is_npz(head: &[u8]) -> bool {
    zip_first_member(head).is_some_and(|n| n.ends_with(b".npy"))
}

fn open(input: Input, options: &Options) -> Result<Box<dyn Source>> {
    Ok(Box::new(NumpyFile::from_bytes(
        &input.name,
        input.bytes,
        &options.limits,
    )?))
}

impl Format for Npy {
    fn name(&self) -> &'static str {
        "npy"
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["npy"]
    }

    fn detect(&self, head: &[u8]) -> Detection {
        Detection::magic(head, b"\x93NUMPY")
    }

    fn open(&self, input: Input, options: &Options) -> Result<Box<dyn Source>> {
        open(input, options)
    }

    fn create(&self, _: Box<dyn WriteTarget>, _: &Options) -> Result<Box<dyn Sink>> {
        Err(tensorcast_core::Error::unsupported(
            code::READ_ONLY,
            "a .npy holds one array; write .npz (a zip of .npy arrays) instead",
        ))
    }
}

impl Format for Npz {
    fn name(&self) -> &'static str {
        "npz"
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["npz"]
    }

    fn detect(&self, head: &[u8]) -> Detection {
        if is_npz(head) {
            Detection::Strong
        } else {
            Detection::No
        }
    }

    fn open(&self, input: Input, options: &Options) -> Result<Box<dyn Source>> {
        open(input, options)
    }

    fn rewrites_output(&self) -> bool {
        true
    }

    fn can_write(&self) -> bool {
        true
    }

    fn create(&self, target: Box<dyn WriteTarget>, _: &Options) -> Result<Box<dyn Sink>> {
        Ok(Box::new(NpzWriter::to_target(target)))
    }
}
