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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 100_000_000,
            max_tensors: 10_000_000,
            max_dims: 64,
            max_objects: 16 << 20,
            max_depth: 200,
        }
    }
}
