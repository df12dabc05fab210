//! ggml tensor type ids ↔ IR dtypes.

use tensorcast_core::{DType, QuantType};

/// Plain (one element per value) ggml types: id → dtype.
const PLAIN: [(u32, DType); 8] = [
    (0, DType::F32),
    (1, DType::F16),
    (24, DType::I8),
    (25, DType::I16),
    (26, DType::I32),
    (27, DType::I64),
    (28, DType::F64),
    (30, DType::BF16),
];

/// Ids ggml defined once and removed.
pub(crate) const REMOVED: [u32; 8] = [4, 5, 31, 32, 33, 36, 37, 38];

/// The IR dtype of ggml type `id`.
pub(crate) fn dtype_of(id: u32) -> Option<DType> {
    PLAIN
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, d)| *d)
        .or_else(|| QuantType::from_ggml_id(id).map(DType::Quant))
}

/// The ggml type id GGUF uses for `dtype`, if GGUF can hold it.
pub fn ggml_type_id(dtype: DType) -> Option<u32> {
    match dtype {
        DType::Quant(q) => Some(q.ggml_id()),
        d => PLAIN.iter().find(|(_, p)| *p == d).map(|(i, _)| *i),
    }
}

/// ggml's name for type `id` (`F32`, `Q4_K`), or `None` for unknown ids.
pub fn ggml_type_name(id: u32) -> Option<&'static str> {
    dtype_of(id).map(DType::name)
}
