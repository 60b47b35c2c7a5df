"""What an obscured region looks like, in the original's coordinates: grids of cell colours.

A face (with ``REDACT_MARGIN`` around it) or the whole original is described once per original
by a ``Grid``: its box in fractions of the upright original and the mean colour of each of a few
cells across it (``OBSCURE_CELLS``), computed from the original's pixels (``vision.cells`` from the
analysis' decoded copy, ``load.wash`` in a render that has no analysis). A render paints each
output pixel whose centre, mapped back into the original through the source crop and the resize
scale, falls in the box, with the grid's colour at that point: the nearest cell (``pixelate``) or
a bilinear mix of the four nearest cell centres (``blur``). The painted pixels therefore depend on
the original and on where the pixel lies in it, never on the crop, tile, rotation or scale of the
derivative: any tiling of the output reassembles into the whole render, and no crop shows more of
a face than the whole derivative does (docs/faces.md; SECURITY.md).

This module is pure arithmetic (no pyvips, no numpy); ``vips.paint`` draws what ``place`` says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgeproxy.render.geometry import Box

#: Cells across the long side of an obscured region: ``blur`` mixes a grid this coarse bilinearly
#: (a colour wash), ``pixelate`` draws one flat block per cell. Eight samples across a face leave
#: no features a person or a face recogniser can match; pixelation at 12-16 blocks across has been
#: shown to be defeated by recognisers (Newton, Sweeney and Malin, "Preserving privacy by
#: de-identifying face images", IEEE TKDE 17(2), 2005; McPherson, Shokri and Shmatikov, "Defeating
#: image obfuscation with deep learning", arXiv:1609.00408, 2016). The cells are sized from the
#: whole region in the original, so a derivative never shows finer ones.
OBSCURE_CELLS = {"blur": 8, "pixelate": 6}
#: Cells across the long side of the whole-original wash (moderation blur; redaction when the face
#: detector failed).
WASH_CELLS = 8
#: Margin added around each detected face before redaction, as a fraction of its width and height
#: on each side: CenterFace's boxes run from brow to chin; hair, ears and jaw line identify too.
REDACT_MARGIN = 0.2
#: Part of the ETag of every obscured derivative (``service.results.Treatment.stamp``): bumped when the
#: obscured pixels of the same original and spec may change.
ALGORITHM = "grid-1"


@dataclass(frozen=True, slots=True)
class Grid:
    """The obscured look of one region of an original.

    - ``box``: the region, fractions 0..1 of the upright original (first frame), not empty;
    - ``cols`` x ``rows``: cells, equal in size, tiling ``box``;
    - ``cells``: ``rows * cols * 3`` bytes, row-major 8-bit sRGB, each the mean colour of the
      original (alpha flattened onto white) over that cell's area;
    - ``smooth``: True for ``blur`` (bilinear between cell centres, constant beyond the outer
      centres), False for ``pixelate`` (the cell a point lies in).
    """

    box: Box[float]
    cols: int
    rows: int
    cells: bytes
    smooth: bool

    def __post_init__(self) -> None:
        if not (self.box.w > 0 and self.box.h > 0) or self.cols < 1 or self.rows < 1:
            raise ValueError(f"an empty grid: box {self.box}, {self.cols}x{self.rows} cells")
        if len(self.cells) != self.rows * self.cols * 3:
            raise ValueError(f"{len(self.cells)} bytes for {self.cols}x{self.rows} RGB cells")


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a ``Grid`` lands in one image: the pixels ``left`` .. ``left + width`` - 1 and ``top`` ..
    ``top + height`` - 1 (of one frame) are painted; pixel (``left`` + i, ``top`` + j) takes the
    grid's colour at grid coordinates (``x_scale`` * i + ``x_offset``, ``y_scale`` * j + ``y_offset``),
    where cell (c, r) covers [c, c + 1) x [r, r + 1) for nearest sampling and the coordinates are
    already shifted by half a cell (cell centres at integers) for bilinear sampling."""

    left: int
    top: int
    width: int
    height: int
    x_scale: float
    x_offset: float
    y_scale: float
    y_offset: float


def cell_counts(width: float, height: float, cells: int) -> tuple[int, int]:
    """(columns, rows) for a region ``width`` x ``height`` (pixels of the original): ``cells``
    across its long side, as many as keep the cells about square across the other (at least 1)."""
    if width >= height:
        return cells, max(1, min(cells, round(cells * height / width)))
    return max(1, min(cells, round(cells * width / height))), cells


def face_box(face: Box[float]) -> Box[float] | None:
    """The region redacted for a face found at ``face`` (fractions of the upright original): grown
    by ``REDACT_MARGIN`` on each side and clipped to the original; None if empty."""
    x, y, w, h = face.x, face.y, face.w, face.h
    mx, my = w * REDACT_MARGIN, h * REDACT_MARGIN
    x0, y0 = max(0.0, x - mx), max(0.0, y - my)
    x1, y1 = min(1.0, x + w + mx), min(1.0, y + h + my)
    return Box(x0, y0, x1 - x0, y1 - y0) if x1 > x0 and y1 > y0 else None


def _axis(
    lo: float, hi: float, cells: int, start: float, step: float, size: int, smooth: bool
) -> tuple[int, int, float, float] | None:
    """One axis of ``place``: the grid spans ``lo`` .. ``hi`` (original pixels) in ``cells``; image
    pixel k's centre lies at ``start + (k + 0.5) * step`` original pixels; the image has ``size``
    pixels. Returns (first pixel, count, scale, offset) or None when no pixel centre is inside."""
    first = max(0, math.ceil((lo - start) / step - 0.5))
    end = min(size, math.ceil((hi - start) / step - 0.5))
    if end <= first:
        return None
    scale = step * cells / (hi - lo)
    offset = ((start + (first + 0.5) * step) - lo) * cells / (hi - lo) - (0.5 if smooth else 0.0)
    return first, end - first, scale, offset


def place(
    grid: Grid, original: tuple[int, int], source_crop: Box[int] | None, size: tuple[int, int]
) -> Placement | None:
    """Where ``grid`` lands in an image of ``size`` (width, height of one frame, pixels) made from
    the ``original`` (width, height, upright) by keeping ``source_crop`` (pixels of the original;
    None: all of it) and resizing that to ``size``. None when the grid's box
    lies outside the image. The mapping is the resize's: output pixel k's centre is at
    ``crop_left + (k + 0.5) * crop_width / width`` in the original."""
    ow, oh = original
    crop = source_crop or Box(0, 0, ow, oh)
    left, top, cw, ch = crop.x, crop.y, crop.w, crop.h
    width, height = size
    x0, y0, x1, y1 = grid.box.edges()
    across = _axis(x0 * ow, x1 * ow, grid.cols, left, cw / width, width, grid.smooth)
    down = _axis(y0 * oh, y1 * oh, grid.rows, top, ch / height, height, grid.smooth)
    if across is None or down is None:
        return None
    return Placement(across[0], down[0], across[1], down[1], across[2], across[3], down[2], down[3])
