"""tensorcast.virtualizarr: VirtualiZarr's parser protocol for every format
tensorcast reads. Every virtual variable read through VirtualiZarr/xarray
equals the reference reader's tensor (bit for bit; quantized GGUF blocks
as gguf.quants.dequantize gives them, bf16/fp8 widened to float32 as
ml_dtypes does); what is not a byte range is named with its reason; a slice
fetches only the chunks it needs, locally and over HTTP."""

import ast
import json
import os
import subprocess
import sys
import threading
import warnings
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import gguf
import ml_dtypes
import numpy as np
import pytest
import safetensors
import xarray as xr

import tensorcast
from conftest import FIXTURES

vz = pytest.importorskip("virtualizarr")
from obspec_utils.registry import ObjectStoreRegistry  # noqa: E402
from obstore.store import HTTPStore, LocalStore  # noqa: E402

from tensorcast.virtualizarr import Parser  # noqa: E402

# tensorcast's dtype name -> the ml_dtypes type whose widening to float32
# the codec must equal.
WIDENED = {
    "BF16": ml_dtypes.bfloat16,
    "F8_E4M3": ml_dtypes.float8_e4m3fn,
    "F8_E5M2": ml_dtypes.float8_e5m2,
    "F8_E4M3FNUZ": ml_dtypes.float8_e4m3fnuz,
    "F8_E5M2FNUZ": ml_dtypes.float8_e5m2fnuz,
    "F8_E8M0": ml_dtypes.float8_e8m0fnu,
}


def local_registry():
    return ObjectStoreRegistry({"file://": LocalStore()})


def url_of(path):
    return path.absolute().as_uri()


def expected(dtype, raw, shape):
    """What a virtual variable holding `raw` bytes of `dtype` reads as."""
    if dtype in WIDENED:
        return np.frombuffer(raw, WIDENED[dtype]).astype(np.float32).reshape(shape)
    return raw


def same_floats(got, want):
    """Bit-identical float32 values, except that a NaN matches any NaN: the
    codec widens fp8 NaNs as torch does (payload kept), ml_dtypes makes
    them canonical."""
    got, want = np.asarray(got, np.float32), np.ascontiguousarray(want, np.float32)
    nan = np.isnan(want)
    return np.array_equal(np.isnan(got), nan) and got[~nan].tobytes() == want[~nan].tobytes()


def st_reference(path):
    return {k: (v["dtype"], bytes(v["data"]), v["shape"]) for k, v in safetensors.deserialize(path.read_bytes())}


def gguf_reference(paths):
    out = {}
    for path in paths:
        for t in gguf.GGUFReader(path).tensors:
            name = t.tensor_type.name
            shape = [int(d) for d in reversed(t.shape)]
            if name in ("F32", "F16", "F64", "I8", "I16", "I32", "I64"):
                out[t.name] = (name, np.ascontiguousarray(t.data).tobytes(), shape)
            else:
                values = gguf.quants.dequantize(t.data, t.tensor_type)
                out[t.name] = (name, values.astype(np.float32).reshape(shape), shape)
    return out


def torch_recorded(path):
    spec = json.loads(path.with_name(path.name + ".expected.json").read_text())["tensors"]
    return {k: (v["dtype"], bytes.fromhex(v["hex"]), v["shape"]) for k, v in spec.items()}


def numpy_reference(path):
    arrays = {path.stem: np.load(path)} if path.suffix == ".npy" else dict(np.load(path))
    return {
        k: ("", np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<"))).tobytes(), list(a.shape))
        for k, a in arrays.items()
    }


def zt_reference(path):
    import ztensor

    f = ztensor.open(str(path))
    names = {
        "bf16": "BF16",
        "f8_e4m3fn": "F8_E4M3",
        "f8_e5m2": "F8_E5M2",
        "f8_e4m3fnuz": "F8_E4M3FNUZ",
        "f8_e5m2fnuz": "F8_E5M2FNUZ",
        "f8_e8m0": "F8_E8M0",
    }
    out = {}
    for k in f.keys():
        t = f.get(k)
        out[k] = (names.get(t.logical or t.dtype, ""), t.tobytes(), list(t.shape))
    return out


PT = FIXTURES / "pytorch/valid"
SHARDED = FIXTURES / "safetensors/valid/sharded/model.safetensors.index.json"
SPLIT = sorted((FIXTURES / "gguf/split").glob("*.gguf"))
ALL_DTYPES = FIXTURES / "safetensors/valid/all_dtypes.safetensors"
VIEWS = {"transposed", "stepped", "columns", "expanded", "channels_last", "neg_imag", "conj"}

# (file, its reference tensors, the exact set that cannot be virtual)
CASES = [
    (ALL_DTYPES, st_reference, {"f4", 'odd "name"/ünï\\code'}),
    (SHARDED, lambda p: {k: v for s in sorted(p.parent.glob("*.safetensors")) for k, v in st_reference(s).items()}, set()),
    (FIXTURES / "gguf/quants.gguf", lambda p: gguf_reference([p]), set()),
    (FIXTURES / "gguf/align64.gguf", lambda p: gguf_reference([p]), set()),
    (SPLIT[0], lambda p: gguf_reference(SPLIT), set()),
    (FIXTURES / "model/llama/reference-f16.gguf", lambda p: gguf_reference([p]), set()),
    (PT / "dtypes.pt", torch_recorded, set()),
    (PT / "views.pt", torch_recorded, VIEWS),
    (PT / "deflated.pt", torch_recorded, set(json.loads((PT / "deflated.pt.expected.json").read_text())["tensors"])),
    (FIXTURES / "numpy/f32.npy", numpy_reference, set()),
    (FIXTURES / "numpy/all.npz", numpy_reference, {"f64_fortran", "i32_big", "c64_big", "f32_fortran_big"}),
    (FIXTURES / "numpy/compressed.npz", numpy_reference, set(np.load(FIXTURES / "numpy/compressed.npz").files)),
    (FIXTURES / "tpack/raw.tpack", lambda p: st_reference(ALL_DTYPES), {"f4", 'odd "name"/ünï\\code'}),
    (FIXTURES / "ztensor/dense.zt", zt_reference, set()),
]


def read_virtual(path, parser=None, registry=None):
    """The file through the parser: VirtualiZarr's dataset, and the values
    as xarray reads them from the ManifestStore."""
    registry = registry or local_registry()
    parser = parser or Parser()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vds = vz.open_virtual_dataset(url_of(path), registry=registry, parser=parser)
        store = parser(url_of(path), registry)
    return vds, xr.open_zarr(store, zarr_format=3, consolidated=False)


@pytest.mark.parametrize("path,reference,left_out", CASES, ids=lambda c: c.name if hasattr(c, "name") else "")
def test_every_variable_equals_the_reference_readers_tensor(path, reference, left_out):
    if path.suffix == ".zt":
        pytest.importorskip("ztensor")
    parser = Parser()
    vds, ds = read_virtual(path, parser)
    assert {n for n, _ in parser.not_virtual} == left_out
    assert all(reason for _, reason in parser.not_virtual)
    want = reference(path)
    assert set(vds.data_vars) == set(want) - left_out
    assert set(ds.attrs.get("tensorcast_not_virtual", {})) == left_out
    for name in vds.data_vars:
        dtype, raw, shape = want[name]
        got = ds[name].values
        assert list(got.shape) == list(shape), name
        value = expected(dtype, raw, shape) if isinstance(raw, bytes) else raw
        if isinstance(value, bytes):
            assert got.tobytes() == value, name
        else:
            assert got.dtype == np.float32, name
            if dtype in WIDENED:
                assert same_floats(got, value), (name, dtype)
            else:
                assert got.tobytes() == np.ascontiguousarray(value).tobytes(), (name, dtype)


def test_quantized_chunk_lengths_are_the_raw_blocks():
    path = FIXTURES / "gguf/quants.gguf"
    vds, _ = read_virtual(path)
    reader = gguf.GGUFReader(path)
    for t in reader.tensors:
        manifest = vds[t.name].data.manifest
        assert int(manifest._lengths.sum()) == t.n_bytes, t.name
        assert vds[t.name].attrs["original_gguf_dtype"] == t.tensor_type.name
        assert vds[t.name].dtype == np.float32


def test_attrs_dims_and_skipped_variables():
    path = FIXTURES / "gguf/metadata.gguf"
    reader = gguf.GGUFReader(path)
    first = reader.tensors[0]
    dims = {first.name: [f"d{i}" for i in range(len(first.shape))]}
    parser = Parser(dimension_names=dims, skip_variables=[reader.tensors[-1].name])
    vds, ds = read_virtual(path, parser)
    assert vds.attrs["general.architecture"] == "llama"
    assert vds.attrs["t.u8"] == reader.fields["t.u8"].contents()
    assert vds[first.name].dims == tuple(dims[first.name])
    assert reader.tensors[-1].name not in vds
    st_vds, st_ds = read_virtual(ALL_DTYPES)
    attrs = dict(st_vds.attrs)
    assert set(attrs.pop("tensorcast_not_virtual")) == {"f4", 'odd "name"/ünï\\code'}
    assert attrs == safetensors.safe_open(ALL_DTYPES, "numpy").metadata()
    assert st_vds["bf16"].attrs["original_safetensors_dtype"] == "BF16"
    pt_vds, _ = read_virtual(PT / "dtypes.pt")
    assert pt_vds["bfloat16"].attrs["original_torch_dtype"] == "torch.bfloat16"
    assert all(k.startswith("original_") for v in pt_vds.data_vars.values() for k in v.attrs)


def test_loadable_variables_are_eager_and_equal():
    path = FIXTURES / "gguf/quants.gguf"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vds = vz.open_virtual_dataset(
            url_of(path), registry=local_registry(), parser=Parser(), loadable_variables=["q4_k", "q8_0"]
        )
    want = gguf_reference([path])
    for name in ("q4_k", "q8_0"):
        assert isinstance(vds[name].data, np.ndarray), name
        assert vds[name].values.tobytes() == want[name][1].tobytes(), name
    assert type(vds["q6_k"].data).__name__ == "ManifestArray"


def test_what_is_not_a_byte_range_is_named_and_loadable_on_request():
    path = PT / "deflated.pt"
    want = torch_recorded(path)
    with pytest.warns(UserWarning, match="not byte ranges"):
        Parser()(url_of(path), local_registry())
    registry = local_registry()
    vds = vz.open_virtual_dataset(
        url_of(path), registry=registry, parser=Parser(load=True), loadable_variables=list(want)
    )
    for name, (dtype, raw, shape) in want.items():
        value = expected(dtype, raw, shape)
        got = vds[name].values
        if isinstance(value, bytes):
            assert got.tobytes() == value, name
        else:
            assert same_floats(got, value), name


class CountingStore:
    """A store that records every range it is asked for."""

    def __init__(self, inner):
        self.inner = inner
        self.ranges = []

    def head(self, path):
        return self.inner.head(path)

    def get_range(self, path, *, start, end=None, length=None):
        self.ranges.append((path, start, end))
        return self.inner.get_range(path, start=start, end=end, length=length)

    async def get_range_async(self, path, *, start, end=None, length=None):
        self.ranges.append((path, start, end))
        return await self.inner.get_range_async(path, start=start, end=end, length=length)


def big_q8_0(tmp_path):
    """A 512 x 4096 Q8_0 tensor (2.2 MB of blocks) quantized and written by
    gguf-py."""
    rows, cols = 512, 4096
    values = np.random.default_rng(5).standard_normal((rows, cols)).astype(np.float32)
    blocks = gguf.quants.quantize(values, gguf.GGMLQuantizationType.Q8_0)
    path = tmp_path / "big.gguf"
    w = gguf.GGUFWriter(path, "llama")
    w.add_tensor("w", blocks, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path, blocks


def test_a_slice_of_a_quantized_tensor_fetches_only_its_block_rows(tmp_path):
    path, blocks = big_q8_0(tmp_path)
    store = CountingStore(LocalStore())
    registry = ObjectStoreRegistry({"file://": store})
    row_bytes = blocks.shape[1]
    parser = Parser(chunk_bytes=64 * row_bytes)  # chunks of 64 block-rows
    manifest_store = parser(url_of(path), registry)
    vds = vz.open_virtual_dataset(url_of(path), registry=registry, parser=parser)
    offsets = vds["w"].data.manifest._offsets.ravel()
    assert vds["w"].data.chunks == (64, 4096) and len(offsets) == 8
    ds = xr.open_zarr(manifest_store, zarr_format=3, consolidated=False)
    store.ranges.clear()
    part = ds["w"][130:140].values
    want = gguf.quants.dequantize(blocks, gguf.GGMLQuantizationType.Q8_0)
    assert part.tobytes() == want[130:140].tobytes()
    # Rows 130-139 lie in chunk 2 (rows 128-191): one range, its 64 rows.
    assert store.ranges == [(store.ranges[0][0], int(offsets[2]), int(offsets[2]) + 64 * row_bytes)]


class RangeHandler(SimpleHTTPRequestHandler):
    """A static server answering Range requests (http.server does not), and
    recording them."""

    log = []

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.send_file(head=True)

    def do_GET(self):
        self.send_file(head=False)

    def send_file(self, head):
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            self.send_error(404)
            return
        size = os.path.getsize(path)
        rng = self.headers.get("Range")
        RangeHandler.log.append((self.command, self.path, rng))
        start, end = 0, size - 1
        if rng and rng.startswith("bytes="):
            a, b = rng[6:].split("-")
            start = int(a)
            end = min(int(b), size - 1) if b else size - 1
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", '"v1"')
        self.send_header("Last-Modified", "Sat, 05 Dec 2026 00:00:00 GMT")
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if not head:
            with open(path, "rb") as f:
                f.seek(start)
                self.wfile.write(f.read(end - start + 1))


@pytest.fixture
def http_dir(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def fetched(log, name):
    total = 0
    for method, path, rng in log:
        if method == "GET" and path.endswith(name):
            assert rng, f"a whole-object GET of {path}"
            a, b = rng[6:].split("-")
            total += int(b) - int(a) + 1
    return total


def test_tensors_that_are_not_ranges_load_from_a_remote_file_too(http_dir):
    root, base = http_dir
    path = PT / "deflated.pt"
    (root / path.name).write_bytes(path.read_bytes())
    registry = ObjectStoreRegistry({base: HTTPStore.from_url(base, client_options={"allow_http": True})})
    want = torch_recorded(path)
    vds = vz.open_virtual_dataset(
        f"{base}/{path.name}", registry=registry, parser=Parser(load=True), loadable_variables=list(want)
    )
    for name, (dtype, raw, shape) in want.items():
        value = expected(dtype, raw, shape)
        got = vds[name].values
        assert list(got.shape) == list(shape), name
        assert got.tobytes() == value if isinstance(value, bytes) else same_floats(got, value), name
        assert "decoded into memory" in vds[name].attrs["tensorcast_loaded"]


def test_remote_over_http_fetches_headers_and_needed_ranges(http_dir):
    root, base = http_dir
    path, blocks = big_q8_0(root)
    row_bytes = blocks.shape[1]
    registry = ObjectStoreRegistry({base: HTTPStore.from_url(base, client_options={"allow_http": True})})
    RangeHandler.log.clear()
    parser = Parser(chunk_bytes=64 * row_bytes)
    store = parser(f"{base}/big.gguf", registry)
    header = fetched(RangeHandler.log, "big.gguf")
    # The header and a small read-ahead, not the 2.2 MB of blocks.
    assert header <= 4 << 20 and header < path.stat().st_size
    RangeHandler.log.clear()
    ds = xr.open_zarr(store, zarr_format=3, consolidated=False)
    part = ds["w"][0:10].values
    want = gguf.quants.dequantize(blocks, gguf.GGMLQuantizationType.Q8_0)
    assert part.tobytes() == want[0:10].tobytes()
    assert fetched(RangeHandler.log, "big.gguf") == 64 * row_bytes
    # A sharded safetensors checkpoint over HTTP: index and shards resolved
    # through the same store.
    for shard in SHARDED.parent.iterdir():
        (root / shard.name).write_bytes(shard.read_bytes())
    store = Parser()(f"{base}/{SHARDED.name}", registry)
    ds = xr.open_zarr(store, zarr_format=3, consolidated=False)
    want = {k: v for s in sorted(SHARDED.parent.glob("*.safetensors")) for k, v in st_reference(s).items()}
    assert set(ds.data_vars) == set(want)
    for name, (dtype, raw, shape) in want.items():
        value = expected(dtype, raw, shape)
        got = ds[name].values
        assert got.tobytes() == value if isinstance(value, bytes) else same_floats(got, value), name


def test_kerchunk_round_trip_decodes_in_a_process_that_never_imports_tensorcast(tmp_path):
    path = FIXTURES / "gguf/quants.gguf"
    vds, _ = read_virtual(path)
    refs = tmp_path / "refs.json"
    vds.vz.to_kerchunk(str(refs), format="json")
    code = f"""
import sys, json
import numpy as np, xarray as xr
import virtualizarr as vz
from obspec_utils.registry import ObjectStoreRegistry
from obstore.store import LocalStore
from virtualizarr.parsers import KerchunkJSONParser
# Nothing here imports tensorcast: zarr finds the codec by its entry point.
assert "tensorcast" not in sys.modules
registry = ObjectStoreRegistry({{"file://": LocalStore()}})
store = KerchunkJSONParser()({refs.as_uri()!r}, registry)
ds = xr.open_zarr(store, zarr_format=3, consolidated=False)
out = {{k: ds[k].values.tobytes().hex() for k in ds.data_vars}}
assert "tensorcast.zarr_codec" in sys.modules
json.dump(out, sys.stdout)
"""
    env = dict(os.environ)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    got = json.loads(result.stdout)
    want = gguf_reference([path])
    assert set(got) == set(want)
    for name, (_, value, _) in want.items():
        assert bytes.fromhex(got[name]) == value.tobytes(), name


def test_icechunk_round_trip_decodes_in_a_fresh_process(tmp_path):
    icechunk = pytest.importorskip("icechunk")
    path = FIXTURES / "gguf/quants.gguf"
    vds, _ = read_virtual(path)
    prefix = str(FIXTURES) + "/"
    storage = icechunk.local_filesystem_storage(str(tmp_path / "repo"))
    config = icechunk.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        icechunk.VirtualChunkContainer("file://" + prefix, icechunk.local_filesystem_store(prefix))
    )
    session = icechunk.Repository.create(storage, config).writable_session("main")
    vds.vz.to_icechunk(session.store)
    session.commit("virtual GGUF")
    code = f"""
import sys, json
import icechunk, xarray as xr
assert "tensorcast" not in sys.modules
storage = icechunk.local_filesystem_storage({str(tmp_path / "repo")!r})
repo = icechunk.Repository.open(storage, authorize_virtual_chunk_access={{{"file://" + prefix!r}: None}})
ds = xr.open_zarr(repo.readonly_session("main").store, consolidated=False, zarr_format=3)
with open("values.json", "w") as f:  # icechunk logs on stdout
    json.dump({{k: ds[k].values.tobytes().hex() for k in ds.data_vars}}, f)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    got = json.loads((tmp_path / "values.json").read_text())
    want = gguf_reference([path])
    assert set(got) == set(want)
    for name, (_, value, _) in want.items():
        assert bytes.fromhex(got[name]) == value.tobytes(), name


def readme_guide():
    """The README's VirtualiZarr guide block, as written."""
    text = (FIXTURES.parent / "README.md").read_text()
    start = text.index("<!-- guide: virtualizarr")
    block = text[start:].split("```python\n", 1)[1].split("```", 1)[0]
    return block


def moto_or_skip(tmp_path):
    """moto's S3 server on loopback (TENSORCAST_MOTO_SERVER, which CI sets)."""
    import shutil
    import socket
    import time
    import urllib.request

    program = os.environ.get("TENSORCAST_MOTO_SERVER") or shutil.which("moto_server")
    if not program:
        assert "CI" not in os.environ, "CI must run the S3 guide (set TENSORCAST_MOTO_SERVER)"
        pytest.skip("moto_server not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([program, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    while True:  # ready when it answers; fails only if it exits
        try:
            urllib.request.urlopen(endpoint + "/", timeout=30).read()
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("moto_server exited at start")
            time.sleep(0.05)
    return proc, endpoint


def guide_model(path):
    """The guide's model: weight, bias, two small tensors and a large one
    (bf16, as real checkpoints hold), written by safetensors-py."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(7)
    tensors = {
        "weight": rng.standard_normal((16, 8)).astype(np.float32),
        "bias": rng.standard_normal(8).astype(np.float32),
        "small_tensor1": np.arange(4, dtype=np.int64),
        "small_tensor2": np.ones(3, np.float16),
        "large_tensor": rng.standard_normal((256, 512)).astype(ml_dtypes.bfloat16),
    }
    save_file(tensors, str(path), metadata={"format": "pt", "source": "guide"})
    return tensors


def test_the_readme_guide_runs_as_written(tmp_path, http_dir):
    import urllib.request

    work = tmp_path / "work"
    work.mkdir()
    tensors = guide_model(work / "model.safetensors")
    model = (work / "model.safetensors").read_bytes()
    (work / "model_weights.safetensors").write_bytes(model)
    root, base = http_dir
    repo = root / "openai-community/gpt2/resolve/main"
    repo.mkdir(parents=True)
    (repo / "model.safetensors").write_bytes(model)
    proc, endpoint = moto_or_skip(tmp_path)
    try:
        for path, body in [("/my-bucket", b""), ("/my-bucket/model.safetensors", model)]:
            request = urllib.request.Request(
                endpoint + path, data=body, method="PUT", headers={"Content-Type": "application/octet-stream"}
            )
            urllib.request.urlopen(request).read()
        env = dict(os.environ, HF_ENDPOINT=base, AWS_ENDPOINT_URL=endpoint, AWS_ALLOW_HTTP="true")
        result = subprocess.run([sys.executable, "-c", readme_guide()], capture_output=True, text=True, cwd=work, env=env)
    finally:
        proc.kill()
        proc.wait()
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[:2] == ["('input_dims', 'output_dims')", "('output_dims',)"]
    assert ast.literal_eval(lines[2]) == {"format": "pt", "source": "guide"}
    assert ast.literal_eval(lines[3]) == {"original_safetensors_dtype": "F32"}
    assert lines[4] == "Original dtype: F32"
    # The persisted refs: the S3 object's variables, equal to the tensors.
    refs_path = work / "refs.json"
    refs = json.loads(refs_path.read_text())["refs"]
    assert refs["weight/0.0"][0] == "s3://my-bucket/model.safetensors"
    # And the eager variables are numpy arrays equal to the file's, the
    # large one virtual (checked here, in this process, the guide's way).
    registry = local_registry()
    vds = vz.open_virtual_dataset(
        url_of(work / "model_weights.safetensors"),
        registry=registry,
        parser=Parser(),
        loadable_variables=["small_tensor1", "small_tensor2"],
    )
    for name in ("small_tensor1", "small_tensor2"):
        assert isinstance(vds[name].data, np.ndarray)
        assert vds[name].values.tobytes() == tensors[name].tobytes()
    assert type(vds["large_tensor"].data).__name__ == "ManifestArray"
    store = Parser()(url_of(work / "model.safetensors"), registry)
    large = xr.open_zarr(store, zarr_format=3, consolidated=False)["large_tensor"].values
    assert large.tobytes() == tensors["large_tensor"].astype(np.float32).tobytes()


def test_dimension_names_are_checked_as_xarray_reads_them():
    src = FIXTURES / "safetensors/cast/source.safetensors"
    # f32 is 16 x 64, randn_f32 64 x 64: "a" cannot be both 16 and 64 long.
    parser = Parser(dimension_names={"f32": ["a", "b"], "randn_f32": ["a", "c"]})
    with pytest.raises(ValueError, match="dimension 'a' is 16 long in 'f32' and 64 in 'randn_f32'"):
        parser(url_of(src), local_registry())
    with pytest.raises(ValueError, match="name 2 dimensions; the tensor has 1"):
        Parser(dimension_names={"mask": ["x", "y"]})(url_of(src), local_registry())
