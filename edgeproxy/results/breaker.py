"""A result store behind a lookup timeout and a circuit breaker, so that a slow or failing store
costs requests a render, never a wait.

A lookup (``get``) is on the request path of every derivative with a quality target: with an S3
store in trouble (an endpoint that accepts connections and answers late, or not at all), each one
would wait the store's own per-request ``timeout`` (``result_storage_timeout``, 5 s) before
answering the fast tier. ``GuardedStore`` bounds a lookup by ``lookup_timeout`` seconds (a miss when
it passes) and counts lookups and writes that time out or fail as failures of a circuit breaker
(the pattern of M. Nygard, *Release It!*, 2007; the ``circuitbreaker`` package): after ``failures``
in a row it opens, and for ``recovery`` seconds every lookup is a miss and every write is skipped
without touching the store; then it lets one operation through (half-open: the others meanwhile
are skipped, so a storm does not all wait on a store that may still be sick): its success closes
it, its failure opens it for another ``recovery`` seconds. Purges are never short-circuited: a
purge must delete or say it could not (``ResultStoreError``).

Counted in the store's ``StoreStats`` (so in ``edgeproxy_result_storage_total{outcome}``):
``timeouts`` (lookups past ``lookup_timeout``), ``tripped`` (times the breaker opened, each also
logged) and ``bypassed`` (lookups and writes skipped while it was open).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from circuitbreaker import STATE_HALF_OPEN, CircuitBreaker

from edgeproxy.results.store import ResultStore, Stored, check_name, check_put

_log = logging.getLogger("edgeproxy.results")
T = TypeVar("T")


class StoreTrouble(Exception):
    """A result store operation failed or passed its time bound (what the breaker counts)."""


class GuardedStore:
    """``store`` with lookups bounded by ``lookup_timeout`` seconds and a circuit breaker that
    opens after ``failures`` consecutive failed or late operations and stays open ``recovery``
    seconds (see the module docstring). Shares ``store.stats``.

    Raises:
        ValueError: ``lookup_timeout`` or ``recovery`` not positive, or ``failures`` under 1.
    """

    def __init__(self, store: ResultStore, *, lookup_timeout: float, failures: int, recovery: float) -> None:
        if lookup_timeout <= 0 or recovery <= 0 or failures < 1:
            raise ValueError("a result store guard needs a positive timeout and recovery, and failures >= 1")
        self.store = store
        self.stats = store.stats
        self.lookup_timeout = lookup_timeout
        self.recovery = recovery
        self._probing = False  # the one operation let through while half-open is under way
        self.breaker = CircuitBreaker(
            failure_threshold=failures,
            recovery_timeout=recovery,  # seconds
            expected_exception=StoreTrouble,
            name="result storage",
        )

    async def get(self, name: str) -> Stored | None:
        """As ``ResultStore.get``, or None at once while the breaker is open, or None after
        ``lookup_timeout`` seconds.

        Raises:
            ValueError: as ``ResultStore.get``.
        """
        check_name(name)
        return await self._guarded(self.store.get(name), None, bounded=True)

    async def put(self, name: str, body: bytes, *, mime: str, surrogate_keys: tuple[str, ...]) -> None:
        """As ``ResultStore.put`` (bounded by the store's own timeout), or skipped while the
        breaker is open.

        Raises:
            ValueError: as ``ResultStore.put``.
        """
        check_put(name, mime, surrogate_keys)
        await self._guarded(self.store.put(name, body, mime=mime, surrogate_keys=surrogate_keys), None, bounded=False)

    async def purge(self, surrogate_key: str) -> int:
        """As ``ResultStore.purge``, whatever the breaker's state."""
        return await self.store.purge(surrogate_key)

    async def aclose(self) -> None:
        """As ``ResultStore.aclose``."""
        await self.store.aclose()

    async def _guarded(self, operation: Coroutine[Any, Any, T], default: T, *, bounded: bool) -> T:
        """``operation``'s result, or ``default`` when the breaker is open (``operation`` is then
        never run), when it fails (the store counted an error) or when ``bounded`` and it took
        longer than ``lookup_timeout``."""
        probe = self.breaker.state == STATE_HALF_OPEN
        if self.breaker.opened or (probe and self._probing):
            operation.close()
            self.stats.bypassed += 1
            return default
        self._probing = probe
        errors = self.stats.errors
        try:
            with self.breaker:
                try:
                    result = await asyncio.wait_for(operation, self.lookup_timeout if bounded else None)
                except TimeoutError:
                    self.stats.timeouts += 1
                    raise StoreTrouble(f"a lookup took longer than {self.lookup_timeout} s") from None
                if self.stats.errors > errors:
                    raise StoreTrouble("the store failed (logged above)")
                return result
        except StoreTrouble as trouble:
            if self.breaker.opened:
                self.stats.tripped += 1
                _log.warning(
                    "result storage: %s; %d failures in a row: skipped for %s s",
                    trouble,
                    self.breaker.failure_count,
                    self.recovery,
                )
            return default
        finally:
            if probe:
                self._probing = False
