//! torch dtypes and storage classes, by the names a pickle spells them.

use tensorcast_core::DType;

/// What a `torch.<dtype>` global means for conversion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TorchDtype {
    /// A dtype the IR holds.
    Known(DType),
    /// A real torch dtype with no IR (and no safetensors) equivalent.
    NoEquivalent(&'static str),
}

/// The dtype named `torch.<name>`; `None` when `name` is not a dtype at all.
pub fn dtype_by_name(name: &str) -> Option<TorchDtype> {
    use TorchDtype::*;
    if let Some(d) = DType::from_torch_name(name) {
        return Some(Known(d));
    }
    Some(match name {
        "complex32" | "chalf" => NoEquivalent("complex32"),
        "float4_e2m1fn_x2" => NoEquivalent("float4_e2m1fn_x2"),
        "qint8" | "quint8" | "qint32" | "quint4x2" | "quint2x4" => NoEquivalent("quantized"),
        "bits1x8" | "bits2x4" | "bits4x2" | "bits8" | "bits16" => NoEquivalent("bits"),
        "uint1" | "uint2" | "uint3" | "uint4" | "uint5" | "uint6" | "uint7" | "int1" | "int2" | "int3"
        | "int4" | "int5" | "int6" | "int7" => NoEquivalent("sub-byte integer"),
        _ => return None,
    })
}

/// A storage class referenced by a persistent id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageClass {
    /// `torch.UntypedStorage`: the id counts bytes; the dtype comes from
    /// `_rebuild_tensor_v3`.
    Untyped,
    /// A typed storage (`torch.FloatStorage`): the id counts elements.
    Typed(TorchDtype),
}

/// The storage class `module.name`; `None` when it is not one.
pub fn storage_class(module: &str, name: &str) -> Option<StorageClass> {
    // `torch.cuda.FloatStorage` and friends load as CPU storages.
    if !matches!(module, "torch" | "torch.storage" | "torch.cuda") {
        return None;
    }
    if name == "UntypedStorage" || name == "_UntypedStorage" {
        return Some(StorageClass::Untyped);
    }
    let dtype = match name.strip_suffix("Storage")? {
        "Double" => "float64",
        "Float" => "float32",
        "Half" => "float16",
        "BFloat16" => "bfloat16",
        "Long" => "int64",
        "Int" => "int32",
        "Short" => "int16",
        "Char" => "int8",
        "Byte" => "uint8",
        "Bool" => "bool",
        "ComplexFloat" => "complex64",
        "ComplexDouble" => "complex128",
        "QInt8" => "qint8",
        "QUInt8" => "quint8",
        "QInt32" => "qint32",
        "QUInt4x2" => "quint4x2",
        "QUInt2x4" => "quint2x4",
        _ => return None,
    };
    Some(StorageClass::Typed(dtype_by_name(dtype)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(dtype_by_name("bfloat16"), Some(TorchDtype::Known(DType::BF16)));
        assert_eq!(dtype_by_name("system"), None);
        assert_eq!(
            storage_class("torch", "HalfStorage"),
            Some(StorageClass::Typed(TorchDtype::Known(DType::F16)))
        );
        assert_eq!(
            storage_class("torch.storage", "UntypedStorage"),
            Some(StorageClass::Untyped)
        );
        assert_eq!(storage_class("os", "FloatStorage"), None);
    }
}
