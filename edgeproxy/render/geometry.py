"""Pure geometry: boxes, and from the upright source size and a spec to the sizes and offsets of each step.

No pyvips here: every rule of fit, gravity, DPR, enlarge and crop is a function of integers, tested
without images. The fit vocabulary is sharp's (``cover``, ``fill``, ``inside``, ``outside``) plus
Cloudflare Images' ``contain`` and ``pad``; see ``spec.Fit``.

Every box that travels between the steps is a ``Box``: in pixels (``Box[int]``: a crop region) or
in fractions of an image (``Box[float]``: a detected ``Face``, an obscured region), which hold at
any scale of that image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Generic, TypeVar

from edgeproxy.errors import bad_request
from edgeproxy.url.spec import Fit, TransformSpec

#: A box's unit: ``int`` (pixels) or ``float`` (fractions 0..1 of an image).
N = TypeVar("N", int, float)


@dataclass(frozen=True, slots=True)
class Box(Generic[N]):
    """A rectangle: left edge ``x``, top edge ``y``, width ``w`` and height ``h``.

    ``Box[int]`` is in pixels of an image (a crop region, as libvips' ``crop`` takes it: left, top,
    width, height); ``Box[float]`` in fractions 0..1 of an image's width (``x``, ``w``) and height
    (``y``, ``h``), so the same box holds at any scale of that image. Nothing is checked: a box is
    what its maker computed (``clipped`` keeps the part inside the image).
    """

    x: N
    y: N
    w: N
    h: N

    @property
    def right(self) -> N:
        """The right edge, ``x + w`` (exclusive for pixels)."""
        return self.x + self.w

    @property
    def bottom(self) -> N:
        """The bottom edge, ``y + h`` (exclusive for pixels)."""
        return self.y + self.h

    def edges(self) -> tuple[N, N, N, N]:
        """(left, top, right, bottom)."""
        return self.x, self.y, self.right, self.bottom

    def clipped(self: Box[float]) -> Box[float] | None:
        """This fraction box clipped to the image (0..1 on both axes); None when nothing of it is
        inside."""
        x0, y0, x1, y1 = max(0.0, self.x), max(0.0, self.y), min(1.0, self.right), min(1.0, self.bottom)
        if x1 <= x0 or y1 <= y0:
            return None
        return Box(x0, y0, x1 - x0, y1 - y0)


@dataclass(frozen=True, slots=True)
class Face:
    """One detected face: its ``box`` in fractions 0..1 of the upright original (of the image the
    detector saw, which is the original scaled), clipped to it, and ``score``, the detector's
    confidence 0..1 (CenterFace: the heatmap value at the face's centre, ``vision.faces``)."""

    box: Box[float]
    score: float


@dataclass(frozen=True, slots=True)
class Canvas:
    """A ``width`` × ``height`` pixel canvas with the image placed at (``left``, ``top``): ``pad``."""

    width: int
    height: int
    left: int
    top: int


@dataclass(frozen=True, slots=True)
class Plan:
    """What the pipeline does, in pixels of each stage.

    - ``source_crop``: region of the upright original to keep first, or None.
    - ``resize``: (width, height) the (cropped) original is scaled to, in the frame after
      ``rotate`` (swap them to size the image before a 90°/270° rotation).
    - ``final_crop``: region of the resized image to keep (``cover``), or None.
    - ``smart``: the ``final_crop`` window is centred on the attention centre of the first frame
      (``focal_window``) instead of where the plan put it (the centre); its size stays.
    - ``canvas``: the canvas to pad the image onto, and where (``pad``), or None.
    """

    source_crop: Box[int] | None
    resize: tuple[int, int]
    final_crop: Box[int] | None = None
    canvas: Canvas | None = None
    smart: bool = False

    @property
    def output_size(self) -> tuple[int, int]:
        """(width, height) of the final image in pixels."""
        if self.canvas:
            return self.canvas.width, self.canvas.height
        if self.final_crop:
            return self.final_crop.w, self.final_crop.h
        return self.resize


def check_box(spec: TransformSpec, max_dimension: int) -> None:
    """Refuse a box over ``max_dimension`` device pixels before any I/O.

    Raises:
        ProxyError(400): width × dpr or height × dpr (either of them set by ``ar`` from the other)
            is over the limit.
    """
    for name, given, value in zip(("width", "height"), (spec.width, spec.height), spec.box(), strict=True):
        if value is not None and value > max_dimension:
            source = "" if given is not None else " (from ar)"
            raise bad_request(f"option {name}{source}: {value} device pixels is over the limit of {max_dimension}")


def source_region(spec: TransformSpec, width: int, height: int, what: str = "original") -> Box[int] | None:
    """The ``crop`` option as a pixel box inside a ``width`` × ``height`` upright original (``what``
    it is, for the error: the ``original``, or the ``trimmed original``).

    Fractions are rounded to pixels; the box is clipped to the image.

    Raises:
        ProxyError(400): the region lies wholly outside the image.
    """
    c = spec.crop
    if c is None:
        return None
    if c.fraction:
        x, y = round(c.x * width), round(c.y * height)
        w, h = max(1, round(c.width * width)), max(1, round(c.height * height))
    else:
        x, y, w, h = int(c.x), int(c.y), int(c.width), int(c.height)
    w, h = min(w, width - x), min(h, height - y)
    if x >= width or y >= height or w <= 0 or h <= 0:
        raise bad_request(f"option crop: region is outside the {width}x{height} {what}")
    if (x, y, w, h) == (0, 0, width, height):
        return None
    return Box(x, y, w, h)


def _anchor_offset(free: int, fraction: float) -> int:
    return max(0, min(free, round(free * fraction)))


def _focal_offset(full: int, window: int, fraction: float) -> int:
    """Left edge of a ``window`` centred on ``fraction`` × ``full``, kept inside ``full``."""
    return max(0, min(full - window, round(fraction * full - window / 2)))


def focal_window(size: tuple[int, int], window: tuple[int, int], centre: tuple[float, float]) -> Box[int]:
    """The ``window`` (width, height) inside an image of ``size`` (width, height), centred as near
    ``centre`` (x, y in pixels) as the image allows: the crop box of ``g:smart`` once libvips has
    found the attention centre (and of face-aware crops, centred on the faces)."""
    (width, height), (cw, ch) = size, window
    return Box(_focal_offset(width, cw, centre[0] / width), _focal_offset(height, ch, centre[1] / height), cw, ch)


def ratio_box(width: int, height: int, ratio: tuple[float, float]) -> tuple[int, int]:
    """The largest box of aspect ``ratio`` (W, H) inside ``width`` × ``height`` pixels, rounded,
    at least 1×1: ``ar`` without ``w`` or ``h`` (as Cloudinary's ``ar_`` without a width).

    >>> ratio_box(4000, 3000, (1, 1)), ratio_box(4000, 3000, (16, 9)), ratio_box(600, 900, (4, 5))
    ((3000, 3000), (4000, 2250), (600, 750))
    """
    rw, rh = ratio
    if width * rh >= height * rw:  # wider than the ratio: the height limits
        return max(1, min(width, round(height * rw / rh))), height
    return width, max(1, min(height, round(width * rh / rw)))


def trimmed_region(spec: TransformSpec, width: int, height: int, trim: Box[int] | None) -> Box[int] | None:
    """The source region of an upright ``width`` × ``height`` original: ``trim`` (the box its
    uniform borders leave, pixels of the original; None: nothing trimmed), then the ``crop`` option
    inside it (``source_region``, in pixels or fractions of the trimmed image), as one box in
    pixels of the original; None when the whole original is kept.

    Raises:
        ProxyError(400): the crop region lies wholly outside the (trimmed) image.
    """
    if trim is None:
        return source_region(spec, width, height)
    inner = source_region(spec, trim.w, trim.h, "trimmed original")
    if inner is None:
        return trim
    return Box(trim.x + inner.x, trim.y + inner.y, inner.w, inner.h)


def outward(box: Box[int], copy: tuple[int, int], size: tuple[int, int]) -> Box[int]:
    """``box`` (pixels of a scaled ``copy`` = (width, height) of an image) in pixels of the image
    itself (``size``), rounded outwards, so that every image pixel under any copy pixel of the box
    is inside: the trim box found on a shrunk copy (``pipeline.find_trim``), which may then keep up
    to one copy pixel of border on each side but never cuts into the image.

    >>> outward(Box(70, 50, 250, 175), (400, 300), (1600, 1200))
    Box(x=280, y=200, w=1000, h=700)
    >>> outward(Box(1, 1, 2, 2), (3, 3), (10, 10))
    Box(x=3, y=3, w=7, h=7)
    """
    sx, sy = size[0] / copy[0], size[1] / copy[1]
    x0, y0 = math.floor(box.x * sx), math.floor(box.y * sy)
    x1, y1 = min(size[0], math.ceil(box.right * sx)), min(size[1], math.ceil(box.bottom * sy))
    return Box(x0, y0, x1 - x0, y1 - y0)


def plan(spec: TransformSpec, width: int, height: int, max_dimension: int, trim: Box[int] | None = None) -> Plan:
    """Plan the crop, resize, crop and pad steps for an upright ``width`` × ``height`` original;
    ``trim`` is the box its uniform borders leave (``trim`` option, found by ``vips.find_trim``), or
    None: the source region is then ``trimmed_region``.

    Rules: the scale is capped at 1 unless ``enlarge`` (``contain`` and ``fill`` always reach the
    box); with one side given, the other follows the aspect ratio (``ar`` when given, else the
    image's: ``TransformSpec.box``); ``ar`` alone makes the box the largest of that ratio inside
    the original (``ratio_box``); ``cover`` with ``ar`` keeps the ratio when the original is smaller
    than the box (and enlarging is off): the crop is then the largest box of the ratio. The output
    never exceeds ``max_dimension`` on either side (it is scaled down to fit).

    Raises:
        ProxyError(400): a crop region outside the image.
    """
    region = trimmed_region(spec, width, height, trim)
    if region:
        width, height = region.w, region.h
    if spec.rotate in (90, 270):  # the box applies to the rotated image
        width, height = height, width
    bw, bh = spec.box()
    if bw is None and bh is None and spec.aspect_ratio is not None:
        bw, bh = ratio_box(width, height, spec.aspect_ratio)
    fit = spec.fit
    if bw is None and bh is None:
        sx = sy = 1.0
    elif fit is Fit.FILL and bw and bh:
        sx, sy = bw / width, bh / height
    else:
        ratios = [r for r in (bw and bw / width, bh and bh / height) if r]
        s = max(ratios) if fit in (Fit.COVER, Fit.OUTSIDE) else min(ratios)
        if not spec.enlarge and fit not in (Fit.CONTAIN, Fit.FILL):
            s = min(s, 1.0)
        sx = sy = s
    rw, rh = max(1, round(width * sx)), max(1, round(height * sy))
    if rw > max_dimension or rh > max_dimension:
        shrink = max_dimension / max(rw, rh)
        rw, rh = max(1, int(rw * shrink)), max(1, int(rh * shrink))

    if fit is Fit.COVER and bw and bh:
        cw, ch = min(bw, rw), min(bh, rh)
        if spec.aspect_ratio is not None:  # an original smaller than the box: keep the ratio, smaller
            cw, ch = ratio_box(cw, ch, spec.aspect_ratio)
        if (cw, ch) == (rw, rh):
            return Plan(region, (rw, rh))
        ax, ay = spec.gravity.anchor()
        if spec.gravity.kind == "fp":
            left, top = _focal_offset(rw, cw, ax), _focal_offset(rh, ch, ay)
        else:
            left, top = _anchor_offset(rw - cw, ax), _anchor_offset(rh - ch, ay)
        return Plan(region, (rw, rh), final_crop=Box(left, top, cw, ch), smart=spec.gravity.kind in ("smart", "face"))

    if fit is Fit.PAD and (bw or bh):
        cw, ch = max(bw or rw, rw), max(bh or rh, rh)
        if (cw, ch) != (rw, rh):
            ax, ay = (0.5, 0.5) if spec.gravity.kind in ("fp", "smart", "face") else spec.gravity.anchor()
            left, top = _anchor_offset(cw - rw, ax), _anchor_offset(ch - rh, ay)
            return Plan(region, (rw, rh), canvas=Canvas(cw, ch, left, top))
    return Plan(region, (rw, rh))


def jpeg_shrink(width: int, height: int, target_width: int, target_height: int) -> int:
    """Largest JPEG DCT-domain shrink (1, 2, 4 or 8) that keeps a ``width`` × ``height`` image at
    least ``target_width`` × ``target_height`` (sizes rounded down, to keep a margin).

    The same rule as Pillow's ``draft`` and imgproxy's scale-on-load: decode at the smallest size
    that is still no smaller than the output, then resample the rest with Lanczos. (libvips'
    ``thumbnail`` keeps a wider margin and decodes twice the pixels on a 4× reduction.)
    """
    for shrink in (8, 4, 2):
        if width // shrink >= target_width and height // shrink >= target_height:
            return shrink
    return 1


def map_box(
    box: Box[float],
    size: tuple[int, int],
    source_crop: Box[int] | None = None,
    rotate: int = 0,
    flip: str = "",
) -> Box[float] | None:
    """Where ``box`` (fractions 0..1 of an upright ``size`` = (width, height) pixels original, e.g.
    a detected face) lies after the pipeline's ``source_crop`` (pixels of that original), a
    clockwise ``rotate`` (0, 90, 180, 270) and ``flip`` (``h``, ``v``, ``hv``), in fractions 0..1 of
    the image at that point; clipped to it. None when the box lies wholly outside the crop.
    Resizing does not move fractions, so the result times any stage's pixel size gives pixels."""
    x, y, w, h = box.x, box.y, box.w, box.h
    if source_crop is not None:
        left, top, cw, ch = source_crop.x, source_crop.y, source_crop.w, source_crop.h
        x, y, w, h = (x * size[0] - left) / cw, (y * size[1] - top) / ch, w * size[0] / cw, h * size[1] / ch
    inside = Box(x, y, w, h).clipped()
    if inside is None:
        return None
    x, y, w, h = inside.x, inside.y, inside.w, inside.h
    if rotate == 90:  # a point (x, y) goes to (1 - y, x)
        x, y, w, h = 1 - (y + h), x, h, w
    elif rotate == 180:
        x, y = 1 - (x + w), 1 - (y + h)
    elif rotate == 270:  # (x, y) goes to (y, 1 - x)
        x, y, w, h = y, 1 - (x + w), h, w
    if "h" in flip:
        x = 1 - (x + w)
    if "v" in flip:
        y = 1 - (y + h)
    return Box(x, y, w, h)
