"""``POST /manifest/{name}`` (``Authorization: Bearer <admin_token>``): update entries of the
manifest origin ``name`` — the "stock updated" hook of a catalogue (docs/manifests.md).

The body is a JSON object of id -> entry (``{"origin", "key", ...}``: set) or ``null`` (remove),
at most ``manifest_max_bytes`` bytes. The stored manifest is read again, the updates applied, the
result written back (a file atomically, an S3 object with one PUT) and served at once, and the ids
whose image changed are purged (``edgeproxy.service.manifests``).

Answers 200 with ``{"manifest", "ids", "changed", "purged": [{"id", "surrogate_key", "stored",
"hooks"}]}`` when every purge succeeded, 502 with the same body when a hook or the result storage
failed (the manifest is updated all the same). Its errors are JSON ``{"error": message}``: 401 for
a missing or wrong token, 404 for an unknown manifest, 413 for a body over the limit, 400 for a bad
body (not JSON, a bad id or entry, an unknown origin), 502 when the stored manifest cannot be read,
parsed or written (nothing is changed); 405 (text) for another method. Without an ``admin_token``
the route is not there (404, as ``/purge``). Never cached (``no-store``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from edgeproxy import boundedjson, manifest
from edgeproxy.errors import bad_request, no_route, not_found, origin_error, too_large, unauthorized
from edgeproxy.http.auth import is_admin
from edgeproxy.http.logs import AccessRecord
from edgeproxy.manifest import ManifestError
from edgeproxy.origins.manifest import SourceError

if TYPE_CHECKING:
    from edgeproxy.compose import Components

_log = logging.getLogger("edgeproxy.manifest")
PREFIX = "/manifest/"


async def _body(request: Request, limit: int) -> bytes:
    """The request body, read up to ``limit`` bytes.

    Raises:
        ProxyError(413): a longer body (the rest is never read).
    """
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large(f"body over manifest_max_bytes ({limit} bytes)")
    return bytes(body)


async def update(request: Request, components: Components, record: AccessRecord) -> Response:
    """The update (module docstring).

    Raises:
        ProxyError: 401, 404, 413, 400, 502 (answered as JSON by the edge).
    """
    name = request.path_params["name"]
    record.path = PREFIX + name
    if not is_admin(request, components.settings.admin_token):
        raise unauthorized("missing or wrong admin token")
    manifests = components.manifests
    live = manifests.get(name)
    if live is None:
        raise not_found(f"unknown manifest {name!r}")
    limit = components.settings.manifest_max_bytes
    try:
        parsed = boundedjson.loads(await _body(request, limit), max_bytes=limit, max_depth=manifest.MAX_DEPTH)
        updates = manifest.parse_updates(parsed, components.origins)
    except boundedjson.LimitError as exc:
        raise bad_request(f"body too deep: {exc}") from None
    except ManifestError as exc:
        raise bad_request(str(exc)) from None
    except ValueError:
        raise bad_request('body must be JSON: {"ID": {"origin": NAME, "key": KEY, ...} or null, ...}') from None
    try:
        changed, purged = await manifests.update(live, updates)
    except SourceError as exc:  # the reason names the file or bucket: logged, not answered
        _log.warning("manifest %r: update failed: %s", name, exc)
        raise origin_error("the stored manifest could not be read, parsed or written (the log says why)") from None
    ok = all(hook["ok"] for result in purged for hook in result["hooks"]) and all(
        isinstance(result["stored"], int) for result in purged
    )
    answer = {"manifest": name, "ids": len(live.entries), "changed": changed, "purged": purged}
    _log.info("manifest update", extra={"fields": {"manifest": name, "changed": changed[:100]}})
    return JSONResponse(answer, status_code=200 if ok else 502, headers=components.headers.no_store())


async def disabled(request: Request, components: Components, record: AccessRecord) -> Response:
    """``/manifest/...`` without an ``admin_token``: no such route, whatever the method.

    Raises:
        ProxyError(404): always.
    """
    record.path = PREFIX + request.path_params.get("name", "")
    raise no_route()
