"""One process's LRU index of the files of a sharded folder that other processes write to as well
(``local.LocalResultStore``'s ``objects/<2 hex>/<64 hex>``): which files there are, their sizes
and how recently each was used, without scanning the whole folder per write.

- Built at the first ``refresh`` from a scan of every shard, ordered by modification time.
- Brought up to date by ``refresh``, which scans only the shards whose folder mtime changed since
  this process last looked (a folder's mtime changes when a file is added or removed, by any
  process). Timestamps are coarse (a kernel tick), so a shard that changed within ``RACY_NS`` of
  its scan is scanned again next time: a file added in the same tick, after the scan, is not missed.
- Recency is shared through the files' mtimes: a reader sets it (``touch``), and ``evict`` checks
  it before deleting, moving a file another process used since to the recent end instead (once).

Memory: about 200 bytes per file. Methods may be called from several threads (one lock).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HEX64 = re.compile(r"[0-9a-f]{64}")
SHARDS = tuple(f"{i:02x}" for i in range(256))
#: A shard whose folder changed this close (ns) to its scan is scanned again at the next refresh.
RACY_NS = 100_000_000


@dataclass(slots=True)
class _Entry:
    size: int  # bytes of the file
    mtime_ns: int  # its modification time when this process last saw or set it


class LruIndex:
    """The files ``folder/<shard>/<64 hex>`` (the shard is the name's first two digits), least
    recently used first; ``total`` is the sum of their sizes (bytes) as this process knows them.

    ``max_bytes``: what ``evict`` brings ``total`` down to.
    """

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.total = 0
        self._lru: OrderedDict[str, _Entry] = OrderedDict()
        self._members: dict[str, set[str]] = {shard: set() for shard in SHARDS}
        self._seen: dict[str, int] = {}  # shard -> its folder's mtime at the last scan; -1: scan again
        self._lock = threading.Lock()

    def path(self, oid: str) -> Path:
        """Where the file named ``oid`` (64 hex digits) lives."""
        return self.folder / oid[:2] / oid

    def touch(self, oid: str, mtime_ns: int) -> None:
        """``oid`` was just used (its file's mtime set to ``mtime_ns``): the most recent now."""
        with self._lock:
            entry = self._lru.get(oid)
            if entry is not None:
                entry.mtime_ns = mtime_ns
                self._lru.move_to_end(oid)

    def drop(self, oid: str) -> None:
        """``oid``'s file is gone."""
        with self._lock:
            self._drop(oid)

    def add(self, oid: str, remove: Callable[[str], bool]) -> int:
        """``oid``'s file was just written: refresh, make it the most recent, then evict the least
        recently used files (``remove(oid)`` deletes one, saying whether it was there) until
        ``total`` is at most ``max_bytes``; how many were evicted.

        Raises:
            OSError: a shard folder cannot be read (the index stays usable).
        """
        with self._lock:
            self._refresh()
            with contextlib.suppress(FileNotFoundError):
                stat = self.path(oid).stat()
                self._set(oid, _Entry(stat.st_size, stat.st_mtime_ns))
            return self._evict(oid, remove)

    def _set(self, oid: str, entry: _Entry) -> None:
        old = self._lru.pop(oid, None)
        self.total += entry.size - (old.size if old else 0)
        self._lru[oid] = entry
        self._members[oid[:2]].add(oid)

    def _drop(self, oid: str) -> None:
        old = self._lru.pop(oid, None)
        if old is not None:
            self.total -= old.size
            self._members[oid[:2]].discard(oid)

    def _refresh(self) -> None:
        """Rescan the shards that changed since the last look; files new or used since are
        appended in mtime order (the first call scans every shard)."""
        now = time.time_ns()
        found: list[tuple[int, str, int]] = []
        for shard in SHARDS:
            folder = self.folder / shard
            mtime = folder.stat().st_mtime_ns
            if self._seen.get(shard) == mtime:
                continue
            present: dict[str, tuple[int, int]] = {}
            with os.scandir(folder) as entries:
                for item in entries:
                    with contextlib.suppress(FileNotFoundError):
                        if HEX64.fullmatch(item.name):
                            stat = item.stat()
                            present[item.name] = (stat.st_size, stat.st_mtime_ns)
            for oid in self._members[shard] - present.keys():
                self._drop(oid)
            for oid, (size, mtime_ns) in present.items():
                known = self._lru.get(oid)
                if known is None or known.mtime_ns < mtime_ns or known.size != size:
                    found.append((mtime_ns, oid, size))
            self._seen[shard] = mtime if now - mtime > RACY_NS else -1
        for mtime_ns, oid, size in sorted(found):
            self._set(oid, _Entry(size, mtime_ns))

    def _evict(self, keep: str, remove: Callable[[str], bool]) -> int:
        evicted, moved = 0, set()
        while self.total > self.max_bytes and self._lru:
            oid, entry = next(iter(self._lru.items()))
            if oid == keep:  # alone over the bound: cannot happen, the caller checks sizes
                break
            try:
                stat = self.path(oid).stat()
            except FileNotFoundError:
                self._drop(oid)
                continue
            if stat.st_mtime_ns > entry.mtime_ns and oid not in moved:  # used by another process since
                moved.add(oid)
                self._set(oid, _Entry(stat.st_size, stat.st_mtime_ns))
                continue
            evicted += remove(oid)
            self._drop(oid)
        return evicted
