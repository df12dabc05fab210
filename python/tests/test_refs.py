"""`tensorcast refs`: kerchunk references opened by fsspec/zarr/xarray (and
VirtualiZarr) give the file's own tensors, bit for bit, reading only the
chunks a slice needs."""

import base64
import json

import gguf
import numpy as np
import pytest
import safetensors
import xarray as xr
from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper
from fsspec.implementations.local import LocalFileSystem

import tensorcast
from conftest import FIXTURES


def open_refs(path, fs=None):
    """The README's snippet: xarray over fsspec's reference file system."""
    storage = {"fo": str(path)}
    if fs is not None:
        storage.update(fs={"file": AsyncFileSystemWrapper(fs, asynchronous=True)}, asynchronous=True)
    return xr.open_dataset(
        "reference://", engine="zarr", backend_kwargs={"consolidated": False, "storage_options": storage}
    )


def st_reference(path):
    return {k: bytes(v["data"]) for k, v in safetensors.deserialize(path.read_bytes())}


def gguf_reference(path):
    return {t.name: np.ascontiguousarray(t.data).tobytes() for t in gguf.GGUFReader(path).tensors}


def torch_recorded(path):
    spec = json.loads(path.with_name(path.name + ".expected.json").read_text())["tensors"]
    return {k: bytes.fromhex(v["hex"]) for k, v in spec.items()}


def numpy_bytes(path):
    arrays = {path.stem: np.load(path)} if path.suffix == ".npy" else dict(np.load(path))
    return {k: np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<"))).tobytes() for k, a in arrays.items()}


SHARDED = FIXTURES / "safetensors/valid/sharded/model.safetensors.index.json"
PT = FIXTURES / "pytorch/valid"
VIEWS = {"transposed", "stepped", "columns", "expanded", "channels_last", "neg_imag", "conj"}
ALL_NPZ_SWAPPED = {"f64_fortran", "i32_big", "c64_big", "f32_fortran_big"}

# (file, its reference bytes, the exact set the refs must leave out)
CASES = [
    (FIXTURES / "safetensors/valid/all_dtypes.safetensors", st_reference, {"f4", 'odd "name"/ünï\\code'}),
    (FIXTURES / "safetensors/cast/source.safetensors", st_reference, set()),
    (SHARDED, lambda p: {k: v for s in sorted(p.parent.glob("*.safetensors")) for k, v in st_reference(s).items()}, set()),
    (FIXTURES / "gguf/st_expected.gguf", gguf_reference, set()),
    (FIXTURES / "gguf/align64.gguf", gguf_reference, {"q"}),
    (FIXTURES / "model/llama/reference-f16.gguf", gguf_reference, set()),
    (PT / "state_dict.pt", torch_recorded, set()),
    (PT / "dtypes.pt", torch_recorded, set()),
    (PT / "views.pt", torch_recorded, VIEWS),
    (PT / "deflated.pt", torch_recorded, set(json.loads((PT / "deflated.pt.expected.json").read_text())["tensors"])),
    (FIXTURES / "numpy/f32.npy", numpy_bytes, set()),
    (FIXTURES / "numpy/f32_fortran_big.npy", numpy_bytes, {"f32_fortran_big"}),
    (FIXTURES / "numpy/all.npz", numpy_bytes, ALL_NPZ_SWAPPED),
    (FIXTURES / "numpy/compressed.npz", numpy_bytes, set(np.load(FIXTURES / "numpy/compressed.npz").files)),
    (FIXTURES / "tpack/raw.tpack", lambda p: st_reference(FIXTURES / "safetensors/valid/all_dtypes.safetensors"), {"f4", 'odd "name"/ünï\\code'}),
]


@pytest.mark.parametrize("path,reference,left_out", CASES, ids=lambda c: c.name if hasattr(c, "name") else "")
def test_every_variable_equals_the_files_tensor(tmp_path, path, reference, left_out):
    out = tmp_path / "refs.json"
    report = tensorcast.refs(path, out)
    assert {name for name, _ in report["not_virtualizable"]} == left_out
    want = reference(path)
    ds = open_refs(out)
    assert set(ds.data_vars) == set(want) - left_out
    for name in ds.data_vars:
        got = ds[name].values
        assert got.tobytes() == want[name], name
    assert report["variables"] == len(ds.data_vars)


def test_group_and_variable_attributes(tmp_path):
    out = tmp_path / "refs.json"
    tensorcast.refs(FIXTURES / "gguf/metadata.gguf", out)
    ds = open_refs(out)
    reader = gguf.GGUFReader(FIXTURES / "gguf/metadata.gguf")
    assert ds.attrs["general.architecture"] == "llama"
    assert ds.attrs["t.u8"] == reader.fields["t.u8"].contents()
    for t in reader.tensors:
        assert ds[t.name].attrs["original_gguf_dtype"] == t.tensor_type.name
    out = tmp_path / "st.json"
    tensorcast.refs(FIXTURES / "safetensors/valid/all_dtypes.safetensors", out)
    ds = open_refs(out)
    assert ds.attrs == safetensors.safe_open(FIXTURES / "safetensors/valid/all_dtypes.safetensors", "numpy").metadata()
    assert ds["bf16"].attrs["original_safetensors_dtype"] == "BF16" and ds["bf16"].dtype == np.uint16
    assert "bfloat16" in ds["bf16"].attrs["tensorcast_stored_as"]
    out = tmp_path / "pt.json"
    tensorcast.refs(PT / "dtypes.pt", out)
    assert open_refs(out)["bfloat16"].attrs["original_torch_dtype"] == "torch.bfloat16"


def test_dims_and_inlined_variables(tmp_path):
    src = FIXTURES / "safetensors/cast/source.safetensors"
    want = st_reference(src)
    out = tmp_path / "refs.json"
    report = tensorcast.refs(src, out, dims={"f32": ["row", "col"]}, inline=["mask"], inline_below=64)
    refs = json.loads(out.read_text())["refs"]
    small = {k for k, v in safetensors.deserialize(src.read_bytes()) if len(v["data"]) < 64 or k == "mask"}
    inlined = {k.split("/")[0] for k, v in refs.items() if isinstance(v, str) and v.startswith("base64:")}
    assert inlined == {k for k in small if want[k]}  # empty tensors have no chunk to embed
    assert report["inlined"] == len(small)
    assert base64.b64decode(refs["mask/0"][7:]) == want["mask"]
    ds = open_refs(out)
    assert ds["f32"].dims == ("row", "col")
    assert ds["randn_f32"].dims == ("randn_f32_dim_0",) + tuple(f"randn_f32_dim_{i}" for i in range(1, ds["randn_f32"].ndim))
    for name in small:
        assert ds[name].values.tobytes() == want[name]


class Counting(LocalFileSystem):
    """A local file system that records every range read."""

    ranges = []

    def cat_file(self, path, start=None, end=None, **kwargs):
        Counting.ranges.append((path, start, end))
        return super().cat_file(path, start=start, end=end, **kwargs)


def test_a_slice_reads_only_its_chunks(tmp_path):
    w = np.arange(64 * 1024, dtype=np.float32).reshape(64, 1024)
    src = tmp_path / "w.safetensors"
    tensorcast.save_file({"w": w, "b": np.ones(3, np.float32)}, src)
    out = tmp_path / "refs.json"
    report = tensorcast.refs(src, out, chunk_bytes=32 << 10, url=f"file://{src}")
    assert report["chunks"] == 8 + 1  # 8 chunks of 8 rows, and b
    refs = json.loads(out.read_text())["refs"]
    assert json.loads(refs["w/.zarray"])["chunks"] == [8, 1024]
    ds = open_refs(out, fs=Counting())
    Counting.ranges.clear()
    part = ds["w"][17:20].values
    assert np.array_equal(part, w[17:20])
    _, offset, length = refs["w/2.0"]
    assert Counting.ranges == [(f"file://{src}", offset, offset + length)]
    Counting.ranges.clear()
    assert np.array_equal(ds["w"][6:10].values, w[6:10])
    assert sorted(r[1] for r in Counting.ranges) == [refs["w/0.0"][1], refs["w/1.0"][1]]


def test_uneven_rows_are_chunked_by_a_divisor(tmp_path):
    w = np.arange(21 * 100, dtype=np.float32).reshape(21, 100)  # 21 rows: chunks of 7
    src = tmp_path / "w.safetensors"
    tensorcast.save_file({"w": w}, src)
    out = tmp_path / "refs.json"
    tensorcast.refs(src, out, chunk_bytes=3000)
    assert json.loads(json.loads(out.read_text())["refs"]["w/.zarray"])["chunks"] == [7, 100]
    assert np.array_equal(open_refs(out)["w"].values, w)


def test_materialize_writes_what_is_not_a_byte_range(tmp_path):
    path = FIXTURES / "gguf/align64.gguf"
    out = tmp_path / "refs.json"
    report = tensorcast.refs(path, out, materialize=tmp_path / "side")
    assert report["not_virtualizable"] == [] and report["materialized"] == 1
    ds = open_refs(out)
    for t in gguf.GGUFReader(path).tensors:
        ref = gguf.quants.dequantize(t.data, t.tensor_type)
        assert ds[t.name].values.tobytes() == ref.tobytes(), t.name
    assert ds["q"].attrs["tensorcast_materialized"] == "Q8_0 decoded to F32"
    out = tmp_path / "views.json"
    report = tensorcast.refs(PT / "deflated.pt", out, materialize=tmp_path / "side")
    want = torch_recorded(PT / "deflated.pt")
    ds = open_refs(out)
    assert report["not_virtualizable"] == [] and set(ds.data_vars) == set(want)
    for name in want:
        assert ds[name].values.tobytes() == want[name], name


def test_virtualizarr_reads_the_refs(tmp_path):
    vz = pytest.importorskip("virtualizarr")
    from obspec_utils.registry import ObjectStoreRegistry
    from obstore.store import LocalStore
    from virtualizarr.parsers import KerchunkJSONParser

    out = tmp_path / "refs.json"
    tensorcast.refs(SHARDED, out, chunk_bytes=100)
    registry = ObjectStoreRegistry({"file://": LocalStore()})
    vds = vz.open_virtual_dataset(f"file://{out}", registry=registry, parser=KerchunkJSONParser())
    want = {k: v for s in sorted(SHARDED.parent.glob("*.safetensors")) for k, v in st_reference(s).items()}
    assert set(vds.data_vars) == set(want)
    store = KerchunkJSONParser()(f"file://{out}", registry)
    ds = xr.open_zarr(store, consolidated=False, zarr_format=3)
    for name in want:
        assert vds[name].shape == ds[name].shape
        assert ds[name].values.tobytes() == want[name], name
