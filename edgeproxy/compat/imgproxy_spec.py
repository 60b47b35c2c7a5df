"""imgproxy's processing options (``imgproxy_options.Options``) mapped to edgeproxy's
``TransformSpec``, through edgeproxy's own grammar, so every spec it gives is one a native URL
spells (``canonical``); docs/migration/imgproxy.md has the table and every difference. A value with
no faithful mapping is a 400 naming imgproxy's option, never ignored. Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
import re

from edgeproxy.compat.imgproxy_options import COMPASS, Options
from edgeproxy.errors import ProxyError, bad_request
from edgeproxy.url.grammar import parse_options
from edgeproxy.url.spec import MAX_DIMENSION, TransformSpec, decimal_text

#: (x, y) of each compass gravity as fractions of the free space (west/north 0, east/south 1).
_ANCHOR = {
    "ce": (0.5, 0.5),
    "no": (0.5, 0.0),
    "so": (0.5, 1.0),
    "ea": (1.0, 0.5),
    "we": (0.0, 0.5),
    "noea": (1.0, 0.0),
    "nowe": (0.0, 0.0),
    "soea": (1.0, 1.0),
    "sowe": (0.0, 1.0),
}
_VERSION = re.compile(r"[A-Za-z0-9._~-]{1,64}")


def _fraction(value: float) -> float:
    """A fraction 0..1 rounded to 6 decimals (the URL ``translate`` writes stays short)."""
    return max(0.0, min(1.0, round(value, 6)))


def _crop_segment(o: Options) -> str | None:
    """imgproxy's ``c:W:H[:GRAVITY]`` as edgeproxy's ``c:X:Y:W:H`` region, or None for no crop.

    imgproxy crops a W × H window (pixels when ≥ 1, fractions of the image when < 1, the whole side
    when 0) placed by gravity. edgeproxy's crop is a region: fractions place it without knowing the
    original's size, so fractional (or 0) sizes take any compass or ``fp`` gravity; pixel sizes take
    ``nowe`` only (with pixel offsets).

    Raises:
        ProxyError(400): pixel sizes with another gravity, mixed pixel and fraction sizes,
            ``sm``, offsets that do not fit, or a crop with ``rot`` and a gravity other than ``ce``.
    """
    if o.crop is None or o.crop == (0.0, 0.0):
        return None
    w, h = o.crop
    kind, dx, dy = o.crop_gravity or o.gravity
    if o.rotate % 360 and kind != "ce":
        raise bad_request("option crop: with rotate, only the ce gravity is supported")
    if o.rotate % 180:  # imgproxy's crop sizes are those after the rotation; edgeproxy's before
        w, h = h, w
    if kind == "sm":
        raise bad_request("option crop: gravity sm is not supported (edgeproxy has no smart crop of the source)")
    pixels = [v >= 1 for v in (w, h) if v != 0]
    if all(pixels) and pixels:
        if kind != "nowe" or not all(v == 0 or (v >= 1 and v == int(v)) for v in (dx, dy)):
            raise bad_request(
                "option crop: a crop in pixels needs gravity nowe (with offsets in whole pixels); "
                "give fractions (c:0.5:0.5) for other gravities"
            )
        big = 10**9  # 0: the whole side (edgeproxy clips a region to the image)
        return f"c:{int(dx)}:{int(dy)}:{int(w) or big}:{int(h) or big}"
    if any(pixels):
        raise bad_request("option crop: width and height must both be pixels or both fractions")
    fw, fh = w or 1.0, h or 1.0
    if kind == "fp":
        x, y = min(max(dx - fw / 2, 0.0), 1 - fw), min(max(dy - fh / 2, 0.0), 1 - fh)
    else:
        if abs(dx) >= 1 or abs(dy) >= 1:
            raise bad_request("option crop: offsets in pixels need crop sizes in pixels and gravity nowe")
        ax, ay = _ANCHOR[kind]
        x = ax * (1 - fw) + (-dx if ax == 1.0 else dx)
        y = ay * (1 - fh) + (-dy if ay == 1.0 else dy)
        x, y = min(max(x, 0.0), 1 - fw), min(max(y, 0.0), 1 - fh)
    values = [_fraction(v) for v in (x, y, fw, fh)]
    if values[2:] == [1.0, 1.0]:
        return None
    return "c:" + ":".join(decimal_text(v) if v not in (0.0, 1.0) else f"{v:.1f}" for v in values)


def _gravity_segment(name: str, gravity: tuple[str, float, float]) -> str:
    kind, x, y = gravity
    if kind == "fp":
        return f"g:fp:{decimal_text(x)}:{decimal_text(y)}"
    if x or y:
        raise bad_request(f"option {name}: gravity offsets are not supported (edgeproxy anchors to the edge)")
    return "g:smart" if kind == "sm" else f"g:{COMPASS[kind]}"


def _to_segments(o: Options) -> list[str]:
    """edgeproxy option segments for imgproxy's options ``o`` (docs/migration/imgproxy.md's table).

    Raises:
        ProxyError(400): a value edgeproxy does not take (named with imgproxy's option).
    """
    segments: list[str] = []
    w, h = o.width, o.height
    for name, value in (("width", w), ("height", h)):
        if value > MAX_DIMENSION:
            raise bad_request(f"option {name}: {value} is over {MAX_DIMENSION}")
    both = bool(w and h)
    rt = o.resizing_type
    gravity_name = "gravity"
    gravity = o.gravity
    enlarge = o.enlarge
    if o.extend and (rt == "fit" or not both):  # with one side given, every type fits
        fit = "pad"
        gravity_name, gravity = "extend", o.extend_gravity
    elif rt == "force" and both:
        fit = "fill"
    elif rt in ("fill", "fill-down") or (rt == "auto" and both):
        fit = "cover"
    else:
        fit = "inside"
    if rt == "fill-down" and both and not enlarge:
        # imgproxy keeps the box's aspect ratio when the original is smaller than the box: edgeproxy's
        # cover with ar does exactly that (geometry.plan), so the box is w and ar:W:H
        segments += [f"w:{w}", f"ar:{w}:{h}"]
    else:
        segments += [f"w:{w}"] if w else []
        segments += [f"h:{h}"] if h else []
    if fit != "inside":
        segments.append(f"fit:{fit}")
    if fit in ("cover", "pad") and (gravity != ("ce", 0.0, 0.0)):
        segments.append(_gravity_segment(gravity_name, gravity))
    if o.dpr != 1.0:
        if not 1.0 <= o.dpr <= 4.0:
            raise bad_request(f"option dpr: {decimal_text(o.dpr)} is outside edgeproxy's 1..4")
        segments.append(f"dpr:{decimal_text(o.dpr)}")
    if o.format is not None:
        segments.append(f"f:{o.format}")
    if o.quality:
        segments.append(f"q:{o.quality}")
    if o.max_bytes:
        segments.append(f"mb:{o.max_bytes}")
    if o.trim is not None:
        threshold, colour = o.trim
        segments.append(f"trim:{decimal_text(threshold)}" + (f":{colour.lower()}" if colour else ""))
    crop = _crop_segment(o)
    if crop is not None:
        segments.append(crop)
    rotate = o.rotate % 360
    if rotate:
        segments.append(f"rot:{rotate}")
    flip = ("h" if o.flip[0] else "") + ("v" if o.flip[1] else "")
    if flip:
        segments.append(f"flip:{flip}")
    if o.blur:
        segments.append(f"blur:{decimal_text(o.blur)}")
    if o.sharpen:
        segments.append(f"sharpen:{decimal_text(o.sharpen)}")
    if o.background is not None:
        segments.append("bg:{:02x}{:02x}{:02x}".format(*o.background))
    if enlarge and fit not in ("fill",):
        segments.append("enlarge:1")
    if o.expires > 0:
        segments.append(f"exp:{o.expires}")
    if o.cachebuster:
        version = o.cachebuster
        if not _VERSION.fullmatch(version):  # edgeproxy's v: takes a token; any other text, its digest
            version = hashlib.sha256(version.encode()).hexdigest()[:32]
        segments.append(f"v:{version}")
    return segments


def to_spec(o: Options) -> TransformSpec:
    """The ``TransformSpec`` of imgproxy's options ``o``, through edgeproxy's own grammar (so every
    mapped spec is one a native URL can spell: ``translate``'s).

    Raises:
        ProxyError(400): a value edgeproxy does not take.
    """
    segments = _to_segments(o)
    try:
        return parse_options(segments)
    except ProxyError as error:
        raise bad_request(f"maps to edgeproxy options it refuses: {error.message}") from None
