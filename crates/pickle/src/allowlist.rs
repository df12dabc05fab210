//! Which globals a checkpoint may name, and what each one means.
//!
//! Strict mode admits what torch's `weights_only` loader admits (plus the
//! Python 2 spellings of the same builtins); everything else is refused by
//! name before any value is interpreted. Lenient mode also admits other
//! classes as opaque records, but never the ones that exist to run code.

use crate::dtypes::{dtype_by_name, storage_class, StorageClass, TorchDtype};

/// What an admitted global stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Global {
    /// `_rebuild_tensor`, `_rebuild_tensor_v2` or `_rebuild_tensor_v3`.
    RebuildTensor(RebuildVersion),
    /// `_rebuild_parameter(_with_state)` or `torch.nn.Parameter`: the tensor
    /// is the first argument.
    Parameter,
    /// `torch._tensor._rebuild_from_type_v2(func, type, args, state)`.
    RebuildFromType,
    /// A tensor kind that carries no plain strided data (quantized, sparse,
    /// nested, meta, wrapper subclasses).
    UnsupportedTensor,
    /// `_rebuild_sparse_tensor`: COO and CSR are read (densified on request).
    SparseTensor,
    /// `collections.OrderedDict`, `Counter`, `defaultdict`.
    DictClass,
    /// `torch.Size`.
    Size,
    /// `torch.device`.
    Device,
    /// A `torch.<dtype>` object.
    Dtype(TorchDtype),
    /// A storage class (only meaningful inside a persistent id).
    Storage(StorageClass),
    /// `_codecs.encode(text, encoding)`: how protocol 2 spells bytes.
    CodecsEncode,
    /// `set` / `frozenset`.
    Set,
    /// `bytearray`.
    ByteArray,
    /// `complex(re, im)`.
    Complex,
    /// A named constant with no data: `torch.Tensor`, layouts, memory
    /// formats, qschemes, `torch.serialization._get_layout`.
    Constant,
    /// `numpy.core.multiarray.scalar` (NumPy 1) or `numpy._core...` (NumPy 2).
    NumpyScalar,
    /// `numpy.dtype`.
    NumpyDtype,
    /// `numpy.core.multiarray._reconstruct` (NumPy 1) or `numpy._core...`
    /// (NumPy 2): an ndarray, filled by its BUILD state (lenient only).
    NumpyReconstruct,
    /// A class lenient mode records without calling.
    Opaque,
}

/// How `_rebuild_tensor*` lays out its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RebuildVersion {
    /// `(storage, offset, size, stride)`.
    V1,
    /// `(storage, offset, size, stride, requires_grad, hooks[, metadata])`.
    V2,
    /// `(storage, offset, size, stride, requires_grad, hooks, dtype[, metadata])`.
    V3,
}

/// Python 2 module names as Python 3 unpicklers map them (`fix_imports`).
fn py3_module(module: &str) -> &str {
    match module {
        "__builtin__" => "builtins",
        "copy_reg" => "copyreg",
        _ => module,
    }
}

/// What `module.name` means, or `None` when it is not admitted.
pub fn classify(module: &str, name: &str, lenient: bool) -> Option<Global> {
    let module = py3_module(module);
    if let Some(g) = known(module, name) {
        return Some(g);
    }
    if !lenient {
        return None;
    }
    // torch's weights_only loader refuses NumPy scalars too; lenient mode
    // decodes them (they are plain numbers in Lightning hyper-parameters).
    match (module, name) {
        ("numpy.core.multiarray" | "numpy._core.multiarray", "scalar") => return Some(Global::NumpyScalar),
        ("numpy", "dtype") => return Some(Global::NumpyDtype),
        ("numpy.core.multiarray" | "numpy._core.multiarray", "_reconstruct") => {
            return Some(Global::NumpyReconstruct)
        }
        // The class `_reconstruct` is given: a name, never called.
        ("numpy", "ndarray") => return Some(Global::Constant),
        _ => {}
    }
    harmless_record(module, name).then_some(Global::Opaque)
}

/// Lenient mode's allowlist: classes that only hold data. A few standard
/// ones (`argparse.Namespace`, `types.SimpleNamespace`), torch's own
/// layer classes (`torch.nn.modules.conv.Conv2d`: a pickled module, whose
/// parameters and buffers are read as tensors), and classes of a user's or
/// a library's own modules (Lightning's `AttributeDict`, omegaconf's
/// `DictConfig`, a `__main__.Net` module) — a class name (capitalized),
/// from outside the standard library, torch and NumPy.
/// Functions, and everything from those modules, stay refused: they are
/// where code-running callables live (`_io.open`, `numpy.load`,
/// `torch.serialization._load`, `_posixsubprocess.fork_exec`).
fn harmless_record(module: &str, name: &str) -> bool {
    if matches!(
        (module, name),
        ("argparse", "Namespace") | ("types", "SimpleNamespace")
    ) {
        return true;
    }
    let root = module.split('.').next().unwrap_or(module);
    let layer = module.starts_with("torch.nn.modules.");
    let library = crate::stdlib::is_stdlib(root) || matches!(root, "torch" | "numpy" | "builtins");
    let class = name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (layer || !library) && class && !runs_code(module, name)
}

fn known(module: &str, name: &str) -> Option<Global> {
    use Global::*;
    Some(match (module, name) {
        ("torch._utils", "_rebuild_tensor") => RebuildTensor(RebuildVersion::V1),
        ("torch._utils", "_rebuild_tensor_v2") => RebuildTensor(RebuildVersion::V2),
        ("torch._utils", "_rebuild_tensor_v3") => RebuildTensor(RebuildVersion::V3),
        ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => Parameter,
        ("torch.nn.parameter" | "torch.nn", "Parameter") => Parameter,
        ("torch._tensor", "_rebuild_from_type_v2") => RebuildFromType,
        ("torch._utils", "_rebuild_sparse_tensor") => SparseTensor,
        (
            "torch._utils",
            "_rebuild_qtensor"
            | "_rebuild_sparse_csr_tensor"
            | "_rebuild_meta_tensor_no_storage"
            | "_rebuild_wrapper_subclass"
            | "_rebuild_device_tensor_from_numpy"
            | "_rebuild_device_tensor_from_cpu_tensor"
            | "_rebuild_xla_tensor"
            | "_rebuild_mtia_tensor"
            | "_rebuild_mps_tensor",
        ) => UnsupportedTensor,
        ("collections", "OrderedDict" | "Counter" | "defaultdict") => DictClass,
        ("torch", "Size") => Size,
        ("torch", "device") => Device,
        ("torch", "Tensor") | ("torch.serialization", "_get_layout") | ("torch._tensor", "Tensor") => {
            Constant
        }
        ("torch", "strided" | "sparse_coo" | "sparse_csr" | "sparse_csc" | "sparse_bsr" | "sparse_bsc") => {
            Constant
        }
        ("torch", "contiguous_format" | "channels_last" | "channels_last_3d" | "preserve_format") => Constant,
        (
            "torch",
            "per_tensor_affine"
            | "per_channel_affine"
            | "per_tensor_symmetric"
            | "per_channel_symmetric"
            | "per_channel_affine_float_qparams",
        ) => Constant,
        ("_codecs", "encode") => CodecsEncode,
        ("builtins", "set" | "frozenset") => Set,
        ("builtins", "bytearray") => ByteArray,
        ("builtins", "complex") => Complex,
        _ => {
            if let Some(class) = storage_class(module, name) {
                return Some(Storage(class));
            }
            if module == "torch" {
                return dtype_by_name(name).map(Dtype);
            }
            return None;
        }
    })
}

/// Globals refused even in lenient mode: they exist to run code, read or
/// write files, or reach into the interpreter. Recording them as opaque would
/// be harmless here (nothing is ever called), but a checkpoint that names them
/// is an attack, and the user should hear about it rather than get a file.
fn runs_code(module: &str, name: &str) -> bool {
    let root = module.split('.').next().unwrap_or(module);
    let bad_module = matches!(
        root,
        "os" | "posix"
            | "nt"
            | "subprocess"
            | "sys"
            | "commands"
            | "pty"
            | "shutil"
            | "socket"
            | "runpy"
            | "importlib"
            | "pickle"
            | "_pickle"
            | "cPickle"
            | "marshal"
            | "ctypes"
            | "code"
            | "codeop"
            | "webbrowser"
            | "urllib"
            | "requests"
            | "http"
            | "ftplib"
            | "asyncio"
            | "multiprocessing"
            | "threading"
            | "_thread"
            | "signal"
            | "types"
            | "functools"
            | "operator"
            | "operator_"
            | "copyreg"
            | "pdb"
            | "bdb"
            | "timeit"
            | "profile"
            | "cProfile"
            | "platform"
            | "tempfile"
            | "pathlib"
            | "io"
            | "zipimport"
            | "dill"
            | "joblib"
    );
    let bad_builtin = module == "builtins"
        && matches!(
            name,
            "eval"
                | "exec"
                | "compile"
                | "open"
                | "getattr"
                | "setattr"
                | "delattr"
                | "__import__"
                | "globals"
                | "locals"
                | "vars"
                | "input"
                | "breakpoint"
                | "memoryview"
                | "apply"
                | "execfile"
                | "file"
                | "reload"
        );
    let bad_torch = module.starts_with("torch")
        && (name == "_load_from_bytes" || name.starts_with("load") || name == "_rebuild_nested_tensor");
    bad_module || bad_builtin || bad_torch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_admits_torch_and_refuses_the_rest() {
        assert_eq!(
            classify("torch._utils", "_rebuild_tensor_v2", false),
            Some(Global::RebuildTensor(RebuildVersion::V2))
        );
        assert_eq!(classify("__builtin__", "set", false), Some(Global::Set));
        assert_eq!(classify("argparse", "Namespace", false), None);
        assert_eq!(classify("torch.storage", "_load_from_bytes", false), None);
    }

    #[test]
    fn lenient_still_refuses_code() {
        assert_eq!(classify("argparse", "Namespace", true), Some(Global::Opaque));
        for (m, n) in [
            ("os", "system"),
            ("posix", "system"),
            ("builtins", "eval"),
            ("__builtin__", "exec"),
            ("subprocess", "check_output"),
            ("torch.storage", "_load_from_bytes"),
            ("torch", "load"),
            ("os.path", "join"),
        ] {
            assert_eq!(classify(m, n, true), None, "{m}.{n}");
        }
    }
}
