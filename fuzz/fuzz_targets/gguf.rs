#![no_main]
//! The GGUF reader, then every tensor dequantized as a conversion would.
mod common;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = tensorcast_core::Limits::default();
    if let Ok(f) = tensorcast_gguf::GgufFile::from_bytes("f".as_ref(), data.to_vec().into(), &limits) {
        common::read_all(&f, data.len());
        let boxed: Box<dyn tensorcast_core::Source> = Box::new(f);
        if let Ok(d) = tensorcast_quant::Dequantize::new(boxed) {
            common::read_all(&d, data.len() * 32);
        }
    }
});
