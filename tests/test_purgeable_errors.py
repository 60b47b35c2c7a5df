"""Every answer about an original carries its surrogate key, so one purge clears it from the CDN
(issue 19, item 5): 404, 413, 415, 422, 451, 502, 504 and the fallback image carry the same
``Surrogate-Key`` / ``Cache-Tag`` pair as a 200, and behind Varnish running the shipped VCL a
cached 404 (not uploaded yet) or 422 (a corrupt upload) is gone after the upload and one
``POST /purge`` (the ``varnish:`` hook), where before the purge answered ok and Varnish kept the
error for its ``error_max_age``.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edgeproxy.service.validators import surrogate_key
from testkit import bombs
from testkit.app import make_client, signed
from testkit.env import ROOT, require_varnish
from testkit.images import decode, loader_format
from testkit.net import free_port, silent_server
from testkit.origin import serve_origin
from testkit.varnish import Varnish, is_hit, start_varnish

SHIPPED_VCL = (ROOT / "config" / "varnish" / "default.vcl").read_text()
PHOTO = "photo.jpg"  # the synthetic library's 800 x 533 JPEG
TOKEN = "admin-token-for-the-purge-tests"


def tag_pair(response: httpx.Response) -> tuple[str | None, str | None]:
    return response.headers.get("surrogate-key"), response.headers.get("cache-tag")


@contextlib.contextmanager
def silent_origin() -> Iterator[str]:
    """An HTTP origin on 127.0.0.1 that accepts connections and never answers; yields its base URL."""
    with silent_server() as port:
        yield f"http://127.0.0.1:{port}/o"


@pytest.fixture
def folder(photos: Path, tmp_path: Path) -> Path:
    """A local origin with one original per error: 413 (a pixel bomb), 415 (SVG, not allowed),
    422 (corrupt JPEG), 451 (a rejected verdict in its sidecar), and a good photo."""
    (tmp_path / "bomb.png").write_bytes(bombs.png(20_000, 20_000))
    shutil.copyfile(photos / "logo.svg", tmp_path / "logo.svg")
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)
    shutil.copyfile(photos / PHOTO, tmp_path / "rejected.jpg")
    (tmp_path / "rejected.jpg.json").write_text('{"moderation": "rejected"}')
    shutil.copyfile(photos / PHOTO, tmp_path / "photo.jpg")
    return tmp_path


def test_every_answer_about_an_original_carries_its_surrogate_key(folder: Path):
    """The proxy's own answers: each error about an original carries the original's tag, exactly
    the 200's (``surrogate_key(origin, key)``), as ``Surrogate-Key`` and ``Cache-Tag``."""
    with (
        silent_origin() as hanging,
        make_client(
            {"f": str(folder), "down": "http://127.0.0.1:9/o", "slow": hanging},
            origin_allowed_networks=["127.0.0.0/8"],
            origin_timeout=1,
            moderation=True,
            moderation_pending="serve",
        ) as proxy,
    ):
        ok = proxy.get(signed("/w:100/f:jpeg/f/photo.jpg"))
        assert ok.status_code == 200 and tag_pair(ok) == (surrogate_key("f", "photo.jpg"),) * 2
        cases = {
            "f/missing.jpg": 404,
            "f/bomb.png": 413,
            "f/logo.svg": 415,
            "f/corrupt.jpg": 422,
            "f/rejected.jpg": 451,
            "down/photo.jpg": 502,
            "slow/photo.jpg": 504,
        }
        for path, status in cases.items():
            response = proxy.get(signed(f"/w:100/f:jpeg/{path}"))
            assert response.status_code == status, (path, response.status_code, response.text)
            origin, key = path.split("/", 1)
            expected = surrogate_key(origin, key)
            assert tag_pair(response) == (expected, expected), (path, dict(response.headers))
            assert "immutable" not in response.headers["cache-control"]


def test_remembered_404_of_a_remote_origin_carries_the_surrogate_key():
    """A remote origin's 404 is remembered (``origin_negative_ttl``) and raised again for the next
    requests: each of them, for two keys, carries its own original's tag."""

    with (
        serve_origin(prefix="/o") as origin,  # holds nothing: every key is a 404
        make_client({"web": origin.url}, origin_allowed_networks=["127.0.0.0/8"]) as proxy,
    ):
        for _ in range(2):
            for key in ("a.jpg", "b.jpg"):
                response = proxy.get(signed(f"/w:100/web/{key}"))
                assert response.status_code == 404
                assert tag_pair(response) == (surrogate_key("web", key),) * 2
        assert origin.gets() == ["/o/a.jpg", "/o/b.jpg"]  # the second round was remembered


def test_fallback_image_carries_the_surrogate_key(folder: Path, photos: Path):
    with make_client({"f": str(folder)}, fallback_image=str(photos / "photo.png")) as proxy:
        for key, status in (("missing.jpg", 404), ("corrupt.jpg", 422)):
            response = proxy.get(signed(f"/w:120/f:png/f/{key}"))
            assert response.status_code == status and response.headers["x-fallback-reason"].startswith(str(status))
            image = decode(response.content)
            assert (loader_format(image), image.width) == ("png", 120)  # the fallback image, rendered
            assert tag_pair(response) == (surrogate_key("f", key),) * 2


@contextlib.contextmanager
def behind_varnish(folder: Path) -> Iterator[tuple[httpx.Client, Varnish, httpx.Client]]:
    """(proxy client, varnish, client of varnish): edgeproxy serving ``folder`` as ``f`` with the
    ``varnish:`` purge hook pointed at a Varnish running the shipped VCL in front of it."""
    require_varnish()
    port = free_port()
    with (
        make_client({"f": str(folder)}, admin_token=TOKEN, purge_hooks=[f"varnish:http://127.0.0.1:{port}"]) as proxy,
        start_varnish(proxy.base_url.host, proxy.base_url.port, vcl=SHIPPED_VCL, port=port) as varnish,
        httpx.Client(base_url=varnish.url, timeout=30) as cdn,
    ):
        yield proxy, varnish, cdn


def purge(proxy: httpx.Client, varnish: Varnish, key: str) -> None:
    response = proxy.post("/purge", json={"origin": "f", "key": key}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert [(h["ok"], h["status"]) for h in response.json()["hooks"]] == [(True, 200)]


@pytest.mark.slow
@pytest.mark.parametrize("before", ["missing", "corrupt"])
def test_cached_error_is_purged_with_the_original(folder: Path, photos: Path, before: str):
    """404 (not uploaded yet) or 422 (a corrupt upload), cached by Varnish for error_max_age (60 s);
    the good original is uploaded; Varnish still holds the error (a hit) until one purge of the
    original, after which the very next request renders the image."""
    key = f"{before}.jpg"
    url = signed(f"/w:200/f:png/f/{key}")
    with behind_varnish(folder) as (proxy, varnish, cdn):
        first = cdn.get(url)
        assert first.status_code == {"missing": 404, "corrupt": 422}[before], first.text
        assert first.headers["cache-control"] == "public, max-age=60"
        assert "surrogate-key" not in first.headers  # stripped on delivery, as for a 200
        held = cdn.get(url)
        assert is_hit(held) and held.status_code == first.status_code

        upload = folder / f".{key}.tmp"  # the upload lands with a new inode
        shutil.copyfile(photos / PHOTO, upload)
        upload.replace(folder / key)
        assert is_hit(cdn.get(url)), "the CDN should still hold the error before the purge"

        purge(proxy, varnish, key)
        after = cdn.get(url)
        assert after.status_code == 200, (after.status_code, after.text[:200])
        assert not is_hit(after)
        image = decode(after.content)
        assert (loader_format(image), image.width, image.height) == ("png", 200, 133)
