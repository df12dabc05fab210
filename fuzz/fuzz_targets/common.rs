// Shared by the targets: read every tensor of an opened source, as a
// conversion would, and insist the output is bounded by the input.
use tensorcast_core::Source;

pub fn read_all(source: &dyn Source, input_len: usize) {
    let mut total = 0u64;
    for i in 0..source.tensors().len() {
        if let Ok(data) = source.tensor_data(i) {
            let _ = data.for_each_chunk(|c| {
                total += c.len() as u64;
                Ok(())
            });
        }
    }
    // Dequantization grows blocks at most 32x and torch views at most 256x.
    assert!(total <= 256 * input_len as u64 + (1 << 20), "{total} bytes out of {input_len}");
}
