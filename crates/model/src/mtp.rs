//! Qwen3.5's multi-token-prediction (MTP) layers: checkpoints keep them
//! under `mtp.*`, llama.cpp as the blocks past the model's own
//! (`{arch}.nextn_predict_layers` of them; `convert_hf_to_gguf.py`'s
//! `_QwenMtpMixin`): `mtp.layers.{i}.*` is block `layers + i` under the
//! table's block names, and the projection and norms around it are the
//! first MTP block's `nextn.*` tensors. transformers builds no MTP module
//! (it drops `mtp.*` on load); the folder keeps them, so the round trip
//! loses nothing.

/// The MTP tensors outside its decoder layers: (HF name after `mtp.`,
/// GGUF name after `blk.{layers}.`).
const AROUND: &[(&str, &str)] = &[
    ("fc.weight", "nextn.eh_proj.weight"),
    ("pre_fc_norm_embedding.weight", "nextn.enorm.weight"),
    ("pre_fc_norm_hidden.weight", "nextn.hnorm.weight"),
    ("norm.weight", "nextn.shared_head_norm.weight"),
];

/// Where an HF `mtp.*` tensor goes in GGUF.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Into {
    /// A tensor of an MTP decoder layer, under the name the layer would
    /// have as block `layers + i` (mapped through the table from there).
    Block(String),
    /// One around the layers: its GGUF name.
    Named(String),
}

/// For HF tensor `name` of a model of `layers` layers whose blocks are
/// `{block_prefix}N.`: where it goes, `None` for a tensor not of the MTP.
pub(crate) fn from_hf(name: &str, layers: u64, block_prefix: &str) -> Option<Into> {
    let rest = name.strip_prefix("mtp.")?;
    if let Some((_, gguf)) = AROUND.iter().find(|(hf, _)| *hf == rest) {
        return Some(Into::Named(format!("blk.{layers}.{gguf}")));
    }
    let (i, leaf) = rest.strip_prefix("layers.")?.split_once('.')?;
    let block = layers.checked_add(i.parse::<u64>().ok()?)?;
    Some(Into::Block(format!("{block_prefix}{block}.{leaf}")))
}

/// For GGUF tensor `name` of a model of `layers` layers: the HF name of
/// one of the tensors around the MTP layers, `None` for any other.
pub(crate) fn around_hf(name: &str, layers: u64) -> Option<String> {
    let (block, leaf) = name.strip_prefix("blk.")?.split_once('.')?;
    if block.parse::<u64>().ok()? < layers {
        return None;
    }
    let (hf, _) = AROUND.iter().find(|(_, g)| *g == leaf)?;
    Some(format!("mtp.{hf}"))
}

/// HF name `name` of block `{block_prefix}N.` renamed as MTP layer
/// `N - layers` when `N` is past the model's layers; as it is otherwise.
pub(crate) fn rename_hf(name: String, layers: u64, block_prefix: &str) -> String {
    let Some((block, leaf)) = name.strip_prefix(block_prefix).and_then(|r| r.split_once('.')) else {
        return name;
    };
    match block.parse::<u64>() {
        Ok(b) if b >= layers => format!("mtp.layers.{}.{leaf}", b - layers),
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtp_names_map_both_ways() {
        let p = "model.layers.";
        assert_eq!(
            from_hf("mtp.layers.0.self_attn.q_proj.weight", 24, p),
            Some(Into::Block("model.layers.24.self_attn.q_proj.weight".into()))
        );
        assert_eq!(
            from_hf("mtp.fc.weight", 24, p),
            Some(Into::Named("blk.24.nextn.eh_proj.weight".into()))
        );
        assert_eq!(from_hf("model.layers.0.mlp.up_proj.weight", 24, p), None);
        assert_eq!(from_hf("mtp.layers.x.mlp.weight", 24, p), None);
        assert_eq!(
            around_hf("blk.24.nextn.hnorm.weight", 24).as_deref(),
            Some("mtp.pre_fc_norm_hidden.weight")
        );
        assert_eq!(around_hf("blk.3.nextn.hnorm.weight", 24), None);
        assert_eq!(
            rename_hf("model.layers.25.mlp.experts.3.up_proj.weight".into(), 24, p),
            "mtp.layers.1.mlp.experts.3.up_proj.weight"
        );
        assert_eq!(
            rename_hf("model.layers.2.mlp.gate.weight".into(), 24, p),
            "model.layers.2.mlp.gate.weight"
        );
    }
}
