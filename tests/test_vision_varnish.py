"""Moderation behind a real Varnish running the shipped VCL (config/varnish/default.vcl): a 451
and a blurred derivative are cached no longer than ``moderation_max_age``, and a purge of the
original's surrogate key after a verdict changes serves the new answer at once.

As in tests/test_cdn_varnish.py and tests/test_cdn_recipes.py: edgeproxy runs with uvicorn in a
thread, varnishd in front of it (``testkit.varnish``); what Varnish did is read from ``X-Varnish``
(two ids on a hit) and varnishstat's ``MAIN.backend_req``. Skipped where varnishd is missing,
a failure under ``CI=true`` (``tests/varnish.py``).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from testkit.app import make_client, signed
from testkit.env import ROOT, require_varnish
from testkit.images import decode, loader_format
from testkit.net import free_port
from testkit.varnish import Varnish, counter, is_hit, start_varnish

pytestmark = pytest.mark.slow  # a real Varnish: not in the quick loop (pytest -m 'not slow')

SHIPPED_VCL = (ROOT / "config" / "varnish" / "default.vcl").read_text()
PHOTO = "no-face.jpg"
IMMUTABLE = "public, max-age=31536000, immutable"
TIMEOUT = 30.0
TOKEN = "admin-token-for-varnish-tests"


@pytest.fixture(autouse=True)
def _varnish_installed() -> None:
    require_varnish()


def write_sidecar(folder: Path, key: str, verdict: str) -> None:
    """``KEY.json`` with ``verdict``, replaced atomically (a new inode for the proxy's stat check)."""
    tmp = folder / f".{key}.json.tmp"
    tmp.write_text(json.dumps({"moderation": verdict}))
    tmp.replace(folder / f"{key}.json")


@contextlib.contextmanager
def stack(folder: Path, models: dict[str, Path], **settings) -> Iterator[tuple[httpx.Client, Varnish, httpx.Client]]:
    """(proxy client, varnish, client of varnish): edgeproxy with the nsfw model and moderation on,
    serving ``folder`` as ``m``, behind the shipped VCL; the proxy's ``varnish:`` purge hook points
    at this Varnish."""
    varnish_port = free_port()
    with (
        make_client(
            {"m": str(folder)},
            nsfw_model=str(models["nsfw"]),
            moderation=True,
            admin_token=TOKEN,
            purge_hooks=[f"varnish:http://127.0.0.1:{varnish_port}"],
            **settings,
        ) as proxy,
        start_varnish(proxy.base_url.host, proxy.base_url.port, vcl=SHIPPED_VCL, port=varnish_port) as varnish,
        httpx.Client(base_url=varnish.url, timeout=TIMEOUT) as cdn,
    ):
        yield proxy, varnish, cdn


def detail(body: bytes) -> float:
    """Mean absolute difference between neighbouring pixels of a PNG body (blurring destroys it)."""
    image = decode(body)
    assert loader_format(image) == "png"
    a = image.numpy().astype(np.float64)
    return float((np.abs(np.diff(a, axis=0)).mean() + np.abs(np.diff(a, axis=1)).mean()) / 2)


def test_short_lived_moderation_answers_expire_in_varnish(corpus: Path, tmp_path: Path, models: dict[str, Path]):
    """With ``moderation_max_age=2``: a rejected original's 451 and a blurred derivative (blur
    threshold 0, block threshold 1: every benign photo is blurred) are hits within 2 s and go back
    to the proxy after 3 s; neither is ever held for the year an allowed derivative is."""
    for key in ("rejected.jpg", "blurred.jpg"):
        shutil.copyfile(corpus / PHOTO, tmp_path / key)
    write_sidecar(tmp_path, "rejected.jpg", "rejected")
    rejected, blurred = signed("/w:200/f:png/m/rejected.jpg"), signed("/w:200/f:png/m/blurred.jpg")
    with stack(
        tmp_path, models, moderation_max_age=2, moderation_blur_threshold=0.0, moderation_block_threshold=1.0
    ) as (proxy, varnish, cdn):
        first = {url: cdn.get(url) for url in (rejected, blurred)}
        assert first[rejected].status_code == 451, first[rejected].text
        assert first[rejected].headers["cache-control"] == "public, max-age=2"
        assert first[rejected].text == "withheld by moderation\n"
        assert first[blurred].status_code == 200, first[blurred].text
        assert first[blurred].headers["cache-control"] == "public, max-age=2"
        assert "etag" in first[blurred].headers
        assert detail(first[blurred].content) < 2.0  # a colour wash: the whole derivative is blurred
        assert not any(is_hit(r) for r in first.values())
        sent = counter(varnish, "MAIN.backend_req")
        assert sent == 2

        hits = {url: cdn.get(url) for url in (rejected, blurred)}
        for url, response in hits.items():
            assert is_hit(response), (url, response.headers.get("x-varnish"))
            assert response.status_code == first[url].status_code
            assert int(response.headers["age"]) <= 2
        assert hits[blurred].content == first[blurred].content
        assert counter(varnish, "MAIN.backend_req") == sent

        time.sleep(3)
        later = {url: cdn.get(url) for url in (rejected, blurred)}
        for url, response in later.items():
            assert not is_hit(response), f"{url}: Varnish kept it past moderation_max_age ({response.headers})"
        assert (later[rejected].status_code, later[blurred].status_code) == (451, 200)
        assert counter(varnish, "MAIN.backend_req") == sent + 2
        assert proxy.get("/metrics").status_code == 200


def test_verdict_change_and_purge_serve_the_image_at_once(corpus: Path, tmp_path: Path, models: dict[str, Path]):
    """A rejected original answers 451 through Varnish (cached ``moderation_max_age``, 60 s here).
    A moderator approves it (the sidecar changes): Varnish still holds the 451, until one
    ``POST /purge`` of the original on the proxy drops it (through the ``varnish:`` hook, by
    surrogate key); the very next request through Varnish is the image, immutable."""
    shutil.copyfile(corpus / PHOTO, tmp_path / "photo.jpg")
    shutil.copyfile(corpus / PHOTO, tmp_path / "other.jpg")
    write_sidecar(tmp_path, "photo.jpg", "rejected")
    write_sidecar(tmp_path, "other.jpg", "rejected")
    url, other = signed("/w:200/f:png/m/photo.jpg"), signed("/w:200/f:png/m/other.jpg")
    with stack(tmp_path, models, moderation_max_age=60) as (proxy, varnish, cdn):
        first = cdn.get(url)
        assert first.status_code == 451 and first.headers["cache-control"] == "public, max-age=60"
        assert cdn.get(other).status_code == 451
        assert is_hit(cdn.get(url))

        write_sidecar(tmp_path, "photo.jpg", "approved")
        write_sidecar(tmp_path, "other.jpg", "approved")
        held = cdn.get(url)
        assert held.status_code == 451 and is_hit(held)  # the CDN still has the old verdict

        purge = proxy.post(
            "/purge", json={"origin": "m", "key": "photo.jpg"}, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert purge.status_code == 200, purge.text
        assert [(h["hook"], h["ok"], h["status"]) for h in purge.json()["hooks"]] == [
            (f"varnish:http://127.0.0.1:{varnish.port}", True, 200)
        ]

        after = cdn.get(url)
        assert after.status_code == 200, after.text
        assert not is_hit(after)
        assert after.headers["cache-control"] == IMMUTABLE
        image = decode(after.content)
        assert (loader_format(image), image.width, image.height) == ("png", 200, 150)
        assert detail(after.content) > 4.0  # the photo itself, not a blurred stand-in
        again = cdn.get(url)
        assert is_hit(again) and again.status_code == 200
        unpurged = cdn.get(other)
        assert unpurged.status_code == 451 and is_hit(unpurged), "an original that was not purged changed"
