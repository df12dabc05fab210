//! The seam every format crate plugs into: one [`Format`] value says how to
//! recognise the format, open it as a [`Source`] and (if it can be written)
//! create a [`Sink`] for it. The facade keeps one list of them.

use crate::code;
use crate::{Bytes, Error, Input, Limits, Result, Sink, Source, WriteTarget};
use std::any::{Any, TypeId};
use std::sync::Arc;

/// How sure a format is that a file's first bytes are its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Detection {
    /// Not this format.
    No,
    /// Could be this format, if nothing recognises it by a signature (a bare
    /// pickle's protocol byte, a JSON index).
    Weak,
    /// A signature or structure that identifies the format.
    Strong,
}

impl Detection {
    /// Strong when `head` starts with `magic`, else no.
    pub fn magic(head: &[u8], magic: &[u8]) -> Detection {
        if head.starts_with(magic) {
            Detection::Strong
        } else {
            Detection::No
        }
    }
}

/// How a file takes part when a folder is converted file by file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputRole {
    /// An input of its own (a single file, a sharded index, a split
    /// model's first part).
    Whole,
    /// A part that another file of the folder opens (a shard its index
    /// lists, a split model's later part): not converted on its own.
    Covered,
}

/// The name of a zip archive's first member, read from its local header
/// (torch zips start with `<folder>/data.pkl`, NumPy's with `name.npy`).
pub fn zip_first_member(head: &[u8]) -> Option<&[u8]> {
    if !(head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06")) {
        return None;
    }
    let name_len = head
        .get(26..28)
        .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
        .unwrap_or(0);
    Some(head.get(30..30 + name_len).unwrap_or_default())
}

/// One container format: a reader, and a writer where the format has one.
///
/// Call order: the facade asks every registered format to [`Format::detect`]
/// an input's first bytes and opens it with the first strong match (else the
/// first weak one, else the one its extension names); outputs are created by
/// the format `--to` or the output's extension names.
pub trait Format: Send + Sync {
    /// The name used in `inspect`, errors and to choose an output (`gguf`).
    fn name(&self) -> &'static str;

    /// File name endings this format uses, lowercase without the leading dot
    /// (`safetensors`, `safetensors.index.json`); the first is what batch
    /// outputs are named with.
    fn extensions(&self) -> &'static [&'static str];

    /// Whether `head` (up to 512 first bytes of a file) is this format.
    fn detect(&self, head: &[u8]) -> Detection;

    /// How a file called `name` takes part when a folder is converted file
    /// by file; `beside(other)` says whether the folder holds a file called
    /// `other`. By default every file of this format is whole.
    fn input_role(&self, name: &str, beside: &dyn Fn(&str) -> bool) -> InputRole {
        let _ = (name, beside);
        InputRole::Whole
    }

    /// The model's name in a file called `name`: without this format's
    /// extension and multi-part naming (`model-00001-of-00003.gguf` →
    /// `model`). Batch outputs are named after it.
    fn stem<'a>(&self, name: &'a str) -> &'a str {
        crate::parts::strip_extension(name, self.extensions()).unwrap_or(name)
    }

    /// For a format whose files are folders (a Hugging Face model folder):
    /// the file inside that marks such a folder. An input folder holding it
    /// opens through it (it is the [`Input`], the rest its siblings); an
    /// output folder holding it already holds a model.
    fn folder_entry(&self) -> Option<&'static str> {
        None
    }

    /// For a folder format: whether its folders convert as models into
    /// `target` (through [`Format::open_as_model_for`]), so a batch over a
    /// tree converts each such folder as one input instead of its files.
    fn folder_converts_to(&self, target: &dyn Format) -> bool {
        let _ = target;
        false
    }

    /// For a folder format: the file inside the output folder that the
    /// sink's target is (its other files are the target's siblings).
    /// Converting into the folder with the container's names kept writes
    /// this file alone, in the format its extension names.
    fn folder_target(&self) -> Option<&'static str> {
        None
    }

    /// For a folder format: the other files a conversion into the folder
    /// writes beside its target, so a folder holding any of them is not
    /// overwritten without being asked (shards are named after the target).
    fn folder_side_files(&self) -> &'static [&'static str] {
        &[]
    }

    /// The source a sink of this format should be given for `source`: the
    /// source itself by default; a format that holds models under its own
    /// names (a Hugging Face folder) returns its model-aware view, or a
    /// refusal when it cannot be made from `source`.
    fn view_for_writing(&self, source: Box<dyn Source>) -> Result<Box<dyn Source>> {
        Ok(source)
    }

    /// For a folder format: the folder's model (opened from `input`, its
    /// [`Format::folder_entry`]) as `target` holds models, already cast to
    /// `dtype` where given, and ready for the quantizer that follows it when
    /// `quantize` is given (the metadata says the file type); a refusal
    /// when `target` holds none. The facade falls back to nothing: a folder
    /// converts as a model or, with its names kept, as its weights.
    /// `weights`, when given, stand in for the weights stored beside the
    /// entry (a merge's output, under the folder's own tensor names), so a
    /// model is made from tensors that never were a folder.
    fn open_as_model_for(
        &self,
        input: Input,
        target: &dyn Format,
        options: &Options,
        dtype: Option<crate::DType>,
        quantize: Option<crate::QuantType>,
        weights: Option<Box<dyn Source>>,
    ) -> Result<Box<dyn Source>> {
        let _ = (input, options, dtype, quantize, weights);
        Err(Error::unsupported(
            crate::code::MODEL_FOLDER,
            format!(
                "a {} holds no model that converts to {}",
                self.name(),
                target.name()
            ),
        ))
    }

    /// A source this format read, its blocks decoded, on its way into a
    /// format without blocks: with the shapes the file records as the
    /// tensors' original ones where it records them (ComfyUI-GGUF's
    /// reshaped tensors), saying so in its warnings; as it is otherwise.
    fn restore_shapes(&self, source: Box<dyn Source>) -> Result<Box<dyn Source>> {
        Ok(source)
    }

    /// Opens `input` as a source.
    fn open(&self, input: Input, options: &Options) -> Result<Box<dyn Source>>;

    /// Whether [`Format::create`] can write this format.
    fn can_write(&self) -> bool {
        false
    }

    /// A sink writing this format to `target`.
    fn create(&self, target: Box<dyn WriteTarget>, options: &Options) -> Result<Box<dyn Sink>> {
        let _ = (target, options);
        Err(Error::unsupported(
            code::READ_ONLY,
            format!("tensorcast reads {} but does not write it", self.name()),
        ))
    }

    /// For a ranged object (a remote store, see [`Bytes::ranged`]) whose
    /// first bytes detected as this format: fetches every range
    /// [`Format::open`] parses (headers, manifests, not tensor data), so
    /// opening reads only those and tensor bytes stream when asked for.
    /// `false` (the default) when the format's structure is not found that
    /// way: the caller then downloads the whole object.
    fn prepare_ranged(&self, bytes: &mut Bytes, limits: &Limits) -> Result<bool> {
        let _ = (bytes, limits);
        Ok(false)
    }

    /// Whether this format's writer rewrites bytes it wrote earlier
    /// ([`WriteTarget::write_at`]): such outputs cannot stream into a
    /// multipart upload and are staged in a local file first.
    fn rewrites_output(&self) -> bool {
        false
    }

    /// Whether outputs of this format can hold raw ggml blocks.
    fn holds_blocks(&self) -> bool {
        false
    }

    /// Whether outputs of this format can hold `tensor`, a sparse tensor
    /// (see [`crate::sparse`]), as it is.
    fn holds_sparse(&self, tensor: &crate::TensorInfo) -> bool {
        let _ = tensor;
        false
    }

    /// The attribute under which virtual references record a tensor's
    /// dtype as this format spells it, and that spelling (VirtualiZarr's
    /// `original_safetensors_dtype`); by default `original_dtype` and the
    /// IR's name.
    fn dtype_attribute(&self, dtype: crate::DType) -> (&'static str, String) {
        ("original_dtype", dtype.name().into())
    }

    /// Rewrites the metadata of the local file `input` as `edits` say into
    /// `output` (which may be `input`: then replaced atomically), every
    /// tensor byte unchanged and, where the format allows, the data region
    /// shared with the input rather than copied ([`crate::edit`]).
    /// Formats without an edit refuse (`no-edit`).
    fn edit_metadata(
        &self,
        input: &std::path::Path,
        edits: &[crate::edit::MetaEdit],
        output: &std::path::Path,
        limits: &crate::Limits,
    ) -> Result<crate::edit::EditReport> {
        let _ = (input, edits, output, limits);
        Err(crate::Error::unsupported(
            crate::code::NO_EDIT,
            format!(
                "{} files have no metadata edit: convert them instead",
                self.name()
            ),
        ))
    }

    /// Checks a whole file: one line per damaged part. By default, every
    /// structural rule (by opening) and every tensor read in full; formats
    /// with checksums check them instead.
    fn verify(&self, input: Input, options: &Options) -> Result<Vec<String>> {
        let source = self.open(input, options)?;
        let mut damage = Vec::new();
        // Tensors listed but not readable are not damage.
        for (i, t) in source
            .tensors()
            .iter()
            .enumerate()
            .filter(|(_, t)| t.unreadable.is_none())
        {
            if let Err(e) = source.tensor_data(i).and_then(|d| d.for_each_chunk(|_| Ok(()))) {
                damage.push(format!("tensor '{}': {e}", t.name));
            }
        }
        Ok(damage)
    }
}

/// When a format's options apply: to reading its files, or to writing them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Options for opening inputs of the format.
    Read,
    /// Options for writing outputs of the format.
    Write,
}

/// A format's own options struct, kept in [`Options`] by type.
pub trait FormatOptions: Any + Clone + Default + Send + Sync {
    /// The [`Format::name`] these options belong to.
    const FORMAT: &'static str;
    /// Whether they shape reading or writing.
    const STAGE: Stage;
}

/// The limits every reader enforces, plus each format's own options struct
/// (at most one of each type). Formats read theirs with [`Options::get`] and
/// take the default when it is absent.
#[derive(Clone, Default)]
pub struct Options {
    /// Resource limits every reader enforces.
    pub limits: Limits,
    entries: Vec<OptionEntry>,
}

#[derive(Clone)]
struct OptionEntry {
    type_id: TypeId,
    format: &'static str,
    stage: Stage,
    value: Arc<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set: Vec<_> = self.entries.iter().map(|e| (e.format, e.stage)).collect();
        f.debug_struct("Options")
            .field("limits", &self.limits)
            .field("format_options", &set)
            .finish()
    }
}

impl Options {
    /// Default options with these limits.
    pub fn with_limits(limits: Limits) -> Options {
        Options {
            limits,
            entries: Vec::new(),
        }
    }

    /// Sets a format's options, replacing any of the same type.
    pub fn set<T: FormatOptions>(&mut self, value: T) -> &mut Self {
        self.entries.retain(|e| e.type_id != TypeId::of::<T>());
        self.entries.push(OptionEntry {
            type_id: TypeId::of::<T>(),
            format: T::FORMAT,
            stage: T::STAGE,
            value: Arc::new(value),
        });
        self
    }

    /// The same options with `value` set.
    pub fn and<T: FormatOptions>(mut self, value: T) -> Self {
        self.set(value);
        self
    }

    /// A format's options: those set, or its defaults.
    pub fn get<T: FormatOptions>(&self) -> T {
        self.entries
            .iter()
            .find(|e| e.type_id == TypeId::of::<T>())
            .and_then(|e| e.value.downcast_ref::<T>())
            .cloned()
            .unwrap_or_default()
    }

    /// Formats with options set for `stage`.
    pub fn formats_set(&self, stage: Stage) -> Vec<&'static str> {
        self.entries
            .iter()
            .filter(|e| e.stage == stage)
            .map(|e| e.format)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default, Debug, PartialEq)]
    struct Toy(u32);
    impl FormatOptions for Toy {
        const FORMAT: &'static str = "toy";
        const STAGE: Stage = Stage::Write;
    }

    #[test]
    fn options_by_type_with_defaults() {
        let mut o = Options::default();
        assert_eq!(o.get::<Toy>(), Toy(0));
        o.set(Toy(3)).set(Toy(4));
        assert_eq!(o.get::<Toy>(), Toy(4));
        assert_eq!(o.formats_set(Stage::Write), ["toy"]);
        assert!(o.formats_set(Stage::Read).is_empty());
        assert!(Detection::Strong > Detection::Weak && Detection::Weak > Detection::No);
    }
}
