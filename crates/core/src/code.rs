//! Stable codes of [`crate::Error::Usage`] and [`crate::Error::Unsupported`]
//! refusals, as format errors carry a rule id: front ends key their advice
//! on them (the CLI names its flags, Python its keyword arguments) and
//! tests match them, never the message text, which may change.

/// A writer or source driven out of its documented call order, or asked for
/// a tensor index or byte range it never listed (a caller's bug).
pub const CALL_ORDER: &str = "call-order";
/// The output exists and replacing it was not asked for.
pub const OUTPUT_EXISTS: &str = "output-exists";
/// The format is read here but not written.
pub const READ_ONLY: &str = "read-only";
/// The output format has no type for a tensor's dtype.
pub const DTYPE_NOT_HELD: &str = "dtype-not-held";
/// The output format cannot hold ggml blocks (kept or made by quantizing).
pub const BLOCKS_NOT_HELD: &str = "blocks-not-held";
/// The output format cannot hold a sparse tensor as it is; its dense form
/// can be written instead.
pub const SPARSE_NOT_HELD: &str = "sparse-not-held";
/// A tensor name the output format cannot store (empty, repeated, too long,
/// reserved).
pub const NAME_NOT_HELD: &str = "name-not-held";
/// A model whose architecture, or one of whose tensors, has no entry in the
/// architecture tables; its container converts with the names kept.
pub const NO_MODEL_TABLE: &str = "no-model-table";
/// A model folder asked for as something only a model converts into (or a
/// folder written from something that is not a model); the weights convert
/// as a container with the names kept.
pub const MODEL_FOLDER: &str = "model-folder";
/// The input is not a complete model: no architecture, config field,
/// weights file or tokenizer where one is needed.
pub const NOT_A_MODEL: &str = "not-a-model";
/// A model whose parts disagree (rows that do not split into heads).
pub const MODEL_INCONSISTENT: &str = "model-inconsistent";
/// A tokenizer that has no conversion (yet) or is incomplete.
pub const TOKENIZER: &str = "tokenizer";
/// A BPE vocabulary whose pre-tokenizer llama.cpp does not recognise; the
/// caller can name it.
pub const UNKNOWN_PRE_TOKENIZER: &str = "unknown-pre-tokenizer";
/// A dtype cast that is not defined (or a norm offset on such a type).
pub const CAST: &str = "cast";
/// A ggml block type with no dequantizer or quantizer here.
pub const BLOCK_TYPE: &str = "block-type";
/// A size that does not fit this machine's address space or a counter.
pub const TOO_LARGE: &str = "too-large";
/// An option value that does not parse or contradicts another (renames,
/// shard specs, dimension names, environment variables).
pub const BAD_OPTION: &str = "bad-option";
/// A format name nobody registered, or an output whose format cannot be told.
pub const UNKNOWN_FORMAT: &str = "unknown-format";
/// Options for one format given to an input of another.
pub const OPTIONS_MISMATCH: &str = "options-mismatch";
/// A URL, object path or sibling file name that is not valid where it is used.
pub const BAD_LOCATION: &str = "bad-location";
/// A capability that a cargo feature of the build leaves out.
pub const FEATURE_MISSING: &str = "feature-missing";
/// An output that cannot rewrite bytes it already wrote (an upload).
pub const NO_REWRITE: &str = "no-rewrite";
/// An invariant of tensorcast itself broke (a source delivered other sizes
/// than it listed, a worker thread failed): a bug to report.
pub const INTERNAL: &str = "internal";
/// The operating system or a runtime refused to start something.
pub const RUNTIME: &str = "runtime";
/// A tensor shape the output format cannot store (too many dimensions, a
/// row that is not whole blocks).
pub const SHAPE_NOT_HELD: &str = "shape-not-held";
/// A metadata value the output format cannot store as it is.
pub const VALUE_NOT_HELD: &str = "value-not-held";
/// Outputs of one batch that collide, overwrite an input, or resolve
/// outside the output folder.
pub const OUTPUT_CONFLICT: &str = "output-conflict";
/// Tensor data that breaks an invariant of its kind when written (sparse
/// indices out of order).
pub const BAD_DATA: &str = "bad-data";
/// A quantization that needs importance data (an imatrix) it was not given.
pub const NEEDS_IMATRIX: &str = "needs-imatrix";
/// A conversion asked to prove itself gave an output whose content id is
/// not the one expected (spec/digest.md §5).
pub const DIGEST_MISMATCH: &str = "digest-mismatch";
/// A format whose metadata cannot be edited without a conversion.
pub const NO_EDIT: &str = "no-edit";
/// A merge configuration names an unknown key, method or parameter, or
/// values a method cannot take.
pub const MERGE_CONFIG: &str = "merge-config";
/// Models to merge disagree: a tensor missing from one, or another shape.
pub const MERGE_MISMATCH: &str = "merge-mismatch";
