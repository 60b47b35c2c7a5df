"""The CDN contract, proved with a real Varnish in front of edgeproxy as operators deploy it.

Each test serves edgeproxy with uvicorn in a thread, puts Debian's varnishd in front of it (the
stock builtin VCL unless the test needs more: ``tests/varnish.py``) and requests through Varnish.
What Varnish did is read from its ``X-Varnish`` header; what the proxy did (how many renders ran,
what it answered) from the proxy's own ``/metrics``, read directly rather than through Varnish.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testkit.app import make_client, signed
from testkit.env import require_varnish
from testkit.images import decode, loader_format
from testkit.metrics import value
from testkit.varnish import Varnish, age, is_hit, start_varnish

pytestmark = pytest.mark.slow  # a real Varnish: not in the quick loop (pytest -m 'not slow')

PHOTO = "photo.jpg"  # the synthetic library's 800 x 533 JPEG
#: Explicit size and format: no negotiation, no ``Vary``, one object per URL in the CDN.
PATH = f"/w:100/f:webp/demo/{PHOTO}"
TIMEOUT = 30.0


@pytest.fixture(autouse=True)
def _varnish_installed() -> None:
    require_varnish()


def through(varnish: Varnish) -> httpx.Client:
    """A client of Varnish (it decodes a gzipped body as a browser would)."""
    return httpx.Client(base_url=varnish.url, timeout=TIMEOUT)


def renders(proxy: httpx.Client) -> float:
    """Renders the proxy ran: variant cache misses on its own ``/metrics``."""
    return value(proxy.get("/metrics").text, "edgeproxy_cache_lookups_total", cache="variant", outcome="miss")


def requests_answered(proxy: httpx.Client, status_class: str, fmt: str) -> float:
    return value(proxy.get("/metrics").text, "edgeproxy_requests_total", status_class=status_class, format=fmt)


@pytest.fixture
def proxy(photos: Path) -> Iterator[httpx.Client]:
    """A client of edgeproxy itself (fresh metrics for each test), serving the synthetic library as ``demo``."""
    with make_client({"demo": str(photos)}) as client:
        yield client


def backend(proxy: httpx.Client) -> tuple[str, int]:
    return proxy.base_url.host, proxy.base_url.port


def test_query_strings_buy_no_renders(proxy: httpx.Client):
    """A signed URL with a query string appended is refused with a short-lived 400 and costs no
    render: a cache-busting ``?cb=N`` loop through the CDN (each a new cache key, so each reaches
    the proxy) cannot turn one signed URL into unlimited renders. The URL without a query string
    still works through the CDN."""
    url = signed(PATH)
    with start_varnish(*backend(proxy)) as varnish, through(varnish) as cdn:
        for n in range(1, 11):
            response = cdn.get(f"{url}?cb={n}")
            assert response.status_code == 400, (
                f"?cb={n}: {response.status_code} {response.headers.get('content-type')} "
                f"(X-Varnish {response.headers.get('x-varnish')!r}): the proxy answered the query string"
            )
            assert "query string" in response.text.lower(), response.text
            assert response.headers["cache-control"] == "public, max-age=60"
            assert "immutable" not in response.headers["cache-control"]
            assert not is_hit(response)  # a new cache key each time: Varnish asked the proxy
        assert renders(proxy) == 0
        assert requests_answered(proxy, "4xx", "none") == 10

        plain = cdn.get(url)
        assert plain.status_code == 200, (plain.status_code, plain.text[:200])
        assert plain.headers["content-type"] == "image/webp"
        assert plain.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert renders(proxy) == 1


def test_expiring_urls_expire_in_the_cdn(proxy: httpx.Client):
    """A URL signed with ``exp:T`` is cacheable only until T: the proxy's ``Cache-Control`` caps
    ``max-age`` at the seconds left (no ``immutable``) and sends ``Expires``, so the CDN serves it
    from cache while it is valid and, once T has passed, asks again and gets the proxy's 403
    instead of serving the expired URL's image for a year."""
    exp = int(time.time()) + 4
    url = signed(f"/w:100/exp:{exp}/f:webp/demo/{PHOTO}")  # options in any order
    with start_varnish(*backend(proxy)) as varnish, through(varnish) as cdn:
        first = cdn.get(url)
        assert first.status_code == 200, (first.status_code, first.text[:200])
        second = cdn.get(url)
        deadline = time.monotonic() + 10
        while time.time() <= exp + 1:  # bounded: exp is 4 s away
            assert time.monotonic() < deadline
            time.sleep(max(0.05, min(0.5, exp + 1.05 - time.time())))
        after = cdn.get(url)

    cache_control = first.headers["cache-control"]
    assert after.status_code == 403, (
        f"after exp, Varnish answered {after.status_code} (X-Varnish {after.headers.get('x-varnish')!r}, "
        f"Age {after.headers.get('age')!r}): it kept the expired URL's image because the proxy sent "
        f"Cache-Control {cache_control!r}"
    )
    assert not is_hit(after)
    assert "URL expired" in after.text

    assert "immutable" not in cache_control
    public, _, max_age = cache_control.partition(", max-age=")
    assert public == "public" and max_age.isdigit(), cache_control
    assert 0 <= int(max_age) <= 4, cache_control
    expires = email.utils.parsedate_to_datetime(first.headers["expires"]).timestamp()
    assert expires <= exp, (first.headers["expires"], exp)

    assert second.status_code == 200
    assert is_hit(second), second.headers.get("x-varnish")
    assert age(second) <= 4
    assert second.content == first.content
    assert renders(proxy) == 1


#: Varnish keeps the object 60 s past a 1 s TTL (no grace), so it revalidates rather than refetches;
#: it gzips the body itself, which weakens the ETag it stores and later sends in If-None-Match.
#: ``X-Revalidated-With`` records the If-None-Match of the fetch that made the object.
REVALIDATE_VCL = """
sub vcl_backend_response {
    set beresp.ttl = 1s;
    set beresp.grace = 0s;
    set beresp.keep = 60s;
    set beresp.do_gzip = true;
    if (bereq.http.If-None-Match) {
        set beresp.http.X-Revalidated-With = bereq.http.If-None-Match;
    }
}
"""


def test_weak_validators_revalidate(proxy: httpx.Client):
    """A CDN that gzips a derivative itself weakens its ETag to ``W/"..."`` and revalidates the
    expired object with that weak tag: the proxy answers 304 without rendering, and the CDN
    keeps serving the same image. Varnish 7.1 gzips any content type when the VCL sets
    ``beresp.do_gzip`` (the choice is the VCL's), so the weakening here is Varnish's own, not
    simulated."""
    url = signed(PATH)
    with start_varnish(*backend(proxy), REVALIDATE_VCL) as varnish, through(varnish) as cdn:
        first = cdn.get(url)
        assert first.status_code == 200, (first.status_code, first.text[:200])
        assert first.headers.get("content-encoding") == "gzip"  # Varnish gzipped it ...
        weak = first.headers["etag"]
        assert weak.startswith('W/"'), weak  # ... and weakened the proxy's strong ETag
        assert renders(proxy) == 1

        time.sleep(1.5)  # the 1 s TTL lapses; the object is kept for revalidation
        second = cdn.get(url)

    assert second.status_code == 200, (second.status_code, second.text[:200])
    assert not is_hit(second)  # Varnish went to the proxy ...
    assert second.headers.get("x-revalidated-with") == weak  # ... with If-None-Match: W/"..."
    assert requests_answered(proxy, "3xx", "none") == 1, "the proxy did not answer the weak If-None-Match with 304"
    assert renders(proxy) == 1, "the proxy rendered again instead of revalidating"
    assert second.headers["etag"] == weak
    assert second.content == first.content
    image = decode(second.content)
    assert (image.width, loader_format(image)) == (100, "webp")
