"""thumbor's URL parts and filters mapped to edgeproxy's ``TransformSpec``: the geometry (crop,
fit-in, size, flips, alignment, ``smart``), each filter, and thumbor's order of flips and rotation
turned into edgeproxy's.

The table, option by option, and every difference from thumbor are in docs/migration/thumbor.md.
``edgeproxy.compat.thumbor`` reads the URL (signature, grammar, origins) and calls these. Pure
functions, no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import replace

from edgeproxy.compat.thumbor_filters import Filter, arity, boolean, colour, number
from edgeproxy.errors import bad_request
from edgeproxy.url.spec import (
    COMPASS,
    MAX_DIMENSION,
    MAX_MAX_BYTES,
    MIN_MAX_BYTES,
    Crop,
    Fit,
    Flip,
    Format,
    Gravity,
    TransformSpec,
    Trim,
)

#: ``focal(LEFTxTOP:RIGHTxBOTTOM)``'s argument, pixels.
_FOCAL = re.compile(r"(\d{1,9})x(\d{1,9}):(\d{1,9})x(\d{1,9})")
#: thumbor's ``halign``/``valign`` as (x, y) fractions, as ``FocalPoint.from_alignment``.
_HALIGN = {"left": 0.0, "center": 0.5, "right": 1.0}
_VALIGN = {"top": 0.0, "middle": 0.5, "bottom": 1.0}
#: ``format(NAME)``: thumbor's names -> edgeproxy's formats (``heic``/``heif``: no such output here).
_FORMATS = {"jpeg": Format.JPEG, "jpg": Format.JPEG, "png": Format.PNG, "gif": Format.GIF}
_FORMATS |= {"webp": Format.WEBP, "avif": Format.AVIF}


def trim(segment: str | None) -> Trim | None:
    """thumbor's ``trim[:top-left|:bottom-right][:TOLERANCE]`` segment as edgeproxy's ``trim``: the
    border colour is the top-left pixel's (as edgeproxy's), and thumbor's tolerance, a Euclidean
    distance in RGB (0..442), becomes a per-band threshold of tolerance / sqrt(3) (the same for a
    difference spread evenly over the three bands, as a grey border's). None without the segment.

    Raises:
        ProxyError(400): ``bottom-right`` (edgeproxy takes the top-left pixel's colour), a tolerance
            over 442.
    """
    if not segment:
        return None
    parts = segment.split(":")[1:]
    corner = parts.pop(0) if parts and parts[0] in ("top-left", "bottom-right") else "top-left"
    if corner == "bottom-right":
        raise bad_request("thumbor option trim:bottom-right: not supported (edgeproxy trims the top-left colour)")
    tolerance = int(parts[0]) if parts else 0
    if tolerance > 442:
        raise bad_request(f"thumbor option trim: tolerance {tolerance} is over 442")
    return Trim(round(tolerance / math.sqrt(3), 2))


def refuse_unmapped(parts: Mapping[str, str | None]) -> None:
    """400 for the URL parts edgeproxy has no equivalent of (each named)."""
    if parts["debug"]:
        raise bad_request("thumbor option debug: not supported")
    if parts["meta"]:
        raise bad_request(
            "thumbor option meta: not supported (edgeproxy's GET /info answers with the original's facts)"
        )
    if "orig" in (parts["width"], parts["height"]):
        raise bad_request("thumbor size orig: not supported (give the size, or 0 to keep the ratio)")


def _side(value: str | None, name: str) -> int | None:
    """A thumbor width or height: None for absent or 0 (the ratio keeps it), else 1..MAX_DIMENSION."""
    size = int(value) if value else 0
    if size > MAX_DIMENSION:
        raise bad_request(f"thumbor {name} {size}: over {MAX_DIMENSION}")
    return size or None


def geometry(parts: Mapping[str, str | None], *, faces: bool) -> TransformSpec:
    """The spec of the URL's crop, fit, size, flips, alignment and ``smart`` (before filters), from
    the named groups of ``thumbor``'s URL grammar; ``smart`` is ``g:face`` when ``faces`` (the face
    model is configured), else ``g:smart``.

    Raises:
        ProxyError(400): a size over ``MAX_DIMENSION``, an inverted crop, or ``adaptive-fit-in``
            with a box that is not square.
    """
    width, height = _side(parts["width"], "width"), _side(parts["height"], "height")
    crop = None
    if parts["left"] is not None:
        left, top, right, bottom = (int(parts[k] or 0) for k in ("left", "top", "right", "bottom"))
        if (left, top, right, bottom) != (0, 0, 0, 0):
            if right <= left or bottom <= top:
                raise bad_request(
                    "thumbor crop AxB:CxD: the bottom-right corner must be right of and below the top-left"
                )
            crop = Crop(left, top, right - left, bottom - top)
    flip = Flip(("h" if parts["hflip"] else "") + ("v" if parts["vflip"] else ""))
    box = width is not None or height is not None
    if parts["adaptive"] and width and height and width != height:
        raise bad_request(
            "thumbor option adaptive-fit-in: not supported with a box that is not square "
            "(it swaps the box for an original of the other orientation, unknown from the URL)"
        )
    if parts["fit_in"] is None:
        # Crop to the box's ratio, then scale to the box, enlarging (thumbor's default for sizes).
        fit, enlarge = Fit.COVER, True
    elif parts["full"]:
        fit, enlarge = Fit.OUTSIDE, True  # full-fit-in: the smallest size covering the box, always
    else:
        fit, enlarge = Fit.INSIDE, False  # fit-in: inside the box, never enlarged
    gravity = Gravity()
    if parts["fit_in"] is None and box:
        if parts["smart"]:
            gravity = Gravity("face" if faces else "smart")
        else:
            gravity = _compass(_HALIGN[parts["halign"] or "center"], _VALIGN[parts["valign"] or "middle"])
    if not box:
        fit, enlarge = Fit.INSIDE, False  # no size: the original's, nothing to fit
    return TransformSpec(
        width=width,
        height=height,
        fit=fit,
        enlarge=enlarge,
        gravity=gravity,
        trim=trim(parts["trim"]),
        crop=crop,
        flip=flip,
    )


def _compass(x: float, y: float) -> Gravity:
    """The compass gravity at fractions (x, y) (each 0, 0.5 or 1)."""
    name = next(name for name, point in COMPASS.items() if point == (x, y))
    return Gravity(name, x, y)


def point(x: float, y: float) -> Gravity:
    """The gravity at fractions (x, y) of the image: a compass name where there is one (a crop
    anchored at 0, 0.5 or 1 is the same either way), else a focal point (``g:fp:X:Y``)."""
    x, y = round(x, 6), round(y, 6)
    if x in (0.0, 0.5, 1.0) and y in (0.0, 0.5, 1.0):
        return _compass(x, y)
    # Rounded to a millionth (a 60th of a pixel at the largest size), so the canonical form, and the
    # ETag, do not carry the float noise of 1 - x.
    return Gravity("fp", round(min(1.0, max(0.0, x)), 6), round(min(1.0, max(0.0, y)), 6))


def apply_filters(
    spec: TransformSpec, filters: list[Filter], *, fit_in: bool
) -> tuple[TransformSpec, int, tuple[int, int, int, int] | None]:
    """(``spec`` with each thumbor filter applied, the ``rotate()`` angle counter-clockwise, the
    ``focal()`` region or None); ``fit_in``: plain or adaptive ``fit-in``, where ``fill`` pads and
    ``upscale`` enlarges. The rotation is left to ``oriented``, the focal region to ``focused``.

    Raises:
        ProxyError(400): a filter edgeproxy does not map, or bad arguments; the message names it.
    """
    rotate = 0
    fill: tuple[int, int, int, int] | None = None
    focal: tuple[int, int, int, int] | None = None
    for f in filters:
        match f.name:
            case "format":
                arity(f, 1, 1)
                fmt = _FORMATS.get(f.args[0].lower())
                if fmt is None:
                    raise bad_request(f"thumbor filter format: {f.args[0]!r} is not one of {'|'.join(_FORMATS)}")
                spec = replace(spec, format=fmt)
            case "quality":
                arity(f, 1, 1)
                spec = replace(spec, quality=int(number(f, 0, 1, 100, integer=True)))
            case "fill":
                arity(f, 1, 2)
                if boolean(f, 1):
                    raise bad_request("thumbor filter fill: fill_transparent is not supported")
                fill = colour(f, f.args[0])
            case "background_color":
                arity(f, 1, 1)
                spec = replace(spec, background=colour(f, f.args[0]))
            case "blur":
                arity(f, 1, 2)
                radius = number(f, 0, 1, 150)
                sigma = number(f, 1, 0, 100) if len(f.args) == 2 else 0
                spec = replace(spec, blur=min(100.0, sigma or radius))
            case "sharpen":
                arity(f, 3, 3)
                number(f, 0, 0, 10)  # amount: edgeproxy's sharpen has one strength (docs/migration/thumbor.md)
                boolean(f, 2)
                spec = replace(spec, sharpen=number(f, 1, 0.1, 10))
            case "rotate":
                arity(f, 1, 1)
                angle = int(number(f, 0, -360000, 360000, integer=True))
                if angle % 90:
                    raise bad_request("thumbor filter rotate: the angle must be a multiple of 90")
                rotate = angle % 360
            case "no_upscale":
                arity(f, 0, 0)
                spec = replace(spec, enlarge=False)
            case "upscale":
                arity(f, 0, 0)
                if fit_in:
                    spec = replace(spec, enlarge=True)
            case "stretch":
                arity(f, 0, 0)
                if spec.fit is Fit.COVER:
                    spec = replace(spec, fit=Fit.FILL)
            case "strip_exif" | "strip_icc":
                arity(f, 0, 0)  # edgeproxy strips metadata and converts to sRGB by default (strip:1)
            case "focal":
                arity(f, 1, 1)
                region = _FOCAL.fullmatch(f.args[0])
                if region is None:
                    raise bad_request(f"thumbor filter focal: expected LEFTxTOP:RIGHTxBOTTOM, got {f.args[0]!r}")
                left, top, right, bottom = (int(v) for v in region.groups())
                if right <= left or bottom <= top:
                    raise bad_request(
                        "thumbor filter focal: the bottom-right corner must be right of and below the top-left"
                    )
                focal = (left, top, right, bottom)
            case "grayscale":
                arity(f, 0, 0)
                spec = replace(spec, grayscale=True)
            case "max_bytes":
                arity(f, 1, 1)
                spec = replace(spec, max_bytes=int(number(f, 0, MIN_MAX_BYTES, MAX_MAX_BYTES, integer=True)))
            case _:
                raise bad_request(f"thumbor filter {f.name}: not supported")
    if spec.fit is Fit.FILL and not spec.enlarge:
        raise bad_request("thumbor filters stretch and no_upscale together: not supported")
    if fill is not None:
        if spec.background is not None and spec.background != fill:
            raise bad_request("thumbor filters fill and background_color with different colours: not supported")
        spec = replace(spec, background=fill)
        if fit_in and spec.width and spec.height:
            spec = replace(spec, fit=Fit.PAD)  # padded to the box, centred, as thumbor's fill
    return spec, rotate, focal


def oriented(spec: TransformSpec, ccw: int) -> TransformSpec:
    """``spec`` with thumbor's order of crop, flips and ``rotate(ccw)`` (counter-clockwise degrees)
    turned into edgeproxy's. thumbor crops to the box first (anchored by halign/valign), then flips,
    then rotates (a filter, after the resize); edgeproxy rotates (clockwise) and flips first, then
    crops in the turned frame. So the crop's anchor flips and turns with the image, the box's sides
    swap for 90 and 270, and so do the flips' axes."""
    flip, gravity = spec.flip, spec.gravity
    if (gravity.kind in COMPASS or gravity.kind == "fp") and (flip is not Flip.NONE or ccw):
        x, y = gravity.anchor()
        x, y = (1 - x if "h" in flip.value else x), (1 - y if "v" in flip.value else y)
        for _ in range(ccw // 90):
            x, y = y, 1 - x  # a quarter turn counter-clockwise
        gravity = point(x, y)
    if not ccw:
        return replace(spec, gravity=gravity)
    quarter = ccw in (90, 270)
    width, height = (spec.height, spec.width) if quarter else (spec.width, spec.height)
    if quarter and flip in (Flip.H, Flip.V):
        flip = Flip.V if flip is Flip.H else Flip.H
    return replace(spec, width=width, height=height, flip=flip, gravity=gravity, rotate=(360 - ccw) % 360)
