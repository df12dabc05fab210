"""Every reader's fixtures give the reference library's arrays, bit for bit."""

import json

import gguf
import numpy as np
import pytest
import safetensors
import safetensors.numpy

import tensorcast
from conftest import FIXTURES, assert_same

EXTENDED = {"BF16", "F8_E4M3", "F8_E5M2", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "F8_E8M0"}
PACKED = {"F4", "F6_E2M3", "F6_E3M2"}

SAFETENSORS = [
    FIXTURES / "safetensors/valid/all_dtypes.safetensors",
    FIXTURES / "safetensors/valid/sharded/model-00002-of-00003.safetensors",
    *sorted((FIXTURES / "safetensors/cast").glob("*.safetensors")),
    FIXTURES / "model/llama/hf/model.safetensors",
]


def header(path):
    """The safetensors header as safetensors-py's own metadata reading sees it."""
    with safetensors.safe_open(path, framework="numpy") as f:
        return f.metadata(), list(f.keys())


def st_bytes(path):
    """Every tensor's dtype, shape and bytes as safetensors' own deserializer gives them."""
    return dict(safetensors.deserialize(path.read_bytes()))


@pytest.mark.parametrize("path", SAFETENSORS, ids=lambda p: p.name)
def test_safetensors_equals_safetensors_py(path):
    ref_meta, ref_keys = header(path)
    raw = st_bytes(path)
    with tensorcast.safe_open(path) as f, safetensors.safe_open(path, framework="numpy") as ref:
        assert sorted(f.keys()) == sorted(ref_keys)
        assert f.metadata() == ref_meta
        compared = 0
        for name in f.keys():
            dtype = f.get_slice(name).get_dtype()
            assert dtype == ref.get_slice(name).get_dtype()
            if dtype in PACKED:
                continue
            ours = f.get_tensor(name)
            if dtype in EXTENDED:
                # safetensors-py's numpy route has no fp8 types: the bytes its
                # deserializer gives are the reference, viewed through ml_dtypes.
                assert ours.dtype.name.startswith(("bfloat16", "float8"))
                assert ours.tobytes() == raw[name]["data"], name
                assert list(ours.shape) == raw[name]["shape"]
            else:
                assert_same(ours, ref.get_tensor(name), name)
            compared += 1
        assert compared == len([k for k in ref_keys if raw[k]["dtype"] not in PACKED])


def test_extended_dtypes_equal_the_recorded_reference():
    """bf16/fp8 as ml_dtypes arrays whose bytes are the ones torch wrote."""
    expected = json.loads((FIXTURES / "safetensors/valid/all_dtypes.expected.json").read_text())
    with tensorcast.safe_open(FIXTURES / "safetensors/valid/all_dtypes.safetensors") as f:
        seen = 0
        for t in expected["tensors"]:
            if t["dtype"] in EXTENDED:
                a = f.get_tensor(t["name"])
                assert list(a.shape) == t["shape"]
                assert a.tobytes().hex() == t["hex"], t["name"]
                seen += 1
        assert seen == 7


def test_sharded_index_is_one_file():
    index = FIXTURES / "safetensors/valid/sharded/model.safetensors.index.json"
    weight_map = json.loads(index.read_text())["weight_map"]
    with tensorcast.safe_open(index) as f:
        assert sorted(f.keys()) == sorted(weight_map)
        for name, shard in weight_map.items():
            ref = safetensors.numpy.load_file(index.parent / shard)[name]
            assert_same(f.get_tensor(name), ref, name)


def test_model_folder_opens_its_weights():
    folder = FIXTURES / "model/llama/hf"
    ours = tensorcast.load_file(folder)
    ref = safetensors.numpy.load_file(folder / "model.safetensors")
    assert list(ours) == list(ref)
    for name in ref:
        assert_same(ours[name], ref[name], name)


def gguf_ref(t):
    """A tensor's values as gguf-py gives them: blocks through its
    dequantizer, plain types as its reader maps them (byte order included)."""
    if t.tensor_type == gguf.GGMLQuantizationType.BF16:
        return None
    if gguf.GGML_QUANT_SIZES[t.tensor_type][0] > 1:
        return gguf.quants.dequantize(t.data, t.tensor_type)
    return t.data


# gguf-py reads GGUF v2 and v3 only; it dequantizes every block type but these.
NO_GGUF_PY = {"metadata_v1.gguf"}
NO_DEQUANTIZER = {"no_reference.gguf"}


def gguf_files():
    files = sorted(p for p in (FIXTURES / "gguf").glob("*.gguf") if p.name not in NO_GGUF_PY)
    files += sorted((FIXTURES / "model").glob("*/reference-*.gguf"))
    return files


def gguf_value(field):
    """A GGUF key's value as gguf-py decodes it."""
    return field.contents()


@pytest.mark.parametrize("path", gguf_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_gguf_equals_gguf_py(path):
    reader = gguf.GGUFReader(path)
    with tensorcast.safe_open(path) as f, tensorcast.safe_open(path, dequantize=False) as raw:
        assert f.keys() == [t.name for t in reader.tensors]
        for t in reader.tensors:
            little = np.ascontiguousarray(t.data).astype(t.data.dtype.newbyteorder("<"))
            assert raw.get_tensor(t.name).tobytes() == little.tobytes(), t.name
            if path.name in NO_DEQUANTIZER:
                with pytest.raises(tensorcast.TensorcastError, match="no reference dequantizer"):
                    f.get_tensor(t.name)
                continue
            ref = gguf_ref(t)
            if ref is not None:
                assert_same(f.get_tensor(t.name), ref, t.name)
            elif t.tensor_type == gguf.GGMLQuantizationType.BF16:
                assert f.get_tensor(t.name).dtype.name == "bfloat16"
        meta = f.metadata()
        for key, field in reader.fields.items():
            if key.startswith("GGUF."):
                continue
            ours, ref = meta[key], gguf_value(field)
            if isinstance(ref, float):
                assert np.float32(ours) == np.float32(ref) or (np.isnan(ours) and np.isnan(ref)), key
            elif isinstance(ref, list) and ref and isinstance(ref[0], float):
                assert np.array_equal(np.float64(ours), np.float64(ref), equal_nan=True), key
            else:
                assert ours == ref, key


def test_split_gguf_is_one_model():
    first = FIXTURES / "gguf/split/model-00001-of-00003.gguf"
    names = []
    refs = {}
    for part in sorted(first.parent.glob("*.gguf")):
        for t in gguf.GGUFReader(part).tensors:
            names.append(t.name)
            refs[t.name] = gguf_ref(t)
    with tensorcast.safe_open(first) as f:
        assert f.keys() == names
        for name in names:
            assert_same(f.get_tensor(name), refs[name], name)


NUMPY = sorted((FIXTURES / "numpy").glob("*.np[yz]"))


@pytest.mark.parametrize("path", NUMPY, ids=lambda p: p.name)
def test_numpy_equals_numpy(path):
    ref = np.load(path, allow_pickle=False)
    refs = {path.stem: ref} if path.suffix == ".npy" else {k: ref[k] for k in ref.files}
    ours = tensorcast.load_file(path)
    assert sorted(ours) == sorted(refs)
    for name, array in refs.items():
        assert_same(ours[name], array, name)


def expected_pytorch():
    return sorted((FIXTURES / "pytorch/valid").glob("*.expected.json"))


@pytest.mark.parametrize("expected", expected_pytorch(), ids=lambda p: p.name.replace(".expected.json", ""))
def test_pytorch_equals_what_torch_recorded(expected):
    """Values torch gave when the fixture was generated (torch itself: test_torch.py)."""
    spec = json.loads(expected.read_text())
    path = expected.with_name(expected.name.replace(".expected.json", ""))
    # The CLI flags the fixture was recorded with, as keyword options.
    options, flags = {}, list(spec.get("flags", []))
    while flags:
        flag = flags.pop(0)[2:].replace("-", "_")
        options[flag] = flags.pop(0) if flag in ("select", "strip_prefix") else True
    with tensorcast.safe_open(path, **options) as f:
        assert sorted(f.keys()) == sorted(spec["tensors"])
        for name, t in spec["tensors"].items():
            if t["dtype"] in PACKED:
                continue
            a = f.get_tensor(name)
            assert list(a.shape) == t["shape"], name
            assert a.tobytes().hex() == t["hex"], name


TPACK_SOURCES = {
    "source.tpack": [FIXTURES / "safetensors/cast/source.safetensors"],
    "metadata.tpack": [FIXTURES / "gguf/metadata.gguf"],
    "appended.tpack": [
        FIXTURES / "safetensors/cast/source.safetensors",
        FIXTURES / "numpy/u64.npy",
        FIXTURES / "gguf/metadata.gguf",
    ],
}


@pytest.mark.parametrize("name", sorted(TPACK_SOURCES))
def test_tpack_equals_its_sources(name):
    ours = tensorcast.load_file(FIXTURES / "tpack" / name)
    refs = {}
    for src in TPACK_SOURCES[name]:
        if src.suffix == ".safetensors":
            refs.update({k: v["data"] for k, v in st_bytes(src).items()})
        elif src.suffix == ".npy":
            refs[src.stem] = np.load(src)
        else:
            refs.update({t.name: gguf_ref(t) for t in gguf.GGUFReader(src).tensors})
    assert sorted(ours) == sorted(refs)
    for k, v in refs.items():
        if isinstance(v, (bytes, bytearray)):
            assert ours[k].tobytes() == v, k
        else:
            assert_same(ours[k], v, k)


def test_tpack_spec_files_equal_the_independent_writer():
    """Files written by the second tpack implementation (spec/generate.py)."""
    spec = json.loads((FIXTURES / "tpack/spec/expected.json").read_text())
    for file, want in spec.items():
        # Sparse entries (spec §2.2) read as their dense form, which the
        # other implementation recorded as dense_hex.
        with tensorcast.safe_open(FIXTURES / "tpack/spec" / file, dequantize=False, densify=True) as f:
            assert f.keys() == [t["name"] for t in want["tensors"]], file
            for t in want["tensors"]:
                if t["dtype"] in PACKED:
                    continue
                hexed = t.get("dense_hex", t["hex"])
                assert f.get_tensor(t["name"]).tobytes().hex() == hexed, (file, t["name"])


def test_metadata_is_typed_for_gguf_and_strings_for_safetensors():
    with tensorcast.safe_open(FIXTURES / "gguf/metadata.gguf") as f:
        meta = f.metadata()
    assert meta["t.u8"] == 200 and meta["t.i8"] == -100 and meta["general.architecture"] == "llama"
    with tensorcast.safe_open(FIXTURES / "safetensors/valid/all_dtypes.safetensors") as f:
        assert all(isinstance(v, str) for v in f.metadata().values())


def test_sparse_tensors_list_refuse_and_densify_like_torch(tmp_path):
    """Sparse tensors are listed; reading one asks for densify=True, which
    gives torch's to_dense() (recorded beside the fixture); kept sparse
    through tpack they densify the same."""
    src = FIXTURES / "pytorch/valid/sparse.pt"
    exp = json.loads((FIXTURES / "pytorch/valid/sparse.pt.expected.json").read_text())["tensors"]
    with tensorcast.safe_open(src) as f:
        assert sorted(f.keys()) == sorted(exp)
        with pytest.raises(tensorcast.TensorcastError, match="densify=True"):
            f.get_tensor("coo")
        assert f.get_tensor("plain").tobytes().hex() == exp["plain"]["hex"]
    out = tmp_path / "s.tpack"
    tensorcast.convert(src, out)
    for path in (src, out):
        with tensorcast.safe_open(path, densify=True) as f:
            for name, want in exp.items():
                t = f.get_tensor(name)
                assert list(t.shape) == want["shape"], name
                assert t.tobytes().hex() == want["hex"], name


def test_a_tensor_of_a_type_without_equivalent_is_listed_not_read():
    """torch's qint8 (fixtures/pytorch/hostile/qint8.pt): keys() lists it,
    get_tensor refuses it by rule, naming the tensor."""
    with tensorcast.safe_open(FIXTURES / "pytorch/hostile/qint8.pt") as f:
        assert f.keys() == ["w"]
        with pytest.raises(tensorcast.TensorcastError) as e:
            f.get_tensor("w")
    assert e.value.rule == "unsupported-dtype" and e.value.tensor == "w", e.value


def test_hdf5_and_keras_read_as_h5py_wrote_them():
    """HDF5 datasets (h5py) and a Keras archive through safe_open, equal to
    the arrays the fixture generator recorded with safetensors-py."""
    for name in ("latest.h5", "model.weights.h5", "model.keras"):
        path = FIXTURES / "hdf5" / name
        want = safetensors.safe_open(str(path) + ".expected.safetensors", "numpy")
        with tensorcast.safe_open(path, framework="numpy") as f:
            for key in want.keys():
                assert_same(f.get_tensor(key), want.get_tensor(key), f"{name}: {key}")
            if name == "model.keras":
                assert "keras.config" in f.metadata()
