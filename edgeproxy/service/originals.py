"""Originals and their metadata, from the in-process cache or the origin: kept fresh while the
origin answers, served stale for a while when it does not (stale-if-error, RFC 5861), fetched once
for every concurrent caller (single-flight), dropped by a purge.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Collection
from dataclasses import dataclass
from types import MappingProxyType

from edgeproxy.cache import OriginalCache, SingleFlight
from edgeproxy.errors import ProxyError
from edgeproxy.http.metrics import Metrics
from edgeproxy.ingest.record import ANALYSIS_SUFFIX, AnalysisRecord, analysis_key
from edgeproxy.origins import HttpOrigin, Origin, Original
from edgeproxy.service.validators import surrogate_key
from edgeproxy.vision.moderation import Metadata, Source, parse_sidecar

_log = logging.getLogger("edgeproxy")

#: A local or HTTP original's metadata lives beside it, in ``KEY`` + this (docs/moderation.md).
SIDECAR_SUFFIX = ".json"
#: Origin failures (the proxy's status for them) after which a cached original may be served stale:
#: 502 (connection failed, 5xx, refused credentials, missing bucket) and 504 (origin timeout).
STALE_IF_ERROR = frozenset({502, 504})


class CacheOutcome(enum.StrEnum):
    """Where an original came from: the ``outcome`` label of ``edgeproxy_cache_lookups_total``
    (``cache="original"``) and the access log's ``cache`` field."""

    HIT = "hit"  # memory, still vouched for
    MISS = "miss"  # first fetch
    REFRESHED = "refreshed"  # the origin changed it: new bytes, or for S3 the same bytes with new metadata
    REVALIDATED = "revalidated"  # the origin found it unchanged
    COALESCED = "coalesced"  # shared an identical request's fetch
    STALE = "stale"  # its revalidation failed: served within origin_stale_if_error
    NEGATIVE_HIT = "negative_hit"  # a remembered 404 (raised, never returned)


@dataclass(frozen=True, slots=True)
class Fetched:
    """An ``original`` and how it was had: the cache ``outcome`` and the ``seconds`` it took."""

    original: Original
    outcome: CacheOutcome
    seconds: float

    @property
    def stale(self) -> bool:
        """True when the origin could not vouch for it (it may change once the origin is back)."""
        return self.outcome is CacheOutcome.STALE


class Originals:
    """The originals of every origin, through ``cache`` (``cache.OriginalCache``), counted in
    ``metrics``. ``ttl``: seconds a cached HTTP/S3 original is used before it is revalidated
    (``original_cache_ttl``); ``stale_if_error``: seconds after the origin last vouched for it
    during which a failed revalidation serves it stale (``origin_stale_if_error``);
    ``sidecar_max_bytes`` and ``sidecar_max_depth`` bound a sidecar ``KEY.json``."""

    def __init__(
        self,
        cache: OriginalCache,
        metrics: Metrics,
        *,
        ttl: float,
        stale_if_error: float,
        sidecar_max_bytes: int,
        sidecar_max_depth: int,
        record_key: bytes,
    ) -> None:
        self.cache = cache
        self.metrics = metrics
        self.ttl = ttl
        self.stale_if_error = stale_if_error
        self.sidecar_max_bytes = sidecar_max_bytes
        self.record_key = record_key  # authenticates analysis objects (ingest.record.record_key)
        self.sidecar_max_depth = sidecar_max_depth
        self._fetches: SingleFlight = SingleFlight()

    async def fetch(self, origin: Origin, key: str) -> Fetched:
        """The original ``key`` of ``origin``, from memory or the origin (once for concurrent callers).

        Never stale while the origin answers: a cached local file is compared with ``stat`` on every
        request; a cached HTTP/S3 original older than ``ttl`` is revalidated (HTTP: a conditional
        GET; S3: a HEAD that also reads the metadata); a purge drops it. A remote origin's 404 is
        remembered (``origin_negative_ttl``) and counted ``negative_hit``.

        Stale only while it does not (stale-if-error, as RFC 5861 defines it for HTTP caches): when
        the revalidation of a cached HTTP/S3 original fails with a 502 or 504 (connection error,
        timeout, 5xx, refused credentials) at most ``stale_if_error`` seconds after the origin last
        vouched for it, the cached original is returned with outcome ``stale``, counted in
        ``edgeproxy_origin_stale_served_total{origin}`` and, once per failed revalidation, logged as
        a warning; the entry is not vouched for again, so the next request tries the origin again.

        Raises:
            ProxyError: the origin's error (404, 413, 502, 504).
        """
        start = time.monotonic()
        cache_key = (origin.name, key)
        missing = self.cache.missing(cache_key)
        if missing is not None:
            self._count(CacheOutcome.NEGATIVE_HIT)
            raise missing
        entry = self.cache.get(cache_key)
        stale: Original | None = None  # a cached original to revalidate
        if entry is not None:
            verdict = origin.unchanged(key, entry.original)
            if verdict or (verdict is None and time.monotonic() - entry.checked < self.ttl):
                self._count(CacheOutcome.HIT)
                return Fetched(entry.original, CacheOutcome.HIT, time.monotonic() - start)
            stale = entry.original if verdict is None else None
        checked = entry.checked if entry is not None else 0.0

        async def fetch() -> tuple[Original, CacheOutcome]:
            began = time.monotonic()
            try:
                original = await origin.fetch(key, stale)
            except ProxyError as error:
                if error.status == 404 and origin.remote:
                    self.cache.put_missing(cache_key, error)
                age = time.monotonic() - checked if stale is not None else 0.0
                if stale is None or error.status not in STALE_IF_ERROR or age > self.stale_if_error:
                    raise
                self._warn_stale(origin.name, key, error, age)
                return stale, CacheOutcome.STALE
            self.metrics.origin_duration.labels(origin.name).observe(time.monotonic() - began)
            self.cache.put(cache_key, original)
            if original is stale:
                return original, CacheOutcome.REVALIDATED
            if stale is not None and original.data is stale.data:  # new metadata, the same bytes (S3 HEAD)
                return original, CacheOutcome.REFRESHED
            self.metrics.origin_bytes.labels(origin.name).inc(len(original.data))
            return original, CacheOutcome.MISS if entry is None else CacheOutcome.REFRESHED

        try:
            (original, outcome), shared = await self._fetches.run(cache_key, fetch)
        except ProxyError:
            self._count(CacheOutcome.MISS)
            raise
        if outcome is CacheOutcome.STALE:  # every caller served stale is counted (and told: a short max-age)
            self.metrics.origin_stale.labels(origin.name).inc()
        elif shared:
            outcome = CacheOutcome.COALESCED
        self._count(outcome)
        return Fetched(original, outcome, time.monotonic() - start)

    def _count(self, outcome: CacheOutcome) -> None:
        self.metrics.cache.labels("original", outcome.value).inc()

    def _warn_stale(self, origin: str, key: str, error: ProxyError, age: float) -> None:
        _log.warning(
            "origin %r failed to revalidate a cached original (%d %s): serving it stale, "
            "vouched for %.0f s ago (origin_stale_if_error %g s)",
            origin,
            error.status,
            error.message,
            age,
            self.stale_if_error,
            extra={"fields": {"origin": origin, "key": key[:256], "surrogate_key": surrogate_key(origin, key)}},
        )

    async def metadata(self, origin: Origin, key: str, original: Original) -> Metadata:
        """The original's metadata: the origin's own (S3 object metadata), else for origins with
        sidecars the ``KEY.json`` beside it, fetched, cached and revalidated as originals are (a
        purge of the original drops it too). A missing sidecar is no metadata; one that cannot be
        fetched or parsed is ``Metadata.error`` (so a pending verdict, never an approval)."""
        if original.metadata or not origin.sidecars:
            return (
                Metadata(MappingProxyType(dict(original.metadata)), Source.METADATA)
                if original.metadata
                else Metadata()
            )
        try:
            sidecar = await self.fetch(origin, key + SIDECAR_SUFFIX)
        except ProxyError as error:
            if error.status == 404:
                return Metadata()
            return Metadata(source=Source.SIDECAR, error=f"sidecar: {error.message}")
        return parse_sidecar(
            sidecar.original.data,
            self.sidecar_max_bytes,
            max_depth=self.sidecar_max_depth,
            name=f"{origin.name}/{key}{SIDECAR_SUFFIX}",
        )

    async def analysis_record(self, origin: Origin, key: str, original: Original, models: str) -> AnalysisRecord | None:
        """The analysis object ``KEY.analysis.json`` that ``edgeproxy ingest`` wrote beside the
        original (``ingest.record``), fetched, cached and revalidated as sidecars are, when it
        applies to ``original`` (its origin ETag) and to the models whose fingerprint is ``models``,
        and no model failed in it. None otherwise: none stored (404), the origin failed (logged at
        debug level: the caller analyses inline), unparsable (a warning naming it), or stale; and
        for HTTP origins, where ``edgeproxy ingest`` cannot write (no request is made)."""
        if isinstance(origin, HttpOrigin):
            return None
        name = analysis_key(key)
        try:
            stored = await self.fetch(origin, name)
        except ProxyError as error:
            if error.status != 404:
                _log.debug("analysis object not read: %d %s", error.status, error.message)
            return None
        try:
            record = AnalysisRecord.from_json(stored.original.data, self.record_key)
        except ValueError as error:
            _log.warning(
                "unusable analysis object",
                extra={"fields": {"object": f"{origin.name}/{name}"[:300], "error": str(error)}},
            )
            return None
        if record.failures or not record.applies_to(original.etag, models):
            return None
        return record

    def drop(self, tag: str) -> int:
        """Forget the original whose surrogate key is ``tag``, its remembered 404, its sidecar
        ``KEY.json`` and its analysis object ``KEY.analysis.json``, so the next request fetches them
        from the origin; returns how many entries went."""
        return self.drop_any(frozenset((tag,)))

    def drop_any(self, tags: Collection[str]) -> int:
        """``drop`` for every surrogate key in ``tags`` (a set: looked up, not scanned), in one pass
        over the cache; returns how many entries went."""
        return self.cache.drop(
            lambda origin_key: (
                surrogate_key(*origin_key) in tags
                or surrogate_key(origin_key[0], origin_key[1].removesuffix(ANALYSIS_SUFFIX)) in tags
                or surrogate_key(origin_key[0], origin_key[1].removesuffix(SIDECAR_SUFFIX)) in tags
            )
        )
