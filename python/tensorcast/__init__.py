"""One safe, fast reader and writer for every tensor format.

``tensorcast`` reads safetensors (incl. sharded checkpoints), GGUF (ggml
blocks dequantized to float32 bit-exactly as gguf-py does, or kept raw),
PyTorch checkpoints (``.pt``/``.pth``/``.bin``/``.ckpt``, read by tensorcast's
own pickle interpreter: nothing in the file is ever imported or run), NumPy
``.npy``/``.npz``, tpack, and Hugging Face model folders; and writes
safetensors, GGUF, tpack and ``.npz``. The API follows safetensors-py::

    with tensorcast.safe_open("model.gguf", framework="numpy") as f:
        for name in f.keys():
            array = f.get_tensor(name)

Arrays whose bytes lie raw in the file are read-only numpy views of the
mapped file (no copy; only the pages used are read); decoded tensors
(dequantized, decompressed, byte-swapped) are new writable arrays. The GIL is
released while files are read, decoded and written.
"""

from __future__ import annotations

import json as _json
import os as _os

import numpy as _np

from . import _native
from ._native import TensorcastError


def _where(path):
    """A ``str`` stays text (a URL when it spells one, ``s3://bucket/key``);
    an ``os.PathLike`` (``pathlib.Path``) is passed as a path, so it is always
    a local file; bytes paths are decoded by ``os.fspath`` as before."""
    if isinstance(path, (str, _os.PathLike)):
        return path
    return _os.fspath(path)

__version__ = _native.__version__

__all__ = [
    "TensorcastError",
    "TensorSlice",
    "convert",
    "digest",
    "edit",
    "inspect",
    "load_file",
    "merge",
    "refs",
    "safe_open",
    "save_file",
    "verify",
]

# Errors raised from Python carry the same attributes as the library's.
for _field in ("rule", "path", "tensor", "key", "format", "limit", "kind"):
    setattr(TensorcastError, _field, None)

# Dtypes numpy has no type for, by tensorcast name: ml_dtypes' and torch's names.
_EXTENDED = {
    "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
    "F8_E4M3FNUZ": "float8_e4m3fnuz",
    "F8_E5M2FNUZ": "float8_e5m2fnuz",
    "F8_E8M0": "float8_e8m0fnu",
}
_EXTENDED_BY_NAME = {v: k for k, v in _EXTENDED.items()}

_FRAMEWORKS = {"numpy": "numpy", "np": "numpy", "pt": "pt", "torch": "pt", "pytorch": "pt"}


def _framework(framework: str) -> str:
    try:
        return _FRAMEWORKS[framework]
    except KeyError:
        raise ValueError(
            f"framework={framework!r}: tensorcast returns numpy arrays ('numpy') or torch tensors ('pt')"
        ) from None


def _usage(message: str) -> TensorcastError:
    err = TensorcastError(message)
    err.kind = "usage"
    return err


def _numpy(raw) -> _np.ndarray:
    """The numpy array viewing ``raw`` (kept alive by the array)."""
    if raw.dtype == "F4":
        raise _usage(
            "an F4 tensor (two 4-bit floats a byte) has no numpy type: open with "
            "framework='pt' (torch.float4_e2m1fn_x2) or convert with dtype='f16'"
        )
    array = _np.asarray(raw)
    extended = _EXTENDED.get(raw.dtype)
    if extended is None:
        return array
    try:
        import ml_dtypes
    except ImportError:
        raise _usage(
            f"a {raw.dtype} tensor has no numpy type: install ml_dtypes "
            "(pip install ml_dtypes) for numpy arrays of it, or open with framework='pt'"
        ) from None
    return array.view(getattr(ml_dtypes, extended))


def _torch(raw, device: str):
    """A torch tensor of ``raw``'s values (copied when ``raw`` views the file:
    torch tensors are writable, the mapped file is not)."""
    import torch

    array = _np.asarray(raw)
    if raw.readonly:  # views of the file are copied by get_tensor; a slice's part is ours
        array = array.copy()
    extended = _EXTENDED.get(raw.dtype)
    if raw.dtype == "F4":
        # Packed two a byte, as torch's float4_e2m1fn_x2 (torch 2.8+) holds them.
        tensor = torch.from_numpy(array).view(torch.float4_e2m1fn_x2)
    elif extended is not None:
        signed = array.view(_np.int16 if array.itemsize == 2 else _np.uint8)
        tensor = torch.from_numpy(signed).view(getattr(torch, extended))
    else:
        tensor = torch.from_numpy(array)
    return tensor if device == "cpu" else tensor.to(device)


class TensorSlice:
    """A tensor not read yet: ``get_shape()``, ``get_dtype()``, and indexing
    (``[a:b]``, ``[:, i]``, ...), which reads only the pages the slice covers
    where the tensor lies raw in the file."""

    def __init__(self, handle, name: str, framework: str, device: str):
        self._handle = handle
        self._name = name
        self._framework = framework
        self._device = device

    def get_shape(self) -> list:
        """The shape, from the header."""
        return list(self._handle.info(self._name)[1])

    def get_dtype(self) -> str:
        """The dtype name as safetensors spells it (``F32``, ``BF16``, ``Q4_K``)."""
        return self._handle.info(self._name)[0]

    def __getitem__(self, index):
        raw = self._handle.tensor(self._name)
        part = _np.array(_np.asarray(raw)[index], copy=True)
        if self._framework == "numpy":
            extended = _EXTENDED.get(raw.dtype)
            return part if extended is None else _numpy_view(part, raw.dtype)
        return _torch(_Raw(part, raw.dtype), self._device)


def _numpy_view(array: _np.ndarray, dtype: str) -> _np.ndarray:
    return _numpy(_Raw(array, dtype))


class _Raw:
    """A plain numpy array dressed as a native tensor buffer."""

    def __init__(self, array: _np.ndarray, dtype: str):
        self.__array_interface__ = array.__array_interface__
        self._array = array
        self.dtype = dtype
        self.readonly = False


class safe_open:
    """Opens ``filename`` for reading tensors one at a time.

    ``framework``: ``"numpy"`` (default) or ``"pt"`` (torch tensors, placed on
    ``device``). ``dequantize=False`` gives GGUF's ggml blocks raw (uint8,
    shaped ``[..., row_bytes]`` as gguf-py gives them). Further keyword
    options are the CLI's reading options: ``lenient``, ``select``,
    ``strip_prefix``, ``dedupe_tied`` (PyTorch checkpoints), ``densify``
    (sparse tensors, of PyTorch or tpack files, read as torch's
    ``to_dense()``; without it reading one raises) and the limits
    ``max_tensors``, ``max_header_size``, ``max_objects``, ``max_depth``,
    ``max_alloc``. Headers are read and checked here; a broken file raises
    :class:`TensorcastError` naming the file, format and rule.
    """

    def __init__(self, filename, framework: str = "numpy", device: str = "cpu", *, dequantize: bool = True, **options):
        self._framework = _framework(framework)
        if self._framework == "numpy" and device != "cpu":
            raise ValueError(f"device={device!r}: numpy arrays live on the cpu")
        self._device = device
        self._handle = _native.open(_where(filename), dequantize, options)

    def __enter__(self) -> "safe_open":
        return self

    def __exit__(self, *exc) -> None:
        # Arrays already handed out keep the file's map alive on their own.
        self._handle = None

    def _open(self):
        if self._handle is None:
            raise ValueError("the file is closed (used outside its `with` block)")
        return self._handle

    @property
    def format(self) -> str:
        """The file's format: safetensors, gguf, pytorch, tpack, npy or npz."""
        return self._open().format

    def keys(self) -> list:
        """Tensor names in file order."""
        return self._open().keys()

    def metadata(self) -> dict | None:
        """The file's metadata: typed values (int, float, str, bool, lists)
        for GGUF, tpack and PyTorch; strings for safetensors. ``None`` when
        the file has none, as safetensors' ``metadata()`` returns."""
        return self._open().metadata() or None

    def warnings(self) -> list:
        """What the reader could not carry over exactly, one line each."""
        return self._open().warnings()

    def get_tensor(self, name: str):
        """The tensor ``name`` as a numpy array or torch tensor."""
        if self._framework == "numpy":
            return _numpy(self._open().tensor(name))
        # torch tensors are writable: bytes viewing the file are copied natively.
        return _torch(self._open().tensor(name, copy=True), self._device)

    def get_slice(self, name: str) -> TensorSlice:
        """The tensor ``name`` unread, for indexing."""
        self._open().info(name)
        return TensorSlice(self._open(), name, self._framework, self._device)


def load_file(filename, framework: str = "numpy", device: str = "cpu", **options) -> dict:
    """Every tensor of ``filename`` as ``{name: array}``, in file order
    (options as :class:`safe_open`'s)."""
    with safe_open(filename, framework=framework, device=device, **options) as f:
        names = f.keys()
        mapped_only = f._framework == "numpy" and all(f._open().raw_in_file())
        if mapped_only or len(names) < 2 or (_os.cpu_count() or 1) < 2:
            return {name: f.get_tensor(name) for name in names}
        # Decoding and copying run with the GIL released: one thread per core
        # reads tensors side by side (results keep the file's order). Views
        # of the map cost nothing to make and take the loop above.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(len(names), _os.cpu_count() or 1)) as pool:
            return dict(zip(names, pool.map(f.get_tensor, names)))


# torch dtype names -> tensorcast names, for tensors numpy holds natively.
_TORCH_NATIVE = {
    "float64": "F64",
    "float32": "F32",
    "float16": "F16",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint64": "U64",
    "uint32": "U32",
    "uint16": "U16",
    "uint8": "U8",
    "bool": "BOOL",
    "complex64": "C64",
    "complex128": "C128",
}

_NUMPY_KINDS = {
    ("f", 2): "F16",
    ("f", 4): "F32",
    ("f", 8): "F64",
    ("i", 1): "I8",
    ("i", 2): "I16",
    ("i", 4): "I32",
    ("i", 8): "I64",
    ("u", 1): "U8",
    ("u", 2): "U16",
    ("u", 4): "U32",
    ("u", 8): "U64",
    ("b", 1): "BOOL",
    ("c", 8): "C64",
    ("c", 16): "C128",
}


def _tensor_bytes(name: str, value):
    """``(dtype, shape, array)``: the tensorcast dtype, the logical shape and a
    C-contiguous little-endian numpy array holding the bytes."""
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        import torch

        if value.layout != torch.strided:
            # ValueError, as safetensors raises; .contiguous() fails inside torch.
            raise ValueError(
                f"tensor '{name}': a sparse torch tensor ({value.layout}) cannot be written as it is: "
                "save its dense form (tensor.to_dense())"
            )
        t = value.detach().cpu().contiguous()
        short = str(t.dtype).replace("torch.", "")
        shape = list(t.shape)
        if short == "float4_e2m1fn_x2":
            # Two 4-bit values a byte: F4 with the last dim counted in values,
            # as safetensors writes it.
            return "F4", shape[:-1] + [2 * shape[-1]] if shape else [2], t.view(torch.uint8).numpy()
        if short in _TORCH_NATIVE:
            return _TORCH_NATIVE[short], shape, t.numpy()
        if short in _EXTENDED_BY_NAME:
            carrier = torch.int16 if t.element_size() == 2 else torch.uint8
            return _EXTENDED_BY_NAME[short], shape, t.view(carrier).numpy()
        # ValueError, as safetensors raises for a dtype it cannot store.
        raise ValueError(f"tensor '{name}': torch.{short} has no tensorcast dtype")
    array = _np.asarray(value)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    if not array.flags.c_contiguous:
        array = array.copy(order="C")
    dtype = _EXTENDED_BY_NAME.get(array.dtype.name) or _NUMPY_KINDS.get((array.dtype.kind, array.dtype.itemsize))
    if dtype is None:
        raise ValueError(f"tensor '{name}': numpy dtype {array.dtype} has no tensorcast dtype")
    return dtype, list(array.shape), array


def save_file(tensors: dict, filename, metadata: dict | None = None, **options) -> None:
    """Writes ``tensors`` (numpy arrays or torch tensors, by name) and
    ``metadata`` into ``filename``, the format from its extension
    (``.safetensors``, ``.gguf``, ``.tpack``, ``.npz``) or ``to=``. The file
    appears only once complete. Options are the CLI's conversion options
    (``dtype``, ``quantize``, ``compress``, ``max_shard_size``, ...); an
    existing file is replaced, as safetensors-py does, unless ``force=False``.
    """
    items = []
    for name, value in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"tensor names are str, not {type(name).__name__}")
        dtype, shape, array = _tensor_bytes(name, value)
        items.append((name, dtype, shape, array))
    _native.save(items, _where(filename), metadata, {"force": True, **options})


def convert(src, dst, **options) -> dict:
    """Converts the file ``src`` into ``dst`` as ``tensorcast convert`` does,
    with its options by their long names (``to``, ``dtype``, ``force``,
    ``keep_quantized``, ``quantize``, ``max_shard_size``, ``compress``,
    ``include``, ``exclude``, ``rename``, ``names``, ``tokenizer_pre``, the
    PyTorch and limit options). ``progress``: a callable
    ``(done_bytes, total_bytes)``; off by default. ``digest=True`` proves
    the conversion (spec/digest.md): the result gains ``digest_in``,
    ``digest_written`` and ``digest_out``, and a mismatch raises. Returns
    ``{"tensors", "bytes_in", "warnings"}``."""
    return _native.convert(_where(src), _where(dst), options)


def inspect(filename, **options) -> dict:
    """``tensorcast inspect --json`` of ``filename``: ``{"format",
    "metadata", "tensors": [{"name", "dtype", "shape", "nbytes"}]}``, from
    the headers only."""
    return _json.loads(_native.inspect_json(_where(filename), options))


def verify(filename) -> list:
    """Checks the whole file (every tpack chunk against its checksum; every
    rule and tensor for other formats): ``[]`` when sound, else one line per
    damaged part."""
    return _native.verify(_where(filename))


def digest(filename, *, tensors: bool = False, **options):
    """The content id of the tensors in ``filename`` (``tensorcast digest``;
    spec/digest.md): ``"tc1:…"``, the same for one tensor set in any
    container, sharding, order or compression, and blind to metadata. With
    ``tensors=True``: ``{"id", "tensors": [{"name", "kind", "shape",
    "nbytes", "digest"}]}``, tensors in name order."""
    found, records = _native.digest(_where(filename), options)
    if not tensors:
        return found
    keys = ("name", "kind", "shape", "nbytes", "digest")
    return {"id": found, "tensors": [dict(zip(keys, r)) for r in records]}


def _edit_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return _json.dumps(list(value))
    return str(value)


def edit(filename, set: dict | None = None, delete=(), *, types: dict | None = None, output=None, force: bool = False) -> dict:
    """Changes the metadata of ``filename`` without rewriting its tensors
    (``tensorcast edit``): GGUF key/values, safetensors ``__metadata__``,
    tpack metadata. ``set``: key -> value (an existing key keeps its type;
    lists become arrays); ``types``: key -> type for new keys (``"u32"``,
    ``"f32"``, ``"bool"``, ``"[i32]"`` …; default string); ``delete``: keys
    to remove (first). Without ``output`` the file is replaced atomically.
    Returns ``{"header_bytes", "data_bytes", "in_place"}``."""
    types = types or {}
    sets = [(k, types.get(k), _edit_text(v)) for k, v in (set or {}).items()]
    out = None if output is None else _where(output)
    header, data, in_place = _native.edit(_where(filename), sets, list(delete), out, force)
    return {"header_bytes": header, "data_bytes": data, "in_place": in_place}


def merge(
    config,
    output,
    *,
    method: str | None = None,
    weight=None,
    base=None,
    dtype: str | None = None,
    seed: int = 0,
    to: str | None = None,
    force: bool = False,
    quantize: str | None = None,
    imatrix=None,
    **parameters,
) -> dict:
    """Merges models with mergekit's methods (``tensorcast merge``).

    ``config``: a mergekit YAML file's path, a configuration as a dict (the
    YAML's keys), or a list of models with ``method`` (and ``weight``: one
    per model, ``base``, ``dtype``, other parameters such as ``density`` or
    ``t`` as keywords: per-model when given as a list, shared otherwise).
    Models are folders, files of any format (GGUF included) or URLs.
    ``output``: a folder (``to="hf"``, or a path without extension) or a file
    of any writable format; a ``.gguf`` output is the merged model as
    llama.cpp loads it, quantized in the same pass with ``quantize`` (a
    llama-quantize file type such as ``"Q4_K_M"``; ``imatrix``: an importance
    matrix file). ``seed`` keys DARE's masks. Returns ``{"tensors": N}``."""
    if isinstance(config, (list, tuple)):
        if method is None:
            raise TypeError("merging a list of models needs method=")
        weights = list(weight) if weight is not None else None
        if weights is not None and len(weights) != len(config):
            raise ValueError(f"{len(weights)} weights for {len(config)} models")
        models = []
        shared = {}
        for k, v in parameters.items():
            if not isinstance(v, (list, tuple)):
                shared[k] = v
        for i, m in enumerate(config):
            p = {k: v[i] for k, v in parameters.items() if isinstance(v, (list, tuple))}
            if weights is not None:
                p["weight"] = weights[i]
            models.append({"model": _json_path(m), "parameters": p} if p else {"model": _json_path(m)})
        config = {"merge_method": method, "models": models}
        if base is not None:
            config["base_model"] = _json_path(base)
        if shared:
            config["parameters"] = shared
        if dtype is not None:
            config["dtype"] = dtype
    if isinstance(config, dict):
        # JSON is YAML: mergekit's schema either way.
        text = _json.dumps(config)
    else:
        with open(_where(config), encoding="utf-8") as f:
            text = f.read()
    im = _where(imatrix) if imatrix is not None else None
    return {"tensors": _native.merge(text, _where(output), to, force, seed, quantize, im)}


def _json_path(p) -> str:
    return p if isinstance(p, str) else str(_os.fspath(p))


def refs(
    src,
    dst,
    *,
    url=None,
    dims=None,
    inline=None,
    inline_below=None,
    chunk_bytes=None,
    materialize=None,
    force=False,
    **options,
) -> dict:
    """Writes a kerchunk reference set for ``src`` into ``dst`` (as
    ``tensorcast refs`` does): a virtual Zarr store whose chunks are byte
    ranges of ``src``, for ``xarray.open_dataset("reference://",
    engine="zarr", backend_kwargs={"consolidated": False, "storage_options":
    {"fo": dst}})``. ``dims``: ``{name: [dim, ...]}``; ``inline``: names to
    embed; ``inline_below``/``chunk_bytes``: sizes in bytes; ``materialize``:
    a folder for a sidecar holding the tensors that are not byte ranges.
    Returns ``{"variables", "chunks", "inlined", "materialized",
    "not_virtualizable": [(name, reason), ...]}``."""
    return _native.refs(
        _where(src),
        _where(dst),
        url,
        dims,
        list(inline) if inline is not None else None,
        inline_below,
        chunk_bytes,
        _os.fspath(materialize) if materialize is not None else None,
        force,
        options,
    )
