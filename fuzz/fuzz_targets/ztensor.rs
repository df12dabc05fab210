#![no_main]
//! zTensor v2: footer, deterministic CBOR manifest, blob rules, every tensor
//! read (zstd-seekable parts decoded).
mod common;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = tensorcast_core::Limits::default();
    if let Ok(f) = tensorcast_ztensor::ZtFile::from_bytes("f.zt".as_ref(), data.to_vec().into(), &limits) {
        common::read_all(&f, data.len());
        let _ = f.verify();
    }
});
