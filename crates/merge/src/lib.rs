//! Merging models with mergekit's semantics, over any tensorcast
//! [`Source`](tensorcast_core::Source)s: one output tensor at a time, each
//! computed from the same-named tensor of every input.
//!
//! - [`MergeConfig`] is mergekit's YAML as it is (`merge_method`,
//!   `base_model`, `models` with `parameters`, global `parameters`, `dtype`,
//!   `out_dtype`, `tokenizer_source`, `tokenizer`, `chat_template`), with gradients over
//!   layers and filtered settings resolved as mergekit resolves them. An
//!   unknown key, method or parameter is refused by name.
//! - [`MergedSource`] is a `Source` of the merged tensors, written by any
//!   writer like any other source. With a [`VocabPlan`] (a tokenizer
//!   source) its token-indexed tensors are laid out in the output
//!   vocabulary first, as mergekit's permuted embeddings are.
//!
//! The arithmetic follows mergekit 0.1.5 op for op, in the dtype it computes
//! in (`dtype: bfloat16` rounds after every op as torch does), so
//! deterministic methods give mergekit's bits. Where mergekit draws random
//! masks (DARE), a counter-based generator keyed by `seed`, tensor name and
//! model makes the same bytes whatever the thread count.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod config;
mod experts;
mod kernel;
mod method;
mod numeric;
mod select;
mod source;
mod stream;
mod token_ids;
mod torch_sum;
mod vocab;
mod vocab_rows;

pub use config::{Entry, MergeConfig, Setting, Slice, SliceSource, MAX_TEXT as MAX_CONFIG_TEXT};
pub use experts::{ExpertFusion, FusedGroup};
pub use method::Method;
pub use source::MergedSource;
pub use vocab::{
    is_token_indexed, ModelVocab, TokenIds, TokenIdsBuilder, TokenRule, TokenSource, TokenizerSection,
    VocabPlan,
};
