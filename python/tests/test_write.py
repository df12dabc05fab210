"""save_file's outputs read back equal by the reference libraries; convert."""

import gguf
import ml_dtypes
import numpy as np
import pytest
import safetensors
import safetensors.numpy

import tensorcast
from conftest import FIXTURES, assert_same


def arrays():
    rng = np.random.default_rng(7)
    return {
        "f32": rng.standard_normal((4, 33)).astype(np.float32),
        "f16": rng.standard_normal((3, 5)).astype(np.float16),
        "f64": rng.standard_normal(7),
        "i8": rng.integers(-128, 127, (2, 3), dtype=np.int8),
        "i32": rng.integers(-(2**31), 2**31 - 1, (5,), dtype=np.int32),
        "i64": np.array(-5, dtype=np.int64),
        "u8": rng.integers(0, 255, (6,), dtype=np.uint8),
        "bool": np.array([True, False, True]),
        "empty": np.zeros((0, 3), np.float32),
        "fortran": np.asfortranarray(rng.standard_normal((3, 4)).astype(np.float32)),
        "big_endian": np.arange(6, dtype=">i4").reshape(2, 3),
    }


def test_safetensors_output_is_read_equal_by_safetensors_py(tmp_path):
    src = arrays()
    src["bf16"] = np.array([1.5, -2.0, 3.25], dtype=ml_dtypes.bfloat16)
    src["f8"] = np.array([0.5, -1.0], dtype=ml_dtypes.float8_e4m3fn)
    out = tmp_path / "x.safetensors"
    tensorcast.save_file(src, out, metadata={"format": "np", "note": "ünï"})
    raw = dict(safetensors.deserialize(out.read_bytes()))
    with safetensors.safe_open(out, framework="numpy") as f:
        assert f.metadata() == {"format": "np", "note": "ünï"}
        assert sorted(f.keys()) == sorted(src)
        for name, a in src.items():
            if name in ("bf16", "f8"):
                assert raw[name]["dtype"] == {"bf16": "BF16", "f8": "F8_E4M3"}[name]
                assert raw[name]["data"] == a.tobytes()
            else:
                assert_same(f.get_tensor(name), a, name)


def test_gguf_output_is_read_equal_by_gguf_py(tmp_path):
    src = {k: v for k, v in arrays().items() if k not in ("bool", "u8", "empty")}
    out = tmp_path / "x.gguf"
    meta = {"general.architecture": "llama", "t.int": 7, "t.float": 0.5, "t.flag": True, "t.list": [1, 2, 3], "t.strs": ["a", "b"]}
    tensorcast.save_file(src, out, metadata=meta)
    reader = gguf.GGUFReader(out)
    got = {t.name: t.data for t in reader.tensors}
    assert sorted(got) == sorted(src)
    for name, a in src.items():
        ref = np.asarray(a)
        ours = got[name].reshape(ref.shape) if ref.ndim else got[name].reshape(())
        assert_same(ours.copy(), ref.astype(ref.dtype.newbyteorder("=")), name)
    fields = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    assert fields == meta


def test_quantize_matches_gguf_py(tmp_path):
    w = np.random.default_rng(1).standard_normal((8, 64)).astype(np.float32)
    out = tmp_path / "q.gguf"
    tensorcast.save_file({"blk.0.ffn_up.weight": w}, out, quantize="Q8_0")
    t = gguf.GGUFReader(out).tensors[0]
    assert t.tensor_type == gguf.GGMLQuantizationType.Q8_0
    ref = gguf.quants.quantize(w, gguf.GGMLQuantizationType.Q8_0)
    assert t.data.tobytes() == ref.tobytes()


def test_convert_quantize_takes_llama_quantize_file_types(tmp_path):
    """quantize="Q4_K_M" (any case) writes llama-quantize's file: the
    reference's sha256 for this input is recorded in
    fixtures/quant/filetypes/references.json."""
    import hashlib
    import json

    src = FIXTURES / "quant/filetypes/probe-llama.gguf"
    refs = json.loads((FIXTURES / "quant/filetypes/references.json").read_text())
    want = refs["fixtures/quant/filetypes/probe-llama.gguf"]["outputs"]["Q4_K_M"]
    out = tmp_path / "q.gguf"
    tensorcast.convert(src, out, quantize="q4_k_m")
    assert hashlib.sha256(out.read_bytes()).hexdigest() == want["sha256"]
    types = " ".join(t.tensor_type.name for t in gguf.GGUFReader(out).tensors)
    assert types == want["types"]
    with pytest.raises(tensorcast.TensorcastError, match="llama-quantize type"):
        tensorcast.convert(src, tmp_path / "x.gguf", quantize="Q4_Q")


def test_npz_output_is_read_equal_by_numpy(tmp_path):
    src = arrays()
    out = tmp_path / "x.npz"
    tensorcast.save_file(src, out)
    with np.load(out, allow_pickle=False) as ref:
        assert sorted(ref.files) == sorted(src)
        for name, a in src.items():
            assert_same(ref[name], a, name)


def test_tpack_output_reads_back_equal_and_verifies(tmp_path):
    src = arrays()
    out = tmp_path / "x.tpack"
    tensorcast.save_file(src, out, metadata={"k": [1.5, 2.5]}, compress=9)
    assert tensorcast.verify(out) == []
    with tensorcast.safe_open(out) as f:
        assert f.metadata() == {"k": [1.5, 2.5]}
        for name, a in src.items():
            assert_same(f.get_tensor(name), a, name)


def test_save_file_replaces_unless_told_not_to(tmp_path):
    out = tmp_path / "x.safetensors"
    tensorcast.save_file({"a": np.zeros(2, np.float32)}, out)
    tensorcast.save_file({"b": np.ones(3, np.float32)}, out)
    assert list(safetensors.numpy.load_file(out)) == ["b"]
    with pytest.raises(tensorcast.TensorcastError, match="already exists") as e:
        tensorcast.save_file({"c": np.ones(1, np.float32)}, out, force=False)
    assert e.value.kind == "usage"


def test_convert_takes_the_cli_options(tmp_path):
    src = FIXTURES / "gguf/quants.gguf"
    out = tmp_path / "q.safetensors"
    seen = []
    report = tensorcast.convert(src, out, include="q*_k", dtype="f32", progress=lambda d, t: seen.append((d, t)))
    reader = gguf.GGUFReader(src)
    wanted = {t.name: gguf.quants.dequantize(t.data, t.tensor_type) for t in reader.tensors if t.name.endswith("_k") and t.name.startswith("q")}
    ours = safetensors.numpy.load_file(out)
    assert report["tensors"] == len(wanted) == len(ours) > 0
    for name, ref in wanted.items():
        assert_same(ours[name], ref, name)
    assert seen[0][0] == 0 and seen[-1][0] == seen[-1][1] == sum(a.nbytes for a in ours.values())
    with pytest.raises(TypeError, match="unexpected option 'colour'"):
        tensorcast.convert(src, tmp_path / "y.safetensors", colour="red")
    with pytest.raises(tensorcast.TensorcastError, match="already exists"):
        tensorcast.convert(src, out)


def test_convert_model_folder_to_gguf_is_llama_cpps_file(tmp_path):
    """The model-aware route from Python: byte-identical to convert_hf_to_gguf.py."""
    out = tmp_path / "m.gguf"
    tensorcast.convert(FIXTURES / "model/llama/hf", out)
    assert out.read_bytes() == (FIXTURES / "model/llama/reference-f32.gguf").read_bytes()


def test_unsupported_arrays_raise_value_error_as_safetensors_does(tmp_path):
    """An object array is refused with ValueError (safetensors' error type;
    TensorcastError is one too), naming the tensor, before anything is written."""
    out = tmp_path / "o.safetensors"
    with pytest.raises(ValueError, match="tensor 'o'"):
        tensorcast.save_file({"o": np.array([object()], dtype=object)}, out)
    assert not out.exists()


def test_metadata_of_a_file_without_any_is_none_as_in_safetensors(tmp_path):
    out = tmp_path / "m.safetensors"
    tensorcast.save_file({"a": np.zeros(2, np.float32)}, out)
    with tensorcast.safe_open(out) as f, safetensors.safe_open(out, framework="numpy") as ref:
        assert ref.metadata() is None
        assert f.metadata() is None
    tensorcast.save_file({"a": np.zeros(2, np.float32)}, out, metadata={"k": "v"})
    with tensorcast.safe_open(out) as f:
        assert f.metadata() == {"k": "v"}
