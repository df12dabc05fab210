//! mergekit's permuted vocabularies: with `tokenizer_source` (or a
//! `tokenizer:` section) every model's token-indexed rows (`embed_tokens`,
//! `lm_head`) are laid out in the output tokenizer's vocabulary before they
//! are merged. A token's row is found by its text in each model's own
//! tokenizer; where a model lacks the token, the row comes from the one model
//! that has it, else from the base model, else it is the mean of the models
//! that have it (zero when none has), unless the configuration's `tokens`
//! says otherwise (mergekit 0.1.5, `tokenizer/embed.py`).
//!
//! The plan here is pure bookkeeping over token ids; [`crate::MergedSource`]
//! gathers the rows as it streams a token-indexed tensor.

use std::collections::BTreeMap;
use tensorcast_core::{code, Error, Result};

pub use crate::token_ids::{TokenIds, TokenIdsBuilder};

/// Where a token's row comes from when a configuration names it
/// (mergekit's `TokenEmbeddingConfig.source`).
#[derive(Clone, Debug, PartialEq)]
pub enum TokenSource {
    /// That model's row of the same token.
    Model(String),
    /// A given row of a model: by id, or by the token text in that model's
    /// own tokenizer.
    ModelToken {
        /// The model.
        model: String,
        /// The row.
        id: Option<u64>,
        /// The token whose row it is.
        token: Option<String>,
    },
    /// Zeros.
    Zero,
}

/// A configured token (an entry of `tokenizer.tokens`).
#[derive(Clone, Debug, PartialEq)]
pub struct TokenRule {
    /// Where its row comes from.
    pub source: Option<TokenSource>,
    /// Use `source` even in models that have the token.
    pub force: bool,
}

/// mergekit's `tokenizer:` section.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenizerSection {
    /// `union`, `base` or a model.
    pub source: String,
    /// Configured tokens, in configuration order.
    pub tokens: Vec<(String, TokenRule)>,
    /// Rows padded to a multiple of this.
    pub pad_to_multiple_of: Option<u64>,
}

/// One input model's vocabulary as mergekit sees it.
#[derive(Clone, Debug)]
pub struct ModelVocab {
    /// Its tokenizer's tokens.
    pub ids: TokenIds,
    /// The rows its config.json declares (`vocab_size`): tokens at or past
    /// it have no row.
    pub size: u64,
}

/// A row made where a model lacks the token, or where it is forced.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Fill {
    /// Row `.1` of input `.0`.
    Row(usize, u64),
    /// The mean of these rows (summed in this order, then divided).
    Average(Vec<(usize, u64)>),
    /// Zeros.
    Zero,
}

/// A row of one input's permuted tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum RowOf<'a> {
    /// The input's own row.
    Own(u64),
    /// A made row.
    Fill(&'a Fill),
    /// Padding past the vocabulary: the mean of the input's rows before it.
    Pad,
}

/// The largest `pad_to_multiple_of` taken.
pub const MAX_PAD: u64 = 1 << 16;

/// Marks an output row an input takes from `fills`.
const FILLED: u64 = u64::MAX;

/// How every input's token-indexed tensors are laid out in the output
/// vocabulary.
#[derive(Clone, Debug)]
pub struct VocabPlan {
    /// Rows with padding (`pad_to_multiple_of`).
    rows: u64,
    /// The output vocabulary's tokens.
    tokens: u64,
    /// Per input, per output row: its own row, or [`FILLED`].
    own: Vec<Vec<u64>>,
    fills: BTreeMap<u64, Fill>,
}

fn refuse(detail: String) -> Error {
    Error::unsupported(code::MERGE_MISMATCH, format!("tokenizer: {detail}"))
}

impl VocabPlan {
    /// Plans the rows. `out`: the output tokenizer's tokens (ids 0..n, each
    /// once); `inputs`: each input's name and vocabulary, in the merged
    /// source's input order; `base`: the base model's input, when the
    /// configuration has one among them; `rules`: configured tokens; `pad`:
    /// the rows are padded to a multiple of it, each padding row the mean of
    /// the input's rows before it (`pad_to_multiple_of`).
    pub fn new(
        out: &TokenIds,
        inputs: &[(String, ModelVocab)],
        base: Option<usize>,
        rules: &[(String, TokenRule)],
        pad: Option<u64>,
    ) -> Result<VocabPlan> {
        let n = out.len() as u64;
        let mut by_id: Vec<Option<&str>> = vec![None; out.len()];
        for (token, id) in out.iter() {
            match by_id.get_mut(id as usize) {
                Some(slot @ None) => *slot = Some(token),
                Some(Some(other)) => {
                    return Err(refuse(format!(
                        "the output tokenizer gives id {id} to both {other:?} and {token:?}"
                    )))
                }
                None => {
                    return Err(refuse(format!(
                    "the output tokenizer has {n} tokens and gives {token:?} id {id}: its ids must be 0..{n}"
                )))
                }
            }
        }
        // Per input, per output id: the input's row of that token.
        let mut perms: Vec<Vec<Option<u64>>> = Vec::with_capacity(inputs.len());
        for (name, vocab) in inputs {
            let mut p = vec![None; out.len()];
            for (token, id) in out.iter() {
                if let Some(orig) = vocab.ids.get(token) {
                    if orig >= vocab.size {
                        return Err(refuse(format!(
                            "{name} gives token {token:?} id {orig}, past its vocab_size {} (mergekit fails there too)",
                            vocab.size
                        )));
                    }
                    p[id as usize] = Some(orig);
                }
            }
            perms.push(p);
        }
        let index_of = |model: &str| {
            inputs.iter().position(|(m, _)| m == model).ok_or_else(|| {
                refuse(format!(
                    "a token's row comes from {model}, which is not one of the merged models"
                ))
            })
        };
        let mut configured: BTreeMap<&str, &TokenRule> = BTreeMap::new();
        for (token, rule) in rules {
            if !out.contains(token) {
                return Err(Error::unsupported(
                    code::MERGE_CONFIG,
                    format!("tokenizer.tokens: {token:?} is not in the output vocabulary (add it there first, as mergekit adds it to the tokenizer)"),
                ));
            }
            if rule.source.is_none() {
                return Err(Error::usage(
                    code::MERGE_CONFIG,
                    format!("tokenizer.tokens: {token:?} needs a 'source' (mergekit fails without one)"),
                ));
            }
            configured.insert(token, rule);
        }
        let mut fills = BTreeMap::new();
        for (id, token) in by_id.iter().enumerate() {
            let token = token.unwrap_or_default();
            let present: Vec<usize> = (0..inputs.len()).filter(|&k| perms[k][id].is_some()).collect();
            let rule = configured.get(token);
            if !rule.is_some_and(|r| r.force) && present.len() == inputs.len() {
                continue;
            }
            let fill = match rule.and_then(|r| r.source.as_ref()) {
                Some(TokenSource::Zero) => Fill::Zero,
                Some(TokenSource::Model(m)) => {
                    let k = index_of(m)?;
                    let row = perms[k][id].ok_or_else(|| {
                        refuse(format!("token {token:?} takes its row from {m}, which lacks it"))
                    })?;
                    Fill::Row(k, row)
                }
                Some(TokenSource::ModelToken {
                    model,
                    id: row,
                    token: named,
                }) => {
                    let k = index_of(model)?;
                    let row = match (row, named) {
                        (Some(r), _) => *r,
                        (None, Some(t)) => inputs[k].1.ids.get(t).ok_or_else(|| {
                            refuse(format!(
                                "token {token:?} takes the row of {t:?} in {model}, which lacks it"
                            ))
                        })?,
                        (None, None) => {
                            return Err(Error::usage(
                                code::MERGE_CONFIG,
                                format!(
                                "tokenizer.tokens: {token:?}: a model_token source needs token_id or token"
                            ),
                            ))
                        }
                    };
                    Fill::Row(k, row)
                }
                // Not configured: mergekit's defaults.
                None => match present.as_slice() {
                    [] => Fill::Zero,
                    [k] => Fill::Row(*k, perms[*k][id].unwrap_or_default()),
                    _ => match base.filter(|b| perms[*b][id].is_some()) {
                        Some(b) => Fill::Row(b, perms[b][id].unwrap_or_default()),
                        None => Fill::Average(
                            present
                                .iter()
                                .map(|&k| (k, perms[k][id].unwrap_or_default()))
                                .collect(),
                        ),
                    },
                },
            };
            fills.insert(id as u64, fill);
        }
        let own = perms
            .into_iter()
            .map(|p| {
                p.iter()
                    .enumerate()
                    .map(|(id, row)| match row {
                        Some(r) if !by_id[id].and_then(|t| configured.get(t)).is_some_and(|r| r.force) => *r,
                        _ => FILLED,
                    })
                    .collect()
            })
            .collect();
        // A multiple is a few dozen rows in practice (64, 128); a huge one
        // would have every model write that many mean rows.
        let rows = match pad.filter(|&p| p > 0) {
            Some(p) if p <= MAX_PAD => n.div_ceil(p) * p,
            Some(p) => {
                return Err(Error::usage(
                    code::MERGE_CONFIG,
                    format!("tokenizer.pad_to_multiple_of {p}: at most {MAX_PAD}"),
                ))
            }
            None => n,
        };
        Ok(VocabPlan {
            rows,
            tokens: n,
            own,
            fills,
        })
    }

    /// The rows of every token-indexed output tensor.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The output vocabulary's tokens (rows before any padding).
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// Whether the tensors of `inputs` (with `rows_in` rows each) are
    /// already laid out as the output: same rows, nothing moved or made.
    pub fn is_identity(&self, inputs: &[usize], rows_in: &[u64]) -> bool {
        self.fills.is_empty()
            && self.rows == self.tokens
            && rows_in.iter().all(|&r| r == self.rows)
            && inputs
                .iter()
                .all(|&k| self.own[k].iter().enumerate().all(|(i, &r)| r == i as u64))
    }

    /// The inputs a made row reads.
    pub(crate) fn fill_inputs(&self) -> impl Iterator<Item = usize> + '_ {
        self.fill_rows().map(|(k, _)| k)
    }

    /// Every (input, row) a made row reads.
    fn fill_rows(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.fills.values().flat_map(|f| {
            let many: &[(usize, u64)] = match f {
                Fill::Average(v) => v,
                _ => &[],
            };
            let one = match f {
                Fill::Row(k, r) => Some((*k, *r)),
                _ => None,
            };
            one.into_iter().chain(many.iter().copied())
        })
    }

    /// Output row `row` of input `input`'s permuted tensor.
    pub(crate) fn row(&self, input: usize, row: u64) -> RowOf<'_> {
        if row >= self.tokens {
            return RowOf::Pad;
        }
        match self.own[input][row as usize] {
            FILLED => RowOf::Fill(self.fills.get(&row).unwrap_or(&Fill::Zero)),
            r => RowOf::Own(r),
        }
    }

    /// The highest row of input `input` any output row reads, if any.
    pub(crate) fn max_row_of(&self, input: usize) -> Option<u64> {
        let own = self.own[input].iter().copied().filter(|&r| r != FILLED).max();
        let made = self
            .fill_rows()
            .filter(|(k, _)| *k == input)
            .map(|(_, r)| r)
            .max();
        own.max(made)
    }
}

/// Whether a Hugging Face tensor is indexed by token (its first dimension
/// is the vocabulary), as mergekit's architectures mark `vocabulary_axis: 0`.
pub fn is_token_indexed(name: &str) -> bool {
    [
        "embed_tokens.weight",
        "lm_head.weight",
        "wte.weight",
        "word_embeddings.weight",
        "embed_out.weight",
    ]
    .iter()
    .any(|s| name.ends_with(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(tokens: &[&str]) -> TokenIds {
        tokens.iter().enumerate().map(|(i, t)| (*t, i as u64)).collect()
    }

    fn model(name: &str, tokens: &[&str]) -> (String, ModelVocab) {
        let ids = ids(tokens);
        let size = ids.len() as u64;
        (name.to_string(), ModelVocab { ids, size })
    }

    #[test]
    fn mergekit_s_defaults() {
        // base lacks x and y; a has x, y (at other ids); b has y and z.
        let out = ids(&["<s>", "x", "y", "z"]);
        let inputs = [
            model("base", &["<s>", "w"]),
            model("a", &["y", "<s>", "x"]),
            model("b", &["<s>", "y", "z"]),
        ];
        let plan = VocabPlan::new(&out, &inputs, Some(0), &[], None).unwrap();
        assert_eq!(plan.rows(), 4);
        // Everyone has <s>: their own rows.
        assert_eq!(plan.row(0, 0), RowOf::Own(0));
        assert_eq!(plan.row(1, 0), RowOf::Own(1));
        // x: only a has it, so a donates it to the others.
        assert_eq!(plan.row(1, 1), RowOf::Own(2));
        assert_eq!(plan.row(0, 1), RowOf::Fill(&Fill::Row(1, 2)));
        assert_eq!(plan.row(2, 1), RowOf::Fill(&Fill::Row(1, 2)));
        // y: a and b have it, the base does not: their mean.
        assert_eq!(plan.row(0, 2), RowOf::Fill(&Fill::Average(vec![(1, 0), (2, 1)])));
        // z: only b.
        assert_eq!(plan.row(1, 3), RowOf::Fill(&Fill::Row(2, 2)));
        assert_eq!(plan.max_row_of(1), Some(2));
        assert!(!plan.is_identity(&[0, 1, 2], &[2, 3, 3]));
    }

    #[test]
    fn the_base_s_row_wins_and_rules_override() {
        let out = ids(&["a", "b", "c"]);
        let inputs = [
            model("base", &["a", "b"]),
            model("m1", &["a", "b", "c"]),
            model("m2", &["b", "a"]),
        ];
        let rules = vec![
            (
                "a".to_string(),
                TokenRule {
                    source: Some(TokenSource::Zero),
                    force: true,
                },
            ),
            (
                "c".to_string(),
                TokenRule {
                    source: Some(TokenSource::ModelToken {
                        model: "m2".into(),
                        id: None,
                        token: Some("b".into()),
                    }),
                    force: false,
                },
            ),
        ];
        let plan = VocabPlan::new(&out, &inputs, Some(0), &rules, None).unwrap();
        // Forced zero even where the models have it.
        assert_eq!(plan.row(1, 0), RowOf::Fill(&Fill::Zero));
        // Everyone has b.
        assert_eq!(plan.row(2, 1), RowOf::Own(0));
        // c: m1 has its own; the others take m2's row of "b".
        assert_eq!(plan.row(1, 2), RowOf::Own(2));
        assert_eq!(plan.row(0, 2), RowOf::Fill(&Fill::Row(2, 0)));
        // Without rules, a token the base and one other have comes from the base.
        let out = ids(&["a", "b", "d"]);
        let inputs = [
            model("base", &["a", "d"]),
            model("m1", &["a", "b", "d"]),
            model("m2", &["b", "a"]),
        ];
        let plan = VocabPlan::new(&out, &inputs, Some(0), &[], None).unwrap();
        assert_eq!(plan.row(2, 2), RowOf::Fill(&Fill::Row(0, 1)));
        assert_eq!(plan.row(0, 1), RowOf::Fill(&Fill::Average(vec![(1, 1), (2, 0)])));
    }

    #[test]
    fn refusals_name_the_token() {
        let out = ids(&["a", "b"]);
        let mut short = model("m", &["a", "b"]);
        short.1.size = 1;
        let e = VocabPlan::new(&out, &[model("base", &["a", "b"]), short], None, &[], None).unwrap_err();
        assert!(
            e.to_string().contains("\"b\"") && e.to_string().contains("vocab_size"),
            "{e}"
        );
        let add = vec![(
            "new".to_string(),
            TokenRule {
                source: Some(TokenSource::Zero),
                force: false,
            },
        )];
        let e = VocabPlan::new(&out, &[model("base", &["a", "b"])], None, &add, None).unwrap_err();
        assert!(e.to_string().contains("\"new\""), "{e}");
        let mut holes = ids(&["a"]);
        holes.insert("b", 5);
        assert!(VocabPlan::new(&holes, &[model("base", &["a"])], None, &[], None).is_err());
        let plan = VocabPlan::new(
            &out,
            &[model("base", &["a", "b"]), model("m", &["a", "b"])],
            None,
            &[],
            None,
        )
        .unwrap();
        assert!(plan.is_identity(&[0, 1], &[2, 2]));
        // Padded to 8 rows: the rows past the tokens are the mean.
        let padded = VocabPlan::new(&out, &[model("base", &["a", "b"])], None, &[], Some(8)).unwrap();
        assert_eq!((padded.rows(), padded.tokens()), (8, 2));
        assert_eq!(padded.row(0, 5), RowOf::Pad);
        assert!(!padded.is_identity(&[0], &[2]));
        let e = VocabPlan::new(&out, &[model("base", &["a", "b"])], None, &[], Some(1 << 40)).unwrap_err();
        assert!(e.to_string().contains("pad_to_multiple_of"), "{e}");
    }
}
