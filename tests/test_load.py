"""The render seams on synthetic images (no corpus): ``pipeline.inspect`` answers as a render's first steps do,
and ``load.load_at_size`` (the one decode-at-size of the pipeline, the vision models and the benchmark ceiling)
gives exactly the size asked with the right pixels, whatever the decoder."""

from __future__ import annotations

import io

import numpy as np
import pytest
import pyvips
from PIL import Image

from edgeproxy.compose import encoder_options
from edgeproxy.errors import ProxyError
from edgeproxy.http.negotiate import Negotiated
from edgeproxy.render import load, pipeline
from edgeproxy.render.geometry import Box
from edgeproxy.settings import load_settings
from edgeproxy.url.grammar import parse_options
from edgeproxy.url.media import INPUT_FORMATS
from testkit import coordinates

LIMITS = pipeline.Limits(
    max_source_bytes=1 << 20,
    max_source_pixels=1_000_000,
    max_frames=4,
    max_output_dimension=8192,
    allowed_formats=frozenset(INPUT_FORMATS),
    max_blur_cost=1000,
    trim_max_side=1024,
)
WIDTH, HEIGHT = 640, 480


def levels(image: pyvips.Image) -> np.ndarray:
    """The image's pixels, H × W × bands, as ints."""
    return image.numpy().reshape(image.height, image.width, image.bands).astype(np.int64)


WHOLE = Box(0, 0, WIDTH, HEIGHT)


def coordinate_error(image: pyvips.Image, region: Box[int] = WHOLE) -> float:
    """Mean absolute error (levels) of the red and green channels of ``image`` (a resized ``region`` of
    the WIDTH × HEIGHT coordinate picture) against the coordinates they must hold."""
    width, height = image.width, image.height
    x = region.x + (np.arange(width) + 0.5) * region.w / width
    y = region.y + (np.arange(height) + 0.5) * region.h / height
    want_red = np.broadcast_to(255 * x / WIDTH, (height, width))
    want_green = np.broadcast_to((255 * y / HEIGHT)[:, None], (height, width))
    got = levels(image)
    return float((np.abs(got[..., 0] - want_red).mean() + np.abs(got[..., 1] - want_green).mean()) / 2)


def picture(fmt: str) -> bytes:
    return coordinates.encode(coordinates.image(WIDTH, HEIGHT), fmt)


# --- load_at_size ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif", "tiff"])
def test_load_at_size_gives_exactly_the_size_asked_with_the_right_pixels(fmt: str):
    data = picture(fmt)
    info = pipeline.inspect(data, LIMITS).info
    loaded = load.load_at_size(data, info, 160, 120)
    assert (loaded.image.width, loaded.image.height) == (160, 120)
    assert loaded.random_access is info.pillow  # AVIF decodes whole through Pillow; the others stream
    assert coordinate_error(loaded.image) < 3


@pytest.mark.parametrize("dct_shrink", [True, False])
@pytest.mark.parametrize("size", [(160, 120), (300, 200), (641, 100)])
def test_both_jpeg_shrink_rules_reach_the_exact_size(dct_shrink: bool, size: tuple[int, int]):
    data = picture("jpeg")
    info = pipeline.inspect(data, LIMITS).info
    image = load.load_at_size(data, info, *size, dct_shrink=dct_shrink).image
    assert (image.width, image.height) == size
    assert coordinate_error(image) < 3


@pytest.mark.parametrize("fmt", ["jpeg", "png", "avif"])
def test_a_region_is_cut_from_the_upright_original_then_resized(fmt: str):
    data = picture(fmt)
    info = pipeline.inspect(data, LIMITS).info
    region = Box(100, 50, 320, 240)
    loaded = load.load_at_size(data, info, 80, 60, region=region)
    assert (loaded.image.width, loaded.image.height) == (80, 60)
    assert loaded.random_access  # decoded whole: any step may read it out of order
    assert coordinate_error(loaded.image, region) < 3


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied_before_the_size(orientation: int):
    data = coordinates.encode(coordinates.stored(coordinates.image(WIDTH, HEIGHT), orientation), "jpeg")
    info = pipeline.inspect(data, LIMITS).info
    assert (info.width, info.height) == (WIDTH, HEIGHT)
    for region in (None, Box(0, 0, 320, 240)):
        image = load.load_at_size(data, info, 64, 48, region=region).image
        assert (image.width, image.height) == (64, 48)
        assert coordinate_error(image, region or WHOLE) < 4


def test_an_animation_keeps_every_frame_at_the_size():
    data = coordinates.encode(coordinates.animation(64, 48, 3), "webp")
    info = pipeline.inspect(data, LIMITS).info
    assert info.animated and info.pages == 3
    image = load.load_at_size(data, info, 32, 24, animated=True).image
    assert (image.width, image.height, image.get("page-height")) == (32, 72, 24)
    blues = [int(np.median(levels(image)[24 * i : 24 * (i + 1), :, 2])) for i in range(3)]
    assert blues == pytest.approx(coordinates.FRAME_BLUE[:3], abs=2)
    first = load.load_at_size(data, info, 32, 24).image  # not animated: the first frame only
    assert (first.width, first.height) == (32, 24)


def test_a_format_only_pillow_reads_decodes_whole():
    out = io.BytesIO()
    Image.fromarray(levels(coordinates.image(WIDTH, HEIGHT)).astype(np.uint8)).save(out, "BMP")
    info = pipeline.inspect(out.getvalue(), LIMITS).info
    assert (info.format, info.pillow) == ("bmp", True)
    loaded = load.load_at_size(out.getvalue(), info, 160, 120)
    assert loaded.random_access and coordinate_error(loaded.image) < 3


def test_flat_srgb_flattens_alpha_onto_white_and_makes_grey_rgb():
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[:, :20] = (200, 30, 30, 255)  # the left half opaque red, the right half transparent
    data = pyvips.Image.new_from_memory(rgba.tobytes(), 40, 40, 4, "uchar").copy(interpretation="srgb")
    png = data.pngsave_buffer()
    flat = levels(load.flat_srgb(png, pipeline.inspect(png, LIMITS).info, 20, 20))
    assert flat.shape == (20, 20, 3)
    # Lanczos rings for a few pixels either side of the edge; beyond them, the colour and white
    assert np.abs(flat[:, :6] - (200, 30, 30)).max() <= 1 and flat[:, 14:].min() >= 254
    grey = pyvips.Image.black(30, 30).copy(interpretation="b-w").pngsave_buffer()
    assert levels(load.flat_srgb(grey, pipeline.inspect(grey, LIMITS).info, 10, 10)).shape == (10, 10, 3)


# --- inspect ---------------------------------------------------------------------------------------------------------


def test_inspect_reads_the_header_and_keeps_the_bytes():
    data = picture("png")
    found = pipeline.inspect(data, LIMITS)
    assert found.data is data  # no copy of the original
    assert (found.info.format, found.info.width, found.info.height, found.info.pages) == ("png", WIDTH, HEIGHT, 1)


def test_inspect_hands_the_decoders_the_sanitised_svg_only():
    svg = (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="30" height="20" onload="alert(1)">'
        b'<rect width="30" height="20"/></svg>'
    )
    found = pipeline.inspect(svg, LIMITS)
    assert (found.info.format, found.info.width, found.info.height) == ("svg", 30, 20)
    assert found.data != svg and b"onload" not in found.data
    with pytest.raises(ProxyError) as refused:
        pipeline.inspect(svg, LIMITS.__class__(**{**_fields(LIMITS), "allowed_formats": frozenset({"png"})}))
    assert refused.value.status == 415


def _fields(limits: pipeline.Limits) -> dict[str, object]:
    return {name: getattr(limits, name) for name in limits.__slots__}


def render_error(data: bytes, limits: pipeline.Limits) -> tuple[int, str]:
    settings = load_settings(signing_key="k")
    ctx = pipeline.Context(
        data=data,
        negotiated=Negotiated(parse_options(["w:50"]), frozenset(), ()),
        limits=limits,
        encode_options=encoder_options(settings),
        default_quality=settings.default_quality,
        deadline=float("inf"),
    )
    with pytest.raises(ProxyError) as caught:
        pipeline.run(ctx)
    return caught.value.status, caught.value.message


@pytest.mark.parametrize(
    ("data", "changes", "status"),
    [
        (picture("png"), {"max_source_pixels": WIDTH * HEIGHT - 1}, 413),
        (coordinates.encode(coordinates.animation(16, 16, 5), "gif"), {}, 413),  # 5 frames, the limit is 4
        (picture("webp"), {"allowed_formats": frozenset({"png"})}, 415),
        (b"%PDF-1.7 not an image", {}, 415),
        (b"\x89PNG\r\n\x1a\n garbage", {}, 422),
        (b"", {}, 422),
    ],
    ids=["pixels", "frames", "format", "pdf", "garbage", "empty"],
)
def test_inspect_answers_as_a_render_does(data: bytes, changes: dict[str, object], status: int):
    limits = pipeline.Limits(**{**_fields(LIMITS), **changes})
    with pytest.raises(ProxyError) as caught:
        pipeline.inspect(data, limits)
    assert (caught.value.status, caught.value.message) == render_error(data, limits)
    assert caught.value.status == status
