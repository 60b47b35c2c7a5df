"""Writing beside originals: the objects edgeproxy itself keeps in an origin (analysis objects,
sidecars with a reviewer's verdict), for the origins that can be written (a local folder, an S3
bucket). An HTTP origin is read-only: ``writer_for`` gives None, and what needs a writer
(``edgeproxy ingest``, the review page's verdicts) refuses that origin at start-up.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Protocol

import obstore
from obstore.store import S3Store

from edgeproxy.origins.base import Origin
from edgeproxy.origins.local import LocalOrigin
from edgeproxy.origins.s3 import S3Origin
from edgeproxy.url.keys import is_safe_key


class Writer(Protocol):
    """Objects beside an origin's originals, by the same keys (``url.keys`` rules)."""

    async def put(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        """Store ``data`` under ``key``, replacing what is there, atomically (a reader sees the old
        object or the new one, never a part). Raises ``ValueError`` for an unsafe key, ``OSError``
        (local) or ``obstore`` errors (S3) when the write fails."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The object under ``key``, or None when there is none."""
        ...

    async def keys(self, suffix: str = "") -> list[str]:
        """Every key that ends with ``suffix``, sorted (the whole origin is listed: use it for
        bounded listings such as analysis objects, not per request)."""
        ...


class LocalWriter:
    """Files under a local origin's ``root``; writes go to a temporary file renamed over the
    target (``os.replace``: atomic on POSIX)."""

    def __init__(self, root: Path):
        self.root = root

    def _path(self, key: str) -> Path:
        if not is_safe_key(key):
            raise ValueError(f"unsafe key {key!r}")
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"key {key!r} leaves the origin's folder")
        return path

    def _put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".edgeproxy-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def put(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        await asyncio.to_thread(self._put, key, data)

    def _get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    async def get(self, key: str) -> bytes | None:
        return await asyncio.to_thread(self._get, key)

    def _keys(self, suffix: str) -> list[str]:
        found = []
        for path in self.root.rglob("*" + suffix):
            if path.is_file() and not path.name.startswith(".edgeproxy-"):
                found.append(path.relative_to(self.root).as_posix())
        return sorted(found)

    async def keys(self, suffix: str = "") -> list[str]:
        return await asyncio.to_thread(self._keys, suffix)


class S3Writer:
    """Objects in an S3 origin's bucket under its prefix (obstore: a PUT is atomic in S3)."""

    def __init__(self, store: S3Store):
        self.store = store

    async def put(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        if not is_safe_key(key):
            raise ValueError(f"unsafe key {key!r}")
        await obstore.put_async(self.store, key, data, attributes={"Content-Type": content_type})

    async def get(self, key: str) -> bytes | None:
        if not is_safe_key(key):
            raise ValueError(f"unsafe key {key!r}")
        try:
            result = await obstore.get_async(self.store, key)
        except FileNotFoundError:
            return None
        return bytes(await result.bytes_async())

    async def keys(self, suffix: str = "") -> list[str]:
        found: list[str] = []
        async for batch in obstore.list(self.store, chunk_size=1000):
            found.extend(meta["path"] for meta in batch if meta["path"].endswith(suffix))
        return sorted(found)


def writer_for(origin: Origin) -> Writer | None:
    """The writer beside ``origin``'s originals: local folders and S3 buckets; None for HTTP
    origins (read-only)."""
    if isinstance(origin, LocalOrigin):
        return LocalWriter(origin.root)
    if isinstance(origin, S3Origin):
        return S3Writer(origin.store)
    return None
