"""SSIMULACRA2 (``edgeproxy.quality.ssimulacra2``): the score of corpus photos encoded by edgeproxy's
encoders agrees with the PyPI port's (``ssimulacra2`` 0.3, github.com/Pacidus/py-ssimulacra2), and the
metric's properties hold on synthetic images.

The port departs from the C++ reference (github.com/cloudinary/ssimulacra2) in two places, and the
comparison takes the reference's side in both: its blur mirrors the image at the left and right
edges where the reference's recursive Gaussian (libjxl ``FastGaussian``) reads zeros, which moves
scores by up to 3 points at low quality; here the port's ``blur_image`` is given the reference's
zero padding. And it stops at a scale smaller than 8 px where the reference stops after one (so
800 × 166 gets 5 scales instead of 6, and its weights shift: up to 30 points); the photos here are
tall enough (≥ 225 px at 800 px wide) for 6 scales either way. Against the C++ binary itself
(``python -m bench.ssimulacra2 --cpp``) this module agrees within 0.3 points on photos below q95.
"""

from __future__ import annotations

import io
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import pyvips
from PIL import Image

from edgeproxy.quality import ssimulacra2
from edgeproxy.quality.ssimulacra2 import Reference, score
from edgeproxy.render import encoding
from testkit import images
from testkit.env import missing

OPTIONS = encoding.EncodeOptions(
    avif_effort=0, webp_effort=2, jpeg_progressive=False, png_compression=6, jxl_effort=7, threads=1
)  # edgeproxy's default efforts
WIDTH = 800
#: Corpus photos of different sources and sizes (JPEG, WebP, an ICC profile), all ≥ 225 px tall at 800 px.
PORT_PHOTOS = ("giunchedi-portrait.jpg", "imaginary-large.jpg", "webp-photo.webp", "adobe-rgb-icc.jpg")
QUALITIES = {"jpeg": (30, 60, 90), "webp": (30, 60, 90), "avif": (25, 50, 80)}
PHOTO = images.photo(320, 240, seed=3).copy_memory()


def rgb(image: pyvips.Image) -> pyvips.Image:
    """``image`` as the metric takes it: 3-band 8-bit sRGB, in memory."""
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    if image.bands < 3 or image.interpretation != "srgb":
        image = image.colourspace("srgb")
    return image.cast("uchar").copy_memory()


def encoded(image: pyvips.Image, fmt: str, quality: int) -> pyvips.Image:
    """``image`` through edgeproxy's encoder and libvips' decoder."""
    return rgb(pyvips.Image.new_from_buffer(encoding.encode(image, fmt, quality, True, OPTIONS), ""))


def ppm(image: pyvips.Image) -> io.BytesIO:
    """An in-memory PPM file of a 3-band 8-bit image (what the port's ``Image.open`` reads)."""
    out = io.BytesIO()
    Image.frombuffer("RGB", (image.width, image.height), image.write_to_memory()).save(out, "PPM")
    out.seek(0)
    return out


@pytest.fixture(scope="module")
def port(monkeypatch_module: pytest.MonkeyPatch) -> ModuleType:
    """The PyPI port's module, its blur zero-padded on both axes as the reference's. Skips without
    the port (fails under CI=true, where the test extra brings it)."""
    try:
        import ssimulacra2.ssimulacra2 as module
        from scipy import ndimage
    except ImportError:
        missing("the PyPI port of SSIMULACRA2", "pip install '.[test]'")

    def zero_padded_blur(image, sigma=1.5):
        return ndimage.gaussian_filter(image, sigma=sigma, truncate=3.33, mode="constant", cval=0.0, axes=(0, 1))

    monkeypatch_module.setattr(module, "blur_image", zero_padded_blur)
    return module


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.mark.slow  # the port takes about 2 s per pair
@pytest.mark.parametrize("name", PORT_PHOTOS)
def test_scores_agree_with_the_pypi_port_within_one_point(corpus: Path, port: ModuleType, name: str):
    reference = rgb(pyvips.Image.thumbnail(str(corpus / name), WIDTH, size="down"))
    assert reference.width == WIDTH and reference.height >= 225  # 6 scales by the port's rule too
    prepared = Reference(reference)
    rows = []
    for fmt, qualities in QUALITIES.items():
        for quality in qualities:
            distorted = encoded(reference, fmt, quality)
            ours = prepared.score(distorted)
            theirs = port.compute_ssimulacra2(ppm(reference), ppm(distorted))
            rows.append((fmt, quality, ours, theirs))
    off = [f"{fmt} q{q}: ours {a:.2f}, port {b:.2f}" for fmt, q, a, b in rows if abs(a - b) > 1.0]
    assert not off, off
    # The pairs span the scale: from clearly degraded to nearly transparent.
    assert min(a for *_, a, _ in rows) < 50 < 80 < max(a for *_, a, _ in rows)


def test_identical_images_score_100():
    assert score(PHOTO, PHOTO) == pytest.approx(100.0, abs=1e-6)
    assert score(images.flat(64, 64, (200, 30, 30)), images.flat(64, 64, (200, 30, 30))) == pytest.approx(100.0)


def test_blur_scores_lower_than_light_compression():
    jpeg = encoded(PHOTO, "jpeg", 92)
    blurred = PHOTO.gaussblur(2.0).cast("uchar").copy_memory()
    light, blur = score(PHOTO, jpeg), score(PHOTO, blurred)
    assert light > 85 > 60 > blur


def test_the_score_rises_with_the_encoder_quality():
    prepared = Reference(PHOTO)
    scores = [prepared.score(encoded(PHOTO, "jpeg", q)) for q in (15, 40, 70, 95)]
    assert scores == sorted(scores) and scores[0] < 50 and scores[-1] > 85


def test_a_prepared_reference_gives_the_one_shot_score():
    distorted = encoded(PHOTO, "webp", 50)
    prepared = Reference(PHOTO)
    assert prepared.score(distorted) == score(PHOTO, distorted)
    assert prepared.score(distorted) == prepared.score(distorted)  # nothing in it changes


def test_the_score_is_not_symmetric():
    """Which image is the reference matters: its edges are the detail a distorted image can lose,
    and edges only the distorted image has are artifacts, with other weights."""
    blurred = PHOTO.gaussblur(1.2).cast("uchar").copy_memory()
    assert abs(score(PHOTO, blurred) - score(blurred, PHOTO)) > 1.0


def test_a_small_colour_change_in_a_flat_image_costs_points():
    base = images.flat(64, 48, (120, 160, 200))
    assert 0 < score(base, images.flat(64, 48, (124, 160, 200))) < 100
    assert score(base, images.flat(64, 48, (140, 160, 200))) < score(base, images.flat(64, 48, (124, 160, 200)))


def test_mismatched_sizes_raise():
    with pytest.raises(ValueError, match="one size"):
        score(PHOTO, PHOTO.crop(0, 0, 320, 239))
    with pytest.raises(ValueError, match="one size"):
        Reference(PHOTO).score(PHOTO.crop(0, 0, 319, 240))


def test_other_than_three_8_bit_bands_raise():
    with pytest.raises(ValueError, match="3-band 8-bit"):
        score(images.with_alpha(PHOTO), images.with_alpha(PHOTO))
    with pytest.raises(ValueError, match="3-band 8-bit"):
        score(PHOTO, PHOTO.cast("ushort"))
    with pytest.raises(ValueError, match="3-band 8-bit"):
        Reference(images.grey(PHOTO))


def test_images_under_8_by_8_raise_and_8_by_8_scores():
    with pytest.raises(ValueError, match="at least 8x8"):
        score(PHOTO.crop(0, 0, 7, 40), PHOTO.crop(0, 0, 7, 40))
    tiny = PHOTO.crop(100, 100, 8, 8)
    assert score(tiny, tiny) == pytest.approx(100.0)
    assert score(tiny, tiny.gaussblur(1).cast("uchar")) < 100


def test_scales_follow_the_reference_rule():
    """A scale is computed while the previous one is at least 8 × 8 (the C++ loop tests before it
    halves): 800 × 166 has 6 scales, down to 25 × 6 px; 64 × 64 has 5, down to 4 × 4."""
    assert ssimulacra2._scale_count(800, 166) == 6
    assert ssimulacra2._scale_count(64, 64) == 5
    assert ssimulacra2._scale_count(8, 8) == 2
    assert ssimulacra2._scale_count(4000, 4000) == 6
    # The 5-scale weights are the first 90 of the table, as the reference reads them.
    strip = images.photo(800, 166, seed=5)
    assert 0 < score(strip, encoded(strip, "jpeg", 50)) < 100


def test_the_blur_is_the_references_recursive_gaussian_with_zero_padding():
    """The blur's 9 taps are the impulse response of libjxl's recursive Gaussian at sigma 1.5 (the
    values: its recursion, ``tools/gauss_blur.cc``, run on an impulse); outside the image it reads zeros."""
    taps = ssimulacra2._TAPS
    assert len(taps) == 9 and taps.sum() == pytest.approx(1.0)
    assert taps[4] == pytest.approx(0.264621, abs=1e-6) and taps[0] == pytest.approx(0.009414, abs=1e-6)
    ones = ssimulacra2._blur([np.ones((40, 50), np.float32)])[0]
    assert ones[20, 25] == pytest.approx(1.0, abs=1e-6)
    assert ones[0, 25] == pytest.approx(taps[4:].sum(), abs=1e-6)
    assert ones[0, 0] == pytest.approx(taps[4:].sum() ** 2, abs=1e-6)
