//! PyTorch checkpoints as a registered [`Format`] (read-only).

use crate::{PytorchFile, PytorchOptions, FORMAT};
use tensorcast_core::{
    zip_first_member, Detection, Format, FormatOptions, Input, Options, Result, Sink, Source, Stage,
    WriteTarget,
};

/// PyTorch checkpoints: zip (torch ≥ 1.6), legacy, tar and bare pickles.
pub struct Pytorch;

impl FormatOptions for PytorchOptions {
    const FORMAT: &'static str = FORMAT;
    const STAGE: Stage = Stage::Read;
}

/// A zip whose first member is not a `.npy` (NumPy's `.npz` starts with one).
fn is_torch_zip(head: &[u8]) -> bool {
    // NumPy's .npz starts with an array, a Keras 3 archive with its JSON.
    zip_first_member(head)
        .is_some_and(|n| !n.ends_with(b".npy") && n != b"metadata.json" && n != b"config.json")
}

impl Format for Pytorch {
    /// torch's spelling (`torch.bfloat16`).
    fn dtype_attribute(&self, dtype: tensorcast_core::DType) -> (&'static str, String) {
        let name = dtype.torch_name().unwrap_or(dtype.name());
        ("original_torch_dtype", format!("torch.{name}"))
    }

    fn name(&self) -> &'static str {
        FORMAT
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["pt", "pth", "bin", "ckpt", "pkl", "pickle"]
    }

    fn detect(&self, head: &[u8]) -> Detection {
        // Legacy torch.save: PROTO 2, then the magic number as a 10-byte LONG1.
        let legacy = head.starts_with(b"\x80\x02\x8a\x0a");
        if legacy || is_torch_zip(head) {
            return Detection::Strong;
        }
        // A bare pickle's PROTO opcode and the ancient tar format are weak:
        // a safetensors header length of 128..=255 bytes also starts with
        // 0x80, and its JSON may hold "ustar" at byte 257.
        let pickle = head.len() >= 2 && head[0] == 0x80 && (2..=5).contains(&head[1]);
        if pickle || head.get(257..262) == Some(b"ustar") {
            return Detection::Weak;
        }
        Detection::No
    }

    fn open(&self, input: Input, options: &Options) -> Result<Box<dyn Source>> {
        let opts = PytorchOptions {
            limits: options.limits.clone(),
            ..options.get::<PytorchOptions>()
        };
        Ok(Box::new(PytorchFile::from_bytes(
            &input.name,
            input.bytes,
            &opts,
        )?))
    }

    /// A torch zip: its directories, local headers and small records (the
    /// pickle); legacy and tar checkpoints, and deflated zips, are not.
    fn prepare_ranged(
        &self,
        bytes: &mut tensorcast_core::Bytes,
        limits: &tensorcast_core::Limits,
    ) -> Result<bool> {
        if !is_torch_zip(&bytes[..bytes.len().min(512)]) {
            return Ok(false);
        }
        crate::ranged::prepare(bytes, limits)
    }

    fn can_write(&self) -> bool {
        true
    }

    /// The zip checkpoint `torch.save` writes for a flat state dict, using
    /// only what `torch.load(weights_only=True)` allows.
    fn create(&self, target: Box<dyn WriteTarget>, _: &Options) -> Result<Box<dyn Sink>> {
        Ok(Box::new(crate::PytorchWriter::to_target(target)))
    }
}
