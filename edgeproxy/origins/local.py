"""A folder on local disk as an origin (the embedded default)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from email.utils import formatdate
from pathlib import Path

from edgeproxy.errors import ProxyError, not_found, origin_error, too_large
from edgeproxy.origins.base import Original
from edgeproxy.url.keys import is_safe_key

_log = logging.getLogger("edgeproxy.origins.local")


def _stamp(stat: os.stat_result) -> tuple[int, int, int]:
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


class LocalOrigin:
    """Originals from the files under ``root``.

    A key must name a regular file inside ``root`` after resolving symlinks: ``..`` segments,
    absolute paths, backslashes, NUL and symlinks that leave the root all give 404 (the same answer
    as a missing file, so the tree's layout outside the root is not revealed). The ETag is a BLAKE2b
    hash of the content, so it changes exactly when the bytes do. A file the process may not read
    (permissions: a mounted folder not readable by the container's user) is a 502 with a warning
    naming the origin and key, not a 404: the original exists, the deployment is at fault. The stamp is the file's
    ``(mtime_ns, size, inode)``: ``unchanged`` compares it with one ``stat`` (microseconds), so a
    replaced file (rewritten in place or renamed over) is never served from a cache.
    """

    remote = False
    sidecars = True

    def __init__(self, name: str, root: str | os.PathLike[str], *, max_bytes: int):
        self.name = name
        self.root = Path(root).resolve(strict=True)
        self.max_bytes = max_bytes

    def _path(self, key: str) -> Path:
        if not is_safe_key(key):
            raise not_found()
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise not_found()
        return path

    def _read(self, key: str) -> Original:
        path = self._path(key)
        try:
            with open(path, "rb") as handle:
                stat = os.fstat(handle.fileno())
                if not path.is_file():
                    raise not_found()
                if stat.st_size > self.max_bytes:
                    raise too_large(f"the original is over the limit of {self.max_bytes} bytes")
                data = handle.read(self.max_bytes + 1)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise not_found() from None
        except PermissionError:
            _log.warning("local origin %r cannot read %r: permission denied (uid %d)", self.name, key, os.geteuid())
            raise origin_error("the origin may not read the original (permission denied)") from None
        if len(data) > self.max_bytes:
            raise too_large(f"the original is over the limit of {self.max_bytes} bytes")
        etag = hashlib.blake2b(data, digest_size=16).hexdigest()
        return Original(data, etag, formatdate(stat.st_mtime, usegmt=True), stamp=_stamp(stat))

    async def fetch(self, key: str, cached: Original | None = None) -> Original:
        if cached is not None and self.unchanged(key, cached):
            return cached
        return await asyncio.to_thread(self._read, key)

    def unchanged(self, key: str, cached: Original) -> bool:
        """Whether the file under ``key`` still has ``cached``'s (mtime_ns, size, inode)."""
        try:
            return _stamp(os.stat(self._path(key))) == cached.stamp
        except (OSError, ProxyError):
            return False

    async def ready(self) -> bool:
        return self.root.is_dir()

    async def aclose(self) -> None:
        return None
