"""``GET|HEAD {compat_thumbor_prefix}/HASH/...``: thumbor URLs served through the native transform path.

The route verifies and maps the URL (``edgeproxy.compat.thumbor.parse``: 403, 400, 404) and hands the
spec to ``edgeproxy.http.transform.render``, the native route's own path, so a thumbor URL and the
equivalent edgeproxy URL share caching, negotiation, moderation, ETag and bytes. Errors go to the
HTTP edge like every route's.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgeproxy.compat.thumbor import Mapped, ThumborConfig, focused, parse
from edgeproxy.errors import ProxyError, not_found
from edgeproxy.http.edge import Endpoint, Handler, route
from edgeproxy.http.logs import AccessRecord
from edgeproxy.http.transform import render, split_signature
from edgeproxy.render.pipeline import Limits, inspect
from edgeproxy.service.validators import surrogate_key
from edgeproxy.url.spec import TransformSpec

if TYPE_CHECKING:
    from edgeproxy.compose import Components
    from edgeproxy.settings import Settings


def handler(config: ThumborConfig, prefix: str) -> Handler:
    """The route's handler for ``config`` (built once, at start-up) under ``prefix``."""

    async def thumbor(request: Request, components: Components, record: AccessRecord) -> Response:
        """A thumbor URL's derivative, its 304, or the fallback image; errors raised to the edge.

        Raises:
            ProxyError: 400 (a query string, a non-ASCII path, a malformed URL or unmapped option),
                403 (signature), 404 (no route, no origin for the image), and ``render``'s.
        """
        signature, rest = split_signature(request, prefix)
        path = f"/{signature}{rest}"
        record.path = prefix + path
        mapped = parse(path, config)
        spec = mapped.spec if mapped.focal is None else await _focused(components, mapped)
        return await render(request, components, record, spec, mapped.origin, mapped.key)

    return thumbor


async def _focused(components: Components, mapped: Mapped) -> TransformSpec:
    """The spec of a URL with ``focal()``, whose anchor depends on the original's upright size:
    the original is fetched (then cached: the render that follows reads it from memory) and its
    header read in the render pool.

    Raises:
        ProxyError: 404 (no such origin), and the original's errors as a render would answer them
            (404, 413, 415, 422, 502, 503, 504), with its surrogate key.
    """
    service = components.service
    origin = components.origins.get(mapped.origin)
    if origin is None:
        raise not_found(f"unknown origin {mapped.origin!r}")
    deadline = time.monotonic() + components.settings.request_timeout
    try:
        fetched = await service.originals.fetch(origin, mapped.key)
        _queued, size = await service.run_blocking(
            _upright_size, fetched.original.data, service.limits, deadline=deadline
        )
    except ProxyError as error:
        raise error.about(surrogate_key(origin.name, mapped.key)) from None
    return focused(mapped, *size)


def _upright_size(data: bytes, limits: Limits) -> tuple[int, int]:
    """(width, height) of an original's first frame, upright (after EXIF orientation), from its header."""
    info = inspect(data, limits).info
    return info.width, info.height


def routes(settings: Settings) -> list[Route]:
    """The thumbor route under ``compat_thumbor_prefix`` when ``compat_thumbor`` is on, else none.
    With the prefix ``""`` it takes every path the earlier routes do not (a host of its own)."""
    if not settings.compat_thumbor:
        return []
    prefix = settings.compat_thumbor_prefix
    endpoint = Endpoint(handler(ThumborConfig.from_settings(settings), prefix), ("GET", "HEAD"), watch_disconnect=True)
    return [route(prefix + "/{path:path}", endpoint)]
