"""HTTP answers: every response's caching headers, written by ``HeaderPolicy`` and nowhere else.

Header rules (RFC 9111 caching, RFC 9110 §8.8.3 ETag and §13.1.2 If-None-Match):
- a derivative: ``Cache-Control: public, max-age=<cache_max_age>, immutable``, its ``ETag``,
  ``Last-Modified`` when the origin gave one, ``Vary`` only when negotiation used a request header,
  ``Surrogate-Key`` / ``Cache-Tag`` naming the original; a short ``max-age`` instead when it may
  change soon (moderated, degraded by a failed model, rendered from a stale original);
- 304: the same validators and caching headers, no body;
- errors: ``Cache-Control: public, max-age=<error_max_age>`` (4xx) or
  ``<transient_error_max_age>`` (5xx), never ``immutable``; ``Retry-After`` on 503; an error about
  an original carries its ``Surrogate-Key`` / ``Cache-Tag`` (``ProxyError.surrogate_key``), as the
  fallback image standing in for it does; a 405 and the admin API's answers: ``no-store``;
- a URL with ``exp``: ``max-age`` capped at the seconds left, no ``immutable``, ``Expires``;
- ``Accept-CH`` (``client_hints``) on every cacheable answer, errors included, so a browser learns it.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import formatdate

from starlette.responses import JSONResponse, Response

from edgeproxy.errors import ProxyError
from edgeproxy.http.negotiate import ACCEPT_CH
from edgeproxy.service.results import Caching, Lifetime
from edgeproxy.service.validators import Validators

#: ``Cache-Control`` of an answer no cache may store: probes, metrics, the admin API, a 405.
NO_STORE = "no-store"
#: ``Cache-Control`` of an answer to the admin token: stored by no cache, shared or private.
PRIVATE = "private, no-store"


class ErrorForm(enum.Enum):
    """How a route writes its errors: ``TEXT`` (the message as ``text/plain``, cached as the policy
    says: the public routes) or ``JSON`` (``{"error": message}``, ``no-store``: the admin API)."""

    TEXT = "text"
    JSON = "json"


def server_timing(timings: Iterable[tuple[str, float]]) -> str:
    """``Server-Timing`` value from (stage, seconds) pairs, durations in milliseconds (W3C)."""
    return ", ".join(f"{name};dur={seconds * 1000:.1f}" for name, seconds in timings)


def surrogate_headers(keys: str) -> dict[str, str]:
    """``Surrogate-Key`` (Fastly, Varnish xkey: keys separated by spaces) and ``Cache-Tag``
    (Cloudflare: separated by commas) naming ``keys`` (one surrogate key, or several separated by
    spaces)."""
    return {"Surrogate-Key": keys, "Cache-Tag": ",".join(keys.split())}


@dataclass(frozen=True, slots=True)
class HeaderPolicy:
    """Every response's caching headers, from the settings, in one place (200, 304, fallback image,
    errors, ``/info``, the probes and the admin API alike).

    - derivatives: ``public, max-age=<max_age>, immutable``;
    - errors and fallback images: ``public, max-age=<error_max_age>`` (4xx) or
      ``<transient_error_max_age>`` (5xx), never ``immutable``;
    - a URL that expires (``exp``): ``max-age`` at most the seconds it has left (never negative),
      never ``immutable``, and ``Expires`` at the expiry time (RFC 9111 §5.3), so no cache keeps it
      past its expiry;
    - ``Accept-CH`` (``client_hints``) on every cacheable answer, errors included, so a browser learns it.
    """

    max_age: int  # seconds
    error_max_age: int  # seconds
    transient_error_max_age: int  # seconds
    client_hints: bool

    def caching(
        self,
        status: int,
        expires: int | None = None,
        now: float | None = None,
        short: int | None = None,
        stale: int | None = None,
    ) -> dict[str, str]:
        """``Cache-Control`` (and ``Expires``, ``Accept-CH``) for an answer about ``status``: the
        status of the error a fallback image stands in for, else the response's own. ``expires``:
        the URL's ``exp`` (UNIX seconds) while it is still valid, else None. ``short``: seconds of
        ``max-age`` for an answer that may change soon (a moderated or degraded derivative, a
        451): never ``immutable``; with ``stale``, ``stale-while-revalidate`` seconds too (RFC 5861:
        a cache may answer with it while it asks again; not with an ``expires``)."""
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
        if stale is not None and expires is None:
            headers["Cache-Control"] += f", stale-while-revalidate={stale}"
        if self.client_hints:
            headers["Accept-CH"] = ACCEPT_CH
        return headers

    def cache_control(self, caching: Caching, expires: int | None = None) -> dict[str, str]:
        """``caching`` (a service answer's ``Caching``) as headers (``caching``)."""
        short = caching.seconds if caching.lifetime in (Lifetime.SHORT, Lifetime.PROVISIONAL) else None
        return self.caching(caching.status, expires, short=short, stale=caching.stale)

    @staticmethod
    def no_store() -> dict[str, str]:
        """The headers of an answer no cache may store (probes, metrics, the admin API)."""
        return {"Cache-Control": NO_STORE}

    @staticmethod
    def validators(validators: Validators) -> dict[str, str]:
        """``ETag`` (when there is one), ``Surrogate-Key`` and ``Cache-Tag`` (the original's
        surrogate key: Fastly and Varnish xkey read the first, Cloudflare the second) and
        ``Last-Modified`` (when the origin gave one)."""
        headers = {"ETag": validators.etag} if validators.etag else {}
        headers.update(surrogate_headers(validators.surrogate_key))
        if validators.last_modified:
            headers["Last-Modified"] = validators.last_modified
        return headers

    def image(
        self, caching: Caching, *, vary: tuple[str, ...], expires: int | None, validators: Validators
    ) -> dict[str, str]:
        """Headers of an image answer (a derivative, its 304, or the fallback image standing in for
        an error): ``caching``, ``Vary`` when negotiation read request headers, and ``validators``."""
        headers = self.cache_control(caching, expires)
        if vary:
            headers["Vary"] = ", ".join(vary)
        headers.update(self.validators(validators))
        return headers

    def document(self, validators: Validators, *, max_age: int, private: bool) -> dict[str, str]:
        """Headers of an ``/info`` answer: cached ``max_age`` seconds (never ``immutable``), or
        ``private, no-store`` when ``private`` (an answer to the admin token); ``Vary:
        Authorization`` (the answer depends on it) and ``validators``."""
        headers = {"Cache-Control": PRIVATE} if private else self.caching(200, short=max_age)
        headers["Vary"] = "Authorization"
        headers.update(self.validators(validators))
        return headers

    def error(self, error: ProxyError, expires: int | None = None, form: ErrorForm = ErrorForm.TEXT) -> Response:
        """The answer to ``error``: its message (``form``), its status, its caching (short, or
        ``no-store`` when it may not be stored or for the ``JSON`` admin API), the original's
        surrogate key when it is about one, ``error.headers`` and ``Retry-After`` on 503."""
        if form is ErrorForm.JSON:
            return JSONResponse(
                {"error": error.message}, status_code=error.status, headers={**error.headers, **self.no_store()}
            )
        if not error.cacheable:
            headers = {**error.headers, **self.no_store()}
        else:
            headers = self.cache_control(Caching.error(error), expires)
            if error.surrogate_key is not None:
                headers.update(surrogate_headers(error.surrogate_key))
            headers.update(error.headers)
        if error.retry_after is not None:
            headers["Retry-After"] = str(error.retry_after)
        return Response(
            error.message + "\n", status_code=error.status, headers=headers, media_type="text/plain; charset=utf-8"
        )
