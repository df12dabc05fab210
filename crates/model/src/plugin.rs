//! The Hugging Face model folder as a registered [`Format`]: read as the
//! weights it holds (or, converted into GGUF, as a model), written from a
//! GGUF model.

use crate::{GgufToHf, HfFolderWriter, HfToGguf};
use tensorcast_core::code;
use tensorcast_core::{
    DType, Detection, Error, Format, Input, Options, QuantType, Result, Sink, Source, WriteTarget,
};
use tensorcast_safetensors::SafetensorsWriteOptions;

/// A Hugging Face model folder: `config.json`, `model.safetensors` (or shards
/// and an index, or `pytorch_model.bin`), tokenizer files.
pub struct HfFolder;

/// GGUF's format name: the format this folder's models bridge to (this
/// crate reads GGUF models by their metadata, not through the GGUF crate).
const GGUF: &str = "gguf";

impl Format for HfFolder {
    fn name(&self) -> &'static str {
        "hf"
    }

    fn extensions(&self) -> &'static [&'static str] {
        &[]
    }

    fn detect(&self, _: &[u8]) -> Detection {
        // A folder has no bytes of its own: it is found by its config.json.
        Detection::No
    }

    fn folder_entry(&self) -> Option<&'static str> {
        Some("config.json")
    }

    fn folder_converts_to(&self, target: &dyn Format) -> bool {
        target.name() == GGUF
    }

    fn folder_target(&self) -> Option<&'static str> {
        Some("model.safetensors")
    }

    fn folder_side_files(&self) -> &'static [&'static str] {
        &[
            "generation_config.json",
            "model.safetensors.index.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "tokenizer.model",
            "spiece.model",
        ]
    }

    /// The folder's weights as they are stored (Hugging Face names): the
    /// sharded index, `model.safetensors` or `pytorch_model.bin` beside
    /// `config.json`.
    fn open(&self, input: Input, options: &Options) -> Result<Box<dyn Source>> {
        crate::from_hf::open_weights(&input, options)
    }

    fn view_for_writing(&self, source: Box<dyn Source>) -> Result<Box<dyn Source>> {
        if source.format() == GGUF {
            return Ok(Box::new(GgufToHf::new(source)?));
        }
        Err(Error::unsupported(
            code::MODEL_FOLDER,
            format!(
                "a Hugging Face model folder is written from a GGUF model, not from {}",
                source.format()
            ),
        ))
    }

    fn open_as_model_for(
        &self,
        input: Input,
        target: &dyn Format,
        options: &Options,
        dtype: Option<DType>,
        quantize: Option<QuantType>,
        weights: Option<Box<dyn Source>>,
    ) -> Result<Box<dyn Source>> {
        if target.name() != GGUF {
            let folder = input.name.parent().unwrap_or(&input.name).display().to_string();
            return Err(Error::unsupported(
                code::MODEL_FOLDER,
                format!(
                    "{folder} is a model folder: as a model it converts to gguf; its weights convert to {} as a container with their names kept",
                    target.name()
                ),
            ));
        }
        HfToGguf::open(input, options, dtype, quantize, weights)
    }

    fn can_write(&self) -> bool {
        true
    }

    fn create(&self, target: Box<dyn WriteTarget>, options: &Options) -> Result<Box<dyn Sink>> {
        let shards = options.get::<SafetensorsWriteOptions>().max_shard_bytes;
        Ok(Box::new(HfFolderWriter::new(target, shards)))
    }
}
