"""Synthetic images for tests that need "a photo", not a particular real-world file, and the readers of
the images edgeproxy answers with.

Every image here is made with pyvips from arithmetic and seeded noise, so the same call gives the same
pixels on every machine (the encoders' bytes may differ between libvips builds; tests assert on
decoded pixels and sizes). A ``photo`` has what encoders and the attention measure of ``g:smart``
react to in a real photo: smooth gradients, fine texture, edges, and one saturated, skin-toned
subject (its centre is ``focus``, fractions of the width and height).

The real-world corpus (``testkit.env.CORPUS``) stays the input of the tests where the file itself
matters: CMYK and ICC profiles written by real tools, EXIF quirks, HEIC, decoder bugs, real faces for
the vision models.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyvips

from testkit import bombs

#: Where a ``photo``'s subject is by default (fractions of width, height): right of centre, high.
FOCUS = (0.7, 0.35)


def photo(width: int, height: int, *, seed: int = 0, focus: tuple[float, float] = FOCUS) -> pyvips.Image:
    """A photo-like ``width`` × ``height`` 8-bit sRGB image (3 bands).

    A diagonal sky-to-ground gradient with soft vertical stripes, a dark block of lit windows in the
    lower left (hard edges, as buildings give), seeded Gaussian grain (sigma 4 levels, the same in
    every band) and a saturated skin-toned subject, a Gaussian blob of radius ~1/8 of the short side centred at
    ``focus``; ``seed`` changes the texture only.
    """
    xyz = pyvips.Image.xyz(width, height)
    x, y = xyz[0] / max(1, width - 1), xyz[1] / max(1, height - 1)
    sigma = max(1.0, min(width, height) / 8)
    cx, cy = focus[0] * width, focus[1] * height
    blob = (((xyz[0] - cx) ** 2 + (xyz[1] - cy) ** 2) / (-2 * sigma * sigma)).exp()
    stripes = (xyz[0] * (360 / max(8, width / 24))).sin() * 10  # pyvips' sin takes degrees
    cell = max(2, min(width, height) // 24)
    windows = ((xyz[0] % (2 * cell)) < cell) & ((xyz[1] % (2 * cell)) < cell)  # 255 where lit
    block = (x < 0.45) & (y > 0.6)
    red = 60 + 90 * x + 40 * y + stripes + 170 * blob
    green = 110 + 60 * y - 30 * x + stripes + 40 * blob
    blue = 190 - 120 * y + 10 * x - 60 * blob
    grain = pyvips.Image.gaussnoise(width, height, sigma=4, mean=0, seed=seed)  # luminance grain, as film or a sensor
    bands = []
    for channel, lit in zip((red, green, blue), (230, 200, 120), strict=True):
        building = (windows / 255).ifthenelse(lit, 35)
        bands.append((block / 255).ifthenelse(building, channel) + grain)
    image = bands[0].bandjoin(bands[1:])
    image = (image > 255).ifthenelse(255, (image < 0).ifthenelse(0, image))
    return image.cast("uchar").copy(interpretation="srgb")


def flat(width: int, height: int, rgb: Sequence[int]) -> pyvips.Image:
    """A ``width`` × ``height`` image of one colour: 3 bands (``rgb``) or 4 (RGBA), 8-bit sRGB."""
    return (pyvips.Image.black(width, height, bands=len(rgb)) + list(rgb)).cast("uchar").copy(interpretation="srgb")


def with_alpha(image: pyvips.Image) -> pyvips.Image:
    """``image`` with an alpha band: opaque in an ellipse touching the edges' midpoints, transparent
    in the corners (alpha 0 at every corner pixel, 255 at the centre)."""
    xyz = pyvips.Image.xyz(image.width, image.height)
    dx = (xyz[0] - (image.width - 1) / 2) / (image.width / 2)
    dy = (xyz[1] - (image.height - 1) / 2) / (image.height / 2)
    alpha = ((dx**2 + dy**2) < 1).ifthenelse(255, 0).cast("uchar")
    return image.bandjoin(alpha).copy(interpretation="srgb")


def grey(image: pyvips.Image) -> pyvips.Image:
    """``image`` as 8-bit greyscale (``b-w``), its alpha band kept."""
    return image.colourspace("b-w").cast("uchar")


def animation(width: int, height: int, frames: int, *, alpha: bool = False) -> pyvips.Image:
    """An animation strip (``page-height`` = ``height``) of ``frames`` photos, each a different
    scene (seed), its subject moving left to right; frame ``i`` has a square of the grey
    ``frame_marker(i)`` in its top-left corner (an eighth of the width on each side), so decoded
    frames can be told apart and counted in order."""
    pages = []
    for i in range(frames):
        focus = (0.2 + 0.6 * i / max(1, frames - 1), 0.5)
        page = photo(width, height, seed=i, focus=focus)
        side = max(2, width // 8)
        marker = flat(side, side, [frame_marker(i)] * 3)
        page = page.insert(marker, 0, 0)
        pages.append(with_alpha(page) if alpha else page)
    strip = pyvips.Image.arrayjoin(pages, across=1).copy()
    strip.set_type(pyvips.GValue.gint_type, "page-height", height)
    strip.set_type(pyvips.GValue.gint_type, "n-pages", frames)
    strip.set_type(pyvips.GValue.array_int_type, "delay", [100] * frames)
    strip.set_type(pyvips.GValue.gint_type, "loop", 0)
    return strip


def frame_marker(index: int) -> int:
    """The grey level of frame ``index``'s marker in an ``animation`` (distinct for up to 8 frames)."""
    return 16 + (index % 8) * 32


def encode(image: pyvips.Image, fmt: str, **options: object) -> bytes:
    """``image`` encoded as ``fmt`` (jpeg, png, webp, avif, gif, tiff), metadata kept unless
    ``keep="none"`` is given; AVIF at effort 0 (fast), every frame of an animation for GIF and WebP."""
    if fmt == "jpeg":
        return image.jpegsave_buffer(**{"Q": 85, **options})
    if fmt == "png":
        return image.pngsave_buffer(**options)
    if fmt == "webp":
        return image.webpsave_buffer(**{"Q": 85, **options})
    if fmt == "avif":
        return image.heifsave_buffer(**{"compression": "av1", "effort": 0, "Q": 70, **options})
    if fmt == "gif":
        return image.gifsave_buffer(**options)
    if fmt == "tiff":
        return image.tiffsave_buffer(**options)
    raise ValueError(f"unknown format {fmt}")


#: EXIF orientation -> the operations that turn the upright image into the stored one (the inverse
#: of what a reader applies: 6 is "rotate 90° clockwise to view", so it is stored turned 90° anticlockwise).
_STORED_AS = {
    1: (),
    2: ("fliphor",),
    3: ("rot180",),
    4: ("flipver",),
    5: ("rot90", "fliphor"),
    6: ("rot270",),
    7: ("rot270", "fliphor"),
    8: ("rot90",),
}


def oriented_jpeg(upright: pyvips.Image, orientation: int) -> bytes:
    """A JPEG whose pixels are ``upright`` stored as EXIF ``orientation`` (1-8) says, with that
    tag: a reader that applies the orientation shows ``upright`` again."""
    stored = upright
    for op in _STORED_AS[orientation]:
        stored = stored.rot("d270") if op == "rot270" else stored.rot("d90") if op == "rot90" else getattr(stored, op)()
    stored = stored.copy()
    stored.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    return stored.jpegsave_buffer(Q=95)


def tagged(image: pyvips.Image, profile: str) -> pyvips.Image:
    """``image`` (sRGB) converted into one of libvips' built-in ICC profiles (``p3``, ``cmyk``) with
    that profile embedded, as a camera or an editor writes a wide-gamut or print file."""
    return image.icc_transform(profile, input_profile="srgb", intent="relative")


def svg(width: int, height: int) -> bytes:
    """A small SVG document: a blue ``width`` × ``height`` rectangle with a red circle."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
        f'<rect width="{width}" height="{height}" fill="#2050c0"/>'
        f'<circle cx="{width / 2}" cy="{height / 2}" r="{min(width, height) / 3}" fill="#e02020"/></svg>'
    ).encode()


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    """The first ``keep`` of ``data`` (a download cut short)."""
    return data[: max(1, int(len(data) * keep))]


@dataclass(frozen=True, slots=True)
class Original:
    """One file of the synthetic library: its name, bytes and, for a decodable image, its upright
    size in pixels (None for the files that are not images or not decodable)."""

    name: str
    data: bytes
    size: tuple[int, int] | None


def library() -> list[Original]:
    """The synthetic library served by the ``photos`` fixture (``tests/conftest.py``): photos in every
    input format at the sizes the tests use, alpha, grey, animations, EXIF orientations, a wide-gamut
    and a CMYK JPEG, an SVG, and the hostile files of the error tests (truncated, empty, bombs)."""
    large, portrait = photo(2725, 2225, seed=1), photo(800, 533, seed=2)
    tall = photo(300, 400, seed=3)
    alpha = with_alpha(photo(300, 225, seed=4))
    files = [
        Original("large.jpg", encode(large, "jpeg"), (2725, 2225)),
        Original("photo.jpg", encode(portrait, "jpeg"), (800, 533)),
        Original("photo.png", encode(portrait, "png"), (800, 533)),
        Original("photo.webp", encode(tall, "webp"), (300, 400)),
        Original("photo.avif", encode(tall, "avif"), (300, 400)),
        Original("photo.tif", encode(photo(320, 200, seed=5), "tiff"), (320, 200)),
        Original("alpha.png", encode(alpha, "png"), (300, 225)),
        Original("alpha.webp", encode(alpha, "webp"), (300, 225)),
        Original("grey.jpg", encode(grey(photo(258, 222, seed=6)), "jpeg"), (258, 222)),
        Original("grey-alpha.png", encode(grey(alpha), "png"), (300, 225)),
        Original("animated.gif", encode(animation(100, 100, 3), "gif"), (100, 100)),
        Original("animated.webp", encode(animation(120, 90, 4, alpha=True), "webp"), (120, 90)),
        Original("p3.jpg", encode(tagged(portrait, "p3"), "jpeg"), (800, 533)),
        Original("cmyk.jpg", encode(tagged(portrait, "cmyk"), "jpeg"), (800, 533)),
        Original("logo.svg", svg(200, 100), (200, 100)),
        Original("logo.svgz", gzip.compress(svg(200, 100), mtime=0), (200, 100)),
        Original("png-named.jpg", encode(photo(200, 100, seed=7), "png"), (200, 100)),
        Original("jpeg-no-extension", encode(tall, "jpeg"), (300, 400)),
        Original("subject-top.jpg", encode(photo(700, 1050, seed=9, focus=(0.5, 0.2)), "jpeg"), (700, 1050)),
        Original("truncated.jpg", truncated(encode(portrait, "jpeg")), None),
        Original("empty.jpg", b"", None),
        Original("invalid-1byte.jpg", b"\xff", None),
        Original("huge.jpg", bombs.jpeg(9643, 10328), None),
        Original("bomb.png", bombs.png(16384, 16384), None),
    ]
    upright = photo(600, 400, seed=8)
    files += [Original(f"orientation-{n}.jpg", oriented_jpeg(upright, n), (600, 400)) for n in range(1, 9)]
    return files


def write_library(folder: Path) -> Path:
    """Write ``library()`` into ``folder`` (created); returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    for original in library():
        (folder / original.name).write_bytes(original.data)
    return folder


# ------------------------------------------------------------------------------------ reading answers


def decode(body: bytes) -> pyvips.Image:
    """Decode a response body, every frame (so ``n-pages``/``page-height`` are visible)."""
    image = pyvips.Image.new_from_buffer(body, "")
    loader = image.get("vips-loader")
    if loader.startswith(("gifload", "webpload")):
        image = pyvips.Image.new_from_buffer(body, "", n=-1)
    return image


def loader_format(image: pyvips.Image) -> str:
    """Format that decoded ``image``: jpeg, png, webp, gif or heif (AVIF decodes through heifload)."""
    return image.get("vips-loader").removesuffix("_buffer").removesuffix("load")


def page_height(image: pyvips.Image) -> int:
    """Height of one frame of a decoded image (the whole height for a still)."""
    return image.get("page-height") if image.get_typeof("page-height") else image.height


def mean_rgb(image: pyvips.Image, left: int, top: int, width: int, height: int) -> list[float]:
    """Mean of each of the first three bands (grey: the one band three times) over a region."""
    region = image.crop(left, top, width, height)
    bands = region.bandsplit()
    if len(bands) in (1, 2):
        return [bands[0].avg()] * 3
    return [band.avg() for band in bands[:3]]


def face(width: int, height: int, *, seed: int = 5) -> pyvips.Image:
    """A ``width`` × ``height`` 8-bit sRGB ``photo`` with a drawn face in the middle (a shaded
    skin-toned oval with ears, eyes, brows, nose and mouth, a neck and shoulders): synthetic, yet
    CenterFace finds it (score 0.76 at 800 × 600, 0.68 at 640 × 480, where the default
    ``face_min_score`` is 0.5): a face to redact without a real person's photo in the repository.
    CenterFace's box for it at 800 × 600 is about (0.40, 0.25, 0.21, 0.43), fractions of the image."""
    xyz = pyvips.Image.xyz(width, height)
    cx, cy, rx, ry = width * 0.5, height * 0.45, width * 0.13, height * 0.24

    def oval(x: float, y: float, sx: float, sy: float) -> pyvips.Image:
        return (((xyz[0] - x) / sx) ** 2 + ((xyz[1] - y) / sy) ** 2) < 1

    image = photo(width, height, seed=seed)
    image = (((xyz[0] - cx).abs() < rx * 0.5) & (xyz[1] > cy)).ifthenelse([200, 150, 120], image)  # neck
    image = oval(cx, height * 1.05, rx * 2.2, ry * 0.6).ifthenelse([40, 60, 110], image)  # shoulders
    for ex in (cx - rx, cx + rx):  # ears
        image = oval(ex, cy, rx * 0.12, ry * 0.15).ifthenelse([210, 160, 130], image)
    distance = ((xyz[0] - cx) / rx) ** 2 + ((xyz[1] - cy) / ry) ** 2
    skin = pyvips.Image.black(width, height, bands=3) + [224, 172, 140] - distance * 40  # darker to the edge
    image = (distance < 1).ifthenelse(skin, image)
    for ex in (cx - rx * 0.4, cx + rx * 0.4):
        image = oval(ex, cy - ry * 0.1, rx * 0.18, ry * 0.07).ifthenelse([255, 255, 255], image)  # eye
        image = oval(ex, cy - ry * 0.1, rx * 0.08, ry * 0.065).ifthenelse([40, 30, 20], image)  # iris
        image = oval(ex, cy - ry * 0.28, rx * 0.22, ry * 0.03).ifthenelse([50, 35, 25], image)  # brow
    image = oval(cx, cy + ry * 0.15, rx * 0.08, ry * 0.15).ifthenelse([190, 130, 100], image)  # nose
    image = oval(cx, cy + ry * 0.5, rx * 0.35, ry * 0.07).ifthenelse([170, 60, 60], image)  # mouth
    return image.cast("uchar").copy(interpretation="srgb")
