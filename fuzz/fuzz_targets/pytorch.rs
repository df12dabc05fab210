#![no_main]
//! Torch checkpoints: zip and legacy containers, views, sparse tensors
//! densified, every tensor read.
mod common;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = tensorcast_pickle::PytorchOptions { lenient: true, densify: true, ..Default::default() };
    if let Ok(f) = tensorcast_pickle::PytorchFile::from_bytes("f.pt".as_ref(), data.to_vec().into(), &opts) {
        common::read_all(&f, data.len());
    }
});
