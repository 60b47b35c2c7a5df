"""Where a manifest (``edgeproxy.manifest``) is stored: a local file or an S3 object
(``s3://bucket/key``), read, watched for changes and written back. ``manifest_source`` picks one
from the ``manifest_origins`` setting's location.

- ``stamp()`` is the cheap check the reload loop runs every ``manifest_ttl`` seconds: a file's
  ``(mtime_ns, size, inode)`` (one ``stat``), an object's ETag (a HEAD-style request);
- ``read()`` returns the bytes and their stamp (at most ``max_bytes`` bytes);
- ``write(data)`` replaces the manifest atomically (a file: a temporary file in the same folder,
  flushed to disk, then renamed over it; S3: one PUT) and returns the new stamp.

Every failure is a ``SourceError`` whose message names the location and never a credential.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Hashable
from pathlib import Path
from typing import Protocol

import obstore
from obstore.exceptions import BaseError

from edgeproxy.origins.s3 import S3Options, describe_error, parse_location, s3_store, secret_values


class SourceError(Exception):
    """A manifest that cannot be read or written (missing, unreachable, refused, too large)."""


class ManifestSource(Protocol):
    """Where one manifest is stored (module docstring)."""

    location: str

    async def stamp(self) -> Hashable:
        """What changes when the manifest does. Raises ``SourceError``."""
        ...

    async def read(self) -> tuple[bytes, Hashable]:
        """(the manifest's bytes, their stamp). Raises ``SourceError`` (also over ``max_bytes``)."""
        ...

    async def write(self, data: bytes) -> Hashable:
        """Replace the manifest by ``data`` atomically; its new stamp. Raises ``SourceError``."""
        ...


class FileSource:
    """A manifest in the file ``path`` (at most ``max_bytes`` bytes)."""

    def __init__(self, path: str, *, max_bytes: int) -> None:
        self.location = path
        self.path = Path(path)
        self.max_bytes = max_bytes

    def _stamp(self) -> tuple[int, int, int]:
        try:
            stat = os.stat(self.path)
        except OSError as exc:
            raise SourceError(f"manifest {self.location}: {exc.strerror}") from None
        return stat.st_mtime_ns, stat.st_size, stat.st_ino

    async def stamp(self) -> Hashable:
        return self._stamp()  # one stat: microseconds, not worth a thread

    def _read(self) -> tuple[bytes, Hashable]:
        try:
            with open(self.path, "rb") as handle:
                stat = os.fstat(handle.fileno())
                data = handle.read(self.max_bytes + 1)
        except OSError as exc:
            raise SourceError(f"manifest {self.location}: {exc.strerror}") from None
        if len(data) > self.max_bytes:
            raise SourceError(f"manifest {self.location}: over manifest_max_bytes ({self.max_bytes} bytes)")
        return data, (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    async def read(self) -> tuple[bytes, Hashable]:
        return await asyncio.to_thread(self._read)

    def _write(self, data: bytes) -> Hashable:
        folder = self.path.parent
        try:
            fd, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=folder)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                if self.path.exists():
                    os.chmod(temporary, os.stat(self.path).st_mode & 0o777)
                os.replace(temporary, self.path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise SourceError(f"manifest {self.location}: cannot write: {exc.strerror}") from None
        return self._stamp()

    async def write(self, data: bytes) -> Hashable:
        return await asyncio.to_thread(self._write, data)


class S3Source:
    """A manifest in the S3 object ``s3://bucket/key`` (at most ``max_bytes`` bytes), reached as
    ``options`` say; each request bounded by ``timeout`` seconds."""

    def __init__(self, location: str, options: S3Options | None, *, max_bytes: int, timeout: float) -> None:
        options = options or S3Options()
        self.location = location
        bucket, self.key = parse_location(location)
        if not self.key:
            raise ValueError(f"{location!r}: name the manifest object, s3://bucket/key")
        self.max_bytes = max_bytes
        self.timeout = timeout
        self._secrets = secret_values(options)
        self.store = s3_store(bucket, "", options, timeout=timeout)

    def _error(self, what: str, exc: BaseException) -> SourceError:
        return SourceError(f"manifest {self.location}: {what}: {describe_error(exc, self._secrets)}")

    async def stamp(self) -> Hashable:
        try:
            async with asyncio.timeout(self.timeout):
                result = await obstore.get_async(self.store, self.key, options={"head": True})
        except TimeoutError:
            raise SourceError(f"manifest {self.location}: timed out after {self.timeout:g} s") from None
        except (BaseError, FileNotFoundError, OSError) as exc:
            raise self._error("cannot check", exc) from None
        return result.meta.get("e_tag")

    async def read(self) -> tuple[bytes, Hashable]:
        try:
            async with asyncio.timeout(self.timeout):
                result = await obstore.get_async(self.store, self.key)
                if result.meta["size"] > self.max_bytes:
                    raise SourceError(f"manifest {self.location}: over manifest_max_bytes ({self.max_bytes} bytes)")
                data = bytes(await result.bytes_async())
        except TimeoutError:
            raise SourceError(f"manifest {self.location}: timed out after {self.timeout:g} s") from None
        except (BaseError, FileNotFoundError, OSError) as exc:
            raise self._error("cannot read", exc) from None
        return data, result.meta.get("e_tag")

    async def write(self, data: bytes) -> Hashable:
        try:
            async with asyncio.timeout(self.timeout):
                result = await obstore.put_async(
                    self.store, self.key, data, attributes={"Content-Type": "application/json"}
                )
        except TimeoutError:
            raise SourceError(f"manifest {self.location}: timed out after {self.timeout:g} s") from None
        except (BaseError, OSError) as exc:
            raise self._error("cannot write", exc) from None
        return result.get("e_tag")


def manifest_source(location: str, *, s3: S3Options | None, max_bytes: int, timeout: float) -> ManifestSource:
    """The source of a ``manifest_origins`` location: ``s3://bucket/key`` or a file path.

    Raises:
        ValueError: a malformed ``s3://`` location (``origins.s3.parse_location``) or one without a key.
    """
    if location.startswith("s3://"):
        return S3Source(location, s3, max_bytes=max_bytes, timeout=timeout)
    return FileSource(location, max_bytes=max_bytes)
