"""``edgeproxy prewarm``: every original × variant × Accept bucket requested once, failures listed,
the exit status non-zero when any failed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from edgeproxy.http.negotiate import ACCEPT_BUCKETS, accepted_image_types
from testkit.app import KEY, make_client
from testkit.env import ROOT
from testkit.metrics import value


def prewarm(base_url: str, keys: Path, *variants: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "edgeproxy", "prewarm", "--base-url", base_url, "--no-progress", "--concurrency", "4"]
    for variant in variants:
        argv += ["--variant", variant]
    env = {**os.environ, "EDGEPROXY_SIGNING_KEY": KEY}
    return subprocess.run([*argv, str(keys)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


def test_prewarm_requests_each_bucket_once_and_reports_failures(photos: Path, tmp_path: Path):
    keys = tmp_path / "keys.txt"
    keys.write_text("# critical originals\ndemo/photo.jpg\n\ndemo/large.jpg\ndemo/no-such-original.jpg\n")
    with make_client({"demo": str(photos)}) as c:
        done = prewarm(str(c.base_url), keys, "w:200/f:auto", "w:100/f:jpeg")
        metrics = c.get("/metrics").text
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    # 3 originals × (3 Accept buckets for f:auto + 1 for the explicit format) = 12 requests.
    assert lines[0] == f"prewarmed 8 of 12 derivatives ({lines[0].split('(')[1].split()[0]} bytes); 4 failed"
    failed = [line for line in lines[1:] if line.startswith("  FAILED")]
    assert len(failed) == 4 and all(
        "no-such-original.jpg" in line and ": 404 original not found" in line for line in failed
    )
    assert sorted(line.split("[")[1].split("]")[0] for line in failed) == ["any", "avif+webp", "none", "webp"]
    # Each bucket got its own answer: AVIF, WebP and JPEG per original, plus the explicit JPEG.
    for fmt, count in (("avif", 2), ("webp", 2), ("jpeg", 4)):
        assert value(metrics, "edgeproxy_requests_total", status_class="2xx", format=fmt) == count, fmt


def test_prewarm_succeeds_with_exit_status_zero_and_refuses_bad_variants(photos: Path, tmp_path: Path):
    keys = tmp_path / "keys.txt"
    keys.write_text("demo/photo.jpg\n")
    with make_client({"demo": str(photos)}) as c:
        done = prewarm(str(c.base_url), keys, "w:64/f:webp")
        assert (done.returncode, done.stdout.splitlines()[0].endswith("; 0 failed")) == (0, True)
        bad = prewarm(str(c.base_url), keys, "w:abc")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "edgeproxy prewarm: variant 'w:abc': option w: 'abc' is not a whole number"


def test_prewarm_warms_preset_urls_as_pages_write_them(photos: Path, tmp_path: Path):
    """``--variant pr:thumb/q:50``: the URL starts with the preset, as edgeproxy.url.builders writes it, and is
    sent once per Accept bucket (the preset's format is the server's to know)."""
    from edgeproxy.prewarm import plan

    jobs = plan([("demo", "photo.jpg")], ["q:50/pr:thumb:png"], KEY, 32)
    assert {job.path.split("/", 2)[2] for job in jobs} == {"pr:thumb:png/q:50/demo/photo.jpg"}
    assert len(jobs) == 3
    keys = tmp_path / "keys.txt"
    keys.write_text("demo/photo.jpg\n")
    with make_client({"demo": str(photos)}, presets={"thumb": "w:64/h:64/fit:cover", "png": "f:png"}) as c:
        done = prewarm(str(c.base_url), keys, "pr:thumb:png/q:50")
        metrics = c.get("/metrics").text
    assert (done.returncode, done.stdout.splitlines()[0].split(" (")[0]) == (0, "prewarmed 3 of 3 derivatives")
    assert value(metrics, "edgeproxy_requests_total", status_class="2xx", format="png") == 3


def test_prewarm_buckets_are_the_cdn_buckets():
    table = json.loads((ROOT / "config" / "accept-buckets.json").read_text())
    assert table["buckets"] == ACCEPT_BUCKETS
    # Each bucket's Accept makes the proxy choose exactly that bucket's formats.
    assert {name: sorted(accepted_image_types(accept)) for name, accept in ACCEPT_BUCKETS.items()} == {
        "avif+webp": ["avif", "webp"],
        "webp": ["webp"],
        "none": [],
    }


def test_prewarm_requests_exactly_the_urls_the_builder_writes():
    """The issue: ``--variant w:640/f:auto`` requested ``/SIG/w:640/...`` (f:auto dropped) while
    ``UrlBuilder.url(..., format="auto")`` writes ``/SIG/w:640/f:auto/...``: another signature and
    cache key, so prewarming missed the pages' URLs in every bucket."""
    from edgeproxy.prewarm import plan
    from edgeproxy.url.builders import UrlBuilder

    builder = UrlBuilder("", KEY, signature_size=16)
    cases = [  # (variant as given to prewarm, the same options as a page gives them to the builder)
        ("w:640/f:auto", {"width": 640, "format": "auto"}),
        ("w:640", {"width": 640}),
        ("f:webp/q:60/w:320", {"width": 320, "quality": 60, "format": "webp"}),
        (
            "g:fp:0.3:0.4/h:200/w:200/fit:cover",
            {"width": 200, "height": 200, "fit": "cover", "gravity": ("fp", 0.3, 0.4)},
        ),
        ("pr:thumb", {"preset": "thumb"}),
        ("dpr:2/w:300/pr:card", {"preset": "card", "width": 300, "dpr": 2}),
    ]
    for variant, options in cases:
        jobs = plan([("demo", "a b/ü.jpg")], [variant], KEY, 16)
        assert {job.path for job in jobs} == {builder.path("demo", "a b/ü.jpg", **options)}, variant
        assert len(jobs) == (1 if "f:webp" in variant else 3), variant


def test_prewarm_cli_takes_presets_by_name(photos: Path, tmp_path: Path):
    keys = tmp_path / "keys.txt"
    keys.write_text("demo/photo.jpg\n")
    with make_client({"demo": str(photos)}, presets={"thumb": "w:64/h:64/fit:cover/f:png"}) as c:
        argv = [
            sys.executable,
            "-m",
            "edgeproxy",
            "prewarm",
            "--base-url",
            str(c.base_url),
            "--no-progress",
            "--preset",
            "thumb",
            str(keys),
        ]
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
            env={**os.environ, "EDGEPROXY_SIGNING_KEY": KEY},
        )
        metrics = c.get("/metrics").text
    assert (done.returncode, done.stdout.splitlines()[0].split(" (")[0]) == (0, "prewarmed 3 of 3 derivatives")
    assert value(metrics, "edgeproxy_requests_total", status_class="2xx", format="png") == 3


@pytest.mark.slow
def test_a_page_request_after_prewarm_is_a_cdn_hit_in_every_bucket(photos: Path, tmp_path: Path):
    """Prewarm through Varnish running the shipped VCL, then request the URL a page writes with the
    builder, with real browsers' Accept headers: every one is a hit, and the proxy rendered nothing
    more."""
    from edgeproxy.url.builders import UrlBuilder
    from testkit.env import require_varnish
    from testkit.varnish import is_hit, start_varnish

    require_varnish()
    keys = tmp_path / "keys.txt"
    keys.write_text("demo/photo.jpg\n")
    vcl = (ROOT / "config" / "varnish" / "default.vcl").read_text()
    browsers = {  # Accept of an image request: Chrome 120, Safari 16 (AVIF + WebP), Firefox 60 (WebP), curl
        "chrome": "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
        "safari": "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,"
        "image/svg+xml,image/*;q=0.8,*/*;q=0.5",
        "firefox-60": "image/webp,*/*",
        "curl": "*/*",
    }
    with make_client({"demo": str(photos)}) as c, start_varnish(c.base_url.host, c.base_url.port, vcl=vcl) as cdn:
        done = prewarm(cdn.url, keys, "w:640/f:auto")
        assert done.returncode == 0, done.stdout + done.stderr
        renders = value(c.get("/metrics").text, "edgeproxy_requests_total", status_class="2xx", format="avif")
        url = UrlBuilder(cdn.url, KEY).url("demo", "photo.jpg", width=640, format="auto")
        answers = {name: httpx.get(url, headers={"Accept": accept}, timeout=30) for name, accept in browsers.items()}
        metrics = c.get("/metrics").text
    assert {name: (r.status_code, is_hit(r)) for name, r in answers.items()} == dict.fromkeys(browsers, (200, True))
    assert {name: r.headers["content-type"] for name, r in answers.items()} == {
        "chrome": "image/avif",
        "safari": "image/avif",
        "firefox-60": "image/webp",
        "curl": "image/jpeg",
    }
    assert renders == 1
    assert (
        sum(value(metrics, "edgeproxy_requests_total", status_class="2xx", format=f) for f in ("avif", "webp", "jpeg"))
        == 3
    )  # the three prewarm requests, nothing after
