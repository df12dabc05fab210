"""Convert every model under a prefix (or folder) with Ray tasks, one per
share of the batch; each task runs the tensorcast binary with --shard K/N,
so the shares never overlap and a re-run converts only what is missing.

    python deploy/ray/convert_tasks.py s3://BUCKET/models/ s3://BUCKET/converted/ gguf --shards 16

On a Ray cluster (`ray.init(address="auto")`, or RAY_ADDRESS), the binary
(or the container image from deploy/Dockerfile) must be on every node, and
local paths must name the same place there (a shared file system): they are
made absolute here, because Ray workers do not start in this directory. `--local` runs the same
tasks in a local process pool instead (no Ray needed), as the test does.
"""

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor


def convert_share(k, n, src, out_dir, fmt, report_dir, binary):
    """One share: the tensorcast batch restricted to shard k of n."""
    report = os.path.join(report_dir, f"shard-{k}.jsonl")
    cmd = [binary, "convert", "--batch", src, "--out-dir", out_dir, "--to", fmt,
           "--shard", f"{k}/{n}", "--report", report, "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    return {"shard": k, "returncode": done.returncode, "stderr": done.stderr[-2000:], "report": report}


def resolved(path):
    """A local path made absolute here, in the driver: Ray workers do not
    start in the driver's directory, so a relative path would name another
    place (or nothing) there. URLs stay as given."""
    return path if "://" in path else os.path.abspath(path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src")
    p.add_argument("out_dir")
    p.add_argument("format")
    p.add_argument("--shards", type=int, default=8)
    p.add_argument("--reports", default="reports")
    p.add_argument("--binary", default=os.environ.get("TENSORCAST", "tensorcast"))
    p.add_argument("--local", action="store_true", help="run the tasks in local threads, without Ray")
    a = p.parse_args()
    a.src, a.out_dir, a.reports = resolved(a.src), resolved(a.out_dir), resolved(a.reports)
    # A binary named by a path (not found on PATH) must be found from the workers too.
    if os.sep in a.binary:
        a.binary = os.path.abspath(a.binary)
    if "://" not in a.reports:
        os.makedirs(a.reports, exist_ok=True)
    args = [(k, a.shards, a.src, a.out_dir, a.format, a.reports, a.binary) for k in range(a.shards)]
    if a.local:
        with ThreadPoolExecutor(max_workers=a.shards) as pool:
            results = list(pool.map(lambda x: convert_share(*x), args))
    else:
        import ray  # only needed on a cluster

        ray.init(address=os.environ.get("RAY_ADDRESS", "auto"))
        task = ray.remote(num_cpus=2)(convert_share)
        results = ray.get([task.remote(*x) for x in args])
    failed = [r for r in results if r["returncode"] != 0]
    print(json.dumps({"shards": len(results), "failed": [r["shard"] for r in failed]}))
    for r in failed:
        sys.stderr.write(f"shard {r['shard']}: {r['stderr']}\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
