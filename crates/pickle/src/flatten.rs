//! From an interpreted checkpoint to the IR's flat view: tensors named the way
//! `state_dict` names them, everything else as metadata, nothing dropped
//! without a warning.

use crate::rules;
use crate::torch::{Item, TensorRef};
use tensorcast_core::{FormatError, Metadata, Value};

/// The name a tensor saved on its own gets (safetensors needs one).
pub const BARE_TENSOR_NAME: &str = "tensor";

/// How to cut the tree before flattening.
#[derive(Clone, Debug, Default)]
pub struct FlattenOptions {
    /// Keep only the sub-tree at this dotted path (e.g. `state_dict`).
    pub select: Option<String>,
    /// Remove this prefix from tensor names that start with it (Lightning's `model.`).
    pub strip_prefix: Option<String>,
    /// Write tensors that alias the same bytes once, recording the others in metadata.
    pub dedupe_tied: bool,
}

/// The flat view of a checkpoint.
#[derive(Debug, Default)]
pub struct Flat {
    /// Tensors by name, in checkpoint order.
    pub tensors: Vec<(String, TensorRef)>,
    /// Non-tensor values, one entry per tensor-free sub-tree.
    pub metadata: Metadata,
    /// What was not kept, or kept only as an opaque record, with its path and class.
    pub warnings: Vec<String>,
}

/// Flattens `root` per `opts`.
pub fn flatten(root: Item, opts: &FlattenOptions) -> Result<Flat, FormatError> {
    let mut flat = Flat::default();
    let (root, base) = match &opts.select {
        Some(path) => (select(root, path)?, path.clone()),
        None => (root, String::new()),
    };
    match root {
        Item::Tensor(t) => flat.tensors.push((BARE_TENSOR_NAME.to_string(), *t)),
        Item::Map(_) | Item::Seq(_) | Item::Opaque { .. } => walk(root, "", &base, &mut flat, true)?,
        Item::Scalar(v) => flat.metadata.insert("value", v),
    }
    if let Some(prefix) = opts.strip_prefix.as_deref().filter(|p| !p.is_empty()) {
        for (name, _) in &mut flat.tensors {
            if let Some(rest) = name.strip_prefix(prefix).filter(|r| !r.is_empty()) {
                *name = rest.to_string();
            }
        }
    }
    check_unique(&flat)?;
    if opts.dedupe_tied {
        dedupe(&mut flat);
    }
    Ok(flat)
}

/// The sub-tree at dotted `path`. Keys may themselves contain dots, so each
/// step takes the longest key that matches the front of what is left.
fn select(root: Item, path: &str) -> Result<Item, FormatError> {
    let mut node = root;
    let mut rest = path;
    while !rest.is_empty() {
        let found = match node {
            Item::Map(entries) => entries
                .into_iter()
                .filter(|(k, _)| rest == k || rest.starts_with(&format!("{k}.")))
                .max_by_key(|(k, _)| k.len()),
            Item::Seq(items) => {
                let (head, _) = rest.split_once('.').unwrap_or((rest, ""));
                let i = head.parse::<usize>().ok();
                i.and_then(|i| items.into_iter().nth(i).map(|v| (head.to_string(), v)))
            }
            _ => None,
        };
        let Some((key, child)) = found else {
            return Err(FormatError::new(
                crate::FORMAT,
                rules::SELECT_NOT_FOUND,
                format!("selecting '{path}': no entry '{rest}' here"),
            )
            .key(path));
        };
        node = child;
        rest = rest[key.len()..].strip_prefix('.').unwrap_or("");
    }
    Ok(node)
}

fn has_tensor(item: &Item) -> bool {
    match item {
        Item::Tensor(_) => true,
        Item::Map(entries) => entries.iter().any(|(_, v)| has_tensor(v)),
        Item::Seq(items) => items.iter().any(has_tensor),
        Item::Scalar(_) => false,
        Item::Opaque { args, state, .. } => has_tensor(args) || state.as_deref().is_some_and(has_tensor),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `path` is the name within the selection; `base` the selection itself (for warnings).
/// Longest tensor name or metadata path accepted. Names grow with nesting;
/// without a cap, long shared keys nested deep would make every ancestor's
/// name huge at once.
pub const MAX_NAME_BYTES: usize = 64 << 10;

fn child(path: &str, key: &str) -> Result<String, FormatError> {
    let name = join(path, key);
    if name.len() > MAX_NAME_BYTES {
        let shown: String = name.chars().take(80).collect();
        return Err(FormatError::new(
            crate::FORMAT,
            rules::NAME_TOO_LONG,
            format!("a name longer than {MAX_NAME_BYTES} bytes ({shown}…)"),
        ));
    }
    Ok(name)
}

fn walk(item: Item, path: &str, base: &str, flat: &mut Flat, top: bool) -> Result<(), FormatError> {
    if !(has_tensor(&item) || top && matches!(item, Item::Map(_) | Item::Seq(_))) {
        warn_opaque(&item, path, base, &mut flat.warnings);
        flat.metadata
            .insert(if path.is_empty() { "value" } else { path }, to_value(&item));
        return Ok(());
    }
    match item {
        Item::Tensor(t) => flat.tensors.push((path.to_string(), *t)),
        Item::Map(entries) => {
            for (k, v) in entries {
                walk(v, &child(path, &k)?, base, flat, false)?;
            }
        }
        Item::Seq(items) => {
            for (i, v) in items.into_iter().enumerate() {
                walk(v, &child(path, &i.to_string())?, base, flat, false)?;
            }
        }
        Item::Opaque {
            class,
            state: Some(state),
            ..
        } if is_module(&state) => {
            if path.is_empty() {
                flat.warnings.push(format!(
                    "{}: a pickled {class} module: its parameters and buffers are read under the names its state_dict gives them",
                    shown(base, path)
                ));
            }
            flat.metadata.insert(join(path, "__class__"), Value::Str(class));
            module(*state, path, base, flat)?;
        }
        Item::Opaque { class, args, state } => {
            // An unknown class holding tensors: its tensors are kept under
            // its path (state attributes by name), the class is recorded.
            flat.warnings.push(format!(
                "{}: {class} is not a container torch defines; its tensors are kept under this path and the class is recorded in metadata",
                shown(base, path)
            ));
            flat.metadata.insert(join(path, "__class__"), Value::Str(class));
            if let Some(state) = state {
                walk(*state, path, base, flat, false)?;
            }
            if has_tensor(&args) {
                walk(*args, &child(path, "args")?, base, flat, false)?;
            }
        }
        // Scalars hold no tensors, so they never get here.
        Item::Scalar(_) => {}
    }
    Ok(())
}

/// Whether a record's state is an `nn.Module`'s `__dict__`.
fn is_module(state: &Item) -> bool {
    let Item::Map(entries) = state else {
        return false;
    };
    let has = |k: &str| entries.iter().any(|(key, _)| key == k);
    has("_parameters") && has("_buffers") && has("_modules")
}

/// A module's tensors as `state_dict()` names them: its parameters, its
/// persistent buffers, then each submodule's under its attribute name.
/// Entries that are None (a missing bias) and submodules without tensors
/// are skipped, as state_dict skips them.
fn module(state: Item, path: &str, base: &str, flat: &mut Flat) -> Result<(), FormatError> {
    let Item::Map(entries) = state else {
        return Ok(());
    };
    let skipped: Vec<String> = entries
        .iter()
        .find(|(k, _)| k == "_non_persistent_buffers_set")
        .map(|(_, v)| match v {
            Item::Seq(items) => items
                .iter()
                .filter_map(|i| match i {
                    Item::Scalar(Value::Str(s)) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        })
        .unwrap_or_default();
    let mut parts: [Vec<(String, Item)>; 3] = Default::default();
    for (k, v) in entries {
        let slot = match k.as_str() {
            "_parameters" => 0,
            "_buffers" => 1,
            "_modules" => 2,
            _ => continue,
        };
        if let Item::Map(inner) = v {
            parts[slot] = inner;
        }
    }
    let [parameters, buffers, modules] = parts;
    for (name, t) in parameters
        .into_iter()
        .chain(buffers.into_iter().filter(|(n, _)| !skipped.contains(n)))
    {
        if has_tensor(&t) {
            walk(t, &child(path, &name)?, base, flat, false)?;
        }
    }
    for (name, m) in modules {
        if has_tensor(&m) {
            walk(m, &child(path, &name)?, base, flat, false)?;
        }
    }
    Ok(())
}

/// One warning per opaque record inside a metadata value.
fn warn_opaque(item: &Item, path: &str, base: &str, warnings: &mut Vec<String>) {
    match item {
        Item::Opaque { class, .. } => warnings.push(format!(
            "{}: {class} kept as an opaque metadata record (not called)",
            shown(base, path)
        )),
        Item::Map(entries) => entries
            .iter()
            .for_each(|(k, v)| warn_opaque(v, &join(path, k), base, warnings)),
        Item::Seq(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, v)| warn_opaque(v, &join(path, &i.to_string()), base, warnings)),
        Item::Tensor(_) | Item::Scalar(_) => {}
    }
}

fn shown(base: &str, path: &str) -> String {
    match (base.is_empty(), path.is_empty()) {
        (true, true) => "(root)".to_string(),
        (true, false) => path.to_string(),
        (false, true) => base.to_string(),
        (false, false) => format!("{base}.{path}"),
    }
}

/// A tensor-free value as metadata.
fn to_value(item: &Item) -> Value {
    match item {
        Item::Scalar(v) => v.clone(),
        Item::Seq(items) => Value::array(items.iter().map(to_value).collect()),
        Item::Map(entries) => Value::Map(entries.iter().map(|(k, v)| (k.clone(), to_value(v))).collect()),
        Item::Opaque { class, args, state } => {
            let mut m = Metadata::new();
            m.insert("__class__", Value::Str(class.clone()));
            m.insert("args", to_value(args));
            if let Some(state) = state {
                m.insert("state", to_value(state));
            }
            Value::Map(m)
        }
        Item::Tensor(_) => Value::Null,
    }
}

/// Two tensors flattening to one name (`{'a.b': x, 'a': {'b': y}}`) would
/// silently lose one; refuse instead.
fn check_unique(flat: &Flat) -> Result<(), FormatError> {
    let mut seen = std::collections::HashSet::with_capacity(flat.tensors.len());
    for (name, _) in &flat.tensors {
        if !seen.insert(name.as_str()) {
            return Err(FormatError::new(
                crate::FORMAT,
                rules::DUPLICATE_NAME,
                "two tensors flatten to the same name (select one sub-tree)",
            )
            .tensor(name));
        }
    }
    Ok(())
}

/// Keeps one name per group of tensors viewing identical bytes (the first in
/// sorted order, as Hugging Face's `convert.py` does) and records each
/// removed name → kept name in metadata.
fn dedupe(flat: &mut Flat) {
    let mut groups: std::collections::HashMap<&TensorRef, Vec<&str>> = std::collections::HashMap::new();
    for (name, t) in &flat.tensors {
        groups.entry(t).or_default().push(name);
    }
    let mut removed: Vec<(String, String)> = Vec::new();
    for names in groups.values().filter(|n| n.len() > 1) {
        let keep = names.iter().min().expect("non-empty group");
        for &n in names {
            if n != *keep {
                removed.push((n.to_string(), keep.to_string()));
            }
        }
    }
    removed.sort();
    let gone: std::collections::HashSet<&str> = removed.iter().map(|(n, _)| n.as_str()).collect();
    let kept: Vec<(String, TensorRef)> = flat
        .tensors
        .iter()
        .filter(|(n, _)| !gone.contains(n.as_str()))
        .cloned()
        .collect();
    flat.tensors = kept;
    for (name, keep) in removed {
        flat.metadata.insert(name, Value::Str(keep));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorcast_core::DType;

    fn t(key: &str) -> Item {
        Item::Tensor(Box::new(TensorRef {
            key: key.into(),
            dtype: DType::F32,
            storage_bytes: 16,
            offset: 0,
            size: vec![4],
            stride: vec![1],
            conj: false,
            neg: false,
            sparse: None,
            unreadable: None,
            inline: None,
        }))
    }

    fn ckpt() -> Item {
        Item::Map(vec![
            ("epoch".into(), Item::Scalar(Value::I64(3))),
            (
                "state_dict".into(),
                Item::Map(vec![("model.w".into(), t("0")), ("model.tied".into(), t("0"))]),
            ),
            (
                "opt".into(),
                Item::Map(vec![
                    (
                        "state".into(),
                        Item::Map(vec![("0".into(), Item::Map(vec![("exp_avg".into(), t("1"))]))]),
                    ),
                    (
                        "param_groups".into(),
                        Item::Seq(vec![Item::Map(vec![(
                            "lr".into(),
                            Item::Scalar(Value::F64(0.1)),
                        )])]),
                    ),
                ]),
            ),
        ])
    }

    #[test]
    fn names_follow_state_dict_and_scalars_become_metadata() {
        let flat = flatten(ckpt(), &FlattenOptions::default()).unwrap();
        let names: Vec<&str> = flat.tensors.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "state_dict.model.w",
                "state_dict.model.tied",
                "opt.state.0.exp_avg"
            ]
        );
        assert_eq!(flat.metadata.get("epoch"), Some(&Value::I64(3)));
        assert_eq!(
            flat.metadata
                .get("opt.param_groups")
                .map(|v| v.to_json().to_string()),
            Some(r#"[{"lr":0.1}]"#.to_string())
        );
    }

    #[test]
    fn select_strip_and_dedupe() {
        let opts = FlattenOptions {
            select: Some("state_dict".into()),
            strip_prefix: Some("model.".into()),
            dedupe_tied: true,
        };
        let flat = flatten(ckpt(), &opts).unwrap();
        let names: Vec<&str> = flat.tensors.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["tied"]);
        // HF convert.py's convention: the sorted-first name stays, and
        // metadata maps each removed name to it.
        assert_eq!(flat.metadata.get("w"), Some(&Value::Str("tied".into())));
        let missing = FlattenOptions {
            select: Some("nope".into()),
            ..Default::default()
        };
        assert_eq!(
            flatten(ckpt(), &missing).unwrap_err().rule,
            rules::SELECT_NOT_FOUND
        );
    }

    #[test]
    fn dotted_keys_select_by_longest_match() {
        let root = Item::Map(vec![("a.b".into(), Item::Map(vec![("c".into(), t("0"))]))]);
        let opts = FlattenOptions {
            select: Some("a.b".into()),
            ..Default::default()
        };
        assert_eq!(flatten(root, &opts).unwrap().tensors[0].0, "c");
    }

    #[test]
    fn colliding_names_are_refused() {
        let root = Item::Map(vec![
            ("a.b".into(), t("0")),
            ("a".into(), Item::Map(vec![("b".into(), t("1"))])),
        ]);
        assert_eq!(
            flatten(root, &FlattenOptions::default()).unwrap_err().rule,
            rules::DUPLICATE_NAME
        );
    }

    #[test]
    fn names_cannot_grow_without_bound() {
        // 200 levels of a 1 KiB key: 200 KiB names, refused by rule.
        let key = "k".repeat(1024);
        let mut item = t("0");
        for _ in 0..200 {
            item = Item::Map(vec![(key.clone(), item)]);
        }
        assert_eq!(
            flatten(item, &FlattenOptions::default()).unwrap_err().rule,
            rules::NAME_TOO_LONG
        );
    }
}
