"""Shared helpers: fixture paths and bit-exact array comparison."""

import pathlib

import numpy as np
import pytest

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures"


def native(array: np.ndarray) -> np.ndarray:
    """The array in native byte order (tensorcast always gives little-endian)."""
    if array.dtype.byteorder == ">":
        return array.astype(array.dtype.newbyteorder("="))
    return array


def assert_same(ours: np.ndarray, ref: np.ndarray, what: str = "") -> None:
    """Same dtype, shape and bytes (NaN payloads and signed zeros included)."""
    ref = native(np.asarray(ref))
    assert ours.dtype == ref.dtype, f"{what}: dtype {ours.dtype} != {ref.dtype}"
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != {ref.shape}"
    assert ours.tobytes() == np.ascontiguousarray(ref).tobytes(), f"{what}: values differ"


def torch_or_skip():
    return pytest.importorskip("torch", reason="torch is not installed (CI never installs it)")


@pytest.fixture
def fixtures() -> pathlib.Path:
    return FIXTURES
