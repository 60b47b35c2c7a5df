"""``ar:W:H`` over HTTP: the box from one side and the ratio, then ``fit`` and gravity as for an
explicit ``w`` × ``h``, with ``w:N``, ``h:N`` and ``w:auto`` (client hints), checked on the decoded
pixels of a known original.

The original, ``thirds.png``, is 600 × 200: a red, a green and a blue 200 × 200 square side by side,
so every crop's position shows in its colours."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from edgeproxy.url.builders import UrlBuilder
from testkit.app import KEY, make_client, signed
from testkit.images import decode, encode, flat, mean_rgb

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)
THIRDS = "/demo/thirds.png"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """edgeproxy with client hints on and a preset ``square`` (``ar:1:1/fit:cover/g:east``), serving
    ``thirds.png`` as origin ``demo``."""
    folder = tmp_path_factory.mktemp("thirds")
    image = flat(200, 200, RED).join(flat(200, 200, GREEN), "horizontal").join(flat(200, 200, BLUE), "horizontal")
    (folder / "thirds.png").write_bytes(encode(image, "png"))
    with make_client({"demo": str(folder)}, client_hints=True, presets={"square": "ar:1:1/fit:cover/g:east"}) as c:
        yield c


def colour_at(body: bytes, left: int, top: int, width: int, height: int) -> tuple[int, int, int]:
    """The mean colour of a region of a decoded answer, rounded (PNG: exact but for resampling at edges)."""
    r, g, b = mean_rgb(decode(body), left, top, width, height)
    return round(r), round(g), round(b)


def get_png(client: httpx.Client, options: str, **headers: str) -> httpx.Response:
    response = client.get(signed(f"/{options}/f:png{THIRDS}"), headers=headers)
    assert response.status_code == 200, response.text
    return response


@pytest.mark.parametrize(
    ("options", "size", "colour"),
    [
        ("w:100/ar:1:1/fit:cover", (100, 100), GREEN),  # the centre square, scaled by 1/2
        ("w:100/ar:1:1/fit:cover/g:west", (100, 100), RED),
        ("w:100/ar:1:1/fit:cover/g:east", (100, 100), BLUE),
        ("width:60/aspect_ratio:1:1/fit:cover/g:fp:0.5:0.5", (60, 60), GREEN),
        ("h:100/ar:1:1/fit:cover/g:east", (100, 100), BLUE),
        ("w:50/dpr:2/ar:1:1/fit:cover", (100, 100), GREEN),  # the box in device pixels
        ("ar:1:1/fit:cover", (200, 200), GREEN),  # no w or h: the largest square of the original
        ("w:800/ar:1:1/fit:cover", (200, 200), GREEN),  # no enlarging: the ratio kept, smaller
    ],
)
def test_cover_crops_a_box_of_the_ratio_where_gravity_says(client: httpx.Client, options, size, colour):
    body = get_png(client, options).content
    assert (decode(body).width, decode(body).height) == size
    assert colour_at(body, size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2) == colour


def test_a_wide_ratio_from_the_height_keeps_two_thirds(client: httpx.Client):
    """``h:50/ar:2:1``: a 100 × 50 box; the original scaled to 150 × 50, east gravity keeps its
    green and blue thirds."""
    body = get_png(client, "h:50/ar:2:1/fit:cover/g:east").content
    assert (decode(body).width, decode(body).height) == (100, 50)
    assert colour_at(body, 5, 5, 40, 40) == GREEN
    assert colour_at(body, 55, 5, 40, 40) == BLUE


def test_pad_and_contain_fill_and_touch_the_box(client: httpx.Client):
    padded = get_png(client, "w:120/ar:1:1/fit:pad/bg:ffffff").content  # 120 x 40 image, 40 px bands
    assert (decode(padded).width, decode(padded).height) == (120, 120)
    assert colour_at(padded, 0, 0, 120, 38) == WHITE
    assert colour_at(padded, 0, 82, 120, 38) == WHITE
    assert colour_at(padded, 2, 42, 36, 36) == RED
    assert colour_at(padded, 82, 42, 36, 36) == BLUE
    contained = get_png(client, "w:1200/ar:2:1/fit:contain").content  # 1200 x 600 box: 1200 wide
    assert (decode(contained).width, decode(contained).height) == (1200, 400)
    inside = get_png(client, "w:300/ar:4:1").content  # fit:inside: 300 x 75 box, the height limits
    assert (decode(inside).width, decode(inside).height) == (225, 75)


def test_w_auto_with_a_ratio_fills_the_slot_from_the_hints(client: httpx.Client):
    """``w:auto/ar:1:1/fit:cover``: the width from ``Sec-CH-Width`` rounded up to a bucket (150 ->
    160), the height the same; the headers are those of any ``w:auto`` URL."""
    square = get_png(client, "w:auto/ar:1:1/fit:cover", **{"Sec-CH-Width": "150"})
    assert (decode(square.content).width, decode(square.content).height) == (160, 160)
    assert colour_at(square.content, 40, 40, 80, 80) == GREEN
    assert square.headers["vary"] == "Sec-CH-Width, Save-Data"
    assert square.headers["accept-ch"] == "Sec-CH-DPR, Sec-CH-Width, Save-Data"
    plain = get_png(client, "w:auto/fit:cover", **{"Sec-CH-Width": "150"})
    assert (plain.headers["vary"], plain.headers["accept-ch"]) == (square.headers["vary"], square.headers["accept-ch"])
    assert (decode(plain.content).width, decode(plain.content).height) == (160, 53)
    # Without Sec-CH-Width: 100 CSS px × DPR 2, rounded up to a bucket of at least 200 px, which is
    # the original's height: no enlarging, so the crop is the largest square, 200 × 200, on the west.
    fallback = get_png(client, "w:auto:100/dpr:auto/ar:1:1/fit:cover/g:west", **{"Sec-CH-DPR": "2"})
    assert fallback.headers["vary"] == "Sec-CH-Width, Sec-CH-DPR, Save-Data"
    assert (decode(fallback.content).width, decode(fallback.content).height) == (200, 200)
    assert colour_at(fallback.content, 50, 50, 100, 100) == RED


def test_the_etag_is_over_the_canonical_form(client: httpx.Client):
    spelled = client.get(signed(f"/fit:cover/aspect_ratio:1:1/width:100/f:png{THIRDS}"))
    canonical = client.get(signed(f"/w:100/ar:1:1/fit:cover/f:png{THIRDS}"))
    other = client.get(signed(f"/w:100/ar:1:2/fit:cover/f:png{THIRDS}"))
    assert spelled.status_code == canonical.status_code == other.status_code == 200
    assert spelled.headers["etag"] == canonical.headers["etag"] != other.headers["etag"]
    assert spelled.content == canonical.content


def test_a_preset_carries_the_ratio_and_the_url_the_width(client: httpx.Client):
    preset = get_png(client, "pr:square/w:auto", **{"Sec-CH-Width": "100"})
    assert (decode(preset.content).width, decode(preset.content).height) == (160, 160)
    assert colour_at(preset.content, 40, 40, 80, 80) == BLUE
    spelled = get_png(client, "w:160/ar:1:1/fit:cover/g:east")
    assert preset.headers["etag"] == spelled.headers["etag"]


def test_the_python_builder_writes_what_the_proxy_serves(client: httpx.Client):
    """``UrlBuilder.url(..., width="auto", ar="1:1", fit="cover")``: ``w:auto/ar:1:1/fit:cover``,
    signed over that path; the proxy answers a square."""
    url = UrlBuilder("", KEY).url("demo", "thirds.png", width="auto", ar="1:1", fit="cover", format="png")
    assert url.endswith("/w:auto/ar:1:1/fit:cover/f:png/demo/thirds.png")
    response = client.get(url, headers={"Sec-CH-Width": "300"})
    assert response.status_code == 200, response.text
    assert (decode(response.content).width, decode(response.content).height) == (200, 200)  # 320 > 200: kept square
    tall = UrlBuilder("", KEY).url("demo", "thirds.png", h=100, aspect_ratio=(3, 1), fit="cover", f="png")
    assert "/h:100/ar:3:1/fit:cover/f:png/" in tall
    image = decode(client.get(tall).content)
    assert (image.width, image.height) == (300, 100)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("w:100/h:100/ar:1:1", "option ar: cannot be combined with both w and h (the ratio sets the side not given)"),
        ("w:100/ar:0:1", "option ar: 0 is outside 0.0..1000000.0"),
        ("w:100/ar:1:101", "option ar: 1:101 is beyond 100:1 or 1:100"),
        ("w:100/ar:16:nine", "option ar: 'nine' is not a decimal number"),
        ("h:8000/ar:2:1", "option width (from ar): 16000 device pixels is over the limit of 8192"),
    ],
)
def test_bad_ratios_are_400_naming_the_option(client: httpx.Client, options, message):
    response = client.get(signed(f"/{options}{THIRDS}"))
    assert (response.status_code, response.text) == (400, message + "\n")
    assert "immutable" not in response.headers["cache-control"]


def test_fixture_image_is_what_the_tests_assume(client: httpx.Client):
    body = get_png(client, "w:600").content
    assert [colour_at(body, x, 50, 100, 100) for x in (50, 250, 450)] == [RED, GREEN, BLUE]
