"""One exception type for every failure a client can see.

Each error carries the HTTP status, a short public message (never a stack trace or a path on disk)
and a metrics category, as imgproxy's ``errctx`` does. The HTTP edge (``edgeproxy.http.edge``) is
the one place that turns an error into a response, through ``responses.HeaderPolicy.error``: a
short ``Cache-Control`` (never ``immutable``), the surrogate key of the original it is about.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class ProxyError(Exception):
    """A failure with an HTTP status.

    Attributes:
        status: HTTP status code (4xx or 5xx).
        message: short text for the client; safe to show (no paths, no internals).
        category: low-cardinality label for metrics and logs (``parse``, ``signature``, ``origin``,
            ``limit``, ``decode``, ``timeout``, ``overload``, ``format``, ``moderation``, ``auth``,
            ``internal``).
        retry_after: seconds for a ``Retry-After`` header (503 only), else None.
        max_age: seconds of ``Cache-Control: max-age`` when the error sets its own (451), else None
            (the policy's error max-age).
        headers: extra response headers that say how to ask again (``Allow`` on a 405,
            ``WWW-Authenticate`` on a 401); never caching headers, which are the policy's.
        surrogate_key: the surrogate key of the original the error is about (a 404, 413, 415, 422,
            451, 502, 504 of a derivative or of ``/info``), so that a purge of the original clears
            the error a CDN cached; None for errors about the request itself (400, 403, 405).
        cacheable: False for an answer no cache may store (``Cache-Control: no-store``: a 405).
    """

    def __init__(
        self,
        status: int,
        message: str,
        category: str,
        retry_after: int | None = None,
        max_age: int | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        surrogate_key: str | None = None,
        cacheable: bool = True,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.category = category
        self.retry_after = retry_after
        self.max_age = max_age
        self.headers: Mapping[str, str] = dict(headers or {})
        self.surrogate_key = surrogate_key
        self.cacheable = cacheable

    def about(self, surrogate_key: str) -> ProxyError:
        """This error as an answer about the original tagged ``surrogate_key``: a copy that carries
        it (this one when it already carries a key). A copy, because one error object may answer
        several requests (a shared fetch or render, a remembered 404)."""
        if self.surrogate_key is not None:
            return self
        return ProxyError(
            self.status,
            self.message,
            self.category,
            self.retry_after,
            self.max_age,
            self.headers,
            surrogate_key=surrogate_key,
            cacheable=self.cacheable,
        )


def bad_request(message: str) -> ProxyError:
    """400: malformed URL or option; ``message`` names the option."""
    return ProxyError(400, message, "parse")


def forbidden(message: str = "invalid signature") -> ProxyError:
    """403: missing, bad or expired signature."""
    return ProxyError(403, message, "signature")


def not_found(message: str = "original not found") -> ProxyError:
    """404: unknown origin or missing original."""
    return ProxyError(404, message, "origin")


def no_route() -> ProxyError:
    """404: a path that is no route and no transform URL (one segment, e.g. ``/favicon.ico``)."""
    return ProxyError(404, "no such route", "parse")


def too_large(message: str) -> ProxyError:
    """413: original over the byte, pixel or frame limit."""
    return ProxyError(413, message, "limit")


def unsupported_format(message: str) -> ProxyError:
    """415: input format not allowed or not supported by this libvips build."""
    return ProxyError(415, message, "format")


def undecodable(message: str = "the original could not be decoded") -> ProxyError:
    """422: the original's bytes are not a valid image."""
    return ProxyError(422, message, "decode")


def origin_error(message: str = "origin error") -> ProxyError:
    """502: the origin answered with an error or broke the connection."""
    return ProxyError(502, message, "origin")


def overloaded(retry_after: int) -> ProxyError:
    """503: the render queue is full; the client should retry after ``retry_after`` seconds."""
    return ProxyError(503, "overloaded, retry later", "overload", retry_after=retry_after)


def timed_out(message: str = "timed out") -> ProxyError:
    """504: the origin or the request deadline ran out."""
    return ProxyError(504, message, "timeout")


def blocked(message: str, max_age: int, surrogate_key: str) -> ProxyError:
    """451 Unavailable For Legal Reasons (RFC 7725): moderation withholds the original (rejected,
    over the block threshold, or pending where pending is blocked); cached ``max_age`` seconds,
    with the original's ``surrogate_key``."""
    return ProxyError(451, message, "moderation", max_age=max_age, surrogate_key=surrogate_key)


def unauthorized(message: str, realm: str = "edgeproxy") -> ProxyError:
    """401: a missing or wrong credential (the admin token), with the scheme it takes in
    ``WWW-Authenticate`` (RFC 6750 §3: ``Bearer realm="..."``)."""
    return ProxyError(401, message, "auth", headers={"WWW-Authenticate": f'Bearer realm="{realm}"'})


def method_not_allowed(allowed: Iterable[str]) -> ProxyError:
    """405: the route takes other methods, named in ``Allow`` (RFC 9110 §15.5.6); never stored."""
    return ProxyError(405, "method not allowed", "parse", headers={"Allow": ", ".join(allowed)}, cacheable=False)


def internal_error() -> ProxyError:
    """500: a bug; the details go to the log, never to the client."""
    return ProxyError(500, "internal error", "internal")
