"""Result storage: derivatives kept by name (their ETag) so that another pod, another worker or a
restarted process answers a CDN miss without rendering again (issue 26).

A result store keeps opaque bytes and their MIME type under a *name*: the derivative's ETag, which
covers every input that decides the bytes (the original's ETag, the options, the fingerprint of
the settings and libraries; ``service.validators.strong_etag``). A stored result is therefore
never wrong for its name, only possibly unwanted: a purge of an original (by its surrogate key,
``service.validators.surrogate_key``) deletes the results tagged with it, to free the space and to
honour a takedown; a request for a changed original computes another name and misses.

Every stored result carries its size (bytes) and SHA-256 (FIPS 180-4) of its body; ``get`` checks
both and treats a mismatch (a partial or corrupt object) as a miss: it deletes the object and
counts it in ``StoreStats.corrupt``. Writes are atomic (a reader never sees a partial object).

Two kinds, built by ``from_location``: a folder on this host (``local.LocalResultStore``, bounded
by size with LRU eviction, shared by the worker processes) and an S3 bucket under a prefix
(``s3.S3ResultStore``, shared by every pod, bounded by a bucket lifecycle rule).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from edgeproxy.origins.s3 import S3Options

#: A name or surrogate key: printable ASCII without spaces (an ETag such as ``W/"0123..."`` is one).
_TOKEN = re.compile(r"[\x21-\x7e]{1,256}")
#: A MIME type as stored (``type/subtype``, RFC 6838 §4.2 characters, no parameters).
_MIME = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}")
#: The most surrogate keys one result may carry.
MAX_KEYS = 32


class ResultStoreError(Exception):
    """The store could not do what was asked and the caller must know: a purge that could not
    delete everything (S3 unreachable, refused, timed out). ``get`` and ``put`` never raise it: a
    failed read is a miss and a failed write is skipped (both logged and counted)."""


@dataclass(frozen=True, slots=True)
class Stored:
    """A stored result: its ``body`` (the encoded image, bytes) and its ``mime`` type."""

    body: bytes
    mime: str


@dataclass(slots=True)
class StoreStats:
    """What a store did since it was built, in this process (counts; ``bytes`` is a gauge).

    - ``hits``, ``misses``: ``get`` found a valid result, or none (corrupt ones count as misses too);
    - ``corrupt``: stored objects whose size or SHA-256 did not match, deleted;
    - ``writes``: results stored; ``skipped``: results not stored (over the size bound, or failed);
    - ``evictions``: results the local store deleted to stay within its bound (LRU);
    - ``purged``: results deleted by ``purge``;
    - ``errors``: storage failures (I/O or S3 errors and timeouts), each logged;
    - ``timeouts``, ``tripped``, ``bypassed``: lookups past the guard's bound, times its circuit
      breaker opened, operations skipped while it was open (``breaker.GuardedStore``);
    - ``bytes``: bytes of the stored files this process knows of (local store only; 0 for S3).
    """

    hits: int = 0
    misses: int = 0
    corrupt: int = 0
    writes: int = 0
    skipped: int = 0
    evictions: int = 0
    purged: int = 0
    errors: int = 0
    timeouts: int = 0
    tripped: int = 0
    bypassed: int = 0
    bytes: int = 0


class ResultStore(Protocol):
    """Where derivatives are kept by name. All methods are coroutines that never block the event
    loop; a store may be used by concurrent tasks."""

    stats: StoreStats

    async def get(self, name: str) -> Stored | None:
        """The result stored as ``name``, or None (never stored, evicted, purged, expired, corrupt:
        then deleted, or unreadable: then logged).

        Raises:
            ValueError: ``name`` is not 1-256 printable ASCII characters without spaces.
        """
        ...

    async def put(self, name: str, body: bytes, *, mime: str, surrogate_keys: tuple[str, ...]) -> None:
        """Store ``body`` (bytes, a ``mime`` type such as ``image/avif``) as ``name``, tagged with
        ``surrogate_keys`` (a purge of any of them deletes it); replaces a result of that name. A
        failure to store is logged and counted, not raised: the result is simply not stored.

        Raises:
            ValueError: a name or key that is not 1-256 printable ASCII characters without spaces,
                more than ``MAX_KEYS`` keys, or a malformed ``mime``.
        """
        ...

    async def purge(self, surrogate_key: str) -> int:
        """Delete every stored result tagged with ``surrogate_key``; how many were deleted (the
        local store counts the files it deleted; the S3 store the markers it found, which may include
        results already gone: expired, or purged by another of their keys).

        Raises:
            ValueError: ``surrogate_key`` is not 1-256 printable ASCII characters without spaces.
            ResultStoreError: the storage failed part-way (some results may remain: purge again).
        """
        ...

    async def aclose(self) -> None:
        """Release the store's resources (at shutdown)."""
        ...


def from_location(location: str, *, max_bytes: int, s3: S3Options | None = None, timeout: float = 5.0) -> ResultStore:
    """The result store at ``location``: ``s3://bucket/prefix`` (``S3ResultStore``, connecting as
    ``s3`` says, each operation bounded by ``timeout`` seconds; ``max_bytes`` is not used: a bucket
    lifecycle rule bounds it) or a folder path (``LocalResultStore`` holding at most ``max_bytes``
    bytes of files; created if missing).

    Raises:
        ValueError: a malformed ``s3://`` location (``origins.s3.parse_location``), or ``max_bytes``
            under 1 for a folder.
        OSError: the folder cannot be created.
    """
    if location.startswith("s3://"):
        from edgeproxy.results.s3 import S3ResultStore

        return S3ResultStore(location, s3, timeout=timeout)
    from edgeproxy.results.local import LocalResultStore

    return LocalResultStore(location, max_bytes=max_bytes)


def is_token(text: object) -> bool:
    """Whether ``text`` is a valid name or surrogate key: 1-256 printable ASCII characters, no spaces."""
    return isinstance(text, str) and _TOKEN.fullmatch(text) is not None


def is_mime(text: object) -> bool:
    """Whether ``text`` is a MIME type as stored: ``type/subtype`` (RFC 6838 §4.2), no parameters."""
    return isinstance(text, str) and _MIME.fullmatch(text) is not None


def check_name(name: str, what: str = "name") -> str:
    """``name`` itself when it is 1-256 printable ASCII characters without spaces.

    Raises:
        ValueError: otherwise (the message says ``what`` it was).
    """
    if not is_token(name):
        raise ValueError(f"a result store {what} must be 1-256 printable ASCII characters without spaces")
    return name


def check_put(name: str, mime: str, surrogate_keys: tuple[str, ...]) -> None:
    """Check ``put``'s arguments.

    Raises:
        ValueError: see ``ResultStore.put``.
    """
    check_name(name)
    if not is_mime(mime):
        raise ValueError(f"a result store mime type must be type/subtype, not {mime[:80]!r}")
    if len(surrogate_keys) > MAX_KEYS:
        raise ValueError(f"a stored result carries at most {MAX_KEYS} surrogate keys")
    for key in surrogate_keys:
        check_name(key, "surrogate key")


def hashed(text: str) -> str:
    """The file or object name of a result name or surrogate key: SHA-256, 64 lower-case hex digits."""
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def digest(body: bytes) -> str:
    """SHA-256 of ``body``, 64 lower-case hex digits (what ``sha256sum`` prints)."""
    return hashlib.sha256(body).hexdigest()
