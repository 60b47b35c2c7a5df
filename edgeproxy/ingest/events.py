"""What to analyse: uploads (origin, key, time) read from S3 event notifications (the JSON body of an
SQS message, AWS "Event message structure", version 2.x) or from a local folder's changes.

Only originals are analysed: the objects edgeproxy keeps beside them (analysis objects
``KEY.analysis.json``, sidecars ``KEY.json``) are never uploads, so writing a record does not trigger
another analysis.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from edgeproxy import boundedjson
from edgeproxy.ingest.record import is_analysis_key
from edgeproxy.origins.s3 import parse_location
from edgeproxy.service.originals import SIDECAR_SUFFIX

#: Largest message body read (bytes): SQS's own limit is 256 KiB.
MAX_BODY = 256 * 1024


@dataclass(frozen=True, slots=True)
class Upload:
    """One original to analyse: the configured ``origin``'s ``key`` (percent-decoded, as in URLs),
    stored at ``uploaded_at`` (Unix seconds: the event's ``eventTime``, or the file's mtime)."""

    origin: str
    key: str
    uploaded_at: float


def is_original(key: str) -> bool:
    """Whether ``key`` may be an original: not an analysis object, not a sidecar ``KEY.json``."""
    return not is_analysis_key(key) and not key.endswith(SIDECAR_SUFFIX)


def s3_buckets(origins: Mapping[str, str]) -> dict[str, list[tuple[str, str]]]:
    """The S3 origins among ``origins`` (name -> location) by bucket: ``{bucket: [(prefix, name)]}``,
    longest prefix first (the most specific origin wins)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for name, location in origins.items():
        if location.startswith("s3://"):
            bucket, prefix = parse_location(location)
            found.setdefault(bucket, []).append((prefix, name))
    for entries in found.values():
        entries.sort(key=lambda entry: len(entry[0]), reverse=True)
    return found


def s3_uploads(body: str | bytes, buckets: Mapping[str, list[tuple[str, str]]]) -> list[Upload]:
    """The uploads an S3 event notification announces: its ``ObjectCreated:*`` records whose bucket
    and key fall under a configured S3 origin (``s3_buckets``) and whose key is an original
    (``is_original``). Object keys come URL-encoded in events (``+`` for a space): decoded here.
    S3's ``s3:TestEvent`` and records of other events or buckets give nothing.

    Raises:
        ValueError: not JSON, not an object, or a record without its bucket, key or time.
    """
    message = boundedjson.loads(body if isinstance(body, bytes) else body.encode(), max_bytes=MAX_BODY, max_depth=16)
    if not isinstance(message, dict):
        raise ValueError("the message is not a JSON object")
    if message.get("Event") == "s3:TestEvent":
        return []
    records = message.get("Records")
    if not isinstance(records, list):
        raise ValueError("the message is neither an S3 event notification nor S3's test event")
    uploads = []
    for record in records:
        try:
            if not str(record["eventName"]).startswith("ObjectCreated:"):
                continue
            bucket = str(record["s3"]["bucket"]["name"])
            key = unquote_plus(str(record["s3"]["object"]["key"]))
            when = _timestamp(record["eventTime"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed S3 event record: {type(exc).__name__}: {exc}") from None
        for prefix, origin in buckets.get(bucket, ()):
            if not prefix or key.startswith(prefix + "/"):
                inner = key[len(prefix) + 1 :] if prefix else key
                if inner and is_original(inner):
                    uploads.append(Upload(origin, inner, when))
                break
    return uploads


def _timestamp(value: Any) -> float:
    """Unix seconds of an ISO 8601 time such as ``2026-12-04T15:03:42.643Z``."""
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
