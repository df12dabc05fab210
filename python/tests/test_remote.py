"""URLs from Python: safe_open, load_file, inspect and convert read a model
from a loopback HTTP server with Range support (a stdlib handler that counts
the bytes it sends) as they read the local file, fetching only headers to
list tensors; an hf:// URL resolves under HF_ENDPOINT."""

import http.server
import os
import re
import threading

import numpy as np
import pytest

import tensorcast
from conftest import FIXTURES


class RangeHandler(http.server.BaseHTTPRequestHandler):
    root = None
    served = 0

    def log_message(self, *args):
        pass

    def _body(self, send):
        path = os.path.join(self.root, self.path.lstrip("/").split("?")[0])
        if not os.path.isfile(path):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = open(path, "rb").read()
        start, end = 0, len(data)
        m = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        self.send_response(206 if m else 200)
        if m:
            start = int(m.group(1))
            end = int(m.group(2)) + 1 if m.group(2) else len(data)
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        self.send_header("Content-Length", str(end - start))
        self.send_header("ETag", f'"{len(data)}"')
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if send:
            self.wfile.write(data[start:end])
            type(self).served += end - start

    def do_HEAD(self):
        self._body(False)

    def do_GET(self):
        self._body(True)


@pytest.fixture
def server(tmp_path):
    RangeHandler.root = str(tmp_path)
    RangeHandler.served = 0
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", tmp_path
    httpd.shutdown()


def big_file(dir):
    rng = np.random.default_rng(1)
    arrays = {f"w{i}": rng.standard_normal((256, 1024)).astype(np.float32) for i in range(4)}
    path = dir / "m.safetensors"
    tensorcast.save_file(arrays, path)
    return path, arrays


def test_safe_open_of_a_url_reads_only_what_it_is_asked_for(server):
    base, root = server
    path, arrays = big_file(root)
    with tensorcast.safe_open(f"{base}/m.safetensors") as f:
        assert sorted(f.keys()) == sorted(arrays)
        listed = RangeHandler.served
        w = f.get_tensor("w2")
    assert listed < 4096, listed
    assert w.tobytes() == arrays["w2"].tobytes()
    # One tensor of four: about a quarter of the file, not all of it.
    assert RangeHandler.served < os.path.getsize(path) / 2, RangeHandler.served


def test_load_file_inspect_and_convert_from_urls(server, tmp_path):
    base, root = server
    path, arrays = big_file(root)
    got = tensorcast.load_file(f"{base}/m.safetensors")
    assert {k: v.tobytes() for k, v in got.items()} == {k: v.tobytes() for k, v in arrays.items()}
    strip = lambda d: {k: v for k, v in d.items() if k not in ("path", "file")}
    assert strip(tensorcast.inspect(f"{base}/m.safetensors")) == strip(tensorcast.inspect(path))
    out = tmp_path / "out.gguf"
    tensorcast.convert(f"{base}/m.safetensors", out)
    local = tmp_path / "local.gguf"
    tensorcast.convert(path, local)
    assert out.read_bytes() == local.read_bytes()


def test_hf_urls_resolve_under_hf_endpoint(server, monkeypatch):
    base, root = server
    d = root / "org" / "tiny" / "resolve" / "main"
    d.mkdir(parents=True)
    src = FIXTURES / "gguf" / "st_input.safetensors"
    (d / "model.safetensors").write_bytes(src.read_bytes())
    monkeypatch.setenv("HF_ENDPOINT", base)
    with tensorcast.safe_open("hf://org/tiny/model.safetensors") as f, tensorcast.safe_open(src) as g:
        assert f.keys() == g.keys()
        for k in g.keys():
            assert f.get_tensor(k).tobytes() == g.get_tensor(k).tobytes()
