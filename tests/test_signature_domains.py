"""DESIGN.md §5, "Signatures have one meaning": a signature valid for one route (a transform, an
``/info`` path, the thumbor mount, the imgproxy mount) is valid for no other, even when an operator
gives every grammar the same secret. Attack: take a URL each route accepts and replay its signed
path on every other route; each replay must be refused (403), never rendered.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edgeproxy.compat import imgproxy, thumbor
from edgeproxy.settings import SettingsError, load_settings
from testkit.app import KEY, make_client, signed
from testkit.images import encode, photo

#: The one secret an operator reuses everywhere (edgeproxy's, thumbor's, imgproxy's key).
SECRET = KEY


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    folder = tmp_path_factory.mktemp("domains")
    (folder / "land.png").write_bytes(encode(photo(240, 160), "png"))
    with make_client(
        {"media": str(folder)},
        compat_thumbor=True,
        thumbor_security_key=SECRET,
        compat_thumbor_origins={"": "media"},
        compat_imgproxy=True,
        imgproxy_key=SECRET.encode().hex(),
        imgproxy_salt=b"edgeproxy".hex(),
        compat_imgproxy_origins={"local:///": "media"},
    ) as c:
        yield c


def urls() -> dict[str, str]:
    """A URL each route accepts (200), by route."""
    imgproxy_path = "/rs:fit:100:0/f:png/plain/local:///land.png"
    return {
        "native": signed("/w:100/f:png/media/land.png"),
        "info": signed("/info/media/land.png"),
        "thumbor": "/thumbor" + thumbor.sign("100x0/filters:format(png)/land.png", SECRET),
        "imgproxy": "/imgproxy/" + imgproxy.sign(imgproxy_path, SECRET.encode(), b"edgeproxy") + imgproxy_path,
    }


def replays(route: str, url: str) -> dict[str, str]:
    """``url`` (accepted on ``route``) moved onto every other route: its signature and signed path
    put where each other route reads them."""
    path = url
    for prefix in ("/thumbor", "/imgproxy"):
        path = path.removeprefix(prefix)
    if route == "info":
        path = path.removeprefix("/info")
    moved = {"native": path, "info": "/info" + path, "thumbor": "/thumbor" + path, "imgproxy": "/imgproxy" + path}
    return {other: replay for other, replay in moved.items() if other != route}


def test_every_route_accepts_its_own_url(client: httpx.Client):
    assert {route: client.get(url).status_code for route, url in urls().items()} == dict.fromkeys(urls(), 200)


@pytest.mark.parametrize("route", ["native", "info", "thumbor", "imgproxy"])
def test_a_signature_is_refused_on_every_other_route(client: httpx.Client, route: str):
    answers = {other: client.get(replay).status_code for other, replay in replays(route, urls()[route]).items()}
    assert answers == dict.fromkeys(answers, 403), answers


def test_an_imgproxy_key_needs_a_salt():
    """imgproxy's HMAC-SHA256(key, salt + path) is edgeproxy's HMAC-SHA256(key, path) when the salt is
    empty: with the same key, every native signature would be an imgproxy one. An empty salt is
    refused at start-up, so the two never coincide."""
    with pytest.raises(SettingsError, match="imgproxy_key and imgproxy_salt go together"):
        load_settings(
            origins={"media": str(Path(__file__).parent)},
            signing_key=SECRET,
            compat_imgproxy=True,
            imgproxy_key=SECRET.encode().hex(),
            imgproxy_salt="",
            compat_imgproxy_origins={"local:///": "media"},
        )
