//! A tokenizer's token texts and ids, held compactly: every text in one
//! buffer and an entry per token sorted by text, so a 262,144-token
//! vocabulary (Gemma's) takes about 8 MiB where an ordered map of strings
//! took about 35 MiB. Tokens inserted after it is built (a union's, a
//! configuration's) go to a small map beside it.

use std::collections::BTreeMap;

/// Token text to id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokenIds {
    text: String,
    /// (start, end) of a text in `text`, and its id; sorted by text, each
    /// text once.
    sorted: Vec<(usize, usize, u64)>,
    /// Tokens inserted once built.
    extra: BTreeMap<String, u64>,
}

impl TokenIds {
    /// An empty vocabulary.
    pub fn new() -> TokenIds {
        TokenIds::default()
    }

    fn text_of(&self, e: &(usize, usize, u64)) -> &str {
        &self.text[e.0..e.1]
    }

    fn find(&self, token: &str) -> Result<usize, usize> {
        self.sorted.binary_search_by(|e| self.text_of(e).cmp(token))
    }

    /// The id of `token`.
    pub fn get(&self, token: &str) -> Option<u64> {
        match self.find(token) {
            Ok(i) => Some(self.sorted[i].2),
            Err(_) => self.extra.get(token).copied(),
        }
    }

    /// Whether `token` is in the vocabulary.
    pub fn contains(&self, token: &str) -> bool {
        self.get(token).is_some()
    }

    /// Gives `token` id `id` (a token already there takes the new id).
    pub fn insert(&mut self, token: &str, id: u64) {
        match self.find(token) {
            Ok(i) => self.sorted[i].2 = id,
            Err(_) => {
                self.extra.insert(token.to_string(), id);
            }
        }
    }

    /// The number of tokens.
    pub fn len(&self) -> usize {
        self.sorted.len() + self.extra.len()
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every token and its id (in no particular order).
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.sorted
            .iter()
            .map(|e| (self.text_of(e), e.2))
            .chain(self.extra.iter().map(|(t, &id)| (t.as_str(), id)))
    }

    /// The highest id, if any.
    pub fn max_id(&self) -> Option<u64> {
        self.iter().map(|(_, id)| id).max()
    }

    /// Keeps the tokens whose id `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(u64) -> bool) {
        self.sorted.retain(|e| keep(e.2));
        self.extra.retain(|_, id| keep(*id));
    }
}

/// A [`TokenIds`] built a token at a time (as a tokenizer.json is read).
#[derive(Default)]
pub struct TokenIdsBuilder {
    ids: TokenIds,
}

impl TokenIdsBuilder {
    /// Adds `token` with id `id`; where a text comes twice, its last id
    /// wins (as a map's insert does: tokenizer.json's added tokens over its
    /// vocab).
    pub fn push(&mut self, token: &str, id: u64) {
        let ids = &mut self.ids;
        let start = ids.text.len();
        ids.text.push_str(token);
        ids.sorted.push((start, ids.text.len(), id));
    }

    /// The vocabulary.
    pub fn build(self) -> TokenIds {
        let mut ids = self.ids;
        let text = &ids.text;
        // Stable: of equal texts the last pushed stays last, and is kept.
        ids.sorted.sort_by(|a, b| text[a.0..a.1].cmp(&text[b.0..b.1]));
        let mut kept: Vec<(usize, usize, u64)> = Vec::with_capacity(ids.sorted.len());
        for e in std::mem::take(&mut ids.sorted) {
            match kept.last_mut() {
                Some(last) if text[last.0..last.1] == text[e.0..e.1] => *last = e,
                _ => kept.push(e),
            }
        }
        kept.shrink_to_fit();
        ids.sorted = kept;
        ids.text.shrink_to_fit();
        ids
    }
}

impl<S: AsRef<str>> FromIterator<(S, u64)> for TokenIds {
    /// Tokens and ids, as [`TokenIdsBuilder`] takes them.
    fn from_iter<I: IntoIterator<Item = (S, u64)>>(pairs: I) -> TokenIds {
        let mut b = TokenIdsBuilder::default();
        for (token, id) in pairs {
            b.push(token.as_ref(), id);
        }
        b.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vocabulary_answers_as_a_map_would() {
        let pairs = [("b", 1u64), ("a", 0), ("<s>", 2), ("a", 7), ("", 3)];
        let mut ids: TokenIds = pairs.iter().map(|&(t, i)| (t, i)).collect();
        let mut map: BTreeMap<String, u64> = pairs.iter().map(|&(t, i)| (t.to_string(), i)).collect();
        assert_eq!(ids.len(), map.len());
        for t in ["a", "b", "<s>", "", "c"] {
            assert_eq!(ids.get(t), map.get(t).copied(), "{t:?}");
        }
        ids.insert("c", 9);
        ids.insert("b", 4);
        map.insert("c".into(), 9);
        map.insert("b".into(), 4);
        ids.retain(|id| id != 3);
        map.retain(|_, id| *id != 3);
        let mut got: Vec<(String, u64)> = ids.iter().map(|(t, i)| (t.to_string(), i)).collect();
        got.sort();
        assert_eq!(got, map.into_iter().collect::<Vec<_>>());
        assert_eq!(ids.max_id(), Some(9));
        assert!(ids.contains("c") && !ids.contains(""));
    }
}
