"""The shipped CDN recipes (config/varnish/default.vcl, config/cloudfront/), proved against one truth.

``config/accept-buckets.json`` lists real-world ``Accept`` strings with the bucket each belongs to.
The table is checked against the proxy's own rules (``edgeproxy.negotiate.accepted_image_types``),
against the CloudFront Function (``node --test``), and against the shipped VCL: every row is sent
through a real Varnish running that file in front of edgeproxy, which must make at most one render
per bucket and give each client a format its ``Accept`` allows. The other tests prove the rest of
the VCL's contract: 4xx cached for their ``max-age``, 5xx for their one second and no longer,
operator routes and query strings stopped at the edge, internal headers stripped (and the switch
that keeps them), and PURGE by surrogate key.

What Varnish did is read from ``X-Varnish`` (two ids on a hit) and varnishstat's
``MAIN.backend_req``; what the proxy did from its own ``/metrics``, read directly.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pyvips

from edgeproxy.negotiate import accepted_image_types
from edgeproxy.responses import surrogate_key
from testkit.net import free_port
from testkit.varnish import Varnish, counter, is_hit, start_varnish
from tests.conftest import IN_CI, ROOT, decode, loader_format, make_client, signed
from tests.test_metrics import value
from tests.varnish import require_varnish

TABLE = json.loads((ROOT / "config" / "accept-buckets.json").read_text())
BUCKETS: dict[str, str] = TABLE["buckets"]
CASES: list[dict] = TABLE["cases"]
SHIPPED_VCL = (ROOT / "config" / "varnish" / "default.vcl").read_text()
CLOUDFRONT = ROOT / "config" / "cloudfront"

PHOTO = "flickr-2725x2225.jpg"
OTHER_PHOTO = "giunchedi-portrait.jpg"
ANIMATED = "dancing-banana.gif"
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


def test_table_covers_the_real_world_and_the_edge_cases():
    accepts = [case["accept"] for case in CASES]
    assert len(CASES) >= 20
    assert set(BUCKETS) == {"avif+webp", "webp", "none"}
    assert BUCKETS["none"] == "*/*"
    for needed in ("image/jxl,image/avif,image/webp,image/apng,*/*;q=0.8",  # the Accept that lists JPEG XL first
                   "image/avif;q=0,image/webp", "image/webp;q=0", "*/*", "", None):
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
    node = shutil.which("node")
    if node is None:
        if IN_CI:
            pytest.fail("CI=true but node is missing (.ci/run installs Debian's nodejs)")
        pytest.skip("node not installed (apt-get install nodejs): the CloudFront Function is untested")
    files = sorted(str(path.relative_to(ROOT)) for path in CLOUDFRONT.glob("*.test.js"))
    assert files, f"no *.test.js in {CLOUDFRONT}"
    result = subprocess.run([node, "--test", *files], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"node --test failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    passed = re.search(r"^# pass (\d+)$", result.stdout, re.MULTILINE)
    assert passed and int(passed.group(1)) >= len(CASES), result.stdout[-2000:]


# --- the shipped VCL in front of the proxy -------------------------------------------------------


@dataclass
class Stack:
    proxy: httpx.Client  # edgeproxy itself
    varnish: Varnish
    cdn: httpx.Client  # a client of Varnish

    def renders(self) -> float:
        """Renders the proxy ran: variant cache misses on its own ``/metrics``."""
        return value(self.proxy.get("/metrics").text, "edgeproxy_cache_lookups_total",
                     cache="variant", outcome="miss")

    def answered(self, status_class: str, fmt: str) -> float:
        return value(self.proxy.get("/metrics").text, "edgeproxy_requests_total",
                     status_class=status_class, format=fmt)

    def backend_requests(self) -> int:
        return counter(self.varnish, "MAIN.backend_req")


@contextlib.contextmanager
def stack_with(corpus: Path, vcl: str) -> Iterator[Stack]:
    """edgeproxy (fresh metrics) serving the corpus as ``demo``, behind Varnish running ``vcl``.
    Origin ``broken`` is an HTTP origin the SSRF guard refuses (loopback): a 502 on every key."""
    require_varnish()
    with make_client({"demo": str(corpus), "broken": "http://127.0.0.1:9/"}) as proxy:
        host, port = proxy.base_url.host, proxy.base_url.port
        with start_varnish(host, port, vcl=vcl) as varnish, \
                httpx.Client(base_url=varnish.url, timeout=TIMEOUT) as cdn:
            yield Stack(proxy, varnish, cdn)


@pytest.fixture
def stack(corpus: Path) -> Iterator[Stack]:
    """edgeproxy (fresh metrics) behind Varnish running config/varnish/default.vcl as shipped,
    its backend port rewritten to the proxy's."""
    with stack_with(corpus, SHIPPED_VCL) as running:
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
    "415 SVG": (415, lambda: signed("/w:300/demo/commons-logo.svg")),
    "400 bad option": (400, lambda: signed(f"/w:abc/demo/{OTHER_PHOTO}")),
    "413 pixel bomb": (413, lambda: signed("/w:300/demo/bomb-16384x16384.png")),
    "422 empty original": (422, lambda: signed("/w:300/demo/empty.jpg")),
    "404 missing original": (404, lambda: signed("/w:300/demo/zz-no-such-image.jpg")),
}


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


def test_operator_routes_and_query_strings_stop_at_varnish(stack: Stack):
    """/metrics, /readyz, /healthz, /purge (and their look-alikes) are a 404 from Varnish, a query
    string a 400, a method other than GET/HEAD/PURGE a 405: the proxy sees none of them."""
    for path in ("/metrics", "/readyz", "/healthz", "/purge", "/METRICS", "/%6Detrics", "/metrics/",
                 "/metrics?format=json", "//metrics", "/", "/favicon.ico"):
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


def test_purge_by_surrogate_key(stack: Stack):
    """``PURGE`` with ``xkey-purge: <Surrogate-Key of an original>`` from 127.0.0.1 removes every
    cached derivative of that original (every size, format and Accept bucket): the next request for
    each is a miss and a render, while a derivative of another original stays a hit. From an
    address outside the purgers ACL it is a 403 and removes nothing."""
    purged = [(signed(f"/w:300/demo/{PHOTO}"), "image/avif,image/webp"),
              (signed(f"/w:300/demo/{PHOTO}"), "*/*"),
              (signed(f"/w:200/f:webp/demo/{PHOTO}"), "*/*")]
    kept = (signed(f"/w:300/f:webp/demo/{OTHER_PHOTO}"), "*/*")
    for url, accept in [*purged, kept]:
        assert get(stack.cdn, url, accept).status_code == 200
        assert is_hit(get(stack.cdn, url, accept))
    assert stack.renders() == 4
    tag = surrogate_key("demo", PHOTO)

    outsider = httpx.Client(base_url=stack.varnish.url, timeout=TIMEOUT,
                            transport=httpx.HTTPTransport(local_address="127.0.0.2"))
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


def test_replaced_original_then_purge_serves_the_new_image_at_once(corpus: Path, tmp_path: Path):
    """The operator's takedown/replace flow end to end: an original is replaced on disk, one
    ``POST /purge`` to the proxy drops it from the proxy's memory and, through the ``varnish:``
    purge hook, every derivative from Varnish; the very next request through Varnish renders the
    new image, and a derivative of an unrelated original stays a hit."""
    require_varnish()
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / name).write_bytes((corpus / OTHER_PHOTO).read_bytes())
    varnish_port = free_port()
    settings = dict(admin_token="admin-token", purge_hooks=[f"varnish:http://127.0.0.1:{varnish_port}"])
    urls = [signed("/w:120/f:png/t/a.jpg"), signed("/w:60/f:png/t/a.jpg")]
    unrelated = signed("/w:120/f:png/t/b.jpg")
    with make_client({"t": str(tmp_path)}, **settings) as proxy, \
            start_varnish(proxy.base_url.host, proxy.base_url.port, vcl=SHIPPED_VCL, port=varnish_port) as varnish, \
            httpx.Client(base_url=varnish.url, timeout=TIMEOUT) as cdn:
        before = [cdn.get(url) for url in [*urls, unrelated]]
        assert all(r.status_code == 200 for r in before)
        assert all(is_hit(cdn.get(url)) for url in [*urls, unrelated])
        replacement = tmp_path / "new.jpg"
        pyvips.Image.black(400, 300).new_from_image([0, 0, 255]).cast("uchar").write_to_file(str(replacement))
        replacement.replace(tmp_path / "a.jpg")
        assert is_hit(cdn.get(urls[0]))  # the CDN still has the old derivative: it is immutable
        purge = proxy.post("/purge", json={"origin": "t", "key": "a.jpg"},
                           headers={"Authorization": "Bearer admin-token"})
        assert purge.status_code == 200, purge.text
        assert [(h["hook"], h["ok"], h["status"]) for h in purge.json()["hooks"]] == [
            (f"varnish:http://127.0.0.1:{varnish_port}", True, 200)]
        for url in urls:
            after = cdn.get(url)
            assert not is_hit(after), f"{url} survived the purge"
            r, g, b = decode(after.content)(5, 5)[:3]
            assert r < 5 and g < 5 and b > 250  # the new (blue) image, not the old photo
            assert after.headers["etag"] != before[urls.index(url)].headers["etag"]
        assert is_hit(cdn.get(unrelated)), "an unrelated original was purged"


def test_internal_headers_switch(corpus: Path):
    """The documented switch at the top of the VCL: a client listed in ``show_internal_headers``
    sees Surrogate-Key, Cache-Tag, Server-Timing and xkey (they are stripped for everyone else)."""
    empty = re.search(r"acl show_internal_headers \{\s*\}", SHIPPED_VCL)
    assert empty, "the switch is no longer an empty ACL at the top of default.vcl"
    vcl = SHIPPED_VCL.replace(empty.group(0), 'acl show_internal_headers {\n    "127.0.0.1";\n}')
    with stack_with(corpus, vcl) as stack:
        response = stack.cdn.get(signed(f"/w:120/f:webp/demo/{OTHER_PHOTO}"))
        assert response.status_code == 200
        tag = surrogate_key("demo", OTHER_PHOTO)
        assert response.headers["surrogate-key"] == tag
        assert response.headers["cache-tag"] == tag
        assert response.headers["xkey"] == tag
        assert "render" in response.headers["server-timing"]


def test_vcl_points_at_the_default_proxy_port():
    """The shipped VCL's backend is the proxy's default address (the tests rewrite the port)."""
    assert re.search(r'backend default \{\s*\.host = "127\.0\.0\.1";\s*\.port = "8080";', SHIPPED_VCL)
