"""``GET|HEAD {compat_imgproxy_prefix}/{signature}/{options...}/{source}``: imgproxy URLs, served.

The handler verifies and maps the URL (``edgeproxy.compat.imgproxy.parse``: 403, 400, 404) and then
takes the native transform route's own path (``edgeproxy.http.transform.render``: ``admit`` and ``serve``), so
caching, negotiation, moderation, redaction, purge, ETag and surrogate keys are those of the mapped
spec: an imgproxy URL and the equivalent edgeproxy URL share one rendering and one ETag.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from edgeproxy.compat.imgproxy import ImgproxyConfig, parse
from edgeproxy.errors import bad_request
from edgeproxy.http.edge import Endpoint, Handler
from edgeproxy.http.logs import AccessRecord
from edgeproxy.http.transform import render

if TYPE_CHECKING:
    from edgeproxy.compose import Components

#: Every method an HTTP client may send, as ``edgeproxy.http.app.READ``.
_READ = ("GET", "HEAD")


def handler(config: ImgproxyConfig) -> Handler:
    """The route handler for imgproxy URLs read with ``config`` (built once, at start-up)."""

    async def imgproxy(request: Request, components: Components, record: AccessRecord) -> Response:
        """A derivative, its 304 or the fallback image for an imgproxy URL; errors go to the edge."""
        raw = request.scope.get("raw_path") or request.scope["path"].encode()
        try:
            path = raw.decode("ascii")[len(config.prefix) :]
        except UnicodeDecodeError:
            raise bad_request("URL path must be ASCII (percent-encode other bytes)") from None
        record.path = path
        mapped = parse(path, config)  # the signature first: 403 whatever the rest says
        if request.scope.get("query_string"):  # not signed, and a CDN would store a copy per query
            raise bad_request("query strings are not part of signed URLs: put every option in the path")
        return await render(request, components, record, mapped.spec, mapped.origin, mapped.key)

    return imgproxy


def endpoint(config: ImgproxyConfig) -> Endpoint:
    """The edge endpoint of imgproxy URLs (``GET``/``HEAD``, cancelled when the client goes away)."""
    return Endpoint(handler(config), _READ, watch_disconnect=True)
