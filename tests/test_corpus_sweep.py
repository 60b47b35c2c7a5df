"""Every corpus file through several option sets: a decodable image of the promised size and
format, or one of DESIGN.md's 4xx codes; never a 5xx."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testkit.app import signed
from testkit.env import CORPUS, EXTRAS
from testkit.images import decode, loader_format

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
        and (fmt in ALLOWED or (fmt == "heif" and entry.get("loader") == "heifload"))
        and entry["width"] * entry["height"] * (frames or 1) <= 50_000_000
    )


@pytest.mark.parametrize("entry", manifest(), ids=lambda e: e["file"])
def test_corpus_file_renders_or_gets_a_clear_4xx(client, corpus: Path, entry):
    for options, accept in OPTION_SETS:
        r = client.get(signed(f"{options}/demo/{entry['file']}"), headers={"Accept": accept})
        assert r.status_code in (200, 413, 415, 422), (options, r.status_code, r.text)
        if expected_ok(entry):
            assert r.status_code == 200, (options, r.text)
        elif needed_extra(entry):
            extra = needed_extra(entry)
            assert (r.status_code, r.text) == (
                415,
                f"input format {extra} needs the [{extra}] extra: pip install 'edgeproxy[{extra}]'\n",
            )
        if r.status_code != 200:
            assert r.headers["cache-control"] == "public, max-age=60"
            continue
        image = decode(r.content)
        assert loader_format(image) == MIME_LOADER[r.headers["content-type"]]
        height = image.get("page-height") if image.get_typeof("page-height") else image.height
        if "/w:300" in options:
            assert image.width <= 300
        elif "fit:cover" in options:
            assert (image.width, height) == (min(200, image.width), min(200, height))
        elif "fit:pad" in options:
            assert (image.width, height) == (120, 90)
        else:
            assert height <= 80
