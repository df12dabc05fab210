"""tensorcast.digest: the content id of spec/digest.md, against the vectors
the spec's Python reference computed (fixtures/digest/generate.py)."""

import json

import numpy as np
import pytest

import tensorcast
from conftest import FIXTURES

VECTORS = json.loads((FIXTURES / "digest/vectors.json").read_text())
SET = ["set.safetensors", "sharded/model.safetensors.index.json", "set.pt", "set.npz", "set.gguf", "set.zt"]


@pytest.mark.parametrize("name", SET)
def test_every_container_gives_the_reference_id(name):
    assert tensorcast.digest(FIXTURES / "digest" / name) == VECTORS["set"]["id"]


def test_per_tensor_records_and_blocks():
    found = tensorcast.digest(FIXTURES / "digest/blocks.gguf", tensors=True)
    assert found["id"] == VECTORS["blocks"]["id"]
    assert [t["name"] for t in found["tensors"]] == sorted(VECTORS["blocks"]["tensors"])
    for t in found["tensors"]:
        assert t["digest"] == VECTORS["blocks"]["tensors"][t["name"]]
    q8 = next(t for t in found["tensors"] if t["name"] == "blk.0.q8")
    assert (q8["kind"], q8["shape"], q8["nbytes"]) == ("Q8_0", [4, 64], 4 * 2 * 34)


def test_saved_arrays_keep_the_id_and_metadata_is_ignored(tmp_path):
    arrays = dict(np.load(FIXTURES / "digest/set.npz"))
    tensorcast.save_file(arrays, tmp_path / "a.safetensors", metadata={"anything": "else"})
    assert tensorcast.digest(tmp_path / "a.safetensors") == VECTORS["set"]["id"]
    arrays["model.bytes"][0] ^= 1
    tensorcast.save_file(arrays, tmp_path / "b.safetensors")
    assert tensorcast.digest(tmp_path / "b.safetensors") != VECTORS["set"]["id"]


def test_convert_with_digest_reports_the_ids(tmp_path):
    out = tmp_path / "out.gguf"
    r = tensorcast.convert(FIXTURES / "digest/set.npz", out, digest=True)
    want = VECTORS["set"]["id"]
    assert (r["digest_in"], r["digest_written"], r["digest_out"]) == (want, want, want)
    # Blocks dequantized for a format that cannot hold them, unasked: refused.
    with pytest.raises(tensorcast.TensorcastError) as e:
        tensorcast.convert(FIXTURES / "digest/blocks.gguf", tmp_path / "b.safetensors", digest=True)
    assert e.value.code == "digest-mismatch"
    assert not (tmp_path / "b.safetensors").exists()
