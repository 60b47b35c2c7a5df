"""The ASGI application: ``create_app(settings)``.

One request flows one way::

    raw path -> split signature -> verify (403) -> parse -> TransformSpec (400)
      -> negotiate(Accept, client hints) -> concrete spec + Vary
      -> origin.fetch (cache, single-flight) -> ETag -> 304?
      -> render pool: pipeline.run (single-flight by ETag) -> response

All state (``proxy.Proxy``: origins, HTTP client, render pool, caches) is built in the lifespan
and lives on ``app.state.proxy``; there is no module-level mutable state.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import logging
import re
import time
from collections.abc import Awaitable

from prometheus_client import start_http_server
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edgeproxy import __version__, boundedjson
from edgeproxy.errors import (
    ProxyError,
    bad_request,
    forbidden,
    internal_error,
    no_route,
    not_found,
    unsupported_format,
)
from edgeproxy.http import info
from edgeproxy.http.logs import ACCESS, AccessRecord, header_values, request_id
from edgeproxy.http.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from edgeproxy.http.negotiate import Negotiated, accept_bucket, accepted_image_types, negotiate
from edgeproxy.http.responses import etag_matches, server_timing, strong_etag, surrogate_key
from edgeproxy.origins import Origin
from edgeproxy.proxy import Proxy, StartupError
from edgeproxy.render import vips
from edgeproxy.render.encoding import check_encoders
from edgeproxy.render.geometry import check_box
from edgeproxy.settings import Settings
from edgeproxy.url.grammar import parse_path
from edgeproxy.url.signing import INFO_PREFIX
from edgeproxy.url.spec import Format, canonical

_log = logging.getLogger("edgeproxy")
_access = logging.getLogger(ACCESS)


def _split_signature(request: Request, prefix: str = "") -> tuple[str, str]:
    """(signature, path after it) of a transform URL (or of an ``/info`` URL after ``prefix``
    ``/info``), the path still percent-encoded as sent.

    Raises:
        ProxyError(400): a query string (it is not signed, and CDNs key on it: each new one would
            buy a render), or a path that is not ASCII.
        ProxyError(404): a path of one segment, which no transform URL is (``/metrics`` when it is
            served on ``metrics_bind`` only, ``/favicon.ico``).
    """
    if request.scope.get("query_string"):
        raise bad_request("query strings are not part of signed URLs: put every option in the path")
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    try:
        path = raw.decode("ascii")
    except UnicodeDecodeError:
        raise bad_request("URL path must be ASCII (percent-encode other bytes)") from None
    signature, sep, rest = path[1 + len(prefix) :].partition("/")
    if not sep or not rest:
        raise no_route()
    return signature, "/" + rest


async def _transform(proxy: Proxy, request: Request, record: AccessRecord) -> Response:
    """The transform route's work; fills ``record`` for the access log and the metrics."""
    start = time.monotonic()
    settings = proxy.settings
    deadline = start + settings.request_timeout
    signature, path = _split_signature(request)
    record.path = path
    proxy.signer.verify(signature, path)
    spec, origin_name, key = parse_path(path, proxy.presets, only_presets=settings.only_presets)
    if spec.expires is not None:
        if spec.expires < time.time():
            raise forbidden("URL expired")
        record.expires = spec.expires
    if not spec.strip and not settings.allow_keep_metadata:
        raise bad_request("option strip:0 is not allowed on this server (metadata is always stripped)")
    if spec.format is Format.JXL and not proxy.jxl_output:
        raise unsupported_format("output format jxl needs the [jxl] extra: pip install 'edgeproxy[jxl]'")
    origin = proxy.origins.get(origin_name)
    if origin is None:
        raise not_found(f"unknown origin {origin_name!r}")
    record.origin = origin_name
    check_box(spec, settings.max_output_dimension)
    face_model = proxy.vision is not None and proxy.vision.faces is not None
    if (spec.gravity.kind == "face" or spec.redact is not None) and not face_model:
        raise bad_request("g:face and redact:faces need the face model: this server has no face_model setting")
    auto_jxl = settings.auto_jxl and proxy.jxl_output
    negotiated = negotiate(
        spec,
        request.headers,
        client_hints=settings.client_hints,
        save_data_quality=settings.save_data_quality,
        max_dimension=settings.max_output_dimension,
        jxl=auto_jxl,
        auto=proxy.auto_size,
    )
    record.accept = accept_bucket(
        negotiated.accepts
        if spec.format is Format.AUTO
        else accepted_image_types(request.headers.get("accept", ""), auto_jxl)
    )
    try:
        return await _derivative(proxy, request, record, negotiated, origin, key, start, deadline)
    except ProxyError as error:
        if proxy.fallback is None or error.status not in FALLBACK_STATUSES:
            raise
        return await _fallback(proxy, error, negotiated, deadline, record)


async def _derivative(
    proxy: Proxy,
    request: Request,
    record: AccessRecord,
    negotiated: Negotiated,
    origin: Origin,
    key: str,
    start: float,
    deadline: float,
) -> Response:
    """Fetch, moderate, validate (304) and render: the derivative's response.

    Vision and moderation, when configured, come between the fetch and the ETag, since both can
    change the bytes (``Proxy.treatment``: 451, blur, faces, redaction, a short max-age).

    Every answer about the original carries its ``Surrogate-Key`` and ``Cache-Tag``: the 200 and
    304, and every ``ProxyError`` raised from here (404, 413, 415, 422, 451, 502, 503, 504), so
    that one purge of the original clears whatever a CDN cached for it, errors included.
    """
    tag = surrogate_key(origin.name, key)
    try:
        return await _render_derivative(proxy, request, record, negotiated, origin, key, start, deadline, tag)
    except ProxyError as error:
        # The same error object may be shared (single-flight, the remembered 404), but always for this
        # original: the tag it gets is the same whoever adds it.
        error.headers.setdefault("Surrogate-Key", tag)
        error.headers.setdefault("Cache-Tag", tag)
        raise


async def _render_derivative(
    proxy: Proxy,
    request: Request,
    record: AccessRecord,
    negotiated: Negotiated,
    origin: Origin,
    key: str,
    start: float,
    deadline: float,
    tag: str,
) -> Response:
    """``_derivative``'s work; ``tag`` is the original's surrogate key."""
    settings = proxy.settings
    origin_name = origin.name
    spec = negotiated.spec
    original, record.cache = await proxy.original(origin, key)
    fetched = time.monotonic()
    record.stages["fetch"] = fetched - start
    treatment = await proxy.treatment(origin, key, original, spec, deadline, record.stages)
    short = treatment.max_age
    if record.cache == "stale":  # the origin could not vouch for it: may change once the origin is back
        short = min(short, settings.error_max_age) if short is not None else settings.error_max_age
    signed_c2pa = proxy.c2pa is not None and origin_name in settings.c2pa_origins
    stamp = f"{treatment.stamp};c2pa={int(signed_c2pa)}"
    etag = strong_etag(
        canonical(spec),
        ",".join(sorted(negotiated.accepts)),
        origin_name,
        key,
        original.etag,
        proxy.fingerprint,
        stamp,
    )
    if signed_c2pa:  # a C2PA signature differs on every render (its time, its ids): the same content, not bytes
        etag = "W/" + etag
    validators = {"ETag": etag, "Surrogate-Key": tag, "Cache-Tag": tag}
    if original.last_modified:
        validators["Last-Modified"] = original.last_modified
    headers = proxy.headers.image(200, vary=negotiated.vary, expires=record.expires, validators=validators, short=short)
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)

    render = functools.partial(
        proxy.render,
        original.data,
        negotiated,
        deadline,
        faces=treatment.faces,
        redact=treatment.redact,
        moderation_blur=treatment.blur,
        face_grids=treatment.face_grids,
        wash=treatment.wash,
        provenance_title=key if signed_c2pa else None,
    )
    (queued, rendered), shared = await proxy.renders.run(
        etag,
        lambda: proxy.pool.run(render, deadline=deadline),
    )
    proxy.metrics.cache.labels("variant", "coalesced" if shared else "miss").inc()
    done = time.monotonic()
    render_time = sum(rendered.timings.values())
    if not shared:  # a coalesced request did none of this work
        record.stages.update(queue=queued, **rendered.stage_times())
        record.bytes_in = len(original.data)
    record.format = rendered.format.value
    inference = record.stages.get("inference")  # the original's analysis (vision), when it was needed
    headers["Server-Timing"] = server_timing(
        [
            ("fetch", fetched - start),
            *([("inference", inference)] if inference is not None else []),
            ("queue", max(0.0, done - fetched - (inference or 0.0) - render_time)),
            ("render", render_time),
            ("total", done - start),
        ]
    )
    return Response(rendered.body, media_type=rendered.mime, headers=headers)


#: Logged (never sent) when the client went away first: nginx's "client closed request".
CLIENT_CLOSED = 499


async def _disconnected(request: Request) -> None:
    """Return once the client has gone away (the ASGI ``http.disconnect`` message)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _unless_disconnected(request: Request, work: Awaitable[Response]) -> Response | None:
    """``work``'s response, or None (and ``work`` cancelled) if the client goes away first: its
    queued render leaves the queue unless another request shares it (``SingleFlight``)."""
    job = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait((job, watch), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
    if job.done():
        return job.result()
    job.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await job
    return None


#: Errors about the original that the fallback image (when configured) stands in for.
FALLBACK_STATUSES = frozenset({404, 413, 415, 422, 502, 504})


async def _fallback(
    proxy: Proxy, error: ProxyError, negotiated: Negotiated, deadline: float, record: AccessRecord
) -> Response:
    """The configured fallback image rendered for ``negotiated`` (size, fit, format), answered with
    ``error``'s status (or ``fallback_status``) and its short caching, never ``immutable``; no ETag;
    the original's ``Surrogate-Key`` and ``Cache-Tag`` (from ``error``, see ``_derivative``), so a
    purge of the original clears the fallback image a CDN cached in its place.

    Raises:
        ProxyError: ``error`` itself when the fallback cannot be rendered (e.g. 503, deadline).
    """
    try:
        _queued, rendered = await proxy.pool.run(proxy.render, proxy.fallback, negotiated, deadline, deadline=deadline)
    except ProxyError:
        raise error from None
    record.error = error
    record.format = rendered.format.value
    headers = proxy.headers.image(
        error.status,
        vary=negotiated.vary,
        expires=record.expires,
        validators={name: error.headers[name] for name in ("Surrogate-Key", "Cache-Tag") if name in error.headers},
    )
    headers["X-Fallback-Reason"] = f"{error.status} {error.message}".encode("ascii", "replace").decode()
    return Response(
        rendered.body,
        status_code=proxy.settings.fallback_status or error.status,
        media_type=rendered.mime,
        headers=headers,
    )


async def transform(request: Request) -> Response:
    """``GET|HEAD /{signature}/{options...}/{origin}/{key...}``: a derivative or an error.

    Counts the request in the metrics and writes its access-log line; echoes ``X-Request-ID``.
    A client that disconnects first cancels the work (logged with status 499, nothing sent).
    """
    proxy: Proxy = request.app.state.proxy
    metrics = proxy.metrics
    start = time.monotonic()
    rid = request_id(request.headers.get("x-request-id"))
    record = AccessRecord()
    error: ProxyError | None = None
    metrics.in_flight.inc()
    try:
        response = await _unless_disconnected(request, _transform(proxy, request, record))
        if response is None:
            metrics.disconnects.inc()
            response = Response(status_code=CLIENT_CLOSED)
        error = record.error  # a fallback image answered this error
    except ProxyError as caught:
        error = caught
        response = proxy.headers.error(error, record.expires)
    except Exception:
        _log.exception("internal error", extra={"fields": {"request_id": rid}})
        error = internal_error()
        response = proxy.headers.error(error)
    finally:
        metrics.in_flight.dec()
    duration = time.monotonic() - start
    status_class = f"{response.status_code // 100}xx"
    response.headers["X-Request-ID"] = rid
    image = response.status_code == 200 or record.error is not None  # a derivative or the fallback image
    sent = len(response.body) if image and request.method != "HEAD" else 0  # HEAD sends no body
    metrics.requests.labels(status_class, record.format if image else "none").inc()
    metrics.duration.labels(status_class).observe(duration)
    for stage, seconds in record.stages.items():
        metrics.stage.labels(stage).observe(seconds)
    metrics.bytes_in.inc(record.bytes_in)
    metrics.bytes_out.inc(sent)
    if error is not None:
        metrics.errors.labels(error.category).inc()
    if proxy.settings.access_log:
        _access.info(
            "request",
            extra={
                "fields": record.fields(
                    request_id=rid,
                    method=request.method,
                    status=response.status_code,
                    duration=duration,
                    bytes_out=sent,
                    error=error,
                    cdn=header_values(request.headers, proxy.settings.access_log_headers),
                )
            },
        )
    return response


#: Largest ``POST /purge`` body read, in bytes.
MAX_PURGE_BODY = 4096
#: Deepest nesting of ``[]``/``{}`` in a purge body (a valid one has 1), checked before parsing.
MAX_PURGE_DEPTH = 4
_TAG = re.compile(r"k[0-9a-f]{16}")


def _purge_target(proxy: Proxy, body: bytes) -> tuple[str, str | None, str | None]:
    """(surrogate key, origin, key) from a purge body ``{"origin", "key"}`` or ``{"surrogate_key"}``.

    Raises:
        ProxyError(400): not JSON (or nested over ``MAX_PURGE_DEPTH``), neither form, an unknown origin
            or a malformed surrogate key.
    """
    try:
        data = boundedjson.loads(body, max_bytes=MAX_PURGE_BODY, max_depth=MAX_PURGE_DEPTH)
    except boundedjson.LimitError:
        raise bad_request(
            f"body must be JSON nested at most {MAX_PURGE_DEPTH} deep: "
            '{"origin": NAME, "key": KEY} or {"surrogate_key": TAG}'
        ) from None
    except ValueError:  # not UTF-8, not JSON
        raise bad_request('body must be JSON: {"origin": NAME, "key": KEY} or {"surrogate_key": TAG}') from None
    if isinstance(data, dict) and set(data) == {"origin", "key"}:
        origin, key = data["origin"], data["key"]
        if not (isinstance(origin, str) and isinstance(key, str) and key):
            raise bad_request("origin and key must be non-empty strings")
        if origin not in proxy.origins:
            raise bad_request(f"unknown origin {origin!r}")
        return surrogate_key(origin, key), origin, key
    if isinstance(data, dict) and set(data) == {"surrogate_key"}:
        tag = data["surrogate_key"]
        if not (isinstance(tag, str) and _TAG.fullmatch(tag)):
            raise bad_request("surrogate_key must be k followed by 16 hex digits (edgeproxy surrogate-key ORIGIN KEY)")
        return tag, None, None
    raise bad_request('body must be {"origin": NAME, "key": KEY} or {"surrogate_key": TAG}')


def _admin(request: Request, proxy: Proxy) -> bool:
    """Whether ``request`` carries ``Authorization: Bearer <admin_token>`` (RFC 6750 §2.1), compared
    in constant time. Never without an ``admin_token``, for an empty one (settings refuse it at
    start-up) or for an empty credential."""
    token = proxy.settings.admin_token
    secret = token.get_secret_value().encode() if token is not None else b""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    credential = given.strip().encode()
    if scheme.lower() != "bearer" or not credential or not secret:
        return False
    return hmac.compare_digest(credential, secret)


async def purge(request: Request) -> Response:
    """``POST /purge`` (``Authorization: Bearer <admin_token>``): drop an original from the proxy's
    caches, then purge its surrogate key through every configured hook.

    Answers 200 with ``{"surrogate_key", "dropped", "hooks": [...]}`` when every hook succeeded,
    502 with the same body when one failed (hook targets shown with their secrets masked:
    ``PurgeHook.shown``); 404 when no ``admin_token`` is configured; 401 for a missing, empty or
    wrong token (``_admin``); 400 for a bad body; 405 for other methods. Never cached (``no-store``).
    """
    proxy: Proxy = request.app.state.proxy
    token = proxy.settings.admin_token
    if token is None:
        return proxy.headers.error(no_route())
    if request.method != "POST":
        return Response(
            "method not allowed\n",
            status_code=405,
            media_type="text/plain; charset=utf-8",
            headers={"Allow": "POST", "Cache-Control": "no-store"},
        )
    if not _admin(request, proxy):
        return JSONResponse(
            {"error": "missing or wrong admin token"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="edgeproxy"', "Cache-Control": "no-store"},
        )
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_PURGE_BODY:
            return JSONResponse(
                {"error": f"body over {MAX_PURGE_BODY} bytes"}, status_code=413, headers={"Cache-Control": "no-store"}
            )
    try:
        tag, origin, key = _purge_target(proxy, body)
    except ProxyError as error:
        return JSONResponse({"error": error.message}, status_code=error.status, headers={"Cache-Control": "no-store"})
    dropped, hooks = await proxy.purge(tag, origin, key)
    ok = all(hook["ok"] for hook in hooks)
    _log.info(
        "purge",
        extra={"fields": {"surrogate_key": tag, "origin": origin, "key": key, "dropped": dropped, "hooks": hooks}},
    )
    return JSONResponse(
        {"surrogate_key": tag, "origin": origin, "key": key, "dropped": dropped, "hooks": hooks},
        status_code=200 if ok else 502,
        headers={"Cache-Control": "no-store"},
    )


async def info_endpoint(request: Request) -> Response:
    """``GET|HEAD /info/{signature}/{origin}/{key}``: what is known about an original, as JSON
    (``edgeproxy.http.info.answer``). Signed over ``/info/{origin}/{key}``, its own signature domain: an
    ``/info`` signature renders no image and a transform signature answers no ``/info``. A blocked
    original is described only as blocked unless the request carries the admin token (``_admin``),
    whose answers are ``private, no-store``. Public answers are cached ``moderation_max_age``
    (verdicts change), with the original's surrogate key; errors as for transforms (403, 404, 413,
    415, 422, 503, 504)."""
    proxy: Proxy = request.app.state.proxy
    try:
        signature, path = _split_signature(request, INFO_PREFIX)
        return await info.answer(
            proxy, signature, path, request.headers.get("if-none-match"), admin=_admin(request, proxy)
        )
    except ProxyError as error:
        return proxy.headers.error(error)
    except Exception:
        _log.exception("internal error in /info")
        return proxy.headers.error(internal_error())


async def metrics_endpoint(request: Request) -> Response:
    """``GET /metrics``: Prometheus text exposition of the app's registry."""
    proxy: Proxy = request.app.state.proxy
    return Response(proxy.metrics.exposition(), media_type=METRICS_CONTENT_TYPE, headers={"Cache-Control": "no-store"})


async def healthz(request: Request) -> Response:
    """``GET /healthz``: the process is up."""
    return JSONResponse({"status": "ok", "version": __version__}, headers={"Cache-Control": "no-store"})


async def readyz(request: Request) -> Response:
    """``GET /readyz``: whether this pod can serve, for a readiness probe. 200 when every encoder
    works, 503 otherwise. Readiness is about the pod, not its origins: an origin that does not
    answer (2 s per origin) is reported in ``origins`` and makes ``status`` ``degraded``, but the
    answer stays 200, since every pod shares the origin and taking them all out of the Service at
    once would also stop the originals cached in memory from being served (``origin_stale_if_error``).
    With vision models, ``vision`` names the ONNX Runtime execution providers each one got."""
    proxy: Proxy = request.app.state.proxy
    origins = {name: await origin.ready() for name, origin in proxy.origins.items()}
    encoders = await asyncio.to_thread(check_encoders, proxy.encode_options)
    ok = all(encoders.values())
    status = ("ok" if all(origins.values()) else "degraded") if ok else "unavailable"
    body = {"status": status, "libvips": vips.version(), "encoders": encoders, "origins": origins}
    if proxy.vision is not None:  # the execution provider each model got (CUDA, or CPU)
        body["vision"] = proxy.vision.providers()
    return JSONResponse(body, status_code=200 if ok else 503, headers={"Cache-Control": "no-store"})


def create_app(settings: Settings) -> Starlette:
    """The ASGI app for ``settings``; state is built when the lifespan starts."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        vips.configure(settings.vips_concurrency)
        try:
            proxy = Proxy.build(settings)
        except StartupError as exc:  # a model or certificate that cannot be used: say which, once
            _log.error("cannot start: %s", exc)
            raise
        app.state.proxy = proxy
        metrics_server = None
        if settings.metrics_bind:
            host, _, port = settings.metrics_bind.rpartition(":")
            metrics_server, _thread = start_http_server(int(port), addr=host, registry=proxy.metrics.registry)
        try:
            yield
        finally:
            if metrics_server is not None:
                metrics_server.shutdown()
                metrics_server.server_close()
            await proxy.aclose()

    routes = [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
        # Every method reaches purge(): 404 without admin_token, whatever the method; else 405 but POST.
        Route("/purge", purge, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
        # With metrics_bind, /metrics is served there only: on the main port it is a 404.
        *([] if settings.metrics_bind else [Route("/metrics", metrics_endpoint, methods=["GET"])]),
        Route("/info/{path:path}", info_endpoint, methods=["GET", "HEAD"]),
        Route("/{path:path}", transform, methods=["GET", "HEAD"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def create_app_from_env() -> Starlette:
    """Factory for uvicorn worker processes started by ``edgeproxy serve --workers N``."""
    from edgeproxy.settings_io import settings_from_serialized

    return create_app(settings_from_serialized())
