"""What ``edgeproxy check`` probes: ``Target`` (a signed URL and an ``Accept``), from URLs
(``url_targets``) or from every id of an image manifest in every variant (``manifest_targets``),
and what a target's URL asks for (``split_url``, through the proxy's own grammar)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from edgeproxy.errors import ProxyError
from edgeproxy.prewarm import variant_options
from edgeproxy.url.builders import UrlBuilder
from edgeproxy.url.grammar import parse_path
from edgeproxy.url.spec import TransformSpec

#: What ``check`` sends when no ``--accept`` is given: Chrome's ``Accept`` for images.
DEFAULT_ACCEPT = "image/avif,image/webp,image/apng,image/*,*/*;q=0.8"


@dataclass(frozen=True, slots=True)
class Target:
    """One probe: ``url`` (absolute, signed), sent with ``accept``; ``original`` the original's
    (width, height) in pixels when known (a manifest says), which makes ``dimensions`` exact."""

    url: str
    accept: str = DEFAULT_ACCEPT
    original: tuple[int, int] | None = None


def split_url(url: str) -> tuple[str, TransformSpec, str, str]:
    """(path without the signature, spec, origin, key) of a signed transform URL
    ``{base}/{signature}/{options...}/{origin}/{key}``.

    Raises:
        ValueError: not an http(s) URL, no signature segment, or a path the grammar refuses
            (the grammar's message: it names the option).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url}: not an http(s) URL")
    _signature, sep, rest = parts.path.lstrip("/").partition("/")
    if not sep or not rest:
        raise ValueError(f"{url}: expected /SIGNATURE/OPTIONS.../ORIGIN/KEY")
    try:
        spec, origin, key = parse_path("/" + rest)
    except ProxyError as error:
        raise ValueError(f"{url}: {error.message}") from None
    return "/" + unquote(rest), spec, origin, key


def url_targets(urls: Sequence[str], accepts: Sequence[str]) -> list[Target]:
    """One target per URL and ``Accept`` string.

    Raises:
        ValueError: a URL that is no transform URL (``split_url``).
    """
    for url in urls:
        split_url(url)
    return [Target(url, accept) for url in urls for accept in accepts]


def manifest_targets(
    manifest: Mapping[str, Any],
    variants: Sequence[str],
    *,
    base_url: str,
    key: str,
    signature_size: int = 32,
    origin: str | None = None,
    accepts: Sequence[str] = (DEFAULT_ACCEPT,),
) -> list[Target]:
    """Targets for every id of an image ``manifest`` (a JSON object: id -> ``{"origin", "key"}``
    plus optional ``width``, ``height`` in pixels of the upright original) in every variant (an
    option path, ``w:400/f:auto``), each with every ``Accept`` string; URLs signed with ``key`` as
    ``UrlBuilder`` signs them. With ``origin`` (a manifest origin's configured name) the URLs name
    the id (``/w:400/catalog/SKU-1``); without, the entry's own origin and key.

    Raises:
        ValueError: an entry that is not an object with ``origin`` and ``key`` strings (named), a
            bad variant or a key the builder refuses.
    """
    builder = UrlBuilder(base_url, key, signature_size=signature_size)
    targets: list[Target] = []
    for variant in variants:
        options = variant_options(variant)
        for ident, entry in manifest.items():
            if not isinstance(entry, Mapping) or not all(isinstance(entry.get(k), str) for k in ("origin", "key")):
                raise ValueError(f"manifest entry {ident!r}: expected an object with origin and key strings")
            width, height = entry.get("width"), entry.get("height")
            size = (width, height) if isinstance(width, int) and isinstance(height, int) else None
            try:
                url = (
                    builder.url(origin, ident, **options)
                    if origin
                    else builder.url(entry["origin"], entry["key"], **options)
                )
            except (ValueError, TypeError) as error:
                raise ValueError(f"variant {variant!r}, id {ident!r}: {error}") from None
            targets.extend(Target(url, accept, size) for accept in accepts)
    return targets
