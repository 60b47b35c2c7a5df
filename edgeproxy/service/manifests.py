"""The live manifests of the ``manifest_origins`` setting (``edgeproxy.manifest`` is the format,
``edgeproxy.origins.manifest`` the storage): each loaded at start-up, checked every
``manifest_ttl`` seconds and reloaded when its stamp (a file's mtime, size and inode; an S3
object's ETag) changed, updated by ``POST /manifest/NAME``, and the ids whose image changed purged.

- **Atomic.** A reload parses the whole manifest first, then swaps the one reference requests read
  (``Manifest.entries``): a request sees the old version or the new one, never a mixture.
- **A bad manifest keeps the previous one.** Unreadable or invalid (not JSON, a bad id or entry,
  an unknown origin): the version being served stays, the reason is logged as a warning (logger
  ``edgeproxy.manifest``) and counted (``edgeproxy_manifest_loads_total{outcome="failed"}``); the
  same bad stamp is not parsed again until it changes.
- **Purges.** The ids whose rendered image may differ (``edgeproxy.manifest.changed``: added,
  removed, another origin, key, sha256 or focal) are purged (``purge_ids``, ``service.purging``): their targets' cached
  originals are dropped from memory (a replaced object is fetched again), their stored derivatives
  deleted, and each id's surrogate key sent through every ``purge_hooks`` entry. An added id is
  purged too: its fallback image may be cached under its key.
- **Several processes.** Every worker process and pod watches the manifest on its own; each purges
  what it saw change (purges are idempotent). An update through ``POST /manifest/NAME`` is a
  read-modify-write of the stored manifest under a per-process lock: two pods updating the same
  manifest at the same moment may lose one update (last writer wins); send stock updates to one
  place, or write the manifest from the system of record and let the proxies reload it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Container, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edgeproxy import manifest
from edgeproxy.http.metrics import Metrics
from edgeproxy.manifest import Entry, ManifestError
from edgeproxy.origins.manifest import ManifestSource, SourceError
from edgeproxy.service.purging import Purger
from edgeproxy.service.validators import surrogate_key

_log = logging.getLogger("edgeproxy.manifest")
#: Ids purged at once (each one a request per purge hook).
PURGE_CONCURRENCY = 16


async def purge_ids(
    purger: Purger, name: str, ids: Iterable[str], old: Mapping[str, Entry], new: Mapping[str, Entry]
) -> list[dict[str, Any]]:
    """Purge ``ids`` of manifest ``name`` (``old`` and ``new``: the versions before and after): the
    originals of both versions dropped from memory in one pass, then each id's surrogate key purged
    (``Purger.purge``), ``PURGE_CONCURRENCY`` at a time. One result per id, in order: ``{"id",
    "surrogate_key", "stored", "hooks"}`` (``stored``: stored derivatives deleted, or why that
    failed; ``hooks``: ``Hooks.purge``'s results). Never raises for a failed hook or store."""
    ids = list(ids)
    purger.drop({surrogate_key(e.origin, e.key) for v in (old, new) for i in ids if (e := v.get(i)) is not None})
    semaphore = asyncio.Semaphore(PURGE_CONCURRENCY)

    async def one(ident: str) -> dict[str, Any]:
        async with semaphore:
            purged = await purger.purge(surrogate_key(name, ident), name, ident, drop=False)
            return {"id": ident, "surrogate_key": purged.tag, "stored": purged.stored, "hooks": purged.hooks}

    return list(await asyncio.gather(*(one(ident) for ident in ids)))


@dataclass(slots=True)
class Manifest:
    """One manifest origin ``name``, stored in ``source``, its entries naming ``origins`` (the
    configured origin names), at most ``max_bytes`` bytes; ``entries`` is the version served (empty
    until the first load succeeds), ``loaded`` whether one has."""

    name: str
    source: ManifestSource
    origins: Container[str]
    max_bytes: int
    entries: Mapping[str, Entry] = field(default_factory=lambda: manifest.EMPTY)
    stamp: Hashable | None = None  # the stamp of the version served, or of the last bad one seen
    loaded: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def resolve(self, ident: str) -> Entry | None:
        """The entry of ``ident`` in the version served, or None."""
        return self.entries.get(ident)

    async def read(self) -> tuple[Mapping[str, Entry], Hashable]:
        """The stored manifest, parsed (in a worker thread), and its stamp; not yet served.

        Raises:
            SourceError: it cannot be read, or is not a valid manifest (then its stamp is kept, so
                the same bad version is not parsed again).
        """
        data, stamp = await self.source.read()
        try:  # a large manifest takes a while to parse: not on the event loop
            return await asyncio.to_thread(manifest.parse, data, max_bytes=self.max_bytes, origins=self.origins), stamp
        except ManifestError as exc:
            self.stamp = stamp  # not parsed again until it changes
            raise SourceError(f"manifest {self.source.location}: {exc}") from None


class Manifests:
    """Every manifest origin (name -> ``Manifest``), reloaded every ``ttl`` seconds by a task that
    ``start`` runs and ``aclose`` ends, counted in ``metrics``, changed ids purged by ``purger``."""

    def __init__(self, manifests: Mapping[str, Manifest], *, ttl: float, metrics: Metrics, purger: Purger) -> None:
        self.manifests = dict(manifests)
        self.ttl = ttl
        self.metrics = metrics
        self.purger = purger
        self._task: asyncio.Task[None] | None = None

    def get(self, name: str) -> Manifest | None:
        """The manifest origin ``name``, or None."""
        return self.manifests.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self.manifests

    async def start(self) -> None:
        """Load every manifest (a failure is logged and counted: the manifest serves no ids until a
        reload succeeds), then start the reload task."""
        await asyncio.gather(*(self.check(m, purge=False) for m in self.manifests.values()))
        if self.manifests and self._task is None:
            self._task = asyncio.create_task(self._watch(), name="edgeproxy-manifests")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.ttl)
            for m in self.manifests.values():
                try:
                    await self.check(m)
                except Exception:  # a bug must not end the reloads
                    _log.exception("manifest %r: reload failed", m.name)

    async def check(self, m: Manifest, *, purge: bool = True) -> list[str]:
        """Reload ``m`` when its stamp changed (or it never loaded) and, with ``purge`` (not at
        start-up: nothing was served yet), purge the ids that changed; the changed ids (none when
        nothing changed or the new version is bad)."""
        async with m.lock:
            try:
                if m.loaded and await m.source.stamp() == m.stamp:
                    return []
                if not m.loaded and m.stamp is not None and await m.source.stamp() == m.stamp:
                    return []  # the bad version already reported
                entries, stamp = await m.read()
            except SourceError as exc:
                self._failed(m, str(exc))
                return []
            old = m.entries
            m.entries, m.stamp, m.loaded = entries, stamp, True
        self.metrics.manifest_loads.labels(m.name, "loaded").inc()
        self.metrics.manifest_ids.labels(m.name).set(len(entries))
        ids = await asyncio.to_thread(manifest.changed, old, entries)
        _log.info("manifest %r loaded: %d ids, %d changed", m.name, len(entries), len(ids))
        if ids and purge:
            await purge_ids(self.purger, m.name, ids, old, entries)
        return ids

    async def update(self, m: Manifest, updates: Mapping[str, Entry | None]) -> tuple[list[str], list[dict[str, Any]]]:
        """Apply ``updates`` (id -> entry, or None to remove) to the stored manifest ``m`` (read
        again first, so an update made elsewhere is kept), write it back, serve it, and purge the
        ids that changed: (changed ids, one purge result per id).

        Raises:
            SourceError: the stored manifest cannot be read, parsed or written (nothing changes).
        """
        async with m.lock:
            try:
                current, _stamp = await m.read()
            except SourceError as exc:
                self._failed(m, str(exc))
                raise
            new = manifest.updated(current, updates)
            stamp = await m.source.write(await asyncio.to_thread(manifest.dump, new))
            old = m.entries
            m.entries, m.stamp, m.loaded = new, stamp, True
        self.metrics.manifest_loads.labels(m.name, "updated").inc()
        self.metrics.manifest_ids.labels(m.name).set(len(new))
        ids = await asyncio.to_thread(manifest.changed, old, new)
        _log.info("manifest %r updated: %d ids, %d changed", m.name, len(new), len(ids))
        return ids, await purge_ids(self.purger, m.name, ids, old, new)

    def _failed(self, m: Manifest, reason: str) -> None:
        self.metrics.manifest_loads.labels(m.name, "failed").inc()
        _log.warning(
            "manifest %r not (re)loaded, %s: %s",
            m.name,
            f"still serving the previous version ({len(m.entries)} ids)" if m.loaded else "serving no ids",
            reason,
            extra={"fields": {"manifest": m.name}},
        )

    async def aclose(self) -> None:
        """End the reload task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
