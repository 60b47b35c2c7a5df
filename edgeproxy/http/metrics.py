"""Prometheus metrics, on the app's own ``CollectorRegistry`` (no module-level metrics).

Every name starts with ``edgeproxy_``; labels are low-cardinality by construction: status class,
output format, stage, configured origin name, cache, outcome, error category. No label ever
carries a URL, an object key or any other user input. The exposition is Prometheus text format
0.0.4 (``prometheus_client.generate_latest``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

#: Request latency buckets (seconds): image renders take 10 ms to several seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
STAGES = ("queue", "fetch", "decode", "transform", "encode", "inference")
ERROR_CATEGORIES = (
    "parse",
    "signature",
    "origin",
    "limit",
    "format",
    "decode",
    "timeout",
    "overload",
    "moderation",
    "auth",
    "internal",
)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """All of edgeproxy's metrics, registered on ``self.registry``.

    ``origins``: the configured origin names, whose per-origin series start at 0.
    Gauges that describe live state (in-flight requests, queue depth, worker utilisation, libvips
    memory) read it at scrape time through the callbacks given here.
    """

    def __init__(
        self,
        *,
        version: str,
        libvips: str,
        formats: str,
        queue_depth: Callable[[], float],
        utilization: Callable[[], float],
        vips_memory: Callable[[], float],
        dropped_renders: Callable[[], float],
        result_storage: Callable[[], Mapping[str, float]] | None = None,
        multiprocess_dir: str | None = None,
        origins: Iterable[str] = (),
        manifests: Iterable[str] = (),
    ):
        r = self.registry = CollectorRegistry(auto_describe=True)
        # Per-process, read at scrape time: never aggregated across worker processes.
        live = self.live = CollectorRegistry(auto_describe=True) if multiprocess_dir else r
        self.multiprocess_dir = multiprocess_dir
        ProcessCollector(registry=live)  # process_resident_memory_bytes, process_cpu_seconds_total, ...
        PlatformCollector(registry=live)
        if multiprocess_dir:  # Info does not work in prometheus-client's multiprocess mode
            Gauge(
                "edgeproxy_build_info",
                "Build and runtime versions.",
                ["version", "libvips", "formats"],
                multiprocess_mode="max",
                registry=r,
            ).labels(version, libvips, formats).set(1)
        else:
            Info("edgeproxy_build", "Build and runtime versions.", registry=r).info(
                {"version": version, "libvips": libvips, "formats": formats}
            )
        self.requests = Counter(
            "edgeproxy_requests",
            "Requests answered (transform, /info, /purge; not the probes or /metrics), by status class and "
            "output format (none for errors, 304s and JSON answers).",
            ["status_class", "format"],
            registry=r,
        )
        self.duration = Histogram(
            "edgeproxy_request_duration_seconds",
            "Time to answer a request (transform, /info, /purge).",
            ["status_class"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stage = Histogram(
            "edgeproxy_stage_duration_seconds",
            "Time per request stage. libvips is lazy: pixel decoding mostly happens inside encode.",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.origin_duration = Histogram(
            "edgeproxy_origin_fetch_duration_seconds",
            "Origin fetch time.",
            ["origin"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.origin_bytes = Counter("edgeproxy_origin_bytes", "Bytes fetched from origins.", ["origin"], registry=r)
        self.cache = Counter(
            "edgeproxy_cache_lookups",
            "Original and variant lookups by outcome: hit, miss, "
            "coalesced (shared an identical request's work); for originals also revalidated "
            "(a conditional request found it unchanged), refreshed (fetched again because the "
            "origin changed it) and negative_hit (a remembered 404).",
            ["cache", "outcome"],
            registry=r,
        )
        self.origin_stale = Counter(
            "edgeproxy_origin_stale_served",
            "Answers rendered from a cached original "
            "whose revalidation failed (the origin was unreachable, timed out or answered "
            "5xx), within origin_stale_if_error.",
            ["origin"],
            registry=r,
        )
        self.manifest_loads = Counter(
            "edgeproxy_manifest_loads",
            "Manifest (re)loads by manifest and outcome: loaded (a new version swapped in), "
            "failed (unreadable or invalid: the previous version stays), updated (POST /manifest).",
            ["manifest", "outcome"],
            registry=r,
        )
        self.manifest_ids = Gauge(
            "edgeproxy_manifest_ids",
            "Ids in the manifest version being served.",
            ["manifest"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.bytes_in = Counter("edgeproxy_bytes_in", "Bytes of originals rendered.", registry=r)
        self.bytes_out = Counter("edgeproxy_bytes_out", "Bytes of derivatives sent.", registry=r)
        self.errors = Counter("edgeproxy_errors", "Failed requests by category.", ["category"], registry=r)
        self.disconnects = Counter(
            "edgeproxy_client_disconnects",
            "Requests (transform, /info) whose client went away before the answer (their queued work is cancelled).",
            registry=r,
        )
        self.moderation = Counter(
            "edgeproxy_moderation",
            "Moderation decisions, one per answered derivative "
            "of a moderated origin: verdict allow, blur, block or pending; source metadata, "
            "sidecar (a human verdict), classifier (the nsfw score), none (neither) or error "
            "(the classifier or the sidecar failed).",
            ["verdict", "source"],
            registry=r,
        )
        self.vision = Histogram(
            "edgeproxy_vision_seconds",
            "Time per vision stage of one original's analysis: "
            "decode (the small copy), nsfw, faces (inference, pre- and post-processing), "
            "grids (the colours that obscure faces and the whole original).",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.analysis = Counter(
            "edgeproxy_analysis",
            "Analyses of originals by source: stored (the analysis object KEY.analysis.json that "
            "`edgeproxy ingest` wrote: no model runs) or inline (the models ran on the request).",
            ["source"],
            registry=r,
        )
        self.vision_failures = Counter(
            "edgeproxy_vision_failures",
            "Model inferences that failed (the answer degraded: smart gravity, pending verdict, short max-age).",
            ["model"],
            registry=r,
        )
        self.optimise = Counter(
            "edgeproxy_optimise",
            "Background optimisations (the optimised tier of q:auto derivatives) by outcome: queued, done, "
            "dropped (the queue was full), failed (an error or the optimise_timeout).",
            ["outcome"],
            registry=r,
        )
        self.optimise_duration = Histogram(
            "edgeproxy_optimise_duration_seconds",
            "Seconds one background optimisation took (its render and quality search).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.optimise_pending = Gauge(
            "edgeproxy_optimise_queue_depth",
            "Background optimisations queued or running.",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.in_flight = Gauge(
            "edgeproxy_requests_in_flight",
            "Requests being answered (transform, /info, /purge).",
            multiprocess_mode="livesum",
            registry=r,
        )
        live.register(
            _LiveGauges(
                [
                    (
                        "edgeproxy_render_queue_depth",
                        "Renders waiting for a render thread (this process).",
                        queue_depth,
                    ),
                    (
                        "edgeproxy_worker_utilization",
                        "Busy render threads / render threads, 0..1 (this process).",
                        utilization,
                    ),
                    (
                        "edgeproxy_vips_memory_bytes",
                        "Memory libvips has allocated for pixels (this process).",
                        vips_memory,
                    ),
                ],
                [
                    (
                        "edgeproxy_render_jobs_dropped",
                        "Renders taken out of the queue before they started because "
                        "every client waiting for them went away (this process).",
                        dropped_renders,
                    ),
                ],
            )
        )
        if result_storage is not None:
            live.register(
                _Outcomes(
                    "edgeproxy_result_storage",
                    "Result storage operations by outcome (this process): hits, misses, corrupt (a stored "
                    "object failed its size or SHA-256 check: deleted, rendered again), writes, skipped "
                    "(not stored), evictions (LRU), purged, errors (I/O or S3 failures, each logged).",
                    result_storage,
                )
            )
        for category in ERROR_CATEGORIES:  # every category is visible at 0 before its first error
            self.errors.labels(category)
        for stage in STAGES:
            self.stage.labels(stage)
        for outcome in ("queued", "done", "dropped", "failed"):
            self.optimise.labels(outcome)
        for source in ("stored", "inline"):
            self.analysis.labels(source)

        for origin in origins:  # configured origin names: each visible at 0 before its first stale answer
            self.origin_stale.labels(origin)
        for manifest in manifests:  # configured manifest names: each outcome visible at 0
            for outcome in ("loaded", "failed", "updated"):
                self.manifest_loads.labels(manifest, outcome)

    def exposition(self) -> bytes:
        """The metrics in Prometheus text format.

        With several uvicorn workers (``multiprocess_dir`` set, prometheus-client's multiprocess
        mode), counters, histograms and ``requests_in_flight`` are summed over every worker from
        their files, whichever worker answers the scrape; the live gauges and process metrics are
        those of the answering worker.
        """
        if not self.multiprocess_dir:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=self.multiprocess_dir)
        return generate_latest(merged) + generate_latest(self.live)

    def close(self) -> None:
        """Forget this process's live values in multiprocess mode (at worker shutdown)."""
        if self.multiprocess_dir:
            mark_process_dead(os.getpid(), self.multiprocess_dir)


class _LiveGauges(Collector):
    """Gauges and counters read from callbacks at scrape time (kept out of prometheus-client's
    multiprocess files)."""

    def __init__(
        self,
        gauges: Sequence[tuple[str, str, Callable[[], float]]],
        counters: Sequence[tuple[str, str, Callable[[], float]]] = (),
    ) -> None:
        self._gauges = gauges
        self._counters = counters

    def collect(self) -> Iterator[Metric]:
        for name, documentation, read in self._gauges:
            yield GaugeMetricFamily(name, documentation, value=read())
        for name, documentation, read in self._counters:
            yield CounterMetricFamily(name, documentation, value=read())


class _Outcomes(Collector):
    """One counter ``name`` with an ``outcome`` label, read from a callback at scrape time ({outcome:
    count}; kept out of prometheus-client's multiprocess files)."""

    def __init__(self, name: str, documentation: str, read: Callable[[], Mapping[str, float]]) -> None:
        self._name = name
        self._documentation = documentation
        self._read = read

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._documentation, labels=["outcome"])
        for outcome, count in self._read().items():
            family.add_metric([outcome], count)
        yield family
