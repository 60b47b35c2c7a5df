"""Logging set-up: JSON lines (default) or plain text, for edgeproxy and uvicorn alike.

The access log (logger ``edgeproxy.access``) writes one record per transform request with the
fields ``time, request_id, method, status, duration_ms, stages_ms, bytes_in, bytes_out, format,
cache, origin, error``; request ids come from ``X-Request-ID`` when the client sends a sane one.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

ACCESS = "edgeproxy.access"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id(header: str | None) -> str:
    """The client's ``X-Request-ID`` if it is 1-128 of ``A-Z a-z 0-9 . _ : -``, else a new UUID4 hex."""
    return header if header and _REQUEST_ID.fullmatch(header) else uuid.uuid4().hex


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
        },
    }
