//! The CLI's advice for a library error: the library never names flags, so
//! the hints that do are chosen here, keyed on the error's limit field, rule
//! or code (never on its text).

use tensorcast::code;

/// The flag that raises the [`tensorcast::Limits`] field `field`.
pub fn limit_flag(field: &str) -> Option<&'static str> {
    Some(match field {
        "max_alloc_bytes" => "--max-alloc",
        "max_header_bytes" => "--max-header-size",
        "max_tensors" => "--max-tensors",
        "max_objects" => "--max-objects",
        "max_depth" => "--max-depth",
        _ => return None,
    })
}

/// Whether this run was given `flag` (advice never suggests a flag the user
/// already passed).
fn given(flag: &str) -> bool {
    std::env::args().any(|a| a == flag)
}

/// A `hint:` line for `e`, if the CLI has one.
pub fn advice(e: &tensorcast::Error) -> Option<String> {
    if let Some(flag) = e.limit_field().and_then(limit_flag) {
        return Some(format!("raise the limit with {flag} if the file is trusted"));
    }
    if let Some(c) = e.code() {
        return match c {
            code::NO_MODEL_TABLE | code::MODEL_FOLDER => {
                Some("--names keep converts the container, tensor names and metadata as they are".into())
            }
            code::SPARSE_NOT_HELD => Some("--densify writes the dense tensor (torch's to_dense())".into()),
            code::UNKNOWN_PRE_TOKENIZER => {
                Some("name the pre-tokenizer with --tokenizer-pre (e.g. llama-bpe)".into())
            }
            code::OUTPUT_EXISTS if !given("--force") => Some("--force replaces it".into()),
            code::NEEDS_IMATRIX if !given("--imatrix") => {
                Some("--imatrix FILE gives one (llama.cpp's llama-imatrix computes it)".into())
            }
            code::DIGEST_MISMATCH if !given("--dtype") => {
                Some("a change wanted is asked for by name: --dtype f32 dequantizes blocks on purpose".into())
            }
            _ => None,
        };
    }
    use tensorcast::pytorch::rules;
    match e.rule()? {
        tensorcast::numpy::rules::WRITE_DTYPE => Some("convert with --dtype f32 (or f16) for NumPy".into()),
        rules::FORBIDDEN_GLOBAL if !given("--lenient") => {
            Some("--lenient records harmless classes as opaque metadata".into())
        }
        rules::SELECT_NOT_FOUND | rules::DUPLICATE_NAME => Some("pick one sub-tree with --select".into()),
        "unsupported-dtype" => Some(match e.subject() {
            Some(tensorcast::Subject::Tensor(name)) => {
                format!("--exclude '{name}' leaves the tensor out and converts the rest")
            }
            _ => "--exclude leaves the tensor out and converts the rest".into(),
        }),
        _ => None,
    }
}
