//! Rule ids a PyTorch reader error can cite (`pytorch/<id>`).

/// The pickle stream ends before STOP, or a length runs past the end.
pub const TRUNCATED: &str = "truncated";
/// An opcode byte that no pickle protocol defines.
pub const BAD_OPCODE: &str = "bad-opcode";
/// An opcode that needs more stack items (or a MARK) than there are.
pub const STACK_UNDERFLOW: &str = "stack-underflow";
/// GET of a memo slot that was never filled.
pub const MISSING_MEMO: &str = "missing-memo";
/// A malformed operand (bad text number, bad string quoting, bad UTF-8).
pub const BAD_OPERAND: &str = "bad-operand";
/// More pickle objects than the limit.
pub const TOO_MANY_OBJECTS: &str = "too-many-objects";
/// Containers nested deeper than the limit.
pub const TOO_DEEP: &str = "too-deep";
/// Out-of-band buffers or the extension registry, which a file cannot supply.
pub const UNSUPPORTED_OPCODE: &str = "unsupported-opcode";
/// A global outside the allowlist (only names are read; nothing is imported or called).
pub const FORBIDDEN_GLOBAL: &str = "forbidden-global";
/// A call the allowlist knows but whose arguments are malformed.
pub const BAD_CALL: &str = "bad-call";
/// A persistent id that is not a torch storage reference.
pub const BAD_PERSISTENT_ID: &str = "bad-persistent-id";
/// A storage record key that is not a plain name (e.g. `../x`).
pub const BAD_RECORD_KEY: &str = "bad-record-key";
/// A storage record the pickle refers to is missing.
pub const MISSING_RECORD: &str = "missing-record";
/// A tensor view reaching outside its storage, or with a negative stride.
pub const VIEW_OUT_OF_BOUNDS: &str = "view-out-of-bounds";
/// A tensor's shape or byte size overflows.
pub const SHAPE_OVERFLOW: &str = "shape-overflow";
/// A dtype or storage class with no IR equivalent (complex128, quantized ints).
pub const UNSUPPORTED_DTYPE: &str = "unsupported-dtype";
/// Quantized, sparse, nested or meta tensors, which carry no plain data.
pub const UNSUPPORTED_TENSOR: &str = "unsupported-tensor";
/// A zip without a `data.pkl`, or otherwise not a torch archive.
pub const BAD_ARCHIVE: &str = "bad-archive";
/// The legacy format's magic number, protocol or storage list is wrong.
pub const BAD_LEGACY: &str = "bad-legacy";
/// The ancient tar format (torch < 0.4).
pub const TAR_FORMAT: &str = "tar-format";
/// `--select` names a path that is not in the checkpoint.
pub const SELECT_NOT_FOUND: &str = "select-not-found";
/// Two tensors flatten to the same dotted name.
pub const DUPLICATE_NAME: &str = "duplicate-name";
/// A stride-0 (expanded) view that would write far more bytes than it stores.
pub const VIEW_EXPANSION: &str = "view-expansion";
/// A flattened tensor name or metadata path longer than the limit.
pub const NAME_TOO_LONG: &str = "name-too-long";
/// A deflated strided view would need a buffer over `Limits::max_alloc_bytes`.
pub const ALLOC_LIMIT: &str = "alloc-limit";
