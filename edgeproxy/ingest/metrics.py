"""The ingest workers' Prometheus metrics (served on ``edgeproxy ingest --metrics-port``):

- ``edgeproxy_ingest_jobs_total{outcome}``: uploads handled, by outcome: ``analysed`` (a record
  written), ``skipped`` (a record that applies was there already: a redelivered event; or the
  original is gone) and ``failed`` (the error is logged; the message is received again, and after
  three receives it goes to the dead-letter queue);
- ``edgeproxy_ingest_latency_seconds``: from the upload (the event's time, or the file's mtime) to
  its analysis object stored;
- ``edgeproxy_ingest_queue_depth``: messages waiting in the queue (SQS
  ``ApproximateNumberOfMessages``), read at scrape time.

With several worker processes (``--processes N``) the counters and the histogram are summed over
them (prometheus-client's multiprocess mode, as ``edgeproxy serve --workers``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

#: Upload-to-analysis latency buckets (seconds): under a second when the queue is empty, minutes
#: behind a backlog.
LATENCY_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)
OUTCOMES = ("analysed", "skipped", "failed")


class IngestMetrics:
    """The counters and histogram of one worker process, on ``registry`` (None in multiprocess
    mode: the values go to prometheus-client's files, summed by ``serve_metrics``)."""

    def __init__(self, registry: CollectorRegistry | None):
        self.jobs = Counter(
            "edgeproxy_ingest_jobs",
            "Uploads handled by edgeproxy ingest, by outcome: analysed, skipped (analysed already, or gone), "
            "failed (logged; the message comes back, and goes to the dead-letter queue after three receives).",
            ["outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "edgeproxy_ingest_latency_seconds",
            "Seconds from an original's upload to its analysis object stored.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        for outcome in OUTCOMES:
            self.jobs.labels(outcome)


class _QueueDepth(Collector):
    """``edgeproxy_ingest_queue_depth``, read from the queue at scrape time (NaN when it cannot be)."""

    def __init__(self, depth: Callable[[], float]):
        self.depth = depth

    def collect(self) -> Iterator[Metric]:
        try:
            value = self.depth()
        except Exception:  # the queue is unreachable: the gauge says so, the scrape still answers
            value = float("nan")
        yield GaugeMetricFamily(
            "edgeproxy_ingest_queue_depth",
            "Messages waiting in the ingest queue (SQS ApproximateNumberOfMessages).",
            value,
        )


def serve_metrics(
    port: int,
    host: str,
    *,
    registry: CollectorRegistry | None,
    depth: Callable[[], float] | None,
    multiprocess_dir: str | None = None,
) -> CollectorRegistry:
    """Serve ``/metrics`` on ``host:port`` (prometheus-client's server, in a daemon thread):
    ``registry``'s metrics, or with ``multiprocess_dir`` every worker process's summed, and the
    queue depth when ``depth`` is given. Returns the registry served.

    Raises:
        OSError: the port cannot be bound.
    """
    served = registry if registry is not None else CollectorRegistry()
    if multiprocess_dir is not None:
        MultiProcessCollector(served, path=multiprocess_dir)
    if depth is not None:
        served.register(_QueueDepth(depth))
    start_http_server(port, addr=host, registry=served)
    return served
