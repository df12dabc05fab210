//! The text model of a multimodal folder (Qwen3.5's and Gemma 3's real
//! checkpoints are `*ForConditionalGeneration`): as `convert_hf_to_gguf.py`
//! reads it, config.json's `text_config` over its top level, the language
//! model's tensors with `language_model.` dropped from their names, and the
//! vision, audio and projector tensors left out (they go to an mmproj file,
//! which tensorcast does not write).

use serde_json::Value as Json;
use std::borrow::Cow;

/// config.json with its `text_config` fields moved to the top level (the
/// reference's `{**hparams, **text_config}`); as it is without one.
pub(crate) fn config(config: Json) -> Json {
    match (&config, config.get("text_config")) {
        (Json::Object(top), Some(Json::Object(text))) => {
            let mut merged = top.clone();
            merged.extend(text.iter().map(|(k, v)| (k.clone(), v.clone())));
            Json::Object(merged)
        }
        _ => config,
    }
}

/// Name prefixes of the tensors that are not the text model's.
const NOT_TEXT_PREFIXES: &[&str] = &[
    "mlp",
    "vit.",
    "vpm.",
    "siglip2.",
    "conformer.",
    "merger.",
    "resampler.",
    "sound_encoder.",
    "sound_projection.",
    "speech_embeddings.",
];

/// Name parts of the tensors that are not the text model's.
const NOT_TEXT_PARTS: &[&str] = &[
    "visual.",
    "vision.",
    "audio.",
    "talker.",
    "vision_",
    "audio_",
    "token2wav.",
    "code2wav.",
    "projector.",
    "pre_mm_projector_norm",
    "image_newline",
    "view_seperator",
    "patch_embed",
    "patch_embedding",
    "patch_merger.",
    "patch_merge_mlp.",
    "model.connector.",
];

/// The text model's name for tensor `name`, `None` for a tensor of
/// another modality.
pub(crate) fn name(name: &str) -> Option<Cow<'_, str>> {
    if NOT_TEXT_PREFIXES.iter().any(|p| name.starts_with(p))
        || NOT_TEXT_PARTS.iter().any(|p| name.contains(p))
    {
        return None;
    }
    Some(match name.contains("language_model.") {
        true => Cow::Owned(name.replace("language_model.", "")),
        false => Cow::Borrowed(name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_multimodal_folder_reads_as_its_text_model() {
        let c = config(json!({"model_type": "qwen3_5", "tie_word_embeddings": false,
            "text_config": {"model_type": "qwen3_5_text", "hidden_size": 64}}));
        assert_eq!(c["model_type"], "qwen3_5_text");
        assert_eq!(c["hidden_size"], 64);
        assert_eq!(c["tie_word_embeddings"], false);
        assert_eq!(
            name("model.language_model.layers.0.mlp.up_proj.weight").as_deref(),
            Some("model.layers.0.mlp.up_proj.weight")
        );
        assert_eq!(name("model.visual.blocks.0.norm1.weight"), None);
        assert_eq!(
            name("model.embed_tokens.weight").as_deref(),
            Some("model.embed_tokens.weight")
        );
        assert_eq!(name("mtp.fc.weight").as_deref(), Some("mtp.fc.weight"));
    }
}
