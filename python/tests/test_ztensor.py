"""zTensor interop with ztensor 2.1.2 itself: .zt files tensorcast writes are
read by ztensor equal (shape, storage and logical type, bytes) with every
digest verifying; files ztensor writes (raw, zstd-seekable, canonical) are
read by tensorcast equal."""

import ml_dtypes
import numpy as np
import pytest

import tensorcast
from conftest import FIXTURES

ztensor = pytest.importorskip("ztensor")


def arrays():
    rng = np.random.default_rng(3)
    return {
        "f32": rng.standard_normal((4, 33)).astype(np.float32),
        "f16": rng.standard_normal((3, 5)).astype(np.float16),
        "f64": rng.standard_normal(7),
        "bf16": np.array([1.5, -2.0, 3.25], dtype=ml_dtypes.bfloat16),
        "f8": np.array([0.5, -1.0], dtype=ml_dtypes.float8_e4m3fn),
        "i8": rng.integers(-128, 127, (2, 3), dtype=np.int8),
        "i64": np.array(-5, dtype=np.int64),
        "u16": rng.integers(0, 65535, (4,), dtype=np.uint16),
        "bool": np.array([True, False, True]),
        "c64": (rng.standard_normal(3) + 1j).astype(np.complex64),
        "empty": np.zeros((0, 3), np.float32),
    }


# tensorcast dtype -> (ztensor storage type, logical type)
ZT = {
    "f32": ("f32", None), "f16": ("f16", None), "f64": ("f64", None), "bf16": ("bf16", None),
    "f8": ("u8", "f8_e4m3fn"), "i8": ("i8", None), "i64": ("i64", None), "u16": ("u16", None),
    "bool": ("u8", "bool"), "c64": ("f32", "complex64"), "empty": ("f32", None),
}


def test_zt_written_here_is_read_equal_by_ztensor(tmp_path):
    src = arrays()
    out = tmp_path / "x.zt"
    tensorcast.save_file(src, out, metadata={"format": "np", "n": "3"})
    f = ztensor.open(str(out))
    assert sorted(f.keys()) == sorted(src)
    v = f.verify()
    assert v.checked == len(src) and v.undigested == 0, v
    for name, a in src.items():
        t = f.get(name)
        assert list(t.shape) == list(a.shape), name
        assert (t.dtype, t.logical) == ZT[name], name
        assert t.tobytes() == np.ascontiguousarray(a).tobytes(), name
    assert f.attributes["format"] == "np"


def test_zt_written_by_ztensor_reads_equal_here():
    for name in ("dense.zt", "zstd.zt", "canonical.zt"):
        path = FIXTURES / "ztensor" / name
        ours = tensorcast.load_file(path)
        theirs = ztensor.open(str(path))
        assert sorted(ours) == sorted(theirs.keys()), name
        for k in theirs.keys():
            t = theirs.get(k)
            assert list(ours[k].shape) == list(t.shape), (name, k)
            assert np.ascontiguousarray(ours[k]).tobytes() == t.tobytes(), (name, k)


def test_convert_into_zt_from_other_formats_is_read_by_ztensor(tmp_path):
    out = tmp_path / "m.zt"
    tensorcast.convert(FIXTURES / "gguf" / "st_input.safetensors", out)
    f = ztensor.open(str(out))
    with tensorcast.safe_open(FIXTURES / "gguf" / "st_input.safetensors") as src:
        assert sorted(f.keys()) == sorted(src.keys())
        for k in src.keys():
            assert f.get(k).tobytes() == np.ascontiguousarray(src.get_tensor(k)).tobytes()


def test_csr_written_here_is_read_by_ztensor_as_its_csr_profile(tmp_path):
    """torch's CSR tensors (int64 and int32 indices) converted to .zt are
    zt.sparse_csr/1 objects to ztensor: unsigned indices of the same width,
    the same parts' bytes torch holds (fixtures/pytorch/sparse/parts.json),
    digests verifying."""
    import json

    parts = json.loads((FIXTURES / "pytorch/sparse/parts.json").read_text())["tensors"]
    out = tmp_path / "s.zt"
    tensorcast.convert(FIXTURES / "pytorch/valid/sparse.pt", out, exclude=["coo*"])
    f = ztensor.open(str(out))
    assert sorted(f.keys()) == ["csr", "csr_i32", "plain"]
    v = f.verify()
    assert v.undigested == 0, v
    for name in ("csr", "csr_i32"):
        t = f.get(name)
        assert t.layout == "zt.sparse_csr/1" and sorted(t.parts) == ["indices", "indptr", "values"]
        width = {"I64": "u64", "I32": "u32"}[parts[name]["index"]]
        assert t["indptr"].dtype == width and t["indices"].dtype == width, name
        ours = t["indptr"].tobytes() + t["indices"].tobytes() + t["values"].tobytes()
        assert ours.hex() == parts[name]["hex"], name
