//! Library use: open whatever arrives (format detected from its bytes), look
//! at it, read one tensor, and convert it with options.
//!
//!     cargo run --example ingest -- fixtures/pytorch/valid/optimizer.pt /tmp/out.safetensors

use std::path::PathBuf;
use tensorcast::{
    convert_file, convert_input, open, ConvertOptions, Input, MemoryStore, OpenOptions, Selection,
};

fn main() -> tensorcast::Result<()> {
    let mut args = std::env::args().skip(1);
    let input = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "fixtures/safetensors/cast/source.safetensors".into()),
    );
    let output = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "/tmp/tensorcast-example.safetensors".into()),
    );

    // Any supported file opens as a Source; nothing in it is executed.
    let source = open(&input, &OpenOptions::default())?;
    println!(
        "{}: {} tensors ({})",
        input.display(),
        source.tensors().len(),
        source.format()
    );
    for w in source.warnings() {
        println!("  warning: {w}");
    }
    if let Some(first) = source.tensors().first() {
        // Bytes are little-endian, row-major, whatever the container held.
        let bytes = source.tensor_data(0)?.into_vec()?;
        println!(
            "  {} {} {:?}: {} bytes",
            first.name,
            first.dtype,
            first.shape,
            bytes.len()
        );
    }

    // Convert: floats to bf16, only weights, written atomically.
    let opts = ConvertOptions {
        dtype: Some("bf16".parse().expect("a dtype")),
        force: true,
        select: Selection {
            exclude: vec!["*num_batches_tracked".into()],
            ..Default::default()
        },
        ..Default::default()
    };
    let report = convert_file(&input, &output, &opts)?;
    println!("wrote {} tensors to {}", report.tensors, output.display());

    // The same conversion without touching the disk: bytes in, bytes out.
    let bytes = std::fs::read(&input).map_err(|e| tensorcast::Error::io(&input, e))?;
    let store = MemoryStore::new();
    convert_input(
        Input::memory(&input, bytes),
        Box::new(store.target("model.tpack")),
        "tpack",
        &opts,
    )?;
    let packed = store.get("model.tpack").unwrap_or_default();
    println!("in memory: {} bytes of tpack", packed.len());
    Ok(())
}
