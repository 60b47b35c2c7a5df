"""Decoding an original at the size it is needed: the one function the render pipeline, the vision
models' copy (``vision.analysis``, behind ``/info`` and every analysed derivative), the obscuring
wash of a render without analysis, and the benchmark ceiling (``bench/ceiling.py``) decode with.

libvips decodes at the size asked where the format allows it (shrink-on-load: JPEG's DCT scaling,
WebP's and HEIF's scaled decoding, a PNG's interlaced passes), so a 24-megapixel photo fitted into
500 pixels never costs a full decode. Formats that only Pillow reads here decode whole
(``vips.load_pillow``), then resize.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgeproxy.render import vips
from edgeproxy.render.geometry import Box, jpeg_shrink
from edgeproxy.render.obscure import WASH_CELLS, Grid, cell_counts
from edgeproxy.render.source import SourceInfo


@dataclass(frozen=True, slots=True)
class Loaded:
    """A decoded original: ``image`` (a ``pyvips.Image``, lazy), and whether it may be read out of
    order (``random_access``: it was decoded whole) rather than only top to bottom, once (the
    shrink-on-load path reads the original sequentially)."""

    image: Any
    random_access: bool


def load_at_size(
    data: bytes,
    info: SourceInfo,
    width: int,
    height: int,
    *,
    region: Box[int] | None = None,
    animated: bool = False,
    dct_shrink: bool = True,
) -> Loaded:
    """``data`` (an original whose header is ``info``), upright, its ``region`` (pixels of the
    upright original; None: all of it) resized to exactly ``width`` × ``height`` pixels (per frame;
    every frame when ``animated``), colour managed to sRGB when it carries a profile that is not
    sRGB (``info.colour_manage``).

    - Formats only Pillow reads here (``info.pillow``): decoded whole, cropped, resized.
    - With a ``region``: decoded whole, cropped, resized (no shrink-on-load).
    - Otherwise shrink-on-load through libvips' ``thumbnail``; a JPEG with ``dct_shrink`` is decoded
      at the DCT scale ``geometry.jpeg_shrink`` chooses (the render pipeline: faster, the same
      rule as Pillow's ``draft``), without it at the scale libvips' ``thumbnail`` chooses (a wider
      margin: the vision models' copy and the wash, whose pixels every cached analysis and
      obscuring grid was computed from).

    Raises:
        ProxyError(422): the original's bytes could not be decoded (or a Pillow format's pixels
            disagree with its header).
    """
    if info.pillow:
        image = vips.load_pillow(data, info)
        if region is not None:
            image = vips.crop(image, region)
        return Loaded(vips.resize(image, width, height, colour_manage=info.colour_manage), True)
    if region is not None:
        cropped = vips.load_region(data, region, animated=animated)
        return Loaded(vips.resize(cropped, width, height, colour_manage=info.colour_manage), True)
    # width × height is in the upright frame of the source, as info's size is.
    shrink = jpeg_shrink(info.width, info.height, width, height) if dct_shrink and info.format == "jpeg" else 0
    image = vips.thumbnail(data, width, height, animated=animated, colour_manage=info.colour_manage, jpeg_shrink=shrink)
    return Loaded(image, False)


def flat_srgb(data: bytes, info: SourceInfo, width: int, height: int) -> Any:
    """The first frame of ``data`` at ``width`` × ``height`` pixels (``load_at_size`` without DCT
    shrink), alpha flattened onto white, as 8-bit 3-band sRGB (grey made RGB): what the vision
    models see and what the obscuring grids average. A lazy ``pyvips.Image``.

    Raises:
        ProxyError(422): the original's bytes could not be decoded.
    """
    image = load_at_size(data, info, width, height, dct_shrink=False).image
    image = vips.to_srgb(vips.flatten(image, vips.WHITE))
    return image.colourspace("srgb") if image.bands == 1 else image


#: ``wash`` decodes the original at this many pixels per side of each cell, then averages them.
WASH_PIXELS = 16


def wash(data: bytes, info: SourceInfo) -> Grid:
    """The whole original's grid (``obscure.WASH_CELLS`` across its long side), computed from the
    original ``data`` for a render without analysis (``vision.cells.wash`` computes it from the
    analysis' copy): the mean colour of each of ``cols`` x ``rows`` equal cells tiling the first
    frame, upright, sRGB, alpha flattened onto white. Decoded with shrink-on-load to
    ``WASH_PIXELS`` pixels per cell side (``flat_srgb``), then averaged per cell
    (``vips.cell_means``): a box filter.

    Raises:
        ProxyError(422): the original's pixels could not be decoded (inside ``pipeline.run``'s ``failures``).
    """
    cols, rows = cell_counts(info.width, info.height, WASH_CELLS)
    k = WASH_PIXELS
    image = flat_srgb(data, info, k * cols, k * rows)  # exactly k * cols x k * rows
    return Grid(Box(0.0, 0.0, 1.0, 1.0), cols, rows, vips.cell_means(image, k), smooth=True)
