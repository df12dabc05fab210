//! The integration tests, one binary: each module was its own test crate,
//! each linking the whole tree again (28 links of the same code).
//! `cargo test --test it MODULE` runs one module's tests.

mod common;

mod batch;
mod crash_safety;
mod diff_select;
mod digest;
mod edit;
mod gguf_fixtures;
mod golden;
mod hardening;
mod hdf5_fixtures;
mod hostile_corpus;
mod llama_quantize;
mod matrix;
mod memory_budget;
mod merge;
mod model;
mod numpy_fixtures;
mod onnx_fixtures;
mod progress_pty;
mod pytorch_fixtures;
mod pytorch_writer;
mod recipes;
mod refs;
mod registry;
mod remote_http;
mod remote_hub;
mod remote_s3;
mod safetensors_fixtures;
mod seams;
mod stsw;
mod sweep;
mod thread_count;
mod tpack;
mod tpack_spec;
mod vocab_metadata;
mod ztensor_fixtures;
