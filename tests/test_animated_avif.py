"""``f:avif`` on an animated original answers an animated AVIF (an image sequence, ``avis``), not its
first frame; ``f:auto`` never picks AVIF for an animation (animated WebP, else GIF).

Every test talks to a real edgeproxy (uvicorn in a thread) on 127.0.0.1 serving the corpus; the
answers are decoded with Pillow's libavif (not the proxy's code) and compared with the frames
libvips decodes from the original.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import pyvips
from PIL import Image

from testkit.app import make_client, signed

BANANA = "dancing-banana.gif"  # 121 × 128, 8 frames of 100 ms, loops forever


def frames_of(body: bytes) -> list[tuple[np.ndarray, int]]:
    """Every frame of an animated image (Pillow's decoder) as (RGB array, duration in ms)."""
    picture = Image.open(io.BytesIO(body))
    out = []
    for index in range(getattr(picture, "n_frames", 1)):
        picture.seek(index)
        out.append((np.asarray(picture.convert("RGB"), dtype=np.int16), picture.info.get("duration", 0)))
    return out


def original_frames(path: Path) -> list[np.ndarray]:
    """Every frame of the original, decoded by libvips, as RGB arrays."""
    image = pyvips.Image.new_from_file(str(path), n=-1)
    height = image.get("page-height")
    strip = image.colourspace("srgb")[:3].numpy().astype(np.int16)
    return [strip[i : i + height] for i in range(0, image.height, height)]


@pytest.fixture(scope="module")
def client(corpus: Path):
    with make_client({"c": str(corpus)}) as c:
        yield c


def test_f_avif_on_an_animated_gif_is_an_animated_avif_of_its_frames(client, corpus: Path):
    response = client.get(signed(f"/f:avif/c/{BANANA}"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/avif"
    assert response.content[4:12] == b"ftypavis"  # an image sequence: a track browsers play
    got = frames_of(response.content)
    want = original_frames(corpus / BANANA)
    assert len(got) == len(want) == 8
    assert [duration for _pixels, duration in got] == [100] * 8
    for index, ((pixels, _), expected) in enumerate(zip(got, want, strict=True)):
        assert pixels.shape == expected.shape == (128, 121, 3)
        assert np.abs(pixels - expected).mean() < 12, f"frame {index} is not the original's"
    assert np.abs(got[0][0] - got[3][0]).mean() > 5  # the frames differ: it moves


def test_a_resized_animated_avif_keeps_every_frame(client, corpus: Path):
    response = client.get(signed("/w:100/f:avif/c/full-colour.gif"))
    got = frames_of(response.content)
    assert response.content[4:12] == b"ftypavis"
    assert len(got) == len(original_frames(corpus / "full-colour.gif")) == 20
    assert {pixels.shape for pixels, _ in got} == {(100, 100, 3)}


def test_f_avif_on_a_one_frame_gif_is_a_still_avif(client):
    response = client.get(signed("/f:avif/c/one-frame.gif"))
    assert response.headers["content-type"] == "image/avif"
    assert response.content[4:12] == b"ftypavif"
    assert len(frames_of(response.content)) == 1


@pytest.mark.parametrize(
    ("accept", "mime"),
    [("image/avif,image/webp,*/*", "image/webp"), ("image/avif,*/*", "image/gif"), ("*/*", "image/gif")],
)
def test_f_auto_never_answers_avif_for_an_animation(client, accept: str, mime: str):
    response = client.get(signed(f"/w:100/c/{BANANA}"), headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"] == mime
    assert response.headers["vary"] == "Accept"
    assert len(frames_of(response.content)) == 8


def test_the_frame_limit_holds_for_animated_avif(corpus: Path):
    with make_client({"c": str(corpus)}, max_frames=4) as c:
        response = c.get(signed(f"/f:avif/c/{BANANA}"))
    assert response.status_code == 413
    assert "8 frames" in response.text
