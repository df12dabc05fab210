//! zTensor storage and logical types ⇄ tensorcast dtypes.

use tensorcast_core::DType;

/// The dtype of storage type `dtype` with logical type `logical`, or why not.
pub fn from_zt(dtype: &str, logical: Option<&str>) -> Result<DType, String> {
    let storage = match dtype {
        "f64" => DType::F64,
        "f32" => DType::F32,
        "f16" => DType::F16,
        "bf16" => DType::BF16,
        "i64" => DType::I64,
        "i32" => DType::I32,
        "i16" => DType::I16,
        "i8" => DType::I8,
        "u64" => DType::U64,
        "u32" => DType::U32,
        "u16" => DType::U16,
        "u8" => DType::U8,
        other => return Err(format!("storage type '{other}' is not one of the 12")),
    };
    let Some(logical) = logical else {
        return Ok(storage);
    };
    let (want, dt) = match logical {
        "bool" => (DType::U8, DType::Bool),
        "f8_e4m3fn" => (DType::U8, DType::F8E4M3),
        "f8_e5m2" => (DType::U8, DType::F8E5M2),
        "f8_e4m3fnuz" => (DType::U8, DType::F8E4M3Fnuz),
        "f8_e5m2fnuz" => (DType::U8, DType::F8E5M2Fnuz),
        "f8_e8m0" => (DType::U8, DType::F8E8M0),
        "complex64" => (DType::F32, DType::C64),
        "complex128" => (DType::F64, DType::C128),
        other => return Err(format!("logical type '{other}' has no tensorcast dtype")),
    };
    if storage != want {
        return Err(format!(
            "logical type '{logical}' is stored as {want}, not {dtype}"
        ));
    }
    Ok(dt)
}

/// (storage type, logical type) for `dtype`, or `None` when .zt has none.
pub fn to_zt(dtype: DType) -> Option<(&'static str, Option<&'static str>)> {
    Some(match dtype {
        DType::F64 => ("f64", None),
        DType::F32 => ("f32", None),
        DType::F16 => ("f16", None),
        DType::BF16 => ("bf16", None),
        DType::I64 => ("i64", None),
        DType::I32 => ("i32", None),
        DType::I16 => ("i16", None),
        DType::I8 => ("i8", None),
        DType::U64 => ("u64", None),
        DType::U32 => ("u32", None),
        DType::U16 => ("u16", None),
        DType::U8 => ("u8", None),
        DType::Bool => ("u8", Some("bool")),
        DType::F8E4M3 => ("u8", Some("f8_e4m3fn")),
        DType::F8E5M2 => ("u8", Some("f8_e5m2")),
        DType::F8E4M3Fnuz => ("u8", Some("f8_e4m3fnuz")),
        DType::F8E5M2Fnuz => ("u8", Some("f8_e5m2fnuz")),
        DType::F8E8M0 => ("u8", Some("f8_e8m0")),
        DType::C64 => ("f32", Some("complex64")),
        DType::C128 => ("f64", Some("complex128")),
        _ => return None,
    })
}
