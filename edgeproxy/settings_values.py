"""The settings turned into the domain's values, for ``edgeproxy.compose`` and the other commands
that build from settings (``edgeproxy ingest``, the review page, benchmarks): encoder options,
``AutoSize``, the moderation ``Policy``, ``CdnApis``, source ``Limits`` and ``S3Options``. Pure:
nothing here loads a file or opens a connection."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from edgeproxy import __version__
from edgeproxy.http.negotiate import AutoSize
from edgeproxy.origins import Origin, S3Options, build_origins
from edgeproxy.purge import CdnApis, Hooks, PurgeHook
from edgeproxy.render import pipeline
from edgeproxy.render.encoding import EncodeOptions
from edgeproxy.settings import Settings
from edgeproxy.vision.moderation import Action, Policy


def encoder_options(settings: Settings) -> EncodeOptions:
    """The encoder part of ``settings``."""
    return EncodeOptions(
        avif_effort=settings.avif_effort,
        webp_effort=settings.webp_effort,
        jpeg_progressive=settings.jpeg_progressive,
        png_compression=settings.png_compression,
        jxl_effort=settings.jxl_effort,
        threads=settings.vips_concurrency,
        max_bytes_floor=settings.max_bytes_min_quality,
    )


def auto_size(settings: Settings) -> AutoSize:
    """The ``auto_*`` settings for ``negotiate`` (``w:auto``, ``dpr:auto``)."""
    return AutoSize(tuple(settings.auto_width_buckets), settings.auto_width_fallback, tuple(settings.auto_dpr_buckets))


def moderation_policy(settings: Settings) -> Policy:
    """The ``moderation_*`` settings for ``moderation.decide``."""
    return Policy(
        settings.moderation_block_threshold, settings.moderation_blur_threshold, Action(settings.moderation_pending)
    )


def cdn_apis(settings: Settings) -> CdnApis:
    """Where and as whom purge hooks call the CDN APIs."""
    return CdnApis(
        fastly_url=settings.fastly_api_url,
        fastly_token=_secret(settings.fastly_api_token),
        cloudflare_url=settings.cloudflare_api_url,
        cloudflare_token=_secret(settings.cloudflare_api_token),
    )


def source_limits(settings: Settings) -> pipeline.Limits:
    """The source limits every render and analysis checks."""
    return pipeline.Limits(
        max_source_bytes=settings.max_source_bytes,
        max_source_pixels=settings.max_source_pixels,
        max_frames=settings.max_frames,
        max_output_dimension=settings.max_output_dimension,
        allowed_formats=frozenset(settings.allowed_input_formats),
        max_blur_cost=settings.max_blur_cost,
        trim_max_side=settings.trim_max_side,
    )


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def s3_options(settings: Settings) -> S3Options:
    """How S3 is reached (origins and the result storage), from ``settings``."""
    return S3Options(
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=_secret(settings.s3_secret_access_key),
        session_token=_secret(settings.s3_session_token),
        virtual_hosted_style=settings.s3_virtual_hosted_style,
        connect_timeout=settings.origin_connect_timeout,
    )


def origins(settings: Settings, client: httpx.AsyncClient, s3: S3Options) -> dict[str, Origin]:
    """The configured origins by name (``origins.build_origins``), HTTP ones fetching through
    ``client``, S3 ones reached with ``s3``, each bounded by the settings' bytes, redirects and
    timeout."""
    return build_origins(
        settings.origins,
        client=client,
        max_bytes=settings.max_source_bytes,
        max_redirects=settings.origin_max_redirects,
        timeout=settings.origin_timeout,
        s3=s3,
    )


def purge_hooks(settings: Settings) -> Hooks:
    """The configured purge hooks with a client of their own (``purge_timeout`` seconds, no
    redirects followed: a hook's answer is its own, never another host's)."""
    return Hooks(
        client=httpx.AsyncClient(
            timeout=settings.purge_timeout,
            trust_env=False,
            follow_redirects=False,
            headers={"User-Agent": f"edgeproxy/{__version__}"},
        ),
        hooks=tuple(PurgeHook.parse(hook) for hook in settings.purge_hooks),
        apis=cdn_apis(settings),
        retries=settings.purge_retries,
    )


def analysis_record_key(settings: Settings) -> bytes:
    """The key analysis objects are written and read with (``ingest.record.record_key`` of the
    first ``signing_key``): the ingest workers and the proxies of one deployment share it."""
    from edgeproxy.ingest.record import record_key

    return record_key(settings.signing_key.get_secret_value() if settings.signing_key else None)
