"""tensorcast.edit: GGUF files edited as llama.cpp's gguf_new_metadata.py
edits them (its outputs committed in fixtures/edit), read back by gguf-py:
the same fields, types and values, the same tensor bytes."""

import json
import shutil

import gguf
import numpy as np
import pytest
import safetensors

import tensorcast
from conftest import FIXTURES

EDIT = FIXTURES / "edit"
CASES = json.loads((EDIT / "cases.json").read_text())
PADDING = "tensorcast.header_padding"


def fields(path):
    """gguf-py's view: name -> (types, contents), in file order."""
    r = gguf.GGUFReader(path)
    out = {}
    for f in r.fields.values():
        if f.name.startswith("GGUF.") or f.name == PADDING:
            continue
        out[f.name] = ([int(t) for t in f.types], f.contents())
    tensors = {t.name: (int(t.tensor_type), [int(x) for x in t.shape], t.data.tobytes()) for t in r.tensors}
    return out, tensors


def as_call(args):
    """The CLI arguments of a case as tensorcast.edit's keywords."""
    sets, deletes = {}, []
    for flag, value in zip(args[::2], args[1::2]):
        if flag == "--delete":
            deletes.append(value)
        else:
            key, text = value.split("=", 1)
            sets[key] = (EDIT / text[1:]).read_text() if text.startswith("@") else text
    return sets, deletes


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["case"])
def test_gguf_edit_equals_gguf_new_metadata(case, tmp_path):
    sets, deletes = as_call(case["tensorcast_args"])
    out = tmp_path / "out.gguf"
    report = tensorcast.edit(EDIT / "input.gguf", sets, deletes, output=out)
    assert not report["in_place"] and report["data_bytes"] > 0
    ours, our_tensors = fields(out)
    ref, ref_tensors = fields(EDIT / f"ref_{case['case']}.gguf")
    assert ours == ref
    assert our_tensors == ref_tensors
    keep = [k for k in ref if k != "tokenizer.chat_template"]
    assert [k for k in ours if k != "tokenizer.chat_template"] == keep


def test_in_place_typed_and_safetensors(tmp_path):
    path = tmp_path / "m.gguf"
    shutil.copy(EDIT / "input.gguf", path)
    tensorcast.edit(path, {"llama.context_length": 2048, "custom.flags": [1, 2]}, types={"custom.flags": "[u16]"})
    got, _ = fields(path)
    assert got["llama.context_length"] == ([int(gguf.GGUFValueType.UINT32)], 2048)
    assert got["custom.flags"][1] == [1, 2]
    assert got["custom.flags"][0] == [int(gguf.GGUFValueType.ARRAY), int(gguf.GGUFValueType.UINT16)]
    with pytest.raises(tensorcast.TensorcastError):
        tensorcast.edit(path, {"llama.context_length": "many"})

    st = tmp_path / "a.safetensors"
    shutil.copy(FIXTURES / "digest/set.safetensors", st)
    tensorcast.edit(st, {"note": "edited"})
    with safetensors.safe_open(st, "np") as f, safetensors.safe_open(FIXTURES / "digest/set.safetensors", "np") as g:
        assert f.metadata() == {"format": "pt", "note": "edited"}
        for k in g.keys():
            assert np.array_equal(f.get_tensor(k), g.get_tensor(k))
