//! Format detection from a file's first bytes (the extension only breaks ties
//! when the bytes match nothing, so a damaged file still reaches the reader
//! that can say exactly what is wrong with it).

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;
use tensorcast_core::{Error, FormatError, Result};

/// A container format tensorcast knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// safetensors, single file or sharded (`*.safetensors.index.json`).
    Safetensors,
    /// GGUF (llama.cpp).
    Gguf,
    /// PyTorch pickle checkpoint, zip or legacy.
    Pytorch,
    /// tensorcast's own compressed container.
    Tpack,
    /// A single NumPy array.
    Npy,
    /// A zip of NumPy arrays.
    Npz,
}

impl Format {
    /// The name used by `--to` and `inspect`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Safetensors => "safetensors",
            Format::Gguf => "gguf",
            Format::Pytorch => "pytorch",
            Format::Tpack => "tpack",
            Format::Npy => "npy",
            Format::Npz => "npz",
        }
    }

    /// The format an output path's extension asks for.
    pub fn from_extension(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if name.ends_with(".safetensors.index.json") {
            return Some(Format::Safetensors);
        }
        let ext = name.rsplit_once('.')?.1;
        Some(match ext {
            "safetensors" => Format::Safetensors,
            "gguf" => Format::Gguf,
            "pt" | "pth" | "bin" | "ckpt" | "pkl" | "pickle" => Format::Pytorch,
            "tpack" => Format::Tpack,
            "npy" => Format::Npy,
            "npz" => Format::Npz,
            _ => return None,
        })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        [
            Format::Safetensors,
            Format::Gguf,
            Format::Pytorch,
            Format::Tpack,
            Format::Npy,
            Format::Npz,
        ]
        .into_iter()
        .find(|f| f.name().eq_ignore_ascii_case(s))
        .ok_or_else(|| {
            format!("unknown format '{s}' (expected safetensors, gguf, pytorch, tpack, npy or npz)")
        })
    }
}

/// Detects the format of the file at `path` from its first bytes.
pub fn detect(path: &Path) -> Result<Format> {
    let mut head = [0u8; 512];
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    if let Some(f) = detect_bytes(&head[..n]) {
        return Ok(f);
    }
    Format::from_extension(path).ok_or_else(|| {
        let shown: Vec<String> = head[..n.min(8)].iter().map(|b| format!("{b:02x}")).collect();
        FormatError::new(
            "tensorcast",
            "unknown-format",
            format!("no known format starts with bytes [{}]", shown.join(" ")),
        )
        .in_file(path)
        .into()
    })
}

/// The format whose signature `head` (a file's first bytes) carries.
pub fn detect_bytes(head: &[u8]) -> Option<Format> {
    if head.starts_with(b"GGUF") {
        return Some(Format::Gguf);
    }
    if head.starts_with(b"\x93NUMPY") {
        return Some(Format::Npy);
    }
    if head.starts_with(b"TPACK") {
        return Some(Format::Tpack);
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Some(zip_flavour(head));
    }
    // Legacy torch.save: PROTO 2, then the magic number as a 10-byte LONG1.
    if head.starts_with(b"\x80\x02\x8a\x0a") {
        return Some(Format::Pytorch);
    }
    // safetensors has no magic: an 8-byte length, then a JSON object. Checked
    // before bare pickles because a header length of 128..=255 starts with 0x80.
    if head.len() > 8 && head[8..].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        return Some(Format::Safetensors);
    }
    if head.len() >= 2 && head[0] == 0x80 && (2..=5).contains(&head[1]) {
        return Some(Format::Pytorch);
    }
    if head.get(257..262) == Some(b"ustar") {
        return Some(Format::Pytorch);
    }
    if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') && contains(head, b"\"weight_map\"") {
        return Some(Format::Safetensors);
    }
    None
}

/// torch zips start with `<folder>/data.pkl` or similar; NumPy's with `name.npy`.
fn zip_flavour(head: &[u8]) -> Format {
    let name_len = head
        .get(26..28)
        .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
        .unwrap_or(0);
    match head.get(30..30 + name_len) {
        Some(name) if name.ends_with(b".npy") => Format::Npz,
        _ => Format::Pytorch,
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        assert_eq!(detect_bytes(b"GGUF\x03\0\0\0"), Some(Format::Gguf));
        assert_eq!(
            detect_bytes(b"\x10\0\0\0\0\0\0\0{\"a\":1}"),
            Some(Format::Safetensors)
        );
        assert_eq!(detect_bytes(b"\x10\0\0\0\0\0\0\0  {"), Some(Format::Safetensors));
        assert_eq!(detect_bytes(b"\x80\x02\x8a\x0a"), Some(Format::Pytorch));
        assert_eq!(
            detect_bytes(b"{\n \"weight_map\": {}}"),
            Some(Format::Safetensors)
        );
        assert_eq!(detect_bytes(b"hello world"), None);
        // A 128-byte safetensors header length must not look like a pickle.
        assert_eq!(
            detect_bytes(b"\x80\x00\0\0\0\0\0\0{\"a\""),
            Some(Format::Safetensors)
        );
    }
}
