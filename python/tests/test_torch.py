"""Against torch itself, where it is installed (CI never installs it)."""

import json

import numpy as np
import pytest

import tensorcast
from conftest import FIXTURES, torch_or_skip

torch = torch_or_skip()

VALID = sorted(p for p in (FIXTURES / "pytorch/valid").iterdir() if not p.name.endswith(".json"))


def flat(obj, prefix=""):
    """torch.load's nested state as dotted names, as tensorcast flattens it."""
    if isinstance(obj, torch.Tensor):
        return {prefix[:-1] if prefix else "": obj}
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flat(v, f"{prefix}{k}."))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(flat(v, f"{prefix}{i}."))
    return out


# torch 2.15 does not swap big-endian uint16/32/64 storages back (see
# fixtures/pytorch/generate.py): test_read checks them against the values saved.
TORCH_UNSWAPPED = {"uint16", "uint32", "uint64"}


def as_bytes(t):
    """A tensor's bytes (comparison that sees NaN payloads and signed zeros)."""
    t = t.resolve_conj().contiguous().reshape(-1)
    if t.is_complex():
        t = torch.view_as_real(t).reshape(-1)
    return bytes(t.view(torch.uint8).numpy()) if t.dtype != torch.bool else bytes(t.numpy())


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_pytorch_checkpoints_equal_torch_load(path):
    spec = json.loads(path.with_name(path.name + ".expected.json").read_text())
    if spec["flags"]:
        pytest.skip("recorded with reading flags (checked against recorded values in test_read)")
    try:
        ref = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as e:  # legacy or exotic files torch's safe loader refuses
        pytest.skip(f"torch.load(weights_only=True) refuses it: {e}")
    ref = flat(ref)
    with tensorcast.safe_open(path, framework="pt") as f:
        for name in f.keys():
            if path.name == "big_endian.pt" and name in TORCH_UNSWAPPED:
                continue
            ours = f.get_tensor(name)
            want = ref[name] if name in ref else ref[""]
            assert ours.dtype == want.dtype and ours.shape == want.shape, name
            assert as_bytes(ours) == as_bytes(want), name


def test_bf16_and_fp8_come_as_torch_dtypes():
    path = FIXTURES / "safetensors/valid/all_dtypes.safetensors"
    from safetensors import safe_open

    with tensorcast.safe_open(path, framework="pt") as f, safe_open(path, framework="pt") as ref:
        for name in ("bf16", "f8_e4m3", "f8_e5m2"):
            ours, want = f.get_tensor(name), ref.get_tensor(name)
            assert ours.dtype == want.dtype
            assert as_bytes(ours) == as_bytes(want)


def test_save_file_from_torch_tensors_is_read_by_torch_equal(tmp_path):
    src = {
        "w": torch.randn(4, 8),
        "h": torch.randn(3).to(torch.bfloat16),
        "f8": torch.randn(5).to(torch.float8_e4m3fn),
        "i": torch.arange(6, dtype=torch.int64).reshape(2, 3),
        "t": torch.randn(6, 4).t(),  # a non-contiguous view
    }
    out = tmp_path / "x.safetensors"
    tensorcast.save_file(src, out)
    from safetensors.torch import load_file

    back = load_file(out)
    for name, t in src.items():
        assert back[name].dtype == t.dtype and as_bytes(back[name]) == as_bytes(t)


def test_gguf_dequantized_into_torch_equals_numpy_route():
    path = FIXTURES / "gguf/quants.gguf"
    pt = tensorcast.load_file(path, framework="pt")
    npy = tensorcast.load_file(path)
    for name, t in pt.items():
        assert np.array_equal(t.numpy(), npy[name])


def test_float4_x2_tensors_round_trip_as_safetensors_writes_them(tmp_path):
    """torch.float4_e2m1fn_x2 (two E2M1 values a byte) is written as F4
    with the last dim counted in values: the file is byte-identical to
    safetensors' own, and each library reads the other's back."""
    import safetensors.torch

    if not hasattr(torch, "float4_e2m1fn_x2"):
        pytest.skip("this torch has no float4_e2m1fn_x2")
    t = torch.arange(16, dtype=torch.uint8).reshape(2, 8).view(torch.float4_e2m1fn_x2)
    ours, theirs = tmp_path / "ours.safetensors", tmp_path / "theirs.safetensors"
    tensorcast.save_file({"w": t}, ours)
    safetensors.torch.save_file({"w": t}, theirs)
    assert ours.read_bytes() == theirs.read_bytes()
    back = safetensors.torch.load_file(ours)["w"]
    assert back.dtype == t.dtype and torch.equal(back.view(torch.uint8), t.view(torch.uint8))
    with tensorcast.safe_open(theirs, framework="pt") as f:
        mine = f.get_tensor("w")
    assert mine.dtype == t.dtype and mine.shape == t.shape
    assert torch.equal(mine.view(torch.uint8), t.view(torch.uint8))
    with tensorcast.safe_open(theirs) as f, pytest.raises(tensorcast.TensorcastError, match="no numpy type"):
        f.get_tensor("w")


def test_sparse_torch_tensors_are_refused_with_value_error(tmp_path):
    """A sparse tensor is refused with ValueError (safetensors' type), naming
    it, before anything is written (it failed inside torch)."""
    s = torch.sparse_coo_tensor([[0, 1], [1, 0]], [1.0, 2.0], (2, 2))
    out = tmp_path / "s.safetensors"
    with pytest.raises(ValueError, match="tensor 's': a sparse torch tensor"):
        tensorcast.save_file({"s": s}, out)
    assert not out.exists()
