"""``gray:1`` (the output in grey, alpha kept) and ``mb:N`` (a byte budget for JPEG, WebP and AVIF).

Every test talks to a real edgeproxy (uvicorn in a thread) on 127.0.0.1 serving synthetic originals
(``testkit.images``) and decodes what it answers: libvips for stills, GIF and WebP, Pillow's libavif
for animated AVIF (libvips reads its first frame only).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from edgeproxy.compose import encoder_options
from edgeproxy.quality.budget import MAX_ENCODES, fit_budget
from edgeproxy.render.encoding import EncodeOptions, encode
from edgeproxy.settings import load_settings
from testkit import images
from testkit.app import make_client, signed

OPTIONS = EncodeOptions(
    avif_effort=0, webp_effort=2, jpeg_progressive=False, png_compression=6, jxl_effort=4, threads=1
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    folder: Path = tmp_path_factory.mktemp("originals")
    (folder / "photo.jpg").write_bytes(images.encode(images.photo(600, 400), "jpeg", Q=95))
    (folder / "alpha.png").write_bytes(images.encode(images.with_alpha(images.photo(240, 160, seed=1)), "png"))
    (folder / "anim.gif").write_bytes(images.encode(images.animation(96, 64, 3), "gif"))
    with make_client({"m": str(folder)}) as c:
        yield c


def get(client: httpx.Client, path: str) -> httpx.Response:
    response = client.get(signed(path))
    assert response.status_code == 200, (path, response.text)
    return response


def pixels(body: bytes) -> np.ndarray:
    """Every frame of ``body`` as one (rows, width, bands) uint8 array (frames stacked)."""
    array = np.asarray(images.decode(body).numpy(), dtype=np.uint8)
    return array[..., None] if array.ndim == 2 else array


def spread(rgb: np.ndarray) -> int:
    """The largest difference between R, G and B of any pixel (0 for grey)."""
    colour = rgb[..., :3].astype(np.int16)
    return int((colour.max(axis=-1) - colour.min(axis=-1)).max())


# ------------------------------------------------------------------------------------------ gray:1


@pytest.mark.parametrize(("fmt", "bands", "tolerance"), [("jpeg", 1, 0), ("png", 2, 0), ("webp", 4, 2), ("avif", 4, 2)])
def test_gray_outputs_grey_pixels_keeping_alpha(client, fmt: str, bands: int, tolerance: int):
    """JPEG and PNG are written grey (one channel, two with alpha: JPEG's is flattened); WebP and
    AVIF, which have no grey mode, decode to R = G = B within WebP's lossy chroma rounding."""
    source = "photo.jpg" if fmt == "jpeg" else "alpha.png"
    grey = get(client, f"/w:200/f:{fmt}/gray:1/m/{source}")
    colour = get(client, f"/w:200/f:{fmt}/m/{source}")
    assert grey.headers["content-type"] == f"image/{fmt}"
    got, was = pixels(grey.content), pixels(colour.content)
    assert got.shape[:2] == was.shape[:2] == (133, 200)
    assert got.shape[2] == bands
    assert spread(was) > 60  # the colour answer is not grey: the test can fail
    assert got.shape[2] < 3 or spread(got) <= tolerance, spread(got)
    if fmt != "jpeg":  # alpha kept: the same mask (AVIF's alpha is lossy)
        assert np.abs(got[..., -1].astype(np.int16) - was[..., -1]).max() <= (0 if fmt != "avif" else 8)
    # luminance, not one channel: Rec. 709 weights of the colour answer, within a few levels
    luma = was[..., :3].astype(np.float64) @ np.array([0.2126, 0.7152, 0.0722])
    opaque = was[..., -1] == 255 if fmt != "jpeg" else np.ones(luma.shape, dtype=bool)
    assert np.abs(got[..., 0][opaque] - luma[opaque]).mean() < 6
    assert grey.headers["etag"] != colour.headers["etag"]  # part of the spec, hence of the ETag


@pytest.mark.parametrize("fmt", ["gif", "webp"])
def test_gray_keeps_every_frame_of_an_animation(client, fmt: str):
    response = get(client, f"/f:{fmt}/gray:1/m/anim.gif")
    decoded = images.decode(response.content)
    assert (decoded.width, images.page_height(decoded), decoded.height) == (96, 64, 192)
    assert spread(pixels(response.content)) <= (0 if fmt == "gif" else 2)


def test_gray_keeps_every_frame_of_an_animated_avif(client):
    body = get(client, "/f:avif/gray:1/m/anim.gif").content
    assert body[4:12] == b"ftypavis"
    picture = Image.open(io.BytesIO(body))
    assert picture.n_frames == 3
    for index in range(3):
        picture.seek(index)
        frame = np.asarray(picture.convert("RGB"))
        assert frame.shape == (64, 96, 3) and spread(frame) <= 2, index


# ------------------------------------------------------------------------------------------ mb:N


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif"])
def test_a_byte_budget_is_met_for_lossy_formats(client, fmt: str):
    """Over budget, the quality is lowered until the body fits; within it, the answer is unchanged."""
    free = get(client, f"/w:400/f:{fmt}/m/photo.jpg")
    size = len(free.content)
    for budget in (int(size * 0.7), int(size * 0.45)):
        answer = get(client, f"/w:400/f:{fmt}/mb:{budget}/m/photo.jpg")
        assert len(answer.content) <= budget, (budget, len(answer.content))
        decoded = images.decode(answer.content)
        assert (images.loader_format(decoded), decoded.width, decoded.height) == (
            {"jpeg": "jpeg", "webp": "webp", "avif": "heif"}[fmt],
            400,
            267,
        )
        assert answer.headers["etag"] != free.headers["etag"]
    roomy = get(client, f"/w:400/f:{fmt}/mb:{size}/m/photo.jpg")
    assert roomy.content == free.content


def test_an_unreachable_budget_answers_the_smallest_encode(client):
    """1 KiB is below what even quality 10 gives a 600 × 400 photo: the smallest encode, not an error."""
    free = get(client, "/f:webp/m/photo.jpg")
    tight = get(client, "/f:webp/mb:1024/m/photo.jpg")
    assert 1024 < len(tight.content) < len(free.content) / 2
    assert images.decode(tight.content).width == 600


def test_the_budget_wins_over_a_quality_and_a_target(client):
    fixed = get(client, "/w:400/f:jpeg/q:95/m/photo.jpg")
    budget = len(fixed.content) // 3
    for quality in ("q:95", "q:auto:90"):
        answer = get(client, f"/w:400/f:jpeg/{quality}/mb:{budget}/m/photo.jpg")
        assert len(answer.content) <= budget, quality


def test_png_and_gif_ignore_the_budget(client):
    for path in ("/w:200/f:png/m/alpha.png", "/f:gif/m/anim.gif"):
        free = get(client, path)
        budgeted = get(client, path.replace("/m/", "/mb:1024/m/"))
        assert budgeted.content == free.content and len(free.content) > 1024, path


def test_fit_budget_bisects_in_at_most_six_encodes():
    image = images.photo(320, 240).copy_memory()
    first = encode(image, "jpeg", 90, True, OPTIONS)
    budget = len(first) // 2
    fitted = fit_budget(image, "jpeg", budget, (90, first), OPTIONS, floor=10)
    assert fitted.fits and len(fitted.body) <= budget
    assert fitted.encodes <= MAX_ENCODES - 1
    assert len(encode(image, "jpeg", fitted.quality + 4, True, OPTIONS)) > budget  # close to the best
    with pytest.raises(ValueError, match="png"):
        fit_budget(image, "png", budget, (100, first), OPTIONS, floor=10)


def test_the_floor_is_the_max_bytes_min_quality_setting():
    """Nothing fits 1 KiB at a floor of 60: the smallest encode made is the floor's."""
    options = encoder_options(load_settings(allow_unsigned=True, max_bytes_min_quality=60))
    assert options.max_bytes_floor == 60
    image = images.photo(320, 240).copy_memory()
    first = encode(image, "webp", 90, True, options)
    fitted = fit_budget(image, "webp", 1024, (90, first), options, floor=options.max_bytes_floor)
    assert (fitted.fits, fitted.quality) == (False, 60)
    assert fitted.body == encode(image, "webp", 60, True, options)
