"""``edgeproxy prewarm``: every original × variant × Accept bucket requested once, failures listed,
the exit status non-zero when any failed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from edgeproxy.negotiate import ACCEPT_BUCKETS, accepted_image_types
from tests.conftest import KEY, ROOT, make_client
from tests.test_metrics import value


def prewarm(base_url: str, keys: Path, *variants: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "edgeproxy", "prewarm", "--base-url", base_url, "--no-progress", "--concurrency", "4"]
    for variant in variants:
        argv += ["--variant", variant]
    env = {**os.environ, "EDGEPROXY_SIGNING_KEY": KEY}
    return subprocess.run([*argv, str(keys)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


def test_prewarm_requests_each_bucket_once_and_reports_failures(corpus: Path, tmp_path: Path):
    keys = tmp_path / "keys.txt"
    keys.write_text("# critical originals\ndemo/giunchedi-portrait.jpg\n\ndemo/flickr-2725x2225.jpg\n"
                    "demo/no-such-original.jpg\n")
    with make_client({"demo": str(corpus)}) as c:
        done = prewarm(str(c.base_url), keys, "w:200/f:auto", "w:100/f:jpeg")
        metrics = c.get("/metrics").text
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    # 3 originals × (3 Accept buckets for f:auto + 1 for the explicit format) = 12 requests.
    assert lines[0] == f"prewarmed 8 of 12 derivatives ({lines[0].split('(')[1].split()[0]} bytes); 4 failed"
    failed = [line for line in lines[1:] if line.startswith("  FAILED")]
    assert len(failed) == 4 and all("no-such-original.jpg" in line and ": 404 original not found" in line
                                    for line in failed)
    assert sorted(line.split("[")[1].split("]")[0] for line in failed) == ["any", "avif+webp", "none", "webp"]
    # Each bucket got its own answer: AVIF, WebP and JPEG per original, plus the explicit JPEG.
    for fmt, count in (("avif", 2), ("webp", 2), ("jpeg", 4)):
        assert value(metrics, "edgeproxy_requests_total", status_class="2xx", format=fmt) == count, fmt


def test_prewarm_succeeds_with_exit_status_zero_and_refuses_bad_variants(corpus: Path, tmp_path: Path):
    keys = tmp_path / "keys.txt"
    keys.write_text("demo/giunchedi-portrait.jpg\n")
    with make_client({"demo": str(corpus)}) as c:
        done = prewarm(str(c.base_url), keys, "w:64/f:webp")
        assert (done.returncode, done.stdout.splitlines()[0].endswith("; 0 failed")) == (0, True)
        bad = prewarm(str(c.base_url), keys, "w:abc")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "edgeproxy prewarm: variant: option w: 'abc' is not a whole number"


def test_prewarm_warms_preset_urls_as_pages_write_them(corpus: Path, tmp_path: Path):
    """``--variant pr:thumb/q:50``: the URL starts with the preset, as edgeproxy.urls writes it, and is
    sent once per Accept bucket (the preset's format is the server's to know)."""
    from edgeproxy.prewarm import plan

    jobs = plan([("demo", "giunchedi-portrait.jpg")], ["q:50/pr:thumb:png"], KEY, 32)
    assert {job.path.split("/", 2)[2] for job in jobs} == {"pr:thumb:png/q:50/demo/giunchedi-portrait.jpg"}
    assert len(jobs) == 3
    keys = tmp_path / "keys.txt"
    keys.write_text("demo/giunchedi-portrait.jpg\n")
    with make_client({"demo": str(corpus)}, presets={"thumb": "w:64/h:64/fit:cover", "png": "f:png"}) as c:
        done = prewarm(str(c.base_url), keys, "pr:thumb:png/q:50")
        metrics = c.get("/metrics").text
    assert (done.returncode, done.stdout.splitlines()[0].split(" (")[0]) == (0, "prewarmed 3 of 3 derivatives")
    assert value(metrics, "edgeproxy_requests_total", status_class="2xx", format="png") == 3


def test_prewarm_buckets_are_the_cdn_buckets():
    table = json.loads((ROOT / "config" / "accept-buckets.json").read_text())
    assert table["buckets"] == ACCEPT_BUCKETS
    # Each bucket's Accept makes the proxy choose exactly that bucket's formats.
    assert {name: sorted(accepted_image_types(accept)) for name, accept in ACCEPT_BUCKETS.items()} == {
        "avif+webp": ["avif", "webp"], "webp": ["webp"], "none": []}
