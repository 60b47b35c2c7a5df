"""The composition root: every object the app uses, built once at start-up from ``Settings``
(``compose``), and closed at shutdown (``Components.aclose``). No module-level mutable state: all of
it lives on the ``Components`` (``app.state.components``).

What is built here: the origins and their HTTP client (with the SSRF guard), the render pool, the
original cache, the vision models, the C2PA signer, the metrics, the header policy, the purge hooks,
and the request service (``service.derive.Service``) over them. ``settings.py`` only describes and
checks the settings; ``settings_values`` turns them into the domain's values (a moderation
``Policy``, ``AutoSize``, ``CdnApis``, encoder options, source limits, ``S3Options``), importable
from here too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from edgeproxy import PIPELINE_VERSION, __version__
from edgeproxy.cache import OriginalCache
from edgeproxy.http.metrics import Metrics
from edgeproxy.http.negotiate import AutoSize
from edgeproxy.http.responses import HeaderPolicy
from edgeproxy.origins import Origin, S3Options
from edgeproxy.origins.guard import GuardedTransport
from edgeproxy.origins.manifest import manifest_source
from edgeproxy.purge import Hooks
from edgeproxy.render import pillow, vips
from edgeproxy.render.encoding import EncodeOptions
from edgeproxy.render.pool import RenderPool
from edgeproxy.results.breaker import GuardedStore
from edgeproxy.results.store import ResultStore, from_location
from edgeproxy.service.decision import Decider
from edgeproxy.service.derive import Service
from edgeproxy.service.manifests import Manifest, Manifests
from edgeproxy.service.optimise import Optimiser
from edgeproxy.service.optimise_process import Workers
from edgeproxy.service.originals import Originals
from edgeproxy.service.purging import Purger
from edgeproxy.settings import Settings
from edgeproxy.settings_values import analysis_record_key, purge_hooks
from edgeproxy.settings_values import auto_size as auto_size
from edgeproxy.settings_values import cdn_apis as cdn_apis
from edgeproxy.settings_values import encoder_options as encoder_options
from edgeproxy.settings_values import moderation_policy as moderation_policy
from edgeproxy.settings_values import origins as origins_of
from edgeproxy.settings_values import s3_options as s3_options
from edgeproxy.settings_values import source_limits as source_limits
from edgeproxy.url.grammar import compile_presets
from edgeproxy.url.signing import PathSigner

if TYPE_CHECKING:
    from edgeproxy.provenance.context import C2paContexts
    from edgeproxy.provenance.sign import DerivativeSigner
    from edgeproxy.vision.analysis import Vision


class StartupError(Exception):
    """Something ``compose`` loads cannot be used: a vision model (``vision.runtime.ModelError``)
    or the C2PA certificate and key (``provenance.sign.ProvenanceError``); the message names the file."""


@dataclass(frozen=True, slots=True)
class Components:
    """The app's own objects, built once at start-up from ``settings`` (``compose``).

    The HTTP edge reads the request with ``signer``, ``presets``, ``origins``, ``auto_size`` and
    ``jxl_output`` (the [jxl] extra is installed: ``f:jxl`` and ``auto_jxl`` can be served), asks
    ``service``, writes answers with ``headers``, counts in ``metrics`` and purges through
    ``purger`` (the caches, the result storage, then the CDNs' ``hooks``); ``client`` is the
    origins' HTTP client; ``manifests`` the manifest origins (their reload task runs between
    ``manifests.start()`` and ``aclose``).
    """

    settings: Settings
    signer: PathSigner
    origins: dict[str, Origin]
    presets: dict[str, dict[str, object]]
    auto_size: AutoSize
    jxl_output: bool
    headers: HeaderPolicy
    metrics: Metrics
    service: Service
    hooks: Hooks
    purger: Purger
    client: httpx.AsyncClient
    results: ResultStore | None  # the result storage (None: result_storage = "off")
    manifests: Manifests
    c2pa_contexts: C2paContexts | None = None  # c2pa's settings for reading manifests (/info); None without c2pa-python

    async def aclose(self) -> None:
        """Close the manifests' reloads, the origins, the HTTP clients, the render pool and the
        metrics (at shutdown)."""
        await self.manifests.aclose()
        for origin in self.origins.values():
            await origin.aclose()
        await self.client.aclose()
        await self.hooks.aclose()
        if self.service.optimiser is not None:
            await self.service.optimiser.aclose()
        if self.results is not None:
            await self.results.aclose()
        self.service.pool.close()
        self.metrics.close()


def _load_vision(settings: Settings) -> Vision | None:
    """The models ``nsfw_model`` and ``face_model`` name, loaded; None when neither is set."""
    if not (settings.nsfw_model or settings.face_model):
        return None
    from edgeproxy.vision.analysis import Vision
    from edgeproxy.vision.runtime import ModelError

    try:
        return Vision.load(settings)
    except ModelError as exc:
        raise StartupError(f"vision model {exc}") from None


def _c2pa_contexts() -> C2paContexts | None:
    """c2pa-python's settings for reading and signing, remote manifest fetch and OCSP off
    (``provenance.context.C2paContexts``), when c2pa-python is installed (the [vision] extra;
    ``/info`` reads manifests); None without it."""
    try:
        from edgeproxy.provenance.context import C2paContexts
    except ImportError:
        return None
    return C2paContexts()


def _load_c2pa(settings: Settings, contexts: C2paContexts | None) -> tuple[DerivativeSigner | None, str]:
    """The C2PA signer of ``c2pa_origins`` and its certificate's id (for ETags); (None, "") without."""
    if not settings.c2pa_origins:
        return None, ""
    try:
        from edgeproxy.provenance.sign import DerivativeSigner, ProvenanceError
    except ImportError as exc:
        raise StartupError(f"c2pa_origins needs the [vision] extra (c2pa-python): {exc}") from None
    if contexts is None:  # not reached: the import above needs c2pa-python too
        raise StartupError("c2pa_origins needs the [vision] extra (c2pa-python)")
    assert settings.c2pa_certificate is not None and settings.c2pa_private_key is not None  # Settings checks it
    try:
        signer = DerivativeSigner.from_files(
            settings.c2pa_certificate,
            settings.c2pa_private_key,
            contexts=contexts,
            alg=settings.c2pa_algorithm,
            tsa_url=settings.c2pa_tsa_url,
            claim_generator=f"edgeproxy/{__version__}",
        )
    except ProvenanceError as exc:
        raise StartupError(f"c2pa: {exc}") from None
    return signer, hashlib.sha256(Path(settings.c2pa_certificate).read_bytes()).hexdigest()[:16]


def derivative_signer(settings: Settings) -> DerivativeSigner | None:
    """The C2PA signer of ``c2pa_origins`` (None without), as ``compose`` loads it: for another
    process that renders what this one would (``service.optimise_process``).

    Raises:
        StartupError: as ``compose``.
    """
    return _load_c2pa(settings, _c2pa_contexts())[0]


def result_storage(settings: Settings, s3: S3Options) -> ResultStore | None:
    """The result storage ``settings.result_storage`` names (None for ``off``).

    Raises:
        StartupError: a folder that cannot be created or written, or one that another user owns or
            that others may write (whoever can write it decides what is served, immutable, to every
            client: ``SECURITY.md``).
    """
    location = settings.result_storage
    if location == "off":
        return None
    try:
        store = from_location(
            location, max_bytes=settings.result_storage_max_bytes, s3=s3, timeout=settings.result_storage_timeout
        )
    except OSError as exc:
        raise StartupError(
            f"result_storage {location!r}: {exc.strerror or exc} "
            "(set result_storage to a writable folder, s3://bucket/prefix or off)"
        ) from None
    if not location.startswith("s3://"):
        folder = Path(location).stat()
        if folder.st_uid != os.getuid() or folder.st_mode & 0o022:
            raise StartupError(
                f"result_storage {location!r} is owned by another user or writable by others: "
                "whoever writes it decides what is served; use a folder of this user's only"
            )
    return GuardedStore(
        store,
        lookup_timeout=settings.result_storage_lookup_timeout,
        failures=settings.result_storage_breaker_failures,
        recovery=settings.result_storage_breaker_recovery,
    )


def optimiser(settings: Settings, results: ResultStore | None, metrics: Metrics, pool: RenderPool) -> Optimiser | None:
    """The background tier of ``optimise = "background"`` (None otherwise, or without a result
    storage: the optimised derivatives would live nowhere), giving way to ``pool``'s renders, in
    worker processes under ``optimise_isolation = "process"`` (``service.optimise_process``)."""
    if settings.optimise != "background" or results is None:
        return None
    return Optimiser(
        results,
        metrics,
        queue=settings.optimise_queue,
        threads=settings.optimise_threads,
        timeout=settings.optimise_timeout,
        busy=pool.busy,
        workers=Workers(settings, settings.optimise_threads) if settings.optimise_isolation == "process" else None,
    )


def fingerprint(settings: Settings, encode_options: EncodeOptions, vision: Vision | None, c2pa_id: str) -> str:
    """Every setting and library version that changes output bytes: part of every ETag."""
    return "|".join(
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
            settings.quality_target,
            settings.quality_policy,
            settings.optimise_avif_effort,
            settings.optimise_max_pixels,
            settings.optimise_webp_effort,
            settings.max_output_dimension,
            vision.fingerprint() if vision else "no-vision",
            c2pa_id,
        )
    )


def compose(settings: Settings) -> Components:
    """Everything, from ``settings``; models and certificates are loaded and checked here.

    Raises:
        StartupError: a vision model that is missing, malformed or cannot load, or C2PA
            certificate and key files that cannot sign (the message names the file).
    """
    contexts = _c2pa_contexts()
    vision = _load_vision(settings)
    c2pa, c2pa_id = _load_c2pa(settings, contexts)
    client = httpx.AsyncClient(
        transport=GuardedTransport(
            allowed=settings.origin_allowed_networks,
            limits=httpx.Limits(
                max_connections=settings.origin_max_connections,
                max_keepalive_connections=min(16, settings.origin_max_connections),
            ),
            ca_file=settings.origin_ca_file,
        ),
        timeout=httpx.Timeout(settings.origin_timeout, connect=settings.origin_connect_timeout),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": f"edgeproxy/{__version__}"},
    )
    encode_options = encoder_options(settings)
    jxl_output = pillow.missing_extra("jxl") is None
    pool = RenderPool(settings.render_threads, settings.render_queue, settings.retry_after)
    s3 = s3_options(settings)
    results = result_storage(settings, s3)
    metrics = Metrics(
        version=__version__,
        libvips=vips.version(),
        formats="avif,webp,jpeg,png,gif" + (",jxl" if jxl_output else ""),
        queue_depth=pool.queue_depth,
        utilization=pool.utilization,
        vips_memory=vips.tracked_memory,
        dropped_renders=lambda: pool.dropped,
        result_storage=None
        if results is None
        else lambda: {k: v for k, v in dataclasses.asdict(results.stats).items() if k != "bytes"},
        multiprocess_dir=settings.metrics_multiprocess_dir,
        origins=settings.origins,
        manifests=settings.manifest_origins,
    )
    originals = Originals(
        OriginalCache(settings.original_cache_bytes, settings.origin_negative_ttl),
        metrics,
        ttl=settings.original_cache_ttl,
        stale_if_error=settings.origin_stale_if_error,
        sidecar_max_bytes=settings.sidecar_max_bytes,
        sidecar_max_depth=settings.sidecar_max_depth,
        record_key=analysis_record_key(settings),
    )
    service = Service(
        settings,
        originals=originals,
        decider=Decider(
            moderation_policy(settings),
            metrics,
            moderation_max_age=settings.moderation_max_age,
            error_max_age=settings.error_max_age,
            redact_origins=settings.redact_origins,
        ),
        pool=pool,
        metrics=metrics,
        limits=source_limits(settings),
        encode_options=encode_options,
        fingerprint=fingerprint(settings, encode_options, vision, c2pa_id),
        vision=vision,
        c2pa=c2pa,
        fallback=Path(settings.fallback_image).read_bytes() if settings.fallback_image else None,
        optimiser=optimiser(settings, results, metrics, pool),
        results=results,
    )
    hooks = purge_hooks(settings)
    origins = origins_of(settings, client, s3)
    purger = Purger(originals, results, hooks)
    manifests = Manifests(
        {
            name: Manifest(
                name,
                manifest_source(
                    location, s3=s3, max_bytes=settings.manifest_max_bytes, timeout=settings.origin_timeout
                ),
                origins=frozenset(settings.origins),
                max_bytes=settings.manifest_max_bytes,
            )
            for name, location in settings.manifest_origins.items()
        },
        ttl=settings.manifest_ttl,
        metrics=metrics,
        purger=purger,
    )
    return Components(
        settings=settings,
        signer=PathSigner(settings.verify_keys(), allow_unsigned=settings.allow_unsigned, size=settings.signature_size),
        origins=origins,
        presets=compile_presets(settings.presets),
        auto_size=auto_size(settings),
        jxl_output=jxl_output,
        headers=HeaderPolicy(
            settings.cache_max_age, settings.error_max_age, settings.transient_error_max_age, settings.client_hints
        ),
        metrics=metrics,
        service=service,
        hooks=hooks,
        purger=purger,
        client=client,
        results=results,
        manifests=manifests,
        c2pa_contexts=contexts,
    )
