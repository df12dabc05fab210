#![no_main]
//! HDF5: superblocks, object headers, B-trees and chunk indexes, filters,
//! every dataset read. Datasets decode whole, bounded by --max-alloc: here
//! by 256x the input (at most 32 MiB), the budget common::read_all checks.
mod common;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = tensorcast_core::Limits {
        max_alloc_bytes: (256 * data.len() as u64 + (1 << 20)).min(32 << 20),
        ..Default::default()
    };
    if let Ok(f) = tensorcast_hdf5::Hdf5File::from_bytes(
        "f.h5".as_ref(),
        data.to_vec().into(),
        &limits,
        Default::default(),
    ) {
        common::read_all(&f, data.len());
    }
});
