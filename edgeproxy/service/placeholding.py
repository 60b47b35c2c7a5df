"""``/info``'s placeholders (``render.placeholder``: dominant colour, ThumbHash and its PNG) of an
original, computed from what a viewer of its derivatives sees, cached per original and treatment,
once for concurrent callers (``Placeholding``; ``Service.placeholders`` calls it)."""

from __future__ import annotations

from collections.abc import Callable, Hashable

import cachetools

from edgeproxy.cache import SingleFlight
from edgeproxy.errors import ProxyError
from edgeproxy.http.negotiate import Negotiated
from edgeproxy.origins import Origin
from edgeproxy.render import pipeline, placeholder
from edgeproxy.render.pool import RenderPool
from edgeproxy.service.decision import Decider, unjudged
from edgeproxy.service.results import Examined, Treatment
from edgeproxy.settings import Settings
from edgeproxy.url.spec import Format, TransformSpec

#: The derivative ``/info``'s placeholders are computed from: at most ``placeholder.SIDE`` px a side,
#: lossless, rendered with the treatment a viewer's derivative gets.
PLACEHOLDER_REQUEST = Negotiated(
    TransformSpec(width=placeholder.SIDE, height=placeholder.SIDE, format=Format.PNG), frozenset(), ()
)

#: A render of one derivative: (the original's bytes, the request, deadline, treatment) -> the
#: derivative (``service.renderer.Renderer.render``).
Render = Callable[[bytes, Negotiated, float, Treatment], pipeline.Rendered]


class Placeholding:
    """Placeholders of originals for ``/info``, built once with the ``Service``: ``settings``
    (moderation, ``placeholder_cache_entries``), ``decider`` (the treatment), ``scores`` (whether a
    moderation classifier is loaded), ``render`` (one derivative, blocking) and ``pool`` (the render
    pool it runs in). ``cache``: the placeholders kept (LRU, None when ``placeholder_cache_entries``
    is 0)."""

    def __init__(self, settings: Settings, decider: Decider, *, scores: bool, render: Render, pool: RenderPool) -> None:
        self.settings = settings
        self.decider = decider
        self.scores = scores
        self.render = render
        self.pool = pool
        self.flight: SingleFlight = SingleFlight()
        self.cache: cachetools.LRUCache[Hashable, placeholder.Placeholders] | None = (
            cachetools.LRUCache(maxsize=settings.placeholder_cache_entries)
            if settings.placeholder_cache_entries
            else None
        )

    async def compute(
        self, origin: Origin, key: str, examined: Examined, deadline: float
    ) -> placeholder.Placeholders | None:
        """``examined``'s placeholders computed from a ``PLACEHOLDER_REQUEST`` derivative rendered
        with the treatment any derivative gets (moderation's blur when moderation is on, the
        origin's forced face redaction, a failed model's whole-image redaction). None when
        moderation (on) blocks the original: there is nothing to show. Cached by origin, key, the
        original's ETag and the treatment, unless the treatment is degraded (a model failed: it may
        not next time); computed once for concurrent callers, in the render pool by ``deadline``.

        Raises:
            ProxyError: 413, 415, 422 (the original), 503, 504, with the original's surrogate key.
        """
        redact = self.decider.forced_redaction(origin.name)
        metadata = examined.metadata if self.settings.moderation else None
        analysis = examined.analysis
        scored = unjudged(metadata) and self.scores
        tag = examined.surrogate_key
        try:
            treatment = self.decider.treat(
                tag, metadata, analysis, redact=redact, scored=scored, faces_wanted=redact is not None, counted=False
            )
        except ProxyError as error:
            if error.status == 451:
                return None
            raise
        cache_key = (origin.name, key, examined.original.etag, treatment.stamp)
        cache = self.cache
        if cache is not None and (found := cache.get(cache_key)) is not None:
            return found
        data = examined.original.data

        def job() -> placeholder.Placeholders:
            rendered = self.render(data, PLACEHOLDER_REQUEST, deadline, treatment)
            return placeholder.compute(rendered.body)

        try:
            (_queued, computed), _shared = await self.flight.run(
                cache_key, lambda: self.pool.run(job, deadline=deadline)
            )
        except ProxyError as error:
            raise error.about(tag) from None
        if cache is not None and not treatment.degraded:
            cache[cache_key] = computed
        return computed
