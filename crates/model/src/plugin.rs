//! The Hugging Face model folder as a registered [`Format`] (an output).

use crate::HfFolderWriter;
use tensorcast_core::code;
use tensorcast_core::{Detection, Error, Format, Input, Options, Result, Sink, Source, WriteTarget};
use tensorcast_safetensors::SafetensorsWriteOptions;

/// A Hugging Face model folder: `config.json`, `model.safetensors` (or shards
/// and an index), tokenizer files. Written from a model-aware source
/// ([`crate::GgufToHf`]); the target is the weights file inside the folder.
pub struct HfFolder;

impl Format for HfFolder {
    fn name(&self) -> &'static str {
        "hf"
    }

    fn extensions(&self) -> &'static [&'static str] {
        &[]
    }

    fn detect(&self, _: &[u8]) -> Detection {
        // A folder has no bytes of its own.
        Detection::No
    }

    fn open(&self, input: Input, _: &Options) -> Result<Box<dyn Source>> {
        Err(Error::unsupported(
            code::MODEL_FOLDER,
            format!(
            "{}: reading Hugging Face model folders as models is not built yet; open its safetensors files",
            input.name.display()
        ),
        ))
    }

    fn can_write(&self) -> bool {
        true
    }

    fn create(&self, target: Box<dyn WriteTarget>, options: &Options) -> Result<Box<dyn Sink>> {
        let shards = options.get::<SafetensorsWriteOptions>().max_shard_bytes;
        Ok(Box::new(HfFolderWriter::new(target, shards)))
    }
}
