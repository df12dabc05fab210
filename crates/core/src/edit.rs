//! Metadata edits without rewriting tensors: what an edit asks for, how its
//! text becomes a typed value, and [`Spliced`], the file that carries a new
//! header in front of an input's data region copied unchanged.
//!
//! The data region is copied with `copy_file_range` from a position
//! congruent (mod 4096) with where it sat: on file systems that share
//! extents (XFS with reflink, btrfs, bcachefs, APFS through the kernel's
//! clone path) the kernel then shares the blocks instead of copying them,
//! so an edit costs O(header) there; elsewhere (ext4) it is a kernel-side
//! copy at `cp` speed.

use crate::{code, Array, Error, Metadata, Result, Value, ValueKind};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// A JSON object's top-level entries in order, each value kept as its
/// text: a header or a side file rewritten with some entries changed keeps
/// every other entry byte for byte (safetensors headers, tokenizer.json).
/// The values borrow the text they are read from (`serde_json::from_slice`),
/// so a 33 MB tokenizer.json is not held twice.
pub struct JsonEntries<'a>(pub Vec<(String, &'a serde_json::value::RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for JsonEntries<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<JsonEntries<'a>, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = JsonEntries<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<JsonEntries<'a>, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    out.push(entry);
                }
                Ok(JsonEntries(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// Block size that extent sharing needs input and output offsets to agree
/// on (FICLONERANGE and the clone path of copy_file_range refuse others).
pub const SHARE_BLOCK: u64 = 4096;

/// What an edit did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EditReport {
    /// Bytes of new header (or manifest) written.
    pub header_bytes: u64,
    /// Bytes of the data region carried over unchanged (shared or copied
    /// kernel-side); 0 for an edit made in place.
    pub data_bytes: u64,
    /// Whether the file was changed in place by its own crash-safe commit
    /// (tpack) rather than replaced.
    pub in_place: bool,
}

/// One change to a file's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetaEdit {
    /// Set `key` to the value `text` spells: in the existing value's type
    /// when the key exists, else in `ty` (`u32`, `f32`, `bool`, `str`,
    /// `[u32]` …) or as a string.
    Set {
        /// The key.
        key: String,
        /// An explicit type for a new key (`KEY:TYPE=VALUE`).
        ty: Option<String>,
        /// The value's text (arrays as JSON arrays).
        text: String,
    },
    /// Remove `key` (which must exist).
    Delete(String),
}

impl MetaEdit {
    /// The key this edit is about.
    pub fn key(&self) -> &str {
        match self {
            MetaEdit::Set { key, .. } | MetaEdit::Delete(key) => key,
        }
    }
}

fn bad(file: &Path, key: &str, detail: impl std::fmt::Display) -> Error {
    Error::usage(
        code::BAD_OPTION,
        format!("{}: metadata key `{key}`: {detail}", file.display()),
    )
}

/// Applies `edits` in order to `metadata` (of `file`, named in errors): a set key keeps its place and
/// type, a new key is appended, a deleted key must exist. `typed` says
/// whether the container holds types other than strings (safetensors'
/// `__metadata__` does not: every value there is a string).
pub fn apply_edits(file: &Path, metadata: &Metadata, edits: &[MetaEdit], typed: bool) -> Result<Metadata> {
    let mut out = metadata.clone();
    for e in edits {
        match e {
            MetaEdit::Delete(key) => {
                if out.remove(key).is_none() {
                    return Err(bad(file, key, "cannot be deleted: the file has no such key"));
                }
            }
            MetaEdit::Set { key, ty, text } => {
                let value = match (out.get(key), ty) {
                    (_, Some(ty)) if !typed && ty != "str" => {
                        return Err(bad(
                            file,
                            key,
                            format!("this format holds string values only, not {ty}"),
                        ))
                    }
                    (_, Some(ty)) => parse_typed(text, ty).map_err(|d| bad(file, key, d))?,
                    (Some(old), None) => parse_like(text, old).map_err(|d| bad(file, key, d))?,
                    (None, None) => Value::Str(text.clone()),
                };
                if let (Some(old), Some(_)) = (out.get(key), ty) {
                    if old.kind() != value.kind() || !same_element_kind(old, &value) {
                        return Err(bad(
                            file,
                            key,
                            format!(
                                "exists as {}; a key keeps its type (delete it first to change it)",
                                type_name(old)
                            ),
                        ));
                    }
                }
                out.insert(key.clone(), value);
            }
        }
    }
    Ok(out)
}

fn same_element_kind(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => x.kind() == y.kind(),
        _ => true,
    }
}

/// The type name `parse_typed` takes for `value`'s type.
pub fn type_name(value: &Value) -> String {
    match value {
        Value::Array(a) => format!("[{}]", kind_name(a.kind())),
        v => kind_name(v.kind()).to_string(),
    }
}

fn kind_name(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Bool => "bool",
        ValueKind::U8 => "u8",
        ValueKind::I8 => "i8",
        ValueKind::U16 => "u16",
        ValueKind::I16 => "i16",
        ValueKind::U32 => "u32",
        ValueKind::I32 => "i32",
        ValueKind::U64 => "u64",
        ValueKind::I64 => "i64",
        ValueKind::F32 => "f32",
        ValueKind::F64 => "f64",
        ValueKind::Str => "str",
        ValueKind::Array => "array",
        ValueKind::Map => "map",
        _ => "value",
    }
}

fn kind_named(name: &str) -> Option<ValueKind> {
    Some(match name {
        "bool" => ValueKind::Bool,
        "u8" => ValueKind::U8,
        "i8" => ValueKind::I8,
        "u16" => ValueKind::U16,
        "i16" => ValueKind::I16,
        "u32" => ValueKind::U32,
        "i32" => ValueKind::I32,
        "u64" => ValueKind::U64,
        "i64" => ValueKind::I64,
        "f32" => ValueKind::F32,
        "f64" => ValueKind::F64,
        "str" | "string" => ValueKind::Str,
        _ => return None,
    })
}

/// `text` as a value of the type named `ty`: a scalar type (`u8` … `u64`,
/// `i8` … `i64`, `f32`, `f64`, `bool`, `str`) or an array of one (`[u32]`,
/// its text a JSON array).
pub fn parse_typed(text: &str, ty: &str) -> std::result::Result<Value, String> {
    let unknown =
        || format!("`{ty}` is not a type (u8…u64, i8…i64, f32, f64, bool, str, or [TYPE] for an array)");
    if let Some(inner) = ty.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        let kind = kind_named(inner).ok_or_else(unknown)?;
        return parse_array(text, kind);
    }
    scalar(text, kind_named(ty).ok_or_else(unknown)?)
}

/// `text` as a value of `like`'s type (arrays: of its element type).
pub fn parse_like(text: &str, like: &Value) -> std::result::Result<Value, String> {
    match like {
        Value::Array(a) => parse_array(text, a.kind()),
        v => scalar(text, v.kind()),
    }
}

fn scalar(text: &str, kind: ValueKind) -> std::result::Result<Value, String> {
    let t = text.trim();
    let int = |what: &str| format!("`{text}` is not a {what}");
    Ok(match kind {
        ValueKind::Str => Value::Str(text.to_string()),
        ValueKind::Bool => match t {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => return Err(format!("`{text}` is not a bool (true or false)")),
        },
        ValueKind::U8 => Value::U8(t.parse().map_err(|_| int("u8"))?),
        ValueKind::I8 => Value::I8(t.parse().map_err(|_| int("i8"))?),
        ValueKind::U16 => Value::U16(t.parse().map_err(|_| int("u16"))?),
        ValueKind::I16 => Value::I16(t.parse().map_err(|_| int("i16"))?),
        ValueKind::U32 => Value::U32(t.parse().map_err(|_| int("u32"))?),
        ValueKind::I32 => Value::I32(t.parse().map_err(|_| int("i32"))?),
        ValueKind::U64 => Value::U64(t.parse().map_err(|_| int("u64"))?),
        ValueKind::I64 => Value::I64(t.parse().map_err(|_| int("i64"))?),
        ValueKind::F32 => Value::F32(t.parse().map_err(|_| int("f32"))?),
        ValueKind::F64 => Value::F64(t.parse().map_err(|_| int("f64"))?),
        other => return Err(format!("values of kind {other:?} cannot be set from text")),
    })
}

fn parse_array(text: &str, kind: ValueKind) -> std::result::Result<Value, String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("`{text}` is not a JSON array: {e}"))?;
    let serde_json::Value::Array(items) = json else {
        return Err(format!("`{text}` is not a JSON array"));
    };
    let mut array = Array::empty(kind);
    for item in &items {
        let text = match item {
            serde_json::Value::String(s) if kind == ValueKind::Str => s.clone(),
            serde_json::Value::String(_) => {
                return Err(format!("array element {item} is not a {}", kind_name(kind)))
            }
            other => other.to_string(),
        };
        array.push(scalar(&text, kind)?);
    }
    Ok(Value::Array(array))
}

/// The smallest offset at or after `min` that is a multiple of `align` and
/// congruent with `old` modulo [`SHARE_BLOCK`], so a data region that sat
/// at `old` can be shared block for block at the new offset; `None` when
/// `align` makes that impractical (over a mebibyte between candidates).
pub fn congruent_offset(min: u64, old: u64, align: u64) -> Option<u64> {
    let align = align.max(1);
    if !old.is_multiple_of(align) {
        return None;
    }
    let step = lcm(SHARE_BLOCK, align)?;
    if step > 1 << 20 {
        return None;
    }
    let base = old % step;
    let k = min.saturating_sub(base).div_ceil(step);
    base.checked_add(k.checked_mul(step)?)
}

fn lcm(a: u64, b: u64) -> Option<u64> {
    let (mut x, mut y) = (a, b);
    while y != 0 {
        (x, y) = (y, x % y);
    }
    (a / x).checked_mul(b)
}

/// The mode bits `output` keeps when it replaces `input` (the same file):
/// `None` for a new file, which gets a new file's mode.
pub fn kept_mode(input: &Path, output: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let same = std::fs::canonicalize(input).ok()? == std::fs::canonicalize(output).ok()?;
        if same {
            return std::fs::metadata(input).ok().map(|m| m.permissions().mode());
        }
        None
    }
    #[cfg(not(unix))]
    {
        let _ = (input, output);
        None
    }
}

/// A file being made from a new header and an input's data region copied
/// unchanged, which appears at its target complete or not at all.
///
/// On Linux the file is created unnamed (`O_TMPFILE`) in the target's
/// folder, so a crash before [`Spliced::commit`] leaves nothing behind;
/// commit links it under a temporary name and renames that over the
/// target (a crash between those two calls leaves a
/// `.NAME.*.tensorcast-tmp` file that the next write beside it removes).
/// Elsewhere, or where the file system has no unnamed files, it is a named
/// temporary file from the start.
pub struct Spliced {
    file: File,
    target: PathBuf,
    /// The named temporary file, when unnamed ones were not available.
    named: Option<tempfile::TempPath>,
    /// On the list a signal handler clears, while a name exists.
    registered: Option<crate::temporaries::Registered>,
}

impl Spliced {
    /// Writes `header`, then `input[data_from..]` (to the input's end) after
    /// it, into a new file for `target` with `mode`'s permission bits
    /// (`None`: those of any new file).
    pub fn create(
        target: &Path,
        header: &[u8],
        input: &File,
        data_from: u64,
        mode: Option<u32>,
    ) -> Result<Spliced> {
        let io = |e: io::Error| Error::io(target, e);
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let prefix = format!(
            ".{}.",
            target
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        );
        // What a killed edit or conversion left here (see `AtomicFile`).
        crate::atomic::remove_stale(dir, &prefix);
        let (file, named) = match unnamed_in(dir) {
            Ok(f) => (f, None),
            Err(_) => {
                let mut builder = tempfile::Builder::new();
                builder.prefix(&prefix).suffix(".tensorcast-tmp");
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    builder.permissions(std::fs::Permissions::from_mode(0o666));
                }
                let tmp = builder.tempfile_in(dir).map_err(io)?;
                let (file, path) = tmp.into_parts();
                (file, Some(path))
            }
        };
        // New files get 0666 less the umask from open(2); a file replaced
        // in place keeps the mode it had.
        #[cfg(unix)]
        if let Some(mode) = mode {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(io)?;
        }
        #[cfg(not(unix))]
        let _ = mode;
        let registered = named.as_deref().map(crate::temporaries::register_temporary);
        let spliced = Spliced {
            file,
            target: target.to_path_buf(),
            named,
            registered,
        };
        write_all_at(&spliced.file, header, 0).map_err(io)?;
        crate::crash_point("edit-header");
        let len = input.metadata().map_err(io)?.len();
        let data_len = len.checked_sub(data_from).ok_or_else(|| {
            Error::usage(
                code::INTERNAL,
                format!("data region at {data_from} past the end ({len})"),
            )
        })?;
        copy_range(input, data_from, &spliced.file, header.len() as u64, data_len).map_err(io)?;
        crate::crash_point("edit-data");
        Ok(spliced)
    }

    /// The file being made (for writes past the spliced bytes).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// fsyncs the file and puts it at its target, replacing what is there;
    /// then fsyncs the folder so the rename survives a crash.
    pub fn commit(self) -> Result<()> {
        let target = self.target;
        let io = |e: io::Error| Error::io(&target, e);
        self.file.sync_all().map_err(io)?;
        crate::crash_point("edit-synced");
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        match self.named {
            Some(path) => path.persist(&target).map_err(|e| io(e.error))?,
            None => link_unnamed(&self.file, &dir, &target).map_err(io)?,
        }
        drop(self.registered);
        crate::crash_point("edit-renamed");
        let _ = File::open(&dir).and_then(|d| d.sync_all());
        Ok(())
    }
}

#[cfg(target_os = "linux")]
fn unnamed_in(dir: &Path) -> io::Result<File> {
    use rustix::fs::{open, Mode, OFlags};
    let fd = open(
        dir,
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o666),
    )?;
    Ok(File::from(fd))
}

#[cfg(not(target_os = "linux"))]
fn unnamed_in(_dir: &Path) -> io::Result<File> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Gives the unnamed `file` a temporary name in `dir`, then renames that
/// over `target`.
#[cfg(target_os = "linux")]
fn link_unnamed(file: &File, dir: &Path, target: &Path) -> io::Result<()> {
    use rustix::fs::{linkat, AtFlags, CWD};
    use std::os::fd::AsRawFd;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for attempt in 0u32..16 {
        let tmp = dir.join(format!(".{name}.{}-{attempt}.tensorcast-tmp", std::process::id()));
        // /proc/self/fd/N names the open file; linking it needs no privilege
        // (AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH).
        let proc = format!("/proc/self/fd/{}", file.as_raw_fd());
        // Listed before it has the name, so a signal in between removes it.
        let registered = crate::temporaries::register_temporary(&tmp);
        match linkat(CWD, proc.as_str(), CWD, &tmp, AtFlags::SYMLINK_FOLLOW) {
            Ok(()) => {
                let _registered = registered;
                crate::crash_point("edit-linked");
                return std::fs::rename(&tmp, target).inspect_err(|_| {
                    let _ = std::fs::remove_file(&tmp);
                });
            }
            Err(rustix::io::Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free temporary name",
    ))
}

#[cfg(not(target_os = "linux"))]
fn link_unnamed(_file: &File, _dir: &Path, _target: &Path) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

#[cfg(unix)]
fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.write_all_at(buf, offset)
}

#[cfg(not(unix))]
fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = file;
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(buf)
}

/// Copies `len` bytes from `src` at `from` to `dst` at `to`: the part up to
/// the next shared-block boundary first, then the rest in one kernel-side
/// run whose offsets are block-aligned (shared where the file system can),
/// then by reading and writing whatever the kernel would not copy.
fn copy_range(src: &File, mut from: u64, dst: &File, mut to: u64, len: u64) -> io::Result<()> {
    let end = from + len;
    #[cfg(target_os = "linux")]
    {
        let head = ((SHARE_BLOCK - to % SHARE_BLOCK) % SHARE_BLOCK).min(len);
        'kernel: for run_end in [from + head, end] {
            while from < run_end {
                let want = usize::try_from(run_end - from).unwrap_or(usize::MAX).min(1 << 30);
                match rustix::fs::copy_file_range(src, Some(&mut from), dst, Some(&mut to), want) {
                    Ok(n) if n > 0 => {}
                    // 0 (input shorter than it was) or an error (EXDEV,
                    // EINVAL, EOPNOTSUPP): read and write the rest.
                    _ => break 'kernel,
                }
            }
        }
    }
    let mut buf = vec![0u8; (end - from).min(1 << 20) as usize];
    while from < end {
        let k = ((end - from) as usize).min(buf.len());
        crate::atomic::read_exact_at(src, &mut buf[..k], from)?;
        write_all_at(dst, &buf[..k], to)?;
        from += k as u64;
        to += k as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn congruent_offsets() {
        assert_eq!(congruent_offset(100, 4096 + 32, 32), Some(4096 + 32));
        assert_eq!(congruent_offset(5000, 4096 + 32, 32), Some(8192 + 32));
        assert_eq!(congruent_offset(10, 64, 32), Some(64));
        assert_eq!(congruent_offset(0, 8192, 8192), Some(0));
        assert_eq!(congruent_offset(1, 8192, 8192), Some(8192));
        assert_eq!(congruent_offset(1, 33, 32), None);
        for (min, old, align) in [(777u64, 12_345u64 * 32, 32u64), (3, 4104, 8), (9000, 0, 64)] {
            let d = congruent_offset(min, old, align).unwrap();
            assert!(d >= min && d.is_multiple_of(align) && d % SHARE_BLOCK == old % SHARE_BLOCK);
            assert!(d < min + lcm(SHARE_BLOCK, align).unwrap());
        }
    }

    #[test]
    fn values_keep_their_type() {
        assert_eq!(parse_like("7", &Value::U32(1)), Ok(Value::U32(7)));
        assert!(parse_like("-1", &Value::U32(1)).is_err());
        assert!(parse_like("70000", &Value::U16(1)).is_err());
        assert_eq!(
            parse_like("x", &Value::Str("y".into())),
            Ok(Value::Str("x".into()))
        );
        assert_eq!(parse_typed("true", "bool"), Ok(Value::Bool(true)));
        assert_eq!(
            parse_typed("[1, 2]", "[i32]"),
            Ok(Value::Array(Array::I32(vec![1, 2])))
        );
        assert!(parse_typed("1", "u128").is_err());
        let mut m = Metadata::new();
        m.insert("a", Value::U32(1));
        m.insert("b", Value::Str("x".into()));
        let edits = [
            MetaEdit::Set {
                key: "a".into(),
                ty: None,
                text: "5".into(),
            },
            MetaEdit::Delete("b".into()),
            MetaEdit::Set {
                key: "c".into(),
                ty: None,
                text: "new".into(),
            },
        ];
        let out = apply_edits(Path::new("m"), &m, &edits, true).unwrap();
        let pairs: Vec<_> = out.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        assert_eq!(
            pairs,
            [
                ("a".into(), Value::U32(5)),
                ("c".into(), Value::Str("new".into()))
            ]
        );
        assert!(apply_edits(Path::new("m"), &m, &[MetaEdit::Delete("zz".into())], true).is_err());
        let retype = [MetaEdit::Set {
            key: "a".into(),
            ty: Some("str".into()),
            text: "5".into(),
        }];
        assert!(apply_edits(Path::new("m"), &m, &retype, true).is_err());
        let typed = [MetaEdit::Set {
            key: "n".into(),
            ty: Some("u32".into()),
            text: "5".into(),
        }];
        assert!(apply_edits(Path::new("m"), &m, &typed, false).is_err());
    }
}
