//! ggml block-quantized types, known to the IR as opaque blocks.
//!
//! The IR only needs each type's identity and block geometry to size and
//! carry tensors; decoding lives in the GGUF crate.

/// A ggml block-quantized type: `block_elems` elements stored in `block_bytes` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QuantType {
    ggml_id: u32,
}

/// (ggml type id, name, elements per block, bytes per block). ggml's `ggml.h`
/// and `ggml.c` type traits are the source of these numbers.
const TABLE: &[(u32, &str, u32, u32)] = &[
    (2, "Q4_0", 32, 18),
    (3, "Q4_1", 32, 20),
    (6, "Q5_0", 32, 22),
    (7, "Q5_1", 32, 24),
    (8, "Q8_0", 32, 34),
    (9, "Q8_1", 32, 36),
    (10, "Q2_K", 256, 84),
    (11, "Q3_K", 256, 110),
    (12, "Q4_K", 256, 144),
    (13, "Q5_K", 256, 176),
    (14, "Q6_K", 256, 210),
    (15, "Q8_K", 256, 292),
    (16, "IQ2_XXS", 256, 66),
    (17, "IQ2_XS", 256, 74),
    (18, "IQ3_XXS", 256, 98),
    (19, "IQ1_S", 256, 50),
    (20, "IQ4_NL", 32, 18),
    (21, "IQ3_S", 256, 110),
    (22, "IQ2_S", 256, 82),
    (23, "IQ4_XS", 256, 136),
    (29, "IQ1_M", 256, 56),
    (34, "TQ1_0", 256, 54),
    (35, "TQ2_0", 256, 66),
    (39, "MXFP4", 32, 17),
    (40, "NVFP4", 64, 36),
    (41, "Q1_0", 128, 18),
    (42, "Q2_0", 64, 18),
];

impl QuantType {
    fn row(self) -> &'static (u32, &'static str, u32, u32) {
        // Constructors only hand out ids present in TABLE.
        TABLE.iter().find(|r| r.0 == self.ggml_id).unwrap_or(&TABLE[0])
    }

    /// The block type with ggml type id `id`, if it is a block type ggml knows.
    pub fn from_ggml_id(id: u32) -> Option<QuantType> {
        TABLE
            .iter()
            .find(|r| r.0 == id)
            .map(|r| QuantType { ggml_id: r.0 })
    }

    /// The block type named `name` (ggml spelling, case-insensitive).
    pub fn from_name(name: &str) -> Option<QuantType> {
        TABLE
            .iter()
            .find(|r| r.1.eq_ignore_ascii_case(name))
            .map(|r| QuantType { ggml_id: r.0 })
    }

    /// Every block type, in ggml id order.
    pub fn all() -> impl Iterator<Item = QuantType> {
        TABLE.iter().map(|r| QuantType { ggml_id: r.0 })
    }

    /// ggml's numeric type id.
    pub fn ggml_id(self) -> u32 {
        self.ggml_id
    }

    /// ggml's name for the type (`Q4_K`).
    pub fn name(self) -> &'static str {
        self.row().1
    }

    /// Elements per block.
    pub fn block_elems(self) -> u32 {
        self.row().2
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> u32 {
        self.row().3
    }
}
