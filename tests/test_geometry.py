"""Fit, gravity, DPR, enlarge and crop as pure geometry."""

from __future__ import annotations

import pytest

from edgeproxy.errors import ProxyError
from edgeproxy.geometry import check_box, focal_window, plan
from edgeproxy.spec import Crop, Fit, Gravity, TransformSpec


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
    ],
)
def test_output_sizes(spec, size):
    assert out(spec).output_size == size


def test_cover_crop_follows_compass_gravity_and_focal_point():
    def crop_of(gravity):
        return out(TransformSpec(width=300, height=300, fit=Fit.COVER, gravity=gravity)).final_crop

    assert crop_of(Gravity()) == (50, 0, 300, 300)  # resized to 400x300 first
    assert crop_of(Gravity("west", 0.0, 0.5)) == (0, 0, 300, 300)
    assert crop_of(Gravity("east", 1.0, 0.5)) == (100, 0, 300, 300)
    assert crop_of(Gravity("fp", 0.9, 0.5)) == (100, 0, 300, 300)  # clamped inside the image
    assert crop_of(Gravity("fp", 0.3, 0.5)) == (0, 0, 300, 300)
    smart = out(TransformSpec(width=300, height=300, fit=Fit.COVER, gravity=Gravity("smart")))
    assert smart.smart and smart.resize == (400, 300) and smart.final_crop == (50, 0, 300, 300)


def test_focal_window_centres_on_a_point_and_stays_inside():
    assert focal_window((400, 300), (300, 300), (200, 150)) == (50, 0, 300, 300)
    assert focal_window((400, 300), (100, 100), (390, 10)) == (300, 0, 100, 100)  # clamped at the corner
    assert focal_window((400, 300), (100, 100), (120, 200)) == (70, 150, 100, 100)


def test_pad_places_image_by_gravity():
    p = out(TransformSpec(width=400, height=400, fit=Fit.PAD, gravity=Gravity("north", 0.5, 0.0)))
    assert p.resize == (400, 300) and p.canvas == (400, 400, 0, 0)
    p = out(TransformSpec(width=400, height=400, fit=Fit.PAD))
    assert p.canvas == (400, 400, 0, 50)


def test_output_is_capped_at_max_dimension():
    assert out(TransformSpec(width=100, fit=Fit.OUTSIDE, height=5000, enlarge=True), 100, 100,
               max_dim=1000).output_size == (1000, 1000)


def test_box_over_limit_and_crop_outside_are_400():
    with pytest.raises(ProxyError) as info:
        check_box(TransformSpec(width=3000, dpr=3), 8192)
    assert info.value.status == 400 and "9000 device pixels" in info.value.message
    with pytest.raises(ProxyError) as info:
        out(TransformSpec(crop=Crop(900, 0, 10, 10)))
    assert info.value.status == 400


def test_jpeg_shrink_keeps_at_least_the_target_size():
    from edgeproxy.geometry import jpeg_shrink

    assert jpeg_shrink(2040, 1666, 512, 418) == 2  # 1/4 would give 510 px
    assert jpeg_shrink(2048, 1666, 512, 416) == 4
    assert jpeg_shrink(4032, 3024, 300, 225) == 8
    assert jpeg_shrink(800, 533, 800, 533) == 1
    assert jpeg_shrink(801, 533, 400, 267) == 1  # 533 // 2 = 266 < 267
    assert jpeg_shrink(1, 1, 1, 1) == 1
