"""``Service.derive`` without HTTP: a fake in-memory origin (it implements ``origins.Origin``),
synthetic images made with pyvips (no corpus, no models), the real render pool and pipeline.

What is checked: the order of the steps (fetch, then a 304 before any render), the moderation
decisions, the fallback outcome, stale originals, single-flight of fetches and renders, the typed
answer's validators, caching and work; and ``/info``'s first steps (``Service.examine``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pyvips

from edgeproxy.compose import compose
from edgeproxy.errors import ProxyError, not_found, origin_error
from edgeproxy.http.negotiate import Negotiated
from edgeproxy.origins import Original
from edgeproxy.render import pipeline
from edgeproxy.service.derive import Service
from edgeproxy.service.originals import CacheOutcome
from edgeproxy.service.results import Derivative, Failure, Fallback, Lifetime, NotModified, Treatment
from edgeproxy.service.validators import surrogate_key
from edgeproxy.settings import load_settings
from edgeproxy.url.grammar import parse_options
from edgeproxy.url.spec import Format

T = TypeVar("T")
KEY = "photos/cat.png"
TAG = surrogate_key("mem", KEY)
LAST_MODIFIED = "Mon, 01 Jan 2024 00:00:00 GMT"


def png(width: int = 120, height: int = 80, grey: int = 90) -> bytes:
    """A ``width`` × ``height`` RGB PNG of one ``grey`` level."""
    return (pyvips.Image.black(width, height, bands=3) + grey).cast("uchar").pngsave_buffer()


class MemoryOrigin:
    """An origin over a dict of ``objects`` (key -> bytes), remote (its originals are revalidated
    with a conditional fetch, its 404s remembered) with sidecars. ``events`` records each fetch
    (``fetch KEY`` or ``revalidate KEY``); ``failure`` makes every fetch fail; ``gate``, when set,
    holds every fetch until it is set."""

    name = "mem"
    remote = True
    sidecars = True

    def __init__(self, objects: dict[str, bytes], events: list[str]) -> None:
        self.objects = objects
        self.events = events
        self.failure: ProxyError | None = None
        self.gate: asyncio.Event | None = None

    async def fetch(self, key: str, cached: Original | None = None) -> Original:
        self.events.append(f"{'revalidate' if cached else 'fetch'} {key}")
        if self.gate is not None:
            await self.gate.wait()
        if self.failure is not None:
            raise self.failure
        if key not in self.objects:
            raise not_found()
        data = self.objects[key]
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        if cached is not None and cached.stamp == etag:
            return cached
        return Original(data, etag, LAST_MODIFIED, stamp=etag)

    def unchanged(self, key: str, cached: Original) -> bool | None:
        return None  # only a conditional fetch can tell

    async def ready(self) -> bool:
        return True

    async def aclose(self) -> None:
        pass


@asynccontextmanager
async def service(events: list[str], **overrides: Any) -> AsyncIterator[Service]:
    """The service ``compose`` builds for ``overrides`` (its render calls recorded in ``events``
    as ``render WIDTHxHEIGHT``), closed after the block."""
    settings = load_settings(signing_key="k", render_threads=2, **overrides)
    components = compose(settings)
    real = components.service.render

    def render(data: bytes, negotiated: Negotiated, deadline: float, *rest: Any) -> pipeline.Rendered:
        rendered = real(data, negotiated, deadline, *rest)
        events.append(f"render {rendered.width}x{rendered.height}")
        return rendered

    components.service.render = render  # type: ignore[method-assign]
    try:
        yield components.service
    finally:
        await components.aclose()


def ask(options: str, accepts: frozenset[str] = frozenset(), vary: tuple[str, ...] = ()) -> Negotiated:
    """The negotiated request for ``options`` (``w:64/f:png``)."""
    return Negotiated(parse_options(options.split("/")), accepts, vary)


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(scenario())  # type: ignore[arg-type]


def decoded(body: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(body, "")


def deadline(seconds: float = 30.0) -> float:
    """A request deadline ``seconds`` from now (``time.monotonic()``)."""
    return time.monotonic() + seconds


# --- order: fetch -> 304 -> render ---------------------------------------------------------------------------------


def test_fetch_then_render_then_a_304_for_the_etag_without_a_render():
    events: list[str] = []
    origin = MemoryOrigin({KEY: png()}, events)

    async def scenario() -> tuple[Any, ...]:
        async with service(events, original_cache_ttl=0) as svc:
            first = await svc.derive(ask("w:64/f:png"), origin, KEY, deadline())
            assert isinstance(first, Derivative)
            etag = first.validators.etag
            assert etag is not None
            again = await svc.derive(ask("w:64/f:png"), origin, KEY, deadline(), if_none_match=f'"x", W/{etag}')
            other = await svc.derive(ask("w:32/f:png"), origin, KEY, deadline(), if_none_match=etag)
            return first, again, other

    first, again, other = run(scenario)
    image = decoded(first.image.body)
    assert (first.image.format, first.image.mime, image.width, image.height) == (Format.PNG, "image/png", 64, 43)
    assert first.validators.surrogate_key == TAG and first.validators.last_modified == LAST_MODIFIED
    assert first.validators.etag.startswith('"') and len(first.validators.etag) == 34
    assert (first.caching.lifetime, first.vary, first.stale) == (Lifetime.IMMUTABLE, (), False)
    assert first.work.cache is CacheOutcome.MISS and first.work.bytes_in == len(png())
    assert set(first.work.stages()) == {"fetch", "queue", "decode", "transform", "encode"}
    assert [name for name, _ in first.work.server_timing()] == ["fetch", "queue", "render", "total"]
    assert isinstance(again, NotModified)
    assert again.validators == first.validators and again.caching == first.caching
    assert again.work.cache is CacheOutcome.REVALIDATED and again.work.queue is None and again.work.bytes_in == 0
    assert isinstance(other, Derivative) and other.validators.etag != first.validators.etag
    # The 304 came after its fetch (a revalidation) and before any render; the other width rendered.
    assert events == [f"fetch {KEY}", "render 64x43", f"revalidate {KEY}", f"revalidate {KEY}", "render 32x21"]


def test_the_etag_names_every_input_of_the_bytes():
    events: list[str] = []
    origin = MemoryOrigin({KEY: png(), "b.png": png()}, events)

    async def etags() -> list[str | None]:
        async with service(events) as svc:
            answers = [
                await svc.derive(ask("w:64/f:auto", frozenset({"webp"}), ("Accept",)), origin, KEY, deadline()),
                await svc.derive(ask("w:64/f:auto", frozenset({"avif", "webp"}), ("Accept",)), origin, KEY, deadline()),
                await svc.derive(ask("w:64/f:webp"), origin, KEY, deadline()),
                await svc.derive(ask("w:64/f:webp"), origin, "b.png", deadline()),  # same bytes, another key
            ]
            assert answers[0].vary == ("Accept",) and answers[0].image.format is Format.WEBP  # type: ignore[union-attr]
            assert answers[1].image.format is Format.AVIF  # type: ignore[union-attr]
            return [a.validators.etag for a in answers]  # type: ignore[union-attr]

    assert len(set(run(etags))) == 4


# --- failures, fallback --------------------------------------------------------------------------------------------


def test_an_error_about_the_original_is_a_failure_carrying_its_surrogate_key():
    events: list[str] = []
    origin = MemoryOrigin({"broken.jpg": b"\xff\xd8\xff\xe0 not a JPEG"}, events)

    async def scenario() -> tuple[Any, Any]:
        async with service(events) as svc:
            missing = await svc.derive(ask("w:64"), origin, "missing.jpg", deadline())
            broken = await svc.derive(ask("w:64"), origin, "broken.jpg", deadline())
            return missing, broken

    missing, broken = run(scenario)
    assert isinstance(missing, Failure) and isinstance(broken, Failure)
    assert (missing.error.status, missing.error.surrogate_key) == (404, surrogate_key("mem", "missing.jpg"))
    assert missing.work.cache is None and missing.work.fetch is None  # no original was had
    assert (broken.error.status, broken.error.surrogate_key) == (422, surrogate_key("mem", "broken.jpg"))
    assert broken.work.cache is CacheOutcome.MISS and broken.work.fetch is not None


def test_the_fallback_image_stands_in_for_errors_about_the_original(tmp_path: Path):
    placeholder = tmp_path / "placeholder.png"
    placeholder.write_bytes(png(200, 100, grey=200))
    events: list[str] = []
    origin = MemoryOrigin({"broken.jpg": b"\xff\xd8\xff\xe0 not a JPEG"}, events)

    async def scenario(**overrides: Any) -> tuple[Any, Any]:
        async with service(events, fallback_image=str(placeholder), **overrides) as svc:
            missing = await svc.derive(ask("w:80/f:webp"), origin, "missing.jpg", deadline())
            broken = await svc.derive(ask("w:80/f:webp"), origin, "broken.jpg", deadline())
            return missing, broken

    missing, broken = run(scenario)
    for answer, key, status in ((missing, "missing.jpg", 404), (broken, "broken.jpg", 422)):
        assert isinstance(answer, Fallback)
        assert (answer.status, answer.error.status, answer.error.surrogate_key) == (
            status,
            status,
            surrogate_key("mem", key),
        )
        assert answer.validators.etag is None and answer.validators.surrogate_key == surrogate_key("mem", key)
        assert (answer.caching.lifetime, answer.caching.status) == (Lifetime.ERROR, status)  # never immutable
        image = decoded(answer.image.body)
        assert (answer.image.format, image.width, image.height) == (Format.WEBP, 80, 40)
        assert image(40, 20)[0] == pytest.approx(200, abs=2)
    with_status, _ = run(lambda: scenario(fallback_status=200))
    assert isinstance(with_status, Fallback) and (with_status.status, with_status.error.status) == (200, 404)


# --- moderation ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sidecar", "pending", "expected"),
    [
        ({"moderation": "approved"}, "block", ("allow", "sidecar", None, False)),
        ({"moderation": "rejected"}, "serve", 451),
        ({"moderation": "pending"}, "block", 451),
        ({"moderation": "pending"}, "blur", ("pending", "sidecar", 30, True)),
        ({"moderation": "pending"}, "serve", ("pending", "sidecar", 30, False)),
        (None, "serve", ("pending", "none", 30, False)),  # no verdict, no classifier
        (b"{not json", "serve", ("pending", "error", 30, False)),  # an unusable sidecar is never an approval
    ],
)
def test_moderation_decisions(sidecar: object, pending: str, expected: object):
    events: list[str] = []
    objects = {KEY: png()}
    if sidecar is not None:
        objects[KEY + ".json"] = sidecar if isinstance(sidecar, bytes) else json.dumps(sidecar).encode()
    origin = MemoryOrigin(objects, events)

    async def scenario() -> Any:
        async with service(events, moderation=True, moderation_pending=pending, moderation_max_age=30) as svc:
            return await svc.derive(ask("w:64/f:png"), origin, KEY, deadline())

    answer = run(scenario)
    if expected == 451:
        assert isinstance(answer, Failure)
        error = answer.error
        assert (error.status, error.max_age, error.surrogate_key, error.category) == (451, 30, TAG, "moderation")
        assert not any(event.startswith("render") for event in events)  # decided before any render
        return
    verdict, source, max_age, blur = expected  # type: ignore[misc]
    assert isinstance(answer, Derivative)
    decision = answer.treatment.moderation
    assert decision is not None and (decision.verdict, decision.source) == (verdict, source)
    assert answer.treatment.blur is blur
    assert answer.caching.seconds == max_age
    assert answer.caching.lifetime is (Lifetime.IMMUTABLE if max_age is None else Lifetime.SHORT)
    assert events[:2] == [f"fetch {KEY}", f"fetch {KEY}.json"]  # the original, then its metadata


def test_a_blurred_derivative_has_another_etag_and_no_detail():
    events: list[str] = []
    noise = pyvips.Image.gaussnoise(200, 150, mean=128, sigma=60).cast("uchar").bandjoin([0, 0]).pngsave_buffer()
    sidecars = {"open.png.json": b'{"moderation": "approved"}', "held.png.json": b'{"moderation": "pending"}'}
    origin = MemoryOrigin({"open.png": noise, "held.png": noise, **sidecars}, events)

    async def scenario() -> tuple[Any, Any]:
        async with service(events, moderation=True, moderation_pending="blur") as svc:
            plain = await svc.derive(ask("f:png"), origin, "open.png", deadline())
            blurred = await svc.derive(ask("f:png"), origin, "held.png", deadline())
            return plain, blurred

    plain, blurred = run(scenario)
    assert isinstance(plain, Derivative) and isinstance(blurred, Derivative)
    assert plain.treatment == Treatment(moderation=plain.treatment.moderation)  # nothing done to the pixels
    assert blurred.treatment.blur and "moderation-blur=1" in blurred.treatment.stamp
    detail = [decoded(a.image.body)[0].deviate() for a in (plain, blurred)]  # the noise band's spread
    assert detail[1] < 0.25 * detail[0], detail


# --- stale originals -----------------------------------------------------------------------------------------------


def test_a_stale_original_is_served_briefly_while_the_origin_fails():
    events: list[str] = []
    origin = MemoryOrigin({KEY: png()}, events)

    async def scenario(stale_if_error: float) -> tuple[Any, Any]:
        async with service(events, original_cache_ttl=0, origin_stale_if_error=stale_if_error) as svc:
            fresh = await svc.derive(ask("w:64/f:png"), origin, KEY, deadline())
            origin.failure = origin_error("origin answered 503")
            try:
                during = await svc.derive(ask("w:50/f:png"), origin, KEY, deadline())
            finally:
                origin.failure = None
            return fresh, during

    fresh, during = run(lambda: scenario(300))
    assert isinstance(fresh, Derivative) and fresh.caching.lifetime is Lifetime.IMMUTABLE
    assert isinstance(during, Derivative)
    assert (during.stale, during.work.cache, during.caching.lifetime, during.caching.seconds) == (
        True,
        CacheOutcome.STALE,
        Lifetime.SHORT,
        60,  # error_max_age: it may change once the origin is back
    )
    assert decoded(during.image.body).width == 50
    _fresh, refused = run(lambda: scenario(0))  # origin_stale_if_error 0: the origin's error
    assert isinstance(refused, Failure) and (refused.error.status, refused.error.surrogate_key) == (502, TAG)


# --- single-flight -------------------------------------------------------------------------------------------------


def test_identical_concurrent_requests_fetch_and_render_once():
    events: list[str] = []
    origin = MemoryOrigin({KEY: png(400, 300)}, events)

    async def scenario() -> list[Any]:
        async with service(events) as svc:
            origin.gate = asyncio.Event()
            tasks = [asyncio.ensure_future(svc.derive(ask("w:64/f:png"), origin, KEY, deadline())) for _ in range(5)]
            await asyncio.sleep(0.05)
            origin.gate.set()
            return list(await asyncio.gather(*tasks))

    answers = run(scenario)
    assert events == [f"fetch {KEY}", "render 64x48"]
    assert all(isinstance(a, Derivative) for a in answers)
    assert len({a.image.body for a in answers}) == 1 and len({a.validators.etag for a in answers}) == 1
    assert sorted(a.work.cache.value for a in answers) == ["coalesced"] * 4 + ["miss"]
    own = [a for a in answers if a.work.queue is not None]  # only one request rendered
    assert len(own) == 1 and own[0].work.bytes_in == len(png(400, 300))
    assert all(a.work.render == {} and a.work.bytes_in == 0 for a in answers if a is not own[0])


# --- /info's first steps -------------------------------------------------------------------------------------------


def test_examine_is_the_same_first_steps_and_its_errors_carry_the_surrogate_key():
    events: list[str] = []
    origin = MemoryOrigin({KEY: png(), KEY + ".json": b'{"moderation": "rejected", "model": "cam-1"}'}, events)

    async def scenario() -> tuple[Any, Any, Any]:
        async with service(events) as svc:
            examined = await svc.examine(origin, KEY, deadline())
            header = await svc.read(examined, lambda data, limits: len(data), deadline())
            with pytest.raises(ProxyError) as missing:
                await svc.examine(origin, "missing.png", deadline())
            return examined, header, missing.value

    examined, header, missing = run(scenario)
    assert (examined.surrogate_key, examined.analysis, header) == (TAG, None, len(png()))
    assert (examined.decision.verdict, examined.metadata.provenance) == ("block", {"model": "cam-1"})
    assert (missing.status, missing.surrogate_key) == (404, surrogate_key("mem", "missing.png"))
