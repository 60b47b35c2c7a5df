"""End to end: ``edgeproxy serve`` as a user starts it, and ``edgeproxy sign`` to make URLs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from testkit.net import free_port
from tests.conftest import decode, loader_format


def sign(path: str, key: str) -> str:
    out = subprocess.run([sys.executable, "-m", "edgeproxy", "sign", "--signing-key", key, path],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def start(*args: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEPROXY_")}
    proc = subprocess.Popen([sys.executable, "-m", "edgeproxy", "serve", "--port", str(port), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read())
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("edgeproxy serve did not start")


def stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


def test_acceptance_flow_over_the_corpus(corpus: Path):
    proc, base = start("--origin", f"demo={corpus}", "--signing-key", "K")
    try:
        url = base + sign("/w:400/f:auto/demo/flickr-2725x2225.jpg", "K")
        etags = set()
        for accept, loader in (("image/avif,image/webp,*/*", "heif"), ("image/webp", "webp"), (None, "jpeg")):
            r = httpx.get(url, headers={"Accept": accept} if accept else {})
            assert r.status_code == 200
            image = decode(r.content)
            assert (loader_format(image), image.width) == (loader, 400)
            assert r.headers["vary"] == "Accept"
            assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
            etags.add(r.headers["etag"])
            not_modified = httpx.get(url, headers={**({"Accept": accept} if accept else {}),
                                                   "If-None-Match": r.headers["etag"]})
            assert not_modified.status_code == 304
        assert len(etags) == 3
    finally:
        stop(proc)


def test_serve_defaults_to_bundled_samples_and_prints_a_working_example():
    proc, base = start("--signing-key", "dev")
    try:
        lines = [proc.stdout.readline() for _ in range(2)]  # printed before uvicorn starts
        example = next(line.split("example: ")[1].strip() for line in lines if "example: " in line)
        assert example.startswith(base + "/") and example.endswith("/w:400/f:auto/samples/chart.jpg")
        r = httpx.get(example)
        assert r.status_code == 200 and decode(r.content).width == 400
    finally:
        stop(proc)


def test_serve_without_a_key_refuses_to_start_and_says_why():
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEPROXY_")}
    out = subprocess.run([sys.executable, "-m", "edgeproxy", "serve", "--port", "1"], capture_output=True,
                         text=True, env=env, timeout=30)
    assert out.returncode == 2
    assert "no signing key: set EDGEPROXY_SIGNING_KEY (or --signing-key)" in out.stderr


@pytest.mark.parametrize("workers", ["2"])
def test_serve_with_several_workers(corpus: Path, workers):
    proc, base = start("--origin", f"demo={corpus}", "--signing-key", "K", "--workers", workers)
    try:
        with httpx.Client(base_url=base) as client:  # new connections land on either worker
            for width in range(60, 66):
                r = client.get(sign(f"/w:{width}/f:png/demo/giunchedi-portrait.jpg", "K"),
                               headers={"Connection": "close"})
                assert r.status_code == 200 and decode(r.content).width == width
            for _ in range(4):  # whichever worker answers the scrape, it sums both
                text = client.get("/metrics", headers={"Connection": "close"}).text
                assert 'edgeproxy_requests_total{format="png",status_class="2xx"} 6.0' in text
        if shutil.which("promtool"):
            check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
            assert check.returncode == 0, check.stdout + check.stderr
    finally:
        stop(proc)
