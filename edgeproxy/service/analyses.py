"""The vision models' analysis of an original for a request (``Analyses``; ``Service.analysis``
calls it): from the per-original cache, else once for concurrent callers, from the analysis object
``edgeproxy ingest`` stored beside the original, else by the models inline, in the render pool."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from edgeproxy.cache import SingleFlight
from edgeproxy.http.metrics import Metrics
from edgeproxy.origins import Origin, Original
from edgeproxy.render import pipeline
from edgeproxy.render.pool import RenderPool
from edgeproxy.service.originals import Originals

if TYPE_CHECKING:
    from edgeproxy.vision.analysis import Analysis, Vision


class Analyses:
    """Analyses of originals, built once with the ``Service``: ``vision`` (the loaded models),
    ``originals`` (the stored analysis objects), ``pool`` (the render pool), ``metrics``, and the
    source ``limits`` every decode is held to."""

    def __init__(
        self, vision: Vision, *, originals: Originals, pool: RenderPool, metrics: Metrics, limits: pipeline.Limits
    ) -> None:
        self.vision = vision
        self.originals = originals
        self.pool = pool
        self.metrics = metrics
        self.limits = limits
        self.flight: SingleFlight = SingleFlight()

    async def get(self, origin: Origin, key: str, original: Original, deadline: float) -> Analysis:
        """The analysis of ``original`` (``vision.analysis``): from the per-original cache (keyed
        by origin, key and the origin's ETag), else computed once in the render pool for every
        concurrent caller: from the analysis object ``edgeproxy ingest`` stored beside the original
        when it applies (``Originals.analysis_record``: no model runs), else by the models (inline);
        counted in ``edgeproxy_analysis_total{source="stored"|"inline"}``.

        Raises:
            ProxyError: 413/415/422 decoding the original, 503 when the render queue is full, 504
                when ``deadline`` passes.
        """
        vision = self.vision
        cache_key = (origin.name, key, original.etag)
        cached = vision.cached(cache_key)
        if cached is not None:
            self.metrics.cache.labels("analysis", "hit").inc()
            return cached

        async def compute() -> tuple[str, Analysis]:
            record = await self.originals.analysis_record(origin, key, original, vision.fingerprint())
            if record is not None:  # edgeproxy ingest's: no model runs, the grids from the small decode
                job = functools.partial(
                    vision.from_record, cache_key, original.data, self.limits, record.nsfw, record.faces
                )
                return "stored", (await self.pool.run(job, deadline=deadline))[1]
            inline = functools.partial(vision.analyse, cache_key, original.data, self.limits)
            return "inline", (await self.pool.run(inline, deadline=deadline))[1]

        (source, analysis), shared = await self.flight.run(cache_key, compute)
        self.metrics.cache.labels("analysis", "coalesced" if shared else "miss").inc()
        if not shared:
            self.metrics.analysis.labels(source).inc()
            for stage, seconds in analysis.timings.items():
                self.metrics.vision.labels(stage).observe(seconds)
            for failure in analysis.failures:
                self.metrics.vision_failures.labels(failure.model).inc()
        return analysis
