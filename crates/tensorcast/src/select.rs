//! Tensor selection and renaming (`--include`, `--exclude`, `--rename`), as
//! an adapter any source can be wrapped in.

use tensorcast_core::{Error, Metadata, Result, Source, TensorData, TensorInfo};

/// Which tensors to keep and what to call them.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Keep only names matching one of these globs (`*`, `?`); empty keeps all.
    pub include: Vec<String>,
    /// Drop names matching one of these globs.
    pub exclude: Vec<String>,
    /// `FROM=TO` renames, applied in order: a name starting with `FROM` has
    /// that prefix replaced by `TO` (the first matching rule wins).
    pub rename: Vec<(String, String)>,
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
            .ok_or_else(|| format!("--rename takes FROM=TO, not '{s}'"))?;
        if from.is_empty() {
            return Err("--rename: FROM must not be empty".into());
        }
        Ok((from.to_string(), to.to_string()))
    }

    fn keeps(&self, name: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|g| glob(g, name)))
            && !self.exclude.iter().any(|g| glob(g, name))
    }

    fn renamed(&self, name: &str) -> String {
        for (from, to) in &self.rename {
            if let Some(rest) = name.strip_prefix(from.as_str()) {
                return format!("{to}{rest}");
            }
        }
        name.to_string()
    }
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
        let mut keep = Vec::new();
        let mut tensors = Vec::new();
        let mut seen = std::collections::HashMap::new();
        for (i, t) in inner.tensors().iter().enumerate() {
            if !sel.keeps(&t.name) {
                continue;
            }
            let mut t = t.clone();
            t.name = sel.renamed(&t.name);
            if t.name.is_empty() {
                return Err(Error::Unsupported(format!(
                    "--rename leaves tensor #{i} without a name"
                )));
            }
            if let Some(prev) = seen.insert(t.name.clone(), i) {
                return Err(Error::Unsupported(format!(
                    "--rename gives tensors #{prev} and #{i} the same name '{}'",
                    t.name
                )));
            }
            keep.push(i);
            tensors.push(t);
        }
        Ok(Select { inner, keep, tensors })
    }
}

impl<S: Source> Source for Select<S> {
    fn format(&self) -> &'static str {
        self.inner.format()
    }

    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    fn metadata(&self) -> &Metadata {
        self.inner.metadata()
    }

    fn warnings(&self) -> &[String] {
        self.inner.warnings()
    }

    fn storage_note(&self, index: usize) -> Option<String> {
        self.inner.storage_note(*self.keep.get(index)?)
    }

    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        let i = *self
            .keep
            .get(index)
            .ok_or_else(|| Error::Unsupported(format!("no tensor #{index}")))?;
        self.inner.tensor_data(i)
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
    fn rename_takes_the_first_matching_prefix() {
        let sel = Selection {
            rename: vec![("model.".into(), "".into()), ("lm_".into(), "out_".into())],
            ..Default::default()
        };
        assert_eq!(sel.renamed("model.embed"), "embed");
        assert_eq!(sel.renamed("lm_head"), "out_head");
        assert_eq!(sel.renamed("other"), "other");
    }
}
