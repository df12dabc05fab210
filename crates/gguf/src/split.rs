//! Split models: `name-00001-of-00003.gguf` … with `split.no`, `split.count`
//! and `split.tensors.count`, opened as one source.

use crate::read::GgufFile;
use crate::{rules, FORMAT};
use std::collections::HashSet;
use std::path::Path;
use tensorcast_core::{Error, FormatError, Input, Limits, MultiPart, Result, Source, Value};

/// Every part of a split model, in order.
pub type SplitGguf = MultiPart<GgufFile>;

fn int(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::U8(x) => Some(u64::from(*x)),
        Value::U16(x) => Some(u64::from(*x)),
        Value::U32(x) => Some(u64::from(*x)),
        Value::U64(x) => Some(*x),
        Value::I8(x) => u64::try_from(*x).ok(),
        Value::I16(x) => u64::try_from(*x).ok(),
        Value::I32(x) => u64::try_from(*x).ok(),
        Value::I64(x) => u64::try_from(*x).ok(),
        _ => None,
    }
}

/// True when `file` is the first part of a split model (`split.count` > 1).
pub fn is_split_first(file: &GgufFile) -> bool {
    int(file.metadata().get("split.count")).is_some_and(|n| n > 1)
}

fn bad(path: &Path, detail: impl Into<String>) -> Error {
    FormatError::new(FORMAT, rules::BAD_SPLIT, detail)
        .in_file(path)
        .into()
}

/// `name-00001-of-00003.gguf` → `name-0000K-of-00003.gguf`.
fn part_name(first: &str, k: u64, n: u64) -> Option<String> {
    let suffix = format!("-{:05}-of-{:05}.gguf", 1, n);
    let stem = first.strip_suffix(&suffix)?;
    Some(format!("{stem}-{k:05}-of-{n:05}.gguf"))
}

/// Opens every part, given the first one (already opened) and its path; the
/// other parts are looked up beside it.
pub fn open_split(first: GgufFile, limits: &Limits) -> Result<SplitGguf> {
    let input = Input::open(first.path())?;
    open_split_beside(first, &input, limits)
}

/// Opens every part, given the first one (already opened from `input`); the
/// other parts are `input`'s siblings.
pub fn open_split_beside(first: GgufFile, input: &Input, limits: &Limits) -> Result<SplitGguf> {
    {
        let path = first.path().to_path_buf();
        let count = int(first.metadata().get("split.count")).unwrap_or(1);
        if int(first.metadata().get("split.no")).unwrap_or(0) != 0 {
            return Err(bad(
                &path,
                "this is not the first part of the split model: open the -00001- file",
            ));
        }
        let total = int(first.metadata().get("split.tensors.count"));
        if count > 9999 {
            return Err(bad(&path, format!("split.count {count} is implausible")));
        }
        let mut parts = vec![first];
        let mut part_names = Vec::new();
        for k in 2..=count {
            let name = input
                .file_name()
                .and_then(|n| part_name(n, k, count))
                .ok_or_else(|| {
                    bad(
                        &path,
                        format!("cannot derive part {k} of {count} from the file name"),
                    )
                })?;
            let part = input.sibling(&name)?;
            let p = part.name.clone();
            let part = GgufFile::from_bytes(&p, part.bytes, limits)?;
            if int(part.metadata().get("split.no")) != Some(k - 1) {
                return Err(bad(&p, format!("split.no should be {}", k - 1)));
            }
            parts.push(part);
            part_names.push(name);
        }
        let (mut count_held, mut names) = (0u64, HashSet::new());
        for part in &parts {
            for t in part.tensors() {
                if !names.insert(t.name.clone()) {
                    return Err(FormatError::new(
                        FORMAT,
                        rules::DUPLICATE_TENSOR,
                        "appears in more than one part",
                    )
                    .tensor(&t.name)
                    .in_file(part.path())
                    .into());
                }
                count_held += 1;
            }
        }
        if let Some(total) = total.filter(|&t| t != count_held) {
            return Err(bad(
                &path,
                format!("split.tensors.count says {total}, the parts hold {count_held}"),
            ));
        }
        // The merged model is not split: drop the split bookkeeping keys.
        let metadata = parts[0]
            .metadata()
            .iter()
            .filter(|(k, _)| !k.starts_with("split."))
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        // The first part is the input; the others are named beside it.
        let names = std::iter::once(None).chain(part_names.into_iter().map(Some));
        Ok(MultiPart::new(FORMAT, names.zip(parts).collect(), metadata))
    }
}
