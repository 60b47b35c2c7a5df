"""Decode cost of every corpus file in a format only Pillow reads here (``python -m bench.decode``).

For each corpus file tagged bmp, ico, psd, jp2, heic or jxl, and AVIF for comparison: the header read
(``source.probe``) and the full decode into libvips memory (``vips.load_pillow(...).copy_memory()``),
one thread, best of ``--repeat`` after a warm-up: what the first render of such an original pays
before resizing (these decoders have no shrink-on-load). Files whose extra is not installed are
listed as such. Prints a table; with ``--write``, also puts it into bench/results.md as the
``## Decoders`` section.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench import report
from edgeproxy.errors import ProxyError
from edgeproxy.render import pillow, source, vips

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
        probe = report.best_ms(lambda data=data: source.probe(data), repeat)
        decode = report.best_ms(lambda data=data, info=info: vips.load_pillow(data, info).copy_memory(), repeat)
        out.append(
            f"| {entry['file']} | {len(data):,} | {info.format} | {info.width}×{info.height}"
            f"{' +alpha' if info.alpha else ''} | {DECODER[info.format]} | {probe:.2f} | {decode:.1f} |"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = report.parser("bench.decode", __doc__, corpus=True)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args(argv)
    if not (args.corpus / "MANIFEST.json").is_file():
        parser.error(f"no corpus at {args.corpus}")
    vips.configure(1)
    section = "\n".join(
        [
            "## Decoders (python -m bench.decode)",
            "",
            f"{report.run_line(report.command('bench.decode', argv))}, one decoder thread; "
            f"{pillow.versions()}. Header: `source.probe`; decode: `vips.load_pillow(...)"
            f".copy_memory()` (upright pixels with the ICC profile, in libvips memory); best of {args.repeat} "
            "after one warm-up, milliseconds.",
            "",
            "| file | bytes | format | size | decoder | header ms | decode ms |",
            "|---|---|---|---|---|---|---|",
            *rows(args.corpus, args.repeat),
            "",
        ]
    )
    report.publish(section, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
