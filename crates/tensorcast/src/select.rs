//! Tensor selection and renaming (globs to include and exclude, prefix and
//! regex renames), as an adapter any source can be wrapped in.

use tensorcast_core::code;
use tensorcast_core::{Error, Result, Source, TensorData, TensorInfo};

/// Which tensors to keep and what to call them.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Keep only names matching one of these globs (`*`, `?`); empty keeps all.
    pub include: Vec<String>,
    /// Drop names matching one of these globs.
    pub exclude: Vec<String>,
    /// `FROM=TO` renames, applied in order (the first matching rule wins): a
    /// name starting with `FROM` has that prefix replaced by `TO`; with
    /// `FROM` written `re:PATTERN`, a name matching the regex has its first
    /// match replaced by `TO` (`$1` names a capture group; needs the
    /// `regex` feature).
    pub rename: Vec<(String, String)>,
}

/// One compiled rename rule.
enum Rule {
    Prefix(String, String),
    #[cfg(feature = "regex")]
    Regex(regex::Regex, String),
}

/// Compiles a `re:` pattern, or says why it cannot be.
#[cfg(feature = "regex")]
fn compile(pattern: &str) -> Result<regex::Regex> {
    regex::Regex::new(pattern)
        .map_err(|e| Error::usage(code::BAD_OPTION, format!("bad rename regex '{pattern}': {e}")))
}

#[cfg(not(feature = "regex"))]
fn compile(pattern: &str) -> Result<std::convert::Infallible> {
    Err(Error::unsupported(
        code::FEATURE_MISSING,
        format!("rename regex '{pattern}' needs the regex feature of the tensorcast crate"),
    ))
}

impl Selection {
    /// True when the selection changes nothing.
    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty() && self.rename.is_empty()
    }

    /// Parses a `FROM=TO` rename.
    pub fn parse_rename(s: &str) -> std::result::Result<(String, String), String> {
        let (from, to) = s
            .split_once('=')
            .ok_or_else(|| format!("a rename is FROM=TO, not '{s}'"))?;
        if from.is_empty() {
            return Err("a rename's FROM must not be empty".into());
        }
        if let Some(pattern) = from.strip_prefix("re:") {
            compile(pattern).map_err(|e| e.to_string())?;
        }
        Ok((from.to_string(), to.to_string()))
    }

    fn rules(&self) -> Result<Vec<Rule>> {
        self.rename
            .iter()
            .map(|(from, to)| match from.strip_prefix("re:") {
                #[cfg(feature = "regex")]
                Some(p) => compile(p).map(|r| Rule::Regex(r, to.clone())),
                #[cfg(not(feature = "regex"))]
                Some(p) => compile(p).map(|never| match never {}),
                None => Ok(Rule::Prefix(from.clone(), to.clone())),
            })
            .collect()
    }

    fn keeps(&self, name: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|g| glob(g, name)))
            && !self.exclude.iter().any(|g| glob(g, name))
    }
}

fn renamed(rules: &[Rule], name: &str) -> String {
    for rule in rules {
        match rule {
            Rule::Prefix(from, to) => {
                if let Some(rest) = name.strip_prefix(from.as_str()) {
                    return format!("{to}{rest}");
                }
            }
            #[cfg(feature = "regex")]
            Rule::Regex(re, to) => {
                if re.is_match(name) {
                    return re.replace(name, to.as_str()).into_owned();
                }
            }
        }
    }
    name.to_string()
}

/// Shell-style wildcard match: `*` any run (dots included), `?` one character.
pub fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Iterative matcher with one backtrack point: linear in practice, never exponential.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    while i < p.len() && p[i] == '*' {
        i += 1;
    }
    i == p.len()
}

/// A source showing only the selected tensors, under their new names.
pub struct Select<S> {
    inner: S,
    keep: Vec<usize>,
    tensors: Vec<TensorInfo>,
}

impl<S: Source> Select<S> {
    /// Wraps `inner`; refuses a selection that leaves two tensors with one name.
    pub fn new(inner: S, sel: &Selection) -> Result<Self> {
        let rules = sel.rules()?;
        let mut keep = Vec::new();
        let mut tensors = Vec::new();
        let mut seen = std::collections::HashMap::new();
        for (i, t) in inner.tensors().iter().enumerate() {
            if !sel.keeps(&t.name) {
                continue;
            }
            let mut t = t.clone();
            t.name = renamed(&rules, &t.name);
            if t.name.is_empty() {
                return Err(Error::usage(
                    code::BAD_OPTION,
                    format!("renaming leaves tensor #{i} without a name"),
                ));
            }
            if let Some(prev) = seen.insert(t.name.clone(), i) {
                return Err(Error::usage(
                    code::BAD_OPTION,
                    format!(
                        "renaming gives tensors #{prev} and #{i} the same name '{}'",
                        t.name
                    ),
                ));
            }
            keep.push(i);
            tensors.push(t);
        }
        Ok(Select { inner, keep, tensors })
    }
}

impl<S: Source> Source for Select<S> {
    tensorcast_core::forward_to_inner!();

    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    fn storage_note(&self, index: usize) -> Option<String> {
        self.inner.storage_note(*self.keep.get(index)?)
    }

    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        let i = *self
            .keep
            .get(index)
            .ok_or_else(|| Error::usage(code::CALL_ORDER, format!("no tensor #{index}")))?;
        self.inner.tensor_data(i)
    }

    fn raw_location(&self, index: usize) -> Option<tensorcast_core::RawLocation<'_>> {
        self.inner.raw_location(*self.keep.get(index)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*.weight", "model.layers.0.weight"));
        assert!(glob("model.layers.?.mlp.*", "model.layers.3.mlp.up.weight"));
        assert!(!glob("model.layers.?.mlp.*", "model.layers.12.mlp.up.weight"));
        assert!(glob("*", ""));
        assert!(!glob("a*b", "ac"));
        // The classic exponential case for naive matchers: fast and false.
        assert!(!glob("*a*a*a*a*a*a*b", &"a".repeat(5000)));
        assert!(glob("*a*b", "xxaxxb"));
    }

    #[test]
    fn rename_takes_the_first_matching_rule() {
        let sel = Selection {
            rename: vec![
                ("model.".into(), "".into()),
                ("lm_".into(), "out_".into()),
                (r"re:^layers\.(\d+)\.attn".into(), "blk.$1.attention".into()),
            ],
            ..Default::default()
        };
        let rules = sel.rules().unwrap();
        assert_eq!(renamed(&rules, "model.embed"), "embed");
        assert_eq!(renamed(&rules, "lm_head"), "out_head");
        assert_eq!(renamed(&rules, "layers.12.attn.q"), "blk.12.attention.q");
        assert_eq!(renamed(&rules, "other"), "other");
        assert!(Selection::parse_rename("re:(=x").is_err());
    }
}
