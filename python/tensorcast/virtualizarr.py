"""A VirtualiZarr parser for every format tensorcast reads.

``Parser()`` implements VirtualiZarr's parser protocol
(``parser(url, registry) -> ManifestStore``), so::

    import virtualizarr as vz
    from obstore.store import LocalStore
    from obspec_utils.registry import ObjectStoreRegistry
    from tensorcast.virtualizarr import Parser

    registry = ObjectStoreRegistry({"file://": LocalStore()})
    ds = vz.open_virtual_dataset("file:///models/model.safetensors",
                                 registry=registry, parser=Parser())

gives an xarray Dataset whose variables are the file's tensors, each a chunk
manifest of byte ranges in the file itself: safetensors (sharded indexes
too), GGUF (split files too), PyTorch zip checkpoints, NumPy ``.npy``/``.npz``,
tpack raw chunks and ``.zt`` raw parts. Objects in stores (``s3://``,
``http(s)://``, the Hub over HTTPS) are read through the store the registry
resolves: only the ranges holding the headers are fetched.

Quantized GGUF tensors, bfloat16 and float8 stay virtual too: their chunks are
whole block-rows (whole elements) of the file, decoded to float32 by the
``tensorcast.decode`` Zarr codec (``tensorcast.zarr_codec``), which zarr finds
through this package's entry point. Each variable's ``attrs`` say the
original dtype (``original_safetensors_dtype``, ``original_gguf_dtype``,
``original_torch_dtype``, ...); the file's metadata become ``ds.attrs``.

Tensors that are not byte ranges of a file (deflated zip members, strided or
byte-swapped views, sparse tensors) cannot be virtual. They are listed, with
the reason, in the store's group attribute ``tensorcast_not_virtual`` and in
``Parser.not_virtual`` after a call; ``Parser(load=...)`` (or ``load=True``
for all) decodes them into an in-memory store the registry gains, so they are
variables to name in ``loadable_variables``. Nothing is dropped silently.
"""

from __future__ import annotations

import os
import uuid
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import unquote, urlparse

import numpy as np

from . import _native
from . import zarr_codec

__all__ = ["Parser"]


def _file_url(path: str) -> str:
    return Path(path).absolute().as_uri()


def _local_path(url: str) -> str | None:
    """The local path a ``file://`` URL (or a bare path) names, else None."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):
        return url
    return None


def _beside(url: str, name: str) -> str:
    return url[: url.rfind("/") + 1] + name if "/" in url else name


def _reader(registry: Any, url: str):
    """``(read(offset, length) -> bytes, size)`` for the object at ``url``,
    through the store the registry resolves."""
    store, path = registry.resolve(url)
    path = str(path)
    size = int(store.head(path)["size"])

    def read(offset: int, length: int) -> bytes:
        if length == 0:
            return b""
        return bytes(store.get_range(path, start=offset, end=offset + length))

    return read, size


def _json_safe(value: Any) -> Any:
    """Metadata values as JSON values (Zarr attributes are JSON)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


class Parser:
    """VirtualiZarr parser for tensor files (see the module's documentation).

    dimension_names
        ``{tensor: [dim, ...]}``: names for a tensor's dimensions (default
        ``NAME_dim_0``, ...). A name shared by tensors must have one length.
    skip_variables
        Tensors to leave out.
    chunk_bytes
        Tensors whose stored bytes exceed this are split along their first
        axis into chunks of whole rows (whole blocks for quantized tensors);
        default 64 MiB. Smaller chunks make a slice fetch less.
    load
        Tensors that are not byte ranges to decode into memory so they can be
        loaded (name them in ``loadable_variables``): a list of names, or
        ``True`` for every such tensor. Others are only listed.
    options
        Reading options as ``tensorcast.safe_open`` takes them (limits, ...).
    """

    def __init__(
        self,
        dimension_names: Mapping[str, Sequence[str]] | None = None,
        skip_variables: Iterable[str] | None = None,
        chunk_bytes: int | None = None,
        load: Iterable[str] | bool = False,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.dimension_names = {k: list(v) for k, v in (dimension_names or {}).items()}
        self.skip_variables = list(skip_variables or [])
        if chunk_bytes is not None and int(chunk_bytes) < 1:
            raise ValueError("chunk_bytes must be at least 1")
        self.chunk_bytes = chunk_bytes
        self.load = load if isinstance(load, bool) else list(load)
        self.options = dict(options or {})
        #: ``[(tensor, reason), ...]`` of the last call: tensors that are not
        #: byte ranges of the file.
        self.not_virtual: list[tuple[str, str]] = []

    def __call__(self, url: str, registry: Any):
        from virtualizarr.manifests import ManifestGroup, ManifestStore

        url = str(url)
        local = _local_path(url)
        common = dict(
            dims=self.dimension_names,
            skip=self.skip_variables,
            chunk_bytes=self.chunk_bytes,
            load=self.load,
            options=self.options,
        )
        if local is not None:
            url = _file_url(local)
            manifest = _native.zarr_manifest(url, path=local, **common)
        else:
            read, size = _reader(registry, url)

            def sibling(name: str):
                other = _beside(url, name)
                r, n = _reader(registry, other)
                return r, n, other

            manifest = _native.zarr_manifest(url, read=read, size=size, sibling=sibling, **common)
        arrays = {a["name"]: _manifest_array(a) for a in manifest["arrays"]}
        self.not_virtual = [tuple(x) for x in manifest["not_virtual"]]
        loaded = _serve_loaded(manifest["loaded"], registry, arrays, self.dimension_names)
        attrs = _json_safe(manifest["metadata"])
        attrs = {str(k): v for k, v in attrs.items()}
        left = [(n, r) for n, r in self.not_virtual if n not in loaded]
        if self.not_virtual:
            attrs["tensorcast_not_virtual"] = {n: r for n, r in self.not_virtual}
        if left:
            warnings.warn(
                f"{url}: {len(left)} tensor(s) are not byte ranges of the file and are not "
                f"variables: {', '.join(n for n, _ in left[:5])}{'...' if len(left) > 5 else ''} "
                "(Parser(load=...) decodes them so loadable_variables can load them; "
                "reasons in ds.attrs['tensorcast_not_virtual'])",
                stacklevel=2,
            )
        group = ManifestGroup(arrays=arrays, attributes=attrs)
        return ManifestStore(group=group, registry=registry)


def _serve_loaded(loaded: list, registry: Any, arrays: dict, dims: Mapping[str, Sequence[str]]) -> set:
    """Tensors the native side read and decoded (those ``load`` asked for
    that are not byte ranges), served from an in-memory store the registry
    gains under a fresh ``memory://`` URL, so ``loadable_variables`` loads
    them through the ManifestStore like any other variable."""
    if not loaded:
        return set()
    from obstore.store import MemoryStore

    base = f"memory://tensorcast-{uuid.uuid4().hex}"
    store = MemoryStore()
    registry.register(base, store)
    for a in loaded:
        name = a["name"]
        store.put(name, a["bytes"])
        shape = [int(d) for d in a["shape"]]
        numel = int(np.prod(shape)) if shape else 1
        arrays[name] = _manifest_array(
            {
                "name": name,
                "shape": shape,
                "data_type": a["data_type"],
                "decode": None,
                "chunk_shape": [max(d, 1) for d in shape],
                "dims": list(dims.get(name, [f"{name}_dim_{i}" for i in range(len(shape))])),
                "chunks": [(f"{base}/{name}", 0, len(a["bytes"]))] if numel else [],
                "attrs": a["attrs"],
            }
        )
    return {a["name"] for a in loaded}


def _manifest_array(a: dict):
    from virtualizarr.manifests import ChunkManifest, ManifestArray
    from virtualizarr.manifests.utils import create_v3_array_metadata

    shape = tuple(int(d) for d in a["shape"])
    chunk_shape = tuple(int(d) for d in a["chunk_shape"])
    # The chunk grid: chunks run along the first axis only.
    grid = tuple(-(-s // c) for s, c in zip(shape, chunk_shape))
    chunks = a["chunks"]
    paths = np.full(grid, "", dtype=np.dtypes.StringDType())
    offsets = np.zeros(grid, dtype=np.uint64)
    lengths = np.zeros(grid, dtype=np.uint64)
    if chunks:
        flat = (len(chunks),) + (1,) * max(len(grid) - 1, 0) if grid else ()
        paths[...] = np.array([c[0] for c in chunks], dtype=np.dtypes.StringDType()).reshape(flat)
        offsets[...] = np.array([c[1] for c in chunks], dtype=np.uint64).reshape(flat)
        lengths[...] = np.array([c[2] for c in chunks], dtype=np.uint64).reshape(flat)
    manifest = ChunkManifest.from_arrays(paths=paths, offsets=offsets, lengths=lengths)
    # Stored bytes -> (tensorcast.decode: float32 bytes) -> elements.
    codecs = [{"name": "bytes", "configuration": {"endian": "little"}}]
    if a["decode"] is not None:
        codecs.append(zarr_codec.DecodeCodec(dtype=a["decode"]).to_dict())
    metadata = create_v3_array_metadata(
        shape=shape,
        data_type=np.dtype(a["data_type"]),
        chunk_shape=chunk_shape,
        codecs=codecs,
        attributes=dict(a["attrs"]),
        dimension_names=list(a["dims"]),
    )
    return ManifestArray(metadata=metadata, chunkmanifest=manifest)
