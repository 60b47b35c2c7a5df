"""``edgeproxy check``'s output: a fixed-width table (``table``), JSON (``as_json``) or a
Prometheus textfile for node_exporter's textfile collector (``write_textfile``)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict

from edgeproxy.check.contract import Result


def table(results: Sequence[Result]) -> str:
    """The results as a fixed-width text table, one row per probe, each failure on a line below it."""
    rows = [("", "status", "type", "size", "bytes", "ttfb ms", "decode ms", "accept", "target")]
    for r in results:
        size = f"{r.width}x{r.height}" + (f"x{r.frames}" if r.frames > 1 else "") if r.width else "-"
        kind = r.content_type.split(";")[0].removeprefix("image/") or "-"
        accept = r.accept if len(r.accept) <= 24 else r.accept[:21] + "..."
        rows.append(
            ("ok" if r.ok else "FAIL", str(r.status or "-"), kind, size, str(r.bytes), f"{r.ttfb_ms:.1f}",
             f"{r.decode_ms:.1f}", accept, r.target)
        )  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for i, row in enumerate(rows):
        lines.append(" ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i:
            lines.extend(f"    {f.check}: {f.detail}" for f in results[i - 1].failures)
    failed = sum(not r.ok for r in results)
    lines.append(f"{len(results) - failed} of {len(results)} passed" + (f"; {failed} failed" if failed else ""))
    return "\n".join(lines)


def as_json(results: Sequence[Result]) -> str:
    """The results as a JSON array: each ``Result``'s fields, ``ok``, and ``failures`` as
    ``[{"check", "detail"}]``."""
    return json.dumps([{**asdict(r), "ok": r.ok} for r in results], indent=2)


def write_textfile(results: Sequence[Result], path: str) -> None:
    """The results as Prometheus metrics in ``path``, for node_exporter's textfile collector
    (prometheus_client's ``write_to_textfile``: a temporary file renamed into place). Per target
    (``target``: the URL's path without the signature; ``accept``):
    ``edgeproxy_check_success`` (1/0), ``edgeproxy_check_failed{check}`` (1 per failed check),
    ``edgeproxy_check_ttfb_seconds``, ``edgeproxy_check_decode_seconds``,
    ``edgeproxy_check_response_bytes``; and ``edgeproxy_check_last_run_timestamp_seconds``.

    Raises:
        OSError: the file could not be written.
    """
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    registry = CollectorRegistry()
    labels = ["target", "accept"]
    success = Gauge("edgeproxy_check_success", "1 when every check of the target passed", labels, registry=registry)
    failed = Gauge("edgeproxy_check_failed", "1 for each check that failed", [*labels, "check"], registry=registry)
    ttfb = Gauge("edgeproxy_check_ttfb_seconds", "Time to the response headers", labels, registry=registry)
    decode_time = Gauge(
        "edgeproxy_check_decode_seconds", "Time libvips took to decode the answer", labels, registry=registry
    )
    size = Gauge("edgeproxy_check_response_bytes", "Bytes of the answer's body", labels, registry=registry)
    last = Gauge(
        "edgeproxy_check_last_run_timestamp_seconds", "When the check last ran (UNIX seconds)", registry=registry
    )
    for r in results:
        values = (r.target, r.accept)
        success.labels(*values).set(1 if r.ok else 0)
        for failure in r.failures:
            failed.labels(*values, failure.check).set(1)
        ttfb.labels(*values).set(r.ttfb_ms / 1000)
        decode_time.labels(*values).set(r.decode_ms / 1000)
        size.labels(*values).set(r.bytes)
    last.set(math.floor(time.time()))
    write_to_textfile(path, registry)
