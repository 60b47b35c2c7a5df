"""The image manifest format: a JSON object mapping stable ids (a SKU, a part number, an asset id) to
where the image lives, and what a page needs to show it. Pure functions and frozen values, no I/O:
the proxy's live manifests (``edgeproxy.service.manifests``) and the URL builder
(``edgeproxy.url.builders``, ``UrlBuilder(manifest=...)``) both read manifests with ``parse``.

One entry (docs/manifests.md)::

    "SKU-123": {"origin": "products", "key": "shots/123-front.jpg",       # required
                "sha256": "9f86d0...", "alt": "Red kettle, front", "width": 2400, "height": 1600,
                "focal": [0.42, 0.37], "placeholder": "#c0392b"}          # optional

- An **id** follows the URL grammar's key rules (``edgeproxy.url.keys.is_safe_key``): it is the key
  of the manifest origin in ``/{signature}/{options}/{manifest}/{id}``.
- ``origin`` names a configured origin (not a manifest: manifests do not chain), ``key`` a safe key.
- ``sha256``: 64 hex digits of the original's bytes; its first ``VERSION_DIGITS`` become the
  builders' ``v:`` option (``version``), so a replaced image gets a new URL without a purge.
- ``width``, ``height``: the upright original's size in pixels (the builders' ``original``).
- ``focal``: ``[x, y]`` fractions 0..1 of the width and height, the ``g:fp`` a URL without a
  gravity gets (``Entry.gravity``).
- ``placeholder``: a ``#rrggbb`` colour or a ``data:image/png;base64,...`` thumbnail, shown by the
  builders' ``picture`` until the image paints.

``changed(old, new)`` names the ids whose rendered image may differ (added, removed, or another
``origin``, ``key``, ``sha256`` or ``focal``): those the proxy purges when a manifest changes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Container, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from edgeproxy import boundedjson
from edgeproxy.url.keys import is_safe_key

#: Hex digits of ``sha256`` written as the builders' ``v:`` option (64 bits: no two images of one
#: catalogue share them by chance).
VERSION_DIGITS = 16
#: Deepest nesting in a manifest (the object, an entry, its ``focal``), checked before parsing.
MAX_DEPTH = 3
#: Problems quoted in one ``ManifestError`` (the rest are counted).
MAX_PROBLEMS = 5
FIELDS = frozenset({"origin", "key", "sha256", "alt", "width", "height", "focal", "placeholder"})
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PLACEHOLDER = re.compile(r"#[0-9A-Fa-f]{6}|data:image/png;base64,[A-Za-z0-9+/]{1,65536}={0,2}")
#: Longest ``alt`` text, in characters.
MAX_ALT = 1000
#: Largest ``width``/``height``, pixels (the grammar's own bound on sizes is lower; originals may be larger).
MAX_SIDE = 1_000_000

#: An empty manifest (no ids).
EMPTY: Mapping[str, Entry] = MappingProxyType({})


class ManifestError(ValueError):
    """A manifest (or an update to one) that cannot be used; ``str(error)`` names the problems, the
    first ``MAX_PROBLEMS`` of them with their ids."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One id's image: ``origin`` and ``key`` of the original, and the optional facts (module
    docstring): ``sha256`` (hex), ``alt``, ``width`` and ``height`` (pixels), ``focal`` ((x, y)
    fractions 0..1), ``placeholder``."""

    origin: str
    key: str
    sha256: str | None = None
    alt: str | None = None
    width: int | None = None
    height: int | None = None
    focal: tuple[float, float] | None = None
    placeholder: str | None = None

    @property
    def version(self) -> str | None:
        """The builders' ``v:`` value: the first ``VERSION_DIGITS`` hex digits of ``sha256``; None without one."""
        return self.sha256[:VERSION_DIGITS] if self.sha256 else None

    @property
    def renders_as(self) -> tuple[object, ...]:
        """What decides the images of this id: ``origin``, ``key``, ``sha256``, ``focal``."""
        return (self.origin, self.key, self.sha256, self.focal)

    def to_json(self) -> dict[str, Any]:
        """The entry as the manifest writes it (fields that are None left out)."""
        out: dict[str, Any] = {"origin": self.origin, "key": self.key}
        for name in ("sha256", "alt", "width", "height", "placeholder"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.focal is not None:
            out["focal"] = list(self.focal)
        return out


def _fraction(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if 0.0 <= number <= 1.0 else None


def _side(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_SIDE


def entry(item: object, origins: Container[str] | None = None) -> Entry:
    """One entry from its JSON (a dict); ``origins``: the configured origin names (None: not checked,
    as the builders do).

    Raises:
        ManifestError: not an object, a missing or unknown field, or a value outside its rules.
    """
    if not isinstance(item, dict):
        raise ManifestError('an entry is an object {"origin": NAME, "key": KEY, ...}')
    unknown = sorted(set(item) - FIELDS)
    if unknown:
        raise ManifestError(f"unknown fields {unknown}")
    origin, key = item.get("origin"), item.get("key")
    if not isinstance(origin, str) or not origin:
        raise ManifestError("origin must be a configured origin's name")
    if origins is not None and origin not in origins:
        raise ManifestError(f"unknown origin {origin!r}")
    if not isinstance(key, str) or not key or not is_safe_key(key):
        raise ManifestError("key must be a key without empty, '.' or '..' segments, backslashes or NUL")
    sha256, alt, placeholder = item.get("sha256"), item.get("alt"), item.get("placeholder")
    if sha256 is not None and not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
        raise ManifestError("sha256 must be 64 lower-case hex digits")
    if alt is not None and not (isinstance(alt, str) and len(alt) <= MAX_ALT):
        raise ManifestError(f"alt must be text of at most {MAX_ALT} characters")
    if placeholder is not None and not (isinstance(placeholder, str) and _PLACEHOLDER.fullmatch(placeholder)):
        raise ManifestError("placeholder must be #rrggbb or a data:image/png;base64 URI")
    width, height = item.get("width"), item.get("height")
    for name, side in (("width", width), ("height", height)):
        if side is not None and not _side(side):
            raise ManifestError(f"{name} must be a whole number of pixels, 1..{MAX_SIDE}")
    focal = item.get("focal")
    point: tuple[float, float] | None = None
    if focal is not None:
        xy = [_fraction(v) for v in focal] if isinstance(focal, list) and len(focal) == 2 else []
        if len(xy) != 2 or xy[0] is None or xy[1] is None:
            raise ManifestError("focal must be [x, y], fractions 0..1 of the width and height")
        point = (xy[0], xy[1])
    return Entry(origin, key, sha256, alt, width, height, point, placeholder)


def _problem(problems: list[str], text: str) -> None:
    problems.append(text)


def entries(data: object, origins: Container[str] | None = None) -> dict[str, Entry]:
    """Entries from a parsed manifest (a dict of id -> entry JSON).

    Raises:
        ManifestError: not an object, a bad id or entry (every problem counted, the first named).
    """
    if not isinstance(data, dict):
        raise ManifestError('a manifest is a JSON object {"ID": {"origin": NAME, "key": KEY, ...}, ...}')
    found: dict[str, Entry] = {}
    problems: list[str] = []
    for ident, item in data.items():
        if not is_safe_key(ident):
            _problem(problems, f"id {ident[:64]!r}: an id has no empty, '.' or '..' segment, backslash or NUL")
            continue
        try:
            found[ident] = entry(item, origins)
        except ManifestError as exc:
            _problem(problems, f"id {ident[:64]!r}: {exc}")
    if problems:
        more = len(problems) - MAX_PROBLEMS
        raise ManifestError("; ".join(problems[:MAX_PROBLEMS]) + (f"; and {more} more" if more > 0 else ""))
    return found


def parse(data: bytes, *, max_bytes: int, origins: Container[str] | None = None) -> Mapping[str, Entry]:
    """A manifest's bytes (UTF-8 JSON of at most ``max_bytes`` bytes) as a read-only mapping id ->
    ``Entry``; ``origins``: the configured origin names every entry must name (None: any name).

    Raises:
        ManifestError: over ``max_bytes``, not JSON, or a bad id or entry (``entries``).
    """
    try:
        loaded = boundedjson.loads(data, max_bytes=max_bytes, max_depth=MAX_DEPTH)
    except boundedjson.LimitError as exc:
        raise ManifestError(f"manifest too large or too deep: {exc}") from None
    except ValueError as exc:
        raise ManifestError(f"manifest is not UTF-8 JSON: {exc}") from None
    return MappingProxyType(entries(loaded, origins))


def dump(manifest: Mapping[str, Entry]) -> bytes:
    """The manifest as JSON bytes (ids sorted, one entry a line: readable diffs), that ``parse`` reads back."""
    lines = [
        f"  {json.dumps(ident)}: {json.dumps(e.to_json(), sort_keys=True)}" for ident, e in sorted(manifest.items())
    ]
    return ("{\n" + ",\n".join(lines) + "\n}\n").encode()


def updated(manifest: Mapping[str, Entry], updates: Mapping[str, Entry | None]) -> Mapping[str, Entry]:
    """``manifest`` with ``updates`` applied: an id to an ``Entry`` is set, an id to None removed."""
    merged = dict(manifest)
    for ident, value in updates.items():
        if value is None:
            merged.pop(ident, None)
        else:
            merged[ident] = value
    return MappingProxyType(merged)


def parse_updates(data: object, origins: Container[str]) -> dict[str, Entry | None]:
    """An update body (parsed JSON: id -> entry, or null to remove the id).

    Raises:
        ManifestError: not an object, empty, or a bad id or entry.
    """
    if not isinstance(data, dict) or not data:
        raise ManifestError('an update is a JSON object {"ID": {"origin": NAME, "key": KEY, ...} or null, ...}')
    removed = {ident: None for ident, item in data.items() if item is None}
    kept = entries({ident: item for ident, item in data.items() if item is not None}, origins)
    bad = [ident for ident in removed if not is_safe_key(ident)]
    if bad:
        raise ManifestError(f"id {bad[0][:64]!r}: an id has no empty, '.' or '..' segment, backslash or NUL")
    return {**kept, **removed}


def changed(old: Mapping[str, Entry], new: Mapping[str, Entry]) -> list[str]:
    """The ids whose images may differ between ``old`` and ``new``, sorted: added, removed, or with
    another ``Entry.renders_as`` (``alt``, sizes and placeholder change no pixels)."""
    ids = set(old) | set(new)
    return sorted(
        i for i in ids if (old[i].renders_as if i in old else None) != (new[i].renders_as if i in new else None)
    )
