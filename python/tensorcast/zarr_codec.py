"""The ``tensorcast.decode`` codec: chunks that are a tensor file's own bytes
in an element type Zarr has no type for (ggml quantized blocks, bfloat16,
float8) decoded to float32 little-endian bytes, exactly: blocks as gguf-py
dequantizes them, bf16 and fp8 widened without rounding.

It is a bytes-to-bytes codec (the decoded bytes then go through Zarr's
``bytes`` codec as float32), so it has the same meaning in Zarr v3 metadata
(``DecodeCodec``) and as a Zarr v2 / kerchunk filter (``NumcodecsDecode``, the
numcodecs form VirtualiZarr writes when persisting to kerchunk). zarr and
numcodecs find both through this package's entry points (``zarr.codecs``,
``numcodecs.codecs``), so a store persisted to kerchunk or Icechunk and
reopened in a process that never imports tensorcast still decodes. The codec
reads; writing such chunks is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numcodecs.abc
from zarr.abc.codec import BytesBytesCodec
from zarr.registry import register_codec

from . import _native

if TYPE_CHECKING:
    from zarr.core.array_spec import ArraySpec
    from zarr.core.buffer import Buffer

#: The codec's name in Zarr v3 metadata and its id as a numcodecs filter.
CODEC_NAME = "tensorcast.decode"
#: The name zarr gives a numcodecs filter read from Zarr v2 metadata.
NUMCODECS_NAME = "numcodecs." + CODEC_NAME

def decode(data: bytes, dtype: str) -> bytes:
    """``data`` (whole elements or blocks of ``dtype``) as float32 bytes."""
    count = _native.element_count(dtype, len(data))
    return _native.decode_f32(data, dtype, count)


def _dtype_of(config: dict[str, Any]) -> str:
    dtype = config.get("dtype")
    unknown = set(config) - {"dtype"}
    if unknown:
        raise ValueError(f"{CODEC_NAME}: unknown configuration keys {sorted(unknown)}")
    if not isinstance(dtype, str) or not dtype:
        raise ValueError(f"{CODEC_NAME}: 'dtype' must name a dtype, got {dtype!r}")
    return dtype


@dataclass(frozen=True)
class DecodeCodec(BytesBytesCodec):
    """Zarr v3: stored elements of ``dtype`` (tensorcast's dtype name:
    ``BF16``, ``F8_E4M3``, ``Q4_K``, ...) to float32 bytes."""

    is_fixed_size = False

    dtype: str

    def __init__(self, *, dtype: str) -> None:
        object.__setattr__(self, "dtype", _dtype_of({"dtype": dtype}))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecodeCodec:
        if data.get("name") not in (CODEC_NAME, NUMCODECS_NAME):
            raise ValueError(f"{CODEC_NAME}: expected the name {CODEC_NAME!r}, got {data.get('name')!r}")
        return cls(dtype=_dtype_of(dict(data.get("configuration") or {})))

    def to_dict(self) -> dict[str, Any]:
        return {"name": CODEC_NAME, "configuration": {"dtype": self.dtype}}

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> Buffer:
        return chunk_spec.prototype.buffer.from_bytes(decode(chunk_bytes.to_bytes(), self.dtype))

    async def _encode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> Buffer | None:
        raise NotImplementedError(
            f"{CODEC_NAME} reads a tensor file's own bytes; it does not encode "
            f"({self.dtype} chunks are written by converting the file with tensorcast)"
        )

    def compute_encoded_size(self, input_byte_length: int, _chunk_spec: ArraySpec) -> int:
        raise NotImplementedError(f"{CODEC_NAME} does not encode")


class NumcodecsDecode(numcodecs.abc.Codec):
    """The same decoding as a numcodecs filter (Zarr v2 and kerchunk refs)."""

    codec_id = CODEC_NAME

    def __init__(self, dtype: str) -> None:
        self.dtype = _dtype_of({"dtype": dtype})

    def decode(self, buf, out=None):
        decoded = decode(bytes(memoryview(buf).cast("B")), self.dtype)
        if out is not None:
            memoryview(out).cast("B")[:] = decoded
            return out
        return decoded

    def encode(self, buf):
        raise NotImplementedError(f"{CODEC_NAME} does not encode")


register_codec(CODEC_NAME, DecodeCodec)
register_codec(NUMCODECS_NAME, DecodeCodec)
numcodecs.register_codec(NumcodecsDecode)
