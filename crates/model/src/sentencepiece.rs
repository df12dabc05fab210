//! The pieces of a SentencePiece `tokenizer.model`: each piece's text, score
//! and type, which is all a GGUF vocabulary takes from it.
//!
//! The file is a protobuf `ModelProto`; only field 1 (`repeated SentencePiece
//! pieces`, each with `piece` = 1, `score` = 2, `type` = 3) is read, every
//! other field is skipped by its wire type. Every length is checked against
//! the bytes present.

use tensorcast_core::code;
use tensorcast_core::{Error, Result};

/// One vocabulary entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Piece {
    /// The piece's text (`▁` for a space).
    pub text: String,
    /// Its score (log probability for unigram, negative rank for BPE).
    pub score: f32,
    /// SentencePiece's type: 1 normal, 2 unknown, 3 control, 4 user-defined,
    /// 5 unused, 6 byte — the same numbers as `tokenizer.ggml.token_type`.
    pub kind: i32,
}

fn bad(detail: &str) -> Error {
    Error::unsupported(
        code::TOKENIZER,
        format!("tokenizer.model is not a SentencePiece model: {detail}"),
    )
}

/// A protobuf reader over one message's bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| bad("a varint runs past the end"))?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad("a varint longer than 10 bytes"))
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| self.pos.checked_add(n))
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| bad("a field runs past the end"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// The next (field number, wire type), or `None` at the end.
    fn key(&mut self) -> Result<Option<(u64, u8)>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let k = self.varint()?;
        Ok(Some((k >> 3, (k & 7) as u8)))
    }

    /// Skips a value of `wire` type.
    fn skip(&mut self, wire: u8) -> Result<()> {
        match wire {
            0 => self.varint().map(drop),
            1 => self.take(8).map(drop),
            2 => {
                let n = self.varint()?;
                self.take(n).map(drop)
            }
            5 => self.take(4).map(drop),
            _ => Err(bad("a group or unknown wire type")),
        }
    }
}

/// Every piece of the model in `bytes`, in id order; more than `max`
/// pieces are refused as they are met (ten million empty pieces, 20 MB of
/// file, would otherwise cost half a gigabyte before any check).
pub fn pieces(bytes: &[u8], max: u64) -> Result<Vec<Piece>> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let mut out = Vec::new();
    while let Some((field, wire)) = r.key()? {
        if field == 1 && wire == 2 {
            if out.len() as u64 >= max {
                return Err(Error::unsupported(
                    code::MODEL_INCONSISTENT,
                    format!("tokenizer.model holds more than the model's {max} tokens"),
                ));
            }
            let n = r.varint()?;
            out.push(piece(r.take(n)?)?);
        } else {
            r.skip(wire)?;
        }
    }
    Ok(out)
}

/// What a SentencePiece model says beside its pieces that a GGUF keeps:
/// its algorithm (`trainer_spec.model_type`) and its normalizer
/// (`normalizer_spec`), with the proto's defaults where a field is absent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// Unigram (type 1, the default) rather than BPE (2).
    pub unigram: bool,
    /// A space is put before the text (`add_dummy_prefix`, default true).
    pub add_dummy_prefix: bool,
    /// Runs of whitespace collapse (`remove_extra_whitespaces`, default true).
    pub remove_extra_whitespaces: bool,
    /// The compiled normalization table (T5's NFKC), empty for none.
    pub charsmap: Vec<u8>,
}

/// The [`Spec`] of the model in `bytes`.
pub fn spec(bytes: &[u8]) -> Result<Spec> {
    let mut out = Spec {
        unigram: true,
        add_dummy_prefix: true,
        remove_extra_whitespaces: true,
        charsmap: Vec::new(),
    };
    let mut r = Reader { buf: bytes, pos: 0 };
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            // trainer_spec: model_type is its field 3.
            (2, 2) => {
                let n = r.varint()?;
                let mut t = Reader {
                    buf: r.take(n)?,
                    pos: 0,
                };
                while let Some((f, w)) = t.key()? {
                    match (f, w) {
                        (3, 0) => out.unigram = t.varint()? == 1,
                        (_, w) => t.skip(w)?,
                    }
                }
            }
            // normalizer_spec: charsmap 2, add_dummy_prefix 3, remove_extra_whitespaces 4.
            (3, 2) => {
                let n = r.varint()?;
                let mut t = Reader {
                    buf: r.take(n)?,
                    pos: 0,
                };
                while let Some((f, w)) = t.key()? {
                    match (f, w) {
                        (2, 2) => {
                            let n = t.varint()?;
                            out.charsmap = t.take(n)?.to_vec();
                        }
                        (3, 0) => out.add_dummy_prefix = t.varint()? != 0,
                        (4, 0) => out.remove_extra_whitespaces = t.varint()? != 0,
                        (_, w) => t.skip(w)?,
                    }
                }
            }
            (_, w) => r.skip(w)?,
        }
    }
    Ok(out)
}

/// Protobuf varint `v` appended to `out`.
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field.
fn put_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, field << 3 | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A varint field.
fn put_int(out: &mut Vec<u8>, field: u64, v: u64) {
    put_varint(out, field << 3);
    put_varint(out, v);
}

/// A SentencePiece `ModelProto` holding `pieces` (text, score, type in
/// id order) and `spec`: what a GGUF's vocabulary holds of the model it
/// came from, enough for SentencePiece and the reference converter to read
/// the same pieces back. The trainer spec says the algorithm, the vocabulary
/// size, byte fallback (when there are byte pieces) and the special ids;
/// the normalizer spec its flags and table (`identity` without one, as
/// Llama's models have it; `nmt_nfkc` with one, as T5's).
pub fn write(pieces: &[Piece], spec: &Spec) -> Vec<u8> {
    let mut out = Vec::new();
    for p in pieces {
        let mut m = Vec::with_capacity(p.text.len() + 12);
        put_bytes(&mut m, 1, p.text.as_bytes());
        put_varint(&mut m, 2 << 3 | 5);
        m.extend_from_slice(&p.score.to_le_bytes());
        // Normal is the proto's default: written only for other types.
        if p.kind != 1 {
            put_int(&mut m, 3, p.kind as u64);
        }
        put_bytes(&mut out, 1, &m);
    }
    let id_of = |kind: i32| pieces.iter().position(|p| p.kind == kind);
    let named = |text: &str| pieces.iter().position(|p| p.text == text && p.kind == 3);
    let mut trainer = Vec::new();
    put_int(&mut trainer, 3, if spec.unigram { 1 } else { 2 });
    put_int(&mut trainer, 4, pieces.len() as u64);
    if pieces.iter().any(|p| p.kind == 6) {
        put_int(&mut trainer, 35, 1);
    }
    // unk_id 40, bos_id 41, eos_id 42, pad_id 43 (-1, as a 64-bit varint, for none).
    let ids = [
        (40, id_of(2)),
        (41, named("<s>").or_else(|| named("<bos>"))),
        (42, named("</s>").or_else(|| named("<eos>"))),
        (43, named("<pad>")),
    ];
    for (field, id) in ids {
        put_int(&mut trainer, field, id.map_or(u64::MAX, |i| i as u64));
    }
    put_bytes(&mut out, 2, &trainer);
    let mut normalizer = Vec::new();
    let name = if spec.charsmap.is_empty() {
        "identity"
    } else {
        "nmt_nfkc"
    };
    put_bytes(&mut normalizer, 1, name.as_bytes());
    if !spec.charsmap.is_empty() {
        put_bytes(&mut normalizer, 2, &spec.charsmap);
    }
    put_int(&mut normalizer, 3, u64::from(spec.add_dummy_prefix));
    put_int(&mut normalizer, 4, u64::from(spec.remove_extra_whitespaces));
    put_bytes(&mut out, 3, &normalizer);
    out
}

fn piece(bytes: &[u8]) -> Result<Piece> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let mut p = Piece {
        text: String::new(),
        score: 0.0,
        kind: 1,
    };
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            (1, 2) => {
                let n = r.varint()?;
                p.text = std::str::from_utf8(r.take(n)?)
                    .map_err(|_| bad("a piece is not UTF-8"))?
                    .to_string();
            }
            (2, 5) => {
                let b = r.take(4)?;
                p.score = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            (3, 0) => p.kind = r.varint()? as i32,
            (_, w) => r.skip(w)?,
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pieces_and_skips_other_fields() {
        // ModelProto { pieces: [{piece: "▁a", score: -1.5, type: 1}, {piece: "<s>", type: 3}],
        //              trainer_spec (field 2): 2 bytes }
        let a = [&[0x0a, 4][..], "▁a".as_bytes()].concat();
        let mut p1 = vec![0x0a, a.len() as u8 - 2];
        p1.extend_from_slice(&a[2..]);
        p1.push(0x15);
        p1.extend_from_slice(&(-1.5f32).to_le_bytes());
        p1.extend_from_slice(&[0x18, 1]);
        let p2 = [&[0x0a, 3][..], b"<s>", &[0x18, 3]].concat();
        let mut model = vec![0x0a, p1.len() as u8];
        model.extend_from_slice(&p1);
        model.extend_from_slice(&[0x12, 2, 0xaa, 0xbb]);
        model.push(0x0a);
        model.push(p2.len() as u8);
        model.extend_from_slice(&p2);
        let got = pieces(&model, u64::MAX).unwrap();
        assert_eq!(
            got,
            [
                Piece {
                    text: "▁a".into(),
                    score: -1.5,
                    kind: 1
                },
                Piece {
                    text: "<s>".into(),
                    score: 0.0,
                    kind: 3
                },
            ]
        );
        // Truncations and hostile lengths are refused, never panic.
        for cut in 0..model.len() {
            let _ = pieces(&model[..cut], u64::MAX);
        }
        assert!(pieces(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f], u64::MAX).is_err());
        assert!(pieces(&[0x0b], u64::MAX).is_err());
    }

    #[test]
    fn written_models_read_back() {
        let piece = |text: &str, score: f32, kind: i32| Piece {
            text: text.into(),
            score,
            kind,
        };
        let ps = vec![
            piece("<unk>", 0.0, 2),
            piece("<s>", 0.0, 3),
            piece("<0x0A>", 0.0, 6),
            piece("\u{2581}a", -1.5, 1),
        ];
        let llama = Spec {
            unigram: false,
            add_dummy_prefix: true,
            remove_extra_whitespaces: false,
            charsmap: Vec::new(),
        };
        let bytes = write(&ps, &llama);
        assert_eq!(pieces(&bytes, u64::MAX).unwrap(), ps);
        assert_eq!(spec(&bytes).unwrap(), llama);
        let t5 = Spec {
            unigram: true,
            charsmap: vec![1, 2, 3],
            remove_extra_whitespaces: true,
            ..llama
        };
        assert_eq!(spec(&write(&ps, &t5)).unwrap(), t5);
    }
}
