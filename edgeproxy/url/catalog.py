"""Manifests as the URL builders see them (``UrlBuilder(manifests=...)``): an id's entry gives its
URLs a content version (``v:`` from ``sha256``) and ``picture()`` its ``alt``, size and placeholder.
The manifest format itself is ``edgeproxy.manifest`` (docs/manifests.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgeproxy import manifest

#: The largest manifest file ``UrlBuilder(manifests=...)`` reads, in bytes.
MAX_MANIFEST_BYTES = 256 * 1024 * 1024
#: A manifest given to ``UrlBuilder(manifests=...)``: a JSON file's path, or its parsed JSON (a dict).
ManifestInput = str | os.PathLike[str] | Mapping[str, Any]


def load_manifest(source: ManifestInput) -> Mapping[str, manifest.Entry]:
    """The entries of a manifest (``edgeproxy.manifest``): read from a JSON file, or taken from its
    parsed JSON; origin names are not checked (the builder does not know the proxy's).

    Raises:
        ValueError: a bad manifest (``edgeproxy.manifest.ManifestError``: a bad id or entry).
        OSError: a file that cannot be read.
    """
    if isinstance(source, Mapping):
        return manifest.entries(dict(source))
    return manifest.parse(Path(source).read_bytes(), max_bytes=MAX_MANIFEST_BYTES)


def entry_info(entry: manifest.Entry) -> dict[str, Any] | None:
    """What ``picture`` reads from ``/info`` (``width``, ``height``, ``dominant_color`` or
    ``thumbhash_png``), from a manifest entry; None when it has none of them."""
    info: dict[str, Any] = {}
    if entry.width is not None and entry.height is not None:
        info.update(width=entry.width, height=entry.height)
    if entry.placeholder is not None:
        info["dominant_color" if entry.placeholder.startswith("#") else "thumbhash_png"] = entry.placeholder
    return info or None
