"""Python readers side by side, in one run: tensorcast against safetensors-py,
torch.load(weights_only=True) and ztensor's Python reader, on the same files.

    python python/bench/bench_read.py [--gib 1] [--rounds 3]

Run it with a Python that has tensorcast (pip install ./python) and
safetensors; torch rows appear where torch is installed, ztensor rows where
a Python with ztensor is found (TENSORCAST_ZTENSOR_PYTHON, else
~/.cache/zt-venv/bin/python). Each measurement is a fresh process: the time
of the call plus touching one byte of every page of every array (so lazy,
mapped results pay for their reads like eager ones), its peak resident
memory above the process's size before the call (VmHWM - VmRSS; mapped file
pages count), and the anonymous memory still held at the end (RssAnon).
Rounds interleave the readers; medians are printed, with time ratios.
"""

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile

import numpy as np

PRELUDE = r"""
import json, sys, time
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
STEP = TOUCH_STEP
def touch_np(a):
    import numpy as np
    flat = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
    return int(flat[::STEP].sum(dtype=np.uint64)) if flat.size else 0
def touch_pt(t):
    import torch
    flat = t.contiguous().reshape(-1).view(torch.uint8)
    return int(flat[::STEP].sum()) if flat.numel() else 0
"""

CASES = {
    # name: (interpreter key, imports, the timed statement producing `out`, touch)
    "tensorcast load_file (safetensors)": ("main", "import tensorcast", "out = tensorcast.load_file(PATH_ST)", "np"),
    "safetensors.numpy.load_file": ("main", "import safetensors.numpy", "out = safetensors.numpy.load_file(PATH_ST)", "np"),
    "ztensor open + every tensor (safetensors)": (
        "zt",
        "import ztensor, numpy as np",
        "f = ztensor.open(PATH_ST)\nout = {k: np.asarray(f[k]) for k in f.keys()}",
        "np",
    ),
    "tensorcast get_tensor (one, safetensors)": (
        "main",
        "import tensorcast",
        "f = tensorcast.safe_open(PATH_ST)\nout = {NAME: f.get_tensor(NAME)}",
        "np",
    ),
    "safetensors safe_open get_tensor (one)": (
        "main",
        "from safetensors import safe_open",
        "f = safe_open(PATH_ST, framework='numpy')\nout = {NAME: f.get_tensor(NAME)}",
        "np",
    ),
    "ztensor get (one, safetensors)": (
        "zt",
        "import ztensor, numpy as np",
        "f = ztensor.open(PATH_ST)\nout = {NAME: np.asarray(f[NAME])}",
        "np",
    ),
    "tensorcast load_file (pt, numpy)": ("main", "import tensorcast", "out = tensorcast.load_file(PATH_PT)", "np"),
    "tensorcast load_file (pt, framework=pt)": (
        "main",
        "import tensorcast, torch",
        "out = tensorcast.load_file(PATH_PT, framework='pt')",
        "pt",
    ),
    "torch.load(weights_only=True)": (
        "main",
        "import torch",
        "out = torch.load(PATH_PT, weights_only=True)",
        "pt",
    ),
    "ztensor open + every tensor (pt)": (
        "zt",
        "import ztensor, numpy as np",
        "f = ztensor.open(PATH_PT)\nout = {k: np.asarray(f[k]) for k in f.keys()}",
        "np",
    ),
}


def child_code(imports, statement, touch, paths, name, step=4096):
    body = statement.replace("PATH_ST", repr(paths["st"])).replace("PATH_PT", repr(paths["pt"])).replace("NAME", repr(name))
    return (
        PRELUDE.replace("TOUCH_STEP", str(step))
        + imports
        + "\nbefore = status('VmRSS')\nstart = time.perf_counter()\n"
        + body
        + f"\ncheck = sum(touch_{touch}(v) for v in out.values())\n"
        + "seconds = time.perf_counter() - start\n"
        + "print(json.dumps({'seconds': seconds, 'peak_mib': status('VmHWM') - before, "
        + "'anon_mib': status('RssAnon'), 'check': check}))\n"
    )


def ztensor_python():
    candidates = [os.environ.get("TENSORCAST_ZTENSOR_PYTHON"), str(pathlib.Path.home() / ".cache/zt-venv/bin/python")]
    for c in candidates:
        if c and shutil.which(c) and subprocess.run([c, "-c", "import ztensor, numpy"], capture_output=True).returncode == 0:
            return c
    return None


def has(module):
    return subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode == 0


def make_files(folder, gib):
    """64 f32 tensors filling `gib` GiB, as safetensors and (with torch) a zip checkpoint."""
    from safetensors.numpy import save_file

    count = 64
    each = int(gib * (1 << 30)) // count // 4
    rng = np.random.default_rng(0)
    block = rng.standard_normal(1 << 20).astype(np.float32)
    tensors = {f"layers.{i}.weight": np.resize(np.roll(block, i), each).reshape(-1, 1024) for i in range(count)}
    paths = {"st": str(folder / "model.safetensors"), "pt": None}
    save_file(tensors, paths["st"])
    if has("torch"):
        import torch

        paths["pt"] = str(folder / "model.pt")
        torch.save({k: torch.from_numpy(v) for k, v in tensors.items()}, paths["pt"])
    # Written back and read once: every reader starts from the same warm page cache.
    os.sync()
    for p in paths.values():
        if p:
            with open(p, "rb") as f:
                while f.read(1 << 24):
                    pass
    return paths, f"layers.{count // 2}.weight"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--touch",
        choices=["pages", "all"],
        default="pages",
        help="after the call, read one byte per 4 KiB page (default) or every byte of every array",
    )
    args = ap.parse_args()
    interpreters = {"main": sys.executable, "zt": ztensor_python()}
    with tempfile.TemporaryDirectory(prefix="tensorcast-pybench-") as tmp:
        paths, name = make_files(pathlib.Path(tmp), args.gib)
        size = {k: os.path.getsize(p) for k, p in paths.items() if p}
        print(f"files: safetensors {size['st'] / 2**20:.0f} MiB" + (f", pt {size['pt'] / 2**20:.0f} MiB" if paths["pt"] else ", no torch: pt rows skipped"))
        results = {}
        checks = {}
        for _ in range(args.rounds):
            for case, (interp, imports, statement, touch) in CASES.items():
                python = interpreters[interp]
                if python is None or ("PATH_PT" in statement and not paths["pt"]):
                    continue
                if "torch" in imports and not has("torch"):
                    continue
                run = subprocess.run([python, "-c", child_code(imports, statement, touch, paths, name, 4096 if args.touch == "pages" else 1)], capture_output=True, text=True)
                if run.returncode != 0:
                    results.setdefault(case, "failed: " + run.stderr.strip().splitlines()[-1])
                    continue
                r = json.loads(run.stdout.strip().splitlines()[-1])
                checks.setdefault(case.split(" (")[-1] if "(" in case else case, set())
                if not isinstance(results.get(case, []), str):
                    results.setdefault(case, []).append(r)
        rows = {}
        print(f"\n{'reader':45} {'median s':>9} {'GB/s':>6} {'peak MiB':>9} {'anon MiB':>9}")
        for case, runs in results.items():
            if isinstance(runs, str):
                print(f"{case:45} {runs}")
                continue
            secs = statistics.median(r["seconds"] for r in runs)
            data = size["pt" if "(pt" in case or "torch" in case else "st"] if "one" not in case else size["st"] / 64
            rows[case] = secs
            print(
                f"{case:45} {secs:9.3f} {data / secs / 1e9:6.2f} {statistics.median(r['peak_mib'] for r in runs):9.0f} {statistics.median(r['anon_mib'] for r in runs):9.0f}"
            )
        print("\nthroughput ratios (theirs time / tensorcast time; > 1: tensorcast faster):")
        for ours, theirs in [
            ("tensorcast load_file (safetensors)", "safetensors.numpy.load_file"),
            ("tensorcast load_file (safetensors)", "ztensor open + every tensor (safetensors)"),
            ("tensorcast get_tensor (one, safetensors)", "safetensors safe_open get_tensor (one)"),
            ("tensorcast get_tensor (one, safetensors)", "ztensor get (one, safetensors)"),
            ("tensorcast load_file (pt, numpy)", "torch.load(weights_only=True)"),
            ("tensorcast load_file (pt, framework=pt)", "torch.load(weights_only=True)"),
            ("tensorcast load_file (pt, numpy)", "ztensor open + every tensor (pt)"),
        ]:
            if ours in rows and theirs in rows:
                print(f"  {ours} vs {theirs}: {rows[theirs] / rows[ours]:.2f}x")


if __name__ == "__main__":
    main()
