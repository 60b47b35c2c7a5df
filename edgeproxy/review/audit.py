"""The review audit log: one JSON object per line (JSON Lines), appended for every verdict, never
rewritten, for takedown disputes. A line::

    {"at":"2026-12-04T15:02:48Z","hash":"…64 hex…","key":"cats/tom.jpg","origin":"media",
     "previous":null,"reason":"fine","verdict":"approved","who":"ana"}

- ``at``: UTC time, ISO 8601 to the second; ``who``: the reviewer (``auth.Reviewer.who``);
- ``verdict``: the human verdict written (``approved``, ``rejected``, ``blurred``); ``previous``:
  the human verdict it replaced, or null; ``reason``: what the reviewer typed (may be empty);
- ``hash``: the SHA-256 of the original's bytes from its analysis object (``AnalysisRecord.sha256``).

Keys sorted, no spaces, UTF-8. Each line is written with one ``write`` on a file opened with
``O_APPEND`` (POSIX: every write lands at the end, so several worker processes never interleave
within a line), under a lock in this process, then flushed to disk (``fsync``).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: Most bytes read back from the end of the log for ``/review/log``.
TAIL_BYTES = 1024 * 1024


def iso(at: float) -> str:
    """Unix seconds ``at`` as UTC ISO 8601 to the second: ``2026-12-04T15:02:48Z``."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def entry(
    *, at: float, who: str, origin: str, key: str, verdict: str, reason: str, previous: str | None, hash: str
) -> dict[str, Any]:
    """One audit record (module docstring); ``at`` in Unix seconds."""
    return {
        "at": iso(at),
        "who": who,
        "origin": origin,
        "key": key,
        "verdict": verdict,
        "reason": reason,
        "previous": previous,
        "hash": hash,
    }


def line(record: Mapping[str, Any]) -> bytes:
    """``record`` as one log line (sorted keys, compact, UTF-8, ending in a newline)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


class AuditLog:
    """The audit log at ``path`` (created with its folder when missing, mode 0o600)."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = asyncio.Lock()

    def _append(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    async def append(self, record: Mapping[str, Any]) -> None:
        """Append ``record`` as one line.

        Raises:
            OSError: the log cannot be written (the verdict is already stored: the caller says so).
        """
        async with self._lock:
            await asyncio.to_thread(self._append, line(record))

    def _tail(self) -> list[bytes]:
        try:
            with self.path.open("rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(0, size - TAIL_BYTES))
                data = handle.read()
        except FileNotFoundError:
            return []
        lines = data.split(b"\n")
        if len(data) == TAIL_BYTES and size > TAIL_BYTES:
            lines = lines[1:]  # the first line may be cut
        return [item for item in lines if item.strip()]

    async def tail(self, limit: int) -> list[bytes]:
        """The last ``limit`` lines (from the last ``TAIL_BYTES`` bytes), oldest first, without newlines."""
        lines = await asyncio.to_thread(self._tail)
        return lines[-limit:]
