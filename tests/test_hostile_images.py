"""Hostile images: decompression bombs refused from the header (413) without pixel work or memory
growth, truncated and corrupt files of every input format refused (422)."""

from __future__ import annotations

import random
from pathlib import Path

import psutil
import pytest
import pyvips

from testkit import bombs
from testkit.app import make_client, signed

BOMBS = {
    "png-50000.png": (bombs.png(50000, 50000), "2500000000 pixels (50000x50000x1)"),
    "gif-50000.gif": (bombs.gif(50000, 50000), "2500000000 pixels (50000x50000x1)"),
    "jpeg-65000.jpg": (bombs.jpeg(65000, 65000), "4225000000 pixels (65000x65000x1)"),
    # libwebp decodes no canvas over 16383 px a side: the largest WebP bomb there can be.
    "webp-16383.webp": (bombs.webp(16383, 16383), "268402689 pixels (16383x16383x1)"),
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    for name, (data, _) in BOMBS.items():
        (root / name).write_bytes(data)
    (root / "webp-50000.webp").write_bytes(bombs.webp(50000, 50000))
    (root / "frames.gif").write_bytes(bombs.many_frames(200, 200, 30))
    source = pyvips.Image.new_from_file(str(Path(__file__).parent.parent / "edgeproxy/samples/chart.jpg"))
    source = source.thumbnail_image(160)
    encoded = {
        "jpg": source.jpegsave_buffer(),
        "png": source.pngsave_buffer(),
        "webp": source.webpsave_buffer(),
        "gif": source.gifsave_buffer(),
        "avif": source.heifsave_buffer(compression="av1", effort=0),
        "tif": source.tiffsave_buffer(),
    }
    garbage = random.Random(4).randbytes(max(map(len, encoded.values())))
    for ext, data in encoded.items():
        (root / f"ok.{ext}").write_bytes(data)
        (root / f"truncated.{ext}").write_bytes(data[: len(data) * 6 // 10])
        (root / f"corrupt.{ext}").write_bytes(data[:64] + garbage[64 : len(data)])
    return root


@pytest.fixture(scope="module")
def attacked(hostile: Path):
    with make_client({"h": str(hostile)}) as c:
        yield c


@pytest.mark.parametrize("name", list(BOMBS))
def test_bombs_are_refused_from_the_header(attacked, name):
    r = attacked.get(signed(f"/w:100/f:png/h/{name}"))
    assert (r.status_code, r.text) == (413, f"the original has {BOMBS[name][1]}; the limit is 50000000\n")
    assert r.headers["cache-control"] == "public, max-age=60"


def test_webp_canvas_beyond_the_format_is_refused_from_the_header(attacked):
    r = attacked.get(signed("/w:100/f:png/h/webp-50000.webp"))
    assert (r.status_code, r.text) == (422, "the original could not be decoded\n")


def test_animation_is_limited_by_frames_times_pixels(hostile: Path):
    with make_client({"h": str(hostile)}, max_source_pixels=1_000_000) as c:
        r = c.get(signed("/w:100/f:webp/h/frames.gif"))
        assert (r.status_code, r.text) == (413, "the original has 1200000 pixels (200x200x30); the limit is 1000000\n")
    with make_client({"h": str(hostile)}, max_frames=20) as c:
        r = c.get(signed("/w:100/f:webp/h/frames.gif"))
        assert (r.status_code, r.text) == (413, "the original has 30 frames; the limit is 20\n")


def test_bombs_cost_no_memory(attacked):
    """Forty bombs later, this process (which runs the proxy) holds no more than it did: no
    pixel buffer was ever allocated for them (50000² RGB would be 7.5 GB)."""
    for name in BOMBS:  # warm-up: first-use allocations of each loader
        attacked.get(signed(f"/w:100/f:png/h/{name}"))
    before = psutil.Process().memory_info().rss
    for round_ in range(10):
        for name in BOMBS:
            assert attacked.get(signed(f"/w:{101 + round_}/f:png/h/{name}")).status_code == 413
    growth = psutil.Process().memory_info().rss - before
    assert growth < 32 * 1024 * 1024, f"RSS grew by {growth / 1e6:.1f} MB"


@pytest.mark.parametrize("ext", ["jpg", "png", "webp", "gif", "avif", "tif"])
def test_truncated_and_corrupt_files_of_every_format_are_422(attacked, ext):
    assert attacked.get(signed(f"/w:100/f:png/h/ok.{ext}")).status_code == 200
    for kind in ("truncated", "corrupt"):
        r = attacked.get(signed(f"/w:100/f:png/h/{kind}.{ext}"))
        assert (r.status_code, r.text) == (422, "the original could not be decoded\n"), kind
        assert r.headers["cache-control"] == "public, max-age=60"
