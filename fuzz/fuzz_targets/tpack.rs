#![no_main]
//! tpack: slots, manifest, chunks (crc, codecs), verify.
mod common;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = tensorcast_core::Limits::default();
    if let Ok(f) = tensorcast_tpack::TpackFile::from_bytes("f".as_ref(), data.to_vec().into(), &limits) {
        let _ = f.verify();
        // Chunks decode to at most what the manifest says, and every chunk
        // lies in the file, so output is bounded by the compression ratio.
        for i in 0..tensorcast_core::Source::tensors(&f).len() {
            if let Ok(d) = tensorcast_core::Source::tensor_data(&f, i) {
                let _ = d.for_each_chunk(|_| Ok(()));
            }
        }
    }
});
