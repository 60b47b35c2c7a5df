"""The origin protocol and the original it returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Original:
    """An original's bytes and what the origin said about them.

    ``etag``: the origin's validator, or a content hash where the origin gives none; it identifies
    these exact bytes and goes into every derivative's ETag. ``last_modified``: an HTTP date or None.
    """

    data: bytes
    etag: str
    last_modified: str | None = None


def is_safe_key(key: str) -> bool:
    """Whether an object key stays inside its origin: no empty, ``.`` or ``..`` segment, no leading
    ``/``, no backslash, no NUL. Origins answer 404 for any other key (the same answer as a missing
    original, so nothing about the store's layout outside the origin is revealed)."""
    return not ("\\" in key or "\x00" in key or any(p in ("", ".", "..") for p in key.split("/")))


class Origin(Protocol):
    """Where originals live. ``fetch`` raises ``ProxyError`` 404 (missing), 413 (over
    ``max_bytes``), 502 (origin failure) or 504 (origin timeout); it never returns partial data."""

    name: str

    async def fetch(self, key: str) -> Original:
        """The original stored under ``key`` (a percent-decoded object key, may contain ``/``)."""
        ...

    async def ready(self) -> bool:
        """True when the origin is reachable (for ``/readyz``)."""
        ...

    async def aclose(self) -> None:
        """Release resources held by the origin."""
        ...
