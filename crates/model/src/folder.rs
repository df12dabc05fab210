//! The Hugging Face model folder as an output: `model.safetensors` (sharded
//! with an index above the shard size), `config.json`,
//! `generation_config.json` and the tokenizer files, all beside the target.

use crate::to_hf::arch_of;
use crate::{config, tokenizer};
use tensorcast_core::code;
use tensorcast_core::{Error, Metadata, Plan, Result, Sink, TensorData, Value, WriteTarget};
use tensorcast_safetensors::SafetensorsWriter;

/// A sink writing a Hugging Face folder from a plan whose tensors carry HF
/// names and whose metadata is the GGUF's key/values.
pub struct HfFolderWriter {
    weights: Option<SafetensorsWriter>,
    /// Targets for the side files, made beside the weights before they are
    /// handed to the safetensors writer.
    side: Vec<(Box<dyn WriteTarget>, Vec<u8>)>,
    target: Option<Box<dyn WriteTarget>>,
    max_shard_bytes: Option<u64>,
}

impl HfFolderWriter {
    /// A writer whose weights go to `target` (`DIR/model.safetensors`), the
    /// other files to its siblings.
    pub fn new(target: Box<dyn WriteTarget>, max_shard_bytes: Option<u64>) -> Self {
        HfFolderWriter {
            weights: None,
            side: Vec::new(),
            target: Some(target),
            max_shard_bytes,
        }
    }
}

fn pretty(v: &serde_json::Value) -> Vec<u8> {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s.into_bytes()
}

impl Sink for HfFolderWriter {
    fn begin(&mut self, plan: &Plan) -> Result<()> {
        let target = self
            .target
            .take()
            .ok_or_else(|| Error::usage(code::CALL_ORDER, "Hugging Face folder writer begun twice"))?;
        let arch = arch_of(&plan.metadata)?;
        let mut files = vec![(
            "config.json",
            pretty(&config::config_json(arch, &plan.metadata, &plan.tensors)?),
        )];
        if let Some(g) = config::generation_config(&plan.metadata) {
            files.push(("generation_config.json", pretty(&g)));
        }
        files.extend(tokenizer::from_gguf(&plan.metadata)?.files);
        // config.json last: a folder without it is not taken for a model.
        files.rotate_left(1);
        for (name, bytes) in files {
            self.side.push((target.sibling(name)?, bytes));
        }
        // The weights carry what transformers writes, not the GGUF's keys
        // (which the side files now hold).
        let mut metadata = Metadata::new();
        metadata.insert("format", Value::Str("pt".into()));
        let mut weights = SafetensorsWriter::to_target(target).max_shard_bytes(self.max_shard_bytes);
        weights.begin(&Plan {
            tensors: plan.tensors.clone(),
            metadata,
        })?;
        self.weights = Some(weights);
        Ok(())
    }

    fn write_tensor(&mut self, index: usize, data: TensorData<'_>) -> Result<()> {
        self.weights
            .as_mut()
            .ok_or_else(|| Error::usage(code::CALL_ORDER, "Hugging Face folder writer not begun"))?
            .write_tensor(index, data)
    }

    fn finish(&mut self) -> Result<()> {
        self.weights
            .as_mut()
            .ok_or_else(|| Error::usage(code::CALL_ORDER, "Hugging Face folder writer not begun"))?
            .finish()?;
        for (mut target, bytes) in self.side.drain(..) {
            target.write_all(&bytes)?;
            target.commit()?;
        }
        Ok(())
    }
}
