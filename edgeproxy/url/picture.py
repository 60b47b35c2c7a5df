"""A ``<picture>``'s parts assembled for a ``UrlBuilder``: its rules (``edgeproxy.url.layout``) turned
into signed ``srcset`` candidates, one ``<source>`` per rule and format, and the ``<img>``'s
attributes (``src``, ``srcset``, ``sizes``, ``alt``, box, loading, placeholder style:
``edgeproxy.url.markup``). ``UrlBuilder.picture`` and ``preload_link`` write them as HTML.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from edgeproxy.url.catalog import entry_info
from edgeproxy.url.layout import (
    DEFAULT_LOADING,
    MIME_TYPES,
    Layout,
    Rule,
    Source,
    art_rule,
    blur_options,
    candidates,
    capped,
    checked_art,
    checked_formats,
    checked_info,
    checked_original,
    default_rule,
    info_original,
    is_animated,
    loading_attributes,
    rule_box,
)
from edgeproxy.url.markup import checked_attrs, merge_style, placeholder_style
from edgeproxy.url.options import pop_option

if TYPE_CHECKING:
    from edgeproxy.url.builders import UrlBuilder

#: The widest ``picture`` picks for ``<img src>`` (see ``UrlBuilder.picture``), CSS pixels.
SRC_MAX_WIDTH = 1024


def picture_layout(
    builder: UrlBuilder,
    origin: str,
    key: str,
    widths: Iterable[int] | None,
    *,
    formats: Sequence[str] = ("avif", "webp"),
    sizes: str = "100vw",
    alt: str | None = None,
    original: Sequence[int] | None = None,
    aspect: float | Sequence[float] | None = None,
    loading: str | None = DEFAULT_LOADING,
    priority: bool = False,
    attrs: Mapping[str, Any] | None = None,
    art: Sequence[Mapping[str, Any]] | None = None,
    densities: Iterable[float] | None = None,
    animated: bool | None = None,
    placeholder: str | None = None,
    info: Mapping[str, Any] | None = None,
    **options: Any,
) -> Layout:
    """What ``builder.picture`` writes: its sources and the ``<img>``'s attributes, every candidate
    signed by ``builder`` (``UrlBuilder.picture`` documents the arguments).

    Raises:
        ValueError, TypeError: as ``UrlBuilder.picture``.
    """
    entry = builder.entry(origin, key)
    if entry is not None:  # what the manifest knows, unless the call says otherwise
        alt = entry.alt if alt is None else alt
        info = entry_info(entry) if info is None else info
    alt = "" if alt is None else alt
    info = checked_info(info)
    original = checked_original(original if original is not None else info_original(info))
    animated = is_animated(animated, key, info)
    fmts = checked_formats(formats, animated)
    own_format = pop_option(options, "f")
    default = default_rule(sizes, widths, densities, aspect, options)
    sources: list[Source] = []
    for rule in [art_rule(r, default) for r in checked_art(art)]:
        sources += _sources(builder, origin, key, rule, [*fmts, None], own_format, original)
    sources += _sources(builder, origin, key, default, fmts, own_format, original)
    img = _img(builder, origin, key, default, own_format, original, alt)
    img.update(loading_attributes(loading, priority))
    style = None
    if placeholder is not None:
        blur_url = builder.url(origin, key, **blur_options(default, own_format)) if placeholder == "blur" else None
        style = placeholder_style(placeholder, info, blur_url)
    extra = checked_attrs(attrs)
    style = merge_style(style, extra.pop("style", None))
    img.update(extra)
    if style:
        img["style"] = style
    return Layout(sources, img)


def _rule_candidates(rule: Rule, fmt: str | None, original: tuple[int, int] | None) -> list[tuple[str, dict[str, Any]]]:
    """``rule``'s (descriptor, options) candidates in format ``fmt`` (None: the proxy's own
    choice), capped by ``original``."""
    widths, densities = capped(rule, original)
    return candidates(widths, densities, rule.aspect, {**rule.options, "f": fmt})


def _sources(
    builder: UrlBuilder,
    origin: str,
    key: str,
    rule: Rule,
    formats: Sequence[str | None],
    own_format: Any,
    original: tuple[int, int] | None,
) -> list[Source]:
    """One ``Source`` per format of ``rule`` (None: untyped, in the ``<img>``'s format)."""
    box = rule_box(rule, original) if rule.media is not None else None
    out = []
    for fmt in formats:
        candidates = _rule_candidates(rule, fmt if fmt is not None else own_format, original)
        mime = MIME_TYPES[fmt] if fmt is not None else None
        out.append(Source(rule.media, mime, srcset_text(builder, origin, key, candidates), rule.sizes_attr(), box))
    return out


def _img(
    builder: UrlBuilder, origin: str, key: str, rule: Rule, own_format: Any, original: tuple[int, int] | None, alt: str
) -> dict[str, str | bool | None]:
    """The ``<img>``'s ``src srcset sizes alt width height`` (in that order)."""
    candidates = _rule_candidates(rule, own_format, original)
    if rule.densities is not None:
        ones = [opts for descriptor, opts in candidates if descriptor == "1x"]
        src_options = ones[0] if ones else candidates[0][1]
    else:
        widths = [opts["w"] for _, opts in candidates]
        fitting = [w for w in widths if w <= SRC_MAX_WIDTH]
        src_options = candidates[widths.index(fitting[-1] if fitting else widths[0])][1]
    img: dict[str, str | bool | None] = {
        "src": builder.url(origin, key, **src_options),
        "srcset": srcset_text(builder, origin, key, candidates),
        "sizes": rule.sizes_attr(),
        "alt": alt,
    }
    box = rule_box(rule, original)
    if box:
        img.update(width=str(box[0]), height=str(box[1]))
    return img


def srcset_text(builder: UrlBuilder, origin: str, key: str, candidates: list[tuple[str, dict[str, Any]]]) -> str:
    """A ``srcset`` value: each (descriptor, options) candidate as ``builder``'s signed URL and its
    descriptor (``320w``, ``2x``), comma-separated, in the candidates' order."""
    return ", ".join(f"{builder.url(origin, key, **opts)} {descriptor}" for descriptor, opts in candidates)
