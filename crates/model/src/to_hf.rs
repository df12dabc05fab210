//! A GGUF model as Hugging Face tensors: names from the architecture table,
//! Q/K rows back in Hugging Face's order. Adapts the raw GGUF source (before
//! any dequantization or cast, so rows are whole blocks and nothing is copied
//! but the permuted matrices).

use crate::arch::{self, Arch};
use crate::gguf_kv::{int, string};
use crate::permute::{check, permute_rows, Direction};
use tensorcast_core::code;
use tensorcast_core::{DType, Error, Metadata, Result, Source, TensorData, TensorInfo};

/// What happens to one tensor on the way.
#[derive(Clone, Copy, Debug)]
enum Transform {
    None,
    /// Rows un-permuted for this many heads.
    Unpermute(u64),
    /// A zero-centred norm stored as `w + 1`: minus 1 in f32, as
    /// transformers' loader computes it, written as f32.
    SubtractOne,
}

/// A GGUF source seen as a Hugging Face model.
pub struct GgufToHf<S> {
    inner: S,
    arch: &'static Arch,
    tensors: Vec<TensorInfo>,
    transforms: Vec<Transform>,
}

/// The architecture table a GGUF's metadata names, or a refusal naming it.
pub fn arch_of(metadata: &Metadata) -> Result<&'static Arch> {
    let name = string(metadata, "general.architecture").ok_or_else(|| {
        Error::unsupported(
            code::NOT_A_MODEL,
            "the GGUF has no general.architecture: it is not a model file",
        )
    })?;
    arch::by_gguf_name(name).ok_or_else(|| {
        Error::unsupported(code::NO_MODEL_TABLE, format!(
            "architecture '{name}' has no model table yet (known: {}); convert the container with its names kept instead",
            arch::known().join(", ")
        ))
    })
}

impl<S: Source> GgufToHf<S> {
    /// Wraps a GGUF source; refuses unknown architectures and tensors.
    pub fn new(inner: S) -> Result<Self> {
        let metadata = inner.metadata();
        let arch = arch_of(metadata)?;
        let heads = int(metadata, &format!("{}.attention.head_count", arch.gguf));
        let kv_heads = int(metadata, &format!("{}.attention.head_count_kv", arch.gguf)).or(heads);
        let mut tensors = Vec::with_capacity(inner.tensors().len());
        let mut transforms = Vec::with_capacity(inner.tensors().len());
        for t in inner.tensors() {
            let name = arch.hf_name(&t.name).ok_or_else(|| {
                Error::unsupported(
                    code::NO_MODEL_TABLE,
                    format!(
                        "tensor '{}' has no Hugging Face name in the {} table",
                        t.name, arch.gguf
                    ),
                )
            })?;
            let part = t.name.split('.').nth(2).unwrap_or("");
            let heads = match (arch.permute_qk, part, t.name.starts_with("blk.")) {
                (true, "attn_q", true) => heads,
                (true, "attn_k", true) => kv_heads,
                _ => None,
            };
            let transform = match heads {
                Some(h) => {
                    let h = u64::try_from(h).unwrap_or(0);
                    let rows = t.shape.first().copied().unwrap_or(0);
                    check(&t.name, rows, h)?;
                    Transform::Unpermute(h)
                }
                None if arch.norm_offset && t.name.ends_with("norm.weight") => Transform::SubtractOne,
                None => Transform::None,
            };
            let mut info = t.clone();
            info.name = name;
            match transform {
                Transform::None => {}
                Transform::Unpermute(_) => info.file_offset = None,
                Transform::SubtractOne => {
                    info = TensorInfo::new(&info.name, DType::F32, info.shape.clone()).ok_or_else(|| {
                        Error::unsupported(code::TOO_LARGE, format!("tensor '{}': size overflows", t.name))
                    })?;
                }
            }
            tensors.push(info);
            transforms.push(transform);
        }
        Ok(GgufToHf {
            inner,
            arch,
            tensors,
            transforms,
        })
    }

    /// The architecture table in use.
    pub fn arch(&self) -> &'static Arch {
        self.arch
    }
}

impl<S: Source> Source for GgufToHf<S> {
    tensorcast_core::forward_to_inner!();

    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        let data = self.inner.tensor_data(index)?;
        match self.transforms.get(index).copied().unwrap_or(Transform::None) {
            Transform::None => Ok(data),
            Transform::SubtractOne => {
                let from = self.inner.tensors()[index].dtype;
                crate::offset::add(data, from, DType::F32, -1.0)
            }
            Transform::Unpermute(heads) => {
                let t = &self.tensors[index];
                let rows = t.shape.first().copied().unwrap_or(1).max(1);
                let row_bytes = usize::try_from(t.nbytes / rows).unwrap_or(0);
                permute_rows(data, rows, row_bytes, heads, Direction::ToHf)
            }
        }
    }
}
