//! Cast kernels over 16 MiB of input per dtype pair (criterion).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tensorcast::{cast::cast_slice, DType};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("cast");
    let pairs = [
        (DType::F32, DType::BF16),
        (DType::F32, DType::F16),
        (DType::BF16, DType::F32),
        (DType::F16, DType::F32),
        (DType::F32, DType::F8E4M3),
        (DType::F64, DType::F16),
    ];
    for (from, to) in pairs {
        let size = from.byte_size().unwrap();
        let mut seed = 0x1234_5678_9abc_def0u64;
        // Random-normal-ish values: sum of uniforms, scaled.
        let n = (16 << 20) / size;
        let mut input = Vec::with_capacity(n * size);
        for _ in 0..n {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let v = ((seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.04;
            match from {
                DType::F64 => input.extend_from_slice(&v.to_le_bytes()),
                DType::F32 => input.extend_from_slice(&(v as f32).to_le_bytes()),
                _ => input.extend_from_slice(&((v as f32).to_bits() >> 16).to_le_bytes()[..2]),
            }
        }
        group.throughput(Throughput::Bytes(input.len() as u64));
        let mut out = Vec::with_capacity(n * 8);
        group.bench_function(format!("{from}->{to}"), |b| {
            b.iter(|| {
                out.clear();
                cast_slice(from, to, &input, &mut out).unwrap();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
