//! Resource limits every reader enforces before allocating.

/// Upper bounds on what a reader will accept from a file. The defaults admit
/// every real checkpoint; raise them for the rare giant file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest header/manifest, in bytes (safetensors' reference caps its JSON at 100 MB).
    pub max_header_bytes: u64,
    /// Most tensors in one file.
    pub max_tensors: u64,
    /// Most dimensions in one shape.
    pub max_dims: usize,
    /// Most objects one pickle may build (torch checkpoints).
    pub max_objects: u64,
    /// Deepest nesting of containers (pickles; metadata values).
    pub max_depth: usize,
    /// Largest buffer a reader allocates whole because a file says so: a
    /// deflated tensor that must be inflated in one piece (a strided torch
    /// view, a column-major NumPy array), a whole tpack tensor read into a new
    /// buffer (`read_tensor_owned`; chunks are bounded by the format). Everything
    /// else streams in chunks of [`crate::CHUNK_BYTES`] or is mapped, so a
    /// reader's memory is bounded by this, the header limit and the object
    /// limit together, whatever the file claims.
    pub max_alloc_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 100_000_000,
            max_tensors: 10_000_000,
            max_dims: 64,
            max_objects: 16 << 20,
            max_depth: 200,
            max_alloc_bytes: 4 << 30,
        }
    }
}

impl Limits {
    /// Checks a buffer of `bytes`, sized by the file, against
    /// [`Limits::max_alloc_bytes`]; the error detail says how to raise it.
    pub fn check_alloc(&self, bytes: u64, what: &str) -> Result<(), String> {
        if bytes <= self.max_alloc_bytes {
            return Ok(());
        }
        Err(format!(
            "{what} needs one {bytes}-byte buffer, over the {}-byte allocation limit (Limits::max_alloc_bytes)",
            self.max_alloc_bytes
        ))
    }
}
