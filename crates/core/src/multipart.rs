//! One model stored as several files opened as one [`Source`]: Hugging Face
//! shards under their index, llama.cpp's split GGUF parts, or one file
//! opened beside another (a folder's weights beside its `config.json`, named
//! so references point at the right file). The format
//! checks its own rules (which part holds what, duplicate names) and hands
//! the opened parts here; tensors come part by part, in each part's order.

use crate::{code, Error, Metadata, RawLocation, Result, Source, TensorData, TensorInfo};

/// Several opened files of one format as one source.
pub struct MultiPart<P> {
    format: &'static str,
    parts: Vec<P>,
    /// Each part's file name beside the input; `None` for the input itself
    /// (a split model's first part), so references name the right file.
    names: Vec<Option<String>>,
    /// (part, tensor within the part) of each tensor of `tensors`.
    locations: Vec<(usize, usize)>,
    tensors: Vec<TensorInfo>,
    metadata: Metadata,
    /// Every part's warnings, in part order.
    warnings: Vec<String>,
}

impl<P: Source> MultiPart<P> {
    /// `parts` (each with its file name beside the input, `None` for the
    /// input itself) as one source of `format` with `metadata`.
    pub fn new(format: &'static str, parts: Vec<(Option<String>, P)>, metadata: Metadata) -> MultiPart<P> {
        let (names, parts): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
        let (mut locations, mut tensors) = (Vec::new(), Vec::new());
        for (p, part) in parts.iter().enumerate() {
            for (i, t) in part.tensors().iter().enumerate() {
                locations.push((p, i));
                tensors.push(t.clone());
            }
        }
        let warnings = parts.iter().flat_map(|p| p.warnings().iter().cloned()).collect();
        MultiPart {
            format,
            warnings,
            parts,
            names,
            locations,
            tensors,
            metadata,
        }
    }

    /// The opened parts, in order.
    pub fn parts(&self) -> &[P] {
        &self.parts
    }

    fn locate(&self, index: usize) -> Result<(usize, usize)> {
        self.locations
            .get(index)
            .copied()
            .ok_or_else(|| Error::usage(code::CALL_ORDER, format!("no tensor #{index}")))
    }
}

impl<P: Source> Source for MultiPart<P> {
    fn format(&self) -> &'static str {
        self.format
    }

    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn tensor_data(&self, index: usize) -> Result<TensorData<'_>> {
        let (p, i) = self.locate(index)?;
        self.parts[p].tensor_data(i)
    }

    fn storage_note(&self, index: usize) -> Option<String> {
        let (p, i) = self.locate(index).ok()?;
        self.parts[p].storage_note(i)
    }

    fn raw_location(&self, index: usize) -> Option<RawLocation<'_>> {
        let (p, i) = self.locate(index).ok()?;
        let inner = self.parts[p].raw_location(i)?;
        Some(RawLocation {
            // A part's own location names a file beside it (none here);
            // the part itself is named beside the input.
            file: inner.file.or(self.names[p].as_deref()),
            offset: inner.offset,
        })
    }
}
