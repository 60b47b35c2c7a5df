"""The review page's objects, built once at start-up from the app's ``Components`` (``Review.build``)
and closed at shutdown: the gate (credentials, sessions, CSRF), the queue, each writable origin's
verdict store, the audit log, the metrics, the Jinja2 templates and the URL builder of thumbnails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

from edgeproxy.origins.writer import writer_for
from edgeproxy.review.audit import AuditLog
from edgeproxy.review.auth import Gate
from edgeproxy.review.metrics import ReviewMetrics
from edgeproxy.review.queue import ReviewQueue
from edgeproxy.review.verdicts import VerdictStore, verdict_store
from edgeproxy.url.builders import UrlBuilder

if TYPE_CHECKING:
    from edgeproxy.compose import Components

_log = logging.getLogger("edgeproxy.review")
#: Fewest seconds between two background listings (``refresh``), whatever ``review_cache_seconds``.
MIN_REFRESH = 10.0


def templates() -> jinja2.Environment:
    """The page templates (package data ``edgeproxy/review/templates``), HTML auto-escaped."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("edgeproxy.review", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


@dataclass
class Review:
    """The review page's objects (module docstring); ``urls`` is None without a signing key."""

    gate: Gate
    queue: ReviewQueue
    verdicts: dict[str, VerdictStore]
    audit: AuditLog
    metrics: ReviewMetrics
    templates: jinja2.Environment
    urls: UrlBuilder | None
    page_size: int
    thumb_width: int
    _refresher: asyncio.Task[None] | None = None

    @classmethod
    def build(cls, components: Components) -> Review:
        """The review objects over ``components`` (``review = true``; settings checked that
        ``admin_token`` and ``review_audit_log`` are set)."""
        from edgeproxy.compose import moderation_policy, s3_options
        from edgeproxy.settings_values import analysis_record_key

        settings = components.settings
        assert settings.admin_token is not None and settings.review_audit_log  # settings_checks.check_review
        s3 = s3_options(settings)
        sources = {}
        verdicts: dict[str, VerdictStore] = {}
        for name, origin in components.origins.items():
            writer, store = writer_for(origin), verdict_store(origin, s3, settings.origin_timeout)
            if writer is not None and store is not None:
                sources[name] = (writer, store)
                verdicts[name] = store
        queue = ReviewQueue(
            sources,
            moderation_policy(settings),
            ttl=settings.review_cache_seconds,
            max_items=settings.review_max_items,
            record_key=analysis_record_key(settings),
        )
        keys = settings.verify_keys()
        return cls(
            gate=Gate(settings.admin_token, settings.review_session_max_age),
            queue=queue,
            verdicts=verdicts,
            audit=AuditLog(Path(settings.review_audit_log)),
            metrics=ReviewMetrics(components.metrics, lambda: queue.last),
            templates=templates(),
            urls=UrlBuilder("", keys[0], signature_size=settings.signature_size) if keys else None,
            page_size=settings.review_page_size,
            thumb_width=settings.review_thumb_width,
        )

    async def _refresh(self, every: float) -> None:
        while True:
            try:
                await self.queue.listing()
            except Exception:  # a failing origin must not end the refresher: logged, retried
                _log.exception("review listing failed")
            await asyncio.sleep(every)

    def start(self) -> None:
        """Keep the listing (and so the backlog metrics) fresh in the background, every
        ``review_cache_seconds`` (at least ``MIN_REFRESH``)."""
        self._refresher = asyncio.get_running_loop().create_task(self._refresh(max(self.queue.ttl, MIN_REFRESH)))

    async def aclose(self) -> None:
        """Stop the refresher; close the verdict stores; unregister the metrics."""
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        for store in self.verdicts.values():
            store.close()
        self.metrics.close()
