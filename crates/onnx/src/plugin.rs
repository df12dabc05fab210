//! ONNX as a registered [`Format`] (read only).

use crate::{OnnxFile, FORMAT};
use tensorcast_core::{Detection, Format, Input, Options, Result, Source};

/// ONNX models (`.onnx`), read for their initializers.
pub struct Onnx;

/// A protobuf varint at the start of `b`: (value, bytes used).
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().take(10).enumerate() {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

impl Format for Onnx {
    fn name(&self) -> &'static str {
        FORMAT
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["onnx"]
    }

    /// No magic: a `ModelProto` starts with `ir_version` (field 1, a small
    /// varint) followed by another ModelProto field. Weak, so any format
    /// with a signature wins.
    fn detect(&self, head: &[u8]) -> Detection {
        let Some(rest) = head.strip_prefix(&[0x08]) else {
            return Detection::No;
        };
        let Some((version, n)) = varint(rest) else {
            return Detection::No;
        };
        let next = rest.get(n).copied();
        // producer_name, producer_version, domain, model_version,
        // doc_string, graph, opset_import, metadata_props.
        if (1..=20).contains(&version)
            && matches!(next, Some(0x12 | 0x1a | 0x22 | 0x28 | 0x32 | 0x3a | 0x42 | 0x72))
        {
            Detection::Weak
        } else {
            Detection::No
        }
    }

    fn open(&self, input: Input, options: &Options) -> Result<Box<dyn Source>> {
        Ok(Box::new(OnnxFile::from_input(input, &options.limits)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_detection() {
        assert_eq!(varint(&[0x08]), Some((8, 1)));
        assert_eq!(varint(&[0x96, 0x01]), Some((150, 2)));
        assert_eq!(varint(&[0xff; 11]), None);
        // ir_version 8, then producer_name: weak, so a signature wins.
        assert_eq!(Onnx.detect(b"\x08\x08\x12\x07pytorch"), Detection::Weak);
        let head = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/onnx/raw.onnx"
        ))
        .unwrap();
        assert_eq!(Onnx.detect(&head[..head.len().min(512)]), Detection::Weak);
        for not in [
            &b"GGUF\x03\0\0\0"[..],
            b"\x08\x00\x12",
            b"\x08\x08\x99",
            b"",
            b"\x08",
        ] {
            assert_eq!(Onnx.detect(not), Detection::No, "{not:?}");
        }
    }
}
