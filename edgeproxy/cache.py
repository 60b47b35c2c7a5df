"""In-process caching: single-flight for identical concurrent work, and a small LRU of originals.

The CDN in front caches derivatives; this only keeps a hot original in memory for the seconds in
which its derivatives are requested (a ``srcset`` asks for several widths at once), and makes a
storm of identical requests do the work once (as imagor does).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

from cachetools import TTLCache

from edgeproxy.origins.base import Original

T = TypeVar("T")


class SingleFlight:
    """Run one coroutine per key at a time; concurrent callers with the same key share its result.

    The shared work is a task of its own: a caller that goes away (client disconnect) does not
    cancel it for the others; when the last caller goes away, the work is cancelled (a queued
    render leaves the queue). Exceptions are shared too.
    """

    def __init__(self) -> None:
        self._running: dict[Hashable, tuple[asyncio.Task, list[int]]] = {}

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


class OriginalCache:
    """LRU of originals by (origin, key), bounded by ``max_bytes`` of image data, each entry kept
    at most ``ttl`` seconds. ``max_bytes`` or ``ttl`` of 0 disables it."""

    def __init__(self, max_bytes: int, ttl: float):
        self.enabled = max_bytes > 0 and ttl > 0
        self._cache: TTLCache = TTLCache(
            maxsize=max(max_bytes, 1), ttl=max(ttl, 0.001), getsizeof=lambda o: len(o.data)
        )

    def get(self, key: tuple[str, str]) -> Original | None:
        return self._cache.get(key) if self.enabled else None

    def put(self, key: tuple[str, str], original: Original) -> None:
        if self.enabled and len(original.data) <= self._cache.maxsize:
            self._cache[key] = original
