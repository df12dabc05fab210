//! The per-tensor plan of a file type, as `llama_model_quantize` makes it
//! (`llama_tensor_get_type` in llama.cpp's `src/llama-quant.cpp`): which
//! tensors may be quantized, which get more bits (attention V, FFN down,
//! output and token embeddings, by layer, architecture, GQA ratio and expert
//! count), and the fallbacks for rows that are not a whole number of blocks.
//!
//! Counters advance in the loader's tensor order (non-layer tensors first,
//! then layer by layer, names sorted within each), so the plan is made in
//! that order: [`loader_order`].

use crate::FileType;
use tensorcast_core::{code, DType, Error, QuantType, Result};

/// The hyper-parameters the plan reads from a model's GGUF keys.
#[derive(Clone, Debug, Default)]
pub struct ModelShape {
    /// `general.architecture`.
    pub arch: String,
    /// `{arch}.block_count`.
    pub n_layer: u32,
    /// `{arch}.attention.head_count` (of the first layer).
    pub n_head: u32,
    /// `{arch}.attention.head_count_kv` (of the first layer; `n_head` when absent).
    pub n_head_kv: u32,
    /// `{arch}.expert_count` (0 when absent).
    pub n_expert: u32,
}

impl ModelShape {
    fn n_gqa(&self) -> u32 {
        self.n_head.checked_div(self.n_head_kv).unwrap_or(0)
    }

    /// llama.cpp's `LLM_TYPE_70B`, the only model size the plan consults.
    fn is_70b(&self) -> bool {
        match self.arch.as_str() {
            "llama" => self.n_layer == 80 && self.n_head != self.n_head_kv,
            "qwen2" | "deci" | "olmo" => self.n_layer == 80,
            "jais2" => self.n_layer == 68,
            _ => false,
        }
    }
}

/// One tensor as the plan sees it: name, ggml's `ne` (innermost first) and type.
#[derive(Clone, Debug)]
pub struct PlanTensor<'a> {
    /// The GGUF tensor name.
    pub name: &'a str,
    /// ggml's dimensions, innermost first.
    pub ne: Vec<u64>,
    /// The stored type.
    pub dtype: DType,
}

impl PlanTensor<'_> {
    fn n_dims(&self) -> usize {
        (1..self.ne.len())
            .rev()
            .find(|&i| self.ne[i] > 1)
            .map_or(1, |i| i + 1)
    }
    fn ne(&self, i: usize) -> u64 {
        self.ne.get(i).copied().unwrap_or(1)
    }
}

/// The layer number of `blk.N.…` names (−1 for others), as the loader's
/// comparator parses it.
fn layer_of(name: &str) -> i64 {
    name.strip_prefix("blk.")
        .and_then(|r| {
            let digits = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            r[..digits]
                .parse::<i64>()
                .ok()
                .filter(|_| r[digits..].starts_with('.'))
        })
        .unwrap_or(-1)
}

/// Indices of `names` in llama.cpp's loader order: by layer number
/// (non-layer tensors first), then by name bytes.
pub fn loader_order(names: &[&str]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|&a, &b| {
        (layer_of(names[a]), names[a].as_bytes()).cmp(&(layer_of(names[b]), names[b].as_bytes()))
    });
    order
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Category {
    Output,
    TokenEmbd,
    AttnQkv,
    AttnKvB,
    AttnV,
    AttnK,
    AttnQ,
    AttnOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Other,
}

fn category(name: &str) -> Category {
    use Category::*;
    if name == "output.weight" {
        return Output;
    }
    if name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
        return TokenEmbd;
    }
    let has = |s: &str| name.contains(s);
    for (pat, c) in [
        ("attn_qkv.weight", AttnQkv),
        ("attn_kv_b.weight", AttnKvB),
        ("attn_v.weight", AttnV),
        ("attn_k.weight", AttnK),
        ("attn_q.weight", AttnQ),
        ("attn_output.weight", AttnOutput),
        ("ffn_up", FfnUp),
        ("ffn_gate", FfnGate),
        ("ffn_down", FfnDown),
    ] {
        if has(pat) {
            return c;
        }
    }
    Other
}

fn is_attn_v(c: Category) -> bool {
    matches!(c, Category::AttnV | Category::AttnQkv | Category::AttnKvB)
}

/// `tensor_allows_quantization` with llama-quantize's default parameters.
fn allows_quantization(t: &PlanTensor) -> bool {
    if t.n_dims() < 2 {
        return false;
    }
    let name = t.name;
    if !name.ends_with("weight") || name.contains("_norm.weight") {
        return false;
    }
    const NEVER: &[&str] = &[
        "ffn_gate_inp.weight",
        "ffn_gate_tid2eid.weight",
        "altup",
        "laurel",
        "per_layer_model_proj",
        "ssm_conv1d",
        "shortconv.conv.weight",
        "indexer.k_proj.weight",
        "indexer.q_proj.weight",
        "time_mix_first.weight",
        "time_mix_w0.weight",
        "time_mix_w1.weight",
        "time_mix_w2.weight",
        "time_mix_v0.weight",
        "time_mix_v1.weight",
        "time_mix_v2.weight",
        "time_mix_a0.weight",
        "time_mix_a1.weight",
        "time_mix_a2.weight",
        "time_mix_g1.weight",
        "time_mix_g2.weight",
        "time_mix_decay_w1.weight",
        "time_mix_decay_w2.weight",
        "time_mix_lerp_fused.weight",
        "attn_rel_b.weight",
        ".position_embd",
        "sam.pos_embd",
        "sam.neck.",
        "sam.net_",
        ".rel_pos",
        ".patch_embd",
        ".patch_merger",
        "a.rvq.codebook",
        "mm.a.code_embd",
    ];
    if NEVER.iter().any(|p| name.contains(p)) {
        return false;
    }
    name != "position_embd.weight" && name != "token_types.weight"
}

/// ggml's block size of a target type (1 for float types).
fn block(t: DType) -> u64 {
    match t {
        DType::Quant(q) => u64::from(q.block_elems()),
        _ => 1,
    }
}

fn q(name: &str) -> DType {
    DType::Quant(QuantType::from_name(name).expect("a ggml type name"))
}

/// `tensor_type_fallback`: a type whose block fits the row, or F16.
fn fallback(ncols: u64, target: DType) -> (DType, bool) {
    let qk = block(target);
    if ncols.is_multiple_of(qk) {
        return (target, false);
    }
    let name = match target {
        DType::Quant(q) => q.name(),
        _ => "",
    };
    let to = match name {
        "IQ1_S" | "IQ1_M" | "IQ2_XXS" | "IQ2_XS" | "IQ2_S" | "IQ3_XXS" | "IQ3_S" | "IQ4_XS" => q("IQ4_NL"),
        "Q2_K" | "Q3_K" | "TQ1_0" | "TQ2_0" => q("Q4_0"),
        "Q4_K" => q("Q5_0"),
        "Q5_K" => q("Q5_1"),
        "Q6_K" => q("Q8_0"),
        _ => target,
    };
    if !ncols.is_multiple_of(block(to)) {
        (DType::F16, true)
    } else {
        (to, true)
    }
}

/// The counters `llama_tensor_get_type_impl` keeps across tensors.
struct Counters {
    n_attention_wv: i64,
    i_attention_wv: i64,
    n_layer: i64,
    i_ffn_down: i64,
    i_ffn_gate: i64,
    i_ffn_up: i64,
    tied_embeddings: bool,
    has_imatrix: bool,
}

fn use_more_bits(i: i64, n: i64) -> bool {
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
}

/// What the plan decided for one file.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The tensors in the order they are written (indices into the input).
    pub order: Vec<usize>,
    /// Per input tensor: the type it is written in.
    pub targets: Vec<DType>,
    /// How many tensors took a fallback type because their rows do not
    /// divide into the planned type's blocks.
    pub fallbacks: usize,
}

/// The plan of file type `ft` for a model's tensors, in the loader's order;
/// `has_imatrix` as llama-quantize's (some rules differ with one).
pub fn plan(ft: FileType, model: &ModelShape, tensors: &[PlanTensor], has_imatrix: bool) -> Result<Plan> {
    let names: Vec<&str> = tensors.iter().map(|t| t.name).collect();
    let order = loader_order(&names);
    let mut c = Counters {
        n_attention_wv: names.iter().filter(|n| is_attn_v(category(n))).count() as i64,
        i_attention_wv: 0,
        n_layer: i64::from(model.n_layer),
        i_ffn_down: 0,
        i_ffn_gate: 0,
        i_ffn_up: 0,
        tied_embeddings: !names.contains(&"output.weight"),
        has_imatrix,
    };
    let default = ft.default_type();
    let mut targets: Vec<DType> = tensors.iter().map(|t| t.dtype).collect();
    let mut fallbacks = 0;
    for &i in &order {
        let t = &tensors[i];
        if !allows_quantization(t) {
            continue;
        }
        let mut new = default;
        if matches!(default, DType::Quant(_)) {
            new = tensor_type(&mut c, model, ft, t, default)?;
            let (to, fell) = fallback(t.ne(0), new);
            new = to;
            fallbacks += usize::from(fell);
        }
        targets[i] = new;
    }
    Ok(Plan {
        order,
        targets,
        fallbacks,
    })
}

/// `tensor_requires_imatrix`: tensors llama-quantize will not write without
/// importance data (the lowest-bit types; Q2_K in a Q2_K_S file).
pub fn requires_imatrix(name: &str, target: DType, ft: FileType) -> bool {
    if name == "token_embd.weight" || name == "per_layer_token_embd.weight" || name == "output.weight" {
        return false;
    }
    match target {
        DType::Quant(q) => match q.name() {
            "IQ3_XXS" | "IQ2_XXS" | "IQ2_XS" | "IQ2_S" | "IQ1_M" | "IQ1_S" => true,
            "Q2_K" => ft.name() == "Q2_K_S",
            _ => false,
        },
        _ => false,
    }
}

/// Every quantizable tensor in `default` (llama-quantize's `--pure`), with
/// the same fallbacks; used for files that name no architecture.
pub fn pure_target(default: DType, ne0: u64) -> DType {
    if matches!(default, DType::Quant(_)) {
        fallback(ne0, default).0
    } else {
        default
    }
}

/// The layer of an FFN tensor: its counter, or its `blk.N.` number when the
/// model has experts (whose tensors need not come in layer order).
fn layer_info(counter: i64, n_layer: i64, model: &ModelShape, name: &str) -> Result<i64> {
    if model.n_expert <= 1 {
        return Ok(counter);
    }
    let layer = layer_of(name);
    if layer < 0 || layer >= n_layer {
        return Err(Error::unsupported(
            code::BAD_DATA,
            format!("tensor '{name}': no layer in [0, {n_layer}) for the quantization plan"),
        ));
    }
    Ok(layer)
}

/// `llama_tensor_get_type_impl` with default parameters and no imatrix.
fn tensor_type(
    c: &mut Counters,
    m: &ModelShape,
    ft: FileType,
    t: &PlanTensor,
    start: DType,
) -> Result<DType> {
    use Category::*;
    let f = ft.name();
    let cat = category(t.name);
    let arch = m.arch.as_str();
    let falcon = arch == "falcon";
    let mut new = start;
    let iq_low = matches!(f, "IQ2_XXS" | "IQ2_XS" | "IQ1_S" | "IQ2_S" | "IQ2_M" | "IQ1_M");
    if cat == Output || (c.tied_embeddings && cat == TokenEmbd) {
        let nx = t.ne(0);
        if f == "MXFP4_MOE" || falcon || !nx.is_multiple_of(block(new)) {
            new = q("Q8_0");
        } else if matches!(
            f,
            "IQ2_XXS" | "IQ2_XS" | "IQ3_XXS" | "IQ1_S" | "IQ2_S" | "IQ2_M" | "IQ1_M"
        ) {
            new = q("Q5_K");
        } else if new != q("Q8_0") {
            new = q("Q6_K");
        }
    } else if f == "MXFP4_MOE" {
        new = if t.ne(2) > 1 { q("MXFP4") } else { q("Q8_0") };
    } else if cat == TokenEmbd {
        if matches!(f, "IQ2_XXS" | "IQ2_XS" | "IQ1_S" | "IQ1_M") {
            new = q("Q2_K");
        } else if matches!(f, "IQ2_S" | "IQ2_M" | "IQ3_XXS") {
            new = q("IQ3_S");
        } else if matches!(f, "TQ1_0" | "TQ2_0") {
            new = q("Q4_K");
        }
    } else if iq_low {
        let iq2s = matches!(f, "IQ2_S" | "IQ2_M");
        if is_attn_v(cat) {
            new = if m.n_gqa() >= 4 || m.n_expert >= 4 {
                q("Q4_K")
            } else if iq2s {
                q("IQ3_S")
            } else {
                q("Q2_K")
            };
            c.i_attention_wv += 1;
        } else if m.n_expert == 8 && cat == AttnK {
            new = q("Q4_K");
        } else if cat == FfnDown {
            if c.i_ffn_down < c.n_layer / 8 {
                new = if iq2s { q("IQ3_S") } else { q("Q2_K") };
            }
            c.i_ffn_down += 1;
        } else if cat == AttnOutput {
            if m.n_expert == 8 {
                new = q("Q5_K");
            } else if matches!(f, "IQ1_S" | "IQ1_M") {
                new = q("IQ2_XXS");
            } else if iq2s {
                new = q("IQ3_S");
            }
        }
    } else if is_attn_v(cat) {
        let gqa4 = m.n_gqa() >= 4;
        match f {
            "Q2_K" => new = if gqa4 { q("Q4_K") } else { q("Q3_K") },
            "Q2_K_S" if gqa4 => new = q("Q4_K"),
            "IQ3_XXS" => {
                new = if gqa4 {
                    q("Q4_K")
                } else if !c.has_imatrix {
                    q("IQ3_S")
                } else {
                    q("IQ3_XXS")
                }
            }
            "IQ3_XS" | "IQ3_S" if gqa4 => new = q("Q4_K"),
            "IQ3_M" => new = q("Q4_K"),
            "Q3_K_M" => {
                new = if c.i_attention_wv < 2 {
                    q("Q5_K")
                } else {
                    q("Q4_K")
                }
            }
            "Q3_K_L" => new = q("Q5_K"),
            "IQ4_NL" | "IQ4_XS" if gqa4 => new = q("Q5_K"),
            "Q4_K_M" | "Q5_K_M" if use_more_bits(c.i_attention_wv, c.n_attention_wv) => new = q("Q6_K"),
            "Q4_K_S" if c.i_attention_wv < 4 => new = q("Q5_K"),
            _ => {}
        }
        if m.is_70b() && (new == q("Q3_K") || new == q("Q4_K")) {
            new = q("Q5_K");
        }
        if m.n_expert == 8 {
            new = q("Q8_0");
        }
        c.i_attention_wv += 1;
    } else if cat == AttnK {
        if m.n_expert == 8 {
            new = q("Q8_0");
        } else if f == "IQ3_XS" {
            new = q("IQ3_XXS");
        } else if f == "IQ3_XXS" {
            new = q("IQ2_S");
        }
    } else if cat == AttnQ {
        if f == "IQ3_XS" {
            new = q("IQ3_XXS");
        } else if f == "IQ3_XXS" {
            new = q("IQ2_S");
        }
    } else if cat == FfnDown {
        let i = layer_info(c.i_ffn_down, c.n_layer, m, t.name)?;
        let n = c.n_layer;
        match f {
            "Q2_K" => new = q("Q3_K"),
            "Q2_K_S" if i < n / 8 => new = q("Q4_K"),
            "Q2_K_S" => {}
            "IQ3_XXS" if !c.has_imatrix => new = if i < n / 8 { q("Q4_K") } else { q("Q3_K") },
            "Q3_K_M" => {
                new = if i < n / 16 {
                    q("Q5_K")
                } else if !falcon || use_more_bits(i, n) {
                    q("Q4_K")
                } else {
                    q("Q3_K")
                }
            }
            "IQ3_M" if i < n / 8 || (m.n_expert == 8 && use_more_bits(i, n)) => new = q("Q4_K"),
            "Q3_K_L" => new = if falcon { q("Q4_K") } else { q("Q5_K") },
            "Q4_K_M" => {
                if falcon {
                    new = if i < n / 16 {
                        q("Q6_K")
                    } else if use_more_bits(i, n) {
                        q("Q5_K")
                    } else {
                        q("Q4_K")
                    };
                } else if use_more_bits(i, n) {
                    new = q("Q6_K");
                }
            }
            "IQ4_NL" | "IQ4_XS" if i < n / 8 && !c.has_imatrix => new = q("Q5_K"),
            "Q5_K_M" if use_more_bits(i, n) => new = q("Q6_K"),
            "Q4_K_S" if !falcon && i < n / 8 => new = q("Q5_K"),
            // Only with an imatrix, so runs without one stay as they were.
            "Q4_0" if c.has_imatrix && i < n / 8 => new = q("Q4_1"),
            "Q5_0" if c.has_imatrix && i < n / 8 => new = q("Q5_1"),
            _ => {}
        }
        c.i_ffn_down += 1;
    } else if cat == AttnOutput {
        if !falcon {
            if m.n_expert == 8 {
                if matches!(
                    f,
                    "Q2_K"
                        | "IQ3_XS"
                        | "IQ3_XXS"
                        | "Q3_K_S"
                        | "Q3_K_M"
                        | "IQ4_NL"
                        | "Q4_K_S"
                        | "Q4_K_M"
                        | "IQ3_S"
                        | "IQ3_M"
                        | "IQ4_XS"
                ) {
                    new = q("Q5_K");
                }
            } else {
                match f {
                    "Q2_K" => new = q("Q3_K"),
                    "IQ3_XXS" => new = q("IQ3_S"),
                    "Q3_K_M" | "IQ3_M" => new = q("Q4_K"),
                    "Q3_K_L" => new = q("Q5_K"),
                    _ => {}
                }
            }
        } else if f == "Q3_K_L" {
            new = q("Q4_K");
        }
    } else if cat == AttnQkv {
        match f {
            "Q3_K_M" | "Q3_K_L" | "IQ3_M" => new = q("Q4_K"),
            "Q4_K_M" => new = q("Q5_K"),
            "Q5_K_M" => new = q("Q6_K"),
            _ => {}
        }
    } else if cat == FfnGate || cat == FfnUp {
        let counter = if cat == FfnGate { c.i_ffn_gate } else { c.i_ffn_up };
        let i = layer_info(counter, c.n_layer, m, t.name)?;
        let n = c.n_layer;
        if f == "IQ3_XS" && i >= n / 8 && i < 7 * n / 8 {
            new = q("IQ3_XXS");
        }
        if cat == FfnGate {
            c.i_ffn_gate += 1;
        } else {
            c.i_ffn_up += 1;
        }
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loader_order_sorts_by_layer_number_then_name() {
        let names = [
            "blk.10.a.weight",
            "output.weight",
            "blk.2.b.weight",
            "blk.2.a.weight",
            "token_embd.weight",
        ];
        let order: Vec<&str> = loader_order(&names).into_iter().map(|i| names[i]).collect();
        assert_eq!(
            order,
            [
                "output.weight",
                "token_embd.weight",
                "blk.2.a.weight",
                "blk.2.b.weight",
                "blk.10.a.weight"
            ]
        );
    }

    #[test]
    fn fallbacks_follow_llama_quant() {
        assert_eq!(fallback(640, q("Q4_K")), (q("Q5_0"), true));
        assert_eq!(fallback(576, q("Q6_K")), (q("Q8_0"), true));
        assert_eq!(fallback(768, q("Q4_K")), (q("Q4_K"), false));
        assert_eq!(fallback(48, q("Q4_K")), (DType::F16, true));
        assert_eq!(fallback(48, q("Q8_0")), (DType::F16, true));
    }
}
