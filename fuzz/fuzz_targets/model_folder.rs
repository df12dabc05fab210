#![no_main]
//! A Hugging Face model folder read as a model for GGUF: config.json,
//! tokenizer.json, tokenizer_config.json and tokenizer.model come from the
//! input (split on "\n\0\n"), the weights are the llama fixture's. Counts,
//! ids and sizes in those files must be checked, not trusted: no panic, no
//! allocation beyond what the files can justify.
mod common;
use libfuzzer_sys::fuzz_target;

static WEIGHTS: &[u8] = include_bytes!("../../fixtures/model/llama/hf/model.safetensors");

fuzz_target!(|data: &[u8]| {
    // The tokenizer library's own panics are caught by the conversion
    // (core's catch_quietly, which keeps them from libFuzzer's aborting
    // hook); any other panic still aborts and is reported.
    let mut files = tensorcast_core::MemoryFiles::new();
    files.insert("model.safetensors", WEIGHTS.to_vec());
    let names = ["config.json", "tokenizer.json", "tokenizer_config.json", "tokenizer.model"];
    let mut rest = data;
    for name in names {
        let (part, tail) = match rest.windows(3).position(|w| w == b"\n\0\n") {
            Some(i) => (&rest[..i], &rest[i + 3..]),
            None => (rest, &[][..]),
        };
        if !part.is_empty() {
            files.insert(name, part.to_vec());
        }
        rest = tail;
    }
    let Ok(input) = files.input("config.json") else { return };
    let options = tensorcast_core::Options::default();
    if let Ok(source) = tensorcast_model::HfToGguf::open(input, &options, None, None, None) {
        let _ = source.metadata().len();
        common::read_all(&*source, data.len() + WEIGHTS.len());
    }
});
