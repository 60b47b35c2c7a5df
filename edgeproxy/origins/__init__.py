"""Origin stores: where originals come from. One small protocol, one module per kind."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from edgeproxy.origins.base import Origin, Original
from edgeproxy.origins.http import HttpOrigin
from edgeproxy.origins.local import LocalOrigin
from edgeproxy.origins.s3 import S3Options, S3Origin

__all__ = ["Origin", "Original", "HttpOrigin", "LocalOrigin", "S3Options", "S3Origin", "build_origins"]


def build_origins(
    locations: Mapping[str, str],
    *,
    client: httpx.AsyncClient,
    max_bytes: int,
    max_redirects: int,
    timeout: float,
    s3: S3Options | None = None,
) -> dict[str, Origin]:
    """One origin per configured ``name -> location``: a folder, an http(s):// base URL (through
    ``client``) or ``s3://bucket/prefix`` (connecting as ``s3`` says)."""
    origins: dict[str, Origin] = {}
    for name, location in locations.items():
        if location.startswith(("http://", "https://")):
            origins[name] = HttpOrigin(
                name, location, client, max_bytes=max_bytes, max_redirects=max_redirects, timeout=timeout
            )
        elif location.startswith("s3://"):
            origins[name] = S3Origin(name, location, s3, max_bytes=max_bytes, timeout=timeout)
        else:
            origins[name] = LocalOrigin(name, location, max_bytes=max_bytes)
    return origins
