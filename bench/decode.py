"""Decode cost of every corpus file in a format only Pillow reads here (``python -m bench.decode``).

For each corpus file tagged bmp, ico, psd, jp2, heic or jxl, and AVIF for comparison: the header read
(``source.probe``) and the full decode into libvips memory (``vips.load_pillow(...).copy_memory()``),
one thread, best of ``--repeat`` after a warm-up: what the first render of such an original pays
before resizing (these decoders have no shrink-on-load). Files whose extra is not installed are
listed as such. Prints a table and writes it as the ``## Decoders`` section of bench/results.md
(``--no-write``: print only).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

from bench.sections import publish
from edgeproxy.errors import ProxyError
from edgeproxy.render import pillow, source, vips

ROOT = Path(__file__).resolve().parent.parent
TAGS = ("bmp", "ico", "psd", "jp2", "heic", "jxl", "avif")
DECODER = {
    "bmp": "Pillow",
    "ico": "Pillow",
    "psd": "Pillow",
    "jp2": "Pillow (OpenJPEG)",
    "heif": "pillow-heif (libheif + libde265)",
    "jxl": "pillow-jxl-plugin (libjxl)",
    "avif": "Pillow (libavif + dav1d)",
}


def best_ms(function, repeat: int) -> float:
    function()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def rows(corpus: Path, repeat: int) -> list[str]:
    manifest = json.loads((corpus / "MANIFEST.json").read_text())
    out = []
    for entry in sorted(
        manifest,
        key=lambda e: (
            (TAGS.index(next(t for t in e["tags"] if t in TAGS)), e["file"])
            if any(t in TAGS for t in e["tags"])
            else (99, "")
        ),
    ):
        if not any(t in TAGS for t in entry["tags"]) or "corrupt" in entry["tags"]:
            continue
        data = (corpus / entry["file"]).read_bytes()
        try:
            info = source.probe(data)
        except ProxyError as error:
            out.append(f"| {entry['file']} | {len(data):,} | — | — | {error.message} | | |")
            continue
        if not info.pillow:
            continue
        probe = best_ms(lambda data=data: source.probe(data), repeat)
        decode = best_ms(lambda data=data, info=info: vips.load_pillow(data, info).copy_memory(), repeat)
        out.append(
            f"| {entry['file']} | {len(data):,} | {info.format} | {info.width}×{info.height}"
            f"{' +alpha' if info.alpha else ''} | {DECODER[info.format]} | {probe:.2f} | {decode:.1f} |"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.decode", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus", type=Path, default=Path(os.environ.get("EDGEPROXY_CORPUS", ROOT.parent / "shared" / "corpus"))
    )
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results.md")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if not (args.corpus / "MANIFEST.json").is_file():
        parser.error(f"no corpus at {args.corpus}")
    vips.configure(1)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = "\n".join(
        [
            "## Decoders (python -m bench.decode)",
            "",
            f"Run {now} with `python -m bench.decode --repeat {args.repeat}` on {os.cpu_count()} cores "
            f"({platform.machine()}, CPython {platform.python_version()}), one decoder thread; libvips "
            f"{vips.version()}, {pillow.versions()}. Header: `source.probe`; decode: `vips.load_pillow(...)"
            f".copy_memory()` (upright pixels with the ICC profile, in libvips memory); best of {args.repeat} "
            "after one warm-up, milliseconds.",
            "",
            "| file | bytes | format | size | decoder | header ms | decode ms |",
            "|---|---|---|---|---|---|---|",
            *rows(args.corpus, args.repeat),
            "",
        ]
    )
    publish(section, args.output, not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
