#![no_main]
//! ONNX: the protobuf decode (prost), initializer validation, every tensor read.
mod common;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = tensorcast_core::Limits::default();
    let input = tensorcast_core::Input::memory("m.onnx", data.to_vec());
    if let Ok(f) = tensorcast_onnx::OnnxFile::from_input(input, &limits) {
        common::read_all(&f, data.len());
    }
});
