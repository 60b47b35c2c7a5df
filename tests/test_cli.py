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

from testkit.env import ROOT
from testkit.images import decode, loader_format
from testkit.net import free_port


def sign(path: str, key: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "edgeproxy", "sign", "--signing-key", key, path],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def start(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """``edgeproxy serve`` on a free port with ``args``, in an environment without EDGEPROXY_*
    variables but ``env``'s."""
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("EDGEPROXY_")}, **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgeproxy", "serve", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
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
    # One immutable answer per derivative, as this flow checks: without q, a derivative's first answer
    # is by default the fast tier of a quality target (short-lived, then replaced by its optimised
    # tier: tests/test_optimise.py, docs/quality.md), which this test is not about.
    tiers_off = {"EDGEPROXY_OPTIMISE": "off", "EDGEPROXY_RESULT_STORAGE": "off"}
    proc, base = start("--origin", f"demo={corpus}", "--signing-key", "K", env=tiers_off)
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
            not_modified = httpx.get(
                url, headers={**({"Accept": accept} if accept else {}), "If-None-Match": r.headers["etag"]}
            )
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
    out = subprocess.run(
        [sys.executable, "-m", "edgeproxy", "serve", "--port", "1"], capture_output=True, text=True, env=env, timeout=30
    )
    assert out.returncode == 2
    assert "no signing key: set EDGEPROXY_SIGNING_KEY (or --signing-key)" in out.stderr


@pytest.mark.parametrize("workers", ["2"])
def test_serve_with_several_workers(photos: Path, workers):
    proc, base = start("--origin", f"demo={photos}", "--signing-key", "K", "--workers", workers)
    try:
        with httpx.Client(base_url=base) as client:  # new connections land on either worker
            for width in range(60, 66):
                r = client.get(sign(f"/w:{width}/f:png/demo/photo.jpg", "K"), headers={"Connection": "close"})
                assert r.status_code == 200 and decode(r.content).width == width
            for _ in range(4):  # whichever worker answers the scrape, it sums both
                text = client.get("/metrics", headers={"Connection": "close"}).text
                assert 'edgeproxy_requests_total{format="png",status_class="2xx"} 6.0' in text
        if shutil.which("promtool"):
            check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
            assert check.returncode == 0, check.stdout + check.stderr
    finally:
        stop(proc)


def check_config(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EDGEPROXY_")}
    return subprocess.run(
        [sys.executable, "-m", "edgeproxy", "check-config", *args],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=60,
    )


def test_check_config_passes_the_example_and_prints_effective_settings(tmp_path: Path):
    result = check_config(str(ROOT / "config" / "edgeproxy.example.toml"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "port = 8080" in lines and "quality_avif = 60" in lines and "# signing_key = (unset)" in lines
    assert result.stderr.splitlines() == [
        "edgeproxy check-config: warning: signing_key is not set here: serve needs EDGEPROXY_SIGNING_KEY "
        "(or --signing-key)",
        f"edgeproxy check-config: {ROOT / 'config' / 'edgeproxy.example.toml'}: OK",
    ]
    # What it prints is TOML that passes again: the effective settings can be kept as a file.
    effective = tmp_path / "effective.toml"
    effective.write_text(result.stdout)
    assert check_config(str(effective)).returncode == 0


def test_check_config_masks_secrets_and_takes_the_environment(tmp_path: Path):
    config = tmp_path / "edgeproxy.toml"
    config.write_text(
        'signing_key = "s3cret-signing"\nadmin_token = "s3cret-admin-token"\nquality_webp = 70\n'
        f'[origins]\nmedia = "{tmp_path}"\n[presets]\nthumb = "w:200/h:200/fit:cover"\n'
    )
    result = check_config(str(config), EDGEPROXY_QUALITY_JPEG="70", EDGEPROXY_PREVIOUS_SIGNING_KEYS='["old-key"]')
    assert result.returncode == 0, result.stderr
    assert "s3cret" not in result.stdout and "old-key" not in result.stdout
    lines = result.stdout.splitlines()
    for line in (
        'signing_key = "********"',
        'admin_token = "********"',
        'previous_signing_keys = ["********"]',
        "quality_webp = 70",
        "quality_jpeg = 70",
        f'origins = {{ "media" = "{tmp_path}" }}',
        'presets = { "thumb" = "w:200/h:200/fit:cover" }',
    ):
        assert line in lines, line
    assert "warning" not in result.stderr
    ignored = check_config(str(config), "--no-env", EDGEPROXY_QUALITY_JPEG="abc")
    assert ignored.returncode == 0 and "quality_jpeg = 80" in ignored.stdout.splitlines()


def test_check_config_lists_every_problem_and_fails(tmp_path: Path):
    config = tmp_path / "bad.toml"
    config.write_text(
        'port = 0\nquality_avif = "high"\nqualty_webp = 70\nauto_width_buckets = [640, 320]\n'
        '[presets]\nthumb = "w:x"\n[origins]\nmedia = "/nonexistent"\n'
    )
    result = check_config(str(config))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"edgeproxy check-config: {config}: invalid settings:",
        "  port: Input should be greater than or equal to 1",
        "  origins: origin media: '/nonexistent' is not a folder, an http(s):// URL or s3://bucket",
        "  auto_width_buckets: expected strictly ascending values in 1..65535, got [640, 320]",
        "  presets: preset thumb: option w: 'x' is not a whole number",
        "  quality_avif: Input should be a valid integer, unable to parse string as an integer",
        "  qualty_webp: Extra inputs are not permitted",
    ]
    config.write_text("port = \n")
    broken = check_config(str(config))
    assert broken.returncode == 1 and "Invalid value (at line 1, column 8)" in broken.stderr
    missing = check_config(str(tmp_path / "nope.toml"))
    assert missing.returncode == 1 and "No such file" in missing.stderr
