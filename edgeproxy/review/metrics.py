"""The review metrics, on the app's registries (``http.metrics.Metrics``):

- ``edgeproxy_review_backlog`` (gauge, originals): how many wait for review, from the last listing;
- ``edgeproxy_review_oldest_seconds`` (gauge, seconds): since the upload of the oldest of them
  (0 when none waits);
- ``edgeproxy_review_decisions_total{verdict}`` (counter): verdicts given on the review page,
  ``approved``, ``rejected`` or ``blurred``.

The gauges are read at scrape time from the last listing (no I/O in a scrape), which
``service.Review.refresh`` renews in the background; each worker process reports its own listing
(the same origins, so the same numbers: aggregate them with ``max``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from edgeproxy.http.metrics import Metrics
from edgeproxy.review.queue import Listing
from edgeproxy.review.verdicts import SETTLED


class _Backlog(Collector):
    def __init__(self, last: Callable[[], Listing | None], clock: Callable[[], float]):
        self.last = last
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        listing = self.last()
        backlog = len(listing.items) if listing is not None else 0
        oldest = listing.oldest_seconds(self.clock()) if listing is not None else 0.0
        yield GaugeMetricFamily("edgeproxy_review_backlog", "Originals waiting for a human verdict.", value=backlog)
        yield GaugeMetricFamily(
            "edgeproxy_review_oldest_seconds",
            "Seconds since the upload of the oldest original waiting for a human verdict (0: none waits).",
            value=oldest,
        )


class ReviewMetrics:
    """The review metrics registered on ``metrics``; the gauges read ``last()`` (the last listing)."""

    def __init__(self, metrics: Metrics, last: Callable[[], Listing | None], clock: Callable[[], float] = time.time):
        self.decisions = Counter(
            "edgeproxy_review_decisions",
            "Verdicts given on the review page, by verdict: approved, rejected, blurred.",
            ["verdict"],
            registry=metrics.registry,
        )
        for verdict in sorted(SETTLED):
            self.decisions.labels(verdict)
        self._backlog = _Backlog(last, clock)
        self._live = metrics.live
        self._live.register(self._backlog)

    def close(self) -> None:
        """Unregister the gauges' collector."""
        self._live.unregister(self._backlog)
