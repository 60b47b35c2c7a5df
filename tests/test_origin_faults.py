"""Origin outages degrade, they do not fail (issue 20, item 5).

An original the proxy fetched before, whose revalidation fails (connection refused, timeout, 5xx),
is served stale for up to ``origin_stale_if_error`` seconds after the origin last vouched for it,
with a short ``Cache-Control`` (``error_max_age``, never immutable), a warning and
``edgeproxy_origin_stale_served_total{origin}``; an original never fetched is a 502, an original
past the window too; ``/readyz`` reports the origin but stays 200 (readiness is about the pod).

S3: a real moto server process (``testkit.moto``) killed and started again on the same port.
HTTP: a small origin on 127.0.0.1 that is switched to 503, to never answering, and to 404.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edgeproxy.service.validators import surrogate_key
from testkit.app import make_client, signed
from testkit.images import decode
from testkit.logs import warnings_of
from testkit.moto import moto_s3
from testkit.origin import Fault, Origin, Reply, etag, serve_origin

PORTRAIT = "photo.jpg"  # the synthetic library's 800 x 533 JPEG
OTHER = "grey.jpg"
IMMUTABLE = "public, max-age=31536000, immutable"
STALE = "public, max-age=60"  # error_max_age: the answer may change once the origin is back
TTL = 1.0  # original_cache_ttl, seconds
WINDOW = 4.0  # origin_stale_if_error, seconds


@pytest.fixture(autouse=True)
def no_aws_environment(monkeypatch):
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)


def stale_served(proxy: httpx.Client, origin: str) -> float:
    for family in text_string_to_metric_families(proxy.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "edgeproxy_origin_stale_served_total" and sample.labels == {"origin": origin}:
                return sample.value
    raise AssertionError(f"no edgeproxy_origin_stale_served_total{{origin={origin!r}}}")


def test_s3_outage_serves_known_originals_stale_then_recovers(photos: Path):
    """The outage timeline (also printed): with ``original_cache_ttl`` 1 s and
    ``origin_stale_if_error`` 4 s, moto is killed right after ``a.jpg`` was fetched:

    - within the TTL, ``a.jpg`` is a memory hit: 200, immutable;
    - after it, each request revalidates, fails, and gets ``a.jpg`` stale: 200, the same ETag,
      ``max-age=60``; ``b.jpg``, never fetched, is a 502 (with its surrogate key); ``/readyz``
      answers 200, ``degraded``, origin ``s3`` false;
    - more than 4 s after moto last vouched for it, ``a.jpg`` is a 502 too;
    - moto is started again on the same port (the same objects): 200 immutable for both, ``/readyz`` ok.
    """
    a_url, b_url = signed("/w:120/f:jpeg/s3/a.jpg"), signed("/w:120/f:jpeg/s3/b.jpg")
    timeline: list[tuple[float, str, int, str]] = []
    with moto_s3() as s3:
        s3.put("media/a.jpg", (photos / PORTRAIT).read_bytes())
        s3.put("media/b.jpg", (photos / OTHER).read_bytes())
        with (
            warnings_of("edgeproxy") as warned,
            make_client(
                {"s3": f"s3://{s3.bucket}/media"},
                original_cache_ttl=TTL,
                origin_stale_if_error=WINDOW,
                origin_timeout=2,
                **s3.settings(),
            ) as proxy,
        ):

            def get(name: str, url: str) -> httpx.Response:
                response = proxy.get(url)
                timeline.append(
                    (time.monotonic() - stopped, name, response.status_code, response.headers.get("cache-control", ""))
                )
                return response

            fresh = proxy.get(a_url)
            vouched = time.monotonic()
            assert fresh.status_code == 200 and fresh.headers["cache-control"] == IMMUTABLE
            s3.stop()
            stopped = time.monotonic()

            hit = get("a", a_url)
            assert time.monotonic() - vouched < TTL, "a slow machine: the TTL passed before the first request"
            assert hit.status_code == 200 and hit.headers["cache-control"] == IMMUTABLE

            time.sleep(max(0.0, vouched + TTL + 0.2 - time.monotonic()))
            stale = get("a", a_url)
            assert stale.status_code == 200, stale.text
            assert stale.headers["cache-control"] == STALE
            assert stale.headers["etag"] == fresh.headers["etag"]  # the same derivative, only not vouched for
            assert decode(stale.content).width == 120
            unknown = get("b", b_url)
            assert (unknown.status_code, unknown.text.strip()) == (502, "origin connection failed")
            assert unknown.headers["cache-control"] == "public, max-age=1"
            assert unknown.headers["surrogate-key"] == surrogate_key("s3", "b.jpg")
            ready = proxy.get("/readyz")
            timeline.append((time.monotonic() - stopped, "/readyz", ready.status_code, ready.json()["status"]))
            assert ready.status_code == 200, ready.text
            assert ready.json()["status"] == "degraded" and ready.json()["origins"] == {"s3": False}

            served_stale = 1
            while time.monotonic() < vouched + WINDOW + 1.0:
                time.sleep(0.5)
                age = time.monotonic() - vouched
                response = get("a", a_url)
                if age < WINDOW - 0.3:
                    assert (response.status_code, response.headers["cache-control"]) == (200, STALE), age
                    served_stale += 1
                elif age > WINDOW + 0.3:
                    assert response.status_code == 502, (age, response.status_code)
                else:
                    served_stale += response.status_code == 200
            assert timeline[-1][2] == 502, "a.jpg was served past origin_stale_if_error"
            assert stale_served(proxy, "s3") == served_stale
            messages = [r.getMessage() for r in warned if "serving it stale" in r.getMessage()]
            assert len(messages) == served_stale and "origin 's3'" in messages[0], messages

            restarting = time.monotonic() - stopped
            s3.start()
            restarted = time.monotonic() - stopped
            back = get("a", a_url)
            assert (back.status_code, back.headers["cache-control"]) == (200, IMMUTABLE), back.text
            assert back.headers["etag"] == fresh.headers["etag"]
            assert get("b", b_url).status_code == 200
            ready = proxy.get("/readyz")
            timeline.append((time.monotonic() - stopped, "/readyz", ready.status_code, ready.json()["status"]))
            assert ready.status_code == 200 and ready.json()["origins"] == {"s3": True}
            assert ready.json()["status"] == "ok"
    print(
        f"\noutage timeline (s after moto was killed; vouched for a.jpg {stopped - vouched:.2f} s before; "
        f"started again at {restarting:.2f} s, answering at {restarted:.2f} s):"
    )
    for at, name, status, cache in timeline:
        print(f"  +{at:5.2f} s  {name:8} {status}  {cache}")


@pytest.fixture
def flaky(photos: Path) -> Iterator[tuple[Origin, str]]:
    """An HTTP origin serving ``photo.jpg`` under ``/o``, with a strong ETag and 304s; the test
    switches what it answers by setting ``origin["photo.jpg"]`` (``OK``, ``DOWN``, ``HANG``,
    ``GONE``)."""
    with serve_origin(prefix="/o") as origin:
        origin["photo.jpg"] = (photos / PORTRAIT).read_bytes()
        yield origin, origin.url


DOWN, HANG, GONE = Reply(503), Reply(fault=Fault.HANG), Reply(404)


def test_http_origin_5xx_and_timeout_serve_stale_and_404_does_not(flaky):
    """``original_cache_ttl = 0`` (the Kubernetes manifest's): every request revalidates. A 503
    and a timeout from the origin serve the cached original stale (short max-age); a 404 is the
    origin saying it is gone: a 404, never stale."""
    origin, base = flaky
    photo = origin.objects["photo.jpg"]
    url = signed("/w:100/f:jpeg/web/photo.jpg")
    with make_client(
        {"web": base}, origin_allowed_networks=["127.0.0.0/8"], original_cache_ttl=0, origin_timeout=1
    ) as proxy:
        fresh = proxy.get(url)
        assert (fresh.status_code, fresh.headers["cache-control"]) == (200, IMMUTABLE)
        for mode in (DOWN, HANG):
            origin["photo.jpg"] = mode
            response = proxy.get(url)
            assert (response.status_code, response.headers["cache-control"]) == (200, STALE), mode
            assert response.headers["etag"] == fresh.headers["etag"]
        assert stale_served(proxy, "web") == 2
        origin["photo.jpg"] = photo
        assert proxy.get(url).headers["cache-control"] == IMMUTABLE  # vouched for again (a 304)
        assert [r.header("If-None-Match") for r in origin.requests][-1] == etag(photo)
        origin["photo.jpg"] = GONE
        gone = proxy.get(url)
        assert gone.status_code == 404 and gone.headers["cache-control"] == "public, max-age=60"
        assert stale_served(proxy, "web") == 2


def test_stale_if_error_zero_turns_it_off(flaky):
    origin, base = flaky
    url = signed("/w:100/f:jpeg/web/photo.jpg")
    with make_client(
        {"web": base}, origin_allowed_networks=["127.0.0.0/8"], original_cache_ttl=0, origin_stale_if_error=0
    ) as proxy:
        assert proxy.get(url).status_code == 200
        origin["photo.jpg"] = DOWN
        failed = proxy.get(url)
        assert (failed.status_code, failed.text.strip()) == (502, "origin answered 503")
