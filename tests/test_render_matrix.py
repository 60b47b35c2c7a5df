"""Every option combination renders: rotate, flip, crop, fit, gravity (and redact, g:face) × JPEG,
PNG, WebP, AVIF, TIFF and GIF originals × small, full-size and large (≥ 2,000 px) outputs.

Originals are coordinate pictures (``testkit.coordinates``: red is the column, green the row), so
each derivative is checked for its size and for every pixel's colour against where the plan says it
comes from: a 422 ("out of order read", issue 20), a rotation the wrong way, a flip on the wrong
axis or a crop in the wrong place all fail. Served by a real edgeproxy from a temporary folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import pyvips

from testkit import coordinates, images
from testkit.app import make_client, signed
from testkit.images import decode

FORMATS = ("jpeg", "png", "webp", "avif", "tiff", "gif")
#: Mean error (levels) a correct derivative stays under, per source format: palettes and lossy
#: codecs move a smooth gradient by a few levels; a wrong geometry by tens.
TOLERANCE = {"jpeg": 4.0, "png": 3.0, "tiff": 3.0, "webp": 4.0, "avif": 5.0, "gif": 10.0}
SIZES = {"small": (160, 120), "full": (450, 600), "large": (2400, 1800)}
#: Options per size class. "small" resizes a small original; "full" renders it at full size (the
#: 422s of issue 20 were all there or above); "large" gives outputs of 2,000 px and more.
OPTIONS = {
    "small": (
        "w:64",
        "w:64/rot:90",
        "w:64/rot:180",
        "w:64/rot:270",
        "w:64/flip:v",
        "w:64/flip:hv",
        "w:80/h:80/fit:cover/g:north",
        "w:80/h:80/fit:cover/g:se/rot:90",
        "w:100/h:100/fit:pad/g:west/flip:h",
        "c:10:20:100:80/w:50/rot:270/flip:v",
        "w:60/h:90/fit:fill/rot:90",
        "w:80/h:80/fit:cover/g:smart/rot:180",
    ),
    "full": (
        "",
        "rot:90",
        "rot:180",
        "rot:270",
        "flip:h",
        "flip:v",
        "flip:hv",
        "rot:90/flip:h",
        "rot:270/flip:hv",
        "c:0.1:0.2:0.5:0.6",
        "c:0.1:0.2:0.5:0.6/rot:90/flip:v",
        "w:300/h:300/fit:cover/g:south/rot:90",
        "w:450/h:450/fit:cover/g:fp:0.8:0.3/flip:v",
        "w:800/h:800/fit:pad/bg:ff0000/rot:180",
        "w:300/h:300/fit:cover/g:smart/rot:270",
    ),
    "large": (
        "rot:90",
        "rot:180",
        "flip:v",
        "rot:270/flip:h",
        "w:2000/rot:90",
        "c:100:100:2200:1600/rot:90",
        "w:2000/h:1000/fit:cover/g:south/flip:hv",
    ),
}
#: Output format per size class: PNG (lossless) except for the large outputs (JPEG encodes faster).
OUTPUT = {"small": "f:png", "full": "f:png", "large": "f:jpeg/q:95"}
ANIMATED = (
    "rot:90",
    "flip:v",
    "w:40/h:40/fit:cover/g:east/rot:270",
    "c:10:10:40:30/rot:180/flip:h",
    "w:100/h:100/fit:pad",
)
CASES = [(fmt, size, options) for size, options_list in OPTIONS.items() for fmt in FORMATS for options in options_list]


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("matrix")
    for size, (width, height) in SIZES.items():
        picture = coordinates.image(width, height)
        for fmt in FORMATS:
            (folder / f"{size}.{fmt}").write_bytes(coordinates.encode(picture, fmt))
    strip = coordinates.animation(80, 60, 3)
    for fmt in ("webp", "gif"):
        (folder / f"animated.{fmt}").write_bytes(coordinates.encode(strip, fmt))
    return folder


@pytest.fixture(scope="module")
def client(originals: Path) -> Iterator[httpx.Client]:
    with make_client({"m": str(originals)}, png_compression=1) as c:
        yield c


def render(client: httpx.Client, options: str, key: str, origin: str = "m") -> pyvips.Image:
    path = "/" + "/".join([o for o in options.split("/") if o] + [origin, key])
    r = client.get(signed(path))
    assert r.status_code == 200, (path, r.status_code, r.text)
    return decode(r.content)


def smart(options: str) -> bool:
    return "g:smart" in options or "g:face" in options


@pytest.mark.parametrize(("fmt", "size", "options"), CASES, ids=[f"{f}-{s}-{o or 'none'}" for f, s, o in CASES])
def test_every_combination_renders_the_right_pixels(client: httpx.Client, fmt: str, size: str, options: str):
    width, height = SIZES[size]
    spec, p = coordinates.planned(options, width, height)
    out = render(client, f"{options}/{OUTPUT[size]}", f"{size}.{fmt}")
    assert (out.width, out.height) == p.output_size, options
    if smart(options):  # the window follows libvips' attention: its size is the promise
        return
    error = coordinates.error(out, spec, p, width, height)
    assert error < TOLERANCE[fmt] + (2 if size == "large" else 0), f"{options}: {error:.1f} levels off"


@pytest.mark.parametrize("fmt", ["webp", "gif"])
@pytest.mark.parametrize("options", ANIMATED)
def test_animations_keep_every_frame_in_order(client: httpx.Client, fmt: str, options: str):
    spec, p = coordinates.planned(options, 80, 60)
    out = render(client, f"{options}/f:{fmt}", f"animated.{fmt}")
    assert out.get("n-pages") == 3 and out.get("page-height") == p.output_size[1], options
    assert out.width == p.output_size[0]
    error = coordinates.error(out, spec, p, 80, 60)
    assert error < TOLERANCE[fmt], f"{options}: {error:.1f} levels off"


# --- faces: redact:faces and g:face at ~1,000 px and more (issue 20: 422 "out of order read") ------------------------

FACE_OPTIONS = (
    "redact:faces/w:1000",
    "redact:faces",
    "redact:faces:pixelate/rot:90",
    "redact:faces/flip:v",
    "redact:faces/rot:270/flip:h/c:0.1:0:0.8:1",
    "g:face/w:600/h:600/fit:cover",
    "g:face/w:600/h:600/fit:cover/rot:90",
    "g:face/w:1200/h:600/fit:cover/flip:hv/redact:faces",
)


@pytest.fixture(scope="module")
def faces(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A 1,900 x 1,266 portrait (``testkit.images.face``: a drawn face that CenterFace finds, so no
    corpus is needed) as JPEG, PNG and WebP, served with the real face model."""
    folder = tmp_path_factory.mktemp("faces")
    big = images.face(1900, 1266)
    (folder / "face.jpg").write_bytes(big.jpegsave_buffer(Q=90))
    (folder / "face.png").write_bytes(big.pngsave_buffer(compression=1))
    (folder / "face.webp").write_bytes(big.webpsave_buffer(Q=90, effort=0))
    with make_client({"f": str(folder)}, face_model=str(models["face"])) as c:
        yield c


@pytest.mark.parametrize("key", ["face.jpg", "face.png", "face.webp"])
@pytest.mark.parametrize("options", FACE_OPTIONS)
def test_faces_render_at_full_size(faces: httpx.Client, key: str, options: str):
    """Redaction and face gravity at 1,000-1,900 px render (no 422) at the planned size, and a
    redacted derivative differs from the plain one only away from the corners (the face is central)."""
    spec, p = coordinates.planned(options, 1900, 1266)
    out = render(faces, f"{options}/f:png", key, "f")
    assert (out.width, out.height) == p.output_size, options
    if "redact" in options and "g:face" not in options:
        unredacted = "/".join(o for o in options.split("/") if not o.startswith("redact"))
        plain = render(faces, f"{unredacted}/f:png", key, "f")
        a, b = (np.asarray(x.numpy(), float) for x in (out, plain))
        assert np.abs(a - b).max() > 60, f"{options}: nothing was redacted"
        corner = (slice(0, 40), slice(0, 40))
        assert np.abs(a[corner] - b[corner]).mean() < 2, f"{options}: redaction reached the corner"
