"""``python -m bench.quality``: edgeproxy's optimised tier against thumbor in bytes at an equal SSIMULACRA2 floor.

Also the first answer's latency against today's fixed qualities, and the background's CPU per variant
(issue 26, deliver 5). Everything is measured side by side in one run.

Photos: the corpus's decodable JPEG/PNG photos at least ``WIDTH`` px wide (``bench.formats.select_photos``:
by name, the first ``--photos``; the synthetic gradient left out), each served ``WIDTH`` px wide
(edgeproxy ``w:800/f:FMT``, thumbor ``/unsafe/800x0/filters:format(FMT):quality(Q)/FILE``).

Scores. The common reference is the original, upright, colour managed to sRGB and resized to ``WIDTH``
px wide by libvips' ``thumbnail`` (shrink-on-load, then Lanczos 3: ``bench.formats.reference``), one
resizer for both servers. Every output is decoded as a browser shows it (libvips; an embedded ICC
profile applied: thumbor keeps the original's) and scored with edgeproxy's SSIMULACRA2
(``edgeproxy.quality.ssimulacra2``, within 0.3 of the C++ reference on photos) against it. The
servers resize differently (thumbor: Pillow's LANCZOS; edgeproxy: a JPEG DCT scale, then libvips'
Lanczos 3), so even a lossless output of either scores below 100 against the common reference (the
"resize" table), which lowers all of that server's scores. Each output is therefore also scored
against its own server's lossless resize (edgeproxy: the pipeline's image before the encode, which
its quality search scores against; thumbor: its PNG at the same size): the encoders alone. Both
comparisons are reported.

1. Bytes at a floor. edgeproxy: the optimised tier's render, the code the background tier runs
   (``pipeline.run`` with the floor as SSIMULACRA2 target and ``search``, with the default settings'
   ``EncodeOptions.optimised(optimise_avif_effort, optimise_webp_effort, optimise_max_pixels)``): per
   photo, format and floor, ``quality.search.find_quality`` picks the lowest quality reaching the
   floor against its own resize. Its process CPU time (one thread, as ``optimise_threads`` = 1 runs
   it) is the background's cost per variant. thumbor 7.8 (``bench.servers``, with thumbor's own
   defaults for the encoders: Pillow, AVIF at libavif's default speed through Pillow): each photo
   and format at every quality of ``THUMBOR_QUALITIES``; per floor, the lowest fixed quality at which
   every photo reaches the floor, and its bytes there. Ratios: edgeproxy ÷ thumbor bytes, the
   geometric mean of the per-photo ratios (the issue's goal: ≤ 0.75) and the ratio of the totals.
2. The first answer. Per photo and format, one render (the median of ``--repeats``, wall time, run
   alone) of the fast tier (the format's typical quality for target ``FAST_TARGET``, default
   efforts: what the first request gets) and of today's fixed default quality
   (``quality_jpeg``/``webp``/``avif``), alternating; the ratio of the sums.

``--quick`` (a CI smoke test): 2 photos, floor 70, one repeat, and thumbor only when it is already
installed under ``--workdir``. Prints Markdown; ``--write`` also puts it into ``bench/results.md``.
"""

from __future__ import annotations

import importlib.metadata
import math
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx
import pyvips

from bench import formats, servers
from bench import report as reporting
from edgeproxy.compose import encoder_options, source_limits
from edgeproxy.http.negotiate import Negotiated
from edgeproxy.quality.ssimulacra2 import Reference
from edgeproxy.render import pipeline, vips
from edgeproxy.render.encoding import EncodeOptions
from edgeproxy.settings import Settings, load_settings
from edgeproxy.url.grammar import parse_options

HEADING = "## Quality: bytes at an equal SSIMULACRA2 floor against thumbor (python -m bench.quality)"
WIDTH = 800  # px: every output's width
FORMATS = ("jpeg", "webp", "avif")
FLOORS = (60.0, 70.0, 80.0, 85.0)  # SSIMULACRA2
QUICK_FLOORS = (70.0,)
MAX_PHOTOS = 8
#: The fast tier's target: the default ``quality_target``.
FAST_TARGET = 70.0
#: thumbor's fixed qualities tried (Pillow's ``quality``; WebP 100 is lossless in thumbor, so it stops at 99).
THUMBOR_QUALITIES: Mapping[str, range] = {"jpeg": range(30, 101), "webp": range(30, 100), "avif": range(30, 101)}
QUICK_STEP = 5  # quality step of the thumbor grid with --quick (when thumbor is installed)
#: thumbor's own defaults for what decides its output bytes, over ``bench.servers.THUMBOR_CONF``
#: (which sets the fast AVIF speed 10 and lower default qualities for the throughput benchmark).
THUMBOR_DEFAULTS: Mapping[str, object] = {"QUALITY": 80, "WEBP_QUALITY": None, "AVIF_QUALITY": None, "AVIF_SPEED": None}
THUMBOR_DEFAULT_QUALITY = 80  # what thumbor uses for every format with THUMBOR_DEFAULTS
TIMEOUT = 120.0  # s per thumbor request
UNBOUNDED = 1_000_000  # px: the reference's height bound (none: it is WIDTH px wide)
Scoring = Literal["common", "own"]


def settings() -> Settings:
    """edgeproxy's default settings (and ``EDGEPROXY_*`` from the environment)."""
    return load_settings(allow_unsigned=True)


def configure() -> None:
    """One libvips thread per operation, as edgeproxy renders (``vips_concurrency`` = 1)."""
    vips.configure(settings().vips_concurrency)


# --- pixels: the reference, what a browser shows, a score ------------------------------------------------


def reference(path: Path) -> pyvips.Image:
    """The common reference: ``path`` upright, in sRGB, ``WIDTH`` px wide (libvips thumbnail)."""
    return formats.reference(path, WIDTH, height=UNBOUNDED)


def displayed(body: bytes, size: tuple[int, int]) -> tuple[pyvips.Image, bool]:
    """``body`` decoded as a browser shows it: an embedded ICC profile (or CMYK) to sRGB, alpha onto
    white, 3-band 8-bit, in memory; resized to ``size`` (width, height) when it differs (then True)."""
    image = pyvips.Image.new_from_buffer(body, "")
    if image.get_typeof("icc-profile-data") != 0 or image.interpretation == "cmyk":
        image = image.icc_transform("srgb", embedded=True)
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    if image.bands < 3 or image.interpretation not in ("srgb", "rgb"):
        image = image.colourspace("srgb")
    image = image.cast("uchar")
    resized = (image.width, image.height) != size
    if resized:
        image = image.resize(size[0] / image.width, vscale=size[1] / image.height, kernel="lanczos3")
    return image.copy_memory(), resized


# --- edgeproxy: the renders ---------------------------------------------------------------------------


def render(
    data: bytes, fmt: str, config: Settings, options: EncodeOptions, target: float | None, search: bool
) -> pipeline.Rendered:
    """``data`` rendered by edgeproxy's pipeline at ``w:WIDTH/f:fmt`` with ``options``; with a
    ``target``, at the format's typical quality for it, or searched (``search``) as the optimised tier does."""
    negotiated = Negotiated(parse_options([f"w:{WIDTH}", f"f:{fmt}"]), frozenset(), ())
    ctx = pipeline.Context(
        data=data,
        negotiated=negotiated,
        limits=source_limits(config),
        encode_options=options,
        default_quality=config.default_quality,
        deadline=time.monotonic() + 600,
        target=target,
        search=search,
    )
    return pipeline.run(ctx)


def optimised_options(config: Settings) -> EncodeOptions:
    """The optimised tier's encoder options, as ``service.derive.Service`` builds them."""
    return encoder_options(config).optimised(
        config.optimise_avif_effort, config.optimise_webp_effort, config.optimise_max_pixels
    )


@dataclass(frozen=True, slots=True)
class Output:
    """One encoded output: ``size`` bytes at encoder ``quality``, scored against the common
    reference (``common``) and its server's own lossless resize (``own``); ``resized``: decoded at
    another size than the reference's and resized to it for the score."""

    size: int
    quality: int
    common: float
    own: float
    resized: bool = False


@dataclass(frozen=True, slots=True)
class Optimised:
    """The optimised tier's render of ``photo`` as ``fmt`` for ``floor``: its ``output``, and the
    process CPU and wall seconds it took (decode, resize, the search's encodes, decodes and scores)."""

    photo: str
    fmt: str
    floor: float
    output: Output
    cpu: float
    wall: float


def optimise(path: str, fmt: str, floor: float) -> Optimised:
    """A pool job: the optimised tier's render of ``path`` as ``fmt`` for ``floor``, timed and scored."""
    configure()
    config = settings()
    data = Path(path).read_bytes()
    cpu, wall = time.process_time(), time.perf_counter()
    rendered = render(data, fmt, config, optimised_options(config), floor, True)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert rendered.quality is not None and rendered.score is not None, "the quality was not searched"
    common = reference(Path(path))
    image, resized = displayed(rendered.body, (common.width, common.height))
    output = Output(len(rendered.body), rendered.quality, Reference(common).score(image), rendered.score, resized)
    return Optimised(Path(path).name, fmt, floor, output, cpu, wall)


@dataclass(frozen=True, slots=True)
class FirstAnswer:
    """One photo as ``fmt``: today's render (fixed default quality) and the fast tier's, each as an
    ``Output`` and its median wall and CPU seconds."""

    photo: str
    fmt: str
    today: Output
    fast: Output
    today_wall: float
    fast_wall: float
    today_cpu: float
    fast_cpu: float


def first_answers(path: Path, config: Settings, repeats: int) -> tuple[list[FirstAnswer], float]:
    """Per format, today's and the fast tier's render of ``path``, timed alternately ``repeats``
    times; and the common-reference score of edgeproxy's lossless (PNG) resize of it."""
    data = path.read_bytes()
    options = encoder_options(config)
    common = reference(path)
    judge = Reference(common)
    own_image, _ = displayed(render(data, "png", config, options, None, False).body, (common.width, common.height))
    own = Reference(own_image)
    answers = []
    for fmt in FORMATS:
        walls: dict[str, list[float]] = {"today": [], "fast": []}
        cpus: dict[str, list[float]] = {"today": [], "fast": []}
        rendered: dict[str, pipeline.Rendered] = {}
        render(data, fmt, config, options, None, False)  # a warm-up: the encoder's first use in this process
        for _ in range(repeats):
            for tier, target in (("today", None), ("fast", FAST_TARGET)):
                cpu, wall = time.process_time(), time.perf_counter()
                rendered[tier] = render(data, fmt, config, options, target, False)
                walls[tier].append(time.perf_counter() - wall)
                cpus[tier].append(time.process_time() - cpu)
        outputs = {}
        for tier, done in rendered.items():
            image, resized = displayed(done.body, (common.width, common.height))
            assert done.quality is not None
            outputs[tier] = Output(len(done.body), done.quality, judge.score(image), own.score(image), resized)
        answers.append(
            FirstAnswer(
                path.name,
                fmt,
                outputs["today"],
                outputs["fast"],
                statistics.median(walls["today"]),
                statistics.median(walls["fast"]),
                statistics.median(cpus["today"]),
                statistics.median(cpus["fast"]),
            )
        )
    return answers, judge.score(own_image)


# --- thumbor -----------------------------------------------------------------------------------------------


def thumbor_url(base: str, photo: str, fmt: str, quality: int | None) -> str:
    """thumbor's unsafe URL for ``photo`` ``WIDTH`` px wide as ``fmt`` (jpeg, webp, avif, png) at ``quality``."""
    filters = f"format({fmt})" + (f":quality({quality})" if quality is not None else "")
    return f"{base}/unsafe/{WIDTH}x0/filters:{filters}/{photo}"


def thumbor_get(client: httpx.Client, url: str) -> bytes:
    """The body of thumbor's 200 answer to ``url``.

    Raises:
        RuntimeError: any other status.
    """
    response = client.get(url)
    if response.status_code != 200:
        raise RuntimeError(f"thumbor answered {response.status_code} to {url}")
    return response.content


def thumbor_photo(
    client: httpx.Client, base: str, corpus: Path, photo: str, qualities: Mapping[str, Sequence[int]], jobs: int
) -> tuple[dict[tuple[str, int], Output], float]:
    """Every output of thumbor for ``photo``: {(format, quality): Output} for ``qualities`` and
    thumbor's default quality, and the common-reference score of its lossless (PNG) resize."""
    common = reference(corpus / photo)
    size = (common.width, common.height)
    lossless, _ = displayed(thumbor_get(client, thumbor_url(base, photo, "png", None)), size)
    judges = {"common": Reference(common), "own": Reference(lossless)}

    def one(fmt: str, quality: int) -> tuple[tuple[str, int], Output]:
        body = thumbor_get(client, thumbor_url(base, photo, fmt, quality))
        image, resized = displayed(body, size)
        return (fmt, quality), Output(
            len(body), quality, judges["common"].score(image), judges["own"].score(image), resized
        )

    wanted = [(fmt, q) for fmt in FORMATS for q in sorted({*qualities[fmt], THUMBOR_DEFAULT_QUALITY})]
    with ThreadPoolExecutor(max_workers=jobs) as threads:
        outputs = dict(threads.map(lambda job: one(*job), wanted))
    return outputs, judges["common"].score(lossless)


def thumbor_choice(
    grid: Mapping[tuple[str, str, int], Output], photos: Sequence[str], fmt: str, floor: float, scoring: Scoring
) -> int | None:
    """thumbor's lowest quality tried at which every photo's ``fmt`` output scores at least ``floor``
    (``scoring``: against the common reference or thumbor's own resize); None when none does."""
    qualities = sorted({q for (_, f, q) in grid if f == fmt})
    for quality in qualities:
        if all(_score(grid[(photo, fmt, quality)], scoring) >= floor for photo in photos):
            return quality
    return None


def _score(output: Output, scoring: Scoring) -> float:
    return output.common if scoring == "common" else output.own


# --- the report -----------------------------------------------------------------------------------------------


def geomean(values: Iterable[float]) -> float:
    listed = list(values)
    return math.exp(sum(math.log(v) for v in listed) / len(listed))


def bytes_table(
    optimised: Mapping[tuple[str, str, float], Optimised],
    grid: Mapping[tuple[str, str, int], Output] | None,
    photos: Sequence[str],
    floors: Sequence[float],
    scoring: Scoring,
) -> tuple[list[str], dict[tuple[str, float], tuple[float, float]]]:
    """The rows of one bytes table (``scoring`` chooses thumbor's quality and the minimum scores
    shown) and, per (format, floor) where thumbor reached the floor, the geomean ratio and
    edgeproxy's minimum score."""
    rows = [
        "| format | floor | thumbor q | thumbor bytes | edgeproxy bytes | ratio: geomean (per photo) | ratio of totals "
        "| min score thumbor | min score edgeproxy | edgeproxy q | edgeproxy CPU s per variant |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    ratios: dict[tuple[str, float], tuple[float, float]] = {}
    for fmt in FORMATS:
        for floor in floors:
            ours = [optimised[(photo, fmt, floor)] for photo in photos]
            ours_bytes = sum(o.output.size for o in ours)
            ours_min = min(_score(o.output, scoring) for o in ours)
            ours_q = f"{min(o.output.quality for o in ours)}–{max(o.output.quality for o in ours)}"
            cpu = statistics.mean(o.cpu for o in ours)
            choice = thumbor_choice(grid, photos, fmt, floor, scoring) if grid else None
            if choice is None:
                top = max(q for (_, f, q) in grid if f == fmt) if grid else None
                theirs = ["not reached" if grid else "n/a", f"(q ≤ {top})" if grid else "n/a", "n/a", "n/a", "n/a"]
            else:
                assert grid is not None
                at = [grid[(photo, fmt, choice)] for photo in photos]
                each = [o.output.size / t.size for o, t in zip(ours, at, strict=True)]
                ratio = geomean(each)
                ratios[(fmt, floor)] = (ratio, ours_min)
                theirs = [
                    str(choice),
                    f"{sum(t.size for t in at):,}",
                    f"**{ratio:.2f}** ({min(each):.2f}–{max(each):.2f})",
                    f"{ours_bytes / sum(t.size for t in at):.2f}",
                    f"{min(_score(t, scoring) for t in at):.1f}",
                ]
            rows.append(
                f"| {fmt} | {floor:g} | {theirs[0]} | {theirs[1]} | {ours_bytes:,} | {theirs[2]} | {theirs[3]} "
                f"| {theirs[4]} | {ours_min:.1f} | {ours_q} | {cpu:.2f} |"
            )
    return rows, ratios


def thumbor_default_rows(grid: Mapping[tuple[str, str, int], Output], photos: Sequence[str]) -> list[str]:
    """Rows: thumbor at its default quality per format, bytes and min/mean scores."""
    rows = [
        "| format | thumbor q | bytes | min score (common) | mean score (common) | min score (own) |",
        "|---|---|---|---|---|---|",
    ]
    for fmt in FORMATS:
        at = [grid[(photo, fmt, THUMBOR_DEFAULT_QUALITY)] for photo in photos]
        rows.append(
            f"| {fmt} | {THUMBOR_DEFAULT_QUALITY} | {sum(t.size for t in at):,} | {min(t.common for t in at):.1f} "
            f"| {statistics.mean(t.common for t in at):.1f} | {min(t.own for t in at):.1f} |"
        )
    return rows


def first_answer_rows(answers: Sequence[FirstAnswer], optimised: Sequence[Optimised]) -> list[str]:
    """Rows per format: today's and the fast tier's quality, milliseconds (sums of per-photo
    medians), their ratio, bytes and scores; the optimised tier's CPU against today's render."""
    rows = [
        "| format | today q | fast q | today ms | fast ms | fast ÷ today (latency) | today bytes | fast bytes "
        "| today score min / mean | fast score min / mean | optimised CPU ÷ today's CPU |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for fmt in FORMATS:
        mine = [a for a in answers if a.fmt == fmt]
        today_ms, fast_ms = sum(a.today_wall for a in mine) * 1000, sum(a.fast_wall for a in mine) * 1000
        today_cpu = statistics.mean(a.today_cpu for a in mine)
        background = [o.cpu for o in optimised if o.fmt == fmt]
        today_q = sorted({a.today.quality for a in mine})
        fast_q = sorted({a.fast.quality for a in mine})
        rows.append(
            f"| {fmt} | {'/'.join(map(str, today_q))} | {'/'.join(map(str, fast_q))} | {today_ms:.0f} | {fast_ms:.0f} "
            f"| {fast_ms / today_ms:.2f} | {sum(a.today.size for a in mine):,} | {sum(a.fast.size for a in mine):,} "
            f"| {min(a.today.own for a in mine):.1f} / {statistics.mean(a.today.own for a in mine):.1f} "
            f"| {min(a.fast.own for a in mine):.1f} / {statistics.mean(a.fast.own for a in mine):.1f} "
            f"| {statistics.mean(background) / today_cpu:.0f}× |"
        )
    return rows


def resize_rows(
    photos: Sequence[str], edgeproxy_resize: Mapping[str, float], thumbor_resize: Mapping[str, float] | None
) -> list[str]:
    """Rows per photo: the common-reference score of each server's lossless resize."""
    rows = ["| photo | edgeproxy lossless resize | thumbor lossless resize |", "|---|---|---|"]
    for photo in photos:
        theirs = f"{thumbor_resize[photo]:.1f}" if thumbor_resize else "n/a"
        rows.append(f"| {photo} | {edgeproxy_resize[photo]:.1f} | {theirs} |")
    return rows


def thumbor_versions(venv: Path) -> str:
    found = servers.versions(venv)
    return ", ".join(f"{name} {version}" for name, version in found.items()) or "versions unknown"


def goals(ratios: Mapping[tuple[str, float], tuple[float, float]], scoring: Scoring) -> str:
    """The goal in words for ``scoring``'s table: per (format, floor), met when the geomean ratio is
    ≤ 0.75 and edgeproxy's minimum score is ≥ floor − 1 (the issue's "every answer at or above its
    target"); a ratio with edgeproxy's outputs under that is not at equal quality."""
    if not ratios:
        return f"Scored against the {scoring} reference: no ratio (thumbor not run, or it reached no floor)."
    met, missed, unequal = [], [], []
    for (fmt, floor), (ratio, ours_min) in ratios.items():
        if ours_min < floor - 1:
            unequal.append(f"{fmt} {floor:g} (edgeproxy's minimum {ours_min:.1f})")
        elif ratio <= 0.75:
            met.append(f"{fmt} {floor:g} ({ratio:.2f})")
        else:
            missed.append(f"{fmt} {floor:g} ({ratio:.2f})")
    parts = [
        f"Scored against the {scoring} reference, the goal (geomean ratio ≤ 0.75 at equal quality) is met at "
        + (", ".join(met) or "no floor")
        + "; missed at "
        + (", ".join(missed) or "no floor")
    ]
    if unequal:
        parts.append("; not at equal quality, edgeproxy's outputs under the floor − 1, at " + ", ".join(unequal))
    return "".join(parts) + "."


def library_versions() -> str:
    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "?"

    return f"pyvips-binary {version('pyvips-binary')}, numpy {version('numpy')}"


# --- main ---------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = reporting.parser("bench.quality", __doc__, corpus=True)
    parser.add_argument("--quick", action="store_true", help="CI smoke: 2 photos, floor 70, thumbor only if installed")
    parser.add_argument("--photos", type=int, default=MAX_PHOTOS, help=f"photos (default {MAX_PHOTOS})")
    parser.add_argument("--floors", default=",".join(f"{f:g}" for f in FLOORS), help="SSIMULACRA2 floors")
    parser.add_argument("--repeats", type=int, default=3, help="timed renders per photo and tier (default 3)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes and threads (default: cores)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/edgeproxy-bench"), help="thumbor's venv and conf")
    parser.add_argument("--no-thumbor", action="store_true", help="edgeproxy only")
    parser.add_argument("--port", type=int, default=18095, help="thumbor's port on 127.0.0.1")
    args = parser.parse_args(argv)
    if os.environ.get("OPENBLAS_NUM_THREADS") != "1":  # read when numpy loads: start again with it set
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        os.execv(sys.executable, [sys.executable, "-m", "bench.quality", *(sys.argv[1:] if argv is None else argv)])
    if not (args.corpus / "MANIFEST.json").is_file():
        parser.error(f"no corpus at {args.corpus} (MANIFEST.json; set EDGEPROXY_CORPUS or --corpus)")
    floors = QUICK_FLOORS if args.quick else tuple(float(f) for f in args.floors.split(","))
    repeats = 1 if args.quick else args.repeats
    photos = formats.select_photos(args.corpus, 2 if args.quick else args.photos, min_width=WIDTH)
    if not photos:
        parser.error(f"no decodable JPEG/PNG photo at least {WIDTH} px wide in {args.corpus}")
    venv = args.workdir / "thumbor-venv"
    use_thumbor = not args.no_thumbor and (not args.quick or (venv / "bin" / "thumbor").exists())
    configure()
    config = settings()
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"{time.monotonic() - started:6.0f} s  {message}", file=sys.stderr, flush=True)

    # 1. The optimised tier, one process per job (spawned: libvips' threads do not survive fork); AVIF first.
    jobs = [(str(args.corpus / p), fmt, floor) for fmt in ("avif", "webp", "jpeg") for p in photos for floor in floors]
    optimised: dict[tuple[str, str, float], Optimised] = {}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, args.jobs), mp_context=context) as pool:
        for done in pool.map(optimise, *zip(*jobs, strict=True)):
            optimised[(done.photo, done.fmt, done.floor)] = done
            log(
                f"optimised {done.photo} {done.fmt} floor {done.floor:g}: q{done.output.quality} "
                f"{done.output.size:,} B, {done.cpu:.1f} s CPU"
            )

    # 2. The first answer, alone, one render at a time.
    answers: list[FirstAnswer] = []
    edgeproxy_resize: dict[str, float] = {}
    for photo in photos:
        found, edgeproxy_resize[photo] = first_answers(args.corpus / photo, config, repeats)
        answers += found
        log(f"first answers {photo}")

    # 3. thumbor: every quality of the grid.
    grid: dict[tuple[str, str, int], Output] | None = None
    thumbor_resize: dict[str, float] | None = None
    thumbor_note = "thumbor: not run (--no-thumbor, or --quick without thumbor installed under --workdir)."
    if use_thumbor:
        args.workdir.mkdir(parents=True, exist_ok=True)
        servers.install_thumbor(venv)
        step = QUICK_STEP if args.quick else 1
        qualities = {fmt: list(span)[::step] for fmt, span in THUMBOR_QUALITIES.items()}
        server = servers.start_thumbor(venv, args.corpus, args.port, args.jobs, args.workdir, THUMBOR_DEFAULTS)
        grid, thumbor_resize = {}, {}
        try:
            with httpx.Client(timeout=TIMEOUT) as client:
                for photo in photos:
                    outputs, thumbor_resize[photo] = thumbor_photo(
                        client, server.base, args.corpus, photo, qualities, args.jobs
                    )
                    grid.update({(photo, fmt, q): out for (fmt, q), out in outputs.items()})
                    log(f"thumbor {photo}: {len(outputs)} outputs")
        finally:
            server.stop()
        spans = ", ".join(f"{fmt} {min(q)}–{max(q)}" for fmt, q in qualities.items())
        thumbor_note = (
            f"thumbor: {thumbor_versions(venv)}; qualities tried {spans} (step {step}); settings "
            "`bench.servers.THUMBOR_CONF` with thumbor's own defaults for the encoders "
            + ", ".join(f"`{k} = {v!r}`" for k, v in THUMBOR_DEFAULTS.items())
            + " (AVIF: Pillow's libavif with aom at Pillow's default speed 6; JPEG: optimize, progressive, the "
            "original's chroma subsampling; thumbor keeps the original's ICC profile, counted in its bytes)."
        )

    resized = sum(o.output.resized for o in optimised.values()) + (sum(o.resized for o in grid.values()) if grid else 0)
    section = report(
        photos,
        floors,
        optimised,
        answers,
        (edgeproxy_resize, thumbor_resize),
        grid,
        thumbor_note,
        resized,
        repeats,
        time.monotonic() - started,
    )
    reporting.publish(section, args)
    return 0


def report(
    photos: Sequence[str],
    floors: Sequence[float],
    optimised: Mapping[tuple[str, str, float], Optimised],
    answers: Sequence[FirstAnswer],
    resizes: tuple[Mapping[str, float], Mapping[str, float] | None],
    grid: Mapping[tuple[str, str, int], Output] | None,
    thumbor_note: str,
    resized: int,
    repeats: int,
    seconds: float,
) -> str:
    """The section of bench/results.md: how it was run, the method, the tables, a reading.
    ``resizes``: the common-reference score of edgeproxy's and thumbor's (None: not run) lossless
    resize per photo; ``resized``: how many outputs had to be resized to the reference's size."""
    options = optimised_options(settings())
    own_rows, own_ratios = bytes_table(optimised, grid, photos, floors, "own")
    common_rows, common_ratios = bytes_table(optimised, grid, photos, floors, "common")
    ours_resize, theirs_resize = resizes
    resize_span = f"edgeproxy's {min(ours_resize.values()):.1f} to {max(ours_resize.values()):.1f}" + (
        f", thumbor's {min(theirs_resize.values()):.1f} to {max(theirs_resize.values()):.1f}" if theirs_resize else ""
    )
    lines = [
        HEADING,
        "",
        f"{reporting.run_line(reporting.command('bench.quality'))} in {seconds:.0f} s; {library_versions()}.",
        "",
        "Method (`bench/quality.py`'s docstring has it whole): "
        f"{len(photos)} corpus photos ({', '.join(photos)}) served {WIDTH} px wide. edgeproxy: the optimised "
        "tier's render (`pipeline.run` with the floor as SSIMULACRA2 target and the quality search, as the "
        f"background tier runs it; AVIF effort {options.avif_effort}, WebP effort {options.webp_effort} + "
        "smart_subsample, JPEG with mozjpeg's trellis quantisation, overshoot deringing and optimised "
        "progressive scans). thumbor: its lowest fixed quality at which every photo reaches the floor, and its "
        "bytes there. Scores: edgeproxy's SSIMULACRA2 of each output as a browser decodes it, (own) against its "
        "server's lossless resize (edgeproxy: the pipeline's image before the encode, which its search scores "
        "against; thumbor: its PNG), which judges the encoders alone, and (common) against one reference, the "
        f"original resized by libvips' thumbnail (Lanczos 3, no DCT shrink) to {WIDTH} px. Ratio = edgeproxy "
        "bytes ÷ thumbor bytes: the geometric mean of the per-photo ratios (their range in parentheses), and "
        "the ratio of the totals; the issue's goal is a geomean ≤ 0.75. CPU per variant: process CPU seconds "
        "of one optimised render (decode, resize, the search's encodes, decodes and scores), one thread.",
        "",
        thumbor_note,
        *(
            [f"{resized} outputs decoded at another size than the reference's were resized to it (Lanczos 3)."]
            if resized
            else []
        ),
        "",
        "### Bytes at a floor, each output scored against its server's own lossless resize (the encoders alone)",
        "",
        *own_rows,
        "",
        "### Bytes at a floor, every output scored against the common reference (libvips thumbnail, Lanczos 3)",
        "",
        *common_rows,
        "",
        "### Each server's lossless resize scored against the common reference (SSIMULACRA2)",
        "",
        *resize_rows(photos, *resizes),
        "",
    ]
    if grid:
        lines += ["### thumbor at its default quality", "", *thumbor_default_rows(grid, photos), ""]
    lines += [
        f"### First answer: the fast tier (typical quality for target {FAST_TARGET:g}, default efforts) against "
        f"today's fixed qualities (ms: per photo the median of {repeats} renders after a warm-up, wall, summed "
        "over photos; scores against the pipeline's own resize)",
        "",
        *first_answer_rows(answers, list(optimised.values())),
        "",
        "Reading: "
        + goals(own_ratios, "own")
        + " "
        + goals(common_ratios, "common")
        + f" Against the common reference, the lossless resizes alone score {resize_span}: a floor above a "
        "photo's resize score cannot be reached by any quality, so the common table mostly measures the "
        "resizers (edgeproxy's JPEG DCT shrink before Lanczos 3, thumbor's Pillow draft + LANCZOS), not the "
        "encoders.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
