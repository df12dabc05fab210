//! Which byte ranges of a torch zip `open` parses, so a remote checkpoint is
//! read by range: the end-of-central-directory records, the central
//! directory, every local header, and every record that is not a storage
//! (`data.pkl`, `byteorder`, `version`…). Storage bytes stream when a tensor
//! is read. A deflated record (a re-zipped checkpoint) or anything this walk
//! does not understand makes the caller download the whole object instead.

use tensorcast_core::{Bytes, Limits, Result};

/// End of central directory: signature, fixed part, longest comment.
const EOCD_WINDOW: u64 = 22 + 65535 + 20;
/// A local header's fixed part, and room for its name and extra field
/// (torch pads data to 64 bytes there) fetched with it.
const LOCAL_FIXED: u64 = 30;
const LOCAL_SLACK: u64 = 512;

fn u16_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?)))
}

fn u32_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?)))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// One central-directory entry's facts needed here.
struct Entry {
    name: Vec<u8>,
    method: u64,
    compressed: u64,
    local: u64,
}

/// Fetches what [`crate::PytorchFile`] parses; `false` when the whole object
/// should be downloaded instead.
pub(crate) fn prepare(bytes: &mut Bytes, limits: &Limits) -> Result<bool> {
    let len = bytes.len() as u64;
    // The whole window an end record can be in: the zip reader searches all
    // of it, so all of it must be real bytes.
    bytes.fetch(len.saturating_sub(EOCD_WINDOW), EOCD_WINDOW)?;
    let Some((cd_offset, cd_size)) = central_directory(bytes, EOCD_WINDOW as usize) else {
        return Ok(false);
    };
    if cd_size > limits.max_header_bytes {
        return Ok(false);
    }
    bytes.fetch(cd_offset, cd_size)?;
    let Some(entries) = entries(bytes, cd_offset, cd_size) else {
        return Ok(false);
    };
    if entries.iter().any(|e| e.method != 0) {
        return Ok(false);
    }
    // Local headers (with room for their padding), then every small record.
    let heads: Vec<(u64, u64)> = entries
        .iter()
        .map(|e| (e.local, LOCAL_FIXED + e.name.len() as u64 + LOCAL_SLACK))
        .collect();
    bytes.fetch_many(&heads)?;
    let mut records = Vec::new();
    let mut pending = 0u64;
    for e in &entries {
        let local = &bytes[e.local.min(len) as usize..];
        let (Some(n), Some(m)) = (u16_at(local, 26), u16_at(local, 28)) else {
            return Ok(false);
        };
        if LOCAL_FIXED + n + m > LOCAL_FIXED + e.name.len() as u64 + LOCAL_SLACK {
            bytes.fetch(e.local, LOCAL_FIXED + n + m)?;
        }
        let storage = e.name.windows(6).any(|w| w == b"/data/");
        if !storage {
            pending = pending.saturating_add(e.compressed);
            if pending > limits.max_header_bytes {
                return Ok(false);
            }
            records.push((e.local + LOCAL_FIXED + n + m, e.compressed));
        }
    }
    bytes.fetch_many(&records)?;
    // The zip reader must find the directory this walk fetched, at offset 0
    // (a fuzzed archive once had a second end record the walk and the reader
    // chose differently); anything else is downloaded whole instead.
    let agrees = zip::ZipArchive::new(std::io::Cursor::new(&bytes[..])).is_ok_and(|z| {
        z.central_directory_start() == cd_offset && z.offset() == 0 && z.len() == entries.len()
    });
    Ok(agrees)
}

/// (offset, size) of the central directory, through the zip64 records when
/// the classic ones are saturated.
fn central_directory(bytes: &mut Bytes, window: usize) -> Option<(u64, u64)> {
    let len = bytes.len();
    let from = len.saturating_sub(window);
    let at = (from..len.saturating_sub(21))
        .rev()
        .find(|&i| bytes[i..i + 4] == *b"PK\x05\x06")?;
    let (size, offset) = (u32_at(bytes, at + 12)?, u32_at(bytes, at + 16)?);
    if size != 0xFFFF_FFFF && offset != 0xFFFF_FFFF && u16_at(bytes, at + 10)? != 0xFFFF {
        return Some((offset, size));
    }
    // The zip64 locator sits just before the classic record.
    let loc = at.checked_sub(20)?;
    if bytes[loc..loc + 4] != *b"PK\x06\x07" {
        return None;
    }
    let z64 = u64_at(bytes, loc + 8)?;
    bytes.fetch(z64, 56).ok()?;
    let z = usize::try_from(z64).ok()?;
    if bytes.get(z..z + 4)? != b"PK\x06\x06" {
        return None;
    }
    Some((u64_at(bytes, z + 48)?, u64_at(bytes, z + 40)?))
}

fn entries(bytes: &[u8], offset: u64, size: u64) -> Option<Vec<Entry>> {
    let start = usize::try_from(offset).ok()?;
    let cd = bytes.get(start..start.checked_add(usize::try_from(size).ok()?)?)?;
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 46 <= cd.len() {
        if cd[at..at + 4] != *b"PK\x01\x02" {
            return None;
        }
        let (n, m, k) = (
            u16_at(cd, at + 28)? as usize,
            u16_at(cd, at + 30)? as usize,
            u16_at(cd, at + 32)? as usize,
        );
        let mut compressed = u32_at(cd, at + 20)?;
        let mut uncompressed = u32_at(cd, at + 24)?;
        let mut local = u32_at(cd, at + 42)?;
        let name = cd.get(at + 46..at + 46 + n)?.to_vec();
        // Zip64 extended information: only the saturated fields, in order.
        let extra = cd.get(at + 46 + n..at + 46 + n + m)?;
        let mut e = 0usize;
        while e + 4 <= extra.len() {
            let (id, len) = (u16_at(extra, e)?, u16_at(extra, e + 2)? as usize);
            if id == 1 {
                let mut f = e + 4;
                for field in [&mut uncompressed, &mut compressed, &mut local] {
                    if *field == 0xFFFF_FFFF {
                        *field = u64_at(extra, f)?;
                        f += 8;
                    }
                }
            }
            e += 4 + len;
        }
        out.push(Entry {
            name,
            method: u16_at(cd, at + 10)?,
            compressed,
            local,
        });
        at += 46 + n + m + k;
    }
    Some(out)
}
