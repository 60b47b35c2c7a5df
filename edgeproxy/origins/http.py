"""An HTTP(S) base URL as an origin, through one shared ``httpx.AsyncClient``."""

from __future__ import annotations

import asyncio
import hashlib
from urllib.parse import quote

import httpx

from edgeproxy.errors import not_found, origin_error, timed_out, too_large
from edgeproxy.origins.base import Original
from edgeproxy.origins.guard import ForbiddenOrigin
from edgeproxy.url.keys import is_safe_key

_REDIRECTS = {301, 302, 303, 307, 308}


class HttpOrigin:
    """Originals from ``base_url`` + percent-encoded key.

    - The key is appended to the base URL's path, never resolved against it: a key with an empty,
      ``.`` or ``..`` segment, a backslash or NUL is a 404 (``is_safe_key``), so no key reaches
      another path or host (``//evil.example/x`` would otherwise be a scheme-relative URL).
    - Connections go through the client's transport, which refuses non-public addresses after DNS
      resolution (``origins.guard``): 502.
    - Redirects are followed only to the same scheme, host and port, at most ``max_redirects``.
    - The body is streamed and cut at ``max_bytes`` (413), whatever ``Content-Length`` claims.
    - ``timeout`` seconds bound the whole fetch (connect, headers and body): 504 past it.
    - 404/410 → 404; any other status or a broken connection → 502.
    - The origin's ETag (else a hash of the body) and Last-Modified are kept. Given a ``cached``
      original, the request is conditional (``If-None-Match`` with the origin's ETag, else
      ``If-Modified-Since``; RFC 9110 §13.1) and a 304 returns ``cached`` itself.
    """

    remote = True
    sidecars = True

    def __init__(
        self,
        name: str,
        base_url: str,
        client: httpx.AsyncClient,
        *,
        max_bytes: int,
        max_redirects: int = 3,
        timeout: float = 10.0,
    ):
        self.name = name
        self.base_url = base_url.rstrip("/") + "/"
        self.base = httpx.URL(self.base_url)
        self.client = client
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.timeout = timeout

    def _same_origin(self, url: httpx.URL) -> bool:
        return (url.scheme, url.host, url.port) == (self.base.scheme, self.base.host, self.base.port)

    async def fetch(self, key: str, cached: Original | None = None) -> Original:
        if not is_safe_key(key):
            raise not_found()
        url = httpx.URL(self.base_url + quote(key, safe="/"))
        try:
            async with asyncio.timeout(self.timeout):
                return await self._fetch(url, cached)
        except TimeoutError:
            raise timed_out("origin timed out") from None
        except httpx.TimeoutException:
            raise timed_out("origin timed out") from None
        except ForbiddenOrigin as exc:  # the SSRF guard's message: the kind of address, not the address
            raise origin_error(str(exc)) from None
        except httpx.HTTPError:
            raise origin_error("origin connection failed") from None

    def unchanged(self, key: str, cached: Original) -> None:
        return None  # only a conditional request can tell

    async def _fetch(self, url: httpx.URL, cached: Original | None) -> Original:
        headers = {}
        if cached is not None and cached.stamp:
            headers["If-None-Match"] = str(cached.stamp)
        elif cached is not None and cached.last_modified:
            headers["If-Modified-Since"] = cached.last_modified
        for _ in range(self.max_redirects + 1):
            async with self.client.stream("GET", url, headers=headers) as response:
                if response.status_code in _REDIRECTS:
                    target = url.join(response.headers.get("location", ""))
                    if not self._same_origin(target):
                        raise origin_error("origin redirected off its host")
                    url = target
                    continue
                if response.status_code == 304 and cached is not None:
                    return cached
                if response.status_code in (404, 410):
                    raise not_found()
                if response.status_code != 200:
                    raise origin_error(f"origin answered {response.status_code}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.max_bytes:
                    raise too_large(f"the original is over the limit of {self.max_bytes} bytes")
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise too_large(f"the original is over the limit of {self.max_bytes} bytes")
                    chunks.append(chunk)
                data = b"".join(chunks)
                stamp = response.headers.get("etag")
                etag = stamp or hashlib.blake2b(data, digest_size=16).hexdigest()
                return Original(data, etag, response.headers.get("last-modified"), stamp=stamp)
        raise origin_error("origin redirected too many times")

    async def ready(self) -> bool:
        try:
            async with asyncio.timeout(2.0):
                response = await self.client.head(self.base)
            return response.status_code < 500
        except (TimeoutError, httpx.HTTPError):
            return False

    async def aclose(self) -> None:
        return None  # the client is shared and closed by the app
