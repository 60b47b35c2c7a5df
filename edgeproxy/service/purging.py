"""Purging a surrogate key everywhere edgeproxy keeps or caused copies of it, in the one order that
never refills a cache from a staler one: the proxy's in-process caches (the original, its sidecar
and analysis object), then the result storage's derivatives, then every CDN through the purge hooks
(a CDN miss in between is answered from the origin, not from a stored derivative about to go).

Used by ``POST /purge``, by review verdicts and by manifest changes (``Purger``).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from edgeproxy.purge import Hooks
from edgeproxy.results.store import ResultStore, ResultStoreError
from edgeproxy.service.originals import Originals

_log = logging.getLogger("edgeproxy")


@dataclass(frozen=True, slots=True)
class Purged:
    """What one purge did: ``dropped`` in-process cache entries, ``stored`` derivatives deleted (or
    why that failed), ``hooks``' results (``Hooks.purge``: one dict per hook with ``ok``)."""

    tag: str
    origin: str | None
    key: str | None
    dropped: int
    stored: int | str
    hooks: list[dict[str, Any]]

    @property
    def ok(self) -> bool:
        """Whether every step succeeded."""
        return isinstance(self.stored, int) and all(hook["ok"] for hook in self.hooks)

    def answer(self) -> dict[str, Any]:
        """The JSON answer of ``POST /purge`` (and the log's fields)."""
        return {
            "surrogate_key": self.tag,
            "origin": self.origin,
            "key": self.key,
            "dropped": self.dropped,
            "stored": self.stored,
            "hooks": self.hooks,
        }


@dataclass(frozen=True, slots=True)
class Purger:
    """Purges through the ``originals`` cache, the ``results`` storage (None: none) and the CDNs
    (``hooks``)."""

    originals: Originals
    results: ResultStore | None
    hooks: Hooks

    def drop(self, tags: Collection[str]) -> int:
        """Forget the originals (with sidecars and analysis objects) tagged ``tags`` in this process,
        in one pass over the cache; how many entries went."""
        return self.originals.drop_any(tags)

    async def purge(self, tag: str, origin: str | None = None, key: str | None = None, *, drop: bool = True) -> Purged:
        """Purge surrogate key ``tag`` (``origin`` and ``key`` when known, for webhooks) everywhere,
        in the module's order; ``drop=False`` when the caller dropped the originals already
        (``drop`` for many tags at once). Logged; never raises for a failed step (``Purged.ok``)."""
        dropped = self.originals.drop(tag) if drop else 0
        stored: int | str = 0
        if self.results is not None:
            try:
                stored = await self.results.purge(tag)
            except ResultStoreError as exc:
                stored = f"failed: {exc}"
        purged = Purged(tag, origin, key, dropped, stored, await self.hooks.purge(tag, origin, key))
        _log.info("purge", extra={"fields": purged.answer()})
        return purged
