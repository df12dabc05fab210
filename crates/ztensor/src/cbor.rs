//! Deterministic CBOR (RFC 8949 §4.2.1), as zTensor manifests use it: a
//! parser that refuses every non-deterministic form (non-shortest heads,
//! indefinite lengths, unsorted or duplicate map keys, floats wider than
//! their value needs, NaNs other than f97e00, tags) and an encoder that
//! writes only deterministic forms.

/// A CBOR data item.
#[derive(Clone, Debug, PartialEq)]
pub enum Cbor {
    /// An unsigned integer (major type 0).
    Uint(u64),
    /// A negative integer -1 - n (major type 1), stored as n.
    Neg(u64),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A text string.
    Text(String),
    /// An array.
    Array(Vec<Cbor>),
    /// A map, in its (sorted) encoded order.
    Map(Vec<(Cbor, Cbor)>),
    /// `true`/`false`.
    Bool(bool),
    /// `null`.
    Null,
    /// A float.
    Float(f64),
}

impl Cbor {
    /// The entry `key` of a map with text keys.
    pub fn get(&self, key: &str) -> Option<&Cbor> {
        match self {
            Cbor::Map(m) => m
                .iter()
                .find(|(k, _)| matches!(k, Cbor::Text(t) if t == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text, if this is text.
    pub fn text(&self) -> Option<&str> {
        match self {
            Cbor::Text(t) => Some(t),
            _ => None,
        }
    }

    /// The unsigned integer, if this is one.
    pub fn uint(&self) -> Option<u64> {
        match self {
            Cbor::Uint(n) => Some(*n),
            _ => None,
        }
    }
}

/// Nesting allowed, counted from the root (the spec's limit is 32).
const MAX_DEPTH: usize = 32;

/// Parses one item filling all of `bytes`, of at most `max_items` items in
/// all (each decoded item costs a few dozen bytes however small its
/// encoding: an array of 16 M one-byte items would cost half a gigabyte);
/// the error says what and where.
pub fn parse(bytes: &[u8], max_items: u64) -> Result<Cbor, String> {
    let mut p = Parser {
        b: bytes,
        at: 0,
        items_left: max_items,
    };
    let v = p.item(0)?;
    if p.at != bytes.len() {
        return Err(format!("{} bytes after the manifest's item", bytes.len() - p.at));
    }
    Ok(v)
}

struct Parser<'a> {
    b: &'a [u8],
    at: usize,
    items_left: u64,
}

impl Parser<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or("the manifest ends inside an item")?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    /// A head: (major type, argument), refusing non-shortest arguments.
    fn head(&mut self) -> Result<(u8, u64, u8), String> {
        let at = self.at;
        let first = self.take(1)?[0];
        let (major, info) = (first >> 5, first & 0x1f);
        let arg = match info {
            0..=23 => u64::from(info),
            24..=27 => {
                let n = 1usize << (info - 24);
                let v = self.take(n)?.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b));
                // Floats (major 7) are checked for shortest form separately.
                let shortest = match info {
                    24 => v >= 24,
                    25 => v > 0xff,
                    26 => v > 0xffff,
                    _ => v > 0xffff_ffff,
                };
                if major != 7 && !shortest {
                    return Err(format!("a non-shortest integer head at byte {at}"));
                }
                v
            }
            31 => return Err(format!("an indefinite length at byte {at}")),
            _ => return Err(format!("a reserved head at byte {at}")),
        };
        Ok((major, arg, info))
    }

    fn item(&mut self, depth: usize) -> Result<Cbor, String> {
        if depth > MAX_DEPTH {
            return Err(format!("nesting deeper than {MAX_DEPTH} levels"));
        }
        let at = self.at;
        self.items_left = self.items_left.checked_sub(1).ok_or_else(|| {
            format!(
                "more items than the manifest budget allows (at byte {at}; the header size limit sets it)"
            )
        })?;
        let (major, arg, info) = self.head()?;
        let len = |arg: u64| usize::try_from(arg).map_err(|_| "a length too large".to_string());
        Ok(match major {
            0 => Cbor::Uint(arg),
            1 => Cbor::Neg(arg),
            2 => Cbor::Bytes(self.take(len(arg)?)?.to_vec()),
            3 => Cbor::Text(
                String::from_utf8(self.take(len(arg)?)?.to_vec())
                    .map_err(|_| format!("text that is not UTF-8 at byte {at}"))?,
            ),
            4 => {
                let n = len(arg)?;
                // Every item takes at least a byte: bounds the reservation.
                let mut v = Vec::with_capacity(n.min(self.b.len() - self.at));
                for _ in 0..n {
                    v.push(self.item(depth + 1)?);
                }
                Cbor::Array(v)
            }
            5 => {
                let n = len(arg)?;
                let mut v: Vec<(Cbor, Cbor)> = Vec::with_capacity(n.min(self.b.len() - self.at));
                let mut last: Option<&[u8]> = None;
                let b = self.b;
                for _ in 0..n {
                    let key_at = self.at;
                    let k = self.item(depth + 1)?;
                    let key_bytes = &b[key_at..self.at];
                    if let Some(prev) = last {
                        if key_bytes <= prev {
                            return Err(format!("map keys out of order or repeated at byte {key_at}"));
                        }
                    }
                    last = Some(key_bytes);
                    let val = self.item(depth + 1)?;
                    v.push((k, val));
                }
                Cbor::Map(v)
            }
            6 => return Err(format!("a tag at byte {at} (manifests carry none)")),
            _ => match (info, arg) {
                (20, _) => Cbor::Bool(false),
                (21, _) => Cbor::Bool(true),
                (22, _) => Cbor::Null,
                (25, bits) => {
                    let v = f16_to_f64(bits as u16);
                    if v.is_nan() && bits != 0x7e00 {
                        return Err(format!("a non-canonical NaN at byte {at}"));
                    }
                    Cbor::Float(v)
                }
                (26, bits) => {
                    let v = f64::from(f32::from_bits(bits as u32));
                    if v.is_nan() || shortest_float(v) != 26 {
                        return Err(format!("a float wider than its value needs at byte {at}"));
                    }
                    Cbor::Float(v)
                }
                (27, bits) => {
                    let v = f64::from_bits(bits);
                    if v.is_nan() || shortest_float(v) != 27 {
                        return Err(format!("a float wider than its value needs at byte {at}"));
                    }
                    Cbor::Float(v)
                }
                _ => return Err(format!("an unsupported simple value at byte {at}")),
            },
        })
    }
}

fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = (h >> 10) & 0x1f;
    let frac = f64::from(h & 0x3ff);
    sign * match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + frac / 1024.0) * 2f64.powi(i32::from(e) - 15),
    }
}

/// f64 → f16 bits, when exact.
fn exact_f16(v: f64) -> Option<u16> {
    if v.is_nan() {
        return Some(0x7e00);
    }
    let sign: u16 = if v.is_sign_negative() { 0x8000 } else { 0 };
    let a = v.abs();
    if a == 0.0 {
        return Some(sign);
    }
    if a.is_infinite() {
        return Some(sign | 0x7c00);
    }
    // Try every f16 exponent: normal and subnormal.
    let e = a.log2().floor() as i32;
    let bits = if e >= -14 {
        if e > 15 {
            return None;
        }
        let frac = (a / 2f64.powi(e) - 1.0) * 1024.0;
        if frac.fract() != 0.0 || !(0.0..1024.0).contains(&frac) {
            return None;
        }
        (((e + 15) as u16) << 10) | frac as u16
    } else {
        let frac = a / 2f64.powi(-24);
        if frac.fract() != 0.0 || frac >= 1024.0 {
            return None;
        }
        frac as u16
    };
    (f16_to_f64(bits) == a).then_some(sign | bits)
}

/// The head width (25, 26 or 27) a float needs to round-trip exactly.
fn shortest_float(v: f64) -> u8 {
    if exact_f16(v).is_some() {
        25
    } else if f64::from(v as f32) == v {
        26
    } else {
        27
    }
}

/// Writes `v` in deterministic form (maps sorted by their encoded keys).
pub fn encode(v: &Cbor, out: &mut Vec<u8>) {
    match v {
        Cbor::Uint(n) => head(0, *n, out),
        Cbor::Neg(n) => head(1, *n, out),
        Cbor::Bytes(b) => {
            head(2, b.len() as u64, out);
            out.extend_from_slice(b);
        }
        Cbor::Text(t) => {
            head(3, t.len() as u64, out);
            out.extend_from_slice(t.as_bytes());
        }
        Cbor::Array(a) => {
            head(4, a.len() as u64, out);
            a.iter().for_each(|x| encode(x, out));
        }
        Cbor::Map(m) => {
            let mut entries: Vec<(Vec<u8>, &Cbor)> = m
                .iter()
                .map(|(k, v)| {
                    let mut kb = Vec::new();
                    encode(k, &mut kb);
                    (kb, v)
                })
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            entries.dedup_by(|a, b| a.0 == b.0);
            head(5, entries.len() as u64, out);
            for (k, v) in entries {
                out.extend_from_slice(&k);
                encode(v, out);
            }
        }
        Cbor::Bool(b) => out.push(if *b { 0xf5 } else { 0xf4 }),
        Cbor::Null => out.push(0xf6),
        Cbor::Float(f) => match shortest_float(*f) {
            25 => {
                out.push(0xf9);
                out.extend_from_slice(&exact_f16(*f).unwrap_or(0x7e00).to_be_bytes());
            }
            26 => {
                out.push(0xfa);
                out.extend_from_slice(&(*f as f32).to_bits().to_be_bytes());
            }
            _ => {
                out.push(0xfb);
                out.extend_from_slice(&f.to_bits().to_be_bytes());
            }
        },
    }
}

fn head(major: u8, n: u64, out: &mut Vec<u8>) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[m | 24, n as u8]);
    } else if n <= 0xffff {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= 0xffff_ffff {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(v: Cbor) {
        let mut b = Vec::new();
        encode(&v, &mut b);
        assert_eq!(parse(&b, u64::MAX).unwrap(), v, "{b:02x?}");
    }

    #[test]
    fn deterministic_forms_round_trip_and_others_are_refused() {
        round(Cbor::Uint(0));
        round(Cbor::Uint(24));
        round(Cbor::Uint(u64::MAX));
        round(Cbor::Neg(500));
        round(Cbor::Float(1.5));
        round(Cbor::Float(0.1));
        round(Cbor::Float(1e300));
        round(Cbor::Float(65504.0));
        round(Cbor::Float(5.960464477539063e-8));
        round(Cbor::Map(vec![(
            Cbor::Text("a".into()),
            Cbor::Array(vec![Cbor::Bool(true), Cbor::Null]),
        )]));
        let mut b = Vec::new();
        encode(&Cbor::Float(1.5), &mut b);
        assert_eq!(b, [0xf9, 0x3e, 0x00]);
        assert!(parse(&[0x18, 0x05], u64::MAX).is_err(), "non-shortest");
        assert!(parse(&[0x9f, 0xff], u64::MAX).is_err(), "indefinite");
        assert!(
            parse(&[0xa2, 0x61, b'b', 0, 0x61, b'a', 0], u64::MAX).is_err(),
            "unsorted"
        );
        assert!(
            parse(&[0xa2, 0x61, b'a', 0, 0x61, b'a', 0], u64::MAX).is_err(),
            "duplicate"
        );
        assert!(parse(&[0xfa, 0x3f, 0xc0, 0, 0], u64::MAX).is_err(), "1.5 as f32");
        assert!(parse(&[0xf9, 0x7e, 0x01], u64::MAX).is_err(), "NaN payload");
        assert!(parse(&[0xc1, 0x00], u64::MAX).is_err(), "tag");
        // Items are counted: three in [1, 2], so a budget of two refuses it.
        assert!(parse(&[0x82, 0x01, 0x02], 3).is_ok());
        assert!(parse(&[0x82, 0x01, 0x02], 2).is_err(), "budget");
        assert!(parse(&[0x81; 40], u64::MAX).is_err(), "depth");
        assert!(
            parse(&[0x9a, 0xff, 0xff, 0xff, 0xff], u64::MAX).is_err(),
            "huge array, no items"
        );
        // Length-first key order: "b" sorts before "aa".
        let m = Cbor::Map(vec![
            (Cbor::Text("aa".into()), Cbor::Uint(1)),
            (Cbor::Text("b".into()), Cbor::Uint(2)),
        ]);
        let mut b = Vec::new();
        encode(&m, &mut b);
        assert_eq!(b, [0xa2, 0x61, b'b', 2, 0x62, b'a', b'a', 1]);
        assert_eq!(parse(&b, u64::MAX).unwrap().get("aa"), Some(&Cbor::Uint(1)));
    }
}
