"""``python -m bench.quality``: edgeproxy's optimised tier against thumbor in bytes at an equal SSIMULACRA2 floor.

Also the first answer's latency against today's fixed qualities, and the background's CPU per variant
(issue 26, deliver 5). Everything is measured side by side in one run.

Photos: the corpus's decodable JPEG/PNG photos at least ``WIDTH`` px wide (``bench.formats.select_photos``:
by name, the first ``--photos``; the synthetic gradient left out), each served ``WIDTH`` px wide
(edgeproxy ``w:800/f:FMT``, thumbor ``/unsafe/800x0/filters:format(FMT):quality(Q)/FILE``).

Scores: edgeproxy's SSIMULACRA2 (``edgeproxy.quality.ssimulacra2``, within 0.3 of the C++ reference
on photos) of each output decoded as a browser shows it (libvips; AVIF also by libavif, as Chromium
decodes it, the lower score counting: ``quality.search.browser_decodes``; an embedded ICC profile
applied: thumbor keeps the original's), against two references:

- own: its server's lossless resize of the original (edgeproxy: the pipeline's image before the
  encode, which its quality search scores against; thumbor: its PNG at the same size). This judges
  the encoders alone, and decides the bytes comparison.
- common: one reference for both servers, the original upright, colour managed to sRGB and resized
  by libvips' ``thumbnail`` (shrink-on-load, then Lanczos 3: ``bench.formats.reference``, which
  scores 97 to 100 against a Lanczos 3 resize of the whole decoded original). It cannot decide the
  comparison: the servers resize differently (edgeproxy decodes a JPEG at a DCT scale before its
  Lanczos 3; thumbor uses Pillow's ``draft`` then LANCZOS, and converts CMYK without its profile),
  so their lossless resizes alone score below 100 against it, down to the floors themselves (the
  report's resize table), and no quality reaches a floor above that. The report gives each side's
  common scores at the qualities the own comparison chose.

1. Bytes at a floor. edgeproxy: the optimised tier's render, the code the background tier runs
   (``pipeline.run`` with the floor as SSIMULACRA2 target and ``search``, with the default settings'
   ``EncodeOptions.optimised(optimise_avif_effort, optimise_webp_effort, optimise_max_pixels)``): per
   photo, format and floor, ``quality.search.find_quality`` picks the lowest quality reaching the
   floor against its own resize. Its process CPU time (one thread, as ``optimise_threads`` = 1 runs
   it) is the background's cost per variant. thumbor 7.8 (``bench.servers``, with thumbor's own
   defaults for the encoders, ``THUMBOR_DEFAULTS``: Pillow; AVIF through Pillow's libavif at its
   default speed): each photo and format at every quality of ``THUMBOR_QUALITIES``; per floor, the
   lowest fixed quality at which every photo reaches the floor, and its bytes there. Ratios:
   edgeproxy ÷ thumbor bytes, the geometric mean of the per-photo ratios (the issue's goal: ≤ 0.75),
   the same without the ICC profiles thumbor embeds (the encoders alone), and the ratio of the totals.
2. The first answer. Per photo and format, one render (the median of ``--repeats`` after a warm-up,
   wall time, run alone) of the fast tier (the format's typical quality for target ``FAST_TARGET``,
   default efforts: what the first request gets) and of today's fixed default quality
   (``quality_jpeg``/``webp``/``avif``), alternating; the ratio of the sums.

``--quick`` (a CI smoke test): 2 photos, floor 70, one repeat, and thumbor only when it is already
installed under ``--workdir`` (then on a coarser grid). Prints Markdown; ``--write`` also puts it into
``bench/results.md``.
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
from edgeproxy.quality.search import browser_decodes
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
#: The floor of the per-photo table (the default ``quality_target``), or the run's first floor.
PER_PHOTO_FLOOR = 70.0
#: The issue's goal: edgeproxy's bytes at most this fraction of thumbor's (geomean over the photos).
GOAL = 0.75
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


# --- pixels: the reference, what a browser shows, the scores -----------------------------------------------


def reference(path: Path) -> pyvips.Image:
    """The common reference: ``path`` upright, in sRGB, ``WIDTH`` px wide (libvips thumbnail)."""
    return formats.reference(path, WIDTH, height=UNBOUNDED)


@dataclass(frozen=True, slots=True)
class Output:
    """One encoded output: ``size`` bytes at encoder ``quality``, scored against the common
    reference (``common``) and its server's own lossless resize (``own``); ``profile``: bytes of the
    ICC profile embedded in it; ``resized``: decoded at another size than the reference's and
    resized to it for the scores."""

    size: int
    quality: int
    common: float
    own: float
    profile: int = 0
    resized: bool = False

    def score(self, scoring: Scoring) -> float:
        return self.common if scoring == "common" else self.own


@dataclass(frozen=True, slots=True)
class Judges:
    """The two references of one photo (``Reference`` prepared once for many outputs)."""

    common: Reference
    own: Reference
    size: tuple[int, int]  # (width, height) px of both

    def output(self, body: bytes, quality: int, own: float | None = None) -> Output:
        """``body`` (at encoder ``quality``) decoded and scored; ``own``: its score against the own
        reference when already known (edgeproxy's search computed it)."""
        images, profile, resized = displayed(body, self.size)
        own_score = lowest(self.own, images) if own is None else own
        return Output(len(body), quality, lowest(self.common, images), own_score, profile, resized)


def lowest(reference: Reference, images: Sequence[pyvips.Image]) -> float:
    """The lowest score of ``images`` (the decodes of one output) against ``reference``."""
    return min(reference.score(image) for image in images)


def displayed(body: bytes, size: tuple[int, int]) -> tuple[list[pyvips.Image], int, bool]:
    """``body`` decoded as browsers may show it (``quality.search.browser_decodes``: AVIF by libheif
    and by libavif, whose scores may differ by a point or more; the lower counts): each decode with
    an embedded ICC profile (or CMYK) to sRGB, alpha onto white, 3-band 8-bit, in memory, resized to
    ``size`` (width, height) when it differs; with the bytes of its ICC profile (0: none) and whether
    it was resized."""
    shown = [_shown(image, size) for image in browser_decodes(body)]
    return [image for image, _, _ in shown], shown[0][1], shown[0][2]


def _shown(image: pyvips.Image, size: tuple[int, int]) -> tuple[pyvips.Image, int, bool]:
    profile = len(image.get("icc-profile-data")) if image.get_typeof("icc-profile-data") != 0 else 0
    if profile or image.interpretation == "cmyk":
        image = image.icc_transform("srgb", embedded=True)
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    if image.bands < 3 or image.interpretation not in ("srgb", "rgb"):
        image = image.colourspace("srgb")
    image = image.cast("uchar")
    resized = (image.width, image.height) != size
    if resized:
        image = image.resize(size[0] / image.width, vscale=size[1] / image.height, kernel="lanczos3")
    return image.copy_memory(), profile, resized


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


def edgeproxy_judges(path: Path, config: Settings) -> tuple[Judges, float]:
    """``path``'s references for edgeproxy's outputs: the common one, and the pipeline's lossless
    (PNG) resize; and the common score of that resize."""
    common = reference(path)
    size = (common.width, common.height)
    lossless = displayed(render(path.read_bytes(), "png", config, encoder_options(config), None, False).body, size)[0][
        0
    ]
    judges = Judges(Reference(common), Reference(lossless), size)
    return judges, judges.common.score(lossless)


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
    """A pool job: the optimised tier's render of ``path`` as ``fmt`` for ``floor``, timed and scored
    (its own score is the search's, against the pipeline's image before the encode)."""
    configure()
    config = settings()
    data = Path(path).read_bytes()
    cpu, wall = time.process_time(), time.perf_counter()
    rendered = render(data, fmt, config, optimised_options(config), floor, True)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert rendered.quality is not None and rendered.score is not None, "the quality was not searched"
    common = reference(Path(path))
    images, profile, resized = displayed(rendered.body, (common.width, common.height))
    output = Output(
        len(rendered.body), rendered.quality, lowest(Reference(common), images), rendered.score, profile, resized
    )
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


def first_answers(path: Path, config: Settings, judges: Judges, repeats: int) -> list[FirstAnswer]:
    """Per format, today's and the fast tier's render of ``path``, timed alternately ``repeats``
    times after a warm-up, and scored by ``judges``."""
    data = path.read_bytes()
    options = encoder_options(config)
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
        today, fast = (judges.output(rendered[t].body, rendered[t].quality or 0) for t in ("today", "fast"))
        answers.append(
            FirstAnswer(
                path.name,
                fmt,
                today,
                fast,
                statistics.median(walls["today"]),
                statistics.median(walls["fast"]),
                statistics.median(cpus["today"]),
                statistics.median(cpus["fast"]),
            )
        )
    return answers


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


@dataclass(frozen=True, slots=True)
class Thumbor:
    """What thumbor made: ``grid`` {(photo, format, quality): Output}; ``resize`` {photo: the common
    score of its lossless resize}; ``note``: how it ran (versions, settings, the grid)."""

    grid: Mapping[tuple[str, str, int], Output]
    resize: Mapping[str, float]
    note: str

    def choice(self, photos: Sequence[str], fmt: str, floor: float, scoring: Scoring) -> int | None:
        """The lowest quality tried at which every photo's ``fmt`` output scores at least ``floor``
        (``scoring``: against the common reference or thumbor's own resize); None when none does."""
        for quality in sorted({q for (_, f, q) in self.grid if f == fmt}):
            if all(self.grid[(photo, fmt, quality)].score(scoring) >= floor for photo in photos):
                return quality
        return None

    def alone(self, photo: str, fmt: str, floor: float) -> int | None:
        """The lowest quality tried at which ``photo`` alone reaches ``floor`` (own scores)."""
        return self.choice([photo], fmt, floor, "own")


def thumbor_photo(
    client: httpx.Client, base: str, corpus: Path, photo: str, qualities: Mapping[str, Sequence[int]], jobs: int
) -> tuple[dict[tuple[str, int], Output], float]:
    """Every output of thumbor for ``photo``: {(format, quality): Output} for ``qualities`` and
    thumbor's default quality, on ``jobs`` threads; and the common score of its lossless (PNG) resize."""
    common = reference(corpus / photo)
    size = (common.width, common.height)
    lossless = displayed(thumbor_get(client, thumbor_url(base, photo, "png", None)), size)[0][0]
    judges = Judges(Reference(common), Reference(lossless), size)

    def one(job: tuple[str, int]) -> tuple[tuple[str, int], Output]:
        fmt, quality = job
        return job, judges.output(thumbor_get(client, thumbor_url(base, photo, fmt, quality)), quality)

    wanted = [(fmt, q) for fmt in FORMATS for q in sorted({*qualities[fmt], THUMBOR_DEFAULT_QUALITY})]
    with ThreadPoolExecutor(max_workers=jobs) as threads:
        outputs = dict(threads.map(one, wanted))
    return outputs, judges.common.score(lossless)


def run_thumbor(workdir: Path, corpus: Path, photos: Sequence[str], port: int, jobs: int, step: int) -> Thumbor:
    """thumbor installed (once) into ``workdir``, started on 127.0.0.1:``port`` over ``corpus``,
    asked for every photo, format and quality of ``THUMBOR_QUALITIES`` (every ``step``-th), then stopped."""
    venv = workdir / "thumbor-venv"
    workdir.mkdir(parents=True, exist_ok=True)
    servers.install_thumbor(venv)
    qualities = {fmt: list(span)[::step] for fmt, span in THUMBOR_QUALITIES.items()}
    server = servers.start_thumbor(venv, corpus, port, jobs, workdir, THUMBOR_DEFAULTS)
    grid: dict[tuple[str, str, int], Output] = {}
    resize: dict[str, float] = {}
    try:
        with httpx.Client(timeout=TIMEOUT) as client:
            for photo in photos:
                outputs, resize[photo] = thumbor_photo(client, server.base, corpus, photo, qualities, jobs)
                grid.update({(photo, fmt, q): out for (fmt, q), out in outputs.items()})
                print(f"thumbor {photo}: {len(outputs)} outputs", file=sys.stderr, flush=True)
    finally:
        server.stop()
    versions = ", ".join(f"{name} {version}" for name, version in servers.versions(venv).items())
    spans = ", ".join(f"{fmt} {min(q)}–{max(q)}" for fmt, q in qualities.items())
    note = (
        f"thumbor: {versions or 'versions unknown'}; qualities tried {spans} (step {step}); settings "
        "`bench.servers.THUMBOR_CONF` with thumbor's own defaults for the encoders "
        + ", ".join(f"`{k} = {v!r}`" for k, v in THUMBOR_DEFAULTS.items())
        + " (AVIF: Pillow's libavif with aom at Pillow's default speed 6; JPEG: optimize, progressive, the "
        "original's chroma subsampling). thumbor keeps the original's ICC profile (560 to 3,144 bytes on some "
        "photos): counted in its bytes, and left out in the column that says so."
    )
    return Thumbor(grid, resize, note)


# --- the report -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measured:
    """Everything one run measured: the ``optimised`` renders {(photo, format, floor): Optimised},
    the first ``answers``, the common score of edgeproxy's lossless resize per photo
    (``edgeproxy_resize``), and ``thumbor``'s outputs (None: not run)."""

    photos: Sequence[str]
    floors: Sequence[float]
    optimised: Mapping[tuple[str, str, float], Optimised]
    answers: Sequence[FirstAnswer]
    edgeproxy_resize: Mapping[str, float]
    thumbor: Thumbor | None


@dataclass(frozen=True, slots=True)
class Comparison:
    """One format at one floor (own scores): thumbor's fixed ``quality`` (None: not reached on every
    photo), the geomean ``ratio`` of edgeproxy ÷ thumbor bytes (None without thumbor's quality) and
    edgeproxy's minimum own score."""

    quality: int | None
    ratio: float | None
    ours_min: float


def geomean(values: Iterable[float]) -> float:
    listed = list(values)
    return math.exp(sum(math.log(v) for v in listed) / len(listed))


def _range(values: Sequence[float]) -> str:
    return f"{min(values):.2f}–{max(values):.2f}"


def bytes_rows(measured: Measured) -> tuple[list[str], dict[tuple[str, float], Comparison]]:
    """The headline table (own scores) and its comparison per (format, floor)."""
    rows = [
        "| format | floor | thumbor q (set by) | thumbor bytes | edgeproxy bytes | **ratio** geomean (per photo) "
        "| ratio without thumbor's ICC | ratio of totals | min score thumbor / edgeproxy | edgeproxy q "
        "| edgeproxy CPU s per variant |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    found: dict[tuple[str, float], Comparison] = {}
    photos, thumbor = measured.photos, measured.thumbor
    for fmt in FORMATS:
        for floor in measured.floors:
            ours = [measured.optimised[(photo, fmt, floor)].output for photo in photos]
            ours_min = min(o.own for o in ours)
            cpu = statistics.mean(measured.optimised[(photo, fmt, floor)].cpu for photo in photos)
            quality = thumbor.choice(photos, fmt, floor, "own") if thumbor else None
            cells = ["n/a"] * 6 if thumbor is None else ["not reached", "n/a", "n/a", "n/a", "n/a", "n/a"]
            ratio = None
            if thumbor is not None and quality is not None:
                at = [thumbor.grid[(photo, fmt, quality)] for photo in photos]
                each = [o.size / t.size for o, t in zip(ours, at, strict=True)]
                bare = [o.size / (t.size - t.profile) for o, t in zip(ours, at, strict=True)]
                ratio = geomean(each)
                setter = max(photos, key=lambda p: thumbor.alone(p, fmt, floor) or 999)
                cells = [
                    f"{quality} ({setter})",
                    f"{sum(t.size for t in at):,}",
                    f"**{ratio:.2f}** ({_range(each)})",
                    f"{geomean(bare):.2f} ({_range(bare)})",
                    f"{sum(o.size for o in ours) / sum(t.size for t in at):.2f}",
                    f"{min(t.own for t in at):.1f}",
                ]
            found[(fmt, floor)] = Comparison(quality, ratio, ours_min)
            rows.append(
                f"| {fmt} | {floor:g} | {cells[0]} | {cells[1]} | {sum(o.size for o in ours):,} | {cells[2]} "
                f"| {cells[3]} | {cells[4]} | {cells[5]} / {ours_min:.1f} "
                f"| {min(o.quality for o in ours)}–{max(o.quality for o in ours)} | {cpu:.2f} |"
            )
    return rows, found


def per_photo_rows(measured: Measured, floor: float, comparisons: Mapping[tuple[str, float], Comparison]) -> list[str]:
    """Per photo at ``floor``: edgeproxy's bytes and quality, thumbor's at its fixed quality, the ratio."""
    rows = [
        "| photo | " + " | ".join(f"{fmt}: edgeproxy q, bytes / thumbor bytes = ratio" for fmt in FORMATS) + " |",
        "|---" * (1 + len(FORMATS)) + "|",
    ]
    for photo in measured.photos:
        cells = []
        for fmt in FORMATS:
            ours = measured.optimised[(photo, fmt, floor)].output
            quality = comparisons[(fmt, floor)].quality
            if measured.thumbor is None or quality is None:
                cells.append(f"q{ours.quality}, {ours.size:,}")
                continue
            theirs = measured.thumbor.grid[(photo, fmt, quality)]
            profile = f" (ICC {theirs.profile:,})" if theirs.profile else ""
            cells.append(f"q{ours.quality}, {ours.size:,} / {theirs.size:,}{profile} = {ours.size / theirs.size:.2f}")
        rows.append(f"| {photo} | " + " | ".join(cells) + " |")
    return rows


def common_rows(measured: Measured, comparisons: Mapping[tuple[str, float], Comparison]) -> list[str]:
    """Per format and floor: each side's common scores (min / median) at the headline's qualities."""
    rows = [
        "| format | floor | thumbor min / median | edgeproxy min / median |",
        "|---|---|---|---|",
    ]
    for fmt in FORMATS:
        for floor in measured.floors:
            ours = [measured.optimised[(p, fmt, floor)].output.common for p in measured.photos]
            quality = comparisons[(fmt, floor)].quality
            theirs = "n/a"
            if measured.thumbor is not None and quality is not None:
                scores = [measured.thumbor.grid[(p, fmt, quality)].common for p in measured.photos]
                theirs = f"{min(scores):.1f} / {statistics.median(scores):.1f}"
            rows.append(f"| {fmt} | {floor:g} | {theirs} | {min(ours):.1f} / {statistics.median(ours):.1f} |")
    return rows


def resize_rows(measured: Measured) -> list[str]:
    """Per photo: the common score of each server's lossless resize."""
    rows = ["| photo | edgeproxy lossless resize | thumbor lossless resize |", "|---|---|---|"]
    for photo in measured.photos:
        theirs = f"{measured.thumbor.resize[photo]:.1f}" if measured.thumbor else "n/a"
        rows.append(f"| {photo} | {measured.edgeproxy_resize[photo]:.1f} | {theirs} |")
    return rows


def thumbor_default_rows(measured: Measured, thumbor: Thumbor) -> list[str]:
    """Per format: thumbor at its default quality, bytes and own scores (min / mean)."""
    rows = ["| format | thumbor q | bytes | score min / mean |", "|---|---|---|---|"]
    for fmt in FORMATS:
        at = [thumbor.grid[(photo, fmt, THUMBOR_DEFAULT_QUALITY)] for photo in measured.photos]
        rows.append(
            f"| {fmt} | {THUMBOR_DEFAULT_QUALITY} | {sum(t.size for t in at):,} "
            f"| {min(t.own for t in at):.1f} / {statistics.mean(t.own for t in at):.1f} |"
        )
    return rows


def first_answer_rows(measured: Measured) -> list[str]:
    """Per format: today's and the fast tier's quality, milliseconds (sums of per-photo medians),
    their ratio, bytes and own scores; the optimised tier's CPU (mean over floors) over today's."""
    rows = [
        "| format | today q | fast q | today ms | fast ms | **fast ÷ today** | today bytes | fast bytes "
        "| today score min / mean | fast score min / mean | optimised CPU ÷ today's CPU |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for fmt in FORMATS:
        mine = [a for a in measured.answers if a.fmt == fmt]
        today_ms, fast_ms = sum(a.today_wall for a in mine) * 1000, sum(a.fast_wall for a in mine) * 1000
        background = statistics.mean(o.cpu for o in measured.optimised.values() if o.fmt == fmt)
        today_q = "/".join(str(q) for q in sorted({a.today.quality for a in mine}))
        fast_q = "/".join(str(q) for q in sorted({a.fast.quality for a in mine}))
        rows.append(
            f"| {fmt} | {today_q} | {fast_q} | {today_ms:.0f} | {fast_ms:.0f} | **{fast_ms / today_ms:.2f}** "
            f"| {sum(a.today.size for a in mine):,} | {sum(a.fast.size for a in mine):,} "
            f"| {min(a.today.own for a in mine):.1f} / {statistics.mean(a.today.own for a in mine):.1f} "
            f"| {min(a.fast.own for a in mine):.1f} / {statistics.mean(a.fast.own for a in mine):.1f} "
            f"| {background / statistics.mean(a.today_cpu for a in mine):.0f}× |"
        )
    return rows


def reading(measured: Measured, comparisons: Mapping[tuple[str, float], Comparison]) -> str:
    """The goals in words: per (format, floor), met when the geomean ratio is ≤ ``GOAL`` and
    edgeproxy's minimum own score ≥ floor − 1 (the issue's "every answer at or above its target")."""
    if measured.thumbor is None:
        return "no ratio: thumbor was not run."
    met, missed, unequal, unreached = [], [], [], []
    for (fmt, floor), found in comparisons.items():
        label = f"{fmt} {floor:g}"
        if found.ratio is None:
            unreached.append(label)
        elif found.ours_min < floor - 1:
            unequal.append(f"{label} (edgeproxy's minimum {found.ours_min:.1f})")
        elif found.ratio <= GOAL:
            met.append(f"{label} ({found.ratio:.2f})")
        else:
            missed.append(f"{label} ({found.ratio:.2f})")
    sentences = [
        f"the goal (geomean ratio ≤ {GOAL} at an equal floor, own scores) is met at "
        + (", ".join(met) or "no floor")
        + " and missed at "
        + (", ".join(missed) or "no floor")
        + "."
    ]
    if unequal:
        sentences.append("Not at an equal floor (edgeproxy under the floor − 1): " + ", ".join(unequal) + ".")
    if unreached:
        sentences.append("thumbor reached no floor on every photo at: " + ", ".join(unreached) + ".")
    ours = measured.edgeproxy_resize.values()
    theirs = measured.thumbor.resize.values()
    sentences.append(
        f"Against the common reference the lossless resizes alone score {min(ours):.1f} to {max(ours):.1f} "
        f"(edgeproxy) and {min(theirs):.1f} to {max(theirs):.1f} (thumbor): below the higher floors, so the "
        "common reference cannot decide the comparison."
    )
    return " ".join(sentences)


def report(measured: Measured, command: str, repeats: int, seconds: float) -> str:
    """The section of bench/results.md: how it was run, the method, the tables, a reading."""
    options = optimised_options(settings())
    headline, comparisons = bytes_rows(measured)
    resized = sum(o.output.resized for o in measured.optimised.values())
    resized += sum(o.resized for o in measured.thumbor.grid.values()) if measured.thumbor else 0
    per_photo_floor = PER_PHOTO_FLOOR if PER_PHOTO_FLOOR in measured.floors else measured.floors[0]
    lines = [
        HEADING,
        "",
        f"{reporting.run_line(command)} in {seconds:.0f} s; {library_versions()}.",
        "",
        "Method (`bench/quality.py`'s docstring has it whole): "
        f"{len(measured.photos)} corpus photos ({', '.join(measured.photos)}) served {WIDTH} px wide. edgeproxy: "
        "the optimised tier's render (`pipeline.run` with the floor as SSIMULACRA2 target and the quality search, "
        f"as the background tier runs it; AVIF effort {options.avif_effort}, {options.avif_bitdepth}-bit, in 4:4:4, "
        "WebP effort "
        f"{options.webp_effort} + smart_subsample, JPEG with mozjpeg's trellis quantisation, overshoot deringing, "
        "optimised progressive scans and quantisation tables by target: `encoding.OPTIMISED_JPEG`, table 5 with "
        "4:2:0 below 85, table 8 from 85). thumbor: its lowest fixed quality at which every photo reaches the "
        "floor (the photo that needs the highest in parentheses), and its bytes there. Scores: edgeproxy's "
        "SSIMULACRA2 of each output as a browser decodes it (AVIF by libheif and by libavif, the lower score) "
        "against its own server's lossless resize (edgeproxy: the pipeline's image before the "
        "encode, which its search scores against; thumbor: its PNG): the encoders alone. Ratio = edgeproxy bytes "
        "÷ thumbor bytes: the geometric mean of the per-photo ratios (their range in parentheses), the same with "
        "thumbor's embedded ICC profiles left out, and the ratio of the totals. CPU per variant: process CPU "
        "seconds of one optimised render (decode, resize, the search's encodes, decodes and scores), one thread.",
        "",
        measured.thumbor.note if measured.thumbor else "thumbor: not run (--no-thumbor, or --quick without it).",
        *([f"{resized} outputs were decoded at another size than the reference's, resized to it."] if resized else []),
        "",
        "### Bytes at an equal SSIMULACRA2 floor (own scores)",
        "",
        *headline,
        "",
        f"### Per photo at floor {per_photo_floor:g} (bytes; thumbor at its fixed quality of the table above)",
        "",
        *per_photo_rows(measured, per_photo_floor, comparisons),
        "",
        "### Against one common reference (libvips thumbnail, Lanczos 3): scores at the qualities above",
        "",
        *common_rows(measured, comparisons),
        "",
        "The servers' lossless resizes against the common reference (what bounds every score above):",
        "",
        *resize_rows(measured),
        "",
    ]
    if measured.thumbor:
        lines += [
            f"### thumbor at its default quality ({THUMBOR_DEFAULT_QUALITY}; own scores)",
            "",
            *thumbor_default_rows(measured, measured.thumbor),
            "",
        ]
    lines += [
        f"### First answer: the fast tier (typical quality for target {FAST_TARGET:g}, default efforts) against "
        f"today's fixed qualities (ms: per photo the median of {repeats} renders after a warm-up, wall, summed "
        "over photos; own scores)",
        "",
        *first_answer_rows(measured),
        "",
        "Reading: " + reading(measured, comparisons),
        "",
    ]
    return "\n".join(lines)


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
    installed = (args.workdir / "thumbor-venv" / "bin" / "thumbor").exists()
    use_thumbor = not args.no_thumbor and (installed or not args.quick)
    configure()
    config = settings()
    started = time.monotonic()

    # 1. The optimised tier, one process per job (spawned: libvips' threads do not survive fork); AVIF first.
    jobs = [(str(args.corpus / p), fmt, floor) for fmt in ("avif", "webp", "jpeg") for p in photos for floor in floors]
    optimised: dict[tuple[str, str, float], Optimised] = {}
    with ProcessPoolExecutor(max_workers=max(1, args.jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
        for done in pool.map(optimise, *zip(*jobs, strict=True)):
            optimised[(done.photo, done.fmt, done.floor)] = done
            print(
                f"{time.monotonic() - started:6.0f} s  optimised {done.photo} {done.fmt} floor {done.floor:g}: "
                f"q{done.output.quality} {done.output.size:,} B, {done.cpu:.1f} s CPU",
                file=sys.stderr,
                flush=True,
            )

    # 2. The first answer, alone, one render at a time.
    answers: list[FirstAnswer] = []
    edgeproxy_resize: dict[str, float] = {}
    for photo in photos:
        judges, edgeproxy_resize[photo] = edgeproxy_judges(args.corpus / photo, config)
        answers += first_answers(args.corpus / photo, config, judges, repeats)
        print(f"{time.monotonic() - started:6.0f} s  first answers {photo}", file=sys.stderr, flush=True)

    # 3. thumbor: every quality of the grid.
    thumbor = (
        run_thumbor(args.workdir, args.corpus, photos, args.port, args.jobs, QUICK_STEP if args.quick else 1)
        if use_thumbor
        else None
    )
    measured = Measured(photos, floors, optimised, answers, edgeproxy_resize, thumbor)
    command = reporting.command("bench.quality", argv)
    reporting.publish(report(measured, command, repeats, time.monotonic() - started), args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
