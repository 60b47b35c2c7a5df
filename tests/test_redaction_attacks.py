"""Attacks on redaction and the moderation blur that crop, tile, rotate or scale the derivative.

A viewer who can sign (or find) URLs with ``c:`` crops must learn nothing more from many small
crops than from the whole redacted derivative: the obscured pixels are computed in the
original's coordinates over the whole face box (or the whole original for the moderation blur
and for redaction when the face detector failed), so every crop, tile, rotation and scale shows
the same obscured pixels (issue 19, item 2; SECURITY.md, "Redaction and blur").

Everything goes through the real HTTP app (uvicorn on 127.0.0.1) with the real CenterFace and
open_nsfw models, signed URLs, PNG answers decoded with pyvips. The original is the corpus
portrait (800x533, one face) copied into a temporary local origin.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from testkit.app import make_client, make_served, signed
from testkit.images import decode, loader_format

PORTRAIT = "giunchedi-portrait.jpg"
WIDTH, HEIGHT = 800, 533
#: Hand-labelled face of the portrait (x0, y0, x1, y1), pixels of the 800x533 original
#: (tests/test_vision_http.py reads it the same way).
FACE = (312, 75, 480, 297)
#: The region tiled: the face and the 20 % redaction margin around CenterFace's box, and more.
REGION = (262, 20, 250, 330)  # left, top, width, height
TILES = 5
#: Mean absolute difference (levels, 0..255) allowed between a reassembled tiling and the single
#: render of the same region: PNG is lossless, so what remains is where a libvips decode of a
#: region and of the whole image differ (they do not, here) and rounding.
SAME = 3.0


def pixels(response: httpx.Response) -> np.ndarray:
    """The decoded PNG answer as a float array height x width x bands (after checking it is one)."""
    assert response.status_code == 200, (response.status_code, response.text[:300])
    image = decode(response.content)
    assert loader_format(image) == "png", loader_format(image)
    return image.numpy().astype(np.float64).reshape(image.height, image.width, image.bands)


def get(client: httpx.Client, path: str) -> np.ndarray:
    return pixels(client.get(signed(path)))


def tiled(
    client: httpx.Client,
    origin: str,
    region: tuple[int, int, int, int] = REGION,
    tiles: int = TILES,
    options: str = "",
    name: str = PORTRAIT,
) -> np.ndarray:
    """``region`` (left, top, width, height of the original) reassembled from ``tiles`` x ``tiles``
    signed ``c:`` crops at native size, each asked for separately."""
    left, top, width, height = region
    xs = [left + round(i * width / tiles) for i in range(tiles + 1)]
    ys = [top + round(j * height / tiles) for j in range(tiles + 1)]
    rows = []
    for j in range(tiles):
        row = []
        for i in range(tiles):
            crop = f"c:{xs[i]}:{ys[j]}:{xs[i + 1] - xs[i]}:{ys[j + 1] - ys[j]}"
            tile = get(client, f"/{crop}/{options}f:png/{origin}/{name}")
            assert tile.shape[:2] == (ys[j + 1] - ys[j], xs[i + 1] - xs[i]), tile.shape
            row.append(tile)
        rows.append(np.concatenate(row, axis=1))
    return np.concatenate(rows, axis=0)


def window(image: np.ndarray, region: tuple[int, int, int, int] = REGION) -> np.ndarray:
    left, top, width, height = region
    return image[top : top + height, left : left + width]


def face(image: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = FACE
    return image[y0:y1, x0:x1]


@pytest.fixture(scope="module")
def folder(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("redaction-attacks")
    shutil.copyfile(corpus / PORTRAIT, root / PORTRAIT)
    return root


@pytest.fixture(scope="module")
def client(folder: Path, models: dict[str, Path]) -> Iterator[httpx.Client]:
    """Origins over one folder: ``plain`` (nothing forced), ``pix`` and ``blur`` (``redact_origins``)."""
    origins = {"plain": str(folder), "pix": str(folder), "blur": str(folder)}
    with make_client(origins, face_model=str(models["face"]), redact_origins={"pix": "pixelate", "blur": "blur"}) as c:
        yield c


@pytest.fixture(scope="module")
def original(client: httpx.Client) -> np.ndarray:
    image = get(client, f"/f:png/plain/{PORTRAIT}")
    assert image.shape == (HEIGHT, WIDTH, 3)
    return image


# --- tiles ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", ["pix", "blur"])
def test_tiles_reassemble_into_the_single_redacted_render(client: httpx.Client, original: np.ndarray, origin: str):
    """25 signed ``c:`` tiles over the face reassemble into exactly what the whole derivative shows:
    no tile re-obscures its own small part of the face with finer cells."""
    whole = get(client, f"/f:png/{origin}/{PORTRAIT}")
    assert whole.shape == original.shape
    hidden = np.abs(face(whole) - face(original)).mean()
    assert hidden > 20, f"the face changed by {hidden:.1f} levels only: not redacted"
    mosaic = tiled(client, origin)
    difference = np.abs(mosaic - window(whole)).mean()
    assert difference <= SAME, f"{origin}: tiles differ from the single render by {difference:.2f} levels"
    # and the mosaic's face is as far from the original as the whole render's
    x0, y0, x1, y1 = FACE
    left, top = REGION[:2]
    tiled_face = mosaic[y0 - top : y1 - top, x0 - left : x1 - left]
    assert np.abs(tiled_face - face(original)).mean() > 0.9 * hidden


@pytest.mark.parametrize("origin", ["pix", "blur"])
def test_tiny_crops_inside_the_face_are_as_obscured_as_the_whole_face(
    client: httpx.Client, original: np.ndarray, origin: str
):
    """2x2 crops inside the face show the single render's obscured pixels, never the original's:
    over 16 of them the mean difference from the original is about the whole face's."""
    whole = get(client, f"/f:png/{origin}/{PORTRAIT}")
    hidden = np.abs(face(whole) - face(original)).mean()
    x0, y0, x1, y1 = FACE
    rng = np.random.default_rng(19)
    from_original, from_whole = [], []
    for _ in range(16):
        x, y = int(rng.integers(x0, x1 - 2)), int(rng.integers(y0, y1 - 2))
        crop = get(client, f"/c:{x}:{y}:2:2/f:png/{origin}/{PORTRAIT}")
        assert crop.shape == (2, 2, 3)
        from_original.append(np.abs(crop - original[y : y + 2, x : x + 2]).mean())
        from_whole.append(np.abs(crop - whole[y : y + 2, x : x + 2]).mean())
    assert max(from_whole) <= SAME, f"{origin}: a 2x2 crop differs from the whole render by {max(from_whole):.1f}"
    assert np.mean(from_original) > 0.6 * hidden, (
        f"{origin}: 2x2 crops differ from the original by {np.mean(from_original):.1f} levels, the face by {hidden:.1f}"
    )


# --- rotations and scales --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", ["pix", "blur"])
@pytest.mark.parametrize(
    ("options", "undo"),
    [
        ("w:400/rot:90/", lambda a: np.rot90(a, 1)),  # rot90 counter-clockwise undoes a clockwise rotation
        ("h:400/rot:180/", lambda a: np.rot90(a, 2)),
        ("w:400/rot:270/flip:h/", lambda a: np.rot90(a[:, ::-1], -1)),
    ],
)
def test_rotations_show_the_same_obscured_pixels(client: httpx.Client, origin: str, options: str, undo):
    """Each rotation (the box applies to the rotated image: 400 px is the original's height scaled
    by 3/4 each time) shows the unrotated 600x400 derivative's obscured pixels, turned."""
    upright = get(client, f"/h:400/f:png/{origin}/{PORTRAIT}")
    turned = undo(get(client, f"/{options}f:png/{origin}/{PORTRAIT}"))
    assert turned.shape == upright.shape == (400, 600, 3)
    x0, y0, x1, y1 = (round(v * 0.75) for v in FACE)
    assert np.abs(turned[y0:y1, x0:x1] - upright[y0:y1, x0:x1]).mean() <= SAME
    # a rotated native tile too: c: applies to the upright original, before the rotation
    whole = get(client, f"/f:png/{origin}/{PORTRAIT}")
    x, y = FACE[0] + 40, FACE[1] + 50
    tile = undo(get(client, f"/c:{x}:{y}:60:70/{options.split('/', 1)[1]}f:png/{origin}/{PORTRAIT}"))
    assert np.abs(tile - whole[y : y + 70, x : x + 60]).mean() <= SAME


@pytest.mark.parametrize("origin", ["pix", "blur"])
@pytest.mark.parametrize("scale", [2, 4])
def test_smaller_renders_show_the_same_cell_colours(client: httpx.Client, origin: str, scale: int):
    """A derivative ``scale`` times smaller samples the same grid: its pixel (i, j) shows what the
    native render shows around original pixel (scale * i + scale / 2, scale * j + scale / 2)."""
    whole = get(client, f"/f:png/{origin}/{PORTRAIT}")
    small = get(client, f"/w:{WIDTH // scale}/f:png/{origin}/{PORTRAIT}")
    x0, y0, x1, y1 = (v // scale + 1 for v in FACE)
    rows, cols = np.arange(y0, y1 - 1), np.arange(x0, x1 - 1)
    sampled = whole[(rows * scale + scale // 2)[:, None], (cols * scale + scale // 2)[None, :]]
    difference = np.abs(small[y0 : y1 - 1, x0 : x1 - 1] - sampled).mean()
    assert difference <= 2 * SAME, f"{origin} 1/{scale}: {difference:.2f} levels from the native render's cells"
    # and a tile of the smaller derivative is that derivative's pixels
    x0, y0, x1, y1 = FACE
    tile = get(client, f"/c:{x0}:{y0}:{x1 - x0}:{y1 - y0}/w:{(x1 - x0) // scale}/f:png/{origin}/{PORTRAIT}")
    assert (
        np.abs(
            tile - small[y0 // scale : y0 // scale + tile.shape[0], x0 // scale : x0 // scale + tile.shape[1]]
        ).mean()
        <= 2 * SAME
    )


# --- the whole-image wash: moderation blur, and redaction with a failed detector -----------------------------------


def whole_image_tiles(client: httpx.Client, origin: str, whole: np.ndarray) -> float:
    """Mean difference between 5x5 native tiles of the whole original and the single render."""
    mosaic = tiled(client, origin, (0, 0, WIDTH, HEIGHT))
    return float(np.abs(mosaic - whole).mean())


def test_moderation_blur_from_a_verdict_is_crop_invariant(folder: Path):
    """A pending verdict served blurred (no model runs: the render washes the whole original
    itself): tiles and tiny crops show the single blurred render."""
    with make_client({"m": str(folder)}, moderation=True, moderation_pending="blur") as client:
        whole = get(client, f"/f:png/m/{PORTRAIT}")
        difference = whole_image_tiles(client, "m", whole)
        assert difference <= SAME, f"moderation blur: tiles differ by {difference:.2f} levels"
        crop = get(client, f"/c:400:200:2:2/f:png/m/{PORTRAIT}")
        assert np.abs(crop - whole[200:202, 400:402]).mean() <= SAME


def test_moderation_blur_from_the_classifier_is_crop_invariant(folder: Path, models: dict[str, Path]):
    """A blur decided by the nsfw score (the analysis ran and holds the wash's grid): the same."""
    with make_client(
        {"m": str(folder)},
        nsfw_model=str(models["nsfw"]),
        moderation=True,
        moderation_blur_threshold=0.0,
        moderation_block_threshold=1.0,
    ) as client:
        whole = get(client, f"/f:png/m/{PORTRAIT}")
        difference = whole_image_tiles(client, "m", whole)
        assert difference <= SAME, f"classifier blur: tiles differ by {difference:.2f} levels"
        turned = np.rot90(get(client, f"/w:400/rot:90/f:png/m/{PORTRAIT}"), 1)
        assert np.abs(turned - get(client, f"/h:400/f:png/m/{PORTRAIT}")).mean() <= SAME


class FailingDetector:
    """mocked: a face model whose inference fails (the real one cannot be made to fail on a real
    image), wrapping the loaded model on ``app.state.components.service.vision``; every other attribute is the
    real model's."""

    def __init__(self, real: object):
        self.real = real

    def __getattr__(self, name: str):
        if name in ("detect", "find"):

            def fail(*args, **kwargs):
                raise RuntimeError("mocked inference failure")

            return fail
        return getattr(self.real, name)


def test_redaction_with_a_failed_detector_is_crop_invariant(
    folder: Path, models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
):
    """The face model fails: the whole image is obscured (fail closed), the same way in every tile."""
    with make_served({"r": str(folder)}, face_model=str(models["face"]), redact_origins={"r": "pixelate"}) as (
        client,
        app,
    ):
        vision = app.state.components.service.vision
        monkeypatch.setattr(vision, "faces", FailingDetector(vision.faces))
        response = client.get(signed(f"/f:png/r/{PORTRAIT}"))
        assert response.headers["cache-control"] == "public, max-age=60"
        whole = pixels(response)
        difference = whole_image_tiles(client, "r", whole)
        assert difference <= SAME, f"failed detector: tiles differ by {difference:.2f} levels"
        crop = get(client, f"/c:{FACE[0] + 50}:{FACE[1] + 60}:2:2/f:png/r/{PORTRAIT}")
        assert np.abs(crop - whole[FACE[1] + 60 : FACE[1] + 62, FACE[0] + 50 : FACE[0] + 52]).mean() <= SAME


@pytest.mark.parametrize(
    ("name", "bands"),
    [
        ("gopher-alpha.png", 4),  # alpha
        ("grey16-alpha.png", 2),  # 16-bit grey with alpha
        ("image.avif", 3),  # decoded by Pillow
        ("giunchedi-cmyk.jpg", 3),  # CMYK
        ("animated.gif", 3),  # first frame (PNG output)
    ],
)
def test_moderation_blur_of_every_kind_of_original(corpus: Path, tmp_path: Path, name: str, bands: int):
    """The render's own wash (no analysis) for originals of every kind: 2x2 native tiles reassemble
    into the whole, alpha is what it was, and no detail is left."""
    shutil.copyfile(corpus / name, tmp_path / name)
    with make_client({"m": str(tmp_path), "plain": str(tmp_path)}, moderation=True, moderation_pending="blur") as c:
        plain = pixels(c.get(signed(f"/f:png/plain/{name}")))  # "plain" has a pending verdict too: blurred
        whole = get(c, f"/f:png/m/{name}")
        assert np.array_equal(whole, plain)
    with make_client({"plain": str(tmp_path)}) as c:
        clear = get(c, f"/f:png/plain/{name}")
    assert whole.shape == clear.shape and whole.shape[2] == bands, (whole.shape, clear.shape)
    height, width = whole.shape[:2]
    with make_client({"m": str(tmp_path)}, moderation=True, moderation_pending="blur") as c:
        mosaic = tiled(c, "m", (0, 0, width, height), tiles=2, name=name)
    assert np.abs(mosaic - whole).mean() <= SAME
    colours = 1 if bands <= 2 else 3
    if bands in (2, 4):
        assert np.array_equal(whole[..., colours:], clear[..., colours:]), "alpha changed"
    detail = np.abs(np.diff(whole[..., :colours], axis=1)).mean()
    assert detail < 0.25 * max(0.1, np.abs(np.diff(clear[..., :colours], axis=1)).mean()) + 0.5
