"""``python -m bench.formats``: JPEG XL vs AVIF vs WebP (and JPEG) bytes at equal perceived quality.

How it works. Each corpus photo (MANIFEST.json: tag ``photo``, ``decode_ok``, JPEG or PNG, at least
``MIN_WIDTH`` px wide so that none is upscaled, but for ``NOT_PHOTOS``; the first ``MAX_PHOTOS``
by file name) is decoded by libvips' ``thumbnail``
(shrink-on-load, EXIF autorotation, an embedded ICC profile or CMYK transformed to sRGB) to a
``WIDTH``-px-wide 8-bit sRGB derivative, the thing a proxy serves: that is the reference. For each
encoder (``CODECS``: edgeproxy's encoders at its default settings, plus a slower effort of AVIF and
JPEG XL) and each SSIMULACRA2 target (``TARGETS``), a bisection over the encoder's quality 1..100
finds the smallest quality whose output, decoded again (libvips; Pillow + pillow-jxl-plugin for
JPEG XL), scores at least the target against the reference. Scores are cached per quality, so the
targets share their evaluations; the bisection assumes the score rises with the quality (it
returns a quality that meets the target while the one below it does not). The searches run in
one process per core; then, alone on the machine, each chosen quality is encoded ``REPEATS``
times and its size and median encode time (wall and process CPU) are recorded. Every encoder runs
with ``THREADS`` thread(s), as edgeproxy runs them by default (``vips_concurrency`` = 1).
Prints Markdown tables; ``--write`` also puts them into ``bench/results.md`` as its section
(``--quick``: 2 photos, target 70).

Sources. SSIMULACRA2: Jon Sneyers, Cloudinary, 2022, https://github.com/cloudinary/ssimulacra2
(also libjxl's ``tools/ssimulacra2``); score scale: 90 = visually lossless at 1:1 viewing, 70 = high
quality, 50 = medium quality, 30 = low. Scores here come from ``ssimulacra2`` on PyPI
(py-ssimulacra2, a NumPy/SciPy port of the C++ reference, github.com/Pacidus/py-ssimulacra2),
whose ``compute_ssimulacra2(orig, dist)`` opens both images with ``PIL.Image.open`` (a path or a
file object): the images go to it as in-memory PPM files. JPEG XL: libjxl through
pillow-jxl-plugin (``quality`` is mapped to a Butteraugli distance by libjxl's
``JxlEncoderDistanceFromQuality``; libjxl's default effort is 7).
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import math
import multiprocessing
import os
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path

import pyvips
from PIL import Image

from bench import report as reporting
from edgeproxy.compose import encoder_options
from edgeproxy.render import encoding, vips
from edgeproxy.settings import load_settings

HEADING = "## Formats: bytes at equal quality (python -m bench.formats)"
WIDTH = 1024  # px: the derivative's width
#: Only photos at least this wide: smaller ones would be upscaled to WIDTH (smooth, interpolated
#: pixels, kind to every encoder). The corpus's 800-px photos are also one portrait three times.
MIN_WIDTH = 1024
MAX_PHOTOS = 6
#: Corpus entries tagged ``photo`` that are not photographs, with the reason they are left out.
NOT_PHOTOS = {"c2pa-signed.jpg": "a smooth synthetic colour gradient, tagged photo for its C2PA manifest"}
TARGETS = (50, 70, 85)  # SSIMULACRA2 scores
QUICK_TARGETS = (70,)
REPEATS = 3  # encodes per chosen quality for its timing (median)
#: edgeproxy's encoder settings at their defaults (and EDGEPROXY_* from the environment): the
#: benchmark encodes through ``encoding.encode`` with them, so it measures what the proxy serves.
SETTINGS = load_settings(allow_unsigned=True)
OPTIONS = encoder_options(SETTINGS)
JXL_EFFORT = OPTIONS.jxl_effort  # libjxl: 1 fastest .. 9 slowest
LIBJXL_DEFAULT_EFFORT = 7
AVIF_EFFORT = OPTIONS.avif_effort
AVIF_SLOW_EFFORT = 4
WEBP_EFFORT = OPTIONS.webp_effort
#: Threads per encode, libvips' and libjxl's: edgeproxy's ``vips_concurrency`` (it renders many
#: images side by side, one thread each by default). The thread count changes AVIF's output a little.
THREADS = OPTIONS.threads
_THREADS = f"{THREADS} thread" + ("s" if THREADS != 1 else "")


@dataclass(frozen=True)
class Codec:
    """An encoder as the benchmark runs it: its column label, format and edgeproxy encoder options."""

    label: str
    fmt: str
    options: encoding.EncodeOptions = OPTIONS


CODECS = (
    Codec("JPEG", "jpeg"),
    Codec("WebP", "webp"),
    Codec(f"AVIF e{AVIF_EFFORT}", "avif"),
    Codec(f"AVIF e{AVIF_SLOW_EFFORT}", "avif", replace(OPTIONS, avif_effort=AVIF_SLOW_EFFORT)),
    Codec(f"JXL e{JXL_EFFORT}", "jxl"),
    Codec(f"JXL e{LIBJXL_DEFAULT_EFFORT}", "jxl", replace(OPTIONS, jxl_effort=LIBJXL_DEFAULT_EFFORT)),
)
#: Ratio columns: (numerator, denominator) labels.
RATIOS = ((CODECS[4].label, CODECS[2].label), (CODECS[4].label, CODECS[1].label), (CODECS[5].label, CODECS[3].label))


def configure() -> None:
    """edgeproxy's own decoder and encoder set-up, ``THREADS`` threads per operation."""
    vips.configure(THREADS)


# --- the photos and the reference ----------------------------------------------------------------


def select_photos(corpus: Path, limit: int = MAX_PHOTOS, min_width: int = MIN_WIDTH) -> list[str]:
    """The first ``limit`` file names, by name, of the corpus's decodable JPEG/PNG photos at least
    ``min_width`` px wide (as stored, before EXIF orientation), but for ``NOT_PHOTOS``."""
    manifest = json.loads((corpus / "MANIFEST.json").read_text())
    names = sorted(
        e["file"]
        for e in manifest
        if "photo" in e["tags"]
        and e.get("decode_ok")
        and e.get("format") in ("jpeg", "png")
        and e.get("width", 0) >= min_width
        and e["file"] not in NOT_PHOTOS
        and (corpus / e["file"]).exists()
    )
    return names[:limit]


def reference(path: Path | str, width: int = WIDTH, height: int | None = None) -> pyvips.Image:
    """``path`` decoded to fit ``width`` × ``height`` px (default ``width`` × ``width``: ``width`` px on
    its longer side; never upscaled), upright, 3-band 8-bit sRGB, in memory (libvips ``thumbnail``:
    shrink-on-load, then Lanczos 3; an embedded ICC profile or CMYK to sRGB)."""
    header = pyvips.Image.new_from_file(str(path))
    managed = header.get_typeof("icc-profile-data") != 0 or header.interpretation == "cmyk"
    profile = {"output_profile": "srgb"} if managed else {}
    image = pyvips.Image.thumbnail(str(path), width, height=height or width, size="down", **profile)
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    if image.interpretation not in ("srgb", "rgb"):
        image = image.colourspace("srgb")
    return image.cast("uchar").copy_memory()


# --- encoders, decoders, the score -----------------------------------------------------------------


def encode(image: pyvips.Image, codec: Codec, quality: int) -> bytes:
    """``image`` encoded by ``codec`` at ``quality`` (1..100), metadata stripped: edgeproxy's own
    ``encoding.encode`` (JPEG XL through ``edgeproxy.render.pillow.encode_jxl``)."""
    return encoding.encode(image, codec.fmt, quality, True, codec.options)


def to_ppm(image: pyvips.Image | Image.Image) -> bytes:
    """An 8-bit RGB image as a PPM file in memory (what ``compute_ssimulacra2`` opens)."""
    if isinstance(image, pyvips.Image):
        image = Image.frombuffer("RGB", (image.width, image.height), image.write_to_memory())
    out = io.BytesIO()
    image.convert("RGB").save(out, "PPM")
    return out.getvalue()


def decode(codec: Codec, data: bytes) -> bytes:
    """``data`` decoded (libvips; Pillow + pillow-jxl-plugin for JPEG XL) to a PPM file."""
    if codec.fmt == "jxl":
        import pillow_jxl  # noqa: F401

        with Image.open(io.BytesIO(data)) as picture:
            return to_ppm(picture)
    image = pyvips.Image.new_from_buffer(data, "")
    if image.bands == 4:
        image = image.flatten(background=[255, 255, 255])
    return to_ppm(image.colourspace("srgb").cast("uchar"))


def ssimulacra2(reference_ppm: bytes, distorted_ppm: bytes) -> float:
    """SSIMULACRA2 score of ``distorted_ppm`` against ``reference_ppm`` (100: identical)."""
    from ssimulacra2 import compute_ssimulacra2

    return float(compute_ssimulacra2(io.BytesIO(reference_ppm), io.BytesIO(distorted_ppm)))


# --- the search --------------------------------------------------------------------------------------


def smallest_qualities(
    score_at: Callable[[int], float], targets: Iterable[float], lo: int = 1, hi: int = 100
) -> tuple[dict[float, int | None], dict[int, float]]:
    """For each target, the smallest quality in ``lo``..``hi`` whose ``score_at`` is at least the target
    (None: not even ``hi``), by bisection, assuming the score rises with the quality.

    Every score is computed once and shared by the targets. Whatever the curve, a quality
    returned meets its target and is ``lo`` or has a quality one below it that was scored and fails.
    Returns the qualities by target and every score computed, by quality.
    """
    scores: dict[int, float] = {}

    def at(q: int) -> float:
        if q not in scores:
            scores[q] = score_at(q)
        return scores[q]

    found: dict[float, int | None] = {}
    for target in targets:
        # Start from the tightest bracket the scores so far give.
        high = min((q for q, s in scores.items() if s >= target), default=hi)
        low = max((q + 1 for q, s in scores.items() if s < target and q < high), default=lo)
        while low < high:
            mid = (low + high) // 2
            if at(mid) >= target:
                high = mid
            else:
                low = mid + 1
        found[target] = low if at(low) >= target else None
    return found, scores


def search(path: str, codec_index: int, targets: Sequence[float]) -> dict:
    """One photo and one codec: the smallest quality per target, its bytes and score (a pool job)."""
    configure()
    codec = CODECS[codec_index]
    image = reference(path)
    ref = to_ppm(image)
    sizes: dict[int, int] = {}

    def score_at(q: int) -> float:
        data = encode(image, codec, q)
        sizes[q] = len(data)
        return ssimulacra2(ref, decode(codec, data))

    started = time.monotonic()
    found, scores = smallest_qualities(score_at, targets)
    return {
        "photo": Path(path).name,
        "codec": codec.label,
        "seconds": time.monotonic() - started,
        "evaluations": len(scores),
        "targets": {
            t: None if q is None else {"quality": q, "bytes": sizes[q], "score": scores[q]} for t, q in found.items()
        },
    }


def time_encode(image: pyvips.Image, codec: Codec, quality: int, repeats: int = REPEATS) -> dict:
    """Bytes and median encode wall/CPU milliseconds of ``repeats`` encodes at ``quality``."""
    walls, cpus, sizes = [], [], set()
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        data = encode(image, codec, quality)
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
        sizes.add(len(data))
    return {"bytes": len(data), "sizes": sizes, "wall_ms": statistics.median(walls), "cpu_ms": statistics.median(cpus)}


# --- the report --------------------------------------------------------------------------------------


def geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _cell(entry: dict | None) -> str:
    return f"{entry['bytes']:,} (q{entry['quality']})" if entry else "not reached"


def _bytes(results: dict, photo: str, target: float, label: str) -> int | None:
    entry = results.get((photo, label, target))
    return entry["bytes"] if entry else None


def size_table(results: dict, photos: Sequence[str], sizes: dict[str, str], target: float) -> str:
    """Bytes (and quality) per photo and codec at ``target``, JPEG XL ratios, total and geometric-mean rows."""
    labels = [c.label for c in CODECS]
    lines = [
        "| photo | " + " | ".join(labels) + " | " + " | ".join(f"{a} / {b}" for a, b in RATIOS) + " |",
        "|---" * (1 + len(labels) + len(RATIOS)) + "|",
    ]
    for photo in photos:
        cells = [_cell(results.get((photo, label, target))) for label in labels]
        ratios = []
        for a, b in RATIOS:
            na, nb = _bytes(results, photo, target, a), _bytes(results, photo, target, b)
            ratios.append(f"{na / nb:.2f}" if na and nb else "n/a")
        lines.append(f"| {photo} ({sizes[photo]}) | " + " | ".join(cells + ratios) + " |")
    for name in ("total", "geomean"):
        cells = []
        for label in labels:
            values = [_bytes(results, p, target, label) for p in photos]
            if None in values:
                cells.append("n/a")
            else:
                cells.append(f"{sum(values):,}" if name == "total" else f"{geomean(values):,.0f}")
        ratios = []
        for a, b in RATIOS:
            pairs = [(_bytes(results, p, target, a), _bytes(results, p, target, b)) for p in photos]
            if any(x is None or y is None for x, y in pairs):
                ratios.append("n/a")
            elif name == "total":
                ratios.append(f"{sum(x for x, _ in pairs) / sum(y for _, y in pairs):.2f}")
            else:
                ratios.append(f"{geomean([x / y for x, y in pairs]):.2f}")
        lines.append(f"| **{name}** | " + " | ".join(cells + ratios) + " |")
    return "\n".join(lines)


def time_table(results: dict, photos: Sequence[str], targets: Sequence[float]) -> str:
    """Encode milliseconds (wall / CPU; per photo the median of REPEATS, then the mean over photos)."""
    labels = [c.label for c in CODECS]
    lines = ["| target | " + " | ".join(labels) + " |", "|---" * (1 + len(labels)) + "|"]
    for target in targets:
        cells = []
        for label in labels:
            entries = [results.get((p, label, target)) for p in photos]
            entries = [e for e in entries if e]
            cells.append(
                f"{statistics.mean(e['wall_ms'] for e in entries):.0f} / "
                f"{statistics.mean(e['cpu_ms'] for e in entries):.0f}"
                if entries
                else "n/a"
            )
        lines.append(f"| {target:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _compared(ratio: float, other: str) -> str:
    """``ratio`` (bytes over ``other``'s bytes) in words: "12% smaller than X", "within 0.5% of X"."""
    if abs(1 - ratio) < 0.005:
        return f"within 0.5% of {other}"
    return f"{abs(1 - ratio):.0%} {'smaller' if ratio < 1 else 'larger'} than {other}"


def reading(results: dict, photos: Sequence[str], targets: Sequence[float]) -> str:
    """A plain-words paragraph from the measured bytes and encode times: per target, geometric means
    of the per-photo byte ratios (with their range over the photos) and mean encode CPU times."""
    sentences = []

    def ratios(a: str, b: str, target: float) -> list[float] | None:
        pairs = [(_bytes(results, p, target, a), _bytes(results, p, target, b)) for p in photos]
        if not pairs or any(x is None or y is None for x, y in pairs):
            return None
        return [x / y for x, y in pairs]

    def cpu(label: str, target: float) -> float | None:
        entries = [results[(p, label, target)] for p in photos if results.get((p, label, target))]
        return statistics.mean(e["cpu_ms"] for e in entries) if entries else None

    def ms(label: str, target: float, extra: str = "") -> str:
        value = cpu(label, target)
        return f" ({value:.0f} ms{extra})" if value is not None else ""

    jpeg, webp, avif, avif_slow, jxl, jxl_slow = (c.label for c in CODECS)
    for target in targets:
        clauses, against = [], []
        for other, name in ((avif, f"AVIF effort {AVIF_EFFORT}"), (webp, "WebP"), (jpeg, "JPEG")):
            r = ratios(jxl, other, target)
            if r:
                spread = f"; ratio per photo {min(r):.2f} to {max(r):.2f}" if other == avif and len(r) > 1 else ""
                against.append(_compared(geomean(r), name + ms(other, target, spread)))
        if against:
            listed = ", ".join(against[:-1]) + " and " + against[-1] if len(against) > 1 else against[0]
            clauses.append(f"At SSIMULACRA2 {target:g}, JPEG XL effort {JXL_EFFORT}{ms(jxl, target)} is {listed}")
        for slow_label, fast_label, slow_effort, fast_effort in (
            (jxl_slow, jxl, LIBJXL_DEFAULT_EFFORT, JXL_EFFORT),
            (avif_slow, avif, AVIF_SLOW_EFFORT, AVIF_EFFORT),
        ):
            r, fast_cpu, slow_cpu = (
                ratios(slow_label, fast_label, target),
                cpu(fast_label, target),
                cpu(slow_label, target),
            )
            if r and fast_cpu and slow_cpu:
                kind = slow_label.split()[0].replace("JXL", "JPEG XL")
                clauses.append(
                    f"{kind} effort {slow_effort} is {_compared(geomean(r), f'effort {fast_effort}')} "
                    f"for {slow_cpu / fast_cpu:.1f}x the encode CPU time ({slow_cpu:.0f} ms)"
                )
        if clauses:
            sentences.append("; ".join(clauses) + ".")
    if not sentences:
        return "No complete comparison was measured."
    return " ".join(sentences) + (
        " Byte figures are geometric means over the photos; times are mean encode CPU "
        "milliseconds at the quality found, one thread."
    )


def libraries() -> str:
    """The encoders' and the metric's library versions that can be read (``report.machine`` has libvips)."""

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "?"

    libjxl = "?"
    try:
        import pillow_jxl.pillow_jxl as native

        match = re.search(rb"libjxl-(\d+\.\d+\.\d+)", Path(native.__file__).read_bytes())
        libjxl = match.group(1).decode() if match else "?"
    except (ImportError, OSError):
        pass
    return (
        f"pyvips-binary {version('pyvips-binary')} (libjpeg-turbo, libwebp, libheif + aom), "
        f"Pillow {version('pillow')}, pillow-jxl-plugin {version('pillow-jxl-plugin')} (libjxl {libjxl}), "
        f"ssimulacra2 {version('ssimulacra2')} (Python port)"
    )


def report(
    results: dict,
    photos: Sequence[str],
    sizes: dict[str, str],
    targets: Sequence[float],
    command: str,
    seconds: float,
    notes: Sequence[str] = (),
) -> str:
    """The section of bench/results.md: how it was run, the method, one table per target, times, a reading."""
    lines = [
        HEADING,
        "",
        f"{reporting.run_line(command)} in {seconds:.0f} s; {libraries()}.",
        "",
        f"Method (`bench/formats.py`): each photo is decoded by libvips `thumbnail` to a {WIDTH}-px-wide 8-bit sRGB "
        "derivative (autorotated, ICC/CMYK to sRGB), the reference. For each encoder and SSIMULACRA2 target, a "
        "bisection over quality 1..100 finds the smallest quality whose decoded output scores at least the target "
        "against the reference (SSIMULACRA2, Jon Sneyers, Cloudinary, 2022: 90 = visually lossless at 1:1, "
        "70 = high quality, 50 = medium). Encoders as edgeproxy calls them, metadata stripped: JPEG libvips "
        "`jpegsave(optimize_coding)` (baseline), WebP `webpsave(effort=2)`, AVIF `heifsave(compression=av1, "
        f"bitdepth=8, effort=E)` (edgeproxy's default E = {AVIF_EFFORT}), JPEG XL pillow-jxl-plugin "
        f"`quality=q, effort=E` (edgeproxy: E = {JXL_EFFORT}; libjxl's default is {LIBJXL_DEFAULT_EFFORT}), "
        f"{_THREADS} per encode as edgeproxy's default `vips_concurrency`. Cells: bytes (quality found); "
        "ratios: bytes over bytes per photo, "
        "total row: ratio of the totals, geomean row: geometric mean of the per-photo ratios. Qualities are "
        "integers, so a cell can overshoot its target by up to one quality step (a few % of bytes): differences "
        "of 1-3% are within that grain. Scores come from the Python port of SSIMULACRA2 (PyPI `ssimulacra2`), "
        "not cross-checked here against the C++ tool.",
        "",
        f"Photos ({len(photos)}: the corpus's decodable JPEG/PNG photos at least {MIN_WIDTH} px wide, so that none "
        f"is upscaled, at most {MAX_PHOTOS}, by name; original size in parentheses); left out: "
        + "; ".join(f"{name}, {why}" for name, why in NOT_PHOTOS.items())
        + ".",
        *(f"{note}" for note in notes),
        "",
    ]
    for target in targets:
        lines += [f"### SSIMULACRA2 ≥ {target:g}", "", size_table(results, photos, sizes, target), ""]
    lines += [
        f"### Encode time at {WIDTH} px (ms, wall / process CPU, {_THREADS}; per photo the median of "
        f"{REPEATS} encodes at the quality found, then the mean over photos; run alone, nothing else encoding)",
        "",
        time_table(results, photos, targets),
        "",
        "Reading: " + reading(results, photos, targets),
        "",
    ]
    return "\n".join(lines)


# --- main ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = reporting.parser("bench.formats", __doc__, corpus=True)
    parser.add_argument("--quick", action="store_true", help=f"2 photos, target {QUICK_TARGETS[0]}")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="search processes (default: cores)")
    args = parser.parse_args(argv)
    missing = []
    for module, dist in (("pillow_jxl", "pillow-jxl-plugin"), ("ssimulacra2", "ssimulacra2")):
        try:
            __import__(module)
        except ImportError:
            missing.append(dist)
    if missing:
        print(f"bench.formats: needs {' and '.join(missing)} (pip install -e '.[bench,jxl]')", file=sys.stderr)
        return 2
    if not (args.corpus / "MANIFEST.json").exists():
        print(
            f"bench.formats: no corpus at {args.corpus} (MANIFEST.json; set EDGEPROXY_CORPUS or --corpus)",
            file=sys.stderr,
        )
        return 2
    photos = select_photos(args.corpus, 2 if args.quick else MAX_PHOTOS)
    if not photos:
        print(
            f"bench.formats: no photo in {args.corpus} is a decodable JPEG/PNG at least {MIN_WIDTH} px wide",
            file=sys.stderr,
        )
        return 2
    targets = QUICK_TARGETS if args.quick else TARGETS
    configure()
    started = time.monotonic()

    # The searches, one process per core (spawned: libvips' threads do not survive fork). Slowest first.
    jobs = sorted(
        ((str(args.corpus / p), i) for p in photos for i in range(len(CODECS))),
        key=lambda job: CODECS[job[1]].label != CODECS[3].label,
    )
    found: dict[tuple[str, str, float], dict] = {}
    with ProcessPoolExecutor(max_workers=max(1, args.jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(search, path, i, targets) for path, i in jobs]
        for future in as_completed(futures):
            r = future.result()
            for target, entry in r["targets"].items():
                if entry:
                    found[(r["photo"], r["codec"], target)] = entry
            qualities = ", ".join(
                f"{t:g}: q{e['quality']}" if e else f"{t:g}: not reached" for t, e in r["targets"].items()
            )
            print(
                f"{time.monotonic() - started:6.0f} s  {r['photo']:26} {r['codec']:8} {r['evaluations']:2} scores "
                f"in {r['seconds']:5.1f} s  {qualities}",
                flush=True,
            )

    # The timings, one encode at a time.
    results: dict[tuple[str, str, float], dict] = {}
    sizes: dict[str, str] = {}
    notes = []
    for photo in photos:
        header = pyvips.Image.new_from_file(str(args.corpus / photo))
        image = reference(args.corpus / photo)
        sizes[photo] = f"{header.width}×{header.height}"
        for codec in CODECS:
            for target in targets:
                entry = found.get((photo, codec.label, target))
                if not entry:
                    continue
                timed = time_encode(image, codec, entry["quality"])
                if timed["sizes"] != {entry["bytes"]}:
                    notes.append(
                        f"Note: {codec.label} on {photo} at q{entry['quality']} gave {sorted(timed['sizes'])} "
                        f"bytes when timed, {entry['bytes']} in the search."
                    )
                results[(photo, codec.label, target)] = {
                    **entry,
                    "wall_ms": timed["wall_ms"],
                    "cpu_ms": timed["cpu_ms"],
                }
        print(f"{time.monotonic() - started:6.0f} s  timed {photo}", flush=True)

    command = reporting.command("bench.formats", argv)
    section = report(results, photos, sizes, targets, command, time.monotonic() - started, notes)
    reporting.publish(section, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
