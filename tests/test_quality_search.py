"""The quality search (``edgeproxy.quality.search.find_quality``): the lowest encoder quality whose
decoded output reaches a SSIMULACRA2 target, in at most 6 encodes. On synthetic images through the
real encoders and metric, and on scripted q–score curves (the encoder and the metric replaced) for
the search's own logic."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import pyvips

from edgeproxy.quality import search
from edgeproxy.quality.search import PRIOR, RANGES, find_quality
from edgeproxy.quality.ssimulacra2 import Reference
from edgeproxy.render import encoding
from testkit import images

OPTIONS = encoding.EncodeOptions(
    avif_effort=0, webp_effort=2, jpeg_progressive=False, png_compression=6, jxl_effort=7, threads=1
)
PHOTO = images.photo(320, 240, seed=7).copy_memory()


def score_of(reference: pyvips.Image, body: bytes) -> float:
    """SSIMULACRA2 of an encoded image against ``reference``, decoded as the search judges it (AVIF
    by libheif and by libavif, the lower score: ``search.browser_decodes``)."""
    shown = [i if i.format == "uchar" else i.colourspace("srgb") for i in search.browser_decodes(body)]
    return min(Reference(reference).score(image.copy_memory()) for image in shown)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The qualities the search encodes at, in order (the real encoder still runs)."""
    calls: list[int] = []
    real = encoding.encode

    def encode(image, fmt, quality, strip, options, deadline=None):
        calls.append(quality)
        return real(image, fmt, quality, strip, options, deadline)

    monkeypatch.setattr(search.encoding, "encode", encode)
    return calls


@pytest.mark.parametrize(("fmt", "target"), [("jpeg", 70), ("webp", 70), ("avif", 80), ("jpeg", 85)])
def test_the_choice_reaches_the_target_and_the_quality_below_does_not(counted: list[int], fmt: str, target: float):
    choice = find_quality(PHOTO, fmt, target, OPTIONS)
    decoded = pyvips.Image.new_from_buffer(choice.body, "")
    assert decoded.get("vips-loader").startswith({"jpeg": "jpeg", "webp": "webp", "avif": "heif"}[fmt])
    assert (decoded.width, decoded.height) == (PHOTO.width, PHOTO.height)
    assert choice.reached and choice.score >= target
    assert score_of(PHOTO, choice.body) == pytest.approx(choice.score, abs=1e-9)  # the body is what was scored
    assert choice.minimal and RANGES[fmt].low < choice.quality <= RANGES[fmt].high
    below = encoding.encode(PHOTO, fmt, choice.quality - 1, True, OPTIONS)
    assert score_of(PHOTO, below) < target
    assert choice.encodes == len(counted) - 1 <= 6  # the extra call is the check just above
    assert [q for q, _ in choice.tried] == counted[:-1]


def test_never_more_than_the_encodes_allowed(counted: list[int]):
    for fmt in RANGES:
        for target in (50, 65, 80, 90):
            counted.clear()
            choice = find_quality(PHOTO, fmt, target, OPTIONS)
            assert choice.encodes == len(counted) <= 6
            assert choice.score >= target or not choice.reached
    counted.clear()
    choice = find_quality(PHOTO, "jpeg", 75, OPTIONS, max_encodes=2)
    assert len(counted) <= 2 and choice.encodes == len(counted)


def test_a_target_of_100_returns_high_unreached(counted: list[int]):
    choice = find_quality(PHOTO, "jpeg", 100, OPTIONS)
    assert (choice.quality, choice.reached, choice.minimal) == (RANGES["jpeg"].high, False, False)
    assert RANGES["jpeg"].high in counted and len(counted) <= 6
    assert choice.body == encoding.encode(PHOTO, "jpeg", RANGES["jpeg"].high, True, OPTIONS)
    assert choice.score < 100


def test_a_flat_image_gets_the_lowest_quality():
    flat = images.flat(200, 120, (90, 140, 200))
    for fmt in RANGES:
        choice = find_quality(flat, fmt, 80, OPTIONS)
        assert (choice.quality, choice.reached, choice.minimal) == (RANGES[fmt].low, True, True)
    photo_choice = find_quality(PHOTO, "jpeg", 80, OPTIONS)
    assert photo_choice.quality > RANGES["jpeg"].low + 20


def test_the_range_given_is_kept():
    choice = find_quality(PHOTO, "webp", 99, OPTIONS, low=50, high=60)
    assert choice.quality == 60 and not choice.reached
    choice = find_quality(PHOTO, "webp", 10, OPTIONS, low=50, high=60)
    assert (choice.quality, choice.minimal, choice.encodes) == (50, True, 1)


def test_an_image_with_alpha_is_judged_on_dark_and_light_backgrounds():
    rgba = images.with_alpha(PHOTO)
    choice = find_quality(rgba, "webp", 75, OPTIONS)
    decoded = pyvips.Image.new_from_buffer(choice.body, "")
    assert decoded.bands == 4 and choice.reached and choice.minimal
    for background in (26, 230):
        flat = rgba.flatten(background=[background] * 3).cast("uchar")
        shown = decoded.flatten(background=[background] * 3).cast("uchar")
        assert Reference(flat).score(shown) >= choice.score - 1e-9


def test_grey_images_are_searched():
    choice = find_quality(images.grey(PHOTO), "jpeg", 70, OPTIONS)
    assert choice.reached and choice.minimal


def test_bad_requests_raise():
    with pytest.raises(ValueError, match="no quality search for format 'png'"):
        find_quality(PHOTO, "png", 70, OPTIONS)
    with pytest.raises(ValueError, match="bad search"):
        find_quality(PHOTO, "jpeg", 70, OPTIONS, low=80, high=70)
    with pytest.raises(ValueError, match="bad search"):
        find_quality(PHOTO, "jpeg", 70, OPTIONS, max_encodes=0)
    with pytest.raises(ValueError, match="animations"):
        find_quality(images.animation(32, 32, 3), "webp", 70, OPTIONS)
    with pytest.raises(ValueError, match="at least 8x8"):
        find_quality(PHOTO.crop(0, 0, 6, 6), "jpeg", 70, OPTIONS)


def test_the_ranges_and_priors():
    for fmt, span in RANGES.items():
        assert 1 <= span.low < span.high <= 100 and span.high - span.low + 1 <= 63
        for prior in (PRIOR, search.OPTIMISED_PRIOR):
            targets = [t for t, _ in prior[fmt]]
            qualities = [q for _, q in prior[fmt]]
            assert targets == sorted(targets) and qualities == sorted(qualities)
            assert search._prior(fmt, 0, prior) == qualities[0] and search._prior(fmt, 100, prior) == qualities[-1]
            assert all(span.low <= q <= span.high for q in qualities[1:-1])


# -- the search's logic on scripted curves ------------------------------------------------------------


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch):
    """Replace the encoder with one whose bytes are the quality, and the metric with ``curve``."""
    state: dict[str, Callable[[int], float]] = {}

    class Judge:
        def __init__(self, image: pyvips.Image) -> None:
            pass

        def score(self, body: bytes) -> float:
            return state["curve"](int(body))

    monkeypatch.setattr(search, "_Judge", Judge)
    monkeypatch.setattr(search.encoding, "encode", lambda image, fmt, q, *args: str(q).encode())

    tiny = images.flat(8, 8, (0, 0, 0)).copy_memory()

    def run(curve, fmt="jpeg", target=70.0, **kwargs):
        state["curve"] = curve
        return find_quality(tiny, fmt, target, OPTIONS, **kwargs)

    return run


@pytest.mark.parametrize("fmt", list(RANGES))
def test_monotone_curves_find_the_exact_lowest_quality(scripted, fmt: str):
    """Linear curves of several slopes, crossing the target anywhere in the range: the answer is the
    exact lowest quality, within 6 encodes, minimal, on every one."""
    span = RANGES[fmt]
    worst = 0
    for slope in (0.3, 0.6, 1.0, 2.0):
        for crossing in range(span.low, span.high + 1):
            choice = scripted(lambda q, c=crossing, s=slope: 70.0 + s * (q - c) + 0.01, fmt=fmt)
            assert (choice.quality, choice.reached) == (crossing, True), (slope, crossing, choice.tried)
            worst = max(worst, choice.encodes)
            assert choice.encodes <= 6
    assert worst <= 6


def test_a_curve_that_never_reaches_ends_on_high(scripted):
    choice = scripted(lambda q: 40.0 + q * 0.2)
    assert (choice.quality, choice.reached, choice.score) == (92, False, pytest.approx(58.4))
    assert 92 in [q for q, _ in choice.tried] and choice.encodes <= 6


def test_a_curve_with_dips_still_returns_a_quality_that_reaches_the_target(scripted):
    """Steps down of 3 points every 7 qualities: whatever the search lands on reaches the target."""
    for target in range(25, 82, 3):
        choice = scripted(lambda q: q - 10 - 3.0 * (q % 7 == 0), target=float(target))
        assert choice.reached and choice.score >= target
        hits = [q for q, s in choice.tried if s >= target]
        assert choice.quality == min(hits)
        if choice.minimal:
            assert choice.quality == RANGES["jpeg"].low or dict(choice.tried)[choice.quality - 1] < target


def test_when_the_encodes_run_out_the_best_hit_is_returned_unproven(scripted):
    """With one encode left and nothing that reached the target, the search tries ``high``."""
    curve = lambda q: 0.6 * q + 20  # noqa: E731 - crosses 70 at 83.3
    choice = scripted(curve, max_encodes=1)
    assert (choice.quality, choice.encodes, choice.reached, choice.minimal) == (92, 1, True, False)
    choice = scripted(curve, max_encodes=2)
    assert [q for q, _ in choice.tried] == [math.ceil(search._prior("jpeg", 70)), 92]
    assert (choice.quality, choice.reached, choice.minimal) == (92, True, False)
    choice = scripted(curve)
    assert (choice.quality, choice.reached, choice.minimal) == (84, True, True)


def test_the_optimised_tier_encodes_jpeg_with_the_tables_of_its_target():
    """Below target 85, mozjpeg's table 5 and 4:2:0 even at Q 90 and up (where libvips' auto turns
    to 4:4:4); from 85, table 8 with auto subsampling; the search serves what those options encode."""
    optimised = OPTIONS.optimised(4, 6, 1_000_000)

    def subsampling(options: encoding.EncodeOptions) -> str:
        body = encoding.encode(PHOTO, "jpeg", 95, True, options)
        return pyvips.Image.new_from_buffer(body, "").get("jpeg-chroma-subsample")

    assert subsampling(OPTIONS).startswith("4:4:4")
    assert subsampling(optimised.for_target(70)).startswith("4:2:0")
    assert subsampling(optimised.for_target(85)).startswith("4:4:4")
    assert (optimised.for_target(84.9).jpeg_quant_table, optimised.for_target(85).jpeg_quant_table) == (5, 8)
    assert OPTIONS.for_target(85) == OPTIONS  # the fast tier's options have no tables by target
    choice = find_quality(PHOTO, "jpeg", 70, optimised, prior=search.OPTIMISED_PRIOR)
    assert choice.body == encoding.encode(PHOTO, "jpeg", choice.quality, True, optimised.for_target(70))
    assert choice.body != encoding.encode(PHOTO, "jpeg", choice.quality, True, optimised)


def test_a_10_bit_avif_is_judged_as_a_browser_decodes_it():
    """The optimised tier's AVIF is 10-bit; libvips (libheif) converts it to RGB at 16 bits, libavif
    (Pillow, and Chromium's decoder) to 8 bits, which scores lower here. The target must hold in the
    browser: the search scores both decodes and keeps the lower, and the body reaches the target
    decoded either way."""
    import io

    import numpy as np
    from PIL import Image

    options = OPTIONS.optimised(avif_effort=0, webp_effort=2, search_max_pixels=10**6)
    assert [options.for_target(t).avif_bitdepth for t in (70, 74.9, 75, 80)] == [8, 8, 10, 10]
    choice = find_quality(PHOTO, "avif", 80, options)
    libvips = pyvips.Image.new_from_buffer(choice.body, "")
    assert (libvips.get("bits-per-sample"), libvips.format) == (10, "ushort")
    rgb = np.asarray(Image.open(io.BytesIO(choice.body)).convert("RGB"))
    browser = pyvips.Image.new_from_memory(rgb.tobytes(), rgb.shape[1], rgb.shape[0], 3, "uchar")
    assert Reference(PHOTO).score(browser) == pytest.approx(choice.score, abs=1e-9)
    assert choice.score >= 80
    assert Reference(PHOTO).score(libvips.colourspace("srgb")) > choice.score  # libheif's decode flatters it
    below = encoding.encode(PHOTO, "avif", choice.quality - 1, True, options.for_target(80))
    assert min(Reference(PHOTO).score(i.colourspace("srgb")) for i in search.browser_decodes(below)) < 80
