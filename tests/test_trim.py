"""``trim:THRESHOLD[:RRGGBB]``: uniform borders removed before cropping and resizing (libvips
``find_trim``), decoded from real responses of a running proxy.

Synthetic originals (``testkit.images``): a product shot on a white border, one on a magenta border
with a faint shadow ring (threshold), a transparent PNG with transparent borders, an image that is
all border, an animation on a white border; and a corpus photo padded with white (skipped where the
corpus is absent).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import pyvips

from edgeproxy.errors import ProxyError
from edgeproxy.url.grammar import parse_options
from edgeproxy.url.spec import Trim, canonical
from testkit.app import make_client, signed
from testkit.images import animation, decode, encode, flat, mean_rgb, page_height, photo

#: The product: a photo of this size placed at (LEFT, TOP) on a border canvas of CANVAS.
PRODUCT = (200, 120)
LEFT, TOP = 40, 50
CANVAS = (320, 240)
MAGENTA = (200, 30, 160)
#: A large product shot: searched on a copy of SEARCH_SIDE pixels (a quarter), so within 4 px.
BIG_CANVAS, BIG_PRODUCT, BIG_AT = (1600, 1200), (1000, 700), (300, 250)
SEARCH_SIDE = 400


def bordered(product: pyvips.Image, rgb: tuple[int, ...], canvas: tuple[int, int] = CANVAS) -> pyvips.Image:
    """``product`` at (LEFT, TOP) on a ``canvas`` of colour ``rgb`` (3 or 4 bands)."""
    return flat(*canvas, rgb).insert(product, LEFT, TOP)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("trim")
    shot = photo(*PRODUCT, seed=3)
    (root / "white.png").write_bytes(encode(bordered(shot, (255, 255, 255)), "png"))
    # A shadow ring of 8 px (grey 230, 25 levels off white) around the product: trimmed from 25 up.
    ringed = flat(PRODUCT[0] + 16, PRODUCT[1] + 16, (230, 230, 230)).insert(shot, 8, 8)
    (root / "shadow.png").write_bytes(encode(flat(*CANVAS, (255, 255, 255)).insert(ringed, LEFT - 8, TOP - 8), "png"))
    # Magenta border with one white pixel at the top-left: the default colour (that pixel) is white,
    # so only trim:...:c81ea0 finds the border.
    magenta = bordered(shot, MAGENTA).draw_rect([255, 255, 255], 0, 0, 1, 1, fill=True)
    (root / "magenta.png").write_bytes(encode(magenta, "png"))
    (root / "magenta-clean.png").write_bytes(encode(bordered(shot, MAGENTA), "png"))
    red = flat(*PRODUCT, (220, 20, 20, 255))
    (root / "transparent.png").write_bytes(encode(bordered(red, (0, 0, 0, 0)), "png"))
    (root / "blank.png").write_bytes(encode(flat(100, 80, (255, 255, 255)), "png"))
    frames = animation(*PRODUCT, 3)
    pages = [bordered(frames.crop(0, i * PRODUCT[1], *PRODUCT), (255, 255, 255)) for i in range(3)]
    strip = pyvips.Image.arrayjoin(pages, across=1).copy()
    strip.set_type(pyvips.GValue.gint_type, "page-height", CANVAS[1])
    strip.set_type(pyvips.GValue.array_int_type, "delay", [100] * 3)
    strip.set_type(pyvips.GValue.gint_type, "loop", 0)
    (root / "animated.gif").write_bytes(strip.gifsave_buffer())
    big = flat(*BIG_CANVAS, (255, 255, 255)).insert(photo(*BIG_PRODUCT, seed=4), *BIG_AT)
    (root / "big.png").write_bytes(encode(big, "png", compression=1))
    return root


@pytest.fixture(scope="module")
def client(folder: Path) -> Iterator[httpx.Client]:
    with make_client({"shop": str(folder)}, trim_max_side=SEARCH_SIDE) as c:
        yield c


def get(client: httpx.Client, path: str) -> pyvips.Image:
    response = client.get(signed(path))
    assert response.status_code == 200, response.text
    return decode(response.content)


def edge_means(image: pyvips.Image) -> list[list[float]]:
    """Mean RGB of the outermost row or column on each side (top, bottom, left, right)."""
    w, h = image.width, page_height(image)
    return [mean_rgb(image, *box) for box in ((0, 0, w, 1), (0, h - 1, w, 1), (0, 0, 1, h), (w - 1, 0, 1, h))]


def is_white(rgb: list[float]) -> bool:
    return min(rgb) > 250


# ---------------------------------------------------------------------------- the option


@pytest.mark.parametrize(
    ("option", "trim", "text"),
    [
        ("trim:10", Trim(10.0), "/trim:10"),
        ("trim:0", Trim(0.0), "/trim:0"),
        ("trim:12.5:FFffFF", Trim(12.5, (255, 255, 255)), "/trim:12.5:ffffff"),
        ("trim:255:00ff80", Trim(255.0, (0, 255, 128)), "/trim:255:00ff80"),
    ],
)
def test_trim_parses_and_has_one_canonical_form(option: str, trim: Trim, text: str) -> None:
    spec = parse_options([option])
    assert spec.trim == trim
    assert canonical(spec) == text
    assert parse_options([canonical(spec).lstrip("/")]) == spec


def test_trim_comes_before_crop_in_the_canonical_order() -> None:
    spec = parse_options(["c:1:2:30:40", "w:100", "trim:5"])
    assert canonical(spec) == "/w:100/trim:5/c:1:2:30:40"


@pytest.mark.parametrize(
    "option",
    ["trim:", "trim:x", "trim:-1", "trim:256", "trim:10:fff", "trim:10:ffffff80", "trim:10:ggffff", "trim:1:ffffff:2"],
)
def test_bad_trim_values_are_a_400_naming_the_option(client: httpx.Client, option: str) -> None:
    with pytest.raises(ProxyError) as raised:
        parse_options([option])
    assert raised.value.status == 400 and "trim" in raised.value.message
    response = client.get(signed(f"/{option}/shop/white.png"))
    assert response.status_code == 400
    assert "trim" in response.text
    assert "immutable" not in response.headers["cache-control"]


# ---------------------------------------------------------------------------- pixels


def test_a_white_border_is_trimmed_to_the_product(client: httpx.Client) -> None:
    untrimmed = get(client, "/f:png/shop/white.png")
    assert (untrimmed.width, untrimmed.height) == CANVAS
    image = get(client, "/trim:10/f:png/shop/white.png")
    assert (image.width, image.height) == PRODUCT
    assert not any(is_white(side) for side in edge_means(image))
    expected = photo(*PRODUCT, seed=3)
    assert (image.cast("float") - expected.cast("float")).abs().max() == 0  # PNG: the very pixels


def test_trim_comes_before_resizing_and_cropping(client: httpx.Client) -> None:
    image = get(client, "/w:100/trim:10/f:png/shop/white.png")
    assert (image.width, image.height) == (100, 60)
    assert not any(is_white(side) for side in edge_means(image))
    # c: is in pixels of the trimmed image: its top-left 50 x 30
    outside = client.get(signed("/trim:10/c:250:0:10:10/f:png/shop/white.png"))  # inside 320 x 240, not 200 x 120
    assert outside.status_code == 400 and "outside the 200x120 trimmed original" in outside.text
    cropped = get(client, "/trim:10/c:0:0:50:30/f:png/shop/white.png")
    whole = photo(*PRODUCT, seed=3)
    assert (cropped.cast("float") - whole.crop(0, 0, 50, 30).cast("float")).abs().max() == 0


def test_fit_pad_re_adds_a_uniform_margin_of_the_border_colour(client: httpx.Client) -> None:
    image = get(client, "/w:300/h:300/fit:pad/trim:10/f:png/shop/magenta-clean.png")
    assert (image.width, image.height) == (300, 300)
    # 200 x 120 centred on 300 x 300: 50 px left and right, 90 px top and bottom, all magenta
    for box in ((0, 0, 300, 90), (0, 210, 300, 90), (0, 0, 50, 300), (250, 0, 50, 300)):
        assert mean_rgb(image, *box) == pytest.approx(MAGENTA, abs=0.5)
    assert mean_rgb(image, 50, 90, 200, 120) != pytest.approx(MAGENTA, abs=20)
    # an explicit bg: still wins
    padded = get(client, "/w:300/h:300/fit:pad/bg:00ff00/trim:10/f:png/shop/magenta-clean.png")
    assert mean_rgb(padded, 0, 0, 300, 90) == pytest.approx([0, 255, 0], abs=0.5)


def test_the_threshold_decides_whether_a_faint_shadow_is_border(client: httpx.Client) -> None:
    strict = get(client, "/trim:10/f:png/shop/shadow.png")
    assert (strict.width, strict.height) == (PRODUCT[0] + 16, PRODUCT[1] + 16)
    assert mean_rgb(strict, 0, 0, strict.width, 1) == pytest.approx([230, 230, 230], abs=0.5)
    loose = get(client, "/trim:40/f:png/shop/shadow.png")
    assert (loose.width, loose.height) == PRODUCT


def test_the_colour_defaults_to_the_top_left_pixel_and_can_be_given(client: httpx.Client) -> None:
    by_corner = get(client, "/trim:10/f:png/shop/magenta.png")
    assert (by_corner.width, by_corner.height) == CANVAS  # the corner is white: no white border
    given = get(client, "/trim:10:c81ea0/f:png/shop/magenta.png")
    assert (given.width, given.height) == PRODUCT
    assert get(client, "/trim:10/f:png/shop/magenta-clean.png").width == PRODUCT[0]


def test_transparent_borders_are_trimmed_on_alpha_images(client: httpx.Client) -> None:
    image = get(client, "/trim:1/f:png/shop/transparent.png")
    assert (image.width, image.height, image.bands) == (*PRODUCT, 4)
    assert image[3].min() == 255  # no transparent pixel left
    assert mean_rgb(image, 0, 0, *PRODUCT) == pytest.approx([220, 20, 20], abs=0.5)
    padded = get(client, "/w:300/h:200/fit:pad/trim:1/f:png/shop/transparent.png")
    assert (padded.width, padded.height) == (300, 200)
    assert padded[3].crop(0, 0, 50, 200).max() == 0  # the margin is transparent again


def test_an_image_that_is_all_border_comes_back_unchanged(client: httpx.Client) -> None:
    image = get(client, "/trim:10/f:png/shop/blank.png")
    assert (image.width, image.height) == (100, 80)
    assert mean_rgb(image, 0, 0, 100, 80) == pytest.approx([255, 255, 255])


def test_an_animation_is_trimmed_by_its_first_frame_on_every_frame(client: httpx.Client) -> None:
    image = get(client, "/trim:10/f:gif/shop/animated.gif")
    assert (image.width, page_height(image), image.get("n-pages")) == (*PRODUCT, 3)


def test_a_large_original_is_searched_on_a_copy_and_never_cut(client: httpx.Client) -> None:
    """Over ``trim_max_side`` the borders are found on a shrunk copy (4x smaller here) and the box is
    rounded outwards: at most one copy pixel (4 px) of border stays on each side, and every pixel of
    the product is there, unchanged."""
    image = get(client, "/trim:10/f:png/shop/big.png")
    assert BIG_PRODUCT[0] <= image.width <= BIG_PRODUCT[0] + 8 and BIG_PRODUCT[1] <= image.height <= BIG_PRODUCT[1] + 8
    # where the product starts: after the white columns and rows the search kept (none may be cut)
    dx = next(x for x in range(image.width) if image.crop(x, 0, 1, image.height).min() < 200)
    dy = next(y for y in range(image.height) if image.crop(0, y, image.width, 1).min() < 200)
    found = image.crop(dx, dy, *BIG_PRODUCT).cast("float")
    assert (found - photo(*BIG_PRODUCT, seed=4).cast("float")).abs().max() == 0


def test_trim_is_part_of_the_etag(client: httpx.Client) -> None:
    plain = client.get(signed("/f:png/shop/white.png"))
    trimmed = client.get(signed("/trim:10/f:png/shop/white.png"))
    other = client.get(signed("/trim:11/f:png/shop/white.png"))
    assert len({plain.headers["etag"], trimmed.headers["etag"], other.headers["etag"]}) == 3


def test_a_padded_corpus_photo_is_trimmed_back_to_its_size(corpus: Path, tmp_path: Path) -> None:
    original = pyvips.Image.new_from_file(str(corpus / "giunchedi-portrait.jpg")).colourspace("srgb")
    padded = flat(original.width + 60, original.height + 40, (255, 255, 255)).insert(original, 30, 20)
    (tmp_path / "padded.png").write_bytes(encode(padded, "png"))
    with make_client({"shop": str(tmp_path)}) as c:
        image = get(c, "/trim:10/f:png/shop/padded.png")
    assert (image.width, image.height) == (original.width, original.height)
