"""``/info``'s placeholders (``dominant_color``, ``thumbhash``, ``thumbhash_png``): right for the
image, and never showing more than a viewer of the original's derivatives sees.

Every test talks to a real edgeproxy (uvicorn in a thread) on 127.0.0.1. Hashes are decoded with
the ThumbHash library's own decoder (``thash.thumb_hash_to_rgba``); the attacker's tests compute
the ThumbHash of the pixels the proxy must not reveal and compare.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import pyvips
import thash

from edgeproxy.render import placeholder
from testkit.app import make_client, make_served, signed

from .test_info import AUTH, BLOCKED, PHOTO, TOKEN, info_url

KEYS = ("dominant_color", "thumbhash", "thumbhash_png")


def solid(rgb: tuple[int, int, int], width: int = 640, height: int = 480) -> pyvips.Image:
    """A ``width`` × ``height`` sRGB image of one colour."""
    return pyvips.Image.black(width, height).new_from_image(list(rgb)).cast("uchar").copy(interpretation="srgb")


def decoded(hashed: str) -> np.ndarray:
    """The base64 ThumbHash ``hashed`` decoded by the library: an (h, w, 4) uint8 RGBA array."""
    width, height, rgba = thash.thumb_hash_to_rgba(list(base64.b64decode(hashed)))
    return np.frombuffer(rgba, dtype=np.uint8).reshape(height, width, 4)


def png_pixels(data_uri: str) -> np.ndarray:
    """The pixels of a ``data:image/png;base64,`` URI as an (h, w, 4) RGBA array."""
    prefix = "data:image/png;base64,"
    assert data_uri.startswith(prefix)
    body = base64.b64decode(data_uri[len(prefix) :])
    assert body[:8] == b"\x89PNG\r\n\x1a\n"
    return placeholder.rgba_pixels(body)


def test_a_red_blue_split_image_hashes_red_on_the_left_and_blue_on_the_right(tmp_path: Path):
    red, blue = solid((220, 20, 30), 500, 600), solid((20, 40, 210), 500, 600)
    red.join(blue, "horizontal").write_to_file(str(tmp_path / "split.png"))
    with make_client({"o": str(tmp_path)}) as c:
        answer = c.get(info_url("o", "split.png"))
        assert answer.status_code == 200, answer.text
        body = answer.json()
    assert body["dominant_color"] in ("#dc141e", "#1428d2")  # each half is half the image
    pixels = decoded(body["thumbhash"])
    height, width = pixels.shape[:2]
    assert width > height  # ThumbHash keeps the 1000 × 600 aspect ratio (approximately)
    assert abs(width / height - 1000 / 600) < 0.2
    left = pixels[:, : width // 4, :3].reshape(-1, 3).mean(axis=0)
    right = pixels[:, -width // 4 :, :3].reshape(-1, 3).mean(axis=0)
    assert left[0] > 150 and left[2] < 100, left  # red
    assert right[2] > 150 and right[0] < 100, right  # blue
    assert (pixels[..., 3] == 255).all()  # opaque
    # thumbhash_png is that hash decoded: the same pixels, so a page needs no decoder.
    shown = png_pixels(body["thumbhash_png"])
    assert shown.shape == pixels.shape
    assert np.array_equal(shown, pixels)
    assert len(body["thumbhash_png"]) < 3000


@pytest.mark.parametrize("rgb", [(0, 0, 0), (255, 255, 255), (18, 52, 86), (250, 128, 7)])
def test_the_dominant_colour_of_a_solid_image_is_that_colour(tmp_path: Path, rgb: tuple[int, int, int]):
    solid(rgb).write_to_file(str(tmp_path / "solid.png"))
    with make_client({"o": str(tmp_path)}) as c:
        body = c.get(info_url("o", "solid.png")).json()
    assert body["dominant_color"] == "#{:02x}{:02x}{:02x}".format(*rgb)
    average = decoded(body["thumbhash"])[..., :3].reshape(-1, 3).mean(axis=0)
    assert np.abs(average - np.array(rgb)).max() < 12, average


def test_the_dominant_colour_is_the_largest_area_not_the_mean_and_ignores_transparency(tmp_path: Path):
    # 70 % green, 30 % magenta, then a transparent border: the mean would be a grey-brown.
    green, magenta = solid((30, 160, 60), 700, 400), solid((200, 0, 200), 300, 400)
    art = green.join(magenta, "horizontal").bandjoin(255).embed(100, 100, 1200, 600, extend="black")
    art.copy(interpretation="srgb").write_to_file(str(tmp_path / "logo.png"))
    with make_client({"o": str(tmp_path)}) as c:
        body = c.get(info_url("o", "logo.png")).json()
    assert body["dominant_color"] == "#1ea03c"
    alpha = decoded(body["thumbhash"])[..., 3]
    assert alpha.min() < 128 < alpha.max()  # the hash keeps the transparent border


def test_an_animated_original_gets_the_placeholders_of_its_first_frame(corpus: Path):
    with make_client({"c": str(corpus)}) as c:
        body = c.get(info_url("c", "animated-loop-3.webp")).json()
        frame = c.get(signed("/w:100/h:100/f:png/c/animated-loop-3.webp"))
    assert body["pages"] > 1
    assert frame.status_code == 200 and frame.headers["content-type"] == "image/png"
    assert body == {**body, **placeholder.compute(frame.content)}


# --- privacy: what a viewer cannot see, the placeholder does not show ---------------------------------------------


@pytest.fixture
def sidecars(corpus: Path, tmp_path: Path) -> Path:
    """The portrait as ``blocked.jpg`` (rejected), ``pending.jpg`` (pending) and ``open.jpg`` (approved)."""
    for name, verdict in (("blocked.jpg", "rejected"), ("pending.jpg", "pending"), ("open.jpg", "approved")):
        shutil.copyfile(corpus / PHOTO, tmp_path / name)
        (tmp_path / f"{name}.json").write_text(json.dumps({"moderation": verdict}))
    return tmp_path


def test_a_blocked_original_has_no_placeholder_public_or_admin(sidecars: Path):
    with make_client({"m": str(sidecars)}, moderation=True, admin_token=TOKEN) as c:
        public = c.get(info_url("m", "blocked.jpg"))
        assert public.json() == BLOCKED
        admin = c.get(info_url("m", "blocked.jpg"), headers=AUTH).json()
        assert admin["moderation"]["verdict"] == "block" and admin["sha256"]
        assert not set(KEYS) & set(admin), "the admin view shows placeholders of a withheld image"
        assert set(KEYS) <= set(c.get(info_url("m", "open.jpg")).json())


def viewers_placeholders(client, origin: str, key: str) -> placeholder.Placeholders:
    """The placeholders of the derivative a viewer gets (100 px, PNG), computed here."""
    response = client.get(signed(f"/w:100/h:100/f:png/{origin}/{key}"))
    assert response.status_code == 200, response.text
    return placeholder.compute(response.content)


def test_a_blurred_original_gets_the_placeholders_of_its_blurred_derivative(sidecars: Path):
    """The attacker reads /info of an original moderation blurs, hoping for the unblurred colours."""
    with make_client({"m": str(sidecars)}) as plain:  # moderation off: the untreated pixels
        untreated = viewers_placeholders(plain, "m", "pending.jpg")
    with make_client({"m": str(sidecars)}, moderation=True, moderation_pending="blur") as c:
        body = c.get(info_url("m", "pending.jpg")).json()
        assert body["moderation"]["verdict"] == "pending"
        seen = viewers_placeholders(c, "m", "pending.jpg")
        allowed = c.get(info_url("m", "open.jpg")).json()
    assert {k: body[k] for k in KEYS} == seen
    assert body["thumbhash"] != untreated["thumbhash"], "the placeholder shows the unblurred original"
    # ...while an approved copy of the same file is described as it is.
    assert {k: allowed[k] for k in KEYS} == untreated


def test_a_forced_redaction_origin_gets_the_placeholders_of_its_redacted_derivative(corpus: Path, models):
    face = str(models["face"])
    with make_client({"r": str(corpus)}, face_model=face) as plain:
        untreated = viewers_placeholders(plain, "r", PHOTO)
    with make_client({"r": str(corpus)}, face_model=face, redact_origins={"r": "pixelate"}) as c:
        body = c.get(info_url("r", PHOTO)).json()
        seen = viewers_placeholders(c, "r", PHOTO)
    assert body["faces"], "the portrait's face was not found"
    assert {k: body[k] for k in KEYS} == seen
    assert body["thumbhash"] != untreated["thumbhash"], "the placeholder shows the unredacted face"


def test_placeholders_are_computed_once_per_original(tmp_path: Path):
    solid((18, 52, 86)).write_to_file(str(tmp_path / "solid.png"))
    with make_served({"o": str(tmp_path)}) as (c, app):
        first = c.get(info_url("o", "solid.png"))
        cache = app.state.components.service.placeholder_cache
        assert cache is not None and len(cache) == 1
        again = c.get(info_url("o", "solid.png"))
    assert first.json() == again.json() and first.headers["etag"] == again.headers["etag"]
