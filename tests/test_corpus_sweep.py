"""Every corpus file through several option sets: a decodable image of exactly the promised size and
format, or exactly the 4xx (status and message) this file must get; never a 5xx.

The sizes follow from each file's upright size (MANIFEST.json; ``PILLOW_SIZES`` for the formats
libvips does not read here) by the rules of each option set, written out in ``expected_size``. The
files refused are listed in ``REFUSED`` with their answer; every other file must render.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testkit.app import signed
from testkit.env import CORPUS, EXTRAS
from testkit.images import decode, loader_format, page_height

MIME_LOADER = {"image/avif": "heif", "image/webp": "webp", "image/jpeg": "jpeg", "image/png": "png", "image/gif": "gif"}
OPTION_SETS = [
    ("/w:300", "image/avif,image/webp,*/*"),
    ("/w:200/h:200/fit:cover/f:jpeg", ""),
    ("/w:120/h:90/fit:pad/f:png", ""),
    ("/h:80/rot:90/f:webp", ""),
]
ALLOWED = {"jpeg", "png", "webp", "gif", "avif", "tiff"}
#: Corpus tags of the formats Pillow decodes (edgeproxy/render/pillow.py): in every install, and with an extra.
PILLOW_TAGS = {"bmp", "ico", "psd", "jp2"}
EXTRA_TAGS = {"heic": "heif", "jxl": "jxl"}
#: Upright width × height of the files libvips cannot read here (the manifest has no size for them).
PILLOW_SIZES = {
    "bmp-24.bmp": (200, 200),
    "favicon-libvips.ico": (48, 48),
    "1x1.psd": (1, 1),
    "image.jp2": (300, 400),
    "image.heic": (256, 256),
    "winter.heic": (1440, 960),
    "gopher-alpha.heif": (202, 259),
    "test.jxl": (1200, 720),
}

UNDECODABLE = (422, "the original could not be decoded")
SVG_REFUSED = (415, "input format svg is not allowed")


def _over(width: int, height: int) -> tuple[int, str]:
    return 413, f"the original has {width * height} pixels ({width}x{height}x1); the limit is 50000000"


#: The files that do not render, and their answer to each option set in ``OPTION_SETS`` order (one
#: answer: the same for all). The HEIC and JPEG XL files are not here: they render with their extra
#: and are a 415 naming it without (``needed_extra``).
REFUSED: dict[str, tuple[int, str] | list[tuple[int, str] | None]] = {
    "huge-9643x10328.jpg": _over(9643, 10328),
    "bomb-16384x16384.png": _over(16384, 16384),
    "16383x16383.png": _over(16383, 16383),
    "truncated.jpg": UNDECODABLE,
    "invalid-1byte.jpg": UNDECODABLE,
    "corrupt-exif-header.jpg": UNDECODABLE,
    "empty.jpg": (422, "the original is empty"),
    "truncated.gif": UNDECODABLE,
    "ojpeg.tif": UNDECODABLE,  # old-style JPEG-in-TIFF: libvips' libtiff cannot decode it
    "truncated.svgz": UNDECODABLE,  # not even recognised as SVG once cut
    # Its broken frame is read only when every frame is (an animated WebP answer): the stills of its
    # first frame (JPEG, PNG) render.
    "invalid-frame.gif": [UNDECODABLE, None, None, UNDECODABLE],
    "commons-logo.svg": SVG_REFUSED,  # SVG input is off by default (allowed_input_formats)
    "imgproxy-test1.svg": SVG_REFUSED,
    "svg-embedded-images.svg": SVG_REFUSED,
    "logo.svgz": SVG_REFUSED,
    "svg-inches.svg": SVG_REFUSED,
}


def manifest() -> list[dict]:
    path = CORPUS / "MANIFEST.json"
    return json.loads(path.read_text()) if path.is_file() else []


def needed_extra(entry: dict) -> str | None:
    """The extra this install lacks to decode the file (a 415 naming it), else None."""
    for tag, extra in EXTRA_TAGS.items():
        if tag in entry["tags"] and not EXTRAS[extra]:
            return extra
    return None


def expected_ok(entry: dict) -> bool:
    """Whether the manifest says the file must render: decodable (by libvips or, for the formats
    libvips lacks here, by Pillow), allowed, within the pixel limit."""
    tags = set(entry["tags"])
    if tags & (PILLOW_TAGS | set(EXTRA_TAGS)):
        return "corrupt" not in tags and needed_extra(entry) is None
    fmt = entry.get("format")
    frames = entry.get("pages") if fmt in ("gif", "webp") else 1
    return bool(
        entry.get("decode_ok")
        # Ultra HDR JPEGs load through uhdrload: a JPEG to the proxy.
        and (fmt in ALLOWED or fmt == "uhdr" or (fmt == "heif" and entry.get("loader") == "heifload"))
        and entry["width"] * entry["height"] * (frames or 1) <= 50_000_000
    )


def upright_size(entry: dict) -> tuple[int, int]:
    """(width, height) of the file as shown: EXIF orientations 5-8 swap the stored sides."""
    if entry["file"] in PILLOW_SIZES:
        return PILLOW_SIZES[entry["file"]]
    width, height = entry["width"], entry["height"]
    return (height, width) if entry.get("orientation") in (5, 6, 7, 8) else (width, height)


def expected_size(options: str, width: int, height: int) -> tuple[int, int]:
    """The (width, height) of one frame of the answer to ``options`` for a ``width`` × ``height``
    upright original: never enlarged; sides rounded to the nearest pixel, at least 1."""

    def scaled(scale: float) -> tuple[int, int]:
        return max(1, round(width * scale)), max(1, round(height * scale))

    if options == "/w:300":  # fit inside 300 wide
        return scaled(min(1.0, 300 / width))
    if options == "/w:200/h:200/fit:cover/f:jpeg":  # cover 200 x 200, then cropped to it
        resized = scaled(min(1.0, max(200 / width, 200 / height)))
        return min(200, resized[0]), min(200, resized[1])
    if options == "/w:120/h:90/fit:pad/f:png":  # inside, then padded to exactly the box
        return 120, 90
    if options == "/h:80/rot:90/f:webp":  # rotated first: the box is 80 high after the rotation
        w, h = scaled(min(1.0, 80 / width))
        return h, w
    raise ValueError(options)


def expected_answers(entry: dict) -> list[tuple[int, str] | None]:
    """Per option set: (status, message) of the refusal, or None where the file must render."""
    extra = needed_extra(entry)
    if extra:
        return [(415, f"input format {extra} needs the [{extra}] extra: pip install 'edgeproxy[{extra}]'")] * 4
    refused = REFUSED.get(entry["file"])
    return refused if isinstance(refused, list) else [refused] * len(OPTION_SETS)


@pytest.mark.parametrize(
    "entry",
    [pytest.param(e, marks=pytest.mark.extras) if set(e["tags"]) & set(EXTRA_TAGS) else e for e in manifest()],
    ids=lambda e: e["file"],
)
def test_corpus_file_renders_or_gets_its_exact_4xx(client, corpus: Path, entry):
    for (options, accept), refused in zip(OPTION_SETS, expected_answers(entry), strict=True):
        r = client.get(signed(f"{options}/demo/{entry['file']}"), headers={"Accept": accept})
        if refused is not None:
            assert (r.status_code, r.text) == (refused[0], refused[1] + "\n"), options
            assert r.headers["cache-control"] == "public, max-age=60"
            continue
        assert r.status_code == 200, (options, r.status_code, r.text)
        image = decode(r.content)
        assert loader_format(image) == MIME_LOADER[r.headers["content-type"]]
        assert (image.width, page_height(image)) == expected_size(options, *upright_size(entry)), options


@pytest.mark.extras
def test_the_refusals_agree_with_the_manifest(corpus: Path):
    """Every file the manifest says must render is missing from ``REFUSED``, and every file there is
    one the manifest says cannot, but one: a GeoTIFF with tags libtiff warns about, which the
    manifest's full decode with ``fail_on="warning"`` refuses and the proxy's ``fail_on="truncated"``
    renders. The GIF whose second frame is broken fails that decode too; it is refused where every
    frame is read."""
    entries = {entry["file"]: entry for entry in manifest()}
    assert set(REFUSED) <= set(entries)
    unlisted = {name for name, entry in entries.items() if not expected_ok(entry) and name not in REFUSED}
    assert unlisted - {name for name, entry in entries.items() if needed_extra(entry)} == {"geotiff.tif"}
    assert [name for name in REFUSED if expected_ok(entries[name])] == []
    gif = entries["invalid-frame.gif"]
    assert (gif["decode_ok"], gif["pages"]) == (False, 4)
