//! MoE experts merged as mergekit merges them: mergekit 0.1.5 reads a
//! model's experts through transformers 5's checkpoint conversion, which
//! stacks each layer's per-expert projections into one fused tensor
//! (`mlp.experts.gate_up_proj` [E, 2I, H]: every expert's gate rows, then its
//! up rows; `mlp.experts.down_proj` [E, H, I]), and merges that fused tensor
//! as one. Whole-tensor statistics (the TIES cut, slerp's angle, sce's
//! weights and selection, model_stock's cosine) are then taken over all of a
//! layer's experts at once. tensorcast keeps the per-expert tensors and
//! merges each group of them as the one virtual tensor they stack into.
//!
//! Only the architectures whose mergekit 0.1.5 definitions name the fused
//! tensors are grouped (`mixtral.json`, `qwen3_moe.json`, and
//! `Glm4MoeModuleArchitecture`); others' experts merge tensor by tensor, as
//! mergekit merges their per-expert names.

/// The per-expert tensors of one architecture that mergekit merges fused.
#[derive(Clone, Copy, Debug)]
pub struct ExpertFusion {
    /// The experts' prefix after the layer (`block_sparse_moe.experts`).
    experts: &'static str,
    /// The gate and up projections (stacked into `gate_up_proj`), and the
    /// down projection (into `down_proj`).
    gate: &'static str,
    up: &'static str,
    down: &'static str,
    /// The fused tensors' prefix in transformers' names (`mlp.experts`).
    fused: &'static str,
}

const MIXTRAL: ExpertFusion = ExpertFusion {
    experts: "block_sparse_moe.experts",
    gate: "w1",
    up: "w3",
    down: "w2",
    fused: "mlp.experts",
};

const QWEN2_MOE: ExpertFusion = ExpertFusion {
    experts: "mlp.experts",
    gate: "gate_proj",
    up: "up_proj",
    down: "down_proj",
    fused: "mlp.experts",
};

impl ExpertFusion {
    /// The fusion mergekit 0.1.5 applies to the architecture of
    /// config.json's `architectures[0]`, if any.
    pub fn for_architecture(class: &str) -> Option<ExpertFusion> {
        match class {
            "MixtralForCausalLM" => Some(MIXTRAL),
            "Qwen3MoeForCausalLM" | "Glm4MoeForCausalLM" => Some(QWEN2_MOE),
            _ => None,
        }
    }

    /// The fused groups among `names` (a model's Hugging Face tensor
    /// names), each with its members in stacking order: per layer, every
    /// expert's gate then up (by expert number), and every expert's down.
    /// A layer whose experts are not complete (an expert without its gate,
    /// up or down, or numbers with gaps) is not grouped.
    pub fn groups<'a>(&self, names: impl Iterator<Item = &'a str>) -> Vec<FusedGroup> {
        // layer prefix -> expert number -> [gate, up, down] names
        let mut layers: std::collections::BTreeMap<
            String,
            std::collections::BTreeMap<u64, [Option<String>; 3]>,
        > = Default::default();
        let marker = format!(".{}.", self.experts);
        for name in names {
            let Some(at) = name.find(&marker) else { continue };
            let (prefix, rest) = (&name[..at], &name[at + marker.len()..]);
            let Some((expert, proj)) = rest.split_once('.') else {
                continue;
            };
            let Ok(expert) = expert.parse::<u64>() else {
                continue;
            };
            let slot = match proj.strip_suffix(".weight") {
                Some(p) if p == self.gate => 0,
                Some(p) if p == self.up => 1,
                Some(p) if p == self.down => 2,
                _ => continue,
            };
            layers
                .entry(prefix.to_string())
                .or_default()
                .entry(expert)
                .or_default()[slot] = Some(name.to_string());
        }
        let mut groups = Vec::new();
        for (prefix, experts) in layers {
            let complete = experts.keys().copied().eq(0..experts.len() as u64)
                && experts.values().all(|s| s.iter().all(Option::is_some));
            if !complete {
                continue;
            }
            let take = |slots: &[usize]| -> Vec<String> {
                experts
                    .values()
                    .flat_map(|s| slots.iter().filter_map(move |&i| s[i].clone()))
                    .collect()
            };
            groups.push(FusedGroup {
                name: format!("{prefix}.{}.gate_up_proj", self.fused),
                members: take(&[0, 1]),
                experts: experts.len() as u64,
            });
            groups.push(FusedGroup {
                name: format!("{prefix}.{}.down_proj", self.fused),
                members: take(&[2]),
                experts: experts.len() as u64,
            });
        }
        groups
    }
}

/// Per-expert tensors merged as the one tensor they stack into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FusedGroup {
    /// The fused tensor's name in transformers (parameter filters match it).
    pub name: String,
    /// The member tensors, in the order their elements follow in the fused
    /// tensor.
    pub members: Vec<String>,
    /// The expert count (the fused tensor's first dimension).
    pub experts: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn experts_group_in_stacking_order() {
        let mut names = vec![];
        for e in [0, 1, 2, 10, 3, 4, 5, 6, 7, 8, 9] {
            for w in ["w1", "w2", "w3"] {
                names.push(format!("model.layers.1.block_sparse_moe.experts.{e}.{w}.weight"));
            }
        }
        names.push("model.layers.1.block_sparse_moe.gate.weight".into());
        // Layer 0 lacks expert 1's up projection: merged tensor by tensor.
        names.push("model.layers.0.block_sparse_moe.experts.0.w1.weight".into());
        names.push("model.layers.0.block_sparse_moe.experts.0.w2.weight".into());
        names.push("model.layers.0.block_sparse_moe.experts.0.w3.weight".into());
        names.push("model.layers.0.block_sparse_moe.experts.1.w1.weight".into());
        names.push("model.layers.0.block_sparse_moe.experts.1.w2.weight".into());
        let fusion = ExpertFusion::for_architecture("MixtralForCausalLM").unwrap();
        let groups = fusion.groups(names.iter().map(String::as_str));
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].name, "model.layers.1.mlp.experts.gate_up_proj");
        assert_eq!(groups[0].experts, 11);
        let e = |i: u64, w: &str| format!("model.layers.1.block_sparse_moe.experts.{i}.{w}.weight");
        let want: Vec<String> = (0..11).flat_map(|i| [e(i, "w1"), e(i, "w3")]).collect();
        assert_eq!(groups[0].members, want);
        assert_eq!(groups[1].name, "model.layers.1.mlp.experts.down_proj");
        assert_eq!(groups[1].members, (0..11).map(|i| e(i, "w2")).collect::<Vec<_>>());
        assert!(ExpertFusion::for_architecture("OlmoeForCausalLM").is_none());
    }
}
