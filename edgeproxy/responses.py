"""HTTP answers: derivatives with CDN caching headers, 304s, and errors with short caching.

Header rules (RFC 9111 caching, RFC 9110 §8.8.3 ETag and §13.1.2 If-None-Match):
- success: ``Cache-Control: public, max-age=<cache_max_age>, immutable``, strong ``ETag``,
  ``Last-Modified`` when the origin gave one, ``Vary`` only when negotiation used a request header,
  ``Surrogate-Key`` / ``Cache-Tag`` naming the original, ``Server-Timing`` with stage times;
- 304: the same validators and caching headers, no body;
- errors: ``Cache-Control: public, max-age=<error_max_age>`` (4xx) or
  ``<transient_error_max_age>`` (5xx), never ``immutable``; ``Retry-After`` on 503.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from starlette.responses import Response

from edgeproxy.errors import ProxyError


def surrogate_key(origin: str, key: str) -> str:
    """Stable tag for one original: purging it clears every derivative (``k`` + 16 hex digits)."""
    return "k" + hashlib.blake2b(f"{origin}/{key}".encode(), digest_size=8).hexdigest()


def strong_etag(*parts: str) -> str:
    """A strong ETag (quoted, 32 hex digits) over ``parts``: every input that decides the bytes."""
    digest = hashlib.blake2b("\x00".join(parts).encode(), digest_size=16).hexdigest()
    return f'"{digest}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """True when ``If-None-Match`` lists ``etag`` (strong comparison; weak tags never match).

    ``*`` is not honoured: the proxy decides to answer 304 before rendering, so ``*`` would
    validate a derivative that may not exist (an original that cannot be decoded); a cache
    revalidates with the ETag it holds.
    """
    if not if_none_match:
        return False
    return any(candidate.strip() == etag for candidate in if_none_match.split(","))


def server_timing(timings: Iterable[tuple[str, float]]) -> str:
    """``Server-Timing`` value from (stage, seconds) pairs, durations in milliseconds (W3C)."""
    return ", ".join(f"{name};dur={seconds * 1000:.1f}" for name, seconds in timings)


def error_response(error: ProxyError, *, error_max_age: int, transient_error_max_age: int,
                   extra_headers: dict[str, str] | None = None) -> Response:
    """Plain-text error answer with short caching (never ``immutable``)."""
    max_age = transient_error_max_age if error.status >= 500 else error_max_age
    headers = {"Cache-Control": f"public, max-age={max_age}", **(extra_headers or {})}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return Response(error.message + "\n", status_code=error.status, headers=headers,
                    media_type="text/plain; charset=utf-8")
