//! The `.npy` header: magic, version, and the Python dict literal that
//! describes dtype, memory order and shape.

use crate::rules;
use tensorcast_core::{DType, FormatError};

/// The first six bytes of every `.npy`.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// What a header says about the array that follows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyHeader {
    /// Element type.
    pub dtype: DType,
    /// Elements are stored big-endian.
    pub big_endian: bool,
    /// Column-major (Fortran) order.
    pub fortran_order: bool,
    /// Shape, outermost first.
    pub shape: Vec<u64>,
    /// Offset of the data from the start of the `.npy`.
    pub data_offset: usize,
}

fn err(rule: &'static str, detail: impl Into<String>) -> FormatError {
    FormatError::new(crate::FORMAT, rule, detail)
}

/// Parses the header at the start of `bytes` (which may hold only a prefix
/// of the array). `max_header` bounds the declared header length.
pub fn parse(bytes: &[u8], max_header: u64) -> Result<NpyHeader, FormatError> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(err(rules::MAGIC, "not a .npy array (magic \\x93NUMPY missing)"));
    }
    let major = bytes[6];
    let (len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as u64, 10usize),
        2 | 3 => {
            let b = bytes
                .get(8..12)
                .ok_or_else(|| err(rules::TRUNCATED, "header length cut off"))?;
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64, 12usize)
        }
        v => {
            return Err(err(
                rules::VERSION,
                format!("format version {v} (known: 1, 2, 3)"),
            ))
        }
    };
    if len > max_header {
        return Err(err(
            rules::HEADER,
            format!("a {len}-byte header exceeds the {max_header}-byte limit"),
        )
        .limit("max_header_bytes"));
    }
    let end = start + len as usize;
    let text = bytes
        .get(start..end)
        .ok_or_else(|| err(rules::TRUNCATED, "header runs past the end"))?;
    let text: String = if major == 3 {
        std::str::from_utf8(text)
            .map_err(|_| err(rules::HEADER, "header is not UTF-8"))?
            .to_string()
    } else {
        text.iter().map(|&b| char::from(b)).collect()
    };
    let dict = Literal::parse(&text)?;
    let descr = dict.get_str("descr")?;
    let fortran_order = dict.get_bool("fortran_order")?;
    let shape = dict.get_shape("shape")?;
    let (dtype, big_endian) = descr_dtype(descr)?;
    Ok(NpyHeader {
        dtype,
        big_endian,
        fortran_order,
        shape,
        data_offset: end,
    })
}

/// `'<f4'` and friends. Object, string, void and structured dtypes are refused
/// (object arrays would need unpickling, which tensorcast never does).
fn descr_dtype(descr: &str) -> Result<(DType, bool), FormatError> {
    let bad = |why: &str| err(rules::DTYPE, format!("dtype '{descr}': {why}"));
    let mut chars = descr.chars();
    let order = chars.next().ok_or_else(|| bad("empty"))?;
    let big = match order {
        '<' | '|' | '=' => false,
        '>' => true,
        _ => return Err(bad("no byte-order character")),
    };
    let code: &str = &descr[1..];
    let dtype = match code {
        "f2" => DType::F16,
        "f4" => DType::F32,
        "f8" => DType::F64,
        "i1" => DType::I8,
        "i2" => DType::I16,
        "i4" => DType::I32,
        "i8" => DType::I64,
        "u1" => DType::U8,
        "u2" => DType::U16,
        "u4" => DType::U32,
        "u8" => DType::U64,
        "b1" => DType::Bool,
        "c8" => DType::C64,
        "c16" => DType::C128,
        "O" => {
            return Err(err(
                rules::OBJECT,
                "object arrays hold pickled Python objects; they are refused, never unpickled",
            ))
        }
        _ => return Err(bad("not a numeric dtype tensorcast can hold")),
    };
    Ok((dtype, big && dtype.byte_size().unwrap_or(1) > 1))
}

/// The `.npy` name of `dtype`, or `None` when NumPy has no such dtype.
pub fn dtype_descr(dtype: DType) -> Option<&'static str> {
    Some(match dtype {
        DType::F16 => "<f2",
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::I8 => "|i1",
        DType::I16 => "<i2",
        DType::I32 => "<i4",
        DType::I64 => "<i8",
        DType::U8 => "|u1",
        DType::U16 => "<u2",
        DType::U32 => "<u4",
        DType::U64 => "<u8",
        DType::Bool => "|b1",
        DType::C64 => "<c8",
        DType::C128 => "<c16",
        _ => return None,
    })
}

/// The header `np.save` writes: version 1.0 (2.0 when the dict needs more than
/// 64 KiB), the dict with NumPy's spare room for growing the first axis, then
/// spaces and a newline up to a multiple of 64 bytes.
pub fn format(descr: &str, shape: &[u64]) -> Vec<u8> {
    // NumPy: at most 21 digits of spare room for rewriting shape[0] in place.
    const GROWTH_AXIS_MAX_DIGITS: usize = 21;
    let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
    let shape_repr = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_repr}, }}");
    if let Some(first) = dims.first() {
        dict.push_str(&" ".repeat(GROWTH_AXIS_MAX_DIGITS.saturating_sub(first.len())));
    }
    for (major, prefix) in [(1u8, 10usize), (2, 12)] {
        let hlen = dict.len() + 1;
        let pad = 64 - (prefix + hlen) % 64;
        let len = hlen + pad;
        if major == 1 && len > u16::MAX as usize {
            continue;
        }
        let mut out = Vec::with_capacity(prefix + len);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[major, 0]);
        if major == 1 {
            out.extend_from_slice(&(len as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(len as u32).to_le_bytes());
        }
        out.extend_from_slice(dict.as_bytes());
        out.extend(std::iter::repeat_n(b' ', pad));
        out.push(b'\n');
        return out;
    }
    unreachable!("version 2 holds any header")
}

/// The header's dict literal: `{'key': value, ...}` with string, bool and
/// integer-tuple values.
struct Literal {
    entries: Vec<(String, Lit)>,
}

enum Lit {
    Str(String),
    Bool(bool),
    Tuple(Vec<u64>),
}

impl Literal {
    fn parse(text: &str) -> Result<Literal, FormatError> {
        let bad = |why: &str| err(rules::HEADER, format!("header dict: {why}: {}", text.trim()));
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        p.ws();
        p.eat(b'{').ok_or_else(|| bad("no '{'"))?;
        let mut entries = Vec::new();
        loop {
            p.ws();
            if p.eat(b'}').is_some() {
                break;
            }
            let key = p.string().ok_or_else(|| bad("key is not a string"))?;
            p.ws();
            p.eat(b':').ok_or_else(|| bad("no ':'"))?;
            p.ws();
            let value = if let Some(s) = p.string() {
                Lit::Str(s)
            } else if p.word("True") {
                Lit::Bool(true)
            } else if p.word("False") {
                Lit::Bool(false)
            } else if p.eat(b'(').is_some() {
                let mut dims = Vec::new();
                loop {
                    p.ws();
                    if p.eat(b')').is_some() {
                        break;
                    }
                    dims.push(p.int().ok_or_else(|| bad("shape holds a non-integer"))?);
                    p.ws();
                    if p.eat(b',').is_none() {
                        p.ws();
                        p.eat(b')').ok_or_else(|| bad("unclosed shape"))?;
                        break;
                    }
                }
                Lit::Tuple(dims)
            } else {
                return Err(bad("unsupported value (structured dtypes are refused)"));
            };
            // numpy's literal_eval keeps the last of repeated keys; a reader
            // keeping the first would see another array: refuse both.
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(err(rules::DUPLICATE_KEY, format!("header dict repeats key '{key}'")).key(&key));
            }
            entries.push((key, value));
            p.ws();
            if p.eat(b',').is_none() {
                p.ws();
                p.eat(b'}').ok_or_else(|| bad("no closing '}'"))?;
                break;
            }
        }
        Ok(Literal { entries })
    }

    fn get(&self, key: &str) -> Result<&Lit, FormatError> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .ok_or_else(|| err(rules::HEADER, format!("header has no '{key}'")))
    }

    fn get_str(&self, key: &str) -> Result<&str, FormatError> {
        match self.get(key)? {
            Lit::Str(s) => Ok(s),
            _ => Err(err(rules::HEADER, format!("'{key}' is not a string"))),
        }
    }

    fn get_bool(&self, key: &str) -> Result<bool, FormatError> {
        match self.get(key)? {
            Lit::Bool(b) => Ok(*b),
            _ => Err(err(rules::HEADER, format!("'{key}' is not True/False"))),
        }
    }

    fn get_shape(&self, key: &str) -> Result<Vec<u64>, FormatError> {
        match self.get(key)? {
            Lit::Tuple(t) => Ok(t.clone()),
            _ => Err(err(rules::HEADER, format!("'{key}' is not a tuple"))),
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.s.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    fn word(&mut self, w: &str) -> bool {
        let ok = self.s[self.i..].starts_with(w.as_bytes());
        if ok {
            self.i += w.len();
        }
        ok
    }

    fn string(&mut self) -> Option<String> {
        let q = *self.s.get(self.i)?;
        if q != b'\'' && q != b'"' {
            return None;
        }
        let rest = &self.s[self.i + 1..];
        let n = rest.iter().position(|&c| c == q)?;
        self.i += n + 2;
        String::from_utf8(rest[..n].to_vec()).ok()
    }

    fn int(&mut self) -> Option<u64> {
        let start = self.i;
        while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        let digits = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        // Python 2 wrote long dims as `3L`.
        if self.s.get(self.i) == Some(&b'L') {
            self.i += 1;
        }
        digits.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_numpy_writes_and_formats_it_back() {
        let h = format("<f4", &[3, 4]);
        assert_eq!(h.len() % 64, 0);
        let p = parse(&h, 1 << 20).unwrap();
        assert_eq!(
            (p.dtype, p.big_endian, p.fortran_order),
            (DType::F32, false, false)
        );
        assert_eq!((p.shape.clone(), p.data_offset), (vec![3, 4], h.len()));
        let one = parse(&format("|b1", &[5]), 1 << 20).unwrap();
        assert_eq!(one.shape, [5]);
        let scalar = parse(&format("<i8", &[]), 1 << 20).unwrap();
        assert!(scalar.shape.is_empty());
    }

    #[test]
    fn refuses_objects_and_garbage() {
        let mut h = b"\x93NUMPY\x01\x00".to_vec();
        let dict = b"{'descr': '|O', 'fortran_order': False, 'shape': (2,), }\n";
        h.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        h.extend_from_slice(dict);
        assert_eq!(parse(&h, 1 << 20).unwrap_err().rule, rules::OBJECT);
        assert_eq!(
            parse(b"\x93NUMPY\x09\x00xx", 1 << 20).unwrap_err().rule,
            rules::VERSION
        );
        assert_eq!(
            parse(b"\x93NUMPY\x01\x00\xff\xff{", 1 << 20).unwrap_err().rule,
            rules::TRUNCATED
        );
    }
}
