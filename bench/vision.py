"""What the vision models cost per image: pre-processing plus inference, on this machine.

    python -m bench.vision [--models DIR] [--corpus DIR] [--repeat 50] [--threads 1]

Loads open_nsfw and CenterFace as the proxy does (``edgeproxy.vision``, CUDA where it loads, else
the CPU), prints the execution providers each session got and how long building it took, then, for
a 640-pixel sRGB copy of giunchedi-portrait.jpg and of flickr-2725x2225.jpg from the corpus, the
median and p90 milliseconds of ``NsfwModel.score`` and ``FaceModel.detect`` (pre-processing +
inference + decoding) over ``--repeat`` runs after one warm-up.

Then the whole analysis of one original (``Vision.analyse``: decode, both models, the obscuring
grids) on 12-megapixel originals, before and after small-face detection: "before" is the analysis
as it was (a 640-px copy, one CenterFace pass at ``face_min_score``), "now" the default settings
(a 960-px copy, ``FaceModel.find``: two scales and a second look at weak small faces, plus the
grids), with their ratio. Originals: iphone-p3-orientation-6.jpg (4032x3024, a photo without
faces), flickr-2725x2225.jpg scaled to 4000x3000, and the same with 12 and with 88 copies of the
portrait's face pasted at 1.5 % and 1 % of its width (a crowd). ``--repeat`` / 5 runs each.

Models: ``--models`` or ``edgeproxy models fetch``'s folder; corpus: ``--corpus``,
``$EDGEPROXY_CORPUS`` or ../shared/corpus. Prints its two sections; ``--write`` also puts them
into bench/results.md.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import numpy as np
import onnxruntime
import pyvips

from bench import report
from edgeproxy.render import pipeline
from edgeproxy.vision.analysis import Vision, small_rgb
from edgeproxy.vision.faces import FaceModel
from edgeproxy.vision.models import default_dir
from edgeproxy.vision.nsfw import NsfwModel
from edgeproxy.vision.runtime import DEFAULT_PROVIDERS

IMAGES = ("giunchedi-portrait.jpg", "flickr-2725x2225.jpg")
SIDE = 640
#: The portrait's hand-labelled face (x0, y0, x1, y1, pixels of the 800x533 original).
FACE = (312, 75, 480, 297)
LIMITS = pipeline.Limits(
    max_source_bytes=64 << 20,
    max_source_pixels=50_000_000,
    max_frames=1,
    max_output_dimension=8192,
    allowed_formats=frozenset({"jpeg", "png"}),
    max_blur_cost=1000,
    trim_max_side=1024,
)


def srgb(path: Path, side: int = SIDE):
    """``path`` as an HxWx3 uint8 sRGB array at most ``side`` pixels on its long side."""
    image = pyvips.Image.thumbnail(str(path), side)
    image = image.icc_transform("srgb") if image.get_typeof("icc-profile-data") else image.colourspace("srgb")
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    return image.cast("uchar").numpy()


def timings_ms(function, repeat: int) -> tuple[float, float]:
    """Median and p90 of ``repeat`` timed calls of ``function`` after one warm-up, in milliseconds."""
    function()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, math.ceil(0.9 * len(times)) - 1)]


def twelve_megapixels(corpus: Path, faces: int, fraction: float) -> bytes:
    """flickr-2725x2225.jpg scaled to 4000x3000 with ``faces`` copies of the portrait's face (and
    some context) pasted on a jittered grid, each ``fraction`` of the width wide: JPEG Q92 bytes."""
    photo = pyvips.Image.new_from_file(str(corpus / "flickr-2725x2225.jpg"))
    canvas = photo.resize(4000 / photo.width).crop(0, 0, 4000, 3000).numpy().copy()
    if faces:
        x0, y0, x1, y1 = FACE
        mx, my = round((x1 - x0) * 0.4), round((y1 - y0) * 0.3)
        portrait = pyvips.Image.new_from_file(str(corpus / "giunchedi-portrait.jpg"))
        crop = portrait.crop(x0 - mx, y0 - my, x1 - x0 + 2 * mx, y1 - y0 + 2 * my).resize(fraction * 4000 / (x1 - x0))
        pixels = crop.numpy()
        across = math.ceil(math.sqrt(faces * 4 / 3))
        rng = np.random.default_rng(faces)
        cw, ch = 4000 // across, 3000 // math.ceil(faces / across)
        for n in range(faces):
            left = (n % across) * cw + int(rng.integers(0, max(1, cw - crop.width)))
            top = (n // across) * ch + int(rng.integers(0, max(1, ch - crop.height)))
            canvas[top : top + crop.height, left : left + crop.width] = pixels
    return pyvips.Image.new_from_memory(canvas.tobytes(), 4000, 3000, 3, "uchar").jpegsave_buffer(Q=92)


def analyse_before(vision: Vision, data: bytes) -> int:
    """The analysis as it was before small-face detection: a 640-px copy, open_nsfw, one CenterFace
    pass at ``face_min_score`` (``FaceModel.detect``), no grids. Returns the faces found."""
    rgb, _size = small_rgb(data, LIMITS, SIDE)
    vision.nsfw.score(rgb)
    return len(vision.faces.detect(rgb, min_score=vision.min_score))


def analysis_section(args: argparse.Namespace, command: str, nsfw: NsfwModel, faces: FaceModel) -> str:
    """The before/now table of whole analyses on 12-megapixel originals."""
    vision = Vision(nsfw, faces, max_side=960, min_score=0.5, candidate_score=0.05, cache_entries=0)
    originals = {
        "iphone-p3-orientation-6.jpg (4032x3024, no face)": (args.corpus / "iphone-p3-orientation-6.jpg").read_bytes(),
        "flickr 4000x3000, no face": twelve_megapixels(args.corpus, 0, 0),
        "flickr 4000x3000, 12 faces at 1.5 %": twelve_megapixels(args.corpus, 12, 0.015),
        "flickr 4000x3000, 88 faces at 1 % (crowd)": twelve_megapixels(args.corpus, 88, 0.01),
    }
    repeat = max(3, args.repeat // 5)
    lines = [
        "## Vision: analysis of a 12-megapixel original, before and after (python -m bench.vision)",
        "",
        f"{report.run_line(command)}, "
        f"{args.threads} ONNX Runtime thread(s), providers {', '.join(faces.providers)}; median of {repeat} runs after "
        "a warm-up. Before: a 640-px copy, open_nsfw, one CenterFace pass (faces from about 2 % of the long side). "
        "Now (default settings): a 960-px copy, open_nsfw, `FaceModel.find` (two scales and a second look at "
        "weak small faces: from 1 % of the long side) and the obscuring grids of every face and of the whole original.",
        "",
        "| original | before ms | faces found | now ms | faces found | now / before | decode | nsfw | faces | grids |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, data in originals.items():
        found_before = analyse_before(vision, data)
        before, _p90 = timings_ms(lambda data=data: analyse_before(vision, data), repeat)
        analysis = vision.analyse("bench", data, LIMITS)
        stages: dict[str, list[float]] = {}

        def now(data=data, stages=stages) -> None:
            result = vision.analyse("bench", data, LIMITS)
            for stage, seconds in result.timings.items():
                stages.setdefault(stage, []).append(seconds * 1000)

        after, _p90 = timings_ms(now, repeat)
        parts = " | ".join(
            f"{statistics.median(stages.get(stage, [0])):.1f}" for stage in ("decode", "nsfw", "faces", "grids")
        )
        lines.append(
            f"| {name} | {before:.1f} | {found_before} | {after:.1f} | {len(analysis.faces)} | "
            f"{after / before:.2f} | {parts} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = report.parser("bench.vision", __doc__, corpus=True)
    parser.add_argument("--models", type=Path, default=default_dir(), help="models folder (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (default 1)")
    args = parser.parse_args(argv)
    command = report.command("bench.vision", argv)
    missing = [
        str(p) for p in [args.corpus / name for name in (*IMAGES, "iphone-p3-orientation-6.jpg")] if not p.is_file()
    ]
    if missing:
        parser.error(f"corpus images missing: {', '.join(missing)}")
    images = {name: srgb(args.corpus / name) for name in IMAGES}
    lines = [
        "## Vision: inference per model (python -m bench.vision)",
        "",
        f"{report.run_line(command)}, onnxruntime {onnxruntime.__version__} "
        f"(the onnxruntime-gpu wheel; providers asked: {', '.join(DEFAULT_PROVIDERS)}), "
        f"{args.threads} ONNX Runtime thread(s), {args.repeat} runs after a warm-up. Each time is pre-processing + "
        "inference + post-processing on a 640-px sRGB copy, one pass (`FaceModel.detect`); a request's analysis "
        "now sees a 960-px copy and finds faces with `FaceModel.find` (next section).",
        "",
        "| model | providers used | load ms | image | input | median ms | p90 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    loaded = {}
    for label, cls, file, run in (
        ("open_nsfw", NsfwModel, "open-nsfw.onnx", lambda m, a: m.score(a)),
        ("CenterFace", FaceModel, "centerface.onnx", lambda m, a: m.detect(a)),
    ):
        start = time.perf_counter()
        model = loaded[label] = cls.load(args.models / file, providers=DEFAULT_PROVIDERS, threads=args.threads)
        load_ms = (time.perf_counter() - start) * 1000
        for name, array in images.items():
            median, p90 = timings_ms(lambda model=model, array=array, run=run: run(model, array), args.repeat)
            lines.append(
                f"| {label} | {', '.join(model.providers)} | {load_ms:.0f} | {name} | "
                f"{array.shape[1]}×{array.shape[0]} | {median:.1f} | {p90:.1f} |"
            )
    report.publish("\n".join(lines) + "\n", args)
    report.publish(analysis_section(args, command, loaded["open_nsfw"], loaded["CenterFace"]), args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
