//! A stored chunk as the manifest lists it (spec §2.2): shared by the
//! manifest, its reader and stored arrays, which depend on it and not on
//! each other.

use crate::codec::Codec;

/// One stored chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Chunk {
    /// Offset of the stored bytes.
    pub offset: u64,
    /// Stored length.
    pub stored_len: u64,
    /// Decoded length.
    pub decoded_len: u64,
    /// How the bytes are encoded.
    pub codec: Codec,
    /// crc32c of the stored bytes.
    pub crc: u32,
}
