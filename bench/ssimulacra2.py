"""``python -m bench.ssimulacra2``: the speed of edgeproxy's SSIMULACRA2 against the PyPI port's.

For each corpus photo (MANIFEST.json: tag ``photo``, ``decode_ok``, at least ``WIDTH`` px wide; the
first ``--photos`` by name), the reference is the photo at ``WIDTH`` px on its longer side
(``bench.formats.reference``) and the distorted image its JPEG at quality 75 decoded again. Timed,
best of ``--repeat`` after a warm-up, on one core (libvips concurrency 1, OpenBLAS one thread):
``Reference(image)`` (once per reference), ``Reference.score(distorted)`` (each candidate of a
quality search), the one-shot ``score(reference, distorted)``, and the port's
``compute_ssimulacra2`` on the same pixels (PPM files in memory, as ``bench.formats`` gives them),
best of ``--port-repeat``. Prints a table with the ratio port ÷ ours; ``--write`` also puts it into
``bench/results.md``.

``--cpp PATH``: also the agreement of both with the C++ reference (the ``ssimulacra2`` binary built
from github.com/cloudinary/ssimulacra2) on JPEG, WebP and AVIF at several qualities: the median and
the largest |difference| over the photos.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pyvips

from bench import report
from bench.formats import OPTIONS, reference, to_ppm
from edgeproxy.quality import ssimulacra2
from edgeproxy.render import encoding, vips

HEADING = "## SSIMULACRA2 speed (python -m bench.ssimulacra2)"
WIDTH = 800  # px
QUALITY = 75  # of the JPEG scored
AGREEMENT = {"jpeg": (20, 40, 60, 80, 95), "webp": (20, 40, 60, 80, 95), "avif": (20, 40, 60, 80)}


def photos(corpus: Path, limit: int) -> list[str]:
    """The first ``limit`` decodable corpus photos at least ``WIDTH`` px wide, by file name."""
    manifest = json.loads((corpus / "MANIFEST.json").read_text())
    names = sorted(
        e["file"]
        for e in manifest
        if "photo" in e["tags"] and e.get("decode_ok") and e.get("width", 0) >= WIDTH and (corpus / e["file"]).exists()
    )
    return names[:limit]


def decoded(data: bytes) -> pyvips.Image:
    """An encoded image decoded by libvips into memory, 3-band 8-bit sRGB."""
    return pyvips.Image.new_from_buffer(data, "").colourspace("srgb").cast("uchar").copy_memory()


def port_score(reference_ppm: bytes, distorted: pyvips.Image) -> float:
    """The PyPI port's score (``ssimulacra2.compute_ssimulacra2``) of ``distorted`` against a PPM."""
    from ssimulacra2 import compute_ssimulacra2

    return float(compute_ssimulacra2(io.BytesIO(reference_ppm), io.BytesIO(to_ppm(distorted))))


def speed_row(name: str, image: pyvips.Image, repeat: int, port_repeat: int) -> tuple[str, float]:
    """A table row for one photo, and the ratio port ÷ ours for ``Reference.score``."""
    distorted = decoded(encoding.encode(image, "jpeg", QUALITY, True, OPTIONS))
    prepared = ssimulacra2.Reference(image)
    build = report.best_ms(lambda: ssimulacra2.Reference(image), repeat)
    each = report.best_ms(lambda: prepared.score(distorted), repeat)
    once = report.best_ms(lambda: ssimulacra2.score(image, distorted), repeat)
    ppm = to_ppm(image)
    port = report.best_ms(lambda: port_score(ppm, distorted), port_repeat)
    size = f"{image.width}×{image.height}"
    row = f"| {name} | {size} | {build:.1f} | {each:.1f} | {once:.1f} | {port:.0f} | {port / each:.0f}× |"
    return row, port / each


def agreement(images: dict[str, pyvips.Image], cpp: Path) -> list[str]:
    """Rows: per format, the median and max |ours − C++| and |port − C++| over the photos and
    ``AGREEMENT``'s qualities, and where the largest of ours is."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        ref_png, dist_png = Path(folder) / "ref.png", Path(folder) / "dist.png"
        for fmt, qualities in AGREEMENT.items():
            ours_off: list[tuple[float, str]] = []
            port_off: list[float] = []
            for name, image in images.items():
                image.pngsave(str(ref_png))
                prepared, ppm = ssimulacra2.Reference(image), to_ppm(image)
                for quality in qualities:
                    distorted = decoded(encoding.encode(image, fmt, quality, True, OPTIONS))
                    distorted.pngsave(str(dist_png))
                    run = subprocess.run([str(cpp), str(ref_png), str(dist_png)], capture_output=True, text=True)
                    truth = float(run.stdout.split()[0])
                    ours_off.append((abs(prepared.score(distorted) - truth), f"{name} q{quality}"))
                    port_off.append(abs(port_score(ppm, distorted) - truth))
            worst = max(ours_off)
            rows.append(
                f"| {fmt} | {', '.join(map(str, qualities))} | {len(port_off)} "
                f"| {statistics.median(d for d, _ in ours_off):.3f} | {worst[0]:.3f} ({worst[1]}) "
                f"| {statistics.median(port_off):.3f} | {max(port_off):.3f} |"
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = report.parser("bench.ssimulacra2", __doc__, corpus=True)
    parser.add_argument("--photos", type=int, default=4, help="corpus photos to time (default 4)")
    parser.add_argument("--repeat", type=int, default=10, help="runs of ours per measure (default 10)")
    parser.add_argument("--port-repeat", type=int, default=3, help="runs of the port (default 3)")
    parser.add_argument("--cpp", type=Path, help="the C++ reference's ssimulacra2 binary: also report agreement")
    args = parser.parse_args(argv)
    if os.environ.get("OPENBLAS_NUM_THREADS") != "1":  # read when numpy loads: start again with it set
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        os.execv(sys.executable, [sys.executable, "-m", "bench.ssimulacra2", *(sys.argv[1:] if argv is None else argv)])
    if not (args.corpus / "MANIFEST.json").is_file():
        parser.error(f"no corpus at {args.corpus} (MANIFEST.json; set EDGEPROXY_CORPUS or --corpus)")
    vips.configure(1)
    images = {name: reference(args.corpus / name, WIDTH) for name in photos(args.corpus, args.photos)}
    rows, ratios = [], []
    for name, image in images.items():
        row, ratio = speed_row(name, image, args.repeat, args.port_repeat)
        rows.append(row)
        ratios.append(ratio)
    lines = [
        HEADING,
        "",
        f"{report.run_line(report.command('bench.ssimulacra2', argv))}; one core (libvips concurrency 1, "
        f"OPENBLAS_NUM_THREADS=1). Milliseconds, best of {args.repeat} after "
        f"a warm-up (the port: of {args.port_repeat}); the distorted image is the JPEG at q{QUALITY}. "
        "`Reference.score` is what each candidate of a quality search costs; `score` also prepares the reference.",
        "",
        "| photo | size | Reference() ms | Reference.score ms | score ms | port ms | port ÷ Reference.score |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Median ratio: the port takes {statistics.median(ratios):.0f}× the time of `Reference.score`.",
        "",
    ]
    if args.cpp:
        lines += [
            "Agreement with the C++ reference (`ssimulacra2` of github.com/cloudinary/ssimulacra2), |difference|:",
            "",
            "| format | qualities | pairs | ours median | ours max | PyPI port median | PyPI port max |",
            "|---|---|---|---|---|---|---|",
            *agreement(images, args.cpp),
            "",
        ]
    report.publish("\n".join(lines), args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
