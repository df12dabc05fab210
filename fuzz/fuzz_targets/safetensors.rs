#![no_main]
//! The safetensors reader: header rules and tensor ranges.
mod common;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = tensorcast_core::Limits::default();
    if let Ok(f) = tensorcast_safetensors::SafetensorsFile::from_bytes("f".as_ref(), data.to_vec().into(), &limits) {
        common::read_all(&f, data.len());
    }
});
