#![no_main]
//! Torch checkpoints: zip and legacy containers, views, sparse tensors
//! (kept, their indices checked, then densified), every tensor read.
mod common;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = tensorcast_pickle::PytorchOptions { lenient: true, ..Default::default() };
    if let Ok(f) = tensorcast_pickle::PytorchFile::from_bytes("f.pt".as_ref(), data.to_vec().into(), &opts) {
        common::read_all(&f, data.len());
        // A dense form may be far larger than the file (zeros): bounded by
        // the allocation limit, not by the input's size.
        let limits = tensorcast_core::Limits { max_alloc_bytes: 16 << 20, ..Default::default() };
        if let Ok(dense) = tensorcast_core::sparse::Densify::new(f, limits) {
            for i in 0..tensorcast_core::Source::tensors(&dense).len() {
                if let Ok(d) = tensorcast_core::Source::tensor_data(&dense, i) {
                    let _ = d.for_each_chunk(|_| Ok(()));
                }
            }
        }
    }
});
