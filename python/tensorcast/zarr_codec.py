"""The ``tensorcast.decode`` Zarr v3 codec: chunks that are a tensor file's own
bytes in an element type Zarr has no type for (ggml quantized blocks, bfloat16,
float8) decoded to float32, exactly: blocks as gguf-py dequantizes them, bf16
and fp8 widened without rounding.

zarr finds the codec through the package's ``zarr.codecs`` entry point, so a
virtual store persisted to kerchunk or Icechunk and reopened in a process that
never imports tensorcast still decodes. Importing this module also registers
it directly. The codec reads; writing such chunks is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.common import parse_named_configuration
from zarr.registry import register_codec

from . import _native

if TYPE_CHECKING:
    from zarr.core.array_spec import ArraySpec
    from zarr.core.buffer import Buffer, NDBuffer

#: The codec's name in Zarr metadata.
CODEC_NAME = "tensorcast.decode"


@dataclass(frozen=True)
class DecodeCodec(ArrayBytesCodec):
    """Decodes stored elements of ``dtype`` (tensorcast's dtype name: ``BF16``,
    ``F8_E4M3``, ``Q4_K``, ...) to the float32 array the chunk holds."""

    is_fixed_size = True

    dtype: str

    def __init__(self, *, dtype: str) -> None:
        if not isinstance(dtype, str) or not dtype:
            raise ValueError(f"{CODEC_NAME}: 'dtype' must name a dtype, got {dtype!r}")
        object.__setattr__(self, "dtype", dtype)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecodeCodec:
        _, configuration = parse_named_configuration(data, CODEC_NAME, require_configuration=True)
        unknown = set(configuration) - {"dtype"}
        if unknown:
            raise ValueError(f"{CODEC_NAME}: unknown configuration keys {sorted(unknown)}")
        return cls(**configuration)

    def to_dict(self) -> dict[str, Any]:
        return {"name": CODEC_NAME, "configuration": {"dtype": self.dtype}}

    def _decode_sync(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        count = math.prod(chunk_spec.shape)
        decoded = _native.decode_f32(chunk_bytes.to_bytes(), self.dtype, count)
        values = np.frombuffer(decoded, dtype="<f4").reshape(chunk_spec.shape)
        return chunk_spec.prototype.nd_buffer.from_ndarray_like(values)

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        return self._decode_sync(chunk_bytes, chunk_spec)

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        raise NotImplementedError(
            f"{CODEC_NAME} reads a tensor file's own bytes; it does not encode "
            f"({self.dtype} chunks are written by converting the file with tensorcast)"
        )

    def compute_encoded_size(self, input_byte_length: int, _chunk_spec: ArraySpec) -> int:
        raise NotImplementedError(f"{CODEC_NAME} does not encode")


register_codec(CODEC_NAME, DecodeCodec)
