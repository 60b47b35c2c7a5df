"""Fit, gravity, DPR, enlarge and crop as pure geometry."""

from __future__ import annotations

import pytest

from edgeproxy.errors import ProxyError
from edgeproxy.render.geometry import Box, Canvas, Face, check_box, focal_window, map_box, plan, ratio_box
from edgeproxy.url.spec import Crop, Fit, Gravity, TransformSpec


def out(spec: TransformSpec, w: int = 800, h: int = 600, max_dim: int = 8192):
    return plan(spec, w, h, max_dim)


@pytest.mark.parametrize(
    ("spec", "size"),
    [
        (TransformSpec(), (800, 600)),
        (TransformSpec(width=400), (400, 300)),
        (TransformSpec(height=150), (200, 150)),
        (TransformSpec(width=400, height=400), (400, 300)),  # inside
        (TransformSpec(width=400, height=400, fit=Fit.COVER), (400, 400)),
        (TransformSpec(width=400, height=400, fit=Fit.FILL), (400, 400)),
        (TransformSpec(width=400, height=400, fit=Fit.OUTSIDE), (533, 400)),
        (TransformSpec(width=400, height=400, fit=Fit.PAD), (400, 400)),
        (TransformSpec(width=1600), (800, 600)),  # never enlarged by default
        (TransformSpec(width=1600, enlarge=True), (1600, 1200)),
        (TransformSpec(width=1600, fit=Fit.CONTAIN), (1600, 1200)),  # contain always reaches the box
        (TransformSpec(width=200, dpr=2), (400, 300)),
        (TransformSpec(width=200, dpr=1.5), (300, 225)),
        (TransformSpec(width=1000, height=1000, fit=Fit.COVER), (800, 600)),  # no enlarge, no crop
        (TransformSpec(width=1000, height=300, fit=Fit.COVER), (800, 300)),
        (TransformSpec(width=300, rotate=90), (300, 400)),  # box applies after rotation
        (TransformSpec(crop=Crop(0.5, 0.5, 0.5, 0.5, True)), (400, 300)),
        (TransformSpec(crop=Crop(700, 500, 500, 500)), (100, 100)),  # clipped to the image
        # ar: the other side from the ratio, then fit as for that w x h
        (TransformSpec(width=400, aspect_ratio=(1, 1), fit=Fit.COVER), (400, 400)),
        (TransformSpec(height=300, aspect_ratio=(16, 9), fit=Fit.COVER), (533, 300)),
        (TransformSpec(width=400, aspect_ratio=(1, 1)), (400, 300)),  # inside: the width limits
        (TransformSpec(width=400, aspect_ratio=(2, 1)), (267, 200)),  # inside: the height limits
        (TransformSpec(width=400, aspect_ratio=(1, 1), fit=Fit.PAD), (400, 400)),
        (TransformSpec(width=400, aspect_ratio=(1, 1), fit=Fit.FILL), (400, 400)),
        (TransformSpec(width=1000, aspect_ratio=(1, 1), fit=Fit.CONTAIN), (1000, 750)),
        (TransformSpec(width=1000, aspect_ratio=(1, 1), fit=Fit.COVER), (600, 600)),  # no enlarge: ratio kept
        (TransformSpec(width=1000, aspect_ratio=(1, 1), fit=Fit.COVER, enlarge=True), (1000, 1000)),
        (TransformSpec(aspect_ratio=(1, 1), fit=Fit.COVER), (600, 600)),  # alone: the largest square
        (TransformSpec(aspect_ratio=(4, 5), fit=Fit.COVER, rotate=90), (600, 750)),  # of the 600x800 rotated image
        (TransformSpec(width=200, dpr=2, aspect_ratio=(3, 2), fit=Fit.COVER), (400, 267)),
    ],
)
def test_output_sizes(spec, size):
    assert out(spec).output_size == size


def test_cover_crop_follows_compass_gravity_and_focal_point():
    def crop_of(gravity):
        return out(TransformSpec(width=300, height=300, fit=Fit.COVER, gravity=gravity)).final_crop

    assert crop_of(Gravity()) == Box(50, 0, 300, 300)  # resized to 400x300 first
    assert crop_of(Gravity("west", 0.0, 0.5)) == Box(0, 0, 300, 300)
    assert crop_of(Gravity("east", 1.0, 0.5)) == Box(100, 0, 300, 300)
    assert crop_of(Gravity("fp", 0.9, 0.5)) == Box(100, 0, 300, 300)  # clamped inside the image
    assert crop_of(Gravity("fp", 0.3, 0.5)) == Box(0, 0, 300, 300)
    smart = out(TransformSpec(width=300, height=300, fit=Fit.COVER, gravity=Gravity("smart")))
    assert smart.smart and smart.resize == (400, 300) and smart.final_crop == Box(50, 0, 300, 300)


def test_ratio_cover_crop_follows_gravity():
    def crop_of(gravity):
        return out(TransformSpec(width=300, aspect_ratio=(1, 1), fit=Fit.COVER, gravity=gravity)).final_crop

    assert crop_of(Gravity()) == Box(50, 0, 300, 300)  # the same crops as w:300/h:300
    assert crop_of(Gravity("east", 1.0, 0.5)) == Box(100, 0, 300, 300)
    assert crop_of(Gravity("fp", 0.3, 0.5)) == Box(0, 0, 300, 300)
    face = out(TransformSpec(width=300, aspect_ratio=(1, 1), fit=Fit.COVER, gravity=Gravity("face")))
    assert face.smart and face.final_crop == Box(50, 0, 300, 300)


@pytest.mark.parametrize(
    ("size", "ratio", "box"),
    [
        ((800, 600), (1, 1), (600, 600)),
        ((800, 600), (16, 9), (800, 450)),
        ((600, 800), (16, 9), (600, 338)),
        ((800, 600), (1, 100), (6, 600)),
        ((800, 600), (100, 1), (800, 8)),
        ((1, 1), (1, 100), (1, 1)),
        ((533, 300), (16, 9), (533, 300)),  # a box already of the ratio is kept exactly
    ],
)
def test_ratio_box_is_the_largest_box_of_the_ratio_inside(size, ratio, box):
    assert ratio_box(*size, ratio) == box


def test_focal_window_centres_on_a_point_and_stays_inside():
    assert focal_window((400, 300), (300, 300), (200, 150)) == Box(50, 0, 300, 300)
    assert focal_window((400, 300), (100, 100), (390, 10)) == Box(300, 0, 100, 100)  # clamped at the corner
    assert focal_window((400, 300), (100, 100), (120, 200)) == Box(70, 150, 100, 100)


def test_pad_places_image_by_gravity():
    p = out(TransformSpec(width=400, height=400, fit=Fit.PAD, gravity=Gravity("north", 0.5, 0.0)))
    assert p.resize == (400, 300) and p.canvas == Canvas(400, 400, 0, 0)
    p = out(TransformSpec(width=400, height=400, fit=Fit.PAD))
    assert p.canvas == Canvas(400, 400, 0, 50)


def test_output_is_capped_at_max_dimension():
    assert out(
        TransformSpec(width=100, fit=Fit.OUTSIDE, height=5000, enlarge=True), 100, 100, max_dim=1000
    ).output_size == (1000, 1000)


def test_box_over_limit_and_crop_outside_are_400():
    with pytest.raises(ProxyError) as info:
        check_box(TransformSpec(width=3000, dpr=3), 8192)
    assert info.value.status == 400 and "9000 device pixels" in info.value.message
    with pytest.raises(ProxyError) as info:
        check_box(TransformSpec(height=100, aspect_ratio=(100, 1)), 8192)
    assert (info.value.status, info.value.message) == (
        400,
        "option width (from ar): 10000 device pixels is over the limit of 8192",
    )
    with pytest.raises(ProxyError) as info:
        out(TransformSpec(crop=Crop(900, 0, 10, 10)))
    assert info.value.status == 400


def test_jpeg_shrink_keeps_at_least_the_target_size():
    from edgeproxy.render.geometry import jpeg_shrink

    assert jpeg_shrink(2040, 1666, 512, 418) == 2  # 1/4 would give 510 px
    assert jpeg_shrink(2048, 1666, 512, 416) == 4
    assert jpeg_shrink(4032, 3024, 300, 225) == 8
    assert jpeg_shrink(800, 533, 800, 533) == 1
    assert jpeg_shrink(801, 533, 400, 267) == 1  # 533 // 2 = 266 < 267
    assert jpeg_shrink(1, 1, 1, 1) == 1


# map_box: a face box (fractions of the upright original) through crop, rotation and flip. Each
# expectation is worked out by hand on a 200 x 100 original with a box at x 10..50, y 20..40 px.
BOX = Box(0.05, 0.2, 0.2, 0.2)


@pytest.mark.parametrize(
    ("crop", "rotate", "flip", "expected"),
    [
        (None, 0, "", (0.05, 0.2, 0.2, 0.2)),
        (Box(0, 0, 100, 100), 0, "", (0.1, 0.2, 0.4, 0.2)),  # the left half: x 10..50 of 100 px
        (Box(30, 0, 100, 100), 0, "", (0.0, 0.2, 0.2, 0.2)),  # clipped at the crop's left edge: x 30..50
        (None, 90, "", (0.6, 0.05, 0.2, 0.2)),  # clockwise: top-left goes to top-right
        (None, 180, "", (0.75, 0.6, 0.2, 0.2)),
        (None, 270, "", (0.2, 0.75, 0.2, 0.2)),  # counter-clockwise: top-left goes to bottom-left
        (None, 0, "h", (0.75, 0.2, 0.2, 0.2)),
        (None, 0, "v", (0.05, 0.6, 0.2, 0.2)),
        (None, 90, "h", (0.2, 0.05, 0.2, 0.2)),  # rotated, then mirrored
    ],
)
def test_map_box_follows_crop_rotation_and_flip(crop, rotate, flip, expected):
    mapped = map_box(BOX, (200, 100), crop, rotate, flip)
    assert mapped is not None
    assert (mapped.x, mapped.y, mapped.w, mapped.h) == pytest.approx(expected)


def test_map_box_outside_the_crop_is_none():
    assert map_box(BOX, (200, 100), Box(100, 0, 100, 100)) is None


def test_face_gravity_plans_a_measured_crop_like_smart():
    spec = TransformSpec(width=100, height=100, fit=Fit.COVER, gravity=Gravity("face"))
    assert plan(spec, 400, 200, 8192).smart
    padded = plan(TransformSpec(width=100, height=100, fit=Fit.PAD, gravity=Gravity("face")), 400, 200, 8192)
    assert padded.canvas == Canvas(100, 100, 0, 25)  # centred, as smart and fp pad


# Box and Face: the types every box travels in (pixels or fractions).


def test_box_edges_in_pixels_and_fractions():
    pixels = Box(10, 20, 30, 40)
    assert (pixels.right, pixels.bottom, pixels.edges()) == (40, 60, (10, 20, 40, 60))
    fractions = Box(0.25, 0.5, 0.5, 0.25)
    assert fractions.edges() == (0.25, 0.5, 0.75, 0.75)


@pytest.mark.parametrize(
    ("box", "clipped"),
    [
        (Box(0.1, 0.2, 0.3, 0.4), Box(0.1, 0.2, 0.3, 0.4)),  # inside: unchanged
        (Box(-0.1, 0.9, 0.3, 0.2), Box(0.0, 0.9, 0.2, 0.1)),  # over the left and bottom edges
        (Box(0.8, -0.5, 0.5, 2.0), Box(0.8, 0.0, 0.2, 1.0)),  # over three edges
        (Box(1.0, 0.2, 0.3, 0.4), None),  # wholly right of the image
        (Box(0.2, -0.4, 0.3, 0.4), None),  # touches the top edge only
    ],
)
def test_box_clipped_to_the_image(box: Box[float], clipped: Box[float] | None):
    got = box.clipped()
    if clipped is None:
        assert got is None
    else:
        assert got is not None and got.edges() == pytest.approx(clipped.edges())


def test_map_box_takes_and_gives_boxes_and_a_face_keeps_its_score():
    face = Face(Box(0.05, 0.2, 0.2, 0.2), 0.9)
    mapped = map_box(face.box, (200, 100), Box(0, 0, 100, 100))
    assert isinstance(mapped, Box) and mapped.edges() == pytest.approx((0.1, 0.2, 0.5, 0.4))
    assert face.score == 0.9 and face == Face(Box(0.05, 0.2, 0.2, 0.2), 0.9)
