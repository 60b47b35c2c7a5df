"""Origin stores: where originals come from. One small protocol, one module per kind."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from edgeproxy.origins.base import Origin, Original
from edgeproxy.origins.http import HttpOrigin
from edgeproxy.origins.local import LocalOrigin

__all__ = ["Origin", "Original", "HttpOrigin", "LocalOrigin", "build_origins"]


def build_origins(
    locations: Mapping[str, str], *, client: httpx.AsyncClient, max_bytes: int, max_redirects: int,
    timeout: float,
) -> dict[str, Origin]:
    """One origin per configured ``name -> location`` (a folder or an http(s):// base URL)."""
    origins: dict[str, Origin] = {}
    for name, location in locations.items():
        if location.startswith(("http://", "https://")):
            origins[name] = HttpOrigin(name, location, client, max_bytes=max_bytes,
                                       max_redirects=max_redirects, timeout=timeout)
        else:
            origins[name] = LocalOrigin(name, location, max_bytes=max_bytes)
    return origins
