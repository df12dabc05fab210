//! The one list of formats. Detection, extension mapping, output formats,
//! batch output names and verify all come from here, so adding a format is
//! one crate plus one line in [`Registry::builtin`].

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use tensorcast_core::code;
use tensorcast_core::{
    Detection, Error, Format, FormatError, Input, Location, Options, Result, Sink, Source, Stage, WriteTarget,
};

/// The formats a conversion can read and write. Cloning is cheap (the
/// formats are shared).
#[derive(Clone)]
pub struct Registry {
    formats: Vec<Arc<dyn Format>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::builtin()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.formats.iter().map(|x| x.name()))
            .finish()
    }
}

/// How many first bytes detection looks at.
const HEAD_BYTES: usize = 512;

impl Registry {
    /// Every format compiled in (one cargo feature each). Order matters only
    /// between formats whose signatures could both match: the first strong
    /// match wins.
    pub fn builtin() -> Registry {
        #[allow(unused_mut)]
        let mut r = Registry::empty();
        #[cfg(feature = "gguf")]
        r.register(tensorcast_gguf::Gguf);
        #[cfg(feature = "numpy")]
        r.register(tensorcast_numpy::Npy);
        #[cfg(feature = "numpy")]
        r.register(tensorcast_numpy::Npz);
        #[cfg(feature = "tpack")]
        r.register(tensorcast_tpack::Tpack);
        #[cfg(feature = "ztensor")]
        r.register(tensorcast_ztensor::Ztensor);
        #[cfg(feature = "pytorch")]
        r.register(tensorcast_pickle::Pytorch);
        #[cfg(feature = "safetensors")]
        r.register(tensorcast_safetensors::Safetensors);
        #[cfg(feature = "onnx")]
        r.register(tensorcast_onnx::Onnx);
        #[cfg(feature = "hdf5")]
        r.register(tensorcast_hdf5::Hdf5);
        #[cfg(feature = "hdf5")]
        r.register(tensorcast_hdf5::Keras);
        #[cfg(feature = "model")]
        r.register(tensorcast_model::HfFolder);
        r
    }

    /// No formats at all.
    pub fn empty() -> Registry {
        Registry { formats: Vec::new() }
    }

    /// Adds a format after those already registered.
    pub fn register(&mut self, format: impl Format + 'static) -> &mut Self {
        self.formats.push(Arc::new(format));
        self
    }

    /// The same registry with `format` added.
    pub fn with(mut self, format: impl Format + 'static) -> Self {
        self.register(format);
        self
    }

    /// Every registered format, in order.
    pub fn formats(&self) -> impl Iterator<Item = &dyn Format> {
        self.formats.iter().map(|f| &**f)
    }

    /// The names of the formats that can be written.
    pub fn writable(&self) -> Vec<&'static str> {
        self.formats()
            .filter(|f| f.can_write())
            .map(|f| f.name())
            .collect()
    }

    /// The format called `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&dyn Format> {
        self.formats().find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// [`Registry::get`], or a usage error listing the writable formats.
    pub fn output_named(&self, name: &str) -> Result<&dyn Format> {
        self.get(name).ok_or_else(|| {
            Error::usage(
                code::UNKNOWN_FORMAT,
                format!("unknown format '{name}' (formats: {})", self.names()),
            )
        })
    }

    fn names(&self) -> String {
        self.formats().map(|f| f.name()).collect::<Vec<_>>().join(", ")
    }

    /// The format a path's name ends with (the longest matching extension).
    pub fn for_path(&self, path: &Path) -> Option<&dyn Format> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        self.formats()
            .flat_map(|f| f.extensions().iter().map(move |e| (f, *e)))
            .filter(|(_, ext)| {
                name.len() > ext.len()
                    && name.ends_with(ext)
                    && name.as_bytes()[name.len() - ext.len() - 1] == b'.'
            })
            .max_by_key(|(_, ext)| ext.len())
            .map(|(f, _)| f)
    }

    /// The format whose signature `head` (a file's first bytes) carries:
    /// the first strong match, else the first weak one.
    pub fn detect_head(&self, head: &[u8]) -> Option<&dyn Format> {
        let mut weak = None;
        for f in self.formats() {
            match f.detect(head) {
                Detection::Strong => return Some(f),
                Detection::Weak if weak.is_none() => weak = Some(f),
                _ => {}
            }
        }
        weak
    }

    /// The format of `input`: from its bytes, else (so a damaged file still
    /// reaches the reader that can say what is wrong) from its name.
    pub fn detect(&self, input: &Input) -> Result<&dyn Format> {
        let head = &input.bytes[..input.bytes.len().min(HEAD_BYTES)];
        if let Some(f) = self.detect_head(head) {
            return Ok(f);
        }
        self.for_path(&input.name).ok_or_else(|| {
            let shown: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
            FormatError::new(
                "tensorcast",
                "unknown-format",
                format!("no known format starts with bytes [{}]", shown.join(" ")),
            )
            .in_file(&input.name)
            .into()
        })
    }

    /// The format of the local file at `path`, reading only its first bytes.
    pub fn detect_path(&self, path: &Path) -> Result<&dyn Format> {
        let mut head = Vec::with_capacity(HEAD_BYTES);
        tensorcast_core::open_regular(path)?
            .take(HEAD_BYTES as u64)
            .read_to_end(&mut head)
            .map_err(|e| Error::io(path, e))?;
        self.detect(&Input::memory(path, head))
    }

    /// Opens `input` with the reader its bytes call for. Reading options set
    /// for another format are refused: they would be silently ignored.
    pub fn open_input(&self, input: Input, options: &Options) -> Result<Box<dyn Source>> {
        let format = self.detect(&input)?;
        let foreign: Vec<&str> = options
            .formats_set(Stage::Read)
            .into_iter()
            .filter(|f| *f != format.name())
            .collect();
        if let Some(other) = foreign.first() {
            return Err(Error::usage(
                code::OPTIONS_MISMATCH,
                format!(
                    "options for reading {other} files were given, but {} is {}",
                    input.name.display(),
                    format.name()
                ),
            ));
        }
        format.open(input, options)
    }

    /// The folder format of `path` when it is a folder (or a repository
    /// URL): the first format whose [`Format::folder_entry`] it holds; a
    /// folder that none claims is refused. `None` for a file.
    pub fn folder_format(&self, location: &Location) -> Result<Option<&dyn Format>> {
        if !location.is_folder() {
            return Ok(None);
        }
        if let Some(f) = self.folder_claiming(location) {
            return Ok(Some(f));
        }
        let known: Vec<String> = self
            .formats()
            .filter_map(|f| Some(format!("{} ({})", f.folder_entry()?, f.name())))
            .collect();
        Err(Error::unsupported(
            code::UNKNOWN_FORMAT,
            format!(
                "{location} is a folder holding none of: {}",
                if known.is_empty() {
                    "(no folder formats)".to_string()
                } else {
                    known.join(", ")
                }
            ),
        ))
    }

    /// The first format whose [`Format::folder_entry`] the folder at
    /// `location` holds.
    pub(crate) fn folder_claiming(&self, location: &Location) -> Option<&dyn Format> {
        let holds = |entry: &str| match location.join(entry) {
            Location::Local(p) => p.is_file(),
            url => crate::occupied(&url),
        };
        self.formats().find(|f| f.folder_entry().is_some_and(holds))
    }

    /// Opens the file at `location` (a local file, mapped, siblings from its
    /// directory; or a URL, read by range, siblings beside it); a folder
    /// through its folder format.
    pub fn open(&self, location: impl Into<Location>, options: &Options) -> Result<Box<dyn Source>> {
        let location = location.into();
        if let Some(folder) = self.folder_format(&location)? {
            let entry = location.join(folder.folder_entry().unwrap_or_default());
            return folder.open(self.input(&entry, &options.limits)?, options);
        }
        self.open_input(self.input(&location, &options.limits)?, options)
    }

    /// `location` (a local file or a URL) as an input for these formats.
    pub fn input(&self, location: &Location, limits: &tensorcast_core::Limits) -> Result<Input> {
        crate::remote::open_input(self, location, limits)
    }

    /// A sink for the format called `format` writing into `target`.
    pub fn create(
        &self,
        format: &str,
        target: Box<dyn WriteTarget>,
        options: &Options,
    ) -> Result<Box<dyn Sink>> {
        self.output_named(format)?.create(target, options)
    }

    /// The output format: named by `to`, else by the output's extension.
    pub fn output_format(&self, output: &Path, to: Option<&str>) -> Result<&dyn Format> {
        let format = match to {
            Some(name) => self.output_named(name)?,
            None => self.for_path(output).ok_or_else(|| {
                Error::usage(
                    code::UNKNOWN_FORMAT,
                    format!(
                        "cannot tell the output format from '{}' (writable formats: {})",
                        output.display(),
                        self.writable().join(", ")
                    ),
                )
            })?,
        };
        Ok(format)
    }

    /// Checks the whole file at `path` with the limits in `options`
    /// (see [`Format::verify`]).
    pub fn verify(&self, location: impl Into<Location>, options: &Options) -> Result<Vec<String>> {
        let input = self.input(&location.into(), &options.limits)?;
        self.detect(&input)?.verify(input, options)
    }
}

impl Registry {
    /// Edits the metadata of the local file `input` (see
    /// [`Format::edit_metadata`]): into `output`, or replacing `input` when
    /// `output` is `None`. An existing `output` is refused unless `force`.
    pub fn edit(
        &self,
        input: &Path,
        edits: &[crate::MetaEdit],
        output: Option<&Path>,
        force: bool,
        limits: &tensorcast_core::Limits,
    ) -> Result<crate::EditReport> {
        let format = self.detect_path(input)?;
        let real = std::fs::canonicalize(input).map_err(|e| Error::io(input, e))?;
        let output = output.unwrap_or(input);
        if std::fs::canonicalize(output).ok().as_ref() == Some(&real) {
            // In place: the file a link points to is replaced, not the link.
            return format.edit_metadata(&real, edits, &real, limits);
        }
        if !force && crate::occupied(output) {
            return Err(Error::usage(
                code::OUTPUT_EXISTS,
                format!("{} already exists", output.display()),
            ));
        }
        format.edit_metadata(input, edits, output, limits)
    }
}

/// The format of the file at `path`, by the built-in registry.
pub fn detect(path: &Path) -> Result<&'static str> {
    Ok(Registry::builtin().detect_path(path)?.name())
}

#[cfg(all(test, feature = "safetensors", feature = "gguf", feature = "pytorch"))]
mod tests {
    use super::*;

    fn name(head: &[u8]) -> Option<&'static str> {
        Registry::builtin().detect_head(head).map(|f| f.name())
    }

    #[test]
    fn signatures() {
        assert_eq!(name(b"GGUF\x03\0\0\0"), Some("gguf"));
        assert_eq!(name(b"\x10\0\0\0\0\0\0\0{\"a\":1}"), Some("safetensors"));
        assert_eq!(name(b"\x10\0\0\0\0\0\0\0  {"), Some("safetensors"));
        assert_eq!(name(b"\x80\x02\x8a\x0a"), Some("pytorch"));
        assert_eq!(name(b"\x80\x04\x95"), Some("pytorch"));
        assert_eq!(name(b"{\n \"weight_map\": {}}"), Some("safetensors"));
        assert_eq!(name(b"hello world"), None);
        // A 128-byte safetensors header length must not look like a pickle.
        assert_eq!(name(b"\x80\x00\0\0\0\0\0\0{\"a\""), Some("safetensors"));
    }

    #[test]
    fn extensions_pick_the_longest_match() {
        let r = Registry::builtin();
        let f = |p: &str| r.for_path(Path::new(p)).map(|f| f.name());
        assert_eq!(f("m.safetensors.index.json"), Some("safetensors"));
        assert_eq!(f("x.JSON"), None);
        assert_eq!(f("a/b/model.PTH"), Some("pytorch"));
        assert_eq!(f("gguf"), None);
    }
}
