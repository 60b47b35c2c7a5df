"""The obscuring grids of one original (``obscure.Grid``), from the analysis' decoded copy (numpy).

Each cell's colour is the exact area mean of the copy over the cell's rectangle, partial pixels
weighted by the part they cover (a box filter), so the grid does not depend on where pixel edges
fall. Computed once per original by ``vision.analysis`` and cached with its analysis.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgeproxy.render.geometry import Box, Face
from edgeproxy.render.obscure import OBSCURE_CELLS, WASH_CELLS, Grid, cell_counts, face_box


def _weights(lo: float, hi: float, cells: int, pixels: int) -> tuple[int, np.ndarray]:
    """For an axis of ``pixels`` pixels (pixel p covers [p, p + 1)), the span ``lo`` .. ``hi`` cut
    into ``cells`` equal cells: (first pixel, [cells, n] float32 weights over pixels first ..
    first + n - 1), each row summing to 1 (the part of each pixel inside the cell, over the cell's
    length), so nonzero only over the pixels the cell touches."""
    first = max(0, min(pixels - 1, int(np.floor(lo))))
    last = max(first + 1, min(pixels, int(np.ceil(hi))))
    edges = lo + (hi - lo) * np.arange(cells + 1) / cells
    left = np.arange(first, last, dtype=np.float64)
    overlap = np.clip(
        np.minimum(left[None, :] + 1, edges[1:, None]) - np.maximum(left[None, :], edges[:-1, None]), 0, None
    )
    totals = overlap.sum(axis=1, keepdims=True)  # > 0: every cell has a length inside the image
    return first, (overlap / totals).astype(np.float32)


def grid(rgb: np.ndarray, box: Box[float], cells: int, *, smooth: bool, original: tuple[int, int]) -> Grid:
    """The ``Grid`` of ``box`` (fractions of the image) in ``rgb`` (H x W x 3 uint8, the whole
    upright original scaled), ``cells`` across the long side of the box as it is in the
    ``original`` (width, height pixels)."""
    height, width = rgb.shape[:2]
    x0, y0, x1, y1 = box.edges()
    cols, rows = cell_counts((x1 - x0) * original[0], (y1 - y0) * original[1], cells)
    left, wx = _weights(x0 * width, x1 * width, cols, width)
    top, wy = _weights(y0 * height, y1 * height, rows, height)
    region = rgb[top : top + wy.shape[1], left : left + wx.shape[1]].astype(np.float32)
    # Rows first, each cell row over only the pixel rows it touches (einsum's own loops: no BLAS
    # thread pool inside a render thread), then the columns of the small result.
    bands = [np.flatnonzero(weights) for weights in wy]
    by_row = np.stack(
        [
            np.einsum("p,pqc->qc", wy[r, band[0] : band[-1] + 1], region[band[0] : band[-1] + 1])
            for r, band in enumerate(bands)
        ]
    )
    means = np.einsum("rqc,kq->rkc", by_row, wx)  # rows x cols x 3
    cells_bytes = np.clip(np.rint(means), 0, 255).astype(np.uint8).tobytes()
    return Grid(box, cols, rows, cells_bytes, smooth)


def face_grids(rgb: np.ndarray, faces: Sequence[Face], original: tuple[int, int]) -> dict[str, tuple[Grid, ...]]:
    """For each mode (``blur``, ``pixelate``), the grid of each face grown by the redaction margin,
    in the order of ``faces``. A face whose grown box is empty (it cannot be: faces have a size) is
    left out."""
    boxes = [b for f in faces if (b := face_box(f.box)) is not None]
    return {
        mode: tuple(grid(rgb, b, cells, smooth=mode == "blur", original=original) for b in boxes)
        for mode, cells in OBSCURE_CELLS.items()
    }


def wash(rgb: np.ndarray, original: tuple[int, int]) -> Grid:
    """The whole image's grid, ``WASH_CELLS`` across its long side, bilinear (a colour wash)."""
    return grid(rgb, Box(0.0, 0.0, 1.0, 1.0), WASH_CELLS, smooth=True, original=original)
