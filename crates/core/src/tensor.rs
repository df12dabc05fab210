//! Tensor descriptors.

use crate::DType;

/// One tensor as a source describes it, before any byte is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// Full name, e.g. `model.layers.0.self_attn.q_proj.weight`.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Logical shape, row-major, outermost dimension first. Empty for a 0-dim tensor.
    pub shape: Vec<u64>,
    /// Stored size in bytes (element count × dtype size, or whole blocks).
    pub nbytes: u64,
    /// Where the bytes sit unchanged in the source file, as a byte offset into
    /// that file; `None` when they must be decoded or computed.
    pub file_offset: Option<u64>,
    /// Set for a sparse tensor (COO, CSR): `shape` is then the dense shape,
    /// `dtype` the values', and the bytes are the parts (see
    /// [`crate::sparse`]).
    pub sparse: Option<Box<crate::sparse::Sparse>>,
    /// Set when the reader can name the tensor and its shape but not hand
    /// out its elements: a type no format here holds (torch's quantized or
    /// complex32 tensors, a .zt logical type without a dtype). The text
    /// names the type; `dtype` (U8) and `nbytes` (0) are placeholders.
    /// `inspect` lists such tensors; conversions refuse them by name unless
    /// they are excluded.
    pub unreadable: Option<String>,
}

impl TensorInfo {
    /// A descriptor whose byte size is derived from dtype and shape; `None`
    /// when the size overflows or is not a whole number of bytes.
    pub fn new(name: impl Into<String>, dtype: DType, shape: Vec<u64>) -> Option<TensorInfo> {
        let nbytes = dtype.storage_bytes(element_count(&shape)?)?;
        Some(TensorInfo {
            name: name.into(),
            dtype,
            shape,
            nbytes,
            file_offset: None,
            sparse: None,
            unreadable: None,
        })
    }

    /// A tensor the reader lists but cannot read: see [`TensorInfo::unreadable`].
    /// `None` when the shape's element count overflows (the shape comes from
    /// the file, and every total of a listing adds it up).
    pub fn unreadable(
        name: impl Into<String>,
        shape: Vec<u64>,
        type_name: impl Into<String>,
    ) -> Option<TensorInfo> {
        element_count(&shape)?;
        Some(TensorInfo {
            name: name.into(),
            dtype: crate::DType::U8,
            shape,
            nbytes: 0,
            file_offset: None,
            sparse: None,
            unreadable: Some(type_name.into()),
        })
    }

    /// The error converting an unreadable tensor of a `format` file gives
    /// (`None` for others), under the rule `<format>/unsupported-dtype`.
    pub fn unreadable_error(&self, format: &'static str) -> Option<crate::Error> {
        self.unreadable.as_ref().map(|t| {
            crate::FormatError::new(
                format,
                "unsupported-dtype",
                format!(
                    "{t} elements, which tensorcast does not read; leaving the tensor out converts the rest"
                ),
            )
            .tensor(&self.name)
            .into()
        })
    }

    /// Number of elements (1 for a 0-dim tensor).
    pub fn numel(&self) -> u64 {
        // Constructors validated the product; saturate rather than trust callers.
        element_count(&self.shape).unwrap_or(u64::MAX)
    }
}

/// Product of the dimensions with overflow checking (1 for an empty shape).
pub fn element_count(shape: &[u64]) -> Option<u64> {
    shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
}
