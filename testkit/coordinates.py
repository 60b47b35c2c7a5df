"""Synthetic originals whose pixels say where they came from, and what a derivative of them must show.

``image(w, h)`` is an sRGB picture whose red channel is the column and whose green channel is the row,
as fractions of the width and height (R = 255·(x + ½)/w, G = 255·(y + ½)/h), and whose blue channel
is a constant per frame. Every geometric step of the pipeline (source crop, resize, rotation, flip,
cover crop, padding) maps an output pixel back to one point of the upright original, so the colour
every output pixel must have is known without rendering: ``expected`` inverts the steps of a
``geometry.Plan`` in reverse order, and ``mismatch`` measures how far a decoded derivative is from
it. A rotation the wrong way, a flip on the wrong axis, a crop in the wrong place or a frame out of
order moves the colours by tens of levels on average; resampling, JPEG and palettes by a few.

Used by ``tests/test_render_matrix.py`` and ``tests/test_geometry_ported.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyvips

from edgeproxy.render.geometry import Plan, plan
from edgeproxy.url.grammar import parse_options
from edgeproxy.url.spec import TransformSpec

#: Blue level of frame ``i`` of an animation (a still is frame 0): frames stay told apart.
FRAME_BLUE = (96, 160, 32, 224, 64, 192, 128, 16, 240)
#: The transform that stores an upright picture so that EXIF orientation N shows it upright again
#: (EXIF 2.32 tag 0x0112: 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 cw, 7 transverse,
#: 8 rotate 270 cw, each applied to the stored pixels for display; the inverse is applied here).
_STORE = {
    1: lambda im: im,
    2: lambda im: im.fliphor(),
    3: lambda im: im.rot180(),
    4: lambda im: im.flipver(),
    5: lambda im: im.rot90().fliphor(),  # transpose is its own inverse
    6: lambda im: im.rot270(),
    7: lambda im: im.rot90().flipver(),  # transverse is its own inverse
    8: lambda im: im.rot90(),
}


def image(width: int, height: int, *, alpha: bool = False, frame: int = 0) -> pyvips.Image:
    """The coordinate picture, ``width`` × ``height`` 8-bit sRGB (RGBA, opaque, with ``alpha``)."""
    xy = pyvips.Image.xyz(width, height)
    red = (xy[0] + 0.5) * (255 / width)
    green = (xy[1] + 0.5) * (255 / height)
    blue = red * 0 + FRAME_BLUE[frame % len(FRAME_BLUE)]
    bands = [green, blue] + ([red * 0 + 255] if alpha else [])
    return red.bandjoin(bands).rint().cast("uchar").copy(interpretation="srgb")


def animation(width: int, height: int, frames: int) -> pyvips.Image:
    """``frames`` coordinate pictures stacked as an animation strip (``page-height`` = ``height``)."""
    strip = pyvips.Image.arrayjoin([image(width, height, alpha=True, frame=i) for i in range(frames)], across=1)
    strip = strip.copy()
    strip.set_type(pyvips.GValue.gint_type, "page-height", height)
    strip.set_type(pyvips.GValue.array_int_type, "delay", [80] * frames)
    strip.set_type(pyvips.GValue.gint_type, "loop", 0)
    return strip


def stored(upright: pyvips.Image, orientation: int) -> pyvips.Image:
    """``upright`` stored as a camera would with EXIF ``orientation`` (1-8): pixels transformed so
    that a viewer applying the tag shows ``upright``, and the tag set."""
    out = _STORE[orientation](upright).copy()
    out.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    return out


def encode(picture: pyvips.Image, fmt: str) -> bytes:
    """``picture`` as ``fmt`` (jpeg, png, webp, avif, tiff, gif), near-lossless so that only the
    geometry moves colours; EXIF orientation is kept where the format carries it."""
    animated = picture.get_typeof("page-height") and picture.get("page-height") < picture.height
    if fmt == "jpeg":
        return (
            picture.flatten().jpegsave_buffer(Q=95, subsample_mode="off")
            if picture.hasalpha()
            else picture.jpegsave_buffer(Q=95, subsample_mode="off")
        )
    if fmt == "png":
        return picture.pngsave_buffer(compression=1)
    if fmt == "webp":
        return (
            picture.webpsave_buffer(Q=95, effort=0, smart_subsample=False)
            if not animated
            else picture.webpsave_buffer(lossless=True, effort=0)
        )
    if fmt == "avif":
        return picture.heifsave_buffer(compression="av1", Q=95, effort=0, subsample_mode="off")
    if fmt == "tiff":
        return picture.tiffsave_buffer(compression="deflate")
    if fmt == "gif":
        return picture.gifsave_buffer(dither=0, effort=1, bitdepth=8)
    raise ValueError(fmt)


@dataclass(frozen=True, slots=True)
class Expected:
    """What a derivative must show: ``rgb`` (H × W × 3 float levels) where ``inside`` (H × W bool)
    is True; elsewhere it is padding (``background``: RGBA)."""

    rgb: np.ndarray
    inside: np.ndarray
    background: tuple[int, int, int, int] | None


def planned(options: str, width: int, height: int, max_dimension: int = 8192) -> tuple[TransformSpec, Plan]:
    """The spec of URL ``options`` (``"rot:90/w:300"``) and edgeproxy's plan for an upright
    ``width`` × ``height`` original."""
    spec = parse_options([o for o in options.split("/") if o])
    return spec, plan(spec, width, height, max_dimension)


def windows(size: tuple[int, int], side: int = 96) -> list[tuple[int, int, int, int]]:
    """Five ``side``-pixel windows (left, top, width, height) of an output of ``size``: its four
    corners and its centre (the whole output when it is small)."""
    w, h = size
    if w * h <= 4 * side * side:
        return [(0, 0, w, h)]
    sw, sh = min(side, w), min(side, h)
    return [
        (0, 0, sw, sh),
        (w - sw, 0, sw, sh),
        (0, h - sh, sw, sh),
        (w - sw, h - sh, sw, sh),
        ((w - sw) // 2, (h - sh) // 2, sw, sh),
    ]


def expected(
    spec: TransformSpec,
    p: Plan,
    width: int,
    height: int,
    frame: int = 0,
    window: tuple[int, int, int, int] | None = None,
) -> Expected:
    """The colours of a derivative of the ``width`` × ``height`` coordinate picture by ``p`` (of
    its ``window`` (left, top, width, height) only, when given): each output pixel centre is mapped
    back through padding, the cover crop, the flip, the rotation (clockwise), the resize and the
    source crop, in that order (the pipeline's in reverse)."""
    left0, top0, out_w, out_h = window or (0, 0, *p.output_size)
    x, y = np.meshgrid(np.arange(left0, left0 + out_w) + 0.5, np.arange(top0, top0 + out_h) + 0.5)
    rw, rh = p.resize  # the frame after rotation
    inside = np.ones((out_h, out_w), bool)
    background = None
    if p.canvas:
        left, top = p.canvas.left, p.canvas.top
        x, y = x - left, y - top
        inside = (x >= 0) & (x < rw) & (y >= 0) & (y < rh)
        background = spec.background
    if p.final_crop:
        x, y = x + p.final_crop.x, y + p.final_crop.y
    if "h" in spec.flip.value:
        x = rw - x
    if "v" in spec.flip.value:
        y = rh - y
    if spec.rotate == 90:  # (x0, y0) -> (h0 - y0, x0)
        w0, h0 = rh, rw
        x, y = y, h0 - x
    elif spec.rotate == 180:
        w0, h0 = rw, rh
        x, y = w0 - x, h0 - y
    elif spec.rotate == 270:  # (x0, y0) -> (y0, w0 - x0)
        w0, h0 = rh, rw
        x, y = w0 - y, x
    else:
        w0, h0 = rw, rh
    fx, fy = x / w0, y / h0
    if p.source_crop:
        left, top, cw, ch = p.source_crop.x, p.source_crop.y, p.source_crop.w, p.source_crop.h
        fx, fy = (left + fx * cw) / width, (top + fy * ch) / height
    rgb = np.stack([fx * 255, fy * 255, np.full_like(fx, FRAME_BLUE[frame % len(FRAME_BLUE)])], axis=-1)
    return Expected(rgb, inside, background)


def frames(decoded: pyvips.Image) -> list[np.ndarray]:
    """Every frame of a decoded derivative as H × W × bands float arrays."""
    ph = page_height(decoded)
    if decoded.bands < 3:
        decoded = decoded.colourspace("srgb")
    array = decoded.numpy().astype(np.float64).reshape(decoded.height, decoded.width, decoded.bands)
    return [array[top : top + ph] for top in range(0, decoded.height, ph)]


def mismatch(actual: np.ndarray, want: Expected, *, step: int = 1, margin: int = 1) -> float:
    """Mean absolute difference in levels between ``actual`` (H × W × 3 or 4) and ``want`` over the
    picture's pixels (every ``step``-th row and column, ``margin`` pixels in from the picture's own
    edges, where resampling meets the clamped border), or, the largest of it and, for padding
    pixels, their distance from the background (RGBA; without one, transparent where ``actual``
    has alpha, else white). An alpha band inside the picture must be opaque; its shortfall counts."""
    assert actual.shape[:2] == want.inside.shape, (actual.shape, want.inside.shape)
    inside = want.inside.copy()
    if margin:
        core = np.zeros_like(inside)
        rows, cols = np.nonzero(inside)
        if rows.size:
            top, bottom, left, right = rows.min(), rows.max(), cols.min(), cols.max()
            if bottom - top > 2 * margin and right - left > 2 * margin:
                core[top + margin : bottom - margin + 1, left + margin : right - margin + 1] = True
                inside &= core
    sample = np.zeros_like(inside)
    sample[::step, ::step] = True
    errors = []
    picked = inside & sample
    if picked.any():
        errors.append(np.abs(actual[picked][:, :3] - want.rgb[picked]).mean())
        if actual.shape[2] == 4:
            errors.append(255 - actual[picked][:, 3].mean())
    pad = ~want.inside & sample
    if pad.any():
        bg = want.background
        if bg is None:  # transparent where the output has alpha, else white
            bg = (0, 0, 0, 0) if actual.shape[2] == 4 else (255, 255, 255, 255)
        if actual.shape[2] == 4:
            errors.append(np.abs(actual[pad][:, 3] - bg[3]).mean())
        if bg[3] > 0 or actual.shape[2] == 3:
            errors.append(np.abs(actual[pad][:, :3] - np.array(bg[:3], float)).mean())
    return float(max(errors)) if errors else 0.0


def page_height(decoded: pyvips.Image) -> int:
    """Height of one frame of a decoded derivative."""
    ph = decoded.get("page-height") if decoded.get_typeof("page-height") else decoded.height
    return ph if 0 < ph <= decoded.height and decoded.height % ph == 0 else decoded.height


def error(decoded: pyvips.Image, spec: TransformSpec, p: Plan, width: int, height: int) -> float:
    """The largest ``mismatch`` of a decoded derivative of the ``width`` × ``height`` coordinate
    picture by ``p``, over every frame (frame ``i`` in order) and, in large outputs, over its five
    ``windows`` only (pixels are converted for those alone)."""
    if decoded.bands < 3:
        decoded = decoded.colourspace("srgb")
    ph = page_height(decoded)
    worst = 0.0
    for i in range(decoded.height // ph):
        for window in windows((decoded.width, ph)):
            left, top, w, h = window
            region = decoded.crop(left, i * ph + top, w, h)
            actual = region.numpy().astype(np.float64).reshape(h, w, region.bands)
            worst = max(worst, mismatch(actual, expected(spec, p, width, height, frame=i, window=window)))
    return worst
