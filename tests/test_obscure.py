"""Obscuring grids (``edgeproxy.render.obscure``, ``vision.cells``, ``vips.paint``, ``load.wash``) on
synthetic images whose cell means are known exactly: where a grid lands for any crop and scale,
that every crop paints the same pixels, and that alpha, grey and animations are kept."""

from __future__ import annotations

import numpy as np
import pytest
import pyvips

from edgeproxy.render import load, source, vips
from edgeproxy.render.geometry import Box
from edgeproxy.render.obscure import Grid, Placement, cell_counts, face_box, place
from edgeproxy.vision import cells

pytest.importorskip("numpy")


def edges(x0: float, y0: float, x1: float, y1: float) -> Box[float]:
    """The box from (x0, y0) to (x1, y1)."""
    return Box(x0, y0, x1 - x0, y1 - y0)


def image_of(array: np.ndarray, interpretation: str = "srgb") -> pyvips.Image:
    height, width = array.shape[:2]
    bands = array.shape[2] if array.ndim == 3 else 1
    return pyvips.Image.new_from_memory(np.ascontiguousarray(array).tobytes(), width, height, bands, "uchar").copy(
        interpretation=interpretation
    )


def as_array(image: pyvips.Image) -> np.ndarray:
    return image.numpy().reshape(image.height, image.width, image.bands).astype(np.int64)


def quadrants(width: int = 120, height: int = 80) -> np.ndarray:
    """Four flat colours, one per quadrant: every cell mean is known."""
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[: height // 2, : width // 2] = (200, 10, 10)
    rgb[: height // 2, width // 2 :] = (10, 200, 10)
    rgb[height // 2 :, : width // 2] = (10, 10, 200)
    rgb[height // 2 :, width // 2 :] = (250, 250, 250)
    return rgb


def test_cell_counts_put_the_cells_on_the_long_side():
    assert cell_counts(800, 600, 8) == (8, 6)
    assert cell_counts(600, 800, 6) == (4, 6)
    assert cell_counts(4000, 10, 8) == (8, 1)
    assert cell_counts(5, 5, 6) == (6, 6)


def test_face_box_grows_by_the_margin_and_clips_to_the_original():
    grown = face_box(Box(0.4, 0.4, 0.1, 0.2))
    assert grown is not None and grown.edges() == pytest.approx((0.38, 0.36, 0.52, 0.64))
    clipped = face_box(Box(0.0, 0.9, 0.1, 0.1))
    assert clipped is not None and clipped.edges() == pytest.approx((0.0, 0.88, 0.12, 1.0))


def test_grid_cells_are_exact_area_means():
    rgb = quadrants()
    whole = cells.wash(rgb, (120, 80))
    assert (whole.cols, whole.rows, whole.smooth) == (8, 5, True)
    means = np.frombuffer(whole.cells, np.uint8).reshape(5, 8, 3)
    assert tuple(means[0, 0]) == (200, 10, 10) and tuple(means[4, 7]) == (250, 250, 250)
    # row 2 straddles the horizontal edge (cells 16 px tall over rows 32..48): half and half
    assert tuple(means[2, 0]) == (105, 10, 105)
    # a box with fractional edges: weighted by the part of each pixel inside
    grid = cells.grid(rgb, edges(0.5 - 1.5 / 120, 0.0, 0.5 + 1.5 / 120, 0.5), 1, smooth=False, original=(120, 80))
    assert (grid.cols, grid.rows) == (1, 1)
    assert tuple(grid.cells) == (105, 105, 10)


@pytest.mark.parametrize("smooth", [False, True])
def test_every_crop_and_tile_paints_the_same_pixels(smooth: bool):
    """Paint one grid into the whole 120x80 image and into 3x3 tiles of it (as a c: crop would
    load them): the tiles reassemble into the whole, pixel for pixel."""
    rgb = quadrants()
    grid = cells.grid(rgb, edges(0.1, 0.15, 0.85, 0.9), 6, smooth=smooth, original=(120, 80))
    base = image_of(np.full((80, 120, 3), 128, np.uint8))
    at = place(grid, (120, 80), None, (120, 80))
    whole = as_array(vips.paint(base, [(grid, at)]))
    assert (whole != 128).any(axis=2).sum() > 0.5 * 120 * 80
    mosaic = np.zeros_like(whole)
    for top, bottom in ((0, 27), (27, 53), (53, 80)):
        for left, right in ((0, 40), (40, 81), (81, 120)):
            crop = Box(left, top, right - left, bottom - top)
            tile = base.crop(crop.x, crop.y, crop.w, crop.h)
            at = place(grid, (120, 80), crop, (tile.width, tile.height))
            mosaic[top:bottom, left:right] = as_array(vips.paint(tile, [(grid, at)] if at else []))
    assert np.array_equal(mosaic, whole)


def test_a_smaller_render_samples_the_same_cells():
    """Pixelated at half size, each output pixel shows the cell its centre lies in: the colours are
    the grid's own, and the cell boundaries stay where they are in the original."""
    rgb = quadrants()
    rgb[..., 1] = np.arange(120, dtype=np.uint8)[None, :] * 2  # every column of cells differs
    grid = cells.grid(rgb, Box(0.0, 0.0, 1.0, 1.0), 4, smooth=False, original=(120, 80))
    assert (grid.cols, grid.rows) == (4, 3)
    small = image_of(np.zeros((40, 60, 3), np.uint8))
    painted = as_array(vips.paint(small, [(grid, place(grid, (120, 80), None, (60, 40)))]))
    palette = {tuple(c) for c in np.frombuffer(grid.cells, np.uint8).reshape(-1, 3)}
    assert {tuple(c) for c in painted.reshape(-1, 3)} <= palette
    # cell columns are 30 original px wide: 15 px at half size
    assert np.array_equal(painted[:, 14], painted[:, 0]) and not np.array_equal(painted[:, 15], painted[:, 14])


def test_place_maps_a_source_crop_and_scale():
    grid = Grid(edges(0.25, 0.5, 0.75, 1.0), 2, 2, bytes(12), smooth=False)
    # the right half of a 200x100 original, scaled 1/2 to 50x50
    at = place(grid, (200, 100), Box(100, 0, 100, 100), (50, 50))
    assert at == Placement(0, 25, 25, 25, 2 * 2 / 100, (100 + 1 - 50) * 2 / 100, 2 * 2 / 50, 1 * 2 / 50)
    assert place(grid, (200, 100), Box(160, 0, 40, 40), (40, 40)) is None  # wholly outside the crop


def test_paint_keeps_alpha_and_grey():
    grid = Grid(Box(0.0, 0.0, 1.0, 1.0), 1, 1, bytes((90, 120, 150)), smooth=True)
    at = place(grid, (4, 4), None, (4, 4))
    alpha = np.arange(16, dtype=np.uint8).reshape(4, 4, 1) * 16
    rgba = image_of(np.concatenate([np.zeros((4, 4, 3), np.uint8), alpha], axis=2))
    painted = as_array(vips.paint(rgba, [(grid, at)]))
    assert painted.shape == (4, 4, 4)
    assert np.array_equal(painted[..., 3:], alpha) and (painted[..., :3] == (90, 120, 150)).all()
    grey = image_of(np.concatenate([np.zeros((4, 4, 1), np.uint8), alpha], axis=2), "b-w")
    painted = as_array(vips.paint(grey, [(grid, at)]))
    assert painted.shape == (4, 4, 2) and (painted[..., 0] == 120).all() and np.array_equal(painted[..., 1:], alpha)


def test_paint_paints_every_frame_of_an_animation():
    strip = image_of(np.zeros((30, 10, 3), np.uint8)).copy()
    strip.set_type(pyvips.GValue.gint_type, "page-height", 10)
    grid = Grid(Box(0.0, 0.0, 0.5, 0.5), 1, 1, bytes((255, 0, 0)), smooth=False)
    painted = vips.paint(strip, [(grid, place(grid, (10, 10), None, (10, 10)))])
    frames = as_array(painted).reshape(3, 10, 10, 3)
    assert painted.get("page-height") == 10
    for frame in frames:
        assert (frame[:5, :5] == (255, 0, 0)).all() and (frame[5:, :] == 0).all() and (frame[:, 5:] == 0).all()


def test_the_render_wash_decodes_the_original_small(tmp_path):
    """The render's own whole-original grid (no analysis) agrees with the analysis' within a level."""
    rgb = quadrants(160, 120)
    data = image_of(rgb).pngsave_buffer()
    info = source.probe(data)
    grid = load.wash(data, info)
    assert (grid.box, grid.cols, grid.rows, grid.smooth) == (Box(0.0, 0.0, 1.0, 1.0), 8, 6, True)
    from_render = np.frombuffer(grid.cells, np.uint8).reshape(6, 8, 3).astype(int)
    from_analysis = np.frombuffer(cells.wash(rgb, (160, 120)).cells, np.uint8).reshape(6, 8, 3).astype(int)
    assert np.abs(from_render - from_analysis).max() <= 2
