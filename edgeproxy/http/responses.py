"""HTTP answers: derivatives with CDN caching headers, 304s, and errors with short caching.

Header rules (RFC 9111 caching, RFC 9110 §8.8.3 ETag and §13.1.2 If-None-Match), all built by
``HeaderPolicy``:
- success: ``Cache-Control: public, max-age=<cache_max_age>, immutable``, strong ``ETag``,
  ``Last-Modified`` when the origin gave one, ``Vary`` only when negotiation used a request header,
  ``Surrogate-Key`` / ``Cache-Tag`` naming the original, ``Server-Timing`` with stage times;
- 304: the same validators and caching headers, no body;
- errors: ``Cache-Control: public, max-age=<error_max_age>`` (4xx) or
  ``<transient_error_max_age>`` (5xx), never ``immutable``; ``Retry-After`` on 503; an error about
  an original carries its ``Surrogate-Key`` / ``Cache-Tag`` (``ProxyError.headers``, set by the
  app), as the fallback image standing in for it does;
- a URL with ``exp``: ``max-age`` capped at the seconds left, no ``immutable``, ``Expires``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import formatdate

from starlette.responses import Response

from edgeproxy.errors import ProxyError
from edgeproxy.http.negotiate import ACCEPT_CH


def surrogate_key(origin: str, key: str) -> str:
    """Stable tag for one original: purging it clears every derivative (``k`` + 16 hex digits)."""
    return "k" + hashlib.blake2b(f"{origin}/{key}".encode(), digest_size=8).hexdigest()


def strong_etag(*parts: str) -> str:
    """A strong ETag (quoted, 32 hex digits) over ``parts``: every input that decides the bytes."""
    digest = hashlib.blake2b("\x00".join(parts).encode(), digest_size=16).hexdigest()
    return f'"{digest}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """True when ``If-None-Match`` lists ``etag`` (strong, or weak: ``W/"x"``) by the weak
    comparison (RFC 9110 §13.1.2 and §8.8.3.2): ``W/"x"`` matches ``"x"``, as caches send the
    weak form of a tag after they transform a response (Varnish after gzipping it).

    ``*`` is not honoured: the proxy decides to answer 304 before rendering, so ``*`` would
    validate a derivative that may not exist (an original that cannot be decoded); a cache
    revalidates with the ETag it holds.
    """
    if not if_none_match:
        return False
    etag = etag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == etag for candidate in if_none_match.split(","))


def server_timing(timings: Iterable[tuple[str, float]]) -> str:
    """``Server-Timing`` value from (stage, seconds) pairs, durations in milliseconds (W3C)."""
    return ", ".join(f"{name};dur={seconds * 1000:.1f}" for name, seconds in timings)


@dataclass(frozen=True, slots=True)
class HeaderPolicy:
    """Every response's caching headers, from the settings, in one place (200, 304, fallback image
    and errors alike).

    - derivatives: ``public, max-age=<max_age>, immutable``;
    - errors and fallback images: ``public, max-age=<error_max_age>`` (4xx) or
      ``<transient_error_max_age>`` (5xx), never ``immutable``;
    - a URL that expires (``exp``): ``max-age`` at most the seconds it has left (never negative),
      never ``immutable``, and ``Expires`` at the expiry time (RFC 9111 §5.3), so no cache keeps it
      past its expiry;
    - ``Accept-CH`` (``client_hints``) on every answer, errors included, so a browser learns it.
    """

    max_age: int  # seconds
    error_max_age: int  # seconds
    transient_error_max_age: int  # seconds
    client_hints: bool

    def caching(
        self, status: int, expires: int | None = None, now: float | None = None, short: int | None = None
    ) -> dict[str, str]:
        """``Cache-Control`` (and ``Expires``, ``Accept-CH``) for an answer about ``status``: the
        status of the error a fallback image stands in for, else the response's own. ``expires``:
        the URL's ``exp`` (UNIX seconds) while it is still valid, else None. ``short``: seconds of
        ``max-age`` for an answer that may change soon (a moderated or degraded derivative, a
        451): never ``immutable``."""
        if short is not None:
            max_age, immutable = short, False
        elif status < 400:
            max_age, immutable = self.max_age, True
        else:
            max_age, immutable = (self.transient_error_max_age if status >= 500 else self.error_max_age), False
        headers = {}
        if expires is not None:
            left = int(expires - (time.time() if now is None else now))
            max_age, immutable = max(0, min(max_age, left)), False
            headers["Expires"] = formatdate(expires, usegmt=True)
        headers["Cache-Control"] = f"public, max-age={max_age}" + (", immutable" if immutable else "")
        if self.client_hints:
            headers["Accept-CH"] = ACCEPT_CH
        return headers

    def image(
        self,
        status: int,
        *,
        vary: tuple[str, ...],
        expires: int | None,
        validators: dict[str, str] | None = None,
        short: int | None = None,
    ) -> dict[str, str]:
        """Headers of an image answer (a derivative, its 304, or the fallback image standing in for
        an error of ``status``): caching (``short`` as for ``caching``), ``Vary`` when negotiation
        read request headers, and ``validators`` (ETag, Last-Modified, Surrogate-Key, Cache-Tag)
        when there are any."""
        headers = self.caching(status, expires, short=short)
        if vary:
            headers["Vary"] = ", ".join(vary)
        if validators:
            headers.update(validators)
        return headers

    def error(self, error: ProxyError, expires: int | None = None) -> Response:
        """The plain-text answer to ``error``: its message, status, short caching and
        ``Retry-After`` on 503."""
        headers = self.caching(error.status, expires, short=error.max_age)
        headers.update(error.headers)
        if error.retry_after is not None:
            headers["Retry-After"] = str(error.retry_after)
        return Response(
            error.message + "\n", status_code=error.status, headers=headers, media_type="text/plain; charset=utf-8"
        )
