"""Originals are never served stale after a change: local files are stat-checked on every request,
HTTP originals are revalidated with conditional requests, remote 404s are remembered briefly, and
identical concurrent requests cost the origin one GET."""

from __future__ import annotations

import concurrent.futures
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import pyvips

from testkit.app import make_client, signed
from testkit.images import decode
from testkit.metrics import value
from testkit.origin import Origin, serve_origin


def png(rgb: tuple[int, int, int], size: int = 40) -> bytes:
    """A ``size`` × ``size`` PNG of one colour."""
    return pyvips.Image.black(size, size).new_from_image(list(rgb)).cast("uchar").pngsave_buffer()


RED, BLUE, GREEN = png((255, 0, 0)), png((0, 0, 255)), png((0, 255, 0))


def colour(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, (response.status_code, response.text[:200])
    return [round(v) for v in decode(response.content)(2, 2)[:3]]


def lookups(client: httpx.Client, outcome: str) -> float:
    return value(client.get("/metrics").text, "edgeproxy_cache_lookups_total", cache="original", outcome=outcome)


@pytest.fixture
def store() -> Iterator[tuple[Origin, str]]:
    """An HTTP origin on 127.0.0.1 whose objects the test sets (``origin["a.png"] = bytes``), with
    strong ETags (a hash of the bytes) and ``If-None-Match`` → 304; yields (origin, base URL)."""
    with serve_origin(prefix="/o") as origin:
        yield origin, origin.url


def gets(origin: Origin) -> list[tuple[str, str | None]]:
    """Every GET the origin saw: (path, If-None-Match)."""
    return [(r.path, r.header("If-None-Match")) for r in origin.requests if r.method == "GET"]


def remote(base: str, **settings):
    return make_client({"web": base}, origin_allowed_networks=["127.0.0.0/8"], **settings)


def test_local_original_replaced_is_never_served_from_memory(tmp_path: Path):
    url = signed("/w:20/f:png/t/a.png")
    (tmp_path / "a.png").write_bytes(RED)
    with make_client({"t": str(tmp_path)}) as c:
        first = c.get(url)
        assert colour(first) == [255, 0, 0]
        assert colour(c.get(url)) == [255, 0, 0]  # unchanged: served from memory
        assert lookups(c, "hit") == 1
        # Renamed over (a new inode), as deploy tools and `mv` do.
        (tmp_path / "new.png").write_bytes(BLUE)
        os.replace(tmp_path / "new.png", tmp_path / "a.png")
        second = c.get(url)
        assert colour(second) == [0, 0, 255]
        assert second.headers["etag"] != first.headers["etag"]
        # Rewritten in place, same size (only mtime and content change).
        (tmp_path / "a.png").write_bytes(GREEN)
        os.utime(tmp_path / "a.png", ns=(1, os.stat(tmp_path / "a.png").st_mtime_ns + 1_000_000))
        assert colour(c.get(url)) == [0, 255, 0]
        assert lookups(c, "refreshed") == 2
        (tmp_path / "a.png").unlink()
        assert c.get(url).status_code == 404


def test_http_original_is_revalidated_with_a_conditional_request(store):
    origin, base = store
    origin["a.png"] = RED
    with remote(base, original_cache_ttl=0) as c:  # every request revalidates
        assert colour(c.get(signed("/w:20/f:png/web/a.png"))) == [255, 0, 0]
        assert colour(c.get(signed("/w:21/f:png/web/a.png"))) == [255, 0, 0]
        assert gets(origin)[0][1] is None and gets(origin)[1][1] is not None  # the second GET was conditional
        assert (lookups(c, "miss"), lookups(c, "revalidated")) == (1, 1)
        origin["a.png"] = BLUE  # replaced at the origin
        assert colour(c.get(signed("/w:22/f:png/web/a.png"))) == [0, 0, 255]
        assert lookups(c, "refreshed") == 1
        bytes_fetched = value(c.get("/metrics").text, "edgeproxy_origin_bytes_total", origin="web")
        assert bytes_fetched == len(RED) + len(BLUE)  # the 304 carried no body
    with remote(base) as c:  # default ttl (60 s): within it, memory answers without asking
        before = len(gets(origin))
        for width in (30, 31, 32):
            assert c.get(signed(f"/w:{width}/f:png/web/a.png")).status_code == 200
        assert len(gets(origin)) == before + 1
        assert lookups(c, "hit") == 2


def test_remote_not_found_is_remembered_briefly_and_forgotten_by_a_purge(store):
    origin, base = store
    with remote(base, admin_token="admin-secret-for-freshness") as c:
        for _ in range(3):
            assert c.get(signed("/w:20/f:png/web/late.png")).status_code == 404
        assert len(gets(origin)) == 1
        assert lookups(c, "negative_hit") == 2
        origin["late.png"] = GREEN  # uploaded now
        purged = c.post(
            "/purge",
            json={"origin": "web", "key": "late.png"},
            headers={"Authorization": "Bearer admin-secret-for-freshness"},
        )
        assert purged.status_code == 200 and purged.json()["dropped"] == 1
        assert colour(c.get(signed("/w:20/f:png/web/late.png"))) == [0, 255, 0]
    with remote(base, origin_negative_ttl=0) as c:
        before = len(gets(origin))
        for _ in range(2):
            assert c.get(signed("/w:20/f:png/web/never.png")).status_code == 404
        assert len(gets(origin)) == before + 2


def test_fifty_concurrent_requests_for_one_uncached_variant_cost_one_origin_get(store):
    origin, base = store
    origin["a.png"] = RED
    origin.hold.clear()  # the origin holds its answer until all 50 requests are in the proxy
    url = signed("/w:25/f:webp/web/a.png")
    with remote(base) as c, concurrent.futures.ThreadPoolExecutor(50) as pool:
        futures = [pool.submit(c.get, url) for _ in range(50)]
        deadline = 200
        while value(c.get("/metrics").text, "edgeproxy_requests_in_flight") < 50:
            deadline -= 1
            assert deadline > 0, "the 50 requests never were in flight together"
            time.sleep(0.05)
        origin.hold.set()
        responses = [f.result() for f in futures]
        metrics = c.get("/metrics").text
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert gets(origin) == [("/o/a.png", None)]  # exactly one GET reached the origin
    assert value(metrics, "edgeproxy_cache_lookups_total", cache="original", outcome="coalesced") == 49
    assert value(metrics, "edgeproxy_cache_lookups_total", cache="variant", outcome="miss") == 1
