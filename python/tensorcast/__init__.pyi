"""Type stubs for tensorcast: one safe, fast reader and writer for every tensor format."""

import os
from typing import Any, Callable, Dict, List, Literal, Optional, Sequence, Union


_Path = Union[str, "os.PathLike[str]"]
_Framework = Literal["numpy", "np", "pt", "torch", "pytorch"]

__version__: str

class TensorcastError(ValueError):
    """A file broke a rule of its format, exceeded a limit, or could not be read or written."""

    rule: Optional[str]
    """The stable rule id (``forbidden-global``, ``data-gap``, ...)."""
    path: Optional[str]
    """The file concerned."""
    tensor: Optional[str]
    """The tensor concerned."""
    key: Optional[str]
    """The metadata or header key concerned."""
    format: Optional[str]
    """The format whose rule is broken."""
    limit: Optional[str]
    """The limit exceeded (``max_tensors``, ``max_alloc_bytes``, ...)."""
    kind: Optional[Literal["format", "limit", "usage", "unsupported", "io"]]
    """What kind of failure this is."""

class TensorSlice:
    """A tensor not read yet; index it to read the part needed."""

    def get_shape(self) -> List[int]: ...
    def get_dtype(self) -> str: ...
    def __getitem__(self, index: Any) -> Any: ...

class safe_open:
    """Opens a file of any format tensorcast reads (see the module docstring)."""

    def __init__(
        self,
        filename: _Path,
        framework: _Framework = "numpy",
        device: str = "cpu",
        *,
        dequantize: bool = True,
        lenient: bool = False,
        select: Optional[str] = None,
        strip_prefix: Optional[str] = None,
        dedupe_tied: bool = False,
        densify: bool = False,
        max_tensors: Optional[int] = None,
        max_header_size: Union[int, str, None] = None,
        max_objects: Optional[int] = None,
        max_depth: Optional[int] = None,
        max_alloc: Union[int, str, None] = None,
    ) -> None: ...
    def __enter__(self) -> "safe_open": ...
    def __exit__(self, *exc: object) -> None: ...
    @property
    def format(self) -> str: ...
    def keys(self) -> List[str]: ...
    def metadata(self) -> Optional[Dict[str, Any]]: ...
    def warnings(self) -> List[str]: ...
    def get_tensor(self, name: str) -> Any: ...
    def get_slice(self, name: str) -> TensorSlice: ...

def load_file(filename: _Path, framework: _Framework = "numpy", device: str = "cpu", **options: Any) -> Dict[str, Any]:
    """Every tensor as ``{name: array}`` in file order."""

def save_file(
    tensors: Dict[str, Any],
    filename: _Path,
    metadata: Optional[Dict[str, Any]] = None,
    *,
    to: Optional[str] = None,
    dtype: Optional[str] = None,
    force: bool = True,
    quantize: Optional[str] = None,
    compress: Union[int, str, None] = None,
    max_shard_size: Union[int, str, None] = None,
    include: Union[str, Sequence[str], None] = None,
    exclude: Union[str, Sequence[str], None] = None,
    rename: Union[Dict[str, str], Sequence[str], None] = None,
) -> None:
    """Writes numpy arrays or torch tensors into a safetensors, GGUF, tpack or .npz file."""

def convert(
    src: _Path,
    dst: _Path,
    *,
    to: Optional[str] = None,
    dtype: Optional[str] = None,
    force: bool = False,
    keep_quantized: bool = False,
    quantize: Optional[str] = None,
    max_shard_size: Union[int, str, None] = None,
    compress: Union[int, str, None] = None,
    include: Union[str, Sequence[str], None] = None,
    exclude: Union[str, Sequence[str], None] = None,
    rename: Union[Dict[str, str], Sequence[str], None] = None,
    names: Literal["model", "keep"] = "model",
    tokenizer_pre: Optional[str] = None,
    progress: Optional[Callable[[int, int], None]] = None,
    lenient: bool = False,
    select: Optional[str] = None,
    strip_prefix: Optional[str] = None,
    dedupe_tied: bool = False,
    densify: bool = False,
    max_tensors: Optional[int] = None,
    max_header_size: Union[int, str, None] = None,
    max_objects: Optional[int] = None,
    max_depth: Optional[int] = None,
    max_alloc: Union[int, str, None] = None,
) -> Dict[str, Any]:
    """Converts ``src`` into ``dst`` as ``tensorcast convert`` does."""

def inspect(filename: _Path, **options: Any) -> Dict[str, Any]:
    """Format, metadata and tensor descriptors, from the headers only."""

def verify(filename: _Path) -> List[str]:
    """``[]`` when the file is sound, else one line per damaged part."""

def digest(filename: _Path, *, tensors: bool = False, **options: Any) -> Any:
    """``"tc1:…"``, the content id of the tensors; with ``tensors=True`` a
    dict ``{"id", "tensors": [...]}``."""

def edit(
    filename: _Path,
    set: Optional[Dict[str, Any]] = None,
    delete: Any = (),
    *,
    types: Optional[Dict[str, str]] = None,
    output: Optional[_Path] = None,
    force: bool = False,
) -> Dict[str, Any]:
    """Changes metadata without rewriting tensors; in place unless ``output``."""

def merge(
    config: Any,
    output: _Path,
    *,
    method: Optional[str] = None,
    weight: Optional[Sequence[float]] = None,
    base: Optional[_Path] = None,
    dtype: Optional[str] = None,
    seed: int = 0,
    to: Optional[str] = None,
    force: bool = False,
    quantize: Optional[str] = None,
    imatrix: Optional[_Path] = None,
    **parameters: Any,
) -> Dict[str, Any]:
    """Merges models with mergekit's methods: a YAML file, a config dict, or
    a list of models with ``method``."""

def refs(
    src: _Path,
    dst: _Path,
    *,
    url: Optional[str] = None,
    dims: Optional[Dict[str, List[str]]] = None,
    inline: Optional[Sequence[str]] = None,
    inline_below: Optional[int] = None,
    chunk_bytes: Optional[int] = None,
    materialize: Optional[_Path] = None,
    force: bool = False,
    **options: Any,
) -> Dict[str, Any]:
    """Writes a kerchunk reference set that opens ``src`` as a virtual Zarr store."""

__all__: List[str]
