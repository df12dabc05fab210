"""tensorcast.merge against mergekit 0.1.5's outputs (fixtures/merge)."""
import os

import numpy as np
import pytest
from safetensors.numpy import load_file

import tensorcast

FIX = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "merge")
CASES = os.path.join(FIX, "cases")


@pytest.fixture
def in_cases(monkeypatch):
    # mergekit resolves a configuration's model paths from the working directory.
    monkeypatch.chdir(CASES)


def same(a, b):
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert a[k].tobytes() == b[k].tobytes(), k


def test_a_yaml_file_merges_as_mergekit_does(in_cases, tmp_path):
    out = tmp_path / "m.safetensors"
    assert tensorcast.merge("task_arithmetic.float32.yml", out) == {"tensors": 21}
    same(load_file(out), load_file("task_arithmetic.float32.safetensors"))


def test_a_list_of_models_with_keywords_is_the_same_configuration(in_cases, tmp_path):
    out = tmp_path / "m.safetensors"
    tensorcast.merge(
        ["../ft1", "../ft2"],
        out,
        method="ties",
        base="../../model/llama/hf",
        weight=[0.6, 0.5],
        density=[0.5, 0.7],
        dtype="float32",
    )
    same(load_file(out), load_file("ties.float32.safetensors"))
    meta = tensorcast.safe_open(str(out), "numpy").metadata()
    assert meta["merge_method"] == "ties"


def test_a_dict_config_and_refusals(in_cases, tmp_path):
    out = tmp_path / "m.safetensors"
    cfg = {"merge_method": "linear", "models": [{"model": "../ft1", "parameters": {"weight": 1.0}}], "dtype": "float32"}
    tensorcast.merge(cfg, out)
    ft1 = load_file("../ft1/model.safetensors")
    same(load_file(out), ft1)
    with pytest.raises(tensorcast.TensorcastError) as e:
        tensorcast.merge(dict(cfg, merge_method="blend"), tmp_path / "x.safetensors")
    assert e.value.code == "merge-config" and "'blend'" in str(e.value)
    assert not (tmp_path / "x.safetensors").exists()


def test_a_gguf_output_is_the_merged_model_quantized_in_one_pass(in_cases, tmp_path):
    import gguf

    out = tmp_path / "merged.gguf"
    assert tensorcast.merge("ties.float32.yml", out, quantize="Q8_0") == {"tensors": 21}
    r = gguf.GGUFReader(out)
    assert r.fields["general.architecture"].contents() == "llama"
    assert r.fields["general.file_type"].contents() == 7  # LLAMA_FTYPE_MOSTLY_Q8_0
    types = {t.name: t.tensor_type.name for t in r.tensors}
    assert types["blk.0.attn_q.weight"] == "Q8_0" and types["output_norm.weight"] == "F32"
    # The merged norms (kept in f32) are mergekit's merged norms.
    want = load_file("ties.float32.safetensors")["model.norm.weight"]
    got = next(t for t in r.tensors if t.name == "output_norm.weight").data
    assert np.array_equal(np.asarray(got), want)
    with pytest.raises(tensorcast.TensorcastError):
        tensorcast.merge("ties.float32.yml", out, quantize="Q9_X")
