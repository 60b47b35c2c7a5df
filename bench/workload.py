"""Benchmark inputs and workloads, generated reproducibly from the shared corpus.

imgproxy's image-servers-benchmark uses 2K DIV2K photos converted to each format under test; we
make the same from the corpus's large photos: each is fitted into 2040×2040 (DIV2K's width), turned
to sRGB without metadata, and saved with `vips copy` defaults as JPEG (Q 75), PNG, WebP (Q 75), and as
AVIF (Q 65, effort 0).
The 12 MP workload uses the iPhone photo unchanged (4032×3024, EXIF orientation 6, Display P3).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyvips

PHOTOS = ["flickr-2725x2225.jpg", "progressive-2560x1600.jpg", "imaginary-large.jpg", "adobe-rgb-icc.jpg"]
LARGE = "iphone-p3-orientation-6.jpg"
SAVE = {
    "jpg": {},  # vips copy defaults (Q 75), as in the harness
    "png": dict(compression=6),
    "webp": {},  # Q 75
    "avif": dict(Q=65, effort=0, compression="av1"),
}


@dataclass(frozen=True)
class Workload:
    """One benchmark case: input files (names in the image folder), output format and size."""

    name: str
    files: tuple[str, ...]
    out_format: str  # jpeg, png, webp, avif
    quality: int | None
    box: tuple[int, int]  # fit inside (width, height); height 0 = width only

    def edgeproxy_path(self, file: str) -> str:
        w, h = self.box
        q = f"/q:{self.quality}" if self.quality else ""
        size = f"/w:{w}/h:{h}" if h else f"/w:{w}"
        return f"{size}/f:{self.out_format}{q}/bench/{file}"

    def thumbor_path(self, file: str) -> str:
        w, h = self.box
        filters = [f"format({self.out_format})"]
        if self.quality:
            filters.insert(0, f"quality({self.quality})")
        size = f"fit-in/{w}x{h}" if h else f"{w}x0"
        return f"/unsafe/{size}/filters:{':'.join(filters)}/{file}"


def prepare(corpus: Path, folder: Path) -> list[Workload]:
    """Write the inputs into ``folder`` (once; reused when present) and return the workloads."""
    folder.mkdir(parents=True, exist_ok=True)
    stems = []
    for i, name in enumerate(PHOTOS):
        stem = f"photo{i + 1}"
        stems.append(stem)
        if all((folder / f"{stem}.{ext}").exists() for ext in SAVE):
            continue
        image = pyvips.Image.thumbnail(str(corpus / name), 2040, height=2040, size="down", output_profile="srgb")
        image = image.copy_memory()
        for ext, options in SAVE.items():
            image.write_to_file(str(folder / f"{stem}.{ext}"), keep="none", **options)
    large = folder / "large-12mp.jpg"
    if not large.exists():
        large.write_bytes((corpus / LARGE).read_bytes())
    return [
        Workload("jpeg", tuple(f"{s}.jpg" for s in stems), "jpeg", 80, (512, 512)),
        Workload("png", tuple(f"{s}.png" for s in stems), "png", None, (512, 512)),
        Workload("webp", tuple(f"{s}.webp" for s in stems), "webp", 75, (512, 512)),
        Workload("avif", tuple(f"{s}.avif" for s in stems), "avif", 65, (512, 512)),
        Workload("12mp-webp800", ("large-12mp.jpg",), "webp", 75, (800, 0)),
    ]
