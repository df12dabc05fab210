//! Sharded Hugging Face checkpoints: `model.safetensors.index.json` +
//! `model-0000K-of-0000N.safetensors`, opened as one [`Source`].

use crate::read::SafetensorsFile;
use crate::{rules, FORMAT};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::path::Path;
use tensorcast_core::{
    is_plain_name, Error, FormatError, Input, Limits, Metadata, MultiPart, Result, Source, Value,
};

/// File name suffix of a sharded checkpoint's index.
pub const INDEX_SUFFIX: &str = ".safetensors.index.json";

/// True when `path` names a safetensors index file.
pub fn is_index_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(INDEX_SUFFIX))
}

/// Every shard of an index, checked against the index's `weight_map`.
pub type ShardedSafetensors = MultiPart<SafetensorsFile>;

fn err(path: &Path, rule: &'static str, detail: impl Into<String>) -> Error {
    FormatError::new(FORMAT, rule, detail).in_file(path).into()
}

/// Opens the index at `path` and every shard it names (in the directory of
/// the index). Tensors come shard by shard, in each shard's order.
pub fn open_index(path: &Path, limits: &Limits) -> Result<ShardedSafetensors> {
    open_index_input(Input::open(path)?, limits)
}

/// Opens an index and the shards it names among the input's siblings.
pub fn open_index_input(input: Input, limits: &Limits) -> Result<ShardedSafetensors> {
    {
        let path = input.name.as_path();
        let text: &[u8] = &input.bytes;
        if text.len() as u64 > limits.max_header_bytes {
            return Err(FormatError::new(
                FORMAT,
                rules::INDEX_INVALID,
                "index file exceeds the header size limit",
            )
            .limit("max_header_bytes")
            .in_file(path)
            .into());
        }
        let json: Json = serde_json::from_slice(text).map_err(|e| {
            err(
                path,
                rules::INDEX_INVALID,
                format!("index is not valid JSON: {e}"),
            )
        })?;
        let map = json
            .get("weight_map")
            .and_then(Json::as_object)
            .ok_or_else(|| err(path, rules::INDEX_INVALID, "index has no \"weight_map\" object"))?;

        // Shards in file-name order; HF numbers them so this is also their sequence.
        let mut files: Vec<&str> = Vec::new();
        let mut wanted: HashMap<&str, &str> = HashMap::with_capacity(map.len());
        for (tensor, file) in map {
            let file = file.as_str().ok_or_else(|| {
                err(
                    path,
                    rules::INDEX_INVALID,
                    format!("weight_map entry for '{tensor}' is not a file name"),
                )
            })?;
            if !is_plain_name(file) {
                return Err(FormatError::new(
                    FORMAT,
                    rules::SHARD_PATH_ESCAPES,
                    format!("shard '{file}' is not a plain file name beside the index"),
                )
                .tensor(tensor)
                .in_file(path)
                .into());
            }
            files.push(file);
            wanted.insert(tensor.as_str(), file);
        }
        files.sort_unstable();
        files.dedup();

        let mut shards = Vec::with_capacity(files.len());
        let mut metadata = Metadata::new();
        // Keys merged so far: each shard's keys are looked up here, not by a
        // scan of the merged list (a header of millions of keys stays linear).
        let mut merged = std::collections::HashSet::new();
        for file in &files {
            let shard = input.sibling(file)?;
            let shard = SafetensorsFile::from_bytes(&shard.name, shard.bytes, limits)?;
            for (k, v) in shard.metadata().iter() {
                if merged.insert(k.to_string()) {
                    metadata.push_str(k, v.clone());
                }
            }
            for info in shard.tensors() {
                match wanted.remove(info.name.as_str()) {
                    Some(f) if f == *file => {}
                    Some(_) | None => {
                        return Err(FormatError::new(
                            FORMAT,
                            rules::INDEX_TENSOR_UNLISTED,
                            format!("tensor is in shard '{file}' but the index does not map it there"),
                        )
                        .tensor(&info.name)
                        .in_file(path)
                        .into())
                    }
                }
            }
            shards.push((Some(file.to_string()), shard));
        }
        if let Some((tensor, file)) = wanted.into_iter().min() {
            return Err(FormatError::new(
                FORMAT,
                rules::INDEX_TENSOR_MISSING,
                format!("the index maps it to '{file}', which does not hold it"),
            )
            .tensor(tensor)
            .in_file(path)
            .into());
        }
        if let Some(extra) = json.get("metadata").and_then(Json::as_object) {
            for (k, v) in extra {
                // total_size is derived from the tensors; carrying it would go stale.
                if k != "total_size" && merged.insert(k.clone()) {
                    metadata.push_str(k, Value::from_json(v));
                }
            }
        }
        Ok(MultiPart::new(FORMAT, shards, metadata))
    }
}
