"""Logging set-up: JSON lines (default) or plain text, for edgeproxy and uvicorn alike.

The access log (logger ``edgeproxy.access``) writes one record per request to the routes that answer
clients: transform, ``/info``, ``/purge`` (``AccessRecord.fields``; the probes and ``/metrics`` are
not logged): ``time, request_id, method, path, status, duration_ms, stages_ms,
bytes_in, bytes_out, format, accept, cache, origin, error, cdn``; request ids come from
``X-Request-ID`` when the client sends a sane one, and ``cdn`` carries the request ids that CDNs
set (``access_log_headers``), so a CDN miss can be traced to the proxy's line.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edgeproxy.errors import ProxyError
from edgeproxy.url.spec import Format

ACCESS = "edgeproxy.access"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_UNPRINTABLE = re.compile(r"[^\x21-\x7e ]")
MAX_LOGGED_PATH = 1024  # characters of the path kept in a log line
MAX_LOGGED_HEADER = 256  # characters of a CDN header kept in a log line


def request_id(header: str | None) -> str:
    """The client's ``X-Request-ID`` if it is 1-128 of ``A-Z a-z 0-9 . _ : -``, else a new UUID4 hex."""
    return header if header and _REQUEST_ID.fullmatch(header) else uuid.uuid4().hex


def header_values(headers: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    """{lower-case name: value} of the ``names`` present in ``headers``, each value cut to
    ``MAX_LOGGED_HEADER`` printable ASCII characters (others become ``?``)."""
    found = {}
    for name in names:
        value = headers.get(name)
        if value is not None:
            found[name.lower()] = _UNPRINTABLE.sub("?", value[:MAX_LOGGED_HEADER])
    return found


@dataclass(slots=True)
class AccessRecord:
    """What one request did, for its access-log line and the request metrics: written by the route
    as it learns it (the request's facts, then what the service did), read once at the end by the
    HTTP edge (``edgeproxy.http.edge``).

    ``path``: what was asked for (after the signature: options, origin, key, as sent); ``format``:
    the format of the image sent (a derivative or the fallback image), None for any other answer;
    ``accept``: the ``Accept`` bucket ``f:auto`` distinguishes (``negotiate.accept_bucket``);
    ``cache``: where the original came from (``service.originals.CacheOutcome``); ``stages``:
    seconds per metrics stage; ``bytes_in``: the original's bytes when this request rendered it;
    ``fallback``: the error a fallback image answered; ``expires``: the URL's ``exp`` (UNIX seconds)
    once it is known to be valid, which caps every answer's ``max-age``.
    """

    path: str | None = None
    origin: str | None = None
    format: Format | None = None
    accept: str | None = None
    cache: str | None = None
    stages: dict[str, float] = field(default_factory=dict)
    bytes_in: int = 0
    fallback: ProxyError | None = None
    expires: int | None = None

    def fields(
        self,
        *,
        request_id: str,
        method: str,
        status: int,
        duration: float,
        bytes_out: int,
        error: ProxyError | None,
        cdn: dict[str, str],
    ) -> dict[str, Any]:
        """The access-log line's fields (durations in milliseconds, sizes in bytes)."""
        return {
            "request_id": request_id,
            "method": method,
            "path": self.path[:MAX_LOGGED_PATH] if self.path else None,
            "status": status,
            "duration_ms": round(duration * 1000, 2),
            "stages_ms": {k: round(v * 1000, 2) for k, v in self.stages.items()},
            "bytes_in": self.bytes_in,
            "bytes_out": bytes_out,
            "format": self.format.value if self.format is not None else "none",
            "accept": self.accept,
            "cache": self.cache,
            "origin": self.origin,
            "error": error.category if error else None,
            "cdn": cdn,
        }


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (RFC 3339 UTC), ``level``, ``logger``, ``message`` and the
    record's ``fields`` dict, if any."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(getattr(record, "fields", {}))
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, separators=(",", ":"))


def logging_config(level: str, fmt: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict (also given to uvicorn as ``log_config``)."""
    formatter = {"()": JsonFormatter} if fmt == "json" else {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    handler = {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"}
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "loggers": {
            "edgeproxy": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            # httpx logs every request's full URL at INFO: purge hooks' URLs may hold a token.
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
        },
    }
