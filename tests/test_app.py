"""The HTTP contract: negotiation, headers, 304, HEAD and error statuses, against a running server.

The originals are the synthetic library (``testkit.images.library``): ``large.jpg`` is 2725 x 2225,
``photo.jpg`` 800 x 533; the hostile ones (truncated, empty, bombs) are made the same way."""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import tempfile
import time
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest
import pyvips

from edgeproxy.url.signing import sign_path
from testkit.app import KEY, make_client, raw_get, signed
from testkit.images import decode, loader_format

PHOTO = "large.jpg"
CHROME_ACCEPT = "image/avif,image/webp,*/*"


@pytest.mark.parametrize(
    ("accept", "loader", "mime"),
    [(CHROME_ACCEPT, "heif", "image/avif"), ("image/webp", "webp", "image/webp"), (None, "jpeg", "image/jpeg")],
)
def test_auto_format_follows_accept(photo_client, accept, loader, mime):
    headers = {"Accept": accept} if accept else {}
    r = photo_client.get(signed(f"/w:400/f:auto/demo/{PHOTO}"), headers=headers)
    assert r.status_code == 200
    assert r.headers["content-type"] == mime
    assert r.headers["vary"] == "Accept"
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert int(r.headers["content-length"]) == len(r.content)
    image = decode(r.content)
    assert loader_format(image) == loader
    assert (image.width, image.height) == (400, 327)


def test_etags_differ_per_variant_and_304_on_if_none_match(photo_client):
    url = signed(f"/w:400/demo/{PHOTO}")
    etags = set()
    for accept in (CHROME_ACCEPT, "image/webp", ""):
        r = photo_client.get(url, headers={"Accept": accept})
        etag = r.headers["etag"]
        assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
        etags.add(etag)
        again = photo_client.get(url, headers={"Accept": accept, "If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == etag
        assert again.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert again.headers["vary"] == "Accept"
        # If-None-Match compares weakly (RFC 9110 §13.1.2): a cache that gzipped the answer sends W/.
        for validators in (f"W/{etag}", f'"other", W/{etag}'):
            weak = photo_client.get(url, headers={"Accept": accept, "If-None-Match": validators})
            assert weak.status_code == 304, validators
            assert weak.headers["etag"] == etag
            assert weak.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert photo_client.get(url, headers={"Accept": accept, "If-None-Match": 'W/"other"'}).status_code == 200
        assert photo_client.get(url, headers={"Accept": accept, "If-None-Match": "*"}).status_code == 200  # README
    assert len(etags) == 3


def test_explicit_format_and_size_have_no_vary_and_exact_headers(photo_client):
    key = "photo.jpg"
    r = photo_client.get(signed(f"/w:200/h:200/fit:cover/f:webp/demo/{key}"), headers={"Accept": "image/jpeg"})
    assert r.status_code == 200
    assert "vary" not in r.headers
    assert "accept-ch" not in r.headers
    assert r.headers["content-type"] == "image/webp"
    assert r.headers["surrogate-key"] == r.headers["cache-tag"]
    assert r.headers["surrogate-key"].startswith("k") and len(r.headers["surrogate-key"]) == 17
    assert r.headers["last-modified"].endswith(" GMT")
    stages = [part.split(";")[0] for part in r.headers["server-timing"].split(", ")]
    assert stages == ["fetch", "queue", "render", "total"]
    image = decode(r.content)
    assert (loader_format(image), image.width, image.height) == ("webp", 200, 200)
    # Every derivative of one original carries the same surrogate key.
    other = photo_client.get(signed(f"/w:50/demo/{key}"))
    assert other.headers["surrogate-key"] == r.headers["surrogate-key"]


def test_head_answers_like_get_without_body(photo_client):
    url = signed(f"/w:120/demo/{PHOTO}")
    get = photo_client.get(url)
    head = photo_client.head(url)
    assert head.status_code == 200 and head.content == b""
    for name in ("content-type", "content-length", "etag", "cache-control"):
        assert head.headers[name] == get.headers[name]


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/w:abc/demo/x.jpg", 400, "option w: 'abc' is not a whole number"),
        ("/w:400/nope/x.jpg", 404, "unknown origin 'nope'"),
        ("/w:400/demo/no-such-file.jpg", 404, "original not found"),
        ("/w:400/demo/truncated.jpg", 422, "the original could not be decoded"),
        ("/w:400/demo/empty.jpg", 422, "the original is empty"),
        ("/w:400/demo/invalid-1byte.jpg", 422, "the original could not be decoded"),
        (
            "/w:400/demo/huge.jpg",
            413,
            "the original has 99592904 pixels (9643x10328x1); the limit is 50000000",
        ),
        (
            "/w:400/demo/bomb.png",
            413,
            "the original has 268435456 pixels (16384x16384x1); the limit is 50000000",
        ),
        ("/w:400/demo/logo.svg", 415, "input format svg is not allowed"),
        ("/w:9000/demo/x.jpg", 400, "option width: 9000 device pixels is over the limit of 8192"),
        ("/c:5000:0:10:10/demo/photo.jpg", 400, "option crop: region is outside the 800x533 original"),
        ("/exp:1000/demo/photo.jpg", 403, "URL expired"),
    ],
)
def test_errors_have_status_message_and_short_cache(photo_client, path, status, message):
    r = photo_client.get(signed(path))
    assert (r.status_code, r.text) == (status, message + "\n")
    assert r.headers["cache-control"] == "public, max-age=60"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert "etag" not in r.headers


def test_bad_signature_is_403(photo_client):
    good = signed(f"/w:400/demo/{PHOTO}")
    tampered = good.replace("/w:400/", "/w:401/")
    for url in (tampered, "/unsafe/w:400/demo/" + PHOTO, "/AAAA/w:400/demo/" + PHOTO):
        r = photo_client.get(url)
        assert (r.status_code, r.text) == (403, "invalid signature\n")
        assert r.headers["cache-control"] == "public, max-age=60"


@pytest.mark.parametrize(
    "key",
    [
        "../conftest.py",
        "..%2fconftest.py",
        "%2e%2e/conftest.py",
        "a/../../conftest.py",
        "%2fetc%2fpasswd",
        "sub%5c..%5c..%5cconftest.py",
        "x%00.jpg",
        "escape/conftest.py",
    ],
)
def test_local_origin_refuses_paths_out_of_its_root(tmp_path, key):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "conftest.py").write_bytes(b"secret")
    os.symlink(tmp_path, root / "escape")
    with make_client({"local": str(root)}) as c:
        status, body = raw_get(c, signed(f"/local/{key}"))
    assert status in (400, 404), body
    assert b"secret" not in body


def test_healthz_and_readyz(photo_client):
    assert photo_client.get("/healthz").json()["status"] == "ok"
    ready = photo_client.get("/readyz").json()
    assert ready["status"] == "ok" and ready["origins"] == {"demo": True}


def test_full_queue_is_503_with_retry_after(photos: Path):
    import concurrent.futures

    import httpx

    # One render thread, no queue: of several simultaneous slow renders, some must be refused.
    with make_client({"demo": str(photos)}, render_threads=1, render_queue=0) as c:
        urls = [signed(f"/w:{1000 + i}/enlarge:1/f:avif/demo/{PHOTO}") for i in range(6)]
        base = str(c.base_url)
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            responses = list(pool.map(lambda u: httpx.get(base + u, timeout=60), urls))
    statuses = sorted(r.status_code for r in responses)
    assert 200 in statuses and 503 in statuses, statuses
    refused = next(r for r in responses if r.status_code == 503)
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["cache-control"] == "public, max-age=1"


def test_future_expiry_is_served_and_changes_nothing_but_the_etag(photo_client):
    future = photo_client.get(signed("/exp:4102444800/w:50/f:png/demo/photo.jpg"))
    plain = photo_client.get(signed("/w:50/f:png/demo/photo.jpg"))
    assert future.status_code == 200 and future.content == plain.content
    assert future.headers["etag"] != plain.headers["etag"]


def max_age(response: httpx.Response) -> int:
    """The ``max-age`` of a ``Cache-Control: public, max-age=N`` answer (the exact form asserted)."""
    prefix = "public, max-age="
    assert response.headers["cache-control"].startswith(prefix), response.headers["cache-control"]
    return int(response.headers["cache-control"].removeprefix(prefix))


def test_expiring_url_is_cached_no_longer_than_it_is_valid(photos: Path, tmp_path: Path):
    placeholder = tmp_path / "placeholder.png"
    placeholder.write_bytes(pyvips.Image.black(40, 20).pngsave_buffer())
    with make_client({"demo": str(photos)}, fallback_image=str(placeholder)) as c:
        exp = int(time.time()) + 300
        url = signed(f"/w:50/exp:{exp}/f:png/demo/{PHOTO}")
        first = c.get(url)
        assert first.status_code == 200
        assert 295 <= max_age(first) <= 300  # no immutable, at most the seconds left
        assert first.headers["expires"] == formatdate(exp, usegmt=True)
        revalidated = c.get(url, headers={"If-None-Match": first.headers["etag"]})
        assert revalidated.status_code == 304
        assert 295 <= max_age(revalidated) <= 300 and revalidated.headers["expires"] == first.headers["expires"]
        # An error or a fallback image for a URL that expires sooner than error_max_age: capped too.
        soon = int(time.time()) + 30
        missing = c.get(signed(f"/w:50/exp:{soon}/f:png/demo/missing.jpg"))
        assert missing.status_code == 404 and missing.headers["x-fallback-reason"] == "404 original not found"
        assert 25 <= max_age(missing) <= 30 and missing.headers["expires"] == formatdate(soon, usegmt=True)
        bad = c.get(signed(f"/w:50/exp:{soon}/f:png/demo/logo.svg"))
        assert bad.status_code == 415 and 25 <= max_age(bad) <= 30
        # Once expired the answer is final: a normal short-cached 403, no Expires.
        gone = c.get(signed(f"/w:50/exp:{int(time.time()) - 1}/f:png/demo/{PHOTO}"))
        assert (gone.status_code, gone.text, max_age(gone)) == (403, "URL expired\n", 60)
        assert "expires" not in gone.headers


def test_query_strings_are_refused_before_any_work(photos: Path):
    with make_client({"demo": str(photos)}) as c:
        url = signed(f"/w:333/f:auto/demo/{PHOTO}")
        for suffix in ("?cb=1", "?cb=2", "?w=10", "?" + "x" * 100):
            r = c.get(url + suffix)
            assert (r.status_code, r.text) == (
                400,
                "query strings are not part of signed URLs: put every option in the path\n",
            )
            assert r.headers["cache-control"] == "public, max-age=60"
        assert c.get("/AAAA/w:1/demo/x.jpg?cb=1").status_code == 400  # before the signature is checked
        metrics = c.get("/metrics").text
        assert 'edgeproxy_cache_lookups_total{cache="variant",outcome="miss"}' not in metrics  # nothing rendered
        assert 'edgeproxy_cache_lookups_total{cache="original",outcome="miss"}' not in metrics  # nothing fetched
        assert c.get(url).status_code == 200


def test_request_deadline_gives_504(photos: Path):
    with make_client({"demo": str(photos)}, request_timeout=0.001) as c:
        r = c.get(signed(f"/w:300/f:avif/demo/{PHOTO}"))
    assert (r.status_code, r.text) == (504, "render deadline exceeded\n")
    assert r.headers["cache-control"] == "public, max-age=1"


def test_client_hints_when_enabled(photos: Path):
    with make_client({"demo": str(photos)}, client_hints=True) as c:
        # dpr:auto reads Sec-CH-DPR (rounded up to a bucket: 1.8 -> 2) and says so in Vary.
        r = c.get(signed("/w:100/dpr:auto/f:png/demo/photo.jpg"), headers={"Sec-CH-DPR": "1.8"})
        assert r.headers["accept-ch"] == "Sec-CH-DPR, Sec-CH-Width, Save-Data"
        assert r.headers["vary"] == "Sec-CH-DPR, Save-Data"
        assert decode(r.content).width == 200
        # A URL without w:auto / dpr:auto reads no size hint: no Sec-CH-* in Vary, the URL's size.
        plain = c.get(signed("/w:100/f:png/demo/photo.jpg"), headers={"Sec-CH-DPR": "2", "Sec-CH-Width": "900"})
        assert (plain.headers["vary"], decode(plain.content).width) == ("Save-Data", 100)
        # w:auto: Sec-CH-Width in device pixels, rounded up to the next bucket (600 -> 640).
        auto = c.get(signed("/w:auto/f:png/demo/large.jpg"), headers={"Sec-CH-Width": "600"})
        assert auto.headers["vary"] == "Sec-CH-Width, Save-Data"
        assert decode(auto.content).width == 640
        same_bucket = c.get(signed("/w:auto/f:png/demo/large.jpg"), headers={"Sec-CH-Width": "580"})
        assert same_bucket.headers["etag"] == auto.headers["etag"]
        # Without the hint (Firefox, Safari): the URL's fallback in CSS pixels x dpr, rounded up.
        fallback = c.get(signed("/w:auto:300/dpr:auto/f:png/demo/large.jpg"), headers={"Sec-CH-DPR": "2"})
        assert fallback.headers["vary"] == "Sec-CH-Width, Sec-CH-DPR, Save-Data"
        assert decode(fallback.content).width == 640
        lean = c.get(signed("/w:400/f:jpeg/demo/large.jpg"), headers={"Save-Data": "on"})
        full = c.get(signed("/w:400/f:jpeg/demo/large.jpg"))
        assert len(lean.content) < len(full.content)
        assert lean.headers["etag"] != full.headers["etag"]
        assert c.get(signed("/w:400/nope/x.jpg")).headers["accept-ch"].startswith("Sec-CH-DPR")


def test_client_hints_off_ignores_hints_and_w_auto_gives_its_fallback(photos: Path):
    with make_client({"demo": str(photos)}, auto_width_fallback=200) as c:
        r = c.get(
            signed("/w:auto/dpr:auto/f:png/demo/large.jpg"),
            headers={"Sec-CH-Width": "900", "Sec-CH-DPR": "3"},
        )
        assert r.status_code == 200
        assert "vary" not in r.headers and "accept-ch" not in r.headers
        assert decode(r.content).width == 240  # 200 CSS px x dpr 1, rounded up to the 240 bucket


PRESETS = {"thumb": "w:120/h:120/fit:cover", "png": "f:png", "small": "w:60"}


def test_presets_render_as_their_options_and_share_their_etag(photos: Path):
    with make_client({"demo": str(photos)}, presets=PRESETS) as c:
        preset = c.get(signed(f"/pr:thumb:png/demo/{PHOTO}"))
        assert preset.status_code == 200, preset.text
        image = decode(preset.content)
        assert (loader_format(image), image.width, image.height) == ("png", 120, 120)
        spelled = c.get(signed(f"/w:120/h:120/fit:cover/f:png/demo/{PHOTO}"))
        assert spelled.headers["etag"] == preset.headers["etag"]
        assert spelled.content == preset.content
        # Later presets override earlier ones, the URL's own options override both.
        later = decode(c.get(signed(f"/pr:thumb:small:png/demo/{PHOTO}")).content)
        assert (later.width, later.height) == (60, 120)
        own = decode(c.get(signed(f"/pr:thumb:png/w:80/demo/{PHOTO}")).content)
        assert (own.width, own.height) == (80, 120)
        unknown = c.get(signed(f"/pr:thumb:huge/demo/{PHOTO}"))
        assert (unknown.status_code, unknown.text) == (400, "option pr: unknown preset 'huge'\n")
        assert unknown.headers["cache-control"] == "public, max-age=60"


def test_changing_a_preset_changes_the_etag(photos: Path):
    with make_client({"demo": str(photos)}, presets={"thumb": "w:120/f:png"}) as c:
        before = c.get(signed(f"/pr:thumb/demo/{PHOTO}"))
    with make_client({"demo": str(photos)}, presets={"thumb": "w:100/f:png"}) as c:
        after = c.get(signed(f"/pr:thumb/demo/{PHOTO}"))
    assert before.headers["etag"] != after.headers["etag"]
    assert (decode(before.content).width, decode(after.content).width) == (120, 100)


def test_only_presets_refuses_other_options_and_applies_the_default_preset(photos: Path):
    presets = {**PRESETS, "default": "f:png/w:50"}
    with make_client({"demo": str(photos)}, presets=presets, only_presets=True) as c:
        ok = c.get(signed(f"/pr:thumb/exp:4102444800/v:2/demo/{PHOTO}"))
        assert ok.status_code == 200, ok.text
        assert (decode(ok.content).width, loader_format(decode(ok.content))) == (120, "png")
        bare = decode(c.get(signed(f"/demo/{PHOTO}")).content)  # the default preset alone
        assert (bare.width, loader_format(bare)) == (50, "png")
        refused = c.get(signed(f"/pr:thumb/w:2000/q:100/demo/{PHOTO}"))
        assert (refused.status_code, refused.text) == (
            400,
            "only presets are allowed on this server (pr:NAME); not w, q\n",
        )


def test_hostile_signed_paths_never_give_a_5xx(photo_client):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    raw = st.text(alphabet=st.sampled_from(list("aw:hfqcgp0123456789.%2eE/-_~+,;=@ ")), min_size=1, max_size=60)
    conn = http.client.HTTPConnection(photo_client.base_url.host, photo_client.base_url.port, timeout=30)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(raw, st.booleans())
    def check(text, sign_it):
        path = "/" + text.replace(" ", "%20")
        url = signed(path) if sign_it else "/" + text.replace(" ", "%20")
        conn.request("GET", url)
        response = conn.getresponse()
        response.read()
        assert response.status in (200, 400, 403, 404, 413, 415, 422), (url, response.status)
        if response.status != 200:
            assert response.getheader("Cache-Control") == "public, max-age=60"

    try:
        check()
    finally:
        conn.close()


def test_a_newline_inside_the_path_gets_the_proxys_404(photo_client):
    conn = http.client.HTTPConnection(photo_client.base_url.host, photo_client.base_url.port, timeout=10)
    try:
        conn.request("GET", "/%0a0")
        response = conn.getresponse()
        answer = (response.status, response.read(), response.getheader("Cache-Control"))
    finally:
        conn.close()
    assert answer == (404, b"no such route\n", "public, max-age=60")


def test_truncated_signatures_end_to_end(photos: Path):
    path = "/w:50/f:png/demo/photo.jpg"
    with make_client({"demo": str(photos)}, signature_size=16) as c:
        assert c.get(sign_path(path, KEY, 16)).status_code == 200
        r = c.get(signed(path))  # a full-size signature is not the configured one
        assert (r.status_code, r.text) == (403, "invalid signature\n")


def test_fallback_image_stands_in_for_errors_about_the_original(photos: Path, tmp_path: Path):
    placeholder = tmp_path / "placeholder.png"
    placeholder.write_bytes(pyvips.Image.black(400, 200).new_from_image([0, 0, 255]).pngsave_buffer())
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    with make_client({"demo": str(photos), "t": str(tmp_path)}, fallback_image=str(placeholder)) as c:
        for path, status, reason in [
            ("/w:80/f:webp/demo/missing.jpg", 404, "404 original not found"),
            ("/w:80/f:webp/t/broken.jpg", 422, "422 the original could not be decoded"),
            ("/w:80/f:webp/demo/logo.svg", 415, "415 input format svg is not allowed"),
        ]:
            r = c.get(signed(path))
            assert r.status_code == status
            assert r.headers["cache-control"] == "public, max-age=60"  # short, never immutable
            assert r.headers["x-fallback-reason"] == reason
            assert "etag" not in r.headers
            image = decode(r.content)
            assert (loader_format(image), image.width, image.height) == ("webp", 80, 40)
            assert image(40, 20)[:3] == [0, 0, 255]
            assert c.get(signed(path), headers={"If-None-Match": "*"}).status_code == status  # never a 304
        # Errors about the URL itself are not the original's fault: no fallback.
        r = c.get("/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/w:80/demo/missing.jpg")
        assert (r.status_code, r.headers["content-type"]) == (403, "text/plain; charset=utf-8")
        metrics = c.get("/metrics").text
        assert 'edgeproxy_errors_total{category="origin"} 2.0' in metrics  # the 404, twice
    with make_client({"demo": str(photos)}, fallback_image=str(placeholder), fallback_status=200) as c:
        r = c.get(signed("/w:80/f:png/demo/missing.jpg"))
        assert (r.status_code, r.headers["cache-control"]) == (200, "public, max-age=60")
        assert decode(r.content).width == 80


@contextlib.contextmanager
def _unprivileged():
    """Run the block as a user who cannot read a mode-000 file: as is when not root; as root, with
    the effective uid of ``nobody`` (65534) for the block, restored after."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


def test_unreadable_original_is_an_origin_error_not_a_404(tmp_path: Path, caplog):
    """A mounted folder the proxy's user may not read (a container's UID 10001) is the deployment's
    fault, not a missing original: 502, short caching, and a warning naming the origin and key."""
    root = Path(tempfile.mkdtemp(prefix="edgeproxy-unreadable-"))
    try:
        root.chmod(0o755)
        photo = root / "photo.png"
        photo.write_bytes(pyvips.Image.black(8, 8).pngsave_buffer())
        photo.chmod(0)
        with (
            make_client({"media": str(root)}) as c,
            caplog.at_level("WARNING", "edgeproxy.origins.local"),
            _unprivileged(),
        ):
            denied = c.get(signed("/w:4/f:png/media/photo.png"))
            missing = c.get(signed("/w:4/f:png/media/nope.png"))
        assert (denied.status_code, denied.text) == (502, "the origin may not read the original (permission denied)\n")
        assert denied.headers["cache-control"] == "public, max-age=1"
        assert missing.status_code == 404
        assert any(
            "local origin 'media' cannot read 'photo.png': permission denied" in r.getMessage() for r in caplog.records
        )
    finally:
        shutil.rmtree(root)
