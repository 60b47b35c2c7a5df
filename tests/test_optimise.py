"""Quality targets and the optimised tier, as a CDN, a browser and an attacker see them (issue 26).

A derivative with a SSIMULACRA2 target (``q:auto``, or no ``q`` under ``quality_policy = "target"``)
is answered first by the fast encoders (``max-age=optimise_max_age, stale-while-revalidate``, its own
ETag) while the background tier searches its quality with the slow encoders and stores it; later
answers are that one (immutable, another ETag), also for another process sharing the result storage.
Every test decodes what it gets and checks its format, size and SSIMULACRA2 against a lossless render
of the same derivative.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import pyvips
from PIL import Image

from edgeproxy.compose import StartupError, compose
from edgeproxy.quality.search import browser_decodes
from edgeproxy.quality.ssimulacra2 import score
from edgeproxy.settings import load_settings
from testkit.app import KEY, make_client, signed
from testkit.env import ROOT
from testkit.images import decode, loader_format
from testkit.metrics import standalone, value
from testkit.moto import moto_s3
from testkit.net import stalling_proxy
from testkit.tiers import FAST, IMMUTABLE, optimised

TOKEN = "optimise-admin-token-0123456789"
TIERED = {"optimise": "background", "admin_token": TOKEN}


def judged(reference: pyvips.Image, body: bytes) -> float:
    """SSIMULACRA2 of a derivative against ``reference``, decoded as browsers may decode it (AVIF by
    libheif and by libavif: ``quality.search.browser_decodes``), the lowest."""
    shown = [i if i.format == "uchar" else i.colourspace("srgb") for i in browser_decodes(body)]
    return min(score(reference, image) for image in shown)


def reference(client: httpx.Client, options: str) -> object:
    """The same derivative rendered losslessly (PNG): what the tiers' scores are measured against."""
    response = client.get(signed(f"/{options}/f:png/demo/photo.jpg"))
    assert response.status_code == 200
    return decode(response.content)


def metric(client: httpx.Client, name: str, **labels: str) -> float:
    return value(client.get("/metrics").text, name, **labels)


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[str]:
    yield str(tmp_path / "results")


def test_the_first_answer_is_fast_and_short_lived_then_the_optimised_one_is_smaller_and_immutable(photos, storage):
    path = signed("/w:300/q:auto:70/f:avif/demo/photo.jpg")
    with make_client({"demo": str(photos)}, result_storage=storage, **TIERED) as c:
        fast = c.get(path)
        assert (fast.status_code, fast.headers["cache-control"], fast.headers["content-type"]) == (
            200,
            FAST,
            "image/avif",
        )
        best = optimised(c, path)
        assert best.headers["cache-control"] == IMMUTABLE
        assert best.headers["etag"] != fast.headers["etag"]
        assert best.headers["surrogate-key"] == fast.headers["surrogate-key"]
        ref = reference(c, "w:300")
        fast_image, best_image = decode(fast.content), decode(best.content)
        assert [loader_format(i) for i in (fast_image, best_image)] == ["heif", "heif"]
        # Both 8-bit: the optimised tier's AVIF is 10-bit only from target 75 (below, no fewer bytes).
        assert [i.get("bits-per-sample") for i in (fast_image, best_image)] == [8, 8]
        assert (best_image.width, best_image.height) == (fast_image.width, fast_image.height) == (300, 200)
        assert judged(ref, best.content) >= 70 - 1  # the target, within the metric's rounding
        assert len(best.content) < len(fast.content)
        assert metric(c, "edgeproxy_optimise_total", outcome="done") == 1
        # A CDN revalidating with the fast tier's ETag gets the optimised one; with its own, a 304.
        again = c.get(path, headers={"If-None-Match": fast.headers["etag"]})
        assert (again.status_code, again.headers["etag"]) == (200, best.headers["etag"])
        same = c.get(path, headers={"If-None-Match": best.headers["etag"]})
        assert (same.status_code, same.headers["cache-control"], same.content) == (304, IMMUTABLE, b"")


def test_a_fixed_quality_is_one_immutable_answer_and_queues_nothing(photos, storage):
    with make_client({"demo": str(photos)}, result_storage=storage, **TIERED) as c:
        fixed = c.get(signed("/w:600/q:80/f:webp/demo/photo.jpg"))
        png = c.get(signed("/w:600/f:png/demo/photo.jpg"))  # lossless: no target, no search
        assert [r.headers["cache-control"] for r in (fixed, png)] == [IMMUTABLE, IMMUTABLE]
        assert metric(c, "edgeproxy_optimise_total", outcome="queued") == 0


def test_a_url_without_q_follows_the_quality_policy(photos, storage):
    path = signed("/w:600/f:jpeg/demo/photo.jpg")
    with make_client({"demo": str(photos)}, result_storage=storage, **TIERED) as c:
        assert c.get(path).headers["cache-control"] == FAST
    with make_client({"demo": str(photos)}, result_storage=storage, quality_policy="fixed", **TIERED) as c:
        assert c.get(path).headers["cache-control"] == IMMUTABLE


def test_inline_makes_the_optimised_tier_on_the_first_request(photos, storage):
    path = signed("/w:600/q:auto:80/f:webp/demo/photo.jpg")
    with make_client({"demo": str(photos)}, result_storage=storage, optimise="inline") as c:
        first = c.get(path)
        assert (first.status_code, first.headers["cache-control"]) == (200, IMMUTABLE)
        assert judged(reference(c, "w:600"), first.content) >= 80 - 1
        second = c.get(path)
        assert (second.headers["etag"], second.content) == (first.headers["etag"], first.content)
        assert metric(c, "edgeproxy_result_storage_total", outcome="hits") == 1


def test_another_process_sharing_the_storage_answers_the_optimised_tier_without_rendering(photos, storage):
    path = signed("/w:300/q:auto/f:avif/demo/photo.jpg")
    with make_client({"demo": str(photos)}, result_storage=storage, **TIERED) as c:
        c.get(path)
        best = optimised(c, path)
    with make_client({"demo": str(photos)}, result_storage=storage, **TIERED) as other:  # another pod, a restart
        first = other.get(path, headers={"Accept": "image/avif,image/webp,*/*"})
        assert (first.headers["cache-control"], first.headers["etag"], first.content) == (
            IMMUTABLE,
            best.headers["etag"],
            best.content,
        )
        assert metric(other, "edgeproxy_optimise_total", outcome="queued") == 0


def test_a_purge_deletes_the_stored_derivatives_so_the_next_answer_is_made_again(photos, storage):
    path = signed("/w:400/q:auto/f:webp/demo/photo.jpg")
    with make_client({"demo": str(photos)}, result_storage=storage, **TIERED) as c:
        c.get(path)
        assert optimised(c, path).headers["cache-control"] == IMMUTABLE
        purged = c.post(
            "/purge", json={"origin": "demo", "key": "photo.jpg"}, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert (purged.status_code, purged.json()["stored"]) == (200, 1)
        assert c.get(path).headers["cache-control"] == FAST


def test_a_corrupt_stored_derivative_is_never_served(photos, storage):
    path = signed("/w:400/q:auto/f:jpeg/demo/photo.jpg")
    with make_client({"demo": str(photos)}, result_storage=storage, **TIERED) as c:
        c.get(path)
        best = optimised(c, path)
        assert best.headers["cache-control"] == IMMUTABLE
        [stored] = [p for p in Path(storage, "objects").rglob("*") if p.is_file()]
        data = bytearray(stored.read_bytes())
        data[-100] ^= 0xFF  # one flipped byte of the body
        stored.write_bytes(bytes(data))
        again = c.get(path)
        assert (again.headers["cache-control"], decode(again.content).width) == (FAST, 400)
        assert metric(c, "edgeproxy_result_storage_total", outcome="corrupt") == 1


def test_an_attacker_asking_for_many_variants_fills_a_bounded_queue_and_is_answered_fast(photos, storage):
    settings = {**TIERED, "optimise_queue": 2}
    with make_client({"demo": str(photos)}, result_storage=storage, **settings) as c:
        answers = [c.get(signed(f"/w:{300 + n}/q:auto/f:avif/demo/photo.jpg")) for n in range(8)]
        assert [(r.status_code, r.headers["cache-control"]) for r in answers] == [(200, FAST)] * 8
        assert [decode(r.content).width for r in answers] == [300 + n for n in range(8)]
        assert metric(c, "edgeproxy_optimise_total", outcome="dropped") >= 5
        assert metric(c, "edgeproxy_optimise_queue_depth") <= 2


def test_save_data_gets_the_fixed_save_data_quality_not_a_target(photos, storage):
    path = signed("/w:600/q:auto/f:webp/demo/photo.jpg")
    with make_client({"demo": str(photos)}, result_storage=storage, client_hints=True, **TIERED) as c:
        light = c.get(path, headers={"Save-Data": "on"})
        assert (light.headers["cache-control"], light.headers["vary"]) == (IMMUTABLE, "Save-Data")
        assert metric(c, "edgeproxy_optimise_total", outcome="queued") == 0


def test_s3_result_storage_is_shared_through_the_bucket(photos):
    path = signed("/w:500/q:auto/f:webp/demo/photo.jpg")
    with moto_s3("edgeproxy-results") as s3:
        location = "s3://edgeproxy-results/derivatives"
        with make_client({"demo": str(photos)}, result_storage=location, **TIERED, **s3.settings()) as c:
            c.get(path)
            best = optimised(c, path)
            assert best.headers["cache-control"] == IMMUTABLE
        with make_client({"demo": str(photos)}, result_storage=location, **TIERED, **s3.settings()) as other:
            first = other.get(path)
            assert (first.headers["cache-control"], first.content) == (IMMUTABLE, best.content)


def test_a_hung_s3_result_store_costs_requests_a_render_not_a_wait_and_is_tried_again(photos):
    # The store's endpoint accepts connections and never answers (testkit.net.stalling_proxy in
    # front of moto). Without a bound each targeted request would wait result_storage_timeout (5 s).
    guard = {
        "result_storage_timeout": 1.0,
        "result_storage_lookup_timeout": 0.3,
        "result_storage_breaker_failures": 2,
        "result_storage_breaker_recovery": 2.0,
    }
    accept = {"Accept": "image/webp,*/*"}
    with moto_s3("edgeproxy-results") as s3, stalling_proxy(s3.port) as (port, stall):
        stall.stalled.set()
        settings = {**TIERED, **guard, **s3.settings(s3_endpoint_url=f"http://127.0.0.1:{port}")}
        with make_client({"demo": str(photos)}, result_storage="s3://edgeproxy-results/d", **settings) as c:
            for width in range(100, 106):
                began = time.monotonic()
                r = c.get(signed(f"/w:{width}/q:auto/f:webp/demo/photo.jpg"), headers=accept)
                assert (r.status_code, r.headers["cache-control"]) == (200, FAST)
                assert decode(r.content).width == width
                assert time.monotonic() - began < 1.0, "a request waited for the hung store"
            assert metric(c, "edgeproxy_result_storage_total", outcome="timeouts") == 2
            assert metric(c, "edgeproxy_result_storage_total", outcome="tripped") >= 1
            assert metric(c, "edgeproxy_result_storage_total", outcome="bypassed") >= 4
            # The background's writes end (skipped, or failed after the store's own 1 s) before the
            # store recovers; after the breaker's 2 s it is tried again and works.
            deadline = time.monotonic() + 30
            while metric(c, "edgeproxy_optimise_total", outcome="queued") > metric(
                c, "edgeproxy_optimise_total", outcome="done"
            ) + metric(c, "edgeproxy_optimise_total", outcome="failed"):
                assert time.monotonic() < deadline
                time.sleep(0.1)
            time.sleep(1.2)
            stall.stalled.clear()
            time.sleep(2.5)
            path = signed("/w:120/q:auto/f:webp/demo/photo.jpg")
            assert c.get(path, headers=accept).headers["cache-control"] == FAST
            assert optimised(c, path).headers["cache-control"] == IMMUTABLE


def test_only_the_admin_can_make_a_request_wait_for_the_optimised_tier(photos, storage):
    path = signed("/w:300/q:auto/f:avif/demo/photo.jpg")
    wait = {"X-Edgeproxy-Optimise": "wait"}
    with make_client({"demo": str(photos)}, result_storage=storage, **TIERED) as c:
        for outsider in ({}, {"Authorization": "Bearer not-the-token-at-all-0000"}):
            answer = c.get(path, headers={**wait, **outsider})
            assert answer.headers["cache-control"] == FAST, outsider  # never buys a slow render inline
        admin = c.get(path, headers={**wait, "Authorization": f"Bearer {TOKEN}"})
        assert admin.headers["cache-control"] == IMMUTABLE
        assert judged(reference(c, "w:300"), admin.content) >= 70 - 1


def test_prewarm_with_the_optimise_url_leaves_the_optimised_tier_for_the_cdn(photos, storage, tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("demo/photo.jpg\n")
    with make_client({"demo": str(photos)}, result_storage=storage, **TIERED) as c:
        argv = [sys.executable, "-m", "edgeproxy", "prewarm", "--base-url", str(c.base_url), "--no-progress"]
        argv += ["--optimise-url", str(c.base_url), "--variant", "w:300/q:auto/f:webp", str(keys)]
        env = {**os.environ, "EDGEPROXY_SIGNING_KEY": KEY, "EDGEPROXY_ADMIN_TOKEN": TOKEN}
        done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
        assert (done.returncode, done.stdout.splitlines()[0].endswith("; 0 failed")) == (0, True), done.stderr
        page = c.get(signed("/w:300/q:auto/f:webp/demo/photo.jpg"))  # what a browser asks the CDN next
        assert (page.headers["cache-control"], decode(page.content).width) == (IMMUTABLE, 300)


def test_q_on_png_asks_for_a_quantised_palette_and_png_without_q_stays_lossless(photos):
    with make_client({"demo": str(photos)}) as c:
        lossless = c.get(signed("/w:400/f:png/demo/photo.jpg"))
        palette = c.get(signed("/w:400/f:png/q:60/demo/photo.jpg"))
    modes = [Image.open(io.BytesIO(r.content)).mode for r in (lossless, palette)]
    assert (modes, [r.headers["content-type"] for r in (lossless, palette)]) == (["RGB", "P"], ["image/png"] * 2)
    assert len(palette.content) < len(lossless.content) / 2
    assert score(decode(lossless.content), decode(palette.content).colourspace("srgb")) > 50  # the same picture


def test_the_fast_tier_never_outlives_cache_max_age(photos, storage):
    with make_client({"demo": str(photos)}, result_storage=storage, cache_max_age=60, **TIERED) as c:
        fast = c.get(signed("/w:300/q:auto/f:webp/demo/photo.jpg"))
    assert fast.headers["cache-control"] == "public, max-age=60, stale-while-revalidate=86400"


def test_an_output_without_a_search_is_one_immutable_answer(photos, storage):
    # f:auto on an original with alpha, for a client that takes neither AVIF nor WebP: PNG, lossless.
    with make_client({"demo": str(photos)}, result_storage=storage, **TIERED) as c:
        png = c.get(signed("/w:100/q:auto/demo/alpha.png"), headers={"Accept": "image/png,*/*"})
        assert (png.headers["content-type"], png.headers["cache-control"]) == ("image/png", IMMUTABLE)
        assert metric(c, "edgeproxy_optimise_total", outcome="queued") == 0


def test_an_animation_and_its_304_are_one_immutable_answer(photos, storage):
    # An animated WebP has no search, so no optimised tier: its 200 is immutable, and so must be the
    # 304 to a revalidation (RFC 9110 15.4.5: the headers the 200 would carry), or the CDN keeps
    # revalidating it every optimise_max_age.
    path = signed("/w:80/demo/animated.gif")
    accept = {"Accept": "image/webp,*/*"}
    with make_client({"demo": str(photos)}, result_storage=storage, **TIERED) as c:
        first = c.get(path, headers=accept)
        assert (first.status_code, first.headers["content-type"]) == (200, "image/webp")
        assert Image.open(io.BytesIO(first.content)).n_frames == 3
        assert first.headers["cache-control"] == IMMUTABLE
        again = c.get(path, headers={**accept, "If-None-Match": first.headers["etag"]})
        assert again.status_code == 304
        for name in ("cache-control", "etag", "vary", "surrogate-key"):
            assert again.headers[name] == first.headers[name], name
        assert metric(c, "edgeproxy_optimise_total", outcome="queued") == 0


def test_inline_without_a_result_storage_still_searches_and_says_where_the_time_went(photos):
    with make_client({"demo": str(photos)}, result_storage="off", optimise="inline") as c:
        first = c.get(signed("/w:300/q:auto:80/f:avif/demo/photo.jpg"))
        assert first.headers["cache-control"] == IMMUTABLE
        assert judged(reference(c, "w:300"), first.content) >= 80 - 1
        assert decode(first.content).get("bits-per-sample") == 10  # the optimised tier's AVIF from target 75
    timing = dict(part.split(";dur=") for part in first.headers["server-timing"].split(", "))
    assert float(timing["render"]) > float(timing["queue"])  # the search is the render, not a wait


@pytest.mark.parametrize("mode", [0o777, 0o775])
def test_a_result_storage_folder_others_may_write_stops_start_up(tmp_path, mode):
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(mode)
    with pytest.raises(StartupError, match="owned by another user or writable by others"):
        compose(load_settings(allow_unsigned=True, result_storage=str(folder)))


def test_a_result_storage_folder_that_cannot_be_made_stops_start_up_with_one_line():
    with pytest.raises(StartupError) as info:
        compose(load_settings(allow_unsigned=True, result_storage="/proc/edgeproxy-results"))
    assert str(info.value).startswith("result_storage '/proc/edgeproxy-results': ")
    assert "\n" not in str(info.value)


#: The headers a 304 must carry exactly as its 200 does (RFC 9110 §15.4.5: the ones the 200 would have
#: sent among Cache-Control, Content-Location, Date, ETag, Expires and Vary; and the CDN's purge keys).
REVALIDATED = ("cache-control", "etag", "vary", "surrogate-key", "cache-tag", "expires", "accept-ch")


@pytest.mark.parametrize(
    ("options", "accept", "settings", "tier"),
    [
        ("w:300/q:auto/f:webp/demo/photo.jpg", "image/webp,*/*", TIERED, "fast"),
        ("w:300/q:auto/f:webp/demo/photo.jpg", "image/webp,*/*", TIERED, "optimised"),
        ("w:100/q:auto/demo/alpha.png", "image/png,*/*", TIERED, "none"),  # f:auto -> PNG: no search
        ("w:100/q:auto/demo/animated.gif", "image/webp,*/*", TIERED, "none"),  # animated WebP: no search
        ("w:300/f:png/demo/photo.jpg", "image/png,*/*", TIERED, "none"),  # lossless: no target
        ("w:300/q:auto/f:webp/demo/photo.jpg", "image/webp,*/*", {"optimise": "off"}, "none"),
        ("w:300/q:auto/f:webp/demo/photo.jpg", "image/webp,*/*", {**TIERED, "client_hints": True}, "fast"),
    ],
)
def test_a_304_carries_the_caching_headers_its_200_would(photos, storage, options, accept, settings, tier):
    path = signed(f"/{options}")
    with make_client({"demo": str(photos)}, result_storage=storage, **settings) as c:
        full = optimised(c, path) if tier == "optimised" else c.get(path, headers={"Accept": accept})
        assert full.status_code == 200
        assert (full.headers["cache-control"] == IMMUTABLE) is (tier != "fast")
        held = c.get(path, headers={"Accept": accept, "If-None-Match": full.headers["etag"]})
    assert (held.status_code, held.content) == (304, b"")
    assert {h: held.headers.get(h) for h in REVALIDATED} == {h: full.headers.get(h) for h in REVALIDATED}


# -- the background's own rules (service/optimise.py), with a real local result store ----------------


def _optimiser(tmp_path: Path, busy, timeout: float = 30.0):
    from edgeproxy.results import from_location
    from edgeproxy.service.optimise import Optimiser

    metrics = standalone()
    store = from_location(str(tmp_path / "results"), max_bytes=1 << 20)
    return Optimiser(store, metrics, queue=8, threads=1, timeout=timeout, busy=busy), store


def test_an_optimisation_waits_while_requests_render_and_its_time_starts_when_it_does(tmp_path: Path):
    import asyncio

    from edgeproxy.service.optimise import Optimisation

    rendering = [True]
    deadlines: list[float] = []

    def render(until: float) -> tuple[bytes, str]:
        deadlines.append(until - time.monotonic())
        time.sleep(0.3)
        return b"optimised", "image/webp"

    async def go() -> tuple[bytes | None, bytes | None]:
        optimiser, store = _optimiser(tmp_path, busy=lambda: rendering[0], timeout=1.0)
        optimiser.submit(Optimisation('"a"', render, "k"))
        optimiser.submit(Optimisation('"b"', render, "k"))
        await asyncio.sleep(0.5)
        assert deadlines == []  # requests are rendering: nothing started
        rendering[0] = False
        while optimiser.pending:
            await asyncio.sleep(0.05)
        a, b = await store.get('"a"'), await store.get('"b"')
        await optimiser.aclose()
        return (a.body if a else None), (b.body if b else None)

    assert asyncio.run(go()) == (b"optimised", b"optimised")
    # Each had its whole second from its own start, not from its wait behind the other (or the requests).
    assert len(deadlines) == 2 and min(deadlines) > 0.9, deadlines
