"""``POST /purge`` (``Authorization: Bearer <admin_token>``): drop an original from the proxy's
caches, delete its stored derivatives (``edgeproxy.results``), then purge its surrogate key through
every configured hook (``edgeproxy.purge``).

Answers 200 with ``{"surrogate_key", "origin", "key", "dropped", "stored", "hooks": [...]}`` (``stored``:
the stored derivatives deleted) when every step succeeded, 502 with the same body when the result
storage or a hook failed (``stored`` then says why) (hook targets shown with their secrets masked:
``PurgeHook.shown``). Its errors are JSON ``{"error": message}`` (``ErrorForm.JSON``): 401 for a
missing, empty or wrong token, 413 for a body over ``MAX_PURGE_BODY`` bytes, 400 for a bad body;
405 (text) for a method other than POST. Without an ``admin_token`` the route is not there: 404 for
every method (``disabled``). Never cached (``no-store``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Container
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from edgeproxy import boundedjson
from edgeproxy.errors import bad_request, no_route, too_large, unauthorized
from edgeproxy.http.auth import is_admin
from edgeproxy.http.logs import AccessRecord
from edgeproxy.service.validators import surrogate_key

if TYPE_CHECKING:
    from edgeproxy.compose import Components

_log = logging.getLogger("edgeproxy")

#: Largest ``POST /purge`` body read, in bytes.
MAX_PURGE_BODY = 4096
#: Deepest nesting of ``[]``/``{}`` in a purge body (a valid one has 1), checked before parsing.
MAX_PURGE_DEPTH = 4
_TAG = re.compile(r"k[0-9a-f]{16}")


def purge_target(origins: Container[str], body: bytes) -> tuple[str, str | None, str | None]:
    """(surrogate key, origin, key) from a purge body ``{"origin", "key"}`` or ``{"surrogate_key"}``;
    ``origins``: the configured origin names.

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
        if origin not in origins:
            raise bad_request(f"unknown origin {origin!r}")
        return surrogate_key(origin, key), origin, key
    if isinstance(data, dict) and set(data) == {"surrogate_key"}:
        tag = data["surrogate_key"]
        if not (isinstance(tag, str) and _TAG.fullmatch(tag)):
            raise bad_request("surrogate_key must be k followed by 16 hex digits (edgeproxy surrogate-key ORIGIN KEY)")
        return tag, None, None
    raise bad_request('body must be {"origin": NAME, "key": KEY} or {"surrogate_key": TAG}')


async def _body(request: Request) -> bytes:
    """The request body, read up to ``MAX_PURGE_BODY`` bytes.

    Raises:
        ProxyError(413): a longer body (the rest is never read).
    """
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_PURGE_BODY:
            raise too_large(f"body over {MAX_PURGE_BODY} bytes")
    return body


async def purge(request: Request, components: Components, record: AccessRecord) -> Response:
    """The purge (module docstring).

    Raises:
        ProxyError: 401, 413, 400 (answered as JSON by the edge).
    """
    record.path = "/purge"
    if not is_admin(request, components.settings.admin_token):
        raise unauthorized("missing or wrong admin token")
    tag, origin, key = purge_target(components.origins, await _body(request))
    purged = await components.purger.purge(tag, origin, key)
    return JSONResponse(
        purged.answer(),
        status_code=200 if purged.ok else 502,
        headers=components.headers.no_store(),
    )


async def disabled(request: Request, components: Components, record: AccessRecord) -> Response:
    """``/purge`` without an ``admin_token``: no such route, whatever the method.

    Raises:
        ProxyError(404): always.
    """
    record.path = "/purge"
    raise no_route()
