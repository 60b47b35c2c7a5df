"""One upload's analysis, stored beside the original: fetch it through its origin, run both models
(``Vision.analyse``), read its C2PA manifest and its metadata (S3 object metadata or the sidecar
``KEY.json``), take the moderation policy's verdict from the score, and write the analysis object
``KEY.analysis.json`` (``ingest.record``). Idempotent: a record that already applies to the
original (its origin ETag and the models' fingerprint) is not redone, so a redelivered event costs a
fetch and a small read. When the original replaced an earlier one (a record with another ETag was
there), its derivatives are purged through the purge hooks, purged again once every proxy has
dropped its cached copy of the old original (``original_cache_ttl``), and the configured variants
prewarmed then.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from edgeproxy import prewarm
from edgeproxy.errors import ProxyError
from edgeproxy.ingest.events import Upload
from edgeproxy.ingest.record import AnalysisRecord, analysis_key, content_hash
from edgeproxy.origins import Origin, Original
from edgeproxy.origins.writer import Writer
from edgeproxy.purge import Hooks
from edgeproxy.render import pipeline
from edgeproxy.render.failures import failures
from edgeproxy.service.originals import SIDECAR_SUFFIX
from edgeproxy.service.validators import surrogate_key
from edgeproxy.vision.moderation import Metadata, Policy, Source, decide, parse_sidecar

if TYPE_CHECKING:
    from edgeproxy.provenance.context import C2paContexts
    from edgeproxy.vision.analysis import Vision

_log = logging.getLogger("edgeproxy.ingest")


class Outcome(enum.StrEnum):
    """What handling one upload did (the ``outcome`` label of ``edgeproxy_ingest_jobs_total``)."""

    ANALYSED = "analysed"
    SKIPPED = "skipped"
    FAILED = "failed"


class AnalysisFailed(Exception):
    """A model failed on the original: nothing is stored, and the upload is tried again."""


@dataclass(frozen=True, slots=True)
class Prewarm:
    """What is prewarmed after a replaced original is purged: ``variants`` (option paths) requested
    from ``base`` (the CDN), signed with ``signing_key`` (``signature_size`` bytes)."""

    base: str
    variants: tuple[str, ...]
    signing_key: str
    signature_size: int
    timeout: float


class Analyser:
    """Analyses uploads of ``origins`` (each with its ``writers`` entry) with ``vision``, decides
    with ``policy``, reads C2PA manifests with ``c2pa`` (None: not read), and on replacement purges
    through ``hooks`` (again after ``settle`` seconds: the proxies' ``original_cache_ttl``) and
    prewarms (``prewarm``, None: not); its analysis objects are authenticated with ``record_key``
    (``ingest.record.record_key``)."""

    def __init__(
        self,
        *,
        origins: Mapping[str, Origin],
        writers: Mapping[str, Writer],
        vision: Vision,
        policy: Policy,
        limits: pipeline.Limits,
        hooks: Hooks,
        c2pa: C2paContexts | None = None,
        prewarm: Prewarm | None = None,
        sidecar_max_bytes: int = 65_536,
        settle: float = 0.0,
        record_key: bytes,
    ):
        self.origins = origins
        self.writers = writers
        self.vision = vision
        self.models = vision.fingerprint()
        self.policy = policy
        self.limits = limits
        self.hooks = hooks
        self.c2pa = c2pa
        self.prewarm = prewarm
        self.sidecar_max_bytes = sidecar_max_bytes
        self.settle = settle
        self.record_key = record_key
        self._settling: set[asyncio.Task[None]] = set()

    async def process(self, upload: Upload) -> tuple[Outcome, AnalysisRecord | None]:
        """Analyse ``upload`` unless its record already applies: (``ANALYSED``, the record written)
        or (``SKIPPED``, the record found, or None when the original is gone: deleted since).

        Raises:
            ProxyError: the original cannot be fetched (413, 502, 504) or decoded (415, 422);
            AnalysisFailed: a model failed; OSError and obstore errors: the record cannot be
                written. Nothing is stored then, and the caller counts the failure.
        """
        origin = self.origins[upload.origin]
        writer = self.writers[upload.origin]
        try:
            original = await origin.fetch(upload.key)
        except ProxyError as error:
            if error.status == 404:
                return Outcome.SKIPPED, None
            raise
        previous = await self._previous(writer, upload)
        if previous is not None and previous.applies_to(original.etag, self.models) and not previous.failures:
            return Outcome.SKIPPED, previous
        metadata = await self._metadata(origin, writer, upload.key, original)
        record = await asyncio.to_thread(self._analyse, upload, original, metadata)
        await writer.put(analysis_key(upload.key), record.to_json(self.record_key))
        if previous is not None and previous.etag != original.etag:
            await self._replaced(upload)
        return Outcome.ANALYSED, record

    async def _previous(self, writer: Writer, upload: Upload) -> AnalysisRecord | None:
        data = await writer.get(analysis_key(upload.key))
        if data is None:
            return None
        try:
            return AnalysisRecord.from_json(data, self.record_key)
        except ValueError as error:  # analysed again, and overwritten
            _log.warning("unusable analysis object", extra={"fields": {"origin": upload.origin, "error": str(error)}})
            return None

    async def _metadata(self, origin: Origin, writer: Writer, key: str, original: Original) -> Metadata:
        """The original's metadata, as the proxy reads it (object metadata, else the sidecar)."""
        if original.metadata:
            return Metadata(MappingProxyType(dict(original.metadata)), Source.METADATA)
        if not origin.sidecars:
            return Metadata()
        data = await writer.get(key + SIDECAR_SUFFIX)
        if data is None:
            return Metadata()
        return parse_sidecar(data, self.sidecar_max_bytes, name=f"{origin.name}/{key}{SIDECAR_SUFFIX}")

    def _analyse(self, upload: Upload, original: Original, metadata: Metadata) -> AnalysisRecord:
        """Blocking: the models, the C2PA manifest and the verdict, as a record."""
        analysis = self.vision.analyse((upload.origin, upload.key, original.etag), original.data, self.limits)
        if analysis.failures:
            raise AnalysisFailed("; ".join(str(failure) for failure in analysis.failures))
        with failures():  # as Vision.analyse: libvips' errors stay this original's
            found = pipeline.inspect(original.data, self.limits).info
        provenance: dict[str, Any] = dict(metadata.provenance)
        if self.c2pa is not None:
            from edgeproxy.provenance.read import read_manifest

            manifest = read_manifest(original.data, "", self.c2pa)
            if manifest is not None:
                provenance["c2pa"] = manifest
        return AnalysisRecord(
            origin=upload.origin,
            key=upload.key,
            etag=original.etag,
            sha256=content_hash(original.data),
            models=self.models,
            uploaded_at=upload.uploaded_at,
            analysed_at=time.time(),
            width=found.width,
            height=found.height,
            nsfw=analysis.nsfw,
            faces=analysis.faces,
            verdict=decide(Metadata(), analysis.nsfw, self.policy).verdict,
            provenance=MappingProxyType(provenance),
        )

    async def _replaced(self, upload: Upload) -> None:
        """Purge a replaced original's derivatives everywhere at once; then, when a proxy may
        still render from its cached copy of the old original for ``settle`` seconds (their
        ``original_cache_ttl``), purge again after that (what a CDN miss refilled from a stale copy
        in between goes too), and prewarm the variants only then (else they could be the old ones)."""
        tag = surrogate_key(upload.origin, upload.key)
        await self._purge(upload, tag, again=False)
        if self.settle <= 0:
            await self._prewarm(upload, tag)
            return
        task = asyncio.create_task(self._settled(upload, tag))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def _settled(self, upload: Upload, tag: str) -> None:
        try:
            await asyncio.sleep(self.settle)
        finally:  # at shutdown (cancelled by ``close``) too: purged again and prewarmed at once
            await self._purge(upload, tag, again=True)
            await self._prewarm(upload, tag)

    async def _purge(self, upload: Upload, tag: str, *, again: bool) -> None:
        results = await self.hooks.purge(tag, upload.origin, upload.key)
        _log.info(
            "replaced original purged",
            extra={"fields": {"origin": upload.origin, "surrogate_key": tag, "again": again, "hooks": results}},
        )

    async def _prewarm(self, upload: Upload, tag: str) -> None:
        if self.prewarm is None or not self.prewarm.variants:
            return
        warm = self.prewarm
        jobs = prewarm.plan([(upload.origin, upload.key)], list(warm.variants), warm.signing_key, warm.signature_size)
        summary = await prewarm.run(warm.base, jobs, concurrency=4, timeout=warm.timeout, progress=False)
        if summary.failures:
            _log.warning(
                "prewarm after replacement failed",
                extra={"fields": {"surrogate_key": tag, "failed": len(summary.failures), "of": summary.total}},
            )

    async def close(self) -> None:
        """Run the second purges and prewarms still waiting for ``settle``, at once (at shutdown)."""
        pending = list(self._settling)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
