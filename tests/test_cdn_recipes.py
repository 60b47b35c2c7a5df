"""The shipped CDN recipes (config/varnish/default.vcl, config/cloudfront/), proved against one truth.

``config/accept-buckets.json`` lists real-world ``Accept`` strings with the bucket each belongs to.
The table is checked against the proxy's own rules (``edgeproxy.http.negotiate.accepted_image_types``),
against the CloudFront Function (``node --test``), and against the shipped VCL: every row is sent
through a real Varnish running that file in front of edgeproxy, which must make at most one render
per bucket and give each client a format its ``Accept`` allows. The other tests prove the rest of
the VCL's contract: 4xx cached for their ``max-age``, 5xx for their one second and no longer,
operator routes and query strings stopped at the edge (``/info`` URLs pass, cached and purged
with their original), internal headers stripped (and the switch that keeps them), PURGE by
surrogate key, and grace only for immutable derivatives while no proxy is healthy (the restart
itself, with two proxies and a retry, is ``tests/test_varnish_restart.py``).

``config/client-hint-buckets.json`` does the same for the client hints (``Sec-CH-Width``,
``Sec-CH-DPR``, ``Save-Data``): the shipped VCL (seen by an echo backend) and the CloudFront Function
forward exactly each row's bucket or remove the header; every bucket is one the proxy renders as
itself, and for values browsers send it is the proxy's own rounding (``edgeproxy.http.negotiate``). On
seeded random values, both recipes give a bucket or nothing, and the proxy's rounding for
browser-shaped ones. Through Varnish in front of the proxy, every row is served the proxy's answer
to its bucket, and many hint values make one render per bucket.

What Varnish did is read from ``X-Varnish`` (two ids on a hit) and varnishstat's
``MAIN.backend_req``; what the proxy did from its own ``/metrics``, read directly.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import random
import re
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pyvips

from edgeproxy.http.app import create_app
from edgeproxy.http.negotiate import AutoSize, Negotiated, _hint_number, accepted_image_types, negotiate
from edgeproxy.service.validators import surrogate_key
from edgeproxy.settings import Settings, load_settings
from edgeproxy.url.spec import TransformSpec
from testkit.app import KEY, make_client, serve_app, signed
from testkit.env import ROOT, node_or_skip, require_varnish, run_node_tests
from testkit.images import decode, loader_format
from testkit.metrics import value
from testkit.net import free_port
from testkit.origin import Reply, Request, serve_origin
from testkit.varnish import Varnish, age, backend_health, counter, is_hit, start_varnish

TABLE = json.loads((ROOT / "config" / "accept-buckets.json").read_text())
BUCKETS: dict[str, str] = TABLE["buckets"]
CASES: list[dict] = TABLE["cases"]
HINT_TABLE = json.loads((ROOT / "config" / "client-hint-buckets.json").read_text())
HINT_CASES: list[dict] = HINT_TABLE["cases"]
SHIPPED_VCL = (ROOT / "config" / "varnish" / "default.vcl").read_text()
#: The line of vcl_recv that rewrites the client hints; without it Varnish varies on them as sent.
HINT_REWRITE = "    call edgeproxy_client_hints;\n"
CLOUDFRONT = ROOT / "config" / "cloudfront"

PHOTO = "large.jpg"  # the synthetic library's 2725 x 2225 JPEG
OTHER_PHOTO = "photo.jpg"  # its 800 x 533 one
ANIMATED = "animated.gif"  # 3 frames
#: Headers the proxy sends for the CDN's use only; the VCL strips them on delivery.
INTERNAL = ("surrogate-key", "cache-tag", "server-timing", "xkey")
TIMEOUT = 60.0


def bucket_of(accepts: frozenset[str]) -> str:
    """The bucket of what the proxy reads from an ``Accept``: AVIF counts only together with WebP."""
    if accepts == {"avif", "webp"}:
        return "avif+webp"
    return "webp" if "webp" in accepts else "none"


def case_id(case: dict) -> str:
    return f"{case['client']}: {case['accept']!r}"


# --- the table and the proxy's own rules ---------------------------------------------------------


def wait_until_healthy(cdn: httpx.Client, url: str, seconds: float = 10) -> None:
    """Until Varnish has probed the proxy healthy (2 good probes): it answered 503 while the proxy
    was starting. ``url``: one whose answer is cheap (a missing original)."""
    deadline = time.monotonic() + seconds
    while cdn.get(url).status_code == 503:
        assert time.monotonic() < deadline, "the probe never found the proxy healthy"
        time.sleep(0.25)


def test_table_covers_the_real_world_and_the_edge_cases():
    accepts = [case["accept"] for case in CASES]
    assert len(CASES) >= 20
    assert set(BUCKETS) == {"avif+webp", "webp", "none"}
    assert BUCKETS["none"] == "*/*"
    for needed in (
        "image/jxl,image/avif,image/webp,image/apng,*/*;q=0.8",  # the Accept that lists JPEG XL first
        "image/avif;q=0,image/webp",
        "image/webp;q=0",
        "*/*",
        "",
        None,
    ):
        assert needed in accepts, needed
    assert {case["bucket"] for case in CASES} == set(BUCKETS)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_table_agrees_with_the_proxy(case: dict):
    """Each row's bucket is what the proxy itself reads from that ``Accept``; the bucket's
    normalised ``Accept`` is read as the same bucket; and it never lets the proxy pick a format the
    client did not accept (what the CDN forwards allows a subset of what the client allows)."""
    raw = accepted_image_types(case["accept"] or "")
    assert bucket_of(raw) == case["bucket"], raw
    normalised = accepted_image_types(BUCKETS[case["bucket"]])
    assert bucket_of(normalised) == case["bucket"]
    assert normalised <= raw


# --- the CloudFront Function ---------------------------------------------------------------------


def test_cloudfront_function_node_tests():
    """``node --test`` over config/cloudfront/ (every table row through the function). The test
    files are named rather than the folder: Node 21+ reads a folder argument as a module path."""
    result = run_node_tests(CLOUDFRONT, "the CloudFront Function")
    passed = re.search(r"^# pass (\d+)$", result.stdout, re.MULTILINE)
    assert passed and int(passed.group(1)) >= len(CASES) + len(HINT_CASES), result.stdout[-2000:]


# --- the shipped VCL in front of the proxy -------------------------------------------------------


@dataclass
class Stack:
    proxy: httpx.Client  # edgeproxy itself
    varnish: Varnish
    cdn: httpx.Client  # a client of Varnish

    def renders(self) -> float:
        """Renders the proxy ran: variant cache misses on its own ``/metrics``."""
        return value(self.proxy.get("/metrics").text, "edgeproxy_cache_lookups_total", cache="variant", outcome="miss")

    def answered(self, status_class: str, fmt: str) -> float:
        return value(self.proxy.get("/metrics").text, "edgeproxy_requests_total", status_class=status_class, format=fmt)

    def backend_requests(self) -> int:
        return counter(self.varnish, "MAIN.backend_req")


@contextlib.contextmanager
def stack_with(photos: Path, vcl: str, **settings) -> Iterator[Stack]:
    """edgeproxy (fresh metrics, ``settings`` overridden) serving the synthetic library as ``demo``, behind
    Varnish running ``vcl``. Origin ``broken`` is an HTTP origin the SSRF guard refuses (loopback):
    a 502 on every key."""
    require_varnish()
    with make_client({"demo": str(photos), "broken": "http://127.0.0.1:9/"}, **settings) as proxy:
        host, port = proxy.base_url.host, proxy.base_url.port
        with start_varnish(host, port, vcl=vcl) as varnish, httpx.Client(base_url=varnish.url, timeout=TIMEOUT) as cdn:
            yield Stack(proxy, varnish, cdn)


@pytest.fixture
def stack(photos: Path) -> Iterator[Stack]:
    """edgeproxy (fresh metrics) behind Varnish running config/varnish/default.vcl as shipped,
    its backend port rewritten to the proxy's."""
    with stack_with(photos, SHIPPED_VCL) as running:
        yield running


def get(cdn: httpx.Client, url: str, accept: str | None) -> httpx.Response:
    """GET with exactly this ``Accept`` (``None``: no Accept header at all, which httpx would
    otherwise fill in with ``*/*``)."""
    request = cdn.build_request("GET", url)
    if accept is None:
        del request.headers["accept"]
    else:
        request.headers["accept"] = accept
    return cdn.send(request)


def raw(varnish: Varnish, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict, str]:
    """One request byte for byte (httpx would normalise percent-encodings and dot segments)."""
    conn = http.client.HTTPConnection("127.0.0.1", varnish.port, timeout=TIMEOUT)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        headers_ = {name.lower(): value_ for name, value_ in response.getheaders()}
        return response.status, headers_, response.read().decode(errors="replace")
    finally:
        conn.close()


def assert_no_internal_headers(response: httpx.Response) -> None:
    leaked = {name: response.headers[name] for name in INTERNAL if name in response.headers}
    assert not leaked, f"internal headers delivered to the client: {leaked}"


#: What ``f:auto`` must answer in each bucket: a still photo, and an animated GIF (animations
#: prefer WebP, since libvips writes AVIF as a still; without WebP they stay GIF, never AVIF).
EXPECTED = {
    PHOTO: {"avif+webp": "avif", "webp": "webp", "none": "jpeg"},
    ANIMATED: {"avif+webp": "webp", "webp": "webp", "none": "gif"},
}
#: libvips' loader for each format (AVIF decodes through heifload).
LOADER = {"avif": "heif", "webp": "webp", "jpeg": "jpeg", "gif": "gif"}


@pytest.mark.slow
@pytest.mark.parametrize("original", [PHOTO, ANIMATED])
def test_accept_table_through_varnish(stack: Stack, original: str):
    """Every ``Accept`` of the table, for one ``f:auto`` URL through the shipped VCL: at most one
    render per bucket (3 for the whole table, against one per distinct ``Accept`` with the stock
    VCL), each client gets the format of its bucket, and that format is one its own ``Accept``
    allows (AVIF only if it lists image/avif with q > 0, WebP only if image/webp with q > 0). An
    animated original is never answered with AVIF. Repeat requests are hits; the internal headers
    are stripped from every answer."""
    url = signed(f"/w:300/demo/{original}")
    decoded: dict[str, str] = {}  # body digest -> loader
    for case in CASES:
        response = get(stack.cdn, url, case["accept"])
        assert response.status_code == 200, (case_id(case), response.status_code, response.text[:200])
        fmt = response.headers["content-type"].removeprefix("image/")
        expected = EXPECTED[original][case["bucket"]]
        assert fmt == expected, f"{case_id(case)} (bucket {case['bucket']}): got {fmt}, expected {expected}"

        allowed = accepted_image_types(case["accept"] or "")
        assert fmt not in ("avif", "webp") or fmt in allowed, f"{case_id(case)}: {fmt} is not in {set(allowed)}"
        assert "accept" in response.headers["vary"].lower()
        assert_no_internal_headers(response)

        digest = hashlib.sha256(response.content).hexdigest()
        if digest not in decoded:
            image = decode(response.content)
            decoded[digest] = loader_format(image)
            if original == ANIMATED:
                assert image.get_n_pages() > 1, f"{fmt} lost the animation"
        assert decoded[digest] == LOADER[fmt], (case_id(case), decoded[digest])

    buckets = {case["bucket"] for case in CASES}
    assert stack.renders() <= 3
    assert stack.renders() == len(buckets), "one render per bucket, no more, no fewer"
    assert stack.backend_requests() == len(buckets), "Varnish asked the proxy more than once per bucket"

    again = get(stack.cdn, url, CASES[0]["accept"])
    assert is_hit(again) and len(again.headers["x-varnish"].split()) == 2, again.headers.get("x-varnish")
    assert stack.renders() == len(buckets)


#: Errors the proxy answers with ``Cache-Control: public, max-age=60``, which stock Varnish caches
#: only for 404: it gives 400, 403, 413, 415 and 422 no TTL at all.
ERRORS = {
    "403 bad signature": (403, lambda: signed(f"/w:300/demo/{OTHER_PHOTO}").replace("/w:300/", "/w:301/")),
    "415 SVG": (415, lambda: signed("/w:300/demo/logo.svg")),
    "400 bad option": (400, lambda: signed(f"/w:abc/demo/{OTHER_PHOTO}")),
    "413 pixel bomb": (413, lambda: signed("/w:300/demo/bomb.png")),
    "422 empty original": (422, lambda: signed("/w:300/demo/empty.jpg")),
    "404 missing original": (404, lambda: signed("/w:300/demo/zz-no-such-image.jpg")),
}


@pytest.mark.slow
def test_errors_are_cached_for_their_max_age(stack: Stack):
    """A 403 (bad signature), a 415 (BMP) and the proxy's other 4xx are answered by Varnish from
    its cache the second time: the proxy counts one request each."""
    for name, (status, make_url) in ERRORS.items():
        url = make_url()
        first = stack.cdn.get(url, headers={"Accept": "image/avif,image/webp"})
        second = stack.cdn.get(url, headers={"Accept": "image/avif,image/webp"})
        assert first.status_code == status, (name, first.status_code, first.text[:200])
        assert not is_hit(first), name
        assert second.status_code == status, (name, second.status_code)
        assert is_hit(second), f"{name}: Varnish went to the proxy again (X-Varnish {second.headers['x-varnish']!r})"
        assert second.text == first.text
        assert second.headers["cache-control"] == "public, max-age=60"
        assert_no_internal_headers(second)
    assert stack.answered("4xx", "none") == len(ERRORS), "the proxy answered an error twice"
    assert stack.backend_requests() == len(ERRORS)
    assert stack.renders() == 0


@pytest.mark.slow
def test_5xx_are_cached_for_one_second_and_no_longer(stack: Stack):
    """A 502 (``max-age=1``) is held for that second, which coalesces a burst into one proxy
    request, and no longer; once it expires the next request goes to the proxy and is stored again
    (a hit follows), so the stock 120 s hit-for-miss, which would send every request of a burst to
    the proxy for two minutes, is not in play."""
    url = signed("/w:300/broken/photo.jpg")
    first = stack.cdn.get(url)
    started = time.monotonic()
    second = stack.cdn.get(url)
    assert first.status_code == 502 and first.headers["cache-control"] == "public, max-age=1", first.text
    assert not is_hit(first)
    if time.monotonic() - started < 0.8:  # a very slow machine may have let the second lapse
        assert is_hit(second), second.headers["x-varnish"]
    time.sleep(max(0.0, started + 1.3 - time.monotonic()))
    third = stack.cdn.get(url)
    fourth = stack.cdn.get(url)
    assert third.status_code == 502 and not is_hit(third), "a 502 was served after its max-age"
    assert is_hit(fourth), "the 502 became a hit-for-miss instead of a 1 s object"
    assert stack.answered("5xx", "none") == stack.backend_requests() == 2


@pytest.mark.slow
def test_operator_routes_and_query_strings_stop_at_varnish(stack: Stack):
    """/metrics, /readyz, /healthz, /purge (and their look-alikes) are a 404 from Varnish, a query
    string a 400, a method other than GET/HEAD/PURGE a 405: the proxy sees none of them."""
    for path in (
        "/metrics",
        "/readyz",
        "/healthz",
        "/purge",
        "/METRICS",
        "/%6Detrics",
        "/metrics/",
        "/metrics?format=json",
        "//metrics",
        "/",
        "/favicon.ico",
    ):
        status, headers, body = raw(stack.varnish, "GET", path)
        assert status == 404, (path, status, body[:200])
        assert headers["content-type"].startswith("text/plain"), path
    status, headers, _ = raw(stack.varnish, "POST", "/purge", {"Content-Length": "0"})
    assert status == 405 and headers["allow"] == "GET, HEAD"

    url = signed(f"/w:300/f:webp/demo/{OTHER_PHOTO}")
    for query in ("?cb=1", "?cb=2", "?w=100&f=avif"):
        response = stack.cdn.get(url + query)
        assert response.status_code == 400, (query, response.status_code)
        assert "query string" in response.text
        assert response.headers["cache-control"] == "public, max-age=60"
    assert stack.backend_requests() == 0, "a refused request reached the proxy"
    assert stack.answered("4xx", "none") == 0

    plain = stack.cdn.get(url)  # the same URL without a query string works
    assert plain.status_code == 200 and plain.headers["content-type"] == "image/webp"
    bare = stack.cdn.get(url + "?")  # an empty query is no query: the same object
    assert bare.status_code == 200 and is_hit(bare)
    assert stack.backend_requests() == 1


@pytest.mark.slow
def test_purge_by_surrogate_key(stack: Stack):
    """``PURGE`` with ``xkey-purge: <Surrogate-Key of an original>`` from 127.0.0.1 removes every
    cached derivative of that original (every size, format and Accept bucket): the next request for
    each is a miss and a render, while a derivative of another original stays a hit. From an
    address outside the purgers ACL it is a 403 and removes nothing."""
    purged = [
        (signed(f"/w:300/demo/{PHOTO}"), "image/avif,image/webp"),
        (signed(f"/w:300/demo/{PHOTO}"), "*/*"),
        (signed(f"/w:200/f:webp/demo/{PHOTO}"), "*/*"),
    ]
    kept = (signed(f"/w:300/f:webp/demo/{OTHER_PHOTO}"), "*/*")
    for url, accept in [*purged, kept]:
        assert get(stack.cdn, url, accept).status_code == 200
        assert is_hit(get(stack.cdn, url, accept))
    assert stack.renders() == 4
    tag = surrogate_key("demo", PHOTO)

    outsider = httpx.Client(
        base_url=stack.varnish.url, timeout=TIMEOUT, transport=httpx.HTTPTransport(local_address="127.0.0.2")
    )
    with outsider:
        refused = outsider.request("PURGE", "/", headers={"xkey-purge": tag})
    assert refused.status_code == 403, refused.text
    assert all(is_hit(get(stack.cdn, url, accept)) for url, accept in purged)

    assert stack.cdn.request("PURGE", "/").status_code == 400  # no xkey-purge header

    response = stack.cdn.request("PURGE", "/", headers={"xkey-purge": tag})
    assert response.status_code == 200, response.text
    assert response.headers["xkey-purged"] == str(len(purged)), response.text
    assert response.text == f"purged {len(purged)} objects\n"

    for url, accept in purged:
        again = get(stack.cdn, url, accept)
        assert again.status_code == 200
        assert not is_hit(again), f"{url} ({accept}) survived the purge"
    assert stack.renders() == 4 + len(purged)
    assert is_hit(get(stack.cdn, *kept)), "a derivative of another original was purged"

    direct = stack.proxy.get(purged[2][0])  # the tag the test purged is the one the proxy sends
    assert direct.headers["surrogate-key"] == tag and direct.headers["cache-tag"] == tag


@pytest.mark.slow
def test_replaced_original_then_purge_serves_the_new_image_at_once(photos: Path, tmp_path: Path):
    """The operator's takedown/replace flow end to end: an original is replaced on disk, one
    ``POST /purge`` to the proxy drops it from the proxy's memory and, through the ``varnish:``
    purge hook, every derivative from Varnish; the very next request through Varnish renders the
    new image, and a derivative of an unrelated original stays a hit."""
    require_varnish()
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / name).write_bytes((photos / OTHER_PHOTO).read_bytes())
    varnish_port = free_port()
    settings = dict(admin_token="admin-token-for-cdn-recipes", purge_hooks=[f"varnish:http://127.0.0.1:{varnish_port}"])
    urls = [signed("/w:120/f:png/t/a.jpg"), signed("/w:60/f:png/t/a.jpg")]
    unrelated = signed("/w:120/f:png/t/b.jpg")
    with (
        make_client({"t": str(tmp_path)}, **settings) as proxy,
        start_varnish(proxy.base_url.host, proxy.base_url.port, vcl=SHIPPED_VCL, port=varnish_port) as varnish,
        httpx.Client(base_url=varnish.url, timeout=TIMEOUT) as cdn,
    ):
        before = [cdn.get(url) for url in [*urls, unrelated]]
        assert all(r.status_code == 200 for r in before)
        assert all(is_hit(cdn.get(url)) for url in [*urls, unrelated])
        replacement = tmp_path / "new.jpg"
        pyvips.Image.black(400, 300).new_from_image([0, 0, 255]).cast("uchar").write_to_file(str(replacement))
        replacement.replace(tmp_path / "a.jpg")
        assert is_hit(cdn.get(urls[0]))  # the CDN still has the old derivative: it is immutable
        purge = proxy.post(
            "/purge",
            json={"origin": "t", "key": "a.jpg"},
            headers={"Authorization": "Bearer admin-token-for-cdn-recipes"},
        )
        assert purge.status_code == 200, purge.text
        assert [(h["hook"], h["ok"], h["status"]) for h in purge.json()["hooks"]] == [
            (f"varnish:http://127.0.0.1:{varnish_port}", True, 200)
        ]
        for url in urls:
            after = cdn.get(url)
            assert not is_hit(after), f"{url} survived the purge"
            r, g, b = decode(after.content)(5, 5)[:3]
            assert r < 5 and g < 5 and b > 250  # the new (blue) image, not the old photo
            assert after.headers["etag"] != before[urls.index(url)].headers["etag"]
        assert is_hit(cdn.get(unrelated)), "an unrelated original was purged"


@pytest.mark.slow
def test_info_urls_pass_through_and_are_purged_with_the_original(stack: Stack):
    """``/info`` is signed and cacheable (``moderation_max_age``, the original's surrogate key), so
    the VCL forwards it, as config/cdn.md says: the proxy's JSON, a hit the second time, gone
    after a PURGE of the original's tag. Its look-alikes without a signature stay a 404 here."""
    url = signed(f"/info/demo/{OTHER_PHOTO}")  # README "GET /info": its own signature domain, /info/{sig}/...
    direct = stack.proxy.get(url)
    assert direct.status_code == 200, direct.text
    first = stack.cdn.get(url)
    assert first.status_code == 200 and first.headers["content-type"] == "application/json"
    assert first.json()["width"] == direct.json()["width"] == 800
    assert is_hit(stack.cdn.get(url))
    assert_no_internal_headers(first)
    tag = surrogate_key("demo", OTHER_PHOTO)
    assert stack.cdn.request("PURGE", "/", headers={"xkey-purge": tag}).headers["xkey-purged"] == "1"
    assert not is_hit(stack.cdn.get(url))
    for path in ("/info", "/info/", "/info?x=1"):
        status, _, _ = raw(stack.varnish, "GET", path)
        assert status in (400, 404), (path, status)


@pytest.mark.slow
def test_grace_only_for_immutable_derivatives_while_the_proxy_is_down(photos: Path):
    """With ``cache_max_age = 1`` (immutable derivatives expire after 1 s) and ``error_max_age = 1``:
    once the only proxy is stopped and the /healthz probe has marked it sick, an expired immutable
    derivative is served from grace (a hit, older than its TTL), while an expired URL signed with
    ``exp:`` and an expired 404 are not (no grace for answers that are not immutable, nor for
    errors): those get the VCL's 503, never a stale copy."""
    require_varnish()
    port = free_port()
    # One answer per derivative (no tiers, nothing stored): this test is about immutable answers and
    # grace. A quality target's first answer is its fast tier on purpose, not immutable; its grace is
    # the next tests'.
    settings = load_settings(
        origins={"demo": str(photos)},
        signing_key=KEY,
        cache_max_age=1,
        error_max_age=1,
        optimise="off",
        result_storage="off",
    )
    immutable = signed(f"/w:90/f:webp/demo/{OTHER_PHOTO}")
    expiring = signed(f"/w:91/exp:{int(time.time()) + 3600}/f:webp/demo/{OTHER_PHOTO}")
    missing = signed("/w:92/f:webp/demo/zz-no-such-image.jpg")  # error_max_age 1: a 404 cached 1 s
    with (
        start_varnish("127.0.0.1", port, vcl=SHIPPED_VCL) as varnish,
        httpx.Client(base_url=varnish.url, timeout=TIMEOUT) as cdn,
    ):
        with serve_app(create_app(settings), port=port):
            wait_until_healthy(cdn, missing)
            first = {url: cdn.get(url) for url in (immutable, expiring, missing)}
        stopped = time.monotonic()
        assert first[immutable].headers["cache-control"] == "public, max-age=1, immutable"
        assert first[expiring].headers["cache-control"] == "public, max-age=1"
        assert first[missing].status_code == 404
        deadline = stopped + 10
        while backend_health(varnish) != {"default": False}:  # the probe: sick after 2 failures of 3, 1/s
            assert time.monotonic() < deadline, backend_health(varnish)
            time.sleep(0.25)
        time.sleep(max(0.0, stopped + 2 - time.monotonic()))
        down = cdn.get(missing)
        assert down.status_code == 503 and down.headers["cache-control"] == "no-store", down.text
        assert down.text == "503 no proxy answered\n"

        graced = cdn.get(immutable)
        assert graced.status_code == 200 and is_hit(graced), graced.headers
        assert age(graced) >= 2  # past its 1 s TTL: served from grace
        assert graced.content == first[immutable].content
        assert cdn.get(expiring).status_code == 503  # an exp: URL is never served past its max-age


IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.mark.slow
def test_the_fast_tier_is_cached_for_its_max_age_then_the_optimised_tier_replaces_it(photos: Path, tmp_path: Path):
    """A quality target's first answer (the fast tier, ``optimise_max_age = 1`` here) is cached for its
    max-age, not a year: once the optimised tier is stored, the cache delivers it after at most that
    max-age and the 10 s of grace a healthy proxy allows (the stale fast tier meanwhile, fetched again
    in the background), then keeps it, immutable, as a hit."""
    tiers = {"optimise": "background", "result_storage": str(tmp_path / "results")}
    with stack_with(photos, SHIPPED_VCL, optimise_max_age=1, optimise_stale_while_revalidate=30, **tiers) as stack:
        url = signed(f"/w:93/f:webp/demo/{OTHER_PHOTO}")
        fast = stack.cdn.get(url)
        assert fast.status_code == 200 and not is_hit(fast)
        assert fast.headers["cache-control"] == "public, max-age=1, stale-while-revalidate=30"
        deadline = time.monotonic() + 60
        while stack.proxy.get(url).headers["cache-control"] != IMMUTABLE:  # the proxy itself: stored yet?
            assert time.monotonic() < deadline, "the optimised tier was never stored"
            time.sleep(0.2)
        deadline = time.monotonic() + 1 + 10 + 5  # max-age, healthy grace, margin
        while (answer := stack.cdn.get(url)).headers["cache-control"] != IMMUTABLE:
            assert answer.headers["etag"] == fast.headers["etag"], answer.headers  # the fast tier meanwhile
            assert time.monotonic() < deadline, "the cache kept the fast tier past its max-age and grace"
            time.sleep(0.2)
        assert answer.status_code == 200 and answer.headers["etag"] != fast.headers["etag"]
        assert decode(answer.content).width == 93
        again = stack.cdn.get(url)
        assert is_hit(again) and again.headers["etag"] == answer.headers["etag"]


@pytest.mark.slow
def test_the_fast_tier_is_graced_while_no_proxy_is_healthy_as_long_as_its_stale_while_revalidate(
    photos: Path, tmp_path: Path
):
    """The fast tier allows ``stale-while-revalidate`` seconds of stale answers (8 here, after a
    max-age of 1): while no proxy is healthy the cache serves it from grace within them, and the
    VCL's 503 after them, never the 24 h of grace of an immutable derivative."""
    require_varnish()
    swr = 8
    port = free_port()
    settings = load_settings(
        origins={"demo": str(photos)},
        signing_key=KEY,
        optimise="background",
        result_storage=str(tmp_path / "results"),
        optimise_max_age=1,
        optimise_stale_while_revalidate=swr,
    )
    url = signed(f"/w:94/f:webp/demo/{OTHER_PHOTO}")
    missing = signed("/w:95/f:webp/demo/zz-no-such-image.jpg")
    with (
        start_varnish("127.0.0.1", port, vcl=SHIPPED_VCL) as varnish,
        httpx.Client(base_url=varnish.url, timeout=TIMEOUT) as cdn,
    ):
        with serve_app(create_app(settings), port=port):
            wait_until_healthy(cdn, missing)
            fast = cdn.get(url)
            fetched = time.monotonic()
        assert fast.headers["cache-control"] == f"public, max-age=1, stale-while-revalidate={swr}"
        deadline = time.monotonic() + 10
        while backend_health(varnish) != {"default": False}:
            assert time.monotonic() < deadline, backend_health(varnish)
            time.sleep(0.25)
        time.sleep(max(0.0, fetched + 2 - time.monotonic()))  # past its max-age
        assert time.monotonic() < fetched + 1 + swr - 1, "the probe took too long to see the proxy down"
        graced = cdn.get(url)
        assert graced.status_code == 200 and is_hit(graced), graced.headers
        assert age(graced) >= 1 and graced.content == fast.content  # past its max-age: from grace
        time.sleep(max(0.0, fetched + 1 + swr + 1.5 - time.monotonic()))
        gone = cdn.get(url)
        assert gone.status_code == 503 and gone.text == "503 no proxy answered\n"


@pytest.mark.slow
def test_internal_headers_switch(photos: Path):
    """The documented switch at the top of the VCL: a client listed in ``show_internal_headers``
    sees Surrogate-Key, Cache-Tag, Server-Timing and xkey (they are stripped for everyone else)."""
    empty = re.search(r"acl show_internal_headers \{\s*\}", SHIPPED_VCL)
    assert empty, "the switch is no longer an empty ACL at the top of default.vcl"
    vcl = SHIPPED_VCL.replace(empty.group(0), 'acl show_internal_headers {\n    "127.0.0.1";\n}')
    with stack_with(photos, vcl) as stack:
        response = stack.cdn.get(signed(f"/w:120/f:webp/demo/{OTHER_PHOTO}"))
        assert response.status_code == 200
        tag = surrogate_key("demo", OTHER_PHOTO)
        assert response.headers["surrogate-key"] == tag
        assert response.headers["cache-tag"] == tag
        assert response.headers["xkey"] == tag
        assert "render" in response.headers["server-timing"]


def test_vcl_points_at_the_default_proxy_port():
    """The shipped VCL's backend is the proxy's default address (the tests rewrite the port), probed
    on /healthz, alone in the round-robin director (config/cdn.md, "Restarts", adds more)."""
    assert re.search(
        r'backend default \{\s*\.host = "127\.0\.0\.1";\s*\.port = "8080";\s*'
        r"\.probe = edgeproxy_health;\s*\}",
        SHIPPED_VCL,
    )
    assert re.search(r'probe edgeproxy_health \{\s*\.url = "/healthz";', SHIPPED_VCL)
    assert re.findall(r"^\s*proxies\.add_backend\((\w+)\);", SHIPPED_VCL, re.MULTILINE) == ["default"]


# --- client hints: the table, the proxy, the VCL and the CloudFront Function ---------------------

_DEFAULTS = Settings.model_fields
SAVE_DATA_QUALITY: int = _DEFAULTS["save_data_quality"].default
MAX_DIMENSION: int = _DEFAULTS["max_output_dimension"].default
HINT_BUCKETS: dict[str, list[str]] = HINT_TABLE["buckets"]
#: Specs that read each hint, the ones that show it best: w:auto with the default fallback and with
#: two fallbacks far apart (a hint gives the same width to both, no hint does not), with dpr:auto;
#: dpr:auto with a fixed and with an auto width; any URL without q.
READERS: dict[str, list[TransformSpec]] = {
    "Sec-CH-Width": [
        TransformSpec(width_auto=True),
        TransformSpec(width_auto=True, width=1),
        TransformSpec(width_auto=True, width=3000),
        TransformSpec(width_auto=True, dpr_auto=True),
    ],
    "Sec-CH-DPR": [TransformSpec(width=100, dpr_auto=True), TransformSpec(width_auto=True, width=300, dpr_auto=True)],
    "Save-Data": [TransformSpec(width=100)],
}
#: A URL (after the signature) that reads each hint, for the tests through Varnish and the proxy.
HINT_URLS: dict[str, str] = {
    "Sec-CH-Width": f"/w:auto/f:webp/demo/{PHOTO}",
    "Sec-CH-DPR": f"/w:200/dpr:auto/f:webp/demo/{PHOTO}",
    "Save-Data": f"/w:300/f:webp/demo/{PHOTO}",
}


def hint_case_id(case: dict) -> str:
    return f"{case['header']}: {case['value']!r}"


def negotiated(spec: TransformSpec, header: str, hint: str | None) -> Negotiated:
    """The proxy's negotiation (default settings, ``client_hints`` on) of ``spec`` with ``header:
    hint`` (``None``: no such header)."""
    headers = {} if hint is None else {header.lower(): hint}
    return negotiate(spec, headers, client_hints=True, save_data_quality=SAVE_DATA_QUALITY, max_dimension=MAX_DIMENSION)


def proxy_bucket(header: str, hint: str | None) -> str | None:
    """The bucket the proxy itself rounds ``header: hint`` to, as a header value; None where it
    reads no hint at all."""
    if header == "Save-Data":
        quality = negotiated(TransformSpec(width=100), header, hint).spec.quality
        return "on" if quality == SAVE_DATA_QUALITY else None
    if header == "Sec-CH-Width":
        low, high = (
            negotiated(TransformSpec(width_auto=True, width=fallback), header, hint).spec.width
            for fallback in (1, 3000)
        )
        return str(low) if low == high else None  # no hint: each fallback gives its own bucket
    if _hint_number(hint, 1.0, 4.0) is None:  # a hint of 1 and no hint both give dpr 1
        return None
    return f"{negotiated(TransformSpec(width=100, dpr_auto=True), header, hint).spec.dpr:g}"


def assert_same_answer(header: str, sent: str | None, normalised: str | None, context: str) -> None:
    """The header the CDN forwards (``normalised``) makes the proxy answer exactly as the client's
    own (``sent``) would."""
    for spec in READERS[header]:
        direct, through = negotiated(spec, header, sent), negotiated(spec, header, normalised)
        assert through == direct, f"{context}: {spec} reads {sent!r} as {direct.spec}, {normalised!r} as {through.spec}"


def test_hint_table_buckets_are_the_proxy_defaults():
    assert HINT_BUCKETS["Sec-CH-Width"] == [str(w) for w in AutoSize().width_buckets]
    assert HINT_BUCKETS["Sec-CH-DPR"] == [f"{d:g}" for d in AutoSize().dpr_buckets]
    assert AutoSize().width_buckets == tuple(_DEFAULTS["auto_width_buckets"].default_factory())
    assert AutoSize().dpr_buckets == tuple(_DEFAULTS["auto_dpr_buckets"].default_factory())
    assert AutoSize().width_fallback == _DEFAULTS["auto_width_fallback"].default
    values = {(case["header"], case["value"]) for case in HINT_CASES}
    assert len(values) == len(HINT_CASES), "a row is listed twice"
    assert all(isinstance(case["browser"], bool) for case in HINT_CASES), "every row says browser: true or false"
    for header, needed in {
        "Sec-CH-Width": ["601", "602", "0", "", "abc", "-5", "1e9", "inf", "600.4", " 640 ", "1000000", None],
        "Sec-CH-DPR": ["2.625", "1.75", "1", "1.100000023841858", "0.5", "", "abc", "-1", None],
        "Save-Data": ["on", "On", "off", None],
    }.items():
        for hint in needed:
            assert (header, hint) in values, (header, hint)
    for header, buckets in HINT_BUCKETS.items():
        rows = [case for case in HINT_CASES if case["header"] == header]
        assert {case["bucket"] for case in rows if case["browser"]} == {*buckets, None}, (
            f"{header}: a browser value for every bucket, and no header"
        )
        assert any(case["bucket"] is None and not case["browser"] and case["value"] is not None for case in rows), (
            f"{header}: a junk value that is removed"
        )


@pytest.mark.parametrize("case", HINT_CASES, ids=hint_case_id)
def test_hint_table_agrees_with_the_proxy(case: dict):
    """Every bucket is one the proxy renders as itself (what keeps a CDN's cache coherent: the
    backend sees the bucket, never the client's value). For what browsers send, the bucket is also
    the proxy's own rounding of the value: a browser gets the answer it would get without the CDN.
    Junk rows are held only to the recipes' bucket (usually none: no hint)."""
    header, hint, bucket = case["header"], case["value"], case["bucket"]
    if bucket is not None:
        assert bucket in HINT_BUCKETS[header]
        assert proxy_bucket(header, bucket) == bucket, "the proxy rounds a bucket to another one"
    if case["browser"]:
        assert proxy_bucket(header, hint) == bucket
        assert_same_answer(header, hint, bucket, hint_case_id(case))


def echo_hints(request: Request) -> Reply:
    """Answers with the hint headers it received (every copy) and any X-Hint* header, as JSON,
    uncacheable."""
    seen: dict[str, list[str] | None] = {
        name.lower(): request.headers.get_all(name) for name in (*HINT_BUCKETS, "Accept")
    }
    seen["leaked"] = [name for name in request.headers if name.lower().startswith("x-hint")]
    return Reply(
        200, json.dumps(seen).encode(), headers={"Content-Type": "application/json", "Cache-Control": "no-store"}
    )


@contextlib.contextmanager
def hint_echo() -> Iterator[Varnish]:
    """The shipped VCL in front of a backend that echoes the hint headers Varnish forwards."""
    require_varnish()
    with (
        serve_origin(fallback=echo_hints) as backend,
        start_varnish("127.0.0.1", backend.port, vcl=SHIPPED_VCL) as varnish,
    ):
        yield varnish


def send_hint(port: int, path: str, header: str, hint: str | None) -> tuple[int, bytes]:
    """GET ``path`` with ``header: hint`` sent byte for byte (as Latin-1; httpx would refuse or trim
    some values), plus an ``X-Hint`` (the VCL's working header) that the VCL must not trust."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.putheader("X-Hint", "1")
        if hint is not None:
            conn.putheader(header, hint.encode("latin-1"))
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def forwarded(varnish: Varnish, header: str, hint: str | None) -> str | None:
    """The ``header`` Varnish forwards for a w:auto/dpr:auto URL requested with ``header: hint``;
    None when it forwards none. Exactly one copy, and no X-Hint reaches the backend."""
    status, body = send_hint(varnish.port, "/sig/w:auto/dpr:auto/demo/photo.jpg", header, hint)
    assert status == 200, (header, hint, status, body[:200])
    seen = json.loads(body)
    assert seen["leaked"] == [], f"{header}: {hint!r}: working headers reached the backend: {seen['leaked']}"
    copies = seen[header.lower()]
    assert copies is None or len(copies) == 1, copies
    return copies[0] if copies else None


@pytest.mark.slow
def test_hint_table_through_varnish():
    """Every row through the shipped VCL: the backend sees exactly the row's bucket, or no header."""
    with hint_echo() as varnish:
        wrong = {
            hint_case_id(case): got
            for case in HINT_CASES
            if (got := forwarded(varnish, case["header"], case["value"])) != case["bucket"]
        }
    assert not wrong, f"the VCL forwards other buckets than the table: {wrong}"


@pytest.mark.slow
def test_hint_table_through_varnish_and_the_proxy(photos: Path):
    """Coherence, end to end: for every row, Varnish in front of the proxy serves the very bytes
    the proxy answers to the row's bucket (or to no header); for what browsers send, also the bytes
    it answers to the value itself. One render per bucket (and one without the header) per URL."""
    direct: dict[tuple[str, str, str | None], bytes] = {}

    def from_proxy(stack: Stack, url: str, header: str, hint: str | None) -> bytes:
        if (url, header, hint) not in direct:
            status, body = send_hint(stack.proxy.base_url.port, url, header, hint)
            assert status == 200, (header, hint, body[:200])
            direct[url, header, hint] = body
        return direct[url, header, hint]

    with stack_with(photos, SHIPPED_VCL, client_hints=True) as stack:
        for case in HINT_CASES:
            header, hint, bucket = case["header"], case["value"], case["bucket"]
            url = signed(HINT_URLS[header])
            status, served = send_hint(stack.varnish.port, url, header, hint)
            assert status == 200, (hint_case_id(case), served[:200])
            assert served == from_proxy(stack, url, header, bucket), f"{hint_case_id(case)}: not the bucket's answer"
            if case["browser"]:
                assert served == from_proxy(stack, url, header, hint), f"{hint_case_id(case)}: not the proxy's answer"
        assert stack.backend_requests() == sum(len(buckets) + 1 for buckets in HINT_BUCKETS.values())


def random_hints(count: int, seed: int = 20261123) -> list[tuple[str, str, bool]]:
    """``count`` seeded (header, hint, browser) triples for each header. Browser-shaped: integer
    widths 0..5000; DPRs 0.5..5 with up to 3 decimals, or a float32 printed as a double
    (1.100000023841858), as Chromium sends them, often at a bucket edge or next to it; Save-Data
    "on". Junk: numbers within 1e-9 of a
    bucket edge, decimals with signs, exponents (some overflowing), underscores or many digits,
    random characters, other Save-Data spellings."""
    rng = random.Random(seed)
    edges = [float(b) for b in HINT_BUCKETS["Sec-CH-Width"] + HINT_BUCKETS["Sec-CH-DPR"]]

    def digits(n: int) -> str:
        return "".join(rng.choice("0123456789") for _ in range(n))

    def junk() -> str:
        kind = rng.random()
        if kind < 0.3:
            offset = rng.choice([0, 1, -1, 0.5, -0.5, 1e-3, -1e-3, 1e-6, -1e-6, 1e-9, -1e-9, 0.0004])
            return repr(round(rng.choice(edges) + offset, 10))
        if kind < 0.7:
            text = rng.choice(["", "", "+", "-"]) + digits(rng.randint(0, 8))
            if rng.random() < 0.5:
                text += "." + digits(rng.randint(0, 24))
            if rng.random() < 0.3:
                exponent = rng.choice([rng.randint(0, 5), rng.randint(0, 400)])
                text += rng.choice("eE") + rng.choice(["", "+", "-"]) + str(exponent)
            if rng.random() < 0.1 and len(text) > 2:
                cut = rng.randint(1, len(text) - 1)
                text = text[:cut] + "_" + text[cut:]
            return text
        return "".join(rng.choice("0123456789._eE+- inaf\t\xa0\x85") for _ in range(rng.randint(0, 8)))

    def width() -> str:
        if rng.random() < 0.3:  # at a bucket edge or next to one
            return str(int(rng.choice(HINT_BUCKETS["Sec-CH-Width"])) + rng.choice([-1, 0, 1]))
        return str(rng.randint(0, 5000))

    def dpr() -> str:
        kind = rng.random()
        if kind < 0.4:
            return repr(struct.unpack("f", struct.pack("f", rng.uniform(0.5, 5)))[0])
        thousandths = rng.randint(500, 5000)
        if kind < 0.7:  # at a bucket edge or next to one
            thousandths = round(1000 * float(rng.choice(HINT_BUCKETS["Sec-CH-DPR"]))) + rng.choice([-1, 0, 1])
        return f"{thousandths / 1000:.3f}".rstrip("0").rstrip(".")

    triples = []
    for _ in range(count):
        browser = rng.random() < 0.5
        triples.append(("Sec-CH-Width", width() if browser else junk(), browser))
        browser = rng.random() < 0.5
        triples.append(("Sec-CH-DPR", dpr() if browser else junk(), browser))
    save_data = ["on", "On", "oN", "\ton", "on\xa0", "o n", "onn", "0", "off", ""]
    return triples + [("Save-Data", value, value == "on") for value in save_data]


RANDOM_HINTS = random_hints(300)


def assert_random_hints(recipe: str, results: list[str | None]) -> None:
    """Every random value became a bucket or was removed; a browser-shaped one became the proxy's
    own rounding of it."""
    assert len(results) == len(RANDOM_HINTS)
    for (header, hint, browser), sent in zip(RANDOM_HINTS, results, strict=True):
        assert sent is None or sent in HINT_BUCKETS[header], (recipe, header, hint, sent)
        if browser:
            assert sent == proxy_bucket(header, hint), (recipe, header, hint, sent)
            assert_same_answer(header, hint, sent, f"{recipe}, {header}: {hint!r}")
    assert sum(browser for *_, browser in RANDOM_HINTS) > 250
    assert len({sent for sent in results}) >= 12, "the random values should reach most buckets"


@pytest.mark.slow
def test_vcl_on_random_hints():
    """Seeded random values through the shipped VCL (seen by the echo backend)."""
    with hint_echo() as varnish:
        assert_random_hints("VCL", [forwarded(varnish, header, hint) for header, hint, _ in RANDOM_HINTS])


def test_cloudfront_function_on_random_hints():
    """The same values through the CloudFront Function's hint rules (run by node)."""
    node = node_or_skip("the CloudFront Function")
    script = (
        "const fn = require(process.argv[1]);"
        "const pairs = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "console.log(JSON.stringify(pairs.map(([h, v]) => fn.HINTS[h.toLowerCase()](v))));"
    )
    pairs = [(header, hint) for header, hint, _ in RANDOM_HINTS]
    result = subprocess.run(
        [node, "-e", script, str(CLOUDFRONT / "accept-bucket.js")],
        input=json.dumps(pairs),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert_random_hints("CloudFront", json.loads(result.stdout))


#: 20 distinct Sec-CH-Width values (integers, as Chromium sends them) in three buckets, and junk
#: that the VCL removes (served as no hint: w:auto's fallback, 640 px).
WIDTHS: dict[str | None, list[str | None]] = {
    "640": ["561", "570", "580", "590", "600", "601", "602", "639", "640"],
    "750": ["641", "665", "700", "720", "740", "750"],
    "828": ["751", "768", "800", "810", "828"],
    None: [None, "1e3", "+1000", "1000px", "inf"],
}
#: 15 distinct Sec-CH-DPR values in three buckets, and junk.
DPRS: dict[str | None, list[str | None]] = {
    "1.5": ["1.1", "1.25", "1.3", "1.333", "1.5"],
    "2": ["1.6", "1.75", "1.8", "2", "2.0"],
    "3": ["2.2", "2.5", "2.625", "2.75", "3"],
    None: [None, "2e0", "+2", "2x"],
}
#: Save-Data values: "on" in any case, and others (no header among them).
SAVE_DATA: dict[str | None, list[str | None]] = {"on": ["on", "On", "ON", "oN"], None: ["off", "", "1", None]}


@pytest.mark.slow
@pytest.mark.parametrize("vcl", ["shipped", "without-hint-rewrite"])
def test_client_hints_through_varnish(photos: Path, vcl: str):
    """The proxy (client_hints on) behind the shipped VCL: 20 Sec-CH-Width values of one w:auto URL
    make 3 renders, one per bucket, and junk values one more (the no-hint answer); 15 Sec-CH-DPR
    values of a dpr:auto URL make 3, and junk one; Save-Data in any spelling makes 2. Every answer is
    the proxy's for the header Varnish forwards. Without the VCL's hint rewrite (the control)
    Varnish varies on the raw header and every distinct value is a render, although the proxy
    answers the same pixels."""
    shipped = vcl == "shipped"
    # (VCC refuses a sub that is never called: the control calls it under a condition never true.)
    never = "    if (false) {\n" + HINT_REWRITE + "    }\n"
    text = SHIPPED_VCL if shipped else SHIPPED_VCL.replace(HINT_REWRITE, never)
    assert text != SHIPPED_VCL or shipped, "the hint rewrite is no longer one `call` line in vcl_recv"
    with stack_with(photos, text, client_hints=True) as stack:

        def run(header: str, groups: dict, width_of) -> list[bytes]:
            url, spec = signed(HINT_URLS[header]), READERS[header][0]
            before = stack.renders()
            bodies = []
            for bucket, values in groups.items():
                for hint in values:
                    request = stack.cdn.build_request("GET", url)
                    if hint is not None:
                        request.headers[header] = hint
                    response = stack.cdn.send(request)
                    assert response.status_code == 200, (header, hint, response.text[:200])
                    assert header.lower() in response.headers["vary"].lower(), response.headers["vary"]
                    seen = negotiated(spec, header, bucket if shipped else hint).spec
                    assert decode(response.content).width == width_of(seen), (header, hint)
                    bodies.append(response.content)
            distinct = sum(len(values) for values in groups.values())
            assert stack.renders() - before == (len(groups) if shipped else distinct), header
            return bodies

        assert sum(len(values) for bucket, values in WIDTHS.items() if bucket) == 20
        run("Sec-CH-Width", WIDTHS, lambda spec: spec.width)
        assert sum(len(values) for bucket, values in DPRS.items() if bucket) == 15
        run("Sec-CH-DPR", DPRS, lambda spec: round(200 * spec.dpr))

        bodies = run("Save-Data", SAVE_DATA, lambda spec: 300)
        on, off = bodies[: len(SAVE_DATA["on"])], bodies[len(SAVE_DATA["on"]) :]
        assert len(set(on)) == len(set(off)) == 1 and max(map(len, on)) < min(map(len, off)), (
            "Save-Data: on should give one, smaller, answer"
        )

        assert stack.backend_requests() == stack.renders()
