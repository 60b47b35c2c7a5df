"""In-process caching: single-flight for identical concurrent work, and a small LRU of originals.

The CDN in front caches derivatives; this only keeps hot originals in memory while their
derivatives are requested (a ``srcset`` asks for several widths at once), briefly remembers an
origin's "not found", and makes a storm of identical requests do the work once (as imagor does).
How a cached original is kept fresh is ``service.originals.Originals.fetch``'s business.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

from cachetools import LRUCache, TTLCache

from edgeproxy.errors import ProxyError
from edgeproxy.origins.base import Original

T = TypeVar("T")


class SingleFlight:
    """Run one coroutine per key at a time; concurrent callers with the same key share its result.

    The shared work is a task of its own: a caller that goes away (client disconnect) does not
    cancel it for the others; when the last caller goes away, the work is cancelled (a queued
    render leaves the queue). Exceptions are shared too.
    """

    def __init__(self) -> None:
        self._running: dict[Hashable, tuple[asyncio.Task[Any], list[int]]] = {}

    async def run(self, key: Hashable, work: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """Result of ``work()`` for ``key``, and whether it was shared with an earlier caller."""
        entry = self._running.get(key)
        shared = entry is not None
        if entry is None:
            task = asyncio.ensure_future(work())
            entry = self._running[key] = (task, [0])
            task.add_done_callback(lambda _t: self._running.pop(key, None))
        task, waiters = entry
        waiters[0] += 1
        try:
            return await asyncio.shield(task), shared
        except asyncio.CancelledError:
            if waiters[0] == 1:
                task.cancel()
            raise
        finally:
            waiters[0] -= 1


@dataclass(frozen=True, slots=True)
class Cached:
    """An original in the cache and when (``time.monotonic()``) the origin last vouched for it."""

    original: Original
    checked: float


class OriginalCache:
    """Originals by (origin, key): an LRU bounded by ``max_bytes`` of image data, and the origins'
    recent "not found" answers, each kept ``negative_ttl`` seconds.

    Entries are not dropped when they age: the caller revalidates an entry older than its TTL with
    a conditional request (``Origin.fetch(key, cached)``), which costs no body when the original
    is unchanged. ``max_bytes`` of 0 disables the positive cache; ``negative_ttl`` of 0 the negative.
    """

    def __init__(self, max_bytes: int, negative_ttl: float, max_negative: int = 10_000) -> None:
        self.enabled = max_bytes > 0
        self._cache: LRUCache[tuple[str, str], Cached] = LRUCache(
            maxsize=max(max_bytes, 1), getsizeof=lambda c: len(c.original.data)
        )
        self._missing: TTLCache[tuple[str, str], ProxyError] | None = (
            TTLCache(max_negative, negative_ttl) if negative_ttl > 0 else None
        )

    def get(self, key: tuple[str, str]) -> Cached | None:
        """The cached original for ``key``, or None."""
        return self._cache.get(key) if self.enabled else None

    def put(self, key: tuple[str, str], original: Original) -> None:
        """Keep ``original``, vouched for now (too large for the cache: not kept)."""
        if self.enabled and len(original.data) <= self._cache.maxsize:
            self._cache[key] = Cached(original, time.monotonic())

    def missing(self, key: tuple[str, str]) -> ProxyError | None:
        """The origin's recent 404 for ``key``, if it is still fresh."""
        return self._missing.get(key) if self._missing is not None else None

    def put_missing(self, key: tuple[str, str], error: ProxyError) -> None:
        """Remember a 404 from a remote origin for ``negative_ttl`` seconds."""
        if self._missing is not None:
            self._missing[key] = error

    def drop(self, match: Callable[[tuple[str, str]], bool]) -> int:
        """Forget every original and "not found" whose (origin, key) ``match`` accepts (a purge);
        returns how many entries went."""
        gone = 0
        for store in (self._cache, self._missing):
            if store is None:
                continue
            for key in [k for k in list(store.keys()) if match(k)]:
                store.pop(key, None)
                gone += 1
        return gone
