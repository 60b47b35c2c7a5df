"""The ASGI application: ``create_app(settings)``.

Every route is an ``edge.Endpoint``: one wrapper checks its method, turns its errors into responses,
echoes ``X-Request-ID``, counts it and logs it (``edgeproxy.http.edge``). The routes speak HTTP
only: parse the request, call the service (``edgeproxy.service``), write the answer.

- ``/{signature}/{options...}/{origin}/{key...}``: a derivative (``transform``);
- ``/info/{signature}/{origin}/{key}``: what is known about an original (``info``);
- ``{compat_thumbor_prefix}/HASH/...``: a thumbor URL's derivative, when ``compat_thumbor`` is on
  (``edgeproxy.compat.thumbor_route``);
- ``{compat_imgproxy_prefix}/{signature}/{options...}/{source}``: an imgproxy URL, when
  ``compat_imgproxy`` (``edgeproxy.compat.imgproxy_http``);
- ``POST /purge``: purge an original (``purge``; 404 without ``admin_token``);
- ``POST /manifest/{name}``: update a manifest origin's entries (``manifest``; 404 without ``admin_token``);
- ``/review``, ``/review/...``: the human review page (``edgeproxy.review``; only with ``review = true``);
- ``/healthz``, ``/readyz``: probes; ``/metrics``: Prometheus (on ``metrics_bind`` only when set).

All state (``compose.Components``: origins, HTTP clients, render pool, caches, the service) is built
in the lifespan and lives on ``app.state.components``; there is no module-level mutable state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from prometheus_client import start_http_server
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from edgeproxy import __version__
from edgeproxy.compat.imgproxy import ImgproxyConfig
from edgeproxy.compat.imgproxy_http import endpoint as imgproxy_endpoint
from edgeproxy.compat.thumbor_route import routes as thumbor_routes
from edgeproxy.compose import StartupError, compose
from edgeproxy.http.edge import Endpoint, route
from edgeproxy.http.info import info
from edgeproxy.http.logs import AccessRecord
from edgeproxy.http.manifest import disabled as manifest_disabled
from edgeproxy.http.manifest import update as manifest_update
from edgeproxy.http.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from edgeproxy.http.purge import disabled, purge
from edgeproxy.http.responses import ErrorForm
from edgeproxy.http.transform import transform
from edgeproxy.render import vips
from edgeproxy.render.encoding import check_encoders
from edgeproxy.review.routes import review_routes
from edgeproxy.review.service import Review
from edgeproxy.settings import Settings

if TYPE_CHECKING:
    from edgeproxy.compose import Components

_log = logging.getLogger("edgeproxy")

#: Every method an HTTP client may send: the edge answers 405 for those a route does not take.
READ = ("GET", "HEAD")
ANY = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


async def metrics(request: Request, components: Components, record: AccessRecord) -> Response:
    """``GET /metrics``: Prometheus text exposition of the app's registry."""
    body = components.metrics.exposition()
    return Response(body, media_type=METRICS_CONTENT_TYPE, headers=components.headers.no_store())


async def healthz(request: Request, components: Components, record: AccessRecord) -> Response:
    """``GET /healthz``: the process is up."""
    return JSONResponse({"status": "ok", "version": __version__}, headers=components.headers.no_store())


async def readyz(request: Request, components: Components, record: AccessRecord) -> Response:
    """``GET /readyz``: whether this pod can serve, for a readiness probe. 200 when every encoder
    works, 503 otherwise. Readiness is about the pod, not its origins: an origin that does not
    answer (2 s per origin) is reported in ``origins`` and makes ``status`` ``degraded``, but the
    answer stays 200, since every pod shares the origin and taking them all out of the Service at
    once would also stop the originals cached in memory from being served (``origin_stale_if_error``).
    With vision models, ``vision`` names the ONNX Runtime execution providers each one got; with
    manifest origins, ``manifests`` says whether each has loaded (one that has not: ``degraded``)."""
    service = components.service
    origins = {name: await origin.ready() for name, origin in components.origins.items()}
    encoders = await asyncio.to_thread(check_encoders, service.encode_options)
    manifests = {name: m.loaded for name, m in components.manifests.manifests.items()}
    ok = all(encoders.values())
    status = ("ok" if all(origins.values()) and all(manifests.values()) else "degraded") if ok else "unavailable"
    body: dict[str, Any] = {"status": status, "libvips": vips.version(), "encoders": encoders, "origins": origins}
    if manifests:  # whether each manifest origin has a version to serve
        body["manifests"] = manifests
    if service.vision is not None:  # the execution provider each model got (CUDA, or CPU)
        body["vision"] = service.vision.providers()
    return JSONResponse(body, status_code=200 if ok else 503, headers=components.headers.no_store())


def routes(settings: Settings) -> list[BaseRoute]:
    """The route table for ``settings``: ``/purge`` and ``/manifest/{name}`` are there only with an
    ``admin_token`` (404 for every method otherwise), ``/metrics`` only without ``metrics_bind``
    (then a 404 on the main port), the review page (``/review...``: ``edgeproxy.review.routes``) only
    with ``review = true``."""
    token = settings.admin_token is not None
    admin = Endpoint(purge, ("POST",), errors=ErrorForm.JSON) if token else Endpoint(disabled, ANY)
    manifests = (
        Endpoint(manifest_update, ("POST",), errors=ErrorForm.JSON) if token else Endpoint(manifest_disabled, ANY)
    )
    native = route("/{path:path}", Endpoint(transform, READ, watch_disconnect=True))
    return [
        route("/healthz", Endpoint(healthz, READ, observed=False)),
        route("/readyz", Endpoint(readyz, READ, observed=False)),
        route("/purge", admin),
        route("/manifest/{name}", manifests),
        *([] if settings.metrics_bind else [route("/metrics", Endpoint(metrics, READ, observed=False))]),
        *(review_routes() if settings.review else []),
        route("/info/{path:path}", Endpoint(info, READ, watch_disconnect=True)),
        *compat_routes(settings),
        *([native] if not (settings.compat_imgproxy and not settings.compat_imgproxy_prefix) else []),
    ]


def compat_routes(settings: Settings) -> list[BaseRoute]:
    """Other proxies' URLs, where enabled: thumbor's under ``compat_thumbor_prefix`` and imgproxy's
    under ``compat_imgproxy_prefix`` (with an empty prefix they take the root, in place of
    edgeproxy's own transform URLs; the probes, /info, /purge and /metrics stay)."""
    found: list[BaseRoute] = [*thumbor_routes(settings)]
    if settings.compat_imgproxy:
        imgproxy = imgproxy_endpoint(ImgproxyConfig.from_settings(settings))
        found.append(route(settings.compat_imgproxy_prefix + "/{path:path}", imgproxy))
    return found


def create_app(settings: Settings) -> Starlette:
    """The ASGI app for ``settings``; its objects are built when the lifespan starts (``compose``).

    Raises (when the lifespan starts):
        StartupError: a vision model or the C2PA certificate and key cannot be used.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        vips.configure(settings.vips_concurrency)
        try:
            components = compose(settings)
        except StartupError as exc:  # a model or certificate that cannot be used: say which, once
            _log.error("cannot start: %s", exc)
            raise
        app.state.components = components
        await components.manifests.start()
        review = Review.build(components) if settings.review else None
        if review is not None:
            app.state.review = review
            review.start()
        metrics_server = None
        if settings.metrics_bind:
            host, _, port = settings.metrics_bind.rpartition(":")
            metrics_server, _thread = start_http_server(int(port), addr=host, registry=components.metrics.registry)
        try:
            yield
        finally:
            if metrics_server is not None:
                metrics_server.shutdown()
                metrics_server.server_close()
            if review is not None:
                await review.aclose()
            await components.aclose()

    return Starlette(routes=routes(settings), lifespan=lifespan)


def create_app_from_env() -> Starlette:
    """Factory for uvicorn worker processes started by ``edgeproxy serve --workers N``."""
    from edgeproxy.settings_io import settings_from_serialized

    return create_app(settings_from_serialized())
