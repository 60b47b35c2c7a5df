"""The candidates and boxes of a ``<picture>`` (``edgeproxy.url.builders.UrlBuilder.picture``): its
rules (the default one and art direction's), widths capped by what the original fills, densities,
``width``/``height`` attributes, and the checks of ``picture``'s arguments.

Pure functions of numbers and option dicts (no signing, no HTML): ``edgeproxy.url.builders`` turns
what they return into signed URLs and ``edgeproxy.url.markup`` into attributes. Rounding is half
up (``half_up``), as JavaScript's ``Math.round``, so ``clients/js`` gets the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from edgeproxy.url.media import OUTPUT_MIME
from edgeproxy.url.options import format_value, short_names
from edgeproxy.url.spec import Format

#: ``<source type>`` of each output format ``picture`` can offer (``edgeproxy.url.media``), in this order.
MIME_TYPES: dict[str, str] = {
    fmt.value: OUTPUT_MIME[fmt] for fmt in (Format.AVIF, Format.WEBP, Format.JXL, Format.JPEG, Format.PNG)
}


#: The blur placeholder's derivative (``picture(..., placeholder="blur")``): width in pixels, blur
#: sigma in pixels, quality. A few hundred bytes, scaled up by the browser under ``center/cover``.
PLACEHOLDER_WIDTH, PLACEHOLDER_BLUR, PLACEHOLDER_QUALITY = 24, 2, 30
# picture's loading when not given: lazy, or eager with priority.
DEFAULT_LOADING: Any = object()


def half_up(value: float) -> int:
    """``value`` rounded half up (Python's ``round`` rounds half to even; JavaScript's
    ``Math.round`` half up: this is the rule both builders use)."""
    return math.floor(value + 0.5)


def ratio_height(width: int, aspect: float | Sequence[float]) -> int:
    """Height in pixels for ``width`` at ``aspect``, ``(w, h)`` or a float w/h, rounded half up.

    Raises:
        ValueError: an aspect that is not two positive numbers or one positive number.
    """
    if isinstance(aspect, list | tuple):
        if len(aspect) != 2 or not all(is_positive(v) for v in aspect):
            raise ValueError(f"aspect must be (width, height), two positive numbers, got {aspect!r}")
        return half_up(width * aspect[1] / aspect[0])
    if not isinstance(aspect, int | float) or not is_positive(aspect):
        raise ValueError(f"aspect must be (width, height) or a positive number width/height, got {aspect!r}")
    return half_up(width / aspect)


def is_positive(value: object) -> bool:
    """``value`` is a finite int or float above 0 (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def ascending(values: Iterable[Any], name: str, kind: str) -> list[Any]:
    """``values`` (widths or densities) sorted ascending without repeats.

    Raises:
        TypeError: a str or bytes instead of a list.
        ValueError: no values.
    """
    if isinstance(values, str | bytes):
        raise TypeError(f"{name} is a list of {kind}")
    ordered = sorted(set(values))
    if not ordered:
        raise ValueError(f"{name} is empty")
    return ordered


def img_box(
    widest: int, original: Sequence[int] | None, aspect: float | Sequence[float] | None
) -> tuple[int, int] | None:
    """(width, height) attributes of ``picture``'s ``<img>``, or None when unknown."""
    if original is not None:
        widest = min(widest, original[0])
    if aspect is not None:
        return widest, ratio_height(widest, aspect)
    if original is not None:
        return widest, half_up(widest * original[1] / original[0])
    return None


@dataclass(frozen=True)
class Rule:
    """One set of candidates: the default (``media`` None) or an art direction rule."""

    media: str | None
    sizes: str
    widths: list[int] | None
    densities: list[float] | None
    aspect: float | Sequence[float] | None
    options: dict[str, Any]  # short names, no format

    def sizes_attr(self) -> str | None:
        """The ``sizes`` attribute: none for ``x`` descriptors."""
        return None if self.densities is not None else self.sizes

    def shape(self) -> float | Sequence[float] | None:
        """The candidates' aspect ratio when the builder knows it: ``aspect``, else the ``ar``
        option (``"16:9"``, ``(16, 9)`` or a number), for the box and the cap; None otherwise."""
        if self.aspect is not None:
            return self.aspect
        return ar_value(self.options.get("ar"))


@dataclass(frozen=True)
class Source:
    """One ``<source>``: its media query, type (None: untyped), candidates and box."""

    media: str | None
    mime: str | None
    srcset: str
    sizes: str | None
    box: tuple[int, int] | None

    def attributes(self) -> dict[str, str | bool | None]:
        """``media type srcset sizes width height``, in that order (None: left out)."""
        out: dict[str, str | bool | None] = {
            "media": self.media,
            "type": self.mime,
            "srcset": self.srcset,
            "sizes": self.sizes,
        }
        if self.box:
            out.update(width=str(self.box[0]), height=str(self.box[1]))
        return out


@dataclass(frozen=True)
class Layout:
    """What ``picture`` writes: the ``<source>``s in order and the ``<img>``'s attributes."""

    sources: list[Source]
    img: dict[str, str | bool | None]


def ar_value(value: object) -> float | tuple[float, float] | None:
    """An ``ar`` option's ratio as ``aspect`` takes it, or None when it is not one (the option's own
    check says why)."""
    if isinstance(value, str):
        value = value.split(":")
    try:
        if isinstance(value, list | tuple) and len(value) in (1, 2):
            numbers = [float(v) for v in value]
            pair = (numbers[0], numbers[1] if len(numbers) == 2 else 1.0)
            return pair if all(is_positive(v) for v in pair) else None
        return float(value) if isinstance(value, int | float) and is_positive(value) else None
    except (TypeError, ValueError):
        return None


def listed(values: Iterable[Any] | None) -> list[Any] | None:
    """``values`` as a list (None stays None). Raises ValueError: a str, bytes or non-iterable."""
    if values is None:
        return None
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ValueError(f"widths and densities are lists of numbers, got {values!r}")
    return list(values)


def checked_widths(widths: Iterable[Any]) -> list[int]:
    """``widths`` sorted without repeats. Raises ValueError: empty, or not whole CSS pixels."""
    ordered = ascending(widths, "widths", "integers")
    for w in ordered:
        if not isinstance(w, int) or isinstance(w, bool):
            raise ValueError(f"widths are whole CSS pixels, got {w!r}")
    return ordered


def aspect_pair(aspect: float | Sequence[float]) -> tuple[float, float]:
    """``aspect`` as (w, h); a number r is (r, 1). Raises ValueError as ``ratio_height``."""
    ratio_height(1, aspect)  # checks it
    if isinstance(aspect, list | tuple):
        return float(aspect[0]), float(aspect[1])
    return float(aspect) if isinstance(aspect, int | float) else 0.0, 1.0


def widest_width(original: tuple[int, int], aspect: float | Sequence[float] | None) -> int:
    """The widest candidate the proxy renders from ``original`` without enlarging: its width, and
    with ``aspect`` (w, h) at most its height × w / h (rounded down)."""
    if aspect is None:
        return original[0]
    aw, ah = aspect_pair(aspect)
    return max(1, min(original[0], math.floor(original[1] * aw / ah)))


def capped(rule: Rule, original: tuple[int, int] | None) -> tuple[list[int] | None, list[float] | None]:
    """``rule``'s widths (or densities) without those the original cannot fill; a width list that
    lost some gains the widest the original fills, with its true descriptor."""
    if original is None or (rule.widths is None) == (rule.densities is None):
        return rule.widths, rule.densities
    cap = widest_width(original, rule.shape())
    if rule.widths is not None:
        widths = checked_widths(rule.widths)
        kept = [w for w in widths if w <= cap]
        return (kept if len(kept) == len(widths) else [*kept, cap]), None
    width = rule.options.get("w")
    densities = ascending(rule.densities or [], "densities", "numbers")
    if not isinstance(width, int) or isinstance(width, bool) or not all(is_positive(d) for d in densities):
        return None, densities  # _candidates says what is wrong
    return None, densities[:1] + [d for d in densities[1:] if width * d <= cap]


def rule_box(rule: Rule, original: tuple[int, int] | None) -> tuple[int, int] | None:
    """``width``/``height`` attributes (pixels) for ``rule``'s images, or None when unknown."""
    if rule.densities is not None:
        width, height = rule.options.get("w"), rule.options.get("h")
        if not isinstance(width, int) or isinstance(width, bool):
            return None
        if isinstance(height, int) and not isinstance(height, bool):
            return width, height
        shape = rule.shape()
        if shape is not None:
            return width, ratio_height(width, shape)
        return (width, half_up(width * original[1] / original[0])) if original else None
    widths, _ = capped(rule, original)
    return img_box(widths[-1], original, rule.shape()) if widths else None


def default_rule(
    sizes: str,
    widths: Iterable[int] | None,
    densities: Iterable[float] | None,
    aspect: float | Sequence[float] | None,
    options: dict[str, Any],
) -> Rule:
    """``picture``'s own candidates. Raises ValueError: densities without a numeric width or
    height (a fixed-size image has one), a ``sizes`` that is not a str."""
    rule = Rule(None, sizes, listed(widths), listed(densities), aspect, short_names(options))
    if rule.densities is not None and not (is_whole(rule.options.get("w")) or is_whole(rule.options.get("h"))):
        raise ValueError("picture with densities needs a numeric width or height (a fixed-size image)")
    if not isinstance(sizes, str):
        raise ValueError(f"sizes is a str, got {sizes!r}")
    return rule


def checked_info(info: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """``info`` (``/info``'s JSON) or None. Raises TypeError: anything but a mapping."""
    if info is not None and not isinstance(info, Mapping):
        raise TypeError(f"info is the /info JSON, a dict, not {type(info).__name__}")
    return info


def info_original(info: Mapping[str, Any] | None) -> tuple[int, int] | None:
    """``(width, height)`` from ``/info``'s JSON, or None."""
    if info is None:
        return None
    width, height = info.get("width"), info.get("height")
    return (width, height) if is_whole(width) and is_whole(height) else None


def is_whole(value: object) -> TypeGuard[int]:
    """``value`` is an int above 0 (not a bool): a pixel size or a page count."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def checked_original(original: Sequence[int] | None) -> tuple[int, int] | None:
    """``original`` as ``(width, height)`` pixels, or None. Raises ValueError: not two positive integers."""
    if original is None:
        return None
    if not isinstance(original, list | tuple) or len(original) != 2 or not all(is_whole(v) for v in original):
        raise ValueError(f"original must be (width, height), two positive integers (pixels), got {original!r}")
    return original[0], original[1]


def is_animated(animated: bool | None, key: str, info: Mapping[str, Any] | None) -> bool:
    """``animated`` as given, else ``/info``'s ``pages`` above 1, else a ``.gif`` key."""
    if animated is not None:
        if not isinstance(animated, bool):
            raise ValueError(f"animated must be True, False or None, got {animated!r}")
        return animated
    pages = info.get("pages") if info is not None else None
    if is_whole(pages):
        return pages > 1
    return isinstance(key, str) and key.lower().endswith(".gif")


def checked_formats(formats: Sequence[str], animated: bool) -> list[str]:
    """``formats`` lower-cased, AVIF dropped for an animated original. Raises ValueError: an
    unknown format or one given twice."""
    if isinstance(formats, str):
        raise ValueError(f"formats is a list of formats, got {formats!r}")
    fmts = [str(f).lower() for f in formats]
    unknown = [f for f in fmts if f not in MIME_TYPES]
    if unknown:
        raise ValueError(f"formats {unknown}: <source> types are known for {'|'.join(MIME_TYPES)}")
    if len(set(fmts)) != len(fmts):
        raise ValueError(f"a format is given twice in {fmts}")
    return [f for f in fmts if not (animated and f == "avif")]


def checked_art(art: Sequence[Mapping[str, Any]] | None) -> list[Mapping[str, Any]]:
    """``art``'s rules as a list (None: none). Raises ValueError: not a list or tuple."""
    if art is None:
        return []
    if not isinstance(art, list | tuple):
        raise ValueError(f"art is a list of rules (dicts with a media query), got {type(art).__name__}")
    return list(art)


def art_rule(rule: Mapping[str, Any], default: Rule) -> Rule:
    """One art direction rule on top of the default. Raises ValueError: not a dict, no ``media``,
    a ``format``, or an unknown key."""
    if not isinstance(rule, Mapping):
        raise ValueError(f"an art rule is a dict with a media query, got {rule!r}")
    options = dict(rule)
    media = options.pop("media", None)
    if not isinstance(media, str) or not media.strip():
        raise ValueError(f"an art rule needs media, a media query such as '(max-width: 599px)', got {media!r}")
    aspect = options.pop("aspect", None)
    sizes = options.pop("sizes", default.sizes)
    widths, densities = listed(options.pop("widths", None)), listed(options.pop("densities", None))
    if widths is None and densities is None:
        widths, densities = default.widths, default.densities
    own = short_names(options)
    if "f" in own:
        raise ValueError("an art rule takes the picture's formats: give no format in a rule")
    if not isinstance(sizes, str):
        raise ValueError(f"an art rule's sizes is a str, got {sizes!r}")
    return Rule(media, sizes, widths, densities, aspect, {**default.options, **own})


def loading_attributes(loading: str | None, priority: bool) -> dict[str, str | bool | None]:
    """``loading``, ``fetchpriority`` and ``decoding`` of the ``<img>``. Raises ValueError."""
    if not isinstance(priority, bool):
        raise ValueError(f"priority must be True or False, got {priority!r}")
    if loading is DEFAULT_LOADING:
        loading = "eager" if priority else "lazy"
    if loading not in ("lazy", "eager", None):
        raise ValueError(f"loading must be 'lazy', 'eager' or None, got {loading!r}")
    return {"loading": loading, "fetchpriority": "high" if priority else None, "decoding": "async"}


def blur_options(rule: Rule, own_format: Any) -> dict[str, Any]:
    """Options of the blur placeholder: ``rule``'s, at ``PLACEHOLDER_WIDTH`` (its box's ratio
    kept), blurred, at low quality, in the ``<img>``'s format."""
    options = {k: v for k, v in rule.options.items() if k not in ("w", "h", "dpr", "q", "blur")}
    options.update(w=PLACEHOLDER_WIDTH, blur=PLACEHOLDER_BLUR, q=PLACEHOLDER_QUALITY, f=own_format)
    width, height = rule.options.get("w"), rule.options.get("h")
    if rule.aspect is not None:
        options["h"] = ratio_height(PLACEHOLDER_WIDTH, rule.aspect)
        options.setdefault("fit", "cover")
    elif is_whole(width) and is_whole(height):
        options["h"] = max(1, half_up(PLACEHOLDER_WIDTH * height / width))
    return options


def candidates(
    widths: Iterable[int] | None,
    densities: Iterable[float] | None,
    aspect: float | Sequence[float] | None,
    options: dict[str, Any],
) -> list[tuple[str, dict[str, Any]]]:
    """(descriptor, options) per srcset candidate, ascending: ``{W}w`` per width (with the height
    ``aspect`` gives), or ``{D}x`` per density (``dpr``); ``options`` in short names.

    Raises:
        ValueError: both or neither of widths and densities, an option the candidates set
            themselves (``w``, ``h`` with ``aspect``, ``dpr``), bad widths or densities.
    """
    options = short_names(options)
    if (widths is None) == (densities is None):
        raise ValueError("give exactly one of widths and densities")
    if aspect is not None:
        if "h" in options:
            raise ValueError("aspect sets the height of every candidate: do not give height too")
        options.setdefault("fit", "cover")
    out: list[tuple[str, dict[str, Any]]] = []
    if widths is not None:
        widths = checked_widths(widths)
        if "w" in options:
            raise ValueError("srcset sets width per candidate (widths): do not give width too")
        for w in widths:
            extra = {"w": w} if aspect is None else {"w": w, "h": ratio_height(w, aspect)}
            out.append((f"{w}w", {**options, **extra}))
        return out
    if densities is None:  # not reached: exactly one of them was given (checked above)
        raise ValueError("give exactly one of widths and densities")
    densities = ascending(densities, "densities", "numbers")
    if "dpr" in options:
        raise ValueError("srcset sets dpr per candidate (densities): do not give dpr too")
    if aspect is not None:
        width = options.get("w")
        if not isinstance(width, int) or isinstance(width, bool):
            raise ValueError("aspect with densities needs a numeric width")
        options["h"] = ratio_height(width, aspect)
    for d in densities:
        if not is_positive(d):
            raise ValueError(f"densities are positive numbers, got {d!r}")
        out.append((f"{format_value(d)}x", {**options, "dpr": d}))
    return out
