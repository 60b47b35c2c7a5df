"""The origin protocol and the original it returns."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

_NO_METADATA: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Original:
    """An original's bytes and what the origin said about them.

    - ``etag``: identifies these exact bytes and goes into every derivative's ETag: the origin's
      ETag, or a content hash where the origin gives none.
    - ``last_modified``: an HTTP date (RFC 9110 §5.6.7) or None.
    - ``stamp``: what the origin compares to tell that the stored original is unchanged: the
      origin's own ETag as it sent it (HTTP: sent back in ``If-None-Match``; S3: compared with the
      ETag of a HEAD), or ``(mtime_ns, size, inode)`` of a local file; None when the origin gave
      nothing to compare.
    - ``metadata``: the origin's user metadata (S3 ``x-amz-meta-*``: lower-case names without the
      prefix), e.g. a moderation verdict or provenance; empty where the origin has none.
    """

    data: bytes
    etag: str
    last_modified: str | None = None
    stamp: Hashable | None = None
    metadata: Mapping[str, str] = field(default_factory=lambda: _NO_METADATA)


class Origin(Protocol):
    """Where originals live. ``fetch`` raises ``ProxyError`` 404 (missing), 413 (over
    ``max_bytes``), 502 (origin failure) or 504 (origin timeout); it never returns partial data."""

    name: str
    #: Whether a fetch costs a network round trip (HTTP, S3): such an origin's 404s are remembered
    #: briefly (``origin_negative_ttl``); a local folder is asked every time.
    remote: bool
    #: Whether the original's metadata (a moderation verdict, provenance) comes from a sidecar
    #: ``KEY.json`` beside it (local folders, HTTP): an S3 origin has object metadata instead.
    sidecars: bool

    async def fetch(self, key: str, cached: Original | None = None) -> Original:
        """The original stored under ``key`` (a percent-decoded object key, may contain ``/``).

        With ``cached`` (an earlier answer for this key), the origin revalidates it (a conditional
        request with ``cached.stamp``, or for S3 a HEAD) and returns ``cached`` itself, the same
        object, when the stored original has not changed; a copy of ``cached`` with the same
        ``data`` object when only its metadata or ``last_modified`` changed (S3: a verdict changed
        in place keeps the ETag).
        """
        ...

    def unchanged(self, key: str, cached: Original) -> bool | None:
        """Whether ``cached`` is still the stored original, when that can be told in microseconds
        without awaiting I/O (a ``stat`` of a local file): True or False. None when only a
        conditional request can tell (HTTP, S3): the caller revalidates after ``original_cache_ttl``.
        """
        ...

    async def ready(self) -> bool:
        """True when the origin is reachable (for ``/readyz``)."""
        ...

    async def aclose(self) -> None:
        """Release resources held by the origin."""
        ...
