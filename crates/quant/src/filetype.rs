//! llama.cpp's file types (`llama_ftype`): the names `llama-quantize`
//! takes, the id it writes as `general.file_type`, and the block type each
//! one starts every tensor from before the per-tensor plan adjusts it.

use tensorcast_core::{DType, QuantType};

/// A `llama-quantize` file type, such as Q4_K_M.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileType {
    name: &'static str,
    id: u32,
    default: &'static str,
}

/// (name, `llama_ftype` id, default tensor type), in llama.h's order.
const FILE_TYPES: &[(&str, u32, &str)] = &[
    ("F32", 0, "F32"),
    ("F16", 1, "F16"),
    ("Q4_0", 2, "Q4_0"),
    ("Q4_1", 3, "Q4_1"),
    ("Q8_0", 7, "Q8_0"),
    ("Q5_0", 8, "Q5_0"),
    ("Q5_1", 9, "Q5_1"),
    ("Q2_K", 10, "Q2_K"),
    ("Q3_K_S", 11, "Q3_K"),
    ("Q3_K_M", 12, "Q3_K"),
    ("Q3_K_L", 13, "Q3_K"),
    ("Q4_K_S", 14, "Q4_K"),
    ("Q4_K_M", 15, "Q4_K"),
    ("Q5_K_S", 16, "Q5_K"),
    ("Q5_K_M", 17, "Q5_K"),
    ("Q6_K", 18, "Q6_K"),
    ("IQ2_XXS", 19, "IQ2_XXS"),
    ("IQ2_XS", 20, "IQ2_XS"),
    ("Q2_K_S", 21, "Q2_K"),
    ("IQ3_XS", 22, "IQ3_S"),
    ("IQ3_XXS", 23, "IQ3_XXS"),
    ("IQ1_S", 24, "IQ1_S"),
    ("IQ4_NL", 25, "IQ4_NL"),
    ("IQ3_S", 26, "IQ3_S"),
    ("IQ3_M", 27, "IQ3_S"),
    ("IQ2_S", 28, "IQ2_XS"),
    ("IQ2_M", 29, "IQ2_S"),
    ("IQ4_XS", 30, "IQ4_XS"),
    ("IQ1_M", 31, "IQ1_M"),
    ("BF16", 32, "BF16"),
    ("TQ1_0", 36, "TQ1_0"),
    ("TQ2_0", 37, "TQ2_0"),
    ("MXFP4_MOE", 38, "MXFP4"),
];

/// `llama-quantize`'s short names for the medium K-quant mixes.
const ALIASES: &[(&str, &str)] = &[("Q3_K", "Q3_K_M"), ("Q4_K", "Q4_K_M"), ("Q5_K", "Q5_K_M")];

/// Every file type name, in llama.h's order.
pub fn file_type_names() -> impl Iterator<Item = &'static str> {
    FILE_TYPES.iter().map(|&(n, _, _)| n)
}

impl FileType {
    /// The file type named `name` (any case; Q3_K, Q4_K and Q5_K are the M mixes).
    pub fn from_name(name: &str) -> Option<FileType> {
        let upper = name.to_ascii_uppercase();
        let upper = ALIASES
            .iter()
            .find(|&&(a, _)| a == upper)
            .map_or(upper.as_str(), |&(_, to)| to);
        FILE_TYPES
            .iter()
            .find(|&&(n, _, _)| n == upper)
            .map(|&(name, id, default)| FileType { name, id, default })
    }

    /// The name, as llama-quantize spells it.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The `general.file_type` value.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The type every quantizable tensor starts from.
    pub fn default_type(&self) -> DType {
        match self.default {
            "F32" => DType::F32,
            "F16" => DType::F16,
            "BF16" => DType::BF16,
            q => DType::Quant(QuantType::from_name(q).expect("every default names a ggml type")),
        }
    }

    /// Why tensorcast cannot write this file type, if it cannot, with the
    /// refusal's code: types that need an importance matrix when none is
    /// given, and those whose quantizer is missing.
    pub fn unsupported_reason(&self, has_imatrix: bool) -> Option<(&'static str, String)> {
        let needs_imatrix = matches!(
            self.name,
            "IQ2_XXS" | "IQ2_XS" | "IQ2_S" | "IQ2_M" | "IQ1_S" | "IQ1_M" | "IQ3_XXS" | "IQ3_XS" | "Q2_K_S"
        );
        if needs_imatrix && !has_imatrix {
            return Some((
                tensorcast_core::code::NEEDS_IMATRIX,
                format!("{} needs an importance matrix, as llama-quantize does", self.name),
            ));
        }
        match self.default_type() {
            DType::Quant(q) if !crate::can_quantize(q) => Some((
                tensorcast_core::code::BLOCK_TYPE,
                format!(
                    "{} writes {} blocks, which tensorcast cannot quantize yet",
                    self.name,
                    q.name()
                ),
            )),
            _ => None,
        }
    }
}
