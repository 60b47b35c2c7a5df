"""The app's own objects, built once at start-up from ``Settings``: origins, the origin HTTP client
(with the SSRF guard), the render pool, caches, metrics; and the two operations on them that every
request uses (``original`` and ``render``). No module-level mutable state: all of it lives here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import httpx
from pydantic import SecretStr

from edgeproxy import PIPELINE_VERSION, __version__
from edgeproxy.cache import OriginalCache, SingleFlight
from edgeproxy.errors import ProxyError, blocked
from edgeproxy.http.metrics import Metrics
from edgeproxy.http.negotiate import AutoSize, Negotiated
from edgeproxy.http.responses import HeaderPolicy, surrogate_key
from edgeproxy.origins import Origin, Original, S3Options, build_origins
from edgeproxy.origins.guard import GuardedTransport
from edgeproxy.purge import PurgeHook, run_hooks
from edgeproxy.render import pillow, pipeline, vips
from edgeproxy.render.encoding import EncodeOptions
from edgeproxy.render.geometry import Face
from edgeproxy.render.obscure import ALGORITHM as OBSCURE_ALGORITHM
from edgeproxy.render.obscure import Grid
from edgeproxy.render.pool import RenderPool
from edgeproxy.settings import Settings
from edgeproxy.url.grammar import compile_presets
from edgeproxy.url.media import input_mime
from edgeproxy.url.signing import PathSigner
from edgeproxy.url.spec import Redact, TransformSpec
from edgeproxy.vision.moderation import Action, Decision, Metadata, Policy, Source, Verdict, decide, parse_sidecar
from edgeproxy.vision.runtime import Model

if TYPE_CHECKING:
    from edgeproxy.provenance.context import C2paContexts
    from edgeproxy.provenance.sign import DerivativeSigner
    from edgeproxy.vision.analysis import Analysis, Vision

_log = logging.getLogger("edgeproxy")


@dataclass(frozen=True, slots=True)
class Treatment:
    r"""What vision and moderation do to one derivative (``Proxy.treatment``): the ``faces`` found
    (None: no detector ran, or it failed), how to ``redact`` them, whether moderation ``blur``\ s
    the whole derivative, whether a model failure ``degraded`` it, and the short ``max_age``
    (seconds) of an answer that may change soon, else None (immutable); from the original's
    analysis, each face's obscuring grid in the ``redact`` mode (``face_grids``; None when
    ``faces`` is) and the whole original's (``wash``), in the original's coordinates
    (``edgeproxy.render.obscure``)."""

    faces: tuple[Face, ...] | None = None
    redact: Redact | None = None
    blur: bool = False
    degraded: bool = False
    max_age: int | None = None
    face_grids: tuple[Grid, ...] | None = None
    wash: Grid | None = None

    @property
    def stamp(self) -> str:
        """The part of the ETag that says how the pixels were treated (with the obscuring algorithm's
        version when anything is obscured)."""
        stamp = f"redact={self.redact or ''};moderation-blur={int(self.blur)};degraded={int(self.degraded)}"
        return f"{stamp};obscure={OBSCURE_ALGORITHM}" if self.redact or self.blur else stamp


class StartupError(Exception):
    """Something ``Proxy.build`` loads cannot be used: a vision model (``vision.runtime.ModelError``)
    or the C2PA certificate and key (``provenance.ProvenanceError``); the message names the file."""


#: A local or HTTP original's metadata lives beside it, in ``KEY`` + this (README, "Moderation").
SIDECAR_SUFFIX = ".json"
#: Origin failures (the proxy's status for them) after which a cached original may be served stale:
#: 502 (connection failed, 5xx, refused credentials, missing bucket) and 504 (origin timeout).
STALE_IF_ERROR = frozenset({502, 504})


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def encoder_options(settings: Settings) -> EncodeOptions:
    """The encoder part of ``settings``."""
    return EncodeOptions(
        avif_effort=settings.avif_effort,
        webp_effort=settings.webp_effort,
        jpeg_progressive=settings.jpeg_progressive,
        png_compression=settings.png_compression,
        jxl_effort=settings.jxl_effort,
        threads=settings.vips_concurrency,
    )


@dataclass
class Proxy:
    """The app's own objects, built once at start-up from ``settings``."""

    settings: Settings
    signer: PathSigner
    origins: dict[str, Origin]
    client: httpx.AsyncClient
    pool: RenderPool
    limits: pipeline.Limits
    encode_options: EncodeOptions
    fingerprint: str  # every setting that changes output bytes, for ETags
    originals: OriginalCache
    metrics: Metrics
    headers: HeaderPolicy  # caching headers of every answer
    hooks_client: httpx.AsyncClient  # purge hooks: operator-configured CDN endpoints (no SSRF guard)
    purge_hooks: list[PurgeHook]
    presets: dict[str, dict[str, object]] = field(default_factory=dict)  # grammar.compile_presets(settings.presets)
    auto_size: AutoSize = AutoSize()  # w:auto and dpr:auto buckets
    fallback: bytes | None = None  # the fallback image's bytes, read once at start-up
    jxl_output: bool = False  # the [jxl] extra is installed: f:jxl (and auto_jxl) can be served
    fetches: SingleFlight = field(default_factory=SingleFlight)
    renders: SingleFlight = field(default_factory=SingleFlight)
    vision: Vision | None = None  # the loaded models (nsfw_model, face_model); None when neither is set
    policy: Policy | None = None  # settings.moderation_policy() (applied when settings.moderation; /info always)
    c2pa: DerivativeSigner | None = None  # signs the derivatives of c2pa_origins
    c2pa_contexts: C2paContexts | None = None  # c2pa's settings for reading and signing; None without c2pa-python
    analyses: SingleFlight = field(default_factory=SingleFlight)

    @classmethod
    def build(cls, settings: Settings) -> Proxy:
        """Everything, from ``settings``; models and certificates are loaded and checked here.

        Raises:
            StartupError: a vision model that is missing, malformed or cannot load, or C2PA
                certificate and key files that cannot sign (the message names the file).
        """
        vision = c2pa = contexts = None
        c2pa_id = ""
        with contextlib.suppress(ImportError):  # c2pa-python comes with the [vision] extra (for /info)
            from edgeproxy.provenance.context import C2paContexts

            contexts = C2paContexts()  # remote manifest fetch and OCSP off before any manifest is read
        if settings.nsfw_model or settings.face_model:
            from edgeproxy.vision.analysis import Vision
            from edgeproxy.vision.runtime import ModelError

            try:
                vision = Vision.load(settings)
            except ModelError as exc:
                raise StartupError(f"vision model {exc}") from None
        if settings.c2pa_origins:
            try:
                from edgeproxy.provenance.sign import DerivativeSigner, ProvenanceError
            except ImportError as exc:
                raise StartupError(f"c2pa_origins needs the [vision] extra (c2pa-python): {exc}") from None
            if contexts is None:  # not reached: the import above needs c2pa-python too
                raise StartupError("c2pa_origins needs the [vision] extra (c2pa-python)")
            try:
                c2pa = DerivativeSigner.from_files(
                    settings.c2pa_certificate,
                    settings.c2pa_private_key,
                    contexts=contexts,
                    alg=settings.c2pa_algorithm,
                    tsa_url=settings.c2pa_tsa_url,
                    claim_generator=f"edgeproxy/{__version__}",
                )
            except ProvenanceError as exc:
                raise StartupError(f"c2pa: {exc}") from None
            c2pa_id = hashlib.sha256(Path(settings.c2pa_certificate).read_bytes()).hexdigest()[:16]
        limits = httpx.Limits(
            max_connections=settings.origin_max_connections,
            max_keepalive_connections=min(16, settings.origin_max_connections),
        )
        client = httpx.AsyncClient(
            transport=GuardedTransport(
                allowed=settings.origin_allowed_networks, limits=limits, ca_file=settings.origin_ca_file
            ),
            timeout=httpx.Timeout(settings.origin_timeout, connect=settings.origin_connect_timeout),
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": f"edgeproxy/{__version__}"},
        )
        encode_options = encoder_options(settings)
        fingerprint = "|".join(
            str(v)
            for v in (
                PIPELINE_VERSION,
                vips.version(),
                pillow.versions(),
                encode_options,
                settings.quality_jpeg,
                settings.quality_webp,
                settings.quality_avif,
                settings.quality_jxl,
                settings.max_output_dimension,
                vision.fingerprint() if vision else "no-vision",
                c2pa_id,
            )
        )
        jxl_output = pillow.missing_extra("jxl") is None
        pool = RenderPool(settings.render_threads, settings.render_queue, settings.retry_after)
        metrics = Metrics(
            version=__version__,
            libvips=vips.version(),
            formats="avif,webp,jpeg,png,gif" + (",jxl" if jxl_output else ""),
            queue_depth=pool.queue_depth,
            utilization=pool.utilization,
            vips_memory=vips.tracked_memory,
            dropped_renders=lambda: pool.dropped,
            multiprocess_dir=settings.metrics_multiprocess_dir,
            origins=settings.origins,
        )
        return cls(
            settings=settings,
            jxl_output=jxl_output,
            metrics=metrics,
            signer=PathSigner(
                settings.verify_keys(), allow_unsigned=settings.allow_unsigned, size=settings.signature_size
            ),
            origins=build_origins(
                settings.origins,
                client=client,
                max_bytes=settings.max_source_bytes,
                max_redirects=settings.origin_max_redirects,
                timeout=settings.origin_timeout,
                s3=S3Options(
                    endpoint_url=settings.s3_endpoint_url,
                    region=settings.s3_region,
                    access_key_id=settings.s3_access_key_id,
                    secret_access_key=_secret(settings.s3_secret_access_key),
                    session_token=_secret(settings.s3_session_token),
                    virtual_hosted_style=settings.s3_virtual_hosted_style,
                    connect_timeout=settings.origin_connect_timeout,
                ),
            ),
            client=client,
            pool=pool,
            limits=pipeline.Limits(
                max_source_bytes=settings.max_source_bytes,
                max_source_pixels=settings.max_source_pixels,
                max_frames=settings.max_frames,
                max_output_dimension=settings.max_output_dimension,
                allowed_formats=frozenset(settings.allowed_input_formats),
                max_blur_cost=settings.max_blur_cost,
            ),
            encode_options=encode_options,
            fingerprint=fingerprint,
            originals=OriginalCache(settings.original_cache_bytes, settings.origin_negative_ttl),
            headers=HeaderPolicy(
                settings.cache_max_age, settings.error_max_age, settings.transient_error_max_age, settings.client_hints
            ),
            hooks_client=httpx.AsyncClient(
                timeout=settings.purge_timeout,
                trust_env=False,
                follow_redirects=False,
                headers={"User-Agent": f"edgeproxy/{__version__}"},
            ),
            purge_hooks=[PurgeHook.parse(hook) for hook in settings.purge_hooks],
            presets=compile_presets(settings.presets),
            auto_size=settings.auto_size(),
            fallback=Path(settings.fallback_image).read_bytes() if settings.fallback_image else None,
            vision=vision,
            policy=settings.moderation_policy(),
            c2pa=c2pa,
            c2pa_contexts=contexts,
        )

    async def aclose(self) -> None:
        for origin in self.origins.values():
            await origin.aclose()
        await self.client.aclose()
        await self.hooks_client.aclose()
        self.pool.close()
        self.metrics.close()

    async def original(self, origin: Origin, key: str) -> tuple[Original, str]:
        """The original, from the in-process cache or the origin (once for concurrent callers), and
        the cache outcome (the ``outcome`` label of ``edgeproxy_cache_lookups_total``): ``hit``
        (memory), ``miss`` (first fetch), ``refreshed`` (the origin changed it: new bytes, or for S3
        the same bytes with new metadata), ``revalidated`` (the origin found it unchanged),
        ``coalesced`` (shared an identical request's fetch), ``stale`` (its revalidation failed and
        it is served within ``origin_stale_if_error``); a remembered 404 counts ``negative_hit`` and
        is raised.

        Never stale while the origin answers: a cached local file is compared with ``stat`` on every
        request; a cached HTTP/S3 original older than ``original_cache_ttl`` is revalidated (HTTP: a
        conditional GET; S3: a HEAD that also reads the metadata); a purge drops it. A remote
        origin's 404 is remembered ``origin_negative_ttl``.

        Stale only while it does not (stale-if-error, as RFC 5861 defines it for HTTP caches): when
        the revalidation of a cached HTTP/S3 original fails with a 502 or 504 (connection error,
        timeout, 5xx, refused credentials) at most ``origin_stale_if_error`` seconds after the origin
        last vouched for it, the cached original is returned with outcome ``stale``, counted in
        ``edgeproxy_origin_stale_served_total{origin}`` and, once per failed revalidation, logged as
        a warning; the entry is not vouched for again, so the next request tries the origin again.

        Raises:
            ProxyError: the origin's error (404, 413, 502, 504).
        """
        cache_key = (origin.name, key)
        missing = self.originals.missing(cache_key)
        if missing is not None:
            self.metrics.cache.labels("original", "negative_hit").inc()
            raise missing
        entry = self.originals.get(cache_key)
        stale: Original | None = None  # a cached original to revalidate
        if entry is not None:
            verdict = origin.unchanged(key, entry.original)
            if verdict or (verdict is None and time.monotonic() - entry.checked < self.settings.original_cache_ttl):
                self.metrics.cache.labels("original", "hit").inc()
                return entry.original, "hit"
            stale = entry.original if verdict is None else None

        async def fetch() -> tuple[Original, str]:
            start = time.monotonic()
            try:
                original = await origin.fetch(key, stale)
            except ProxyError as error:
                if error.status == 404 and origin.remote:
                    self.originals.put_missing(cache_key, error)
                age = time.monotonic() - entry.checked if stale is not None else 0.0
                if stale is None or error.status not in STALE_IF_ERROR or age > self.settings.origin_stale_if_error:
                    raise
                _log.warning(
                    "origin %r failed to revalidate a cached original (%d %s): serving it stale, "
                    "vouched for %.0f s ago (origin_stale_if_error %g s)",
                    origin.name,
                    error.status,
                    error.message,
                    age,
                    self.settings.origin_stale_if_error,
                    extra={
                        "fields": {
                            "origin": origin.name,
                            "key": key[:256],
                            "surrogate_key": surrogate_key(origin.name, key),
                        }
                    },
                )
                return stale, "stale"
            self.metrics.origin_duration.labels(origin.name).observe(time.monotonic() - start)
            self.originals.put(cache_key, original)
            if original is stale:
                return original, "revalidated"
            if stale is not None and original.data is stale.data:  # new metadata, the same bytes (S3 HEAD)
                return original, "refreshed"
            self.metrics.origin_bytes.labels(origin.name).inc(len(original.data))
            return original, "miss" if entry is None else "refreshed"

        try:
            (original, outcome), shared = await self.fetches.run(cache_key, fetch)
        except ProxyError:
            self.metrics.cache.labels("original", "miss").inc()
            raise
        if outcome == "stale":  # every caller served stale is counted (and told: a short max-age)
            self.metrics.origin_stale.labels(origin.name).inc()
        elif shared:
            outcome = "coalesced"
        self.metrics.cache.labels("original", outcome).inc()
        return original, outcome

    async def purge(self, tag: str, origin: str | None = None, key: str | None = None) -> tuple[int, list[dict]]:
        """Purge the original whose surrogate key is ``tag``: first drop it (and a remembered 404,
        and its sidecar ``KEY.json``) from the proxy's caches, so the next request fetches it from
        the origin, then call every purge hook so each CDN drops its derivatives. Returns (cache
        entries dropped, one result per hook: ``purge.run_hooks``)."""
        dropped = self.originals.drop(
            lambda origin_key: (
                tag
                in (
                    surrogate_key(*origin_key),
                    surrogate_key(origin_key[0], origin_key[1].removesuffix(SIDECAR_SUFFIX)),
                )
            )
        )
        results = await run_hooks(
            self.hooks_client,
            self.purge_hooks,
            tag,
            origin=origin,
            key=key,
            apis=self.settings.cdn_apis(),
            retries=self.settings.purge_retries,
        )
        return dropped, results

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
            sidecar, _outcome = await self.original(origin, key + SIDECAR_SUFFIX)
        except ProxyError as error:
            if error.status == 404:
                return Metadata()
            return Metadata(source=Source.SIDECAR, error=f"sidecar: {error.message}")
        return parse_sidecar(
            sidecar.data,
            self.settings.sidecar_max_bytes,
            max_depth=self.settings.sidecar_max_depth,
            name=f"{origin.name}/{key}{SIDECAR_SUFFIX}",
        )

    async def analysis(self, origin: Origin, key: str, original: Original, deadline: float) -> Analysis:
        """The vision models' analysis of ``original`` (``vision.analysis``): from the per-original
        cache (keyed by origin, key and the origin's ETag), else computed once in the render pool
        for every concurrent caller.

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
        job = functools.partial(vision.analyse, cache_key, original.data, self.limits)
        (_queued, analysis), shared = await self.analyses.run(cache_key, lambda: self.pool.run(job, deadline=deadline))
        self.metrics.cache.labels("analysis", "coalesced" if shared else "miss").inc()
        if not shared:
            for stage, seconds in analysis.timings.items():
                self.metrics.vision.labels(stage).observe(seconds)
            for failure in analysis.failures:
                self.metrics.vision_failures.labels(failure.model).inc()
        return analysis

    async def treatment(
        self,
        origin: Origin,
        key: str,
        original: Original,
        spec: TransformSpec,
        deadline: float,
        stages: dict[str, float],
    ) -> Treatment:
        """What vision and moderation do to a derivative of ``original`` asked for by ``spec``.

        The original's analysis (faces, nsfw score; cached per original) runs only when the
        derivative needs it: ``g:face``, redaction (the URL's or the origin's ``redact_origins``),
        or moderation without a human verdict. Its time goes into ``stages["inference"]``. A model
        that failed degrades the answer (``smart`` gravity, the whole image redacted, a pending
        verdict) and caches it ``error_max_age`` at most.

        Raises:
            ProxyError: 451 when moderation blocks (cached ``moderation_max_age``, with the
                original's surrogate key); the analysis' errors (413/415/422 decoding, 503, 504).
        """
        settings = self.settings
        redact = spec.redact or self.forced_redaction(origin.name)
        want_faces = redact is not None or spec.gravity.kind == "face"
        metadata = await self.metadata(origin, key, original) if settings.moderation else None
        want_nsfw = (
            metadata is not None
            and metadata.verdict is None
            and metadata.error is None
            and self.vision is not None
            and self.vision.nsfw is not None
        )
        analysis = None
        if want_faces or want_nsfw:
            start = time.monotonic()
            analysis = await self.analysis(origin, key, original, deadline)
            stages["inference"] = time.monotonic() - start  # a cache hit: microseconds
        max_age: int | None = None
        blur = False
        if metadata is not None:
            tag = surrogate_key(origin.name, key)
            decision = self.moderate(metadata, analysis if want_nsfw else None, tag)
            if decision.action is Action.BLOCK:
                raise blocked(
                    "withheld by moderation", settings.moderation_max_age, {"Surrogate-Key": tag, "Cache-Tag": tag}
                )
            blur = decision.action is Action.BLUR
            if decision.short_lived:
                max_age = settings.moderation_max_age
        faces = analysis.faces if analysis is not None else None
        degraded = want_faces and faces is None
        if degraded:
            max_age = min(max_age if max_age is not None else settings.error_max_age, settings.error_max_age)
        face_grids = analysis.face_grids(redact.value) if analysis is not None and redact is not None else None
        wash = analysis.wash if analysis is not None else None
        return Treatment(faces, redact, blur, degraded, max_age, face_grids, wash)

    def forced_redaction(self, origin: str) -> Redact | None:
        """How ``redact_origins`` says every image of ``origin`` is redacted, or None."""
        mode = self.settings.redact_origins.get(origin)
        return Redact(mode) if mode else None

    def decide(self, metadata: Metadata, analysis: Analysis | None) -> Decision:
        """The moderation decision for an original with ``metadata`` and ``analysis`` (its nsfw
        score, or the classifier's failure), under the configured policy (``moderation.decide``)."""
        score = analysis.nsfw if analysis is not None else None
        failed = analysis is not None and analysis.failed(Model.NSFW)
        return decide(metadata, score, self.policy, classifier_failed=failed)

    def moderate(self, metadata: Metadata, analysis: Analysis | None, tag: str) -> Decision:
        """``decide``, counted in ``edgeproxy_moderation_total`` and logged with the original's
        surrogate key ``tag``, so that a verdict that changes later can be purged: what a
        derivative's answer does."""
        decision = self.decide(metadata, analysis)
        self.metrics.moderation.labels(decision.verdict, decision.source).inc()
        if decision.verdict is not Verdict.ALLOW or metadata.error:
            _log.info(
                "moderation",
                extra={
                    "fields": {
                        "surrogate_key": tag,
                        "verdict": decision.verdict,
                        "source": decision.source,
                        "score": decision.score,
                        "action": decision.action.value,
                        "error": metadata.error,
                    }
                },
            )
        return decision

    def render(
        self,
        data: bytes,
        negotiated: Negotiated,
        deadline: float,
        faces: tuple[Face, ...] | None = None,
        redact: Redact | None = None,
        moderation_blur: bool = False,
        provenance_title: str | None = None,
        face_grids: tuple[Grid, ...] | None = None,
        wash: Grid | None = None,
    ) -> pipeline.Rendered:
        """Blocking: run the pipeline (in a render thread). ``faces``, ``redact``, ``face_grids``,
        ``moderation_blur`` and ``wash`` come from the original's analysis and moderation
        (``Treatment``, ``pipeline.Context``); with ``provenance_title`` (the original's key) the
        derivative is signed with a C2PA manifest (``sign``)."""
        ctx = pipeline.Context(
            data=data,
            negotiated=negotiated,
            limits=self.limits,
            encode_options=self.encode_options,
            default_quality=self.settings.default_quality,
            deadline=deadline,
            faces=faces,
            redact=redact,
            face_grids=face_grids,
            moderation_blur=moderation_blur,
            wash=wash,
        )
        rendered = pipeline.run(ctx)
        return self.sign(rendered, data, provenance_title, ctx) if provenance_title is not None else rendered

    def sign(
        self, rendered: pipeline.Rendered, original: bytes, title: str, ctx: pipeline.Context
    ) -> pipeline.Rendered:
        """``rendered`` with a C2PA manifest (``provenance.DerivativeSigner``): the original as its
        parent ingredient, titled ``title``, and the actions done (``c2pa.resized``,
        ``c2pa.cropped``, ``c2pa.filtered``, ``c2pa.transcoded``) with the output's width, height
        and format. Blocking; its time is the ``c2pa`` step of ``rendered.timings``."""
        from edgeproxy.provenance.sign import derivative_actions

        start = time.monotonic()
        source, plan, spec = rendered.source, rendered.plan, ctx.spec
        actions = derivative_actions(
            resized=plan.resize != (source.width, source.height),
            cropped=plan.source_crop is not None or plan.final_crop is not None,
            transcoded=True,
            filtered=bool(spec.blur or spec.sharpen or ctx.redact or ctx.moderation_blur),
            parameters={"width": rendered.width, "height": rendered.height, "format": rendered.format.value},
        )
        body = self.c2pa.sign(
            rendered.body,
            rendered.mime,
            original=original,
            original_mime=input_mime(source.format),
            original_title=title,
            actions=actions,
        )
        timings = {**rendered.timings, "c2pa": time.monotonic() - start}
        return dataclasses.replace(rendered, body=body, timings=timings)
