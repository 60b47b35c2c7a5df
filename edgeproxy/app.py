"""The ASGI application: ``create_app(settings)``.

One request flows one way::

    raw path -> split signature -> verify (403) -> parse -> TransformSpec (400)
      -> negotiate(Accept, client hints) -> concrete spec + Vary
      -> origin.fetch (cache, single-flight) -> ETag -> 304?
      -> render pool: pipeline.run (single-flight by ETag) -> response

All state (origins, HTTP client, render pool, caches) is built in the lifespan and lives on
``app.state.proxy``; there is no module-level mutable state.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edgeproxy import PIPELINE_VERSION, __version__, pipeline, vips
from edgeproxy.cache import OriginalCache, SingleFlight
from edgeproxy.errors import ProxyError, bad_request, forbidden, not_found
from edgeproxy.geometry import check_box
from edgeproxy.negotiate import ACCEPT_CH, Negotiated, negotiate
from edgeproxy.origins import Origin, Original, build_origins
from edgeproxy.responses import error_response, etag_matches, server_timing, strong_etag, surrogate_key
from edgeproxy.settings import Settings
from edgeproxy.signing import PathSigner
from edgeproxy.spec import canonical, parse_path
from edgeproxy.workers import RenderPool


@dataclass
class Proxy:
    """The app's own objects, built once at start-up from ``settings``."""

    settings: Settings
    signer: PathSigner
    origins: dict[str, Origin]
    client: httpx.AsyncClient
    pool: RenderPool
    limits: pipeline.Limits
    encode_options: vips.EncodeOptions
    fingerprint: str  # every setting that changes output bytes, for ETags
    originals: OriginalCache
    fetches: SingleFlight = field(default_factory=SingleFlight)
    renders: SingleFlight = field(default_factory=SingleFlight)

    @classmethod
    def build(cls, settings: Settings) -> Proxy:
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.origin_timeout, connect=settings.origin_connect_timeout),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
            follow_redirects=False,
            headers={"User-Agent": f"edgeproxy/{__version__}"},
        )
        encode_options = vips.EncodeOptions(
            avif_effort=settings.avif_effort,
            webp_effort=settings.webp_effort,
            jpeg_progressive=settings.jpeg_progressive,
            png_compression=settings.png_compression,
        )
        fingerprint = "|".join(
            str(v) for v in (PIPELINE_VERSION, vips.version(), encode_options, settings.quality_jpeg,
                             settings.quality_webp, settings.quality_avif, settings.max_output_dimension)
        )
        return cls(
            settings=settings,
            signer=PathSigner(settings.verify_keys(), allow_unsigned=settings.allow_unsigned),
            origins=build_origins(
                settings.origins, client=client, max_bytes=settings.max_source_bytes,
                max_redirects=settings.origin_max_redirects, timeout=settings.origin_timeout,
            ),
            client=client,
            pool=RenderPool(settings.render_threads, settings.render_queue, settings.retry_after),
            limits=pipeline.Limits(
                max_source_pixels=settings.max_source_pixels,
                max_frames=settings.max_frames,
                max_output_dimension=settings.max_output_dimension,
                allowed_formats=frozenset(settings.allowed_input_formats),
            ),
            encode_options=encode_options,
            fingerprint=fingerprint,
            originals=OriginalCache(settings.original_cache_bytes, settings.original_cache_ttl),
        )

    async def aclose(self) -> None:
        for origin in self.origins.values():
            await origin.aclose()
        await self.client.aclose()
        self.pool.close()

    async def original(self, origin: Origin, key: str) -> Original:
        """The original, from the in-process cache or the origin (once for concurrent callers)."""
        cache_key = (origin.name, key)
        cached = self.originals.get(cache_key)
        if cached is not None:
            return cached

        async def fetch() -> Original:
            original = await origin.fetch(key)
            self.originals.put(cache_key, original)
            return original

        original, _shared = await self.fetches.run(cache_key, fetch)
        return original

    def render(self, data: bytes, negotiated: Negotiated, deadline: float) -> pipeline.Rendered:
        """Blocking: run the pipeline (in a render thread)."""
        ctx = pipeline.Context(
            data=data,
            negotiated=negotiated,
            limits=self.limits,
            encode_options=self.encode_options,
            default_quality=self.settings.default_quality,
            deadline=deadline,
        )
        return pipeline.run(ctx)


def _split_signature(request: Request) -> tuple[str, str]:
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    try:
        path = raw.decode("ascii")
    except UnicodeDecodeError:
        raise bad_request("URL path must be ASCII (percent-encode other bytes)") from None
    signature, sep, rest = path[1:].partition("/")
    if not sep or not rest:
        raise not_found("no such route") if not signature else bad_request("missing options, origin and key")
    return signature, "/" + rest


async def _transform(proxy: Proxy, request: Request) -> Response:
    start = time.monotonic()
    settings = proxy.settings
    deadline = start + settings.request_timeout
    signature, path = _split_signature(request)
    proxy.signer.verify(signature, path)
    spec, origin_name, key = parse_path(path)
    if spec.expires is not None and spec.expires < time.time():
        raise forbidden("URL expired")
    origin = proxy.origins.get(origin_name)
    if origin is None:
        raise not_found(f"unknown origin {origin_name!r}")
    check_box(spec, settings.max_output_dimension)
    negotiated = negotiate(
        spec, request.headers, client_hints=settings.client_hints,
        save_data_quality=settings.save_data_quality, max_dimension=settings.max_output_dimension,
    )

    original = await proxy.original(origin, key)
    fetched = time.monotonic()
    etag = strong_etag(
        canonical(negotiated.spec), ",".join(sorted(negotiated.accepts)), origin_name, key,
        original.etag, proxy.fingerprint,
    )
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={settings.cache_max_age}, immutable",
        "Surrogate-Key": surrogate_key(origin_name, key),
        "Cache-Tag": surrogate_key(origin_name, key),
    }
    if negotiated.vary:
        headers["Vary"] = ", ".join(negotiated.vary)
    if settings.client_hints:
        headers["Accept-CH"] = ACCEPT_CH
    if original.last_modified:
        headers["Last-Modified"] = original.last_modified
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)

    rendered, _shared = await proxy.renders.run(
        etag,
        lambda: proxy.pool.run(proxy.render, original.data, negotiated, deadline,
                               timeout=max(0.001, deadline - time.monotonic())),
    )
    done = time.monotonic()
    render_time = sum(rendered.timings.values())
    headers["Server-Timing"] = server_timing([
        ("fetch", fetched - start),
        ("queue", max(0.0, done - fetched - render_time)),
        ("render", render_time),
        ("total", done - start),
    ])
    return Response(rendered.body, media_type=rendered.mime, headers=headers)


async def transform(request: Request) -> Response:
    """``GET|HEAD /{signature}/{options...}/{origin}/{key...}``: a derivative or an error."""
    proxy: Proxy = request.app.state.proxy
    try:
        return await _transform(proxy, request)
    except ProxyError as error:
        headers = {"Accept-CH": ACCEPT_CH} if proxy.settings.client_hints else None
        return error_response(
            error, error_max_age=proxy.settings.error_max_age,
            transient_error_max_age=proxy.settings.transient_error_max_age, extra_headers=headers,
        )


async def healthz(request: Request) -> Response:
    """``GET /healthz``: the process is up."""
    return JSONResponse({"status": "ok", "version": __version__},
                        headers={"Cache-Control": "no-store"})


async def readyz(request: Request) -> Response:
    """``GET /readyz``: libvips loads and every origin is reachable; 503 otherwise."""
    proxy: Proxy = request.app.state.proxy
    origins = {name: await origin.ready() for name, origin in proxy.origins.items()}
    ok = all(origins.values())
    body = {"status": "ok" if ok else "unavailable", "libvips": vips.version(), "origins": origins}
    return JSONResponse(body, status_code=200 if ok else 503, headers={"Cache-Control": "no-store"})


def create_app(settings: Settings) -> Starlette:
    """The ASGI app for ``settings``; state is built when the lifespan starts."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        vips.configure(settings.vips_concurrency)
        proxy = Proxy.build(settings)
        app.state.proxy = proxy
        try:
            yield
        finally:
            await proxy.aclose()

    routes = [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
        Route("/{path:path}", transform, methods=["GET", "HEAD"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def create_app_from_env() -> Starlette:
    """Factory for uvicorn worker processes started by ``edgeproxy serve --workers N``."""
    from edgeproxy.settings import settings_from_serialized

    return create_app(settings_from_serialized())
