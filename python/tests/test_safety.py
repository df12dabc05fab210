"""Errors name file and rule; nothing in a file runs; headers cost no data reads."""

import json
import os
import pickle
import shutil
import struct
import zipfile

import gguf
import numpy as np
import pytest

import tensorcast
from conftest import FIXTURES


def test_hostile_pickle_names_the_global_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    payload = f"cposix\nsystem\n(S'touch {marker}'\ntR.".encode()
    for name, write in {
        "bare.pkl": lambda p: p.write_bytes(payload),
        "zip.pt": lambda p: zipfile.ZipFile(p, "w").writestr("archive/data.pkl", payload),
    }.items():
        path = tmp_path / name
        write(path)
        with pytest.raises(tensorcast.TensorcastError) as e:
            tensorcast.load_file(path, framework="numpy")
        assert "posix.system" in str(e.value) and str(path) in str(e.value)
        assert e.value.rule == "forbidden-global" and e.value.format == "pytorch"
        assert isinstance(e.value, ValueError)
        assert not marker.exists()


@pytest.mark.parametrize("name", json.loads((FIXTURES / "pytorch/hostile/manifest.json").read_text()))
def test_every_hostile_fixture_is_refused_by_rule(name):
    case = json.loads((FIXTURES / "pytorch/hostile/manifest.json").read_text())[name]
    options = {a[2:].replace("-", "_"): True for a in case["args"]}
    with pytest.raises(tensorcast.TensorcastError) as e:
        tensorcast.load_file(FIXTURES / "pytorch/hostile" / name, **options)
    assert e.value.rule == case["rule"], str(e.value)
    assert case["mentions"] in str(e.value)


def test_truncated_file_names_file_and_rule(tmp_path):
    src = FIXTURES / "safetensors/valid/all_dtypes.safetensors"
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(src.read_bytes()[:-10])
    with pytest.raises(tensorcast.TensorcastError) as e:
        tensorcast.safe_open(cut)
    assert e.value.path == str(cut) and e.value.format == "safetensors" and e.value.rule
    assert str(cut) in str(e.value) and f"[rule safetensors/{e.value.rule}]" in str(e.value)


def test_missing_file_is_an_io_error_with_the_path(tmp_path):
    with pytest.raises(tensorcast.TensorcastError) as e:
        tensorcast.safe_open(tmp_path / "nope.gguf")
    assert e.value.kind == "io" and e.value.path == str(tmp_path / "nope.gguf")


def test_unknown_tensor_is_a_key_error_and_a_closed_file_refuses():
    with tensorcast.safe_open(FIXTURES / "numpy/all.npz") as f:
        with pytest.raises(KeyError):
            f.get_tensor("missing")
    with pytest.raises(ValueError, match="closed"):
        f.keys()


def rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def sparse_safetensors(path, count, each):
    """A safetensors file of `count` f32 tensors of `each` bytes, data left as a hole."""
    header = {f"t.{i}": {"dtype": "F32", "shape": [each // 4], "data_offsets": [i * each, (i + 1) * each]} for i in range(count)}
    header["__metadata__"] = {"note": "sparse"}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        f.truncate(8 + len(text) + count * each)


def test_keys_and_metadata_of_10k_tensors_read_no_tensor_data(tmp_path):
    """10,000 tensors of 64 KiB (625 MiB of data as a file hole): opening,
    keys, metadata and one tensor's slice map but never touch the rest, so
    resident memory grows by far less than the data (measured via /proc)."""
    path = tmp_path / "many.safetensors"
    sparse_safetensors(path, 10_000, 64 << 10)
    before = rss_kib()
    with tensorcast.safe_open(path) as f:
        keys = f.keys()
        meta = f.metadata()
        shape = f.get_slice("t.9999").get_shape()
        row = f.get_slice("t.5000")[:4]
        info = tensorcast.inspect(path)
        grown_mib = (rss_kib() - before) / 1024
    assert len(keys) == 10_000 and keys[0] == "t.0" and meta == {"note": "sparse"}
    assert shape == [16384] and row.tolist() == [0, 0, 0, 0]
    assert len(info["tensors"]) == 10_000
    assert grown_mib < 64, f"resident memory grew {grown_mib:.0f} MiB for 625 MiB of data"


def test_keys_of_a_10k_tensor_gguf_read_no_tensor_data(tmp_path):
    path = tmp_path / "many.gguf"
    w = gguf.GGUFWriter(path, "llama")
    each = 64 << 10
    for i in range(10_000):
        w.add_tensor_info(f"t.{i}", (each // 4,), np.dtype(np.float32), each)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    end = path.stat().st_size
    aligned = end + (-end % 32)
    os.truncate(path, aligned + 10_000 * each)
    before = rss_kib()
    with tensorcast.safe_open(path) as f:
        keys = f.keys()
        arch = f.metadata()["general.architecture"]
        grown_mib = (rss_kib() - before) / 1024
    assert len(keys) == 10_000 and arch == "llama"
    assert grown_mib < 64, f"resident memory grew {grown_mib:.0f} MiB"


def test_raw_tensors_are_read_only_views_of_the_map_and_outlive_the_handle():
    path = FIXTURES / "safetensors/cast/source.safetensors"
    with tensorcast.safe_open(path) as f:
        name = next(k for k in f.keys() if f.get_slice(k).get_dtype() == "F32")
        a = f.get_tensor(name)
    assert not a.flags.writeable and not a.flags.owndata
    assert type(a.base).__name__ == "RawTensor"
    with pytest.raises(ValueError):
        a[...] = 0
    # The handle is closed; the array keeps the map alive.
    b = tensorcast.load_file(path)[name]
    assert a.tobytes() == b.tobytes()


def test_decoded_tensors_are_writable_arrays_of_their_own():
    with tensorcast.safe_open(FIXTURES / "gguf/quants.gguf") as f:
        a = f.get_tensor(f.keys()[0])
    assert a.flags.writeable and a.dtype == np.float32
    a[...] = 1


def test_slices_equal_the_full_tensor_sliced():
    with tensorcast.safe_open(FIXTURES / "gguf/quants.gguf") as f:
        for name in f.keys()[:5]:
            full = f.get_tensor(name)
            s = f.get_slice(name)
            assert s.get_shape() == list(full.shape)
            assert np.array_equal(s[1:3], full[1:3]) and np.array_equal(s[:, ::7], full[:, ::7])


def test_bf16_without_ml_dtypes_names_the_way_out(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "ml_dtypes", None)  # import fails
    with tensorcast.safe_open(FIXTURES / "safetensors/valid/all_dtypes.safetensors") as f:
        with pytest.raises(tensorcast.TensorcastError, match="install ml_dtypes.*framework='pt'") as e:
            f.get_tensor("bf16")
        assert e.value.kind == "usage"
        assert f.get_tensor("f32").dtype == np.float32
