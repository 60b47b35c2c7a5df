"""The request service: ``Service.derive`` turns a negotiated request for one original into a typed
answer (``results.Derived``), in one visible order::

    fetch (originals: memory, origin, single-flight, stale-if-error)
      -> metadata (the origin's, or the sidecar KEY.json; only under moderation)
      -> analysis (the vision models, once per original, in the render pool; only when needed)
      -> decision (moderation: serve, blur or 451; redaction; a failed model degrades)
      -> ETag -> 304 when the client holds it
      -> render (single-flight by ETag, in the render pool; C2PA-signed for c2pa_origins)
    and on an error about the original: the fallback image, when one is configured.

It knows nothing of HTTP requests or responses: the HTTP edge (``edgeproxy.http``) parses the
request, calls ``derive`` and writes the answer. ``examine`` is the same first steps for ``/info``.
Every blocking step runs through one helper, ``run_blocking`` (the render pool: bounded, earliest
deadline first, 503 when full, 504 past the deadline).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, TypeVarTuple

from edgeproxy.cache import SingleFlight
from edgeproxy.errors import ProxyError
from edgeproxy.http.metrics import Metrics
from edgeproxy.http.negotiate import Negotiated
from edgeproxy.origins import Origin, Original
from edgeproxy.render import pipeline, placeholder
from edgeproxy.render.encoding import EncodeOptions
from edgeproxy.render.pool import RenderPool
from edgeproxy.results.store import ResultStore
from edgeproxy.service.analyses import Analyses
from edgeproxy.service.decision import Decider, unjudged
from edgeproxy.service.optimise import Optimisation, Optimiser
from edgeproxy.service.originals import Originals
from edgeproxy.service.placeholding import Placeholding
from edgeproxy.service.renderer import Renderer
from edgeproxy.service.results import (
    Caching,
    Derivative,
    Derived,
    Examined,
    Failure,
    Fallback,
    Image,
    NotModified,
    Tier,
    Treatment,
    Work,
)
from edgeproxy.service.tiers import BackgroundRender, background_job, quality_target, searchable
from edgeproxy.service.validators import Validators, etag_matches, strong_etag, surrogate_key, tier_etag
from edgeproxy.settings import Settings
from edgeproxy.url.media import FORMAT_OF
from edgeproxy.url.spec import canonical

if TYPE_CHECKING:
    from edgeproxy.provenance.sign import DerivativeSigner
    from edgeproxy.vision.analysis import Analysis, Vision

_log = logging.getLogger("edgeproxy")
T = TypeVar("T")
Ts = TypeVarTuple("Ts")

#: Errors about the original that the fallback image (when configured) stands in for.
FALLBACK_STATUSES = frozenset({404, 413, 415, 422, 502, 504})


class Service:
    """Derivatives of originals, built once at start-up (``edgeproxy.compose``).

    ``settings`` gives the moderation, provenance, quality and fallback settings; ``originals``
    fetches; ``decider`` decides (moderation, redaction, caching); ``pool`` runs the blocking work;
    ``limits`` and ``encode_options`` go to every render; ``fingerprint`` is every setting that
    changes output bytes (part of every ETag); ``vision`` the loaded models (None without);
    ``c2pa`` signs the derivatives of ``c2pa_origins``; ``fallback`` the fallback image's bytes
    (None without).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        originals: Originals,
        decider: Decider,
        pool: RenderPool,
        metrics: Metrics,
        limits: pipeline.Limits,
        encode_options: EncodeOptions,
        fingerprint: str,
        vision: Vision | None = None,
        c2pa: DerivativeSigner | None = None,
        fallback: bytes | None = None,
        optimiser: Optimiser | None = None,
        results: ResultStore | None = None,
    ) -> None:
        self.settings = settings
        self.originals = originals
        self.decider = decider
        self.pool = pool
        self.metrics = metrics
        self.limits = limits
        self.encode_options = encode_options
        self.fingerprint = fingerprint
        self.vision = vision
        self.c2pa = c2pa
        self.fallback = fallback
        self.optimiser = optimiser
        self.results = results
        self.renderer = Renderer(settings, limits, encode_options, c2pa)
        self.render = self.renderer.render
        self.renders: SingleFlight = SingleFlight()
        self.analyses = (
            Analyses(vision, originals=originals, pool=pool, metrics=metrics, limits=limits) if vision else None
        )
        scores = vision is not None and vision.nsfw is not None
        # ``self.render`` looked up on each call: a test may replace it on the service.
        self.placeholding = Placeholding(
            settings,
            decider,
            scores=scores,
            render=lambda data, negotiated, deadline, treatment: self.render(data, negotiated, deadline, treatment),
            pool=pool,
        )
        self.placeholder_cache = self.placeholding.cache

    async def run_blocking(self, fn: Callable[[*Ts], T], *args: *Ts, deadline: float) -> tuple[float, T]:
        """(seconds it waited for a render thread, ``fn(*args)``), run in the render pool: libvips,
        the models, C2PA and header parsing never block the event loop. ``deadline`` (a
        ``time.monotonic()`` value, the request's) orders the queue (earliest first) and ends the wait.

        Raises:
            ProxyError: 503 when the pool and its queue are full, 504 past ``deadline``; and
                whatever ``fn`` raises.
        """
        return await self.pool.run(fn, *args, deadline=deadline)

    async def derive(
        self,
        negotiated: Negotiated,
        origin: Origin,
        key: str,
        deadline: float,
        *,
        if_none_match: str | None = None,
        optimise_now: bool = False,
        also: tuple[str, ...] = (),
    ) -> Derived:
        """The derivative of ``origin``'s original ``key`` that ``negotiated`` asks for, by
        ``deadline`` (``time.monotonic()``): a ``Derivative``; a ``NotModified`` when
        ``if_none_match`` (the request's ``If-None-Match``) names its ETag (``optimise_now``: a quality
        target's optimised tier is made now when it is not stored yet); else, for an error about
        the original, the ``Fallback`` image standing in for it (when configured and it renders) or
        the ``Failure``. Errors about the original (404, 413, 415, 422, 451, 502, 503, 504) carry its
        surrogate key. ``also``: more surrogate keys every answer carries after the original's (an
        id of a manifest origin: ``edgeproxy.service.manifests``), so that purging either clears it.

        Raises:
            Exception: only a bug (never a ``ProxyError``: those are a ``Failure``).
        """
        start = time.monotonic()
        spec = negotiated.spec
        tag = " ".join((surrogate_key(origin.name, key), *also))  # Surrogate-Key: keys separated by spaces
        fetched = None
        inference: float | None = None
        try:
            fetched = await self.originals.fetch(origin, key)
            original = fetched.original
            metadata = await self.originals.metadata(origin, key, original) if self.settings.moderation else None
            redact = spec.redact or self.decider.forced_redaction(origin.name)
            want_faces = redact is not None or spec.gravity.kind == "face"
            want_nsfw = unjudged(metadata) and self.vision is not None and self.vision.nsfw is not None
            analysis = None
            if want_faces or want_nsfw:
                began = time.monotonic()
                analysis = await self.analysis(origin, key, original, deadline)
                inference = time.monotonic() - began  # a cache hit: microseconds
            treatment = self.decider.treat(
                tag, metadata, analysis, redact=redact, scored=want_nsfw, faces_wanted=want_faces
            )
            caching = self.decider.caching(treatment, stale=fetched.stale)
            etag = self.etag(negotiated, origin.name, key, original, treatment)
            title = key if self.signs(origin.name) else None
            target = quality_target(self.settings, negotiated)
            tier, untiered = Tier.FIXED, etag

            def unchanged(validators: Validators, caching: Caching) -> NotModified:
                work = Work(fetched.outcome, fetched.seconds, inference, total=time.monotonic() - start)
                return NotModified(validators, caching, negotiated.vary, treatment, fetched.stale, work)

            render = functools.partial(self.render, original.data, negotiated)
            if target is not None and self.tiered:
                name = tier_etag(etag, Tier.OPTIMISED)
                validators = Validators(tag, name, original.last_modified)
                if etag_matches(if_none_match, name):  # the client holds the optimised tier
                    return unchanged(validators, caching)
                optimise = functools.partial(render, deadline, treatment, title, target, True)
                found = await self._optimised(name, tag, optimise, deadline, now=optimise_now)
                if found is not None:
                    image, made, waited, coalesced = found
                    work = Work.answered(fetched, inference, start, original, made, waited, coalesced)
                    return Derivative(
                        image, validators, caching, negotiated.vary, treatment, fetched.stale, work, Tier.OPTIMISED
                    )
                if etag_matches(if_none_match, etag):  # only an output without a search has this one
                    return unchanged(Validators(tag, etag, original.last_modified), caching)
                tier, etag = Tier.FAST, tier_etag(etag, Tier.FAST)
                fast = self.settings
                caching = caching.provisional(
                    min(fast.optimise_max_age, fast.cache_max_age), fast.optimise_stale_while_revalidate
                )
            validators = Validators(tag, etag, original.last_modified)
            if etag_matches(if_none_match, etag):
                return unchanged(validators, caching)
            job = functools.partial(render, deadline, treatment, title, target)
            (queued, rendered), shared = await self.renders.run(etag, lambda: self.run_blocking(job, deadline=deadline))
            self.metrics.cache.labels("variant", "coalesced" if shared else "miss").inc()
            if tier is Tier.FAST and target is not None:
                if searchable(rendered) and self.optimiser is not None:  # the optimised tier, in the background
                    background = functools.partial(background_job, render, treatment, title, target)
                    portable = BackgroundRender(original.data, negotiated, treatment, title, target)
                    self.optimiser.submit(Optimisation(name, background, tag, portable))
                elif not searchable(rendered):  # an animation: nothing to optimise, one immutable answer
                    # with the ETag of no tier, so that its 304 (above) is immutable too
                    caching = self.decider.caching(treatment, stale=fetched.stale)
                    tier, validators = Tier.FIXED, Validators(tag, untiered, original.last_modified)
            work = Work.answered(fetched, inference, start, original, rendered, queued, shared)
            image = Image(rendered.body, rendered.format, rendered.mime)
            return Derivative(image, validators, caching, negotiated.vary, treatment, fetched.stale, work, tier)
        except ProxyError as raised:
            error = raised.about(tag)
            work = Work(
                fetched.outcome if fetched else None,
                fetched.seconds if fetched else None,
                inference,
                total=time.monotonic() - start,
            )
            if self.fallback is None or error.status not in FALLBACK_STATUSES:
                return Failure(error, work)
            return await self._fallback(self.fallback, negotiated, deadline, Failure(error, work), tag)

    async def missing(self, negotiated: Negotiated, error: ProxyError, tag: str, deadline: float) -> Fallback | Failure:
        """The answer for an original that is not there at all (an id its manifest lacks: 404
        ``error``): the fallback image rendered for ``negotiated`` when one is configured (cached as
        the error is: short, never ``immutable``), else the ``Failure``; both tagged ``tag`` (the
        id's surrogate key), so that adding the id later is one purge."""
        failure = Failure(error.about(tag), Work(None, None, None, total=0.0))
        if self.fallback is None or error.status not in FALLBACK_STATUSES:
            return failure
        return await self._fallback(self.fallback, negotiated, deadline, failure, tag)

    async def _fallback(
        self, fallback: bytes, negotiated: Negotiated, deadline: float, failure: Failure, tag: str
    ) -> Fallback | Failure:
        """The ``fallback`` image rendered for ``negotiated`` (size, fit, format) in place of
        ``failure``'s error, cached as the error is (never ``immutable``), with no ETag and the
        original's surrogate key ``tag``; ``failure`` itself when the fallback cannot be rendered
        (503, the deadline)."""
        try:
            _queued, rendered = await self.run_blocking(self.render, fallback, negotiated, deadline, deadline=deadline)
        except ProxyError:
            return failure
        image = Image(rendered.body, rendered.format, rendered.mime)
        error = failure.error
        status = self.settings.fallback_status or error.status
        return Fallback(image, error, status, Validators(tag), Caching.error(error), negotiated.vary, failure.work)

    async def examine(self, origin: Origin, key: str, deadline: float) -> Examined:
        """What is known about ``origin``'s original ``key`` (``derive``'s first steps: fetch,
        metadata, analysis when models are loaded, decision), for ``/info``. The decision is what
        moderation would decide (whether or not it is on); it is not counted, as no derivative is
        answered.

        Raises:
            ProxyError: the original's errors (404, 413, 415, 422, 502, 503, 504), with its surrogate key.
        """
        tag = surrogate_key(origin.name, key)
        try:
            fetched = await self.originals.fetch(origin, key)
            metadata = await self.originals.metadata(origin, key, fetched.original)
            analysis = await self.analysis(origin, key, fetched.original, deadline) if self.vision else None
        except ProxyError as error:
            raise error.about(tag) from None
        return Examined(fetched.original, metadata, analysis, self.decider.decide(metadata, analysis), tag)

    async def read(self, examined: Examined, fn: Callable[[bytes, pipeline.Limits], T], deadline: float) -> T:
        """``fn(the original's bytes, limits)``, blocking, through ``run_blocking``.

        Raises:
            ProxyError: ``fn``'s (413, 415, 422 as a render would answer), 503, 504, with the
                original's surrogate key.
        """
        try:
            _queued, result = await self.run_blocking(fn, examined.original.data, self.limits, deadline=deadline)
        except ProxyError as error:
            raise error.about(examined.surrogate_key) from None
        return result

    async def placeholders(
        self, origin: Origin, key: str, examined: Examined, deadline: float
    ) -> placeholder.Placeholders | None:
        """``examined``'s placeholders (dominant colour, ThumbHash and its PNG) as a viewer of its
        derivatives sees them, None when moderation blocks it (``Placeholding.compute``).

        Raises:
            ProxyError: 413, 415, 422 (the original), 503, 504, with the original's surrogate key.
        """
        return await self.placeholding.compute(origin, key, examined, deadline)

    async def analysis(self, origin: Origin, key: str, original: Original, deadline: float) -> Analysis:
        """The vision models' analysis of ``original``, cached, stored by ``edgeproxy ingest`` or
        computed inline (``Analyses.get``); only with models loaded (``vision``).

        Raises:
            ProxyError: 413/415/422 decoding the original, 503 when the render queue is full, 504
                when ``deadline`` passes.
        """
        assert self.analyses is not None
        return await self.analyses.get(origin, key, original, deadline)

    @property
    def tiered(self) -> bool:
        """Whether quality targets get an optimised tier: ``optimise`` is ``background`` (with a
        result storage to keep it in) or ``inline`` (stored when there is a result storage)."""
        optimise = self.settings.optimise
        return optimise == "inline" or (optimise == "background" and self.results is not None)

    async def _optimised(
        self,
        name: str,
        tag: str,
        job: Callable[[], pipeline.Rendered],
        deadline: float,
        *,
        now: bool = False,
    ) -> tuple[Image, pipeline.Rendered | None, float | None, bool] | None:
        """The optimised tier named ``name`` (its ETag) when it is ready: (image, the render when
        this request made it, seconds it queued, whether its render was shared), from the result
        storage, or made now by ``job`` under ``optimise = "inline"`` or when ``now`` (a prewarm
        that waits for it: ``X-Edgeproxy-Optimise: wait`` with the admin token): once for every
        concurrent caller, in the render pool, by ``deadline``, then stored with the original's
        surrogate key ``tag``. None when it is not ready (the caller answers the fast tier).

        Raises:
            ProxyError: an inline render's (413, 415, 422, 503, 504).
        """
        stored = await self.results.get(name) if self.results is not None else None
        if stored is not None:
            return Image(stored.body, FORMAT_OF[stored.mime], stored.mime), None, None, False
        if self.optimiser is not None and not now:
            return None
        (queued, rendered), shared = await self.renders.run(name, lambda: self.run_blocking(job, deadline=deadline))
        if not shared and self.results is not None:
            await self.results.put(name, rendered.body, mime=rendered.mime, surrogate_keys=tuple(tag.split()))
        return Image(rendered.body, rendered.format, rendered.mime), rendered, queued, shared

    def signs(self, origin: str) -> bool:
        """Whether derivatives of ``origin`` are signed with a C2PA manifest (``c2pa_origins``)."""
        return self.c2pa is not None and origin in self.settings.c2pa_origins

    def etag(self, negotiated: Negotiated, origin: str, key: str, original: Original, treatment: Treatment) -> str:
        """The derivative's ETag: strong, over every input that decides its bytes (canonical spec,
        what ``Accept`` allowed, origin, key, the original's ETag, the server's ``fingerprint``, the
        treatment, C2PA signing); weak (``W/``) when it is C2PA-signed (a signature differs on
        every render: its time, its ids; the same content, not the same bytes)."""
        signed_c2pa = self.signs(origin)
        etag = strong_etag(
            canonical(negotiated.spec),
            ",".join(sorted(negotiated.accepts)),
            origin,
            key,
            original.etag,
            self.fingerprint,
            f"{treatment.stamp};c2pa={int(signed_c2pa)}",
        )
        return "W/" + etag if signed_c2pa else etag
