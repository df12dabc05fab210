#![no_main]
//! Whole pipeline: any bytes, detected like a file on disk, opened, adapted
//! and converted to safetensors.
use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("tensorcast-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let input = dir.join("input.bin");
    let output = dir.join("out.safetensors");
    let Ok(mut f) = std::fs::File::create(&input) else { return };
    if f.write_all(data).is_err() {
        return;
    }
    drop(f);
    let opts = tensorcast::ConvertOptions { force: true, ..Default::default() };
    let _ = tensorcast::convert_file(&input, &output, &opts);
});
