"""One exception type for every failure a client can see.

Each error carries the HTTP status, a short public message (never a stack trace or a path on disk)
and a metrics category, as imgproxy's ``errctx`` does. ``responses.HeaderPolicy.error`` turns it into a
response with a short ``Cache-Control``.
"""

from __future__ import annotations


class ProxyError(Exception):
    """A failure with an HTTP status.

    Attributes:
        status: HTTP status code (4xx or 5xx).
        message: short text for the client; safe to show (no paths, no internals).
        category: low-cardinality label for metrics and logs (``parse``, ``signature``, ``origin``,
            ``limit``, ``decode``, ``timeout``, ``overload``, ``format``).
        retry_after: seconds for a ``Retry-After`` header (503 only), else None.
        max_age: seconds of ``Cache-Control: max-age`` when the error sets its own (451), else None
            (the policy's error max-age).
        headers: extra response headers (a 451's ``Surrogate-Key``, so a purge reaches it).
    """

    def __init__(
        self,
        status: int,
        message: str,
        category: str,
        retry_after: int | None = None,
        max_age: int | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.category = category
        self.retry_after = retry_after
        self.max_age = max_age
        self.headers = headers or {}


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


def blocked(message: str, max_age: int, headers: dict[str, str]) -> ProxyError:
    """451 Unavailable For Legal Reasons (RFC 7725): moderation withholds the original (rejected,
    over the block threshold, or pending where pending is blocked); cached ``max_age`` seconds,
    with ``headers`` (its surrogate key)."""
    return ProxyError(451, message, "moderation", max_age=max_age, headers=headers)


def internal_error() -> ProxyError:
    """500: a bug; the details go to the log, never to the client."""
    return ProxyError(500, "internal error", "internal")
