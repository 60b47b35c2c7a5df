"""``GET /info`` under attack: its signatures are their own domain (an ``/info`` URL never renders
an image, a transform URL never answers ``/info``), and what it says about a blocked original is
only that it is blocked, unless the request carries the admin token; the admin's answer is never
stored by a shared cache (proved behind a real Varnish running the shipped VCL).

Every test talks to a real edgeproxy (uvicorn in a thread) on 127.0.0.1; signatures are computed
here with plain HMAC-SHA256 (``PathSigner``), not with the helpers under test.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edgeproxy.service.validators import surrogate_key
from edgeproxy.settings import SettingsError, load_settings
from edgeproxy.url.builders import UrlBuilder
from edgeproxy.url.signing import PathSigner
from testkit.app import KEY, make_client
from testkit.env import ROOT, require_varnish
from testkit.varnish import is_hit, start_varnish

PHOTO = "giunchedi-portrait.jpg"  # 800 × 533 JPEG in the corpus, one face (for the face model)
SYNTHETIC = "photo.jpg"  # the synthetic library's 800 × 533 JPEG
TOKEN = "admin-token-for-info-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: All a blocked original's public /info says.
BLOCKED = {"moderation": {"verdict": "block"}}
NOTE = "reviewer 7: shows the claimant's home address"


def mac(path: str) -> str:
    """base64url(HMAC-SHA256(KEY, path)), unpadded: the signature of ``path`` under the test key."""
    return PathSigner([KEY]).sign(path)


def info_url(origin: str, key: str) -> str:
    """An /info URL as the README defines it: /info/{signature}/{origin}/{key}, signed over
    /info/{origin}/{key}."""
    return f"/info/{mac(f'/info/{origin}/{key}')}/{origin}/{key}"


# --- the signature domain -----------------------------------------------------------------------------------------


def test_an_info_signature_never_renders_and_a_transform_signature_never_answers_info(photos: Path):
    with make_client({"demo": str(photos)}) as c:
        info = c.get(info_url("demo", "photo.jpg"))  # the synthetic library's 800 x 533 JPEG
        assert info.status_code == 200, info.text
        assert (info.json()["width"], info.json()["height"]) == (800, 533)

        # The attack: the /info URL's signature put on the transform route would be the full-size
        # original with none of the options (redact:faces, w:...) the site's own URLs carry.
        stolen = info_url("demo", SYNTHETIC).split("/")[2]
        render = c.get(f"/{stolen}/demo/{SYNTHETIC}")
        assert render.status_code == 403, "an /info signature rendered an image"
        assert render.headers["content-type"] == "text/plain; charset=utf-8"
        assert c.get(f"/{stolen}/info/demo/{SYNTHETIC}").status_code in (403, 404)

        # ...and the other way round: the option-less transform URL's signature answers no /info.
        plain = mac(f"/demo/{SYNTHETIC}")
        assert c.get(f"/{plain}/demo/{SYNTHETIC}").status_code == 200
        refused = c.get(f"/info/{plain}/demo/{SYNTHETIC}")
        assert refused.status_code == 403, "a transform signature answered /info"
        assert "sha256" not in refused.text
        assert c.get(f"/info/{mac(f'/w:100/demo/{SYNTHETIC}')}/w:100/demo/{SYNTHETIC}").status_code == 403


def test_an_origin_named_info_is_refused_at_start_up(photos: Path):
    """An origin named ``info`` would make /info/{origin}/{key} a transform path of origin ``info``."""
    with pytest.raises(SettingsError, match="origin name 'info' is reserved"):
        load_settings(origins={"info": str(photos)}, signing_key=KEY)


def test_sign_cli_and_both_builders_make_info_urls_the_proxy_answers(photos: Path):
    expected = info_url("demo", SYNTHETIC)
    cli = [sys.executable, "-m", "edgeproxy", "sign", "--signing-key", KEY]
    for args in ([f"/info/demo/{SYNTHETIC}"], ["--info", f"/demo/{SYNTHETIC}"]):
        out = subprocess.run([*cli, *args], capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert (out.returncode, out.stdout) == (0, expected + "\n"), (args, out.stderr)
    both = subprocess.run(
        [*cli, "--info", f"/info/demo/{SYNTHETIC}"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert both.returncode == 2 and "--info" in both.stderr
    builder = UrlBuilder("http://proxy.test", KEY)
    assert builder.info_path("demo", SYNTHETIC) == expected
    assert builder.info_url("demo", SYNTHETIC) == "http://proxy.test" + expected
    with make_client({"demo": str(photos)}) as c:
        assert c.get(expected).json()["sha256"] == hashlib.sha256((photos / SYNTHETIC).read_bytes()).hexdigest()


# --- a blocked original -------------------------------------------------------------------------------------------


@pytest.fixture
def moderated(corpus: Path, tmp_path: Path) -> Path:
    """A folder with the portrait twice: ``blocked.jpg`` (sidecar: rejected, with a reviewer's note)
    and ``open.jpg`` (sidecar: approved, the same note)."""
    for name, verdict in (("blocked.jpg", "rejected"), ("open.jpg", "approved")):
        shutil.copyfile(corpus / PHOTO, tmp_path / name)
        (tmp_path / f"{name}.json").write_text(json.dumps({"moderation": verdict, "note": NOTE, "model": "cam-1"}))
    return tmp_path


def test_info_of_a_blocked_original_says_only_that_it_is_blocked(moderated: Path, models):
    data = (moderated / "blocked.jpg").read_bytes()
    with make_client({"m": str(moderated)}, moderation=True, face_model=str(models["face"]), admin_token=TOKEN) as c:
        assert c.get("/" + mac("/w:100/m/blocked.jpg") + "/w:100/m/blocked.jpg").status_code == 451
        url = info_url("m", "blocked.jpg")
        public = c.get(url)
        assert public.status_code == 200
        assert public.json() == BLOCKED
        for leak in (NOTE, "sha256", "faces", "cam-1", hashlib.sha256(data).hexdigest(), "score"):
            assert leak not in public.text
        tag = surrogate_key("m", "blocked.jpg")
        assert public.headers["cache-control"] == "public, max-age=60"
        assert public.headers["surrogate-key"] == public.headers["cache-tag"] == tag
        assert public.headers["vary"] == "Authorization"
        # Anything but the admin token is the public answer: none, empty, wrong, another scheme.
        for authorization in (
            "Bearer",
            f"Bearer {TOKEN}x",
            f"Bearer {TOKEN[:-1]}",
            f"Bearer {TOKEN} {TOKEN}",
            f"Basic {TOKEN}",
            TOKEN,
            f"bearer{TOKEN}",
        ):
            answer = c.get(url, headers={"Authorization": authorization})
            assert (answer.status_code, answer.json()) == (200, BLOCKED), authorization
            assert answer.headers["cache-control"] == "public, max-age=60"

        admin = c.get(url, headers=AUTH)
        assert admin.status_code == 200
        assert admin.headers["cache-control"] == "private, no-store"
        assert admin.headers["vary"] == "Authorization"
        body = admin.json()
        assert body["moderation"] == {"verdict": "block", "score": None, "source": "sidecar"}
        assert body["sha256"] == hashlib.sha256(data).hexdigest()
        assert body["provenance"] == {"source": "sidecar", "note": NOTE, "model": "cam-1"}
        (face,) = body["faces"]
        assert 0.3 < face["x"] < 0.5 and face["score"] >= 0.5
        assert admin.headers["etag"] != public.headers["etag"]
        again = c.get(url, headers={**AUTH, "If-None-Match": admin.headers["etag"]})
        assert (again.status_code, again.headers["cache-control"]) == (304, "private, no-store")
        # The public ETag does not unlock the admin's answer, nor the other way round.
        assert c.get(url, headers={"If-None-Match": admin.headers["etag"]}).json() == BLOCKED

        # An original that is not blocked keeps its full public /info.
        opened = c.get(info_url("m", "open.jpg"))
        assert opened.headers["cache-control"] == "public, max-age=60"
        assert opened.json()["provenance"]["note"] == NOTE and opened.json()["faces"]


def test_without_moderation_nothing_is_blocked_and_info_is_whole(moderated: Path):
    """Derivatives of a rejected original are served when moderation is off: /info hides nothing."""
    with make_client({"m": str(moderated)}) as c:
        assert c.get("/" + mac("/w:100/m/blocked.jpg") + "/w:100/m/blocked.jpg").status_code == 200
        body = c.get(info_url("m", "blocked.jpg")).json()
        assert body["moderation"]["verdict"] == "block" and body["provenance"]["note"] == NOTE


def test_without_an_admin_token_no_bearer_opens_a_blocked_info(moderated: Path):
    with make_client({"m": str(moderated)}, moderation=True) as c:
        for authorization in ("Bearer", "Bearer anything-at-all-0123456789"):
            answer = c.get(info_url("m", "blocked.jpg"), headers={"Authorization": authorization})
            assert (answer.status_code, answer.json()) == (200, BLOCKED), authorization


@pytest.fixture
def behind_varnish(moderated: Path) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """(proxy client, Varnish client): edgeproxy with moderation and an admin token behind Varnish
    running config/varnish/default.vcl as shipped."""
    require_varnish()
    vcl = (ROOT / "config" / "varnish" / "default.vcl").read_text()
    with (
        make_client({"m": str(moderated)}, moderation=True, admin_token=TOKEN) as proxy,
        start_varnish(proxy.base_url.host, proxy.base_url.port, vcl=vcl) as varnish,
        httpx.Client(base_url=varnish.url, timeout=30) as cdn,
    ):
        yield proxy, cdn


@pytest.mark.slow
def test_the_admin_view_of_a_blocked_info_is_never_shared_by_varnish(behind_varnish):
    proxy, cdn = behind_varnish
    url = info_url("m", "blocked.jpg")
    # The admin asks the proxy directly: the whole answer, which no cache may store.
    direct = proxy.get(url, headers=AUTH)
    assert direct.headers["cache-control"] == "private, no-store" and direct.json()["provenance"]["note"] == NOTE
    # Through the CDN first with the token (the shipped VCL drops Authorization: the public answer,
    # stored), then without it: the public answer, from the cache.
    first = cdn.get(url, headers=AUTH)
    assert (first.status_code, first.json()) == (200, BLOCKED)
    second = cdn.get(url)
    assert (second.json(), is_hit(second)) == (BLOCKED, True)
    # An /info signature renders nothing through the CDN either.
    stolen = url.split("/")[2]
    assert cdn.get(f"/{stolen}/m/blocked.jpg").status_code == 403
    opened = cdn.get(info_url("m", "open.jpg"))
    assert opened.json()["provenance"]["note"] == NOTE
