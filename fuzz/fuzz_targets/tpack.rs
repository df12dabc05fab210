#![no_main]
//! tpack: slots, manifest, chunks (crc, codecs), verify, and byte-range reads
//! checked against whole-tensor reads.
mod common;
use libfuzzer_sys::fuzz_target;
use tensorcast_core::Source;

fuzz_target!(|data: &[u8]| {
    let limits = tensorcast_core::Limits::default();
    if let Ok(f) = tensorcast_tpack::TpackFile::from_bytes("f".as_ref(), data.to_vec().into(), &limits) {
        let _ = f.verify();
        // Chunks decode to at most what the manifest says, and every chunk
        // lies in the file, so output is bounded by the compression ratio.
        for i in 0..f.tensors().len() {
            let Ok(whole) = f.tensor_data(i).and_then(|d| d.into_vec()) else {
                continue;
            };
            // A range read (a third of the way in, up to 1 MiB) gives the
            // same bytes as the whole read.
            let start = whole.len() / 3;
            let len = (whole.len() - start).min(1 << 20);
            let mut part = vec![0u8; len];
            f.read_range(i, start as u64, &mut part)
                .expect("a tensor that reads whole reads in part");
            assert!(part == whole[start..start + len]);
        }
    }
});
