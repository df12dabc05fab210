#![no_main]
//! NumPy: .npy headers, .npz zips (stored and deflated), every array read.
mod common;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = tensorcast_core::Limits::default();
    if let Ok(f) = tensorcast_numpy::NumpyFile::from_bytes("f.npy".as_ref(), data.to_vec().into(), &limits) {
        common::read_all(&f, data.len());
    }
});
