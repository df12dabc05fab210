//! The naming of models split over several files, which Hugging Face shards
//! (`model-00001-of-00003.safetensors`) and llama.cpp's split GGUF
//! (`model-00001-of-00003.gguf`) share: formats use it in their
//! [`crate::Format::input_role`] and [`crate::Format::stem`].

/// A file stem (name without its extension) read as part `index` of
/// `count` of the model called `base`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartName<'a> {
    /// The model's name (`model`).
    pub base: &'a str,
    /// This part's number, from 1.
    pub index: u32,
    /// How many parts there are.
    pub count: u32,
}

impl<'a> PartName<'a> {
    /// `stem` as `BASE-KKKKK-of-NNNNN` (five digits each, as both writers
    /// name parts); `None` for any other stem.
    pub fn parse(stem: &'a str) -> Option<PartName<'a>> {
        let b = stem.as_bytes();
        let n = b.len();
        let shaped = n > 15
            && b[n - 15] == b'-'
            && b[n - 9..n - 5] == *b"-of-"
            && b[n - 14..n - 9].iter().chain(&b[n - 5..]).all(u8::is_ascii_digit);
        if !shaped {
            return None;
        }
        Some(PartName {
            base: &stem[..n - 15],
            index: stem[n - 14..n - 9].parse().ok()?,
            count: stem[n - 5..].parse().ok()?,
        })
    }

    /// The stem of part `index` of `count` of `base`.
    pub fn format(base: &str, index: u32, count: u32) -> String {
        format!("{base}-{index:05}-of-{count:05}")
    }
}

/// The part a file called `name` is, when its stem (without one of
/// `extensions`) is part-named.
pub fn part_of<'a>(name: &'a str, extensions: &[&str]) -> Option<PartName<'a>> {
    PartName::parse(strip_extension(name, extensions)?)
}

/// The model's name in a file called `name`: without its extension (one of
/// `extensions`) and any part naming (`model-00001-of-00003.gguf` →
/// `model`); what [`crate::Format::stem`] gives for multi-part formats.
pub fn model_stem<'a>(name: &'a str, extensions: &[&str]) -> &'a str {
    let stem = strip_extension(name, extensions).unwrap_or(name);
    PartName::parse(stem).map_or(stem, |p| p.base)
}

/// `name` without the longest of `extensions` it ends with after a dot
/// (compared ignoring ASCII case); `None` when it ends with none of them.
pub fn strip_extension<'a>(name: &'a str, extensions: &[&str]) -> Option<&'a str> {
    extensions
        .iter()
        .filter(|e| {
            name.len() > e.len()
                && name.is_char_boundary(name.len() - e.len() - 1)
                && name[name.len() - e.len()..].eq_ignore_ascii_case(e)
                && name.as_bytes()[name.len() - e.len() - 1] == b'.'
        })
        .max_by_key(|e| e.len())
        .map(|e| &name[..name.len() - e.len() - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_names() {
        let p = PartName::parse("llama-00002-of-00003").unwrap();
        assert_eq!((p.base, p.index, p.count), ("llama", 2, 3));
        assert_eq!(PartName::format("llama", 2, 3), "llama-00002-of-00003");
        assert_eq!(
            part_of("m-00002-of-00003.gguf", &["gguf"]).map(|p| p.index),
            Some(2)
        );
        assert_eq!(part_of("m.gguf", &["gguf"]), None);
        assert_eq!(model_stem("m-00002-of-00003.gguf", &["gguf"]), "m");
        assert_eq!(model_stem("m.gguf", &["gguf"]), "m");
        for stem in ["llama", "llama-2-of-3", "x-0000a-of-00003", "-00001-of-00003"] {
            assert_eq!(PartName::parse(stem), None, "{stem}");
        }
    }

    #[test]
    fn extensions_longest_first() {
        let exts = ["safetensors", "safetensors.index.json"];
        assert_eq!(strip_extension("m.safetensors.index.json", &exts), Some("m"));
        assert_eq!(strip_extension("M.SafeTensors", &exts), Some("M"));
        assert_eq!(strip_extension("safetensors", &exts), None);
        assert_eq!(strip_extension("m.json", &exts), None);
        assert_eq!(strip_extension("é.safetensors", &exts), Some("é"));
    }
}
