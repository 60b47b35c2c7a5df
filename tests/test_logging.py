"""Logs are JSON lines on stderr (README, "Observability"), whatever the libraries underneath do:
ONNX Runtime prints its own coloured lines unless told otherwise (its telemetry's "Failed to persist
telemetry device ID" in a container whose home folder is read-only), libvips logs a corrupt JPEG's
warnings through GLib (``vips.silence_messages``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyvips

from testkit.app import signed
from testkit.net import free_port


def test_every_stderr_line_is_json_with_the_models_loaded_and_an_unwritable_home(tmp_path: Path, models):
    home = tmp_path / "home"
    home.write_text("not a folder: nothing can be created under it, not even by root")
    photo = tmp_path / "images" / "face.jpg"
    photo.parent.mkdir()
    pyvips.Image.gaussnoise(400, 300, mean=128, sigma=30).cast("uchar").write_to_file(str(photo))
    jpeg = photo.read_bytes()
    sos = jpeg.index(b"\xff\xda")  # libjpeg warns ("extraneous bytes"), and libvips logs it as the image closes
    (photo.parent / "warned.jpg").write_bytes(jpeg[:sos] + b"\0\0\0\0" + jpeg[sos:])
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("EDGEPROXY_", "ORT_"))},
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / "cache"),
        "EDGEPROXY_SIGNING_KEY": "test-signing-key",
        "EDGEPROXY_NSFW_MODEL": str(models["nsfw"]),
        "EDGEPROXY_FACE_MODEL": str(models["face"]),
        "EDGEPROXY_MODERATION": "true",
        "EDGEPROXY_MODERATION_PENDING": "serve",
        "EDGEPROXY_LOG_LEVEL": "info",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgeproxy", "serve", "--port", str(port), "--origin", f"media={photo.parent}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "edgeproxy serve did not start"
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        answer = httpx.get(base + signed("/w:200/h:200/fit:cover/g:face/f:png/media/face.jpg"), timeout=60)
        assert answer.status_code == 200, answer.text
        warned = httpx.get(base + signed("/w:100/f:png/media/warned.jpg"), timeout=60)
        assert warned.status_code == 200, warned.text
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=30)
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "nothing was logged: the test would prove nothing"
    not_json = []
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            not_json.append(line)
    assert not_json == []
    assert any(json.loads(line).get("message") == "vision models loaded" for line in lines)
