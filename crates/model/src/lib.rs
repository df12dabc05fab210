//! Model semantics above tensorcast's formats: a table per architecture
//! (GGUF and Hugging Face names for the same tensors and hyper-parameters,
//! and the transforms between them), the GGUF vocabulary as Hugging Face
//! tokenizer files, and the Hugging Face model folder as an output.
//!
//! GGUF → HF: [`GgufToHf`] adapts a GGUF source (names, Q/K rows);
//! [`HfFolderWriter`] writes the folder. HF → GGUF: [`HfToGguf`] opens a
//! folder as GGUF tensors and key/values. Architectures: [`arch::ARCHES`].
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod arch;
mod bpe;
mod bpe_vocab;
mod chat_template;
mod config;
mod deci;
mod decode;
mod folder;
mod from_hf;
mod gated_delta;
mod gemma4;
pub mod gguf_kv;
mod interleaved;
mod llama3_rope;
mod mamba;
mod mla;
mod mtp;
mod offset;
pub mod permute;
mod plugin;
mod pre_hashes;
mod sentencepiece;
mod short_conv;
mod t5;
mod text_model;
mod to_hf;
pub mod tokenizer;
mod tokenizer_file;

pub use folder::HfFolderWriter;
pub use from_hf::{HfToGguf, ModelOptions};
pub use plugin::HfFolder;
pub use to_hf::{arch_of, GgufToHf};
