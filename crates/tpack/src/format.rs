//! Byte layout constants, the preamble and the commit slots (spec §1).

use crate::rules;
use tensorcast_core::FormatError;

/// The file's first 8 bytes.
pub const MAGIC: &[u8; 8] = b"TPACK\0\r\n";
/// Major version this crate reads and writes.
pub const MAJOR: u16 = 1;
/// Minor version this crate writes.
pub const MINOR: u16 = 0;
/// Offset of slot A; slot B follows it.
pub const SLOT_A: u64 = 64;
/// Size of one commit slot.
pub const SLOT_BYTES: usize = 64;
/// Where the data area starts.
pub const DATA_START: u64 = 256;
/// Magic of a commit slot.
const SLOT_MAGIC: &[u8; 8] = b"TPSLOT\0\0";

/// Manifest codecs (slot field).
pub const MANIFEST_RAW: u32 = 0;
/// A zstd frame of the JSON.
pub const MANIFEST_ZSTD: u32 = 1;

/// Rounds up to a multiple of 64.
pub fn align64(x: u64) -> u64 {
    x.div_ceil(64) * 64
}

/// The 256 bytes before the data area: preamble, two empty slots, reserved.
pub fn preamble() -> [u8; DATA_START as usize] {
    let mut b = [0u8; DATA_START as usize];
    b[..8].copy_from_slice(MAGIC);
    b[8..10].copy_from_slice(&MAJOR.to_le_bytes());
    b[10..12].copy_from_slice(&MINOR.to_le_bytes());
    b
}

fn err(rule: &'static str, detail: impl Into<String>) -> FormatError {
    FormatError::new(crate::FORMAT, rule, detail)
}

/// Checks the preamble (T1, T2).
pub fn check_preamble(bytes: &[u8]) -> Result<(), FormatError> {
    if bytes.len() < DATA_START as usize || &bytes[..8] != MAGIC {
        return Err(err(
            rules::MAGIC,
            "not a tpack file (magic or 256-byte preamble missing)",
        ));
    }
    let major = u16::from_le_bytes([bytes[8], bytes[9]]);
    if major != MAJOR {
        return Err(err(
            rules::VERSION,
            format!("major version {major}; this reader knows {MAJOR}"),
        ));
    }
    Ok(())
}

/// A commit slot's contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Commit counter (≥ 1).
    pub generation: u64,
    /// Where the manifest starts.
    pub manifest_offset: u64,
    /// Stored manifest bytes.
    pub manifest_len: u64,
    /// Every referenced byte lies below this.
    pub committed_len: u64,
    /// Manifest size once decoded.
    pub manifest_raw_len: u64,
    /// [`MANIFEST_RAW`] or [`MANIFEST_ZSTD`].
    pub manifest_codec: u32,
    /// crc32c of the stored manifest.
    pub manifest_crc: u32,
}

impl Slot {
    /// The slot's 64 bytes.
    pub fn encode(&self) -> [u8; SLOT_BYTES] {
        let mut b = [0u8; SLOT_BYTES];
        b[..8].copy_from_slice(SLOT_MAGIC);
        b[8..16].copy_from_slice(&self.generation.to_le_bytes());
        b[16..24].copy_from_slice(&self.manifest_offset.to_le_bytes());
        b[24..32].copy_from_slice(&self.manifest_len.to_le_bytes());
        b[32..40].copy_from_slice(&self.committed_len.to_le_bytes());
        b[40..48].copy_from_slice(&self.manifest_raw_len.to_le_bytes());
        b[48..52].copy_from_slice(&self.manifest_codec.to_le_bytes());
        b[52..56].copy_from_slice(&self.manifest_crc.to_le_bytes());
        let crc = crc32c::crc32c(&b[..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// The slot in `b` if it is valid for a file of `file_len` bytes (T3).
    pub fn decode(b: &[u8], file_len: u64) -> Option<Slot> {
        let b = b.get(..SLOT_BYTES)?;
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"));
        if &b[..8] != SLOT_MAGIC || crc32c::crc32c(&b[..60]) != u32_at(60) {
            return None;
        }
        let slot = Slot {
            generation: u64_at(8),
            manifest_offset: u64_at(16),
            manifest_len: u64_at(24),
            committed_len: u64_at(32),
            manifest_raw_len: u64_at(40),
            manifest_codec: u32_at(48),
            manifest_crc: u32_at(52),
        };
        let end = slot.manifest_offset.checked_add(slot.manifest_len)?;
        let ok = slot.generation >= 1
            && slot.manifest_offset >= DATA_START
            && end <= slot.committed_len
            && slot.committed_len <= file_len;
        ok.then_some(slot)
    }
}

/// The slot to read (T4) and the index (0 = A, 1 = B) it sits in.
pub fn current_slot(bytes: &[u8]) -> Result<(Slot, usize), FormatError> {
    let len = bytes.len() as u64;
    let a = Slot::decode(&bytes[SLOT_A as usize..], len);
    let b = Slot::decode(&bytes[SLOT_A as usize + SLOT_BYTES..], len);
    match (a, b) {
        (None, None) => Err(err(
            rules::NO_SLOT,
            "neither commit slot is valid: nothing was ever committed",
        )),
        (Some(a), Some(b)) if a.generation == b.generation => Err(err(
            rules::NO_SLOT,
            format!("both commit slots claim generation {}", a.generation),
        )),
        (Some(a), Some(b)) if b.generation > a.generation => Ok((b, 1)),
        (Some(a), _) => Ok((a, 0)),
        (None, Some(b)) => Ok((b, 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_round_trip_and_refuse_damage() {
        let s = Slot {
            generation: 3,
            manifest_offset: 256,
            manifest_len: 10,
            committed_len: 266,
            manifest_raw_len: 10,
            manifest_codec: MANIFEST_RAW,
            manifest_crc: 7,
        };
        let b = s.encode();
        assert_eq!(Slot::decode(&b, 266), Some(s));
        assert_eq!(Slot::decode(&b, 265), None, "committed beyond the file");
        for i in 0..SLOT_BYTES {
            let mut d = b;
            d[i] ^= 1;
            assert_eq!(Slot::decode(&d, 1000), None, "flip at {i}");
        }
    }
}
