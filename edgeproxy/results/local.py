"""A result store in a folder on this host, bounded in size with LRU eviction, shared by every worker
process that opens the same folder (``uvicorn --workers N`` or several containers on one volume).

Layout (all names are SHA-256 hex digits, ``store.hashed``)::

    objects/<2 hex>/<sha256(name)>   one file per result: a JSON header line, then the body
    keys/<sha256(key)>/<sha256(name)>  an empty marker per surrogate key of a result
    tmp/                               files being written

The header holds the name, the MIME type, the body's size (bytes) and SHA-256, and the surrogate
keys; ``get`` checks all of them and deletes a file that does not match (counted as corrupt).

No locks are needed for correctness; every step is one atomic filesystem operation:

- A result is written to ``tmp/`` and moved into place with ``os.replace`` (rename(2) is atomic):
  a reader sees the old file, the new one or none, never a part. A crash leaves a file in ``tmp/``
  (deleted after an hour) or, should the disk lose a write, a file whose SHA-256 fails: a miss.
  No fsync: a lost result is only a re-render.
- ``put`` writes the markers, then the file, then checks that its markers are still there (else
  deletes the file); ``purge`` and eviction delete the markers, then the file. So a purge that
  lists a marker deletes the result, whichever order the steps of a concurrent ``put`` take; a put
  that starts after the purge listed the markers survives it (its render may have started before,
  which is harmless: a name covers every input of its bytes, so the result is right for its name).
- Races that remain, all harmless: two processes writing one name (both files are valid; one
  wins); an eviction or purge deleting a file another process is reading (the open file stays
  readable); a corrupt file deleted just after another process replaced it (a later miss); a key's
  folder removed as a put adds a marker to it (the put recreates it and retries).

The bound: each process keeps an LRU index of the files (``index.LruIndex``: built from their
mtimes at the first write, then updated by scanning only the shards changed since, never the
whole folder per write); a read sets the file's mtime, so recency is shared between processes.
After the last write every process has seen, the files hold at most ``max_bytes`` bytes (headers
included; filesystem blocks are not counted); while writes are under way the total may exceed it
by the results being written. Needs a local filesystem (or one whose folder mtimes are coherent);
for storage shared across hosts use S3.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edgeproxy.results.index import HEX64, SHARDS, LruIndex
from edgeproxy.results.store import (
    ResultStoreError,
    Stored,
    StoreStats,
    check_name,
    check_put,
    digest,
    hashed,
    is_mime,
    is_token,
)

_log = logging.getLogger("edgeproxy.results")
#: The longest header line read (bytes); a longer one is corrupt.
HEADER_LIMIT = 16 * 1024
#: Files left in ``tmp/`` (a crash while writing) are deleted at start once this old (seconds).
TMP_MAX_AGE = 3600.0

Outcome = Literal["hit", "miss", "corrupt", "error"]
Written = Literal["stored", "skipped", "error"]


@dataclass(frozen=True, slots=True)
class _Header:
    name: str
    mime: str
    size: int
    sha256: str
    keys: tuple[str, ...]


class LocalResultStore:
    """Results in ``folder`` (created if missing), at most ``max_bytes`` bytes of files, the least
    recently read or written evicted first; see the module docstring for the layout and the races.
    File I/O runs in threads (``asyncio.to_thread``), never on the event loop, except here: the
    constructor creates the folders and deletes stale files in ``tmp/`` (call it at start-up).

    Raises:
        ValueError: ``max_bytes`` under 1.
        OSError: the folder or its sub-folders cannot be created.
    """

    def __init__(self, folder: str | os.PathLike[str], *, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError("a local result store needs max_bytes of at least 1")
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.stats = StoreStats()
        self._objects, self._keys, self._tmp = self.folder / "objects", self.folder / "keys", self.folder / "tmp"
        for shard in SHARDS:
            (self._objects / shard).mkdir(parents=True, exist_ok=True)
        self._keys.mkdir(exist_ok=True)
        self._tmp.mkdir(exist_ok=True)
        self._clean_tmp()
        self._index = LruIndex(self._objects, max_bytes)

    async def get(self, name: str) -> Stored | None:
        check_name(name)
        stored, outcome = await asyncio.to_thread(self._get, name)
        if outcome == "hit":
            self.stats.hits += 1
        else:
            self.stats.misses += 1
            self.stats.corrupt += outcome == "corrupt"
            self.stats.errors += outcome == "error"
        return stored

    async def put(self, name: str, body: bytes, *, mime: str, surrogate_keys: tuple[str, ...]) -> None:
        check_put(name, mime, surrogate_keys)
        written, evicted = await asyncio.to_thread(self._put, name, body, mime, surrogate_keys)
        self.stats.writes += written == "stored"
        self.stats.skipped += written != "stored"
        self.stats.errors += written == "error"
        self.stats.evictions += evicted
        self.stats.bytes = self._index.total

    async def purge(self, surrogate_key: str) -> int:
        check_name(surrogate_key, "surrogate key")
        try:
            count = await asyncio.to_thread(self._purge, hashed(surrogate_key))
        except OSError as exc:
            self.stats.errors += 1
            raise ResultStoreError(f"result store {self.folder}: purge failed: {exc}") from exc
        self.stats.purged += count
        self.stats.bytes = self._index.total
        return count

    async def aclose(self) -> None:
        return None  # nothing held open between calls

    # The blocking parts, each run in a thread.

    def _get(self, name: str) -> tuple[Stored | None, Outcome]:
        oid = hashed(name)
        path = self._path(oid)
        try:
            with path.open("rb") as file:
                line, body = file.readline(HEADER_LIMIT), file.read()
        except FileNotFoundError:
            return None, "miss"
        except OSError as exc:
            _log.warning("result store %s: cannot read %s: %s", self.folder, path, exc)
            return None, "error"
        header = _parse(line, name)
        if header is None or len(body) != header.size or digest(body) != header.sha256:
            _log.warning("result store %s: %s is corrupt or partial: deleted", self.folder, path)
            self._remove(oid, header.keys if header else ())
            self._index.drop(oid)
            return None, "corrupt"
        now = time.time_ns()
        with contextlib.suppress(FileNotFoundError):  # evicted meanwhile: the bytes read are still valid
            os.utime(path, ns=(now, now))
            self._index.touch(oid, now)
        return Stored(body, header.mime), "hit"

    def _put(self, name: str, body: bytes, mime: str, keys: tuple[str, ...]) -> tuple[Written, int]:
        oid = hashed(name)
        header = {"name": name, "mime": mime, "size": len(body), "sha256": digest(body), "keys": list(keys)}
        line = json.dumps(header, separators=(",", ":")).encode("ascii") + b"\n"
        if len(line) + len(body) > self.max_bytes or len(line) > HEADER_LIMIT:
            return "skipped", 0
        markers = [self._keys / hashed(key) / oid for key in keys]
        path = self._path(oid)
        try:
            for marker in markers:
                _touch(marker)
            fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix=oid[:16])
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(line)
                    file.write(body)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            if not all(marker.exists() for marker in markers):  # purged while it was being written
                path.unlink(missing_ok=True)
                return "skipped", 0
        except OSError as exc:
            _log.warning("result store %s: cannot store a result: %s", self.folder, exc)
            return "error", 0
        try:
            return "stored", self._index.add(oid, lambda victim: self._remove(victim, None))
        except OSError as exc:
            _log.warning("result store %s: cannot scan for eviction: %s", self.folder, exc)
            return "error", 0

    def _purge(self, kid: str) -> int:
        folder = self._keys / kid
        try:
            oids = [oid for oid in os.listdir(folder) if HEX64.fullmatch(oid)]
        except FileNotFoundError:
            return 0
        count = 0
        for oid in oids:
            (folder / oid).unlink(missing_ok=True)  # this marker first (see the module docstring)
            count += self._remove(oid, None)
            self._index.drop(oid)
        with contextlib.suppress(OSError):
            folder.rmdir()  # not empty: a put added a marker since
        return count

    # Helpers (blocking).

    def _path(self, oid: str) -> Path:
        return self._index.path(oid)

    def _remove(self, oid: str, keys: tuple[str, ...] | None) -> bool:
        """Delete a result's markers, then its file (``keys`` None: read them from its header);
        whether the file was there. The caller drops it from the index."""
        path = self._path(oid)
        if keys is None:
            try:
                with path.open("rb") as file:
                    header = _parse(file.readline(HEADER_LIMIT), None)
            except FileNotFoundError:
                header = None
            keys = header.keys if header else ()
        for key in keys:
            (self._keys / hashed(key) / oid).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                (self._keys / hashed(key)).rmdir()
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def _clean_tmp(self) -> None:
        cutoff = time.time() - TMP_MAX_AGE
        with os.scandir(self._tmp) as entries:
            for item in entries:
                with contextlib.suppress(OSError):
                    if item.stat().st_mtime < cutoff:
                        os.unlink(item.path)


def _touch(marker: Path) -> None:
    """Create an empty marker file, and its folder; retried when a purge or an eviction removes the
    folder in between (it removes a key's folder when it holds no marker)."""
    for _ in range(3):
        try:
            marker.parent.mkdir(exist_ok=True)
            marker.touch()
            return
        except FileNotFoundError:
            continue
    marker.parent.mkdir(exist_ok=True)
    marker.touch()


def _parse(line: bytes, name: str | None) -> _Header | None:
    """The header line of a result file, or None when it is malformed or names another result."""
    if not line.endswith(b"\n"):
        return None
    try:
        data = json.loads(line)
        header = _Header(data["name"], data["mime"], data["size"], data["sha256"], tuple(data["keys"]))
    except (ValueError, KeyError, TypeError):
        return None
    valid = (
        is_token(header.name)
        and is_mime(header.mime)
        and type(header.size) is int
        and isinstance(header.sha256, str)
        and all(is_token(key) for key in header.keys)
    )
    if not valid or (name is not None and header.name != name):
        return None
    return header
