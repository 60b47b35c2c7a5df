"""``cache.SingleFlight`` and ``cache.OriginalCache`` on their own (no server, no images)."""

from __future__ import annotations

import asyncio

from edgeproxy.cache import OriginalCache, SingleFlight
from edgeproxy.errors import ProxyError, not_found
from edgeproxy.origins import Original


def original(size: int, tag: str = "x") -> Original:
    return Original(tag.encode() * size, f'"{tag}{size}"')


def test_single_flight_shares_one_result_and_runs_again_once_done():
    calls: list[str] = []

    async def scenario() -> tuple[list[tuple[str, bool]], tuple[str, bool]]:
        flights = SingleFlight()
        release = asyncio.Event()

        async def work() -> str:
            calls.append("run")
            await release.wait()
            return f"result {len(calls)}"

        waiting = [asyncio.ensure_future(flights.run("k", work)) for _ in range(3)]
        await asyncio.sleep(0.01)
        release.set()
        together = list(await asyncio.gather(*waiting))
        later = await flights.run("k", work)  # the first flight is over: this one runs again
        return together, later

    together, later = asyncio.run(scenario())
    assert together == [("result 1", False), ("result 1", True), ("result 1", True)]
    assert later == ("result 2", False)
    assert calls == ["run", "run"]


def test_single_flight_shares_an_exception_and_keys_are_independent():
    async def scenario() -> list[object]:
        flights = SingleFlight()
        release = asyncio.Event()

        async def fail() -> str:
            await release.wait()
            raise not_found()

        async def succeed() -> str:
            await release.wait()
            return "other key"

        tasks = [
            asyncio.ensure_future(flights.run("bad", fail)),
            asyncio.ensure_future(flights.run("bad", fail)),
            asyncio.ensure_future(flights.run("good", succeed)),
        ]
        await asyncio.sleep(0.01)
        release.set()
        return list(await asyncio.gather(*tasks, return_exceptions=True))

    first, second, other = asyncio.run(scenario())
    assert isinstance(first, ProxyError) and first is second and first.status == 404
    assert other == ("other key", False)


def test_original_cache_is_an_lru_bounded_by_bytes():
    cache = OriginalCache(max_bytes=100, negative_ttl=10)
    for key in ("a", "b"):
        cache.put(("o", key), original(40, key))
    assert cache.get(("o", "a")) is not None  # a is now the most recently used
    cache.put(("o", "c"), original(40, "c"))  # 120 bytes: the least recently used (b) goes
    assert [cache.get(("o", k)) is not None for k in ("a", "b", "c")] == [True, False, True]
    cache.put(("o", "huge"), original(101, "h"))  # larger than the whole cache: not kept, nothing evicted
    assert cache.get(("o", "huge")) is None and cache.get(("o", "a")) is not None
    entry = cache.get(("o", "c"))
    assert entry is not None and entry.original.data == b"c" * 40 and entry.checked > 0


def test_original_cache_remembers_a_404_and_a_purge_drops_both_kinds():
    cache = OriginalCache(max_bytes=1000, negative_ttl=10)
    error = not_found()
    cache.put(("o", "photo.jpg"), original(10))
    cache.put(("o", "photo.jpg.json"), original(5))
    cache.put(("p", "photo.jpg"), original(10))
    cache.put_missing(("o", "gone.jpg"), error)
    assert cache.missing(("o", "gone.jpg")) is error and cache.missing(("o", "photo.jpg")) is None
    dropped = cache.drop(lambda key: key[0] == "o")
    assert dropped == 3
    assert cache.get(("o", "photo.jpg")) is None and cache.missing(("o", "gone.jpg")) is None
    assert cache.get(("p", "photo.jpg")) is not None


def test_original_cache_turned_off():
    cache = OriginalCache(max_bytes=0, negative_ttl=0)
    cache.put(("o", "a"), original(1))
    cache.put_missing(("o", "b"), not_found())
    assert cache.get(("o", "a")) is None and cache.missing(("o", "b")) is None
    assert cache.drop(lambda key: True) == 0
