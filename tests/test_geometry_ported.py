"""Geometry expectations of sharp's and imgproxy's own test suites, ported to edgeproxy's URL options.

Each case names its source: the file and test name in lovell/sharp (``test/unit/{resize,
resize-cover,resize-contain,extract,rotate}.js``, read at ea5bef24) or imgproxy/imgproxy
(``processing/{processing,crop,rotate_and_flip}_test.go``, read at eef3b312), and keeps their
expected output size. Their fixtures are remade synthetically at the same sizes (and EXIF
orientations) as coordinate pictures (``testkit.coordinates``), so every case also checks the
pixels: where each output pixel comes from in the original. Only expectations are ported, no code.

How their options map to ours:

- sharp ``resize(w, h)`` defaults to ``fit: cover`` and enlarges: ``w/h/fit:cover`` (+ ``enlarge:1``
  where the output is larger); ``withoutEnlargement`` is our default; ``contain`` is our ``pad``;
  ``position``/``gravity`` is ``g``; ``extract`` before ``resize`` is ``c``; ``rotate(angle)`` is
  ``rot`` (angle mod 360); ``flip()`` is ``flip:v``, ``flop()`` is ``flip:h``; auto-orientation
  always happens here.
- imgproxy ``rs:fit`` is ``fit:inside``, ``fill`` is ``cover``, ``extend`` is ``pad``, ``enlarge``
  is ``enlarge:1``, ``crop:W:H:GRAVITY`` is ``c:X:Y:W:H`` with the gravity worked out to pixels,
  ``max_result_dimension`` is the ``max_output_dimension`` setting; ``auto_rotate`` is always on.

Not ported, because edgeproxy's contract differs (README, URL grammar) or has no such option:
arbitrary angles, ``extract`` after ``resize``, the entropy strategy, ``withoutReduction``,
kernels, ``fill`` with one side given (sharp keeps the other side; we keep the aspect), smart
crops of animations (sharp refuses them; we crop every frame to one window), imgproxy's
``fill-down``, ``extend_aspect_ratio``, ``padding``, gravity offsets, ``dpr`` below 1, ``fill`` with
``extend``, and result limits below the requested box (a 400 here), and their invalid-parameter
tests (ours are in tests/test_spec.py).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import pyvips

from testkit import coordinates
from testkit.app import make_client, signed
from testkit.images import decode

SHARP = "sharp test/unit/"
IMGPROXY = "imgproxy processing/"


@dataclass(frozen=True, slots=True)
class Source:
    """A synthetic stand-in for a fixture: upright size, format, EXIF orientation, alpha, frames."""

    width: int
    height: int
    fmt: str
    orientation: int = 1
    alpha: bool = False
    frames: int = 1

    def encoded(self) -> bytes:
        if self.frames > 1:
            return coordinates.encode(coordinates.animation(self.width, self.height, self.frames), self.fmt)
        upright = coordinates.image(self.width, self.height, alpha=self.alpha)
        return coordinates.encode(coordinates.stored(upright, self.orientation), self.fmt)


SOURCES: dict[str, Source] = {
    # sharp's fixtures (test/fixtures/index.js), at their sizes
    "inputJpg": Source(2725, 2225, "jpeg"),  # 2569067123_aca715a2ee_o.jpg
    "inputPng": Source(2809, 2074, "png"),  # 50020484-00001.png
    "inputTiff": Source(2464, 3248, "tiff"),  # G31D.TIF
    "inputWebP": Source(1024, 772, "webp"),  # 4.webp
    "inputPngWithTransparency": Source(2048, 1536, "png", alpha=True),  # blackbug.png
    "inputPngEmbed": Source(576, 384, "png", alpha=True),  # embedgravitybird.png
    "inputPngWithGreyAlpha": Source(400, 300, "png", alpha=True),  # grey-8bit-alpha.png
    "inputPngWithTransparency16bit": Source(32, 32, "png", alpha=True),  # tbgn2c16.png
    "inputTiffCielab": Source(400, 266, "tiff"),  # cielab-dagams.tiff
    "inputJpg320x240": Source(320, 240, "jpeg"),  # 320x240.jpg
    "inputPngWithOneColor": Source(2, 2, "png"),  # 2x2_fdcce6.png
    "inputTiff8BitDepth": Source(21, 21, "tiff"),  # 8bit_depth.tiff
    "inputWebPAnimated": Source(80, 80, "webp", frames=9),  # rotating-squares.webp
    **{f"Landscape_{n}": Source(600, 450, "jpeg", orientation=n) for n in range(1, 9)},
    **{f"Portrait_{n}": Source(450, 600, "jpeg", orientation=n) for n in range(1, 9)},
    # sharp's intermediate outputs (a test's second step starts from its first step's output)
    "1920x1280.jpg": Source(1920, 1280, "jpeg"),
    "645x399.jpg": Source(645, 399, "jpeg"),
    "600x399.jpg": Source(600, 399, "jpeg"),
    "1080x607.webp": Source(1080, 607, "webp"),
    "1600x1200.jpg": Source(1600, 1200, "jpeg"),
    # sharp's sharp({create: ...}) inputs
    "10x2.png": Source(10, 2, "png"),
    "2x10.png": Source(2, 10, "png"),
    "200x1.png": Source(200, 1, "png"),
    "1x200.png": Source(1, 200, "png"),
    "100x3.jpg": Source(100, 3, "jpeg"),
    "1000x667.jpg": Source(1000, 667, "jpeg"),
    "16x8.png": Source(16, 8, "png"),
    # imgproxy's testdata
    "geometry.png": Source(200, 100, "png"),
    **{
        f"orientation-{n}.png": Source(*((200, 100) if n <= 4 else (100, 200)), "png", orientation=n, alpha=True)
        for n in range(1, 9)
    },
}


@dataclass(frozen=True, slots=True)
class Case:
    """``options`` on ``source`` give ``size`` (theirs), and the picture reaches the sides in
    ``reach`` and not those in ``miss`` (t, b, l, r): sides of the original for a cover crop, sides
    of the canvas for padding. ``limit``: the ``max_output_dimension`` setting."""

    cite: str
    source: str
    options: str
    size: tuple[int, int]
    frames: int = 1
    reach: str = ""
    miss: str = ""
    limit: int = 8192


CASES: list[Case] = []


def case(cite: str, source: str, options: str, size: tuple[int, int], **kwargs) -> None:
    CASES.append(Case(cite, source, options, size, **kwargs))


# --- sharp test/unit/resize.js -------------------------------------------------------------------------------------
R = SHARP + "resize.js: "
case(R + "Exact crop", "inputJpg", "w:320/h:240/fit:cover", (320, 240))
case(R + "Fixed width", "inputJpg", "w:320", (320, 261))
case(R + "Fixed height", "inputJpg", "h:320", (392, 320))
case(R + "Identity transform", "inputJpg", "", (2725, 2225))
case(R + "Upscale", "inputJpg", "w:3000/enlarge:1", (3000, 2450))
case(R + "TIFF embed known to cause rounding errors", "inputTiff", "w:240/h:320/fit:pad", (240, 320))
case(R + "TIFF known to cause rounding errors", "inputTiff", "w:240/h:320/fit:cover", (240, 320))
case(R + "fit=inside, portrait", "inputTiff", "w:320/h:320/fit:inside", (243, 320))
case(R + "fit=outside, portrait", "inputTiff", "w:320/h:320/fit:outside", (320, 422))
case(R + "fit=inside, landscape", "inputJpg", "w:320/h:320/fit:inside", (320, 261))
case(R + "fit=outside, landscape", "inputJpg", "w:320/h:320/fit:outside", (392, 320))
case(R + "fit=inside, provide only one dimension", "inputJpg", "w:320/fit:inside", (320, 261))
case(R + "fit=outside, provide only one dimension", "inputJpg", "w:320/fit:outside", (320, 261))
case(R + "Do not enlarge when input width is already less than output width", "inputJpg", "w:2800", (2725, 2225))
case(R + "Do not enlarge when input height is already less than output height", "inputJpg", "h:2300", (2725, 2225))
case(
    R + "Do crop when fit = cover and withoutEnlargement = true and width >= outputWidth, and height < outputHeight",
    "inputJpg",
    "w:3000/h:1000/fit:cover",
    (2725, 1000),
    reach="lr",
    miss="tb",
)
case(
    R + "Do crop when fit = cover and withoutEnlargement = true and width < outputWidth, and height >= outputHeight",
    "inputJpg",
    "w:1500/h:2226/fit:cover",
    (1500, 2225),
    reach="tb",
    miss="lr",
)
case(R + "Do enlarge when input width is less than output width", "inputJpg", "w:2800/enlarge:1", (2800, 2286))
case(R + "fit=fill, downscale width and height", "inputJpg", "w:320/h:320/fit:fill", (320, 320))
case(R + "fit=fill, upscale width and height", "inputJpg", "w:3000/h:3000/fit:fill", (3000, 3000))
case(R + "fit=fill, downscale width, upscale height", "inputJpg", "w:320/h:3000/fit:fill", (320, 3000))
case(R + "fit=fill, upscale width, downscale height", "inputJpg", "w:3000/h:320/fit:fill", (3000, 320))
case(R + "fit=fill, identity transform", "inputJpg", "fit:fill", (2725, 2225))
case(
    R + "Dimensions that result in differing even shrinks on each axis (1)",
    "inputJpg",
    "w:645/h:399/fit:cover",
    (645, 399),
)
case(
    R + "Dimensions that result in differing even shrinks on each axis (2)",
    "645x399.jpg",
    "w:150/h:100/fit:cover",
    (150, 100),
)
case(
    R + "Dimensions that result in differing odd shrinks on each axis (1)",
    "inputJpg",
    "w:600/h:399/fit:cover",
    (600, 399),
)
case(R + "Dimensions that result in differing odd shrinks on each axis (2)", "600x399.jpg", "w:200", (200, 133))
case(
    R + "WebP shrink-on-load rounds to zero, ensure recalculation is correct (1)",
    "inputJpg",
    "w:1080/h:607/fit:cover/f:webp",
    (1080, 607),
)
case(
    R + "WebP shrink-on-load rounds to zero, ensure recalculation is correct (2)",
    "1080x607.webp",
    "w:233/h:131/fit:cover",
    (233, 131),
)
case(
    R + "JPEG shrink-on-load with 90 degree rotation, ensure recalculation is correct (1)",
    "inputJpg",
    "w:1920/h:1280/fit:cover",
    (1920, 1280),
)
case(
    R + "JPEG shrink-on-load with 90 degree rotation, ensure recalculation is correct (2)",
    "1920x1280.jpg",
    "rot:90/w:533/h:800/fit:cover",
    (533, 800),
)
case(R + "nearest upsampling with integral factor", "inputTiff8BitDepth", "w:210/h:210/fit:cover/enlarge:1", (210, 210))
case(R + "Ensure shortest edge (height) is at least 1 pixel", "10x2.png", "w:2", (2, 1))
case(R + "Ensure shortest edge (width) is at least 1 pixel", "2x10.png", "h:2", (1, 2))
case(
    R + "Ensure embedded shortest edge (height) is at least 1 pixel",
    "200x1.png",
    "w:50/h:50/fit:pad/enlarge:1",
    (50, 50),
)
case(
    R + "Ensure embedded shortest edge (width) is at least 1 pixel",
    "1x200.png",
    "w:50/h:50/fit:pad/enlarge:1",
    (50, 50),
)
case(R + "Skip shrink-on-load where one dimension <4px", "100x3.jpg", "w:8", (8, 1))
case(R + "Skip JPEG shrink-on-load for known libjpeg rounding errors", "1000x667.jpg", "w:500", (500, 334))

# --- sharp test/unit/resize-cover.js -------------------------------------------------------------------------------
C = SHARP + "resize-cover.js: "
WIDE, TALL = (320, 80), (80, 320)
#: (test name, box, our gravity, sides reached, sides missed) of the position/gravity table.
for name, box, gravity, reach, miss in (
    ("Position: top", WIDE, "north", "t", "b"),
    ("Position: right", TALL, "east", "r", "l"),
    ("Position: bottom", WIDE, "south", "b", "t"),
    ("Position: left", TALL, "west", "l", "r"),
    ("Position: right top (top)", WIDE, "northeast", "t", "b"),
    ("Position: right top (right)", TALL, "northeast", "r", "l"),
    ("Position: right bottom (bottom)", WIDE, "southeast", "b", "t"),
    ("Position: right bottom (right)", TALL, "southeast", "r", "l"),
    ("Position: left bottom (bottom)", WIDE, "southwest", "b", "t"),
    ("Position: left bottom (left)", TALL, "southwest", "l", "r"),
    ("Position: left top (top)", WIDE, "northwest", "t", "b"),
    ("Position: left top (left)", TALL, "northwest", "l", "r"),
    ("Gravity: north", WIDE, "north", "t", "b"),
    ("Gravity: east", TALL, "east", "r", "l"),
    ("Gravity: south", WIDE, "south", "b", "t"),
    ("Gravity: west", TALL, "west", "l", "r"),
    ("Gravity: center", WIDE, "center", "", "tb"),
    ("Gravity: centre", TALL, "center", "", "lr"),
    ("Default (centre)", TALL, "", "", "lr"),
    ("Gravity: northeast (north)", WIDE, "northeast", "t", "b"),
    ("Gravity: northeast (east)", TALL, "northeast", "r", "l"),
    ("Gravity: southeast (south)", WIDE, "southeast", "b", "t"),
    ("Gravity: southeast (east)", TALL, "southeast", "r", "l"),
    ("Gravity: southwest (south)", WIDE, "southwest", "b", "t"),
    ("Gravity: southwest (west)", TALL, "southwest", "l", "r"),
    ("Gravity: northwest (north)", WIDE, "northwest", "t", "b"),
    ("Gravity: northwest (west)", TALL, "northwest", "l", "r"),
    ("Allows specifying the gravity as a string", TALL, "east", "r", "l"),
):
    g = f"/g:{gravity}" if gravity else ""
    case(C + name, "inputJpg", f"w:{box[0]}/h:{box[1]}/fit:cover{g}", box, reach=reach, miss=miss)
case(
    C + "Skip crop when post-resize dimensions are at target", "1600x1200.jpg", "w:1110/fit:cover/g:smart", (1110, 832)
)
case(C + "Animated Webp: Width only", "inputWebPAnimated", "w:80/h:320/fit:cover/enlarge:1/f:webp", (80, 320), frames=9)
case(
    C + "Animated Webp: Height only", "inputWebPAnimated", "w:320/h:80/fit:cover/enlarge:1/f:webp", (320, 80), frames=9
)
case(C + "Attention strategy: JPEG", "inputJpg", "w:80/h:320/fit:cover/g:smart", (80, 320))
case(C + "Attention strategy: PNG", "inputPngWithTransparency", "w:320/h:80/fit:cover/g:smart", (320, 80))
case(C + "Attention strategy: WebP", "inputWebP", "w:320/h:80/fit:cover/g:smart", (320, 80))
case(
    C + "Attention strategy: supports the strategy passed as a string",
    "inputPngWithTransparency",
    "w:320/h:80/fit:cover/g:smart",
    (320, 80),
)

# --- sharp test/unit/resize-contain.js ------------------------------------------------------------------------------
P = SHARP + "resize-contain.js: "
case(
    P + "Allows specifying the position as a string",
    "inputJpg",
    "w:320/h:240/fit:pad/g:center",
    (320, 240),
    reach="tb",
    miss="lr",
)
case(P + "JPEG within PNG, no alpha channel", "inputJpg", "w:320/h:240/fit:pad/f:png", (320, 240))
case(P + "JPEG within WebP, to include alpha channel", "inputJpg", "w:320/h:240/fit:pad/bg:00000000/f:webp", (320, 240))
case(P + "PNG with alpha channel", "inputPngWithTransparency", "w:50/h:50/fit:pad", (50, 50))
case(P + "16-bit PNG with alpha channel", "inputPngWithTransparency16bit", "w:32/h:16/fit:pad", (32, 16))
case(
    P + "16-bit PNG with alpha channel onto RGBA",
    "inputPngWithTransparency16bit",
    "w:32/h:16/fit:pad/bg:00000000",
    (32, 16),
)
case(P + "PNG with 2 channels", "inputPngWithGreyAlpha", "w:32/h:16/fit:pad/bg:00000000", (32, 16))
case(
    P + "TIFF in LAB colourspace onto RGBA background",
    "inputTiffCielab",
    "w:64/h:128/fit:pad/bg:ff660080/f:png",
    (64, 128),
)
case(P + "Enlarge", "inputPngWithOneColor", "w:320/h:240/fit:pad/enlarge:1", (320, 240))
case(
    P + "Animated WebP: Width only",
    "inputWebPAnimated",
    "w:320/h:240/fit:pad/enlarge:1/bg:ff0000/f:webp",
    (320, 240),
    frames=9,
)
case(
    P + "Animated WebP: Height only",
    "inputWebPAnimated",
    "w:240/h:320/fit:pad/enlarge:1/bg:ff0000/f:webp",
    (240, 320),
    frames=9,
)
#: sharp's position -> (our gravity, x placement, y placement): 0 left/top, 1 centre, 2 right/bottom.
POSITIONS = {
    "top": ("north", 1, 0),
    "right top": ("northeast", 2, 0),
    "right": ("east", 2, 1),
    "right bottom": ("southeast", 2, 2),
    "bottom": ("south", 1, 2),
    "left bottom": ("southwest", 0, 2),
    "left": ("west", 0, 1),
    "left top": ("northwest", 0, 0),
    "north": ("north", 1, 0),
    "northeast": ("northeast", 2, 0),
    "east": ("east", 2, 1),
    "southeast": ("southeast", 2, 2),
    "south": ("south", 1, 2),
    "southwest": ("southwest", 0, 2),
    "west": ("west", 0, 1),
    "northwest": ("northwest", 0, 0),
    "center": ("center", 1, 1),
}
for position, (gravity, x, y) in POSITIONS.items():
    # 576x384 into 200x100: a 150x100 picture padded left and right; into 200x200: 200x133, padded above and below.
    case(
        P + f"Position horizontal {position}",
        "inputPngEmbed",
        f"w:200/h:100/fit:pad/bg:00000000/g:{gravity}",
        (200, 100),
        reach="tb" + {0: "l", 1: "", 2: "r"}[x],
        miss={0: "r", 1: "lr", 2: "l"}[x],
    )
    case(
        P + f"Position vertical {position}",
        "inputPngEmbed",
        f"w:200/h:200/fit:pad/bg:00000000/g:{gravity}",
        (200, 200),
        reach="lr" + {0: "t", 1: "", 2: "b"}[y],
        miss={0: "b", 1: "tb", 2: "t"}[y],
    )

# --- sharp test/unit/extract.js -----------------------------------------------------------------------------------
E = SHARP + "extract.js: "
case(E + "JPEG", "inputJpg", "c:2:2:20:20", (20, 20))
case(E + "PNG", "inputPng", "c:200:300:400:200", (400, 200))
case(E + "WebP", "inputWebP", "c:100:50:125:200", (125, 200))
case(
    E + "Animated WebP: Before resize",
    "inputWebPAnimated",
    "c:0:30:80:20/w:320/h:80/fit:cover/enlarge:1/f:webp",
    (320, 80),
    frames=9,
)
case(E + "TIFF", "inputTiff", "c:34:63:341:529", (341, 529))
case(E + "Before resize", "inputJpg", "c:10:10:10:500/w:100/h:100/fit:cover/enlarge:1", (100, 100))
case(E + "Extract then rotate", "inputPngWithGreyAlpha", "c:20:10:380:280/rot:90/f:jpeg", (280, 380))
# "Rotate then extract" extracts (20, 10, 280, 380) of the rotated 300x400 picture: (10, 0, 380, 280) of the original.
case(E + "Rotate then extract", "inputPngWithGreyAlpha", "c:10:0:380:280/rot:90", (280, 380))
# "Extract then rotate then extract": (20, 10, 180, 280), rotated, then (20, 10, 200, 100): (30, 70, 100, 200) of it.
case(E + "Extract then rotate then extract", "inputPngWithGreyAlpha", "c:30:70:100:200/rot:90", (200, 100))
for n in range(1, 9):
    case(
        E + f"Apply exif orientation and mirroring then extract: EXIF-{n}", f"Landscape_{n}", "c:0:208:60:40", (60, 40)
    )

# --- sharp test/unit/rotate.js ------------------------------------------------------------------------------------
T = SHARP + "rotate.js: "
for shape, (width, height) in (("Landscape", (600, 450)), ("Portrait", (450, 600))):
    for tag in range(1, 9):
        source, name = f"{shape}_{tag}", f"{shape} image with EXIF Orientation {tag}: "
        case(T + name + "Auto-rotate", source, "", (width, height))
        # "Resize then auto-rotate" asks for the same derivative (we always orient first): not repeated.
        case(T + name + "Auto-rotate then resize", source, "w:320", (320, 240) if shape == "Landscape" else (320, 427))
        for resize in (True, False):
            for angle in (90, 180, 270):  # 45 is not a rotation we have
                w, h = (math.floor(v / 1.875) for v in (width, height)) if resize else (width, height)
                expected = (w, h) if angle % 180 == 0 else (h, w)
                case(
                    T + name + f"Auto-rotate then rotate {angle} {'and resize' if resize else ''}".rstrip(),
                    source,
                    f"rot:{angle}" + (f"/w:{expected[0]}" if resize else ""),
                    expected,
                )
            for flip, label in (("hv", "flip & flop"), ("v", "flip"), ("h", "flop")):
                box = f"/w:{320 if shape == 'Landscape' else 240}" if resize else ""
                expected = (int(width / 1.875), int(height / 1.875)) if resize else (width, height)
                case(
                    T + name + f"Auto-rotate then {label} {'and resize' if resize else ''}".rstrip(),
                    source,
                    f"flip:{flip}{box}",
                    expected,
                )
case(T + "Rotate by 90 degrees, respecting output input size", "inputJpg", "rot:90/w:320/h:240/fit:cover", (320, 240))
for angle in (-3690, -450, -90, 90, 450, 3690):
    case(T + f"Rotate by any 90-multiple angle ({angle}deg)", "inputJpg320x240", f"rot:{angle % 360}", (240, 320))
for angle in (-3780, -540, 0, 180, 540, 3780):
    case(T + f"Rotate by any 180-multiple angle ({angle}deg)", "inputJpg320x240", f"rot:{angle % 360}", (320, 240))
case(
    T + "Rotate by 270 degrees, square output ignoring aspect ratio",
    "inputJpg",
    "rot:270/w:240/h:240/fit:fill",
    (240, 240),
)
case(
    T + "Rotate by 270 degrees, rectangular output ignoring aspect ratio",
    "inputJpg",
    "rot:270/w:320/h:240/fit:fill",
    (320, 240),
)
case(
    T + "Auto-rotate by 270 degrees, rectangular output ignoring aspect ratio",
    "Landscape_8",
    "w:320/h:240/fit:fill",
    (320, 240),
)
case(
    T + "Input image has Orientation EXIF tag value of 8 (270 degrees), auto-rotate", "Landscape_8", "w:320", (320, 240)
)
case(
    T + "Input image has Orientation EXIF tag value of 5 (270 degrees + flip), auto-rotate",
    "Landscape_5",
    "w:320",
    (320, 240),
)
case(T + "Attempt to auto-rotate using image that has no EXIF", "inputJpg", "w:320", (320, 261))
case(T + "Attempt to auto-rotate image format without EXIF support", "inputPng", "w:320/f:jpeg", (320, 236))
case(T + "Multiple rotate: last one wins (cardinal)", "inputJpg", "rot:90", (2225, 2725))
case(T + "Flip - vertical", "inputJpg", "w:320/flip:v", (320, 261))
case(T + "Flop - horizontal", "inputJpg", "w:320/flip:h", (320, 261))
case(T + "Flip and flop", "inputJpg", "w:320/flip:hv", (320, 261))
case(T + "Neither flip nor flop", "inputJpg", "w:320", (320, 261))
case(T + "Auto-rotate and flip", "Landscape_8", "flip:v/w:320", (320, 240))
case(T + "Auto-rotate and flop", "Landscape_8", "flip:h/w:320", (320, 240))
case(T + "Auto-rotate and shrink-on-load", "Landscape_3", "w:8", (8, 6))
case(T + "Rotate 90 then resize with inside fit", "16x8.png", "rot:90/w:6/fit:inside", (6, 12))
case(T + "Shrink-on-load with autoOrient", "Landscape_6", "w:8/f:avif", (8, 6))

# --- imgproxy processing/processing_test.go (geometry.png, 200x100) --------------------------------------------------
P_GO = IMGPROXY + "processing_test.go: "


def box(width: int, height: int) -> str:
    return "/".join(f"{k}:{v}" for k, v in (("w", width), ("h", height)) if v)


for test, extra, table in (
    (
        "TestResizeToFit",
        "",
        [
            ((50, 50), (50, 25)),
            ((50, 20), (40, 20)),
            ((20, 50), (20, 10)),
            ((300, 300), (200, 100)),
            ((300, 50), (100, 50)),
            ((100, 300), (100, 50)),
            ((0, 50), (100, 50)),
            ((50, 0), (50, 25)),
            ((0, 200), (200, 100)),
            ((300, 0), (200, 100)),
        ],
    ),
    (
        "TestResizeToFitEnlarge",
        "/enlarge:1",
        [
            ((50, 50), (50, 25)),
            ((50, 20), (40, 20)),
            ((20, 50), (20, 10)),
            ((300, 300), (300, 150)),
            ((300, 125), (250, 125)),
            ((250, 300), (250, 125)),
            ((0, 50), (100, 50)),
            ((50, 0), (50, 25)),
            ((0, 200), (400, 200)),
            ((300, 0), (300, 150)),
        ],
    ),
    (
        "TestResizeToFitExtend",
        "/fit:pad",
        [
            ((50, 50), (50, 50)),
            ((50, 20), (50, 20)),
            ((20, 50), (20, 50)),
            ((300, 300), (300, 300)),
            ((300, 125), (300, 125)),
            ((250, 300), (250, 300)),
            ((0, 50), (100, 50)),
            ((50, 0), (50, 25)),
            ((0, 200), (200, 200)),
            ((300, 0), (300, 100)),
        ],
    ),
    (
        "TestResizeToFill",
        "/fit:cover",
        [
            ((50, 50), (50, 50)),
            ((50, 20), (50, 20)),
            ((20, 50), (20, 50)),
            ((300, 300), (200, 100)),
            ((300, 50), (200, 50)),
            ((100, 300), (100, 100)),
            ((0, 50), (100, 50)),
            ((50, 0), (50, 25)),
            ((0, 200), (200, 100)),
            ((300, 0), (200, 100)),
        ],
    ),
    (
        "TestResizeToFillEnlarge",
        "/fit:cover/enlarge:1",
        [
            ((50, 50), (50, 50)),
            ((50, 20), (50, 20)),
            ((20, 50), (20, 50)),
            ((300, 300), (300, 300)),
            ((300, 125), (300, 125)),
            ((250, 300), (250, 300)),
            ((0, 50), (100, 50)),
            ((50, 0), (50, 25)),
            ((0, 200), (400, 200)),
            ((300, 0), (300, 150)),
        ],
    ),
):
    for (width, height), size in table:
        case(P_GO + f"{test}/{width}x{height}", "geometry.png", box(width, height) + extra, size)
# TestResultSizeLimit: the cases whose box is within the limit (a larger box is a 400 here, by contract)
for limit, options, size in (
    (1000, "w:100/h:100", (100, 50)),
    (50, "", (50, 25)),
    (100, "h:100", (100, 50)),
    (100, "rot:90", (50, 100)),
    (1000, "w:100/h:100/fit:cover", (100, 100)),
    (50, "fit:cover", (50, 25)),
    (100, "h:100/fit:cover", (100, 50)),
    (100, "rot:90/fit:cover", (50, 100)),
):
    case(P_GO + f"TestResultSizeLimit/limit:{limit}/{options or 'none'}", "geometry.png", options, size, limit=limit)

# --- imgproxy processing/crop_test.go ----------------------------------------------------------------------------
G = IMGPROXY + "crop_test.go: "
for gravity, reach, miss in (
    ("center", "", "tb"),
    ("north", "t", "b"),
    ("south", "b", "t"),
    ("northeast", "t", "b"),
    ("southeast", "b", "t"),
    ("southwest", "b", "t"),
    ("northwest", "t", "b"),
):
    case(
        G + f"TestResizeFill/resizeFill_100x26_gravity_{gravity}",
        "geometry.png",
        f"w:100/h:26/fit:cover/g:{gravity}",
        (100, 26),
        reach=reach,
        miss=miss,
    )
for gravity, reach, miss in (
    ("center", "", "lr"),
    ("east", "r", "l"),
    ("west", "l", "r"),
    ("northeast", "r", "l"),
    ("southeast", "r", "l"),
    ("southwest", "l", "r"),
    ("northwest", "l", "r"),
):
    case(
        G + f"TestResizeFill/resizeFill_26x100_gravity_{gravity}",
        "geometry.png",
        f"w:26/h:100/fit:cover/g:{gravity}",
        (26, 100),
        reach=reach,
        miss=miss,
    )
case(
    G + "TestResizeFill/resizeFill_100x26_gravity_center_dpr_2", "geometry.png", "w:100/h:26/fit:cover/dpr:2", (200, 52)
)
#: crop:50:50:GRAVITY of the 200x100 picture, as our pixel region.
for gravity, (x, y) in (
    ("center", (75, 25)),
    ("north", (75, 0)),
    ("south", (75, 50)),
    ("east", (150, 25)),
    ("west", (0, 25)),
    ("northeast", (150, 0)),
    ("northwest", (0, 0)),
    ("southeast", (150, 50)),
    ("southwest", (0, 50)),
):
    case(G + f"TestCrop/crop_gravity_{gravity}_crop_50x50", "geometry.png", f"c:{x}:{y}:50:50", (50, 50))

# --- imgproxy processing/rotate_and_flip_test.go: TestRotateFlipAutoRotate ------------------------------------------
F = IMGPROXY + "rotate_and_flip_test.go: TestRotateFlipAutoRotate/"
for n in range(1, 9):
    upright = (200, 100) if n <= 4 else (100, 200)
    for rotate in (0, 90, 180, 270):
        for flip in ("", "h", "v", "hv"):
            options = "/".join(o for o in (f"rot:{rotate}" if rotate else "", f"flip:{flip}" if flip else "") if o)
            size = upright if rotate % 180 == 0 else upright[::-1]
            case(F + f"orientation-{n}_rotate-{rotate}_flip-{flip or 'none'}", f"orientation-{n}.png", options, size)


# --- the test ----------------------------------------------------------------------------------------------------

#: Sources this small get their size checked, not their pixels (resampling a handful of pixels
#: meets the clamped border everywhere).
TINY = 32
TOLERANCE = {"jpeg": 4.0, "png": 3.0, "tiff": 3.0, "webp": 5.0, "avif": 6.0, "gif": 10.0}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ported")
    for name in {c.source for c in CASES}:
        (root / name).write_bytes(SOURCES[name].encoded())
    return root


@pytest.fixture(scope="module")
def clients(folder: Path) -> Iterator[dict[int, httpx.Client]]:
    """One edgeproxy per ``max_output_dimension`` the cases use, started when first asked for."""
    with contextlib.ExitStack() as stack:

        class Started(dict):
            def __missing__(self, limit: int) -> httpx.Client:
                self[limit] = stack.enter_context(
                    make_client({"p": str(folder)}, max_output_dimension=limit, png_compression=1)
                )
                return self[limit]

        yield Started()


def reached(decoded: pyvips.Image, padded: bool) -> set[str]:
    """Sides reached: of the canvas by the opaque picture (``padded``), else of the original by the
    output (its first and last rows and columns carry the original's edge colours: R is the
    column, G the row)."""
    w, h = decoded.width, coordinates.page_height(decoded)
    if padded:
        opaque = decoded.crop(0, 0, w, h)[3].numpy() > 128
        rows, cols = np.nonzero(opaque)
        return {
            side
            for side, hit in (
                ("t", rows.min() == 0),
                ("b", rows.max() == h - 1),
                ("l", cols.min() == 0),
                ("r", cols.max() == w - 1),
            )
            if hit
        }
    edges = {
        "t": decoded.crop(0, 0, w, 1)[1].avg() < 8,
        "b": decoded.crop(0, h - 1, w, 1)[1].avg() > 247,
        "l": decoded.crop(0, 0, 1, h)[0].avg() < 8,
        "r": decoded.crop(w - 1, 0, 1, h)[0].avg() > 247,
    }
    return {side for side, hit in edges.items() if hit}


@pytest.mark.parametrize("c", CASES, ids=[c.cite.removeprefix(SHARP).removeprefix(IMGPROXY) for c in CASES])
def test_ported_geometry(clients: dict[int, httpx.Client], c: Case):
    source = SOURCES[c.source]
    spec, p = coordinates.planned(c.options, source.width, source.height, c.limit)
    output = "" if "f:" in c.options else ("/f:png" if c.size[0] * c.size[1] <= 1_000_000 else "/f:jpeg/q:95")
    path = "/".join([o for o in (c.options + output).split("/") if o] + ["p", c.source])
    r = clients[c.limit].get(signed("/" + path))
    assert r.status_code == 200, (c.cite, r.status_code, r.text)
    out = decode(r.content)
    ph = coordinates.page_height(out)
    assert (out.width, ph, out.height // ph) == (*c.size, c.frames), c.cite
    assert p.output_size == c.size, c.cite  # the plan agrees with what was served
    lossy = spec.format.value in ("jpeg", "webp", "avif")
    if "g:smart" in c.options or min(source.width, source.height) < TINY or (lossy and min(c.size) < TINY):
        return
    error = coordinates.error(out, spec, p, source.width, source.height)
    assert error < TOLERANCE[source.fmt] + 2 * lossy, f"{c.cite}: {error:.1f} levels off"
    if c.reach or c.miss:
        sides = reached(out, padded=p.canvas is not None)
        assert set(c.reach) <= sides and not set(c.miss) & sides, (c.cite, sorted(sides))


def test_the_port_names_each_case_once_and_uses_every_fixture():
    assert len({c.cite for c in CASES}) == len(CASES)
    assert {c.source for c in CASES} == set(SOURCES)
