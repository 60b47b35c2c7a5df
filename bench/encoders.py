"""``python -m bench.encoders``: encoder settings swept for the optimised tier's bytes at equal SSIMULACRA2.

Photos: those of ``bench.quality`` (``bench.formats.select_photos``, 800 px wide and up; ``--photos``,
``--avif-photos`` for AVIF, whose slow efforts would dominate), each rendered by edgeproxy's pipeline
``WIDTH`` px wide as lossless PNG (``bench.quality.render``: the image the optimised tier encodes and
its search scores against) and decoded once.

Per format, each candidate of ``CANDIDATES`` (libvips 8.18 ``jpegsave``/``webpsave``/``heifsave``
options over the format's first candidate, today's optimised configuration) and each floor of
``FLOORS``: per photo the lowest quality in ``SPAN`` whose output, decoded (libvips) and scored by
edgeproxy's SSIMULACRA2 against the PNG (``quality.search``'s judge), reaches the floor: a bisection
per floor (the score rises with the quality but for a few small steps: where it dips, the bisection
may land a step above the lowest; every candidate is searched alike). Every encode at a quality is
made once per photo and candidate and shared between floors. A floor no quality reaches takes
``SPAN``'s top (counted as missed).

Reported per candidate and floor: the geometric mean over photos of its bytes ÷ today's bytes (below 1:
smaller), the qualities chosen (median), and per candidate the process CPU seconds of one encode (the
mean over every encode made) ÷ today's. Prints Markdown; ``--write`` puts it into ``bench/results.md``.

WebP's ``libwebp:`` candidates encode through libwebp directly (``libwebp_save``, the ``webp`` package,
in the ``bench`` extra), to measure the options libvips' ``webpsave`` does not pass (autofilter, SNS
and filter strengths, segments, passes); the first of them (method 6, nothing else) is the baseline
those rows should be read against. Without the package they are left out.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyvips

from bench import formats
from bench import quality as bq
from bench import report as reporting
from edgeproxy.compose import encoder_options
from edgeproxy.quality.search import _Judge

HEADING = "## Encoder settings for the optimised tier: bytes at equal SSIMULACRA2 (python -m bench.encoders)"
FLOORS = (60.0, 70.0, 80.0, 85.0)
SPAN = (20, 100)  # encoder qualities searched
_JPEG = {"optimize_coding": True, "interlace": True, "trellis_quant": True, "overshoot_deringing": True}
_JPEG_TODAY = {**_JPEG, "optimize_scans": True}
_WEBP = {"effort": 6, "smart_subsample": True}
_AVIF = {"compression": "av1", "bitdepth": 8, "effort": 4}
#: A candidate whose options hold this key is encoded by libwebp directly (``libwebp_save``), its value
#: the ``WebPConfig`` fields set over ``method`` 6 and the quality.
LIBWEBP = "libwebp"
#: Per format, (name, libvips saver options but ``Q``); the first is today's optimised configuration.
CANDIDATES: Mapping[str, Sequence[tuple[str, Mapping[str, Any]]]] = {
    "jpeg": [
        ("today: trellis, auto subsampling, table 0", _JPEG_TODAY),
        ("subsample on (4:2:0)", {**_JPEG_TODAY, "subsample_mode": "on"}),
        ("subsample off (4:4:4)", {**_JPEG_TODAY, "subsample_mode": "off"}),
        *[(f"quant_table {t}", {**_JPEG_TODAY, "quant_table": t}) for t in (2, 3, 5, 7, 8)],
        ("quant_table 3, subsample on", {**_JPEG_TODAY, "quant_table": 3, "subsample_mode": "on"}),
        ("quant_table 5, subsample on", {**_JPEG_TODAY, "quant_table": 5, "subsample_mode": "on"}),
        ("quant_table 5, subsample off", {**_JPEG_TODAY, "quant_table": 5, "subsample_mode": "off"}),
        ("quant_table 7, subsample off", {**_JPEG_TODAY, "quant_table": 7, "subsample_mode": "off"}),
    ],
    "webp": [
        ("today: effort 6, smart_subsample", _WEBP),
        ("smart_subsample off", {**_WEBP, "smart_subsample": False}),
        ("effort 4", {**_WEBP, "effort": 4}),
        ("preset photo", {**_WEBP, "preset": "photo"}),
        ("preset picture", {**_WEBP, "preset": "picture"}),
        ("preset drawing", {**_WEBP, "preset": "drawing"}),
        ("smart_deblock", {**_WEBP, "smart_deblock": True}),
        # libwebp's own options that libvips' webpsave does not pass, through libwebp directly (the
        # ``webp`` package, pywebp: method 6, no sharp YUV; ``LIBWEBP``): what is left for WebP.
        ("libwebp: method 6", {LIBWEBP: {}}),
        ("libwebp: autofilter", {LIBWEBP: {"autofilter": 1}}),
        ("libwebp: sns_strength 25", {LIBWEBP: {"sns_strength": 25}}),
        ("libwebp: sns_strength 80", {LIBWEBP: {"sns_strength": 80}}),
        ("libwebp: filter_strength 20, sharpness 0", {LIBWEBP: {"filter_strength": 20, "filter_sharpness": 0}}),
        ("libwebp: filter_strength 60, sharpness 3", {LIBWEBP: {"filter_strength": 60, "filter_sharpness": 3}}),
        ("libwebp: segments 2", {LIBWEBP: {"segments": 2}}),
        ("libwebp: pass 6", {LIBWEBP: {"pass": 6}}),
    ],
    "avif": [
        ("today: effort 4, tune iq (libvips' default)", _AVIF),
        ("tune ssim", {**_AVIF, "tune": "ssim"}),
        ("tune psnr", {**_AVIF, "tune": "psnr"}),
        ("subsample off (4:4:4)", {**_AVIF, "subsample_mode": "off"}),
        ("effort 6", {**_AVIF, "effort": 6}),
        ("effort 7", {**_AVIF, "effort": 7}),
        ("bitdepth 10", {**_AVIF, "bitdepth": 10}),
        ("bitdepth 10, subsample off (4:4:4)", {**_AVIF, "bitdepth": 10, "subsample_mode": "off"}),
    ],
}
SAVERS = {"jpeg": "jpegsave_buffer", "webp": "webpsave_buffer", "avif": "heifsave_buffer"}


def libwebp_save(image: pyvips.Image, quality: int, fields: Mapping[str, int]) -> bytes:
    """``image`` (3-band 8-bit) encoded by libwebp through the ``webp`` package (pywebp's ``WebPConfig``:
    ``method`` 6, ``quality``, then ``fields``, e.g. ``autofilter``, ``sns_strength``,
    ``filter_strength``, ``filter_sharpness``, ``segments``, ``pass``: libwebp's ``encode.h``).

    Raises:
        ImportError: the ``webp`` package is not installed (``pip install webp``).
    """
    import numpy as np
    import webp

    config = webp.WebPConfig.new(quality=quality)
    config.ptr.method = 6
    for field, value in fields.items():
        setattr(config.ptr, field, value)
    pixels = np.ndarray(buffer=image.write_to_memory(), dtype=np.uint8, shape=(image.height, image.width, image.bands))
    return bytes(webp.WebPPicture.from_numpy(np.ascontiguousarray(pixels)).encode(config).buffer())


def available(fmt: str, candidate: int) -> bool:
    """Whether candidate ``candidate`` of ``fmt`` can run here (a libwebp one needs the ``webp`` package)."""
    if LIBWEBP not in CANDIDATES[fmt][candidate][1]:
        return True
    try:
        import webp  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Swept:
    """One photo and candidate: per floor, the ``chosen`` (quality, bytes, reached), and the CPU
    seconds of its ``encodes`` encodes."""

    fmt: str
    candidate: int
    photo: str
    chosen: dict[float, tuple[int, int, bool]]
    cpu: float
    encodes: int


def sweep_photo(path: str, fmt: str, floors: Sequence[float], candidates: Sequence[int]) -> list[Swept]:
    """A pool job: ``path``'s lowest quality per floor for the ``candidates`` of ``fmt`` (indices)."""
    bq.configure()
    config = bq.settings()
    png = bq.render(Path(path).read_bytes(), "png", config, encoder_options(config), None, False).body
    image = pyvips.Image.new_from_buffer(png, "").copy_memory()
    judge = _Judge(image)
    return [sweep_one(image, judge, Path(path).name, fmt, c, floors) for c in candidates if available(fmt, c)]


def sweep_one(
    image: pyvips.Image, judge: _Judge, photo: str, fmt: str, candidate: int, floors: Sequence[float]
) -> Swept:
    """``image``'s lowest quality per floor for candidate ``candidate`` of ``fmt`` (a bisection per floor)."""
    options = CANDIDATES[fmt][candidate][1]
    if LIBWEBP in options:
        fields = options[LIBWEBP]
        rgb = image.flatten() if image.hasalpha() else image

        def saver(Q: int, **_: object) -> bytes:  # noqa: N803 - libvips' name
            return libwebp_save(rgb, Q, fields)

        options = {}
    else:
        saver = getattr(image, SAVERS[fmt])
    curve: dict[int, tuple[float, int]] = {}
    cpu = 0.0

    def at(q: int) -> tuple[float, int]:
        nonlocal cpu
        if q not in curve:
            started = time.process_time()
            body = saver(Q=q, keep=pyvips.enums.ForeignKeep.NONE, **options)
            cpu += time.process_time() - started
            curve[q] = (judge.score(body), len(body))
        return curve[q]

    chosen = {}
    for floor in floors:
        low, high = SPAN
        if at(high)[0] < floor:
            chosen[floor] = (high, at(high)[1], False)
            continue
        while low < high:  # the lowest q in [low, high] reaching the floor (high reaches it)
            mid = (low + high) // 2
            low, high = (low, mid) if at(mid)[0] >= floor else (mid + 1, high)
        chosen[floor] = (high, at(high)[1], True)
    return Swept(fmt, candidate, photo, chosen, cpu, len(curve))


def table(fmt: str, swept: Sequence[Swept], floors: Sequence[float]) -> list[str]:
    """Markdown rows: per candidate, bytes ÷ today's per floor (geomean; median q), CPU ÷ today's."""
    by = {(s.candidate, s.photo): s for s in swept if s.fmt == fmt}
    photos = sorted({s.photo for s in by.values()})
    base = min(c for c, _ in by)  # today's (0) unless --candidates left it out
    rows = [
        f"| {fmt} candidate | "
        + " | ".join(f"floor {f:g}: bytes ÷ today (q median, range)" for f in floors)
        + " | CPU per encode ÷ today | missed |",
        "|---" * (len(floors) + 3) + "|",
    ]

    def per_encode(candidate: int) -> float:
        runs = [by[(candidate, p)] for p in photos]
        return sum(r.cpu for r in runs) / max(1, sum(r.encodes for r in runs))

    for index, (name, _) in enumerate(CANDIDATES[fmt]):
        if any((index, p) not in by for p in photos):
            continue
        cells = []
        for floor in floors:
            ratios = [by[(index, p)].chosen[floor][1] / by[(base, p)].chosen[floor][1] for p in photos]
            qs = [by[(index, p)].chosen[floor][0] for p in photos]
            median = statistics.median(qs)
            cells.append(f"{math.exp(statistics.fmean(map(math.log, ratios))):.3f} (q{median:g}, {min(qs)}–{max(qs)})")
        missed = sum(not by[(index, p)].chosen[f][2] for p in photos for f in floors)
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {per_encode(index) / per_encode(base):.2f} | {missed} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = reporting.parser("bench.encoders", __doc__, corpus=True)
    parser.add_argument("--photos", type=int, default=bq.MAX_PHOTOS, help="photos for JPEG and WebP")
    parser.add_argument("--avif-photos", type=int, default=4, help="photos for AVIF (slow efforts)")
    parser.add_argument("--formats", default="jpeg,webp,avif", help="formats swept")
    parser.add_argument("--floors", default=",".join(f"{f:g}" for f in FLOORS), help="SSIMULACRA2 floors")
    parser.add_argument("--candidates", help="the candidates swept, by index in CANDIDATES (default: all)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes (default: cores)")
    args = parser.parse_args(argv)
    if os.environ.get("OPENBLAS_NUM_THREADS") != "1":  # read when numpy loads: start again with it set
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        os.execv(sys.executable, [sys.executable, "-m", "bench.encoders", *(sys.argv[1:] if argv is None else argv)])
    fmts = args.formats.split(",")
    floors = tuple(float(f) for f in args.floors.split(","))
    chosen = None if args.candidates is None else [int(c) for c in args.candidates.split(",")]
    photos = formats.select_photos(args.corpus, max(args.photos, args.avif_photos), min_width=bq.WIDTH)
    jobs = [
        (str(args.corpus / p), fmt, floors, chosen or range(len(CANDIDATES[fmt])))
        for fmt in fmts
        for p in photos[: args.avif_photos if fmt == "avif" else args.photos]
    ]
    jobs.sort(key=lambda job: job[1] != "avif")  # the slow ones first
    started = time.monotonic()
    swept: list[Swept] = []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
        for done in pool.map(sweep_photo, *zip(*jobs, strict=True)):
            swept += done
            print(f"{time.monotonic() - started:6.0f} s  {done[0].fmt} {done[0].photo}", file=sys.stderr, flush=True)
    lines = [
        HEADING,
        "",
        f"Command: `{reporting.command('bench.encoders', argv)}` ({time.monotonic() - started:.0f} s, "
        f"{args.jobs} processes). Method: `bench/encoders.py`'s docstring. Photos: "
        + ", ".join(photos[: args.photos])
        + f"; AVIF on the first {args.avif_photos}.",
        "",
    ]
    for fmt in fmts:
        lines += [*table(fmt, swept, floors), ""]
    reporting.publish("\n".join(lines), args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
