"""What the vision models cost per image: pre-processing plus inference, on this machine.

    python -m bench.vision [--models DIR] [--corpus DIR] [--repeat 50] [--threads 1]

Loads open_nsfw and CenterFace as the proxy does (``edgeproxy.vision``, CUDA where it loads, else
the CPU), prints the execution providers each session got and how long building it took, then, for
a 640-pixel sRGB copy of giunchedi-portrait.jpg and of flickr-2725x2225.jpg from the corpus, the
median and p90 milliseconds of ``NsfwModel.score`` and ``FaceModel.detect`` (pre-processing +
inference + decoding) over ``--repeat`` runs after one warm-up. Models: ``--models`` or
``edgeproxy models fetch``'s folder; corpus: ``--corpus``, ``$EDGEPROXY_CORPUS`` or ../shared/corpus.
Writes its section of bench/results.md unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from pathlib import Path

import onnxruntime
import pyvips

from bench.sections import publish
from edgeproxy.vision.faces import FaceModel
from edgeproxy.vision.models import default_dir
from edgeproxy.vision.nsfw import NsfwModel
from edgeproxy.vision.runtime import DEFAULT_PROVIDERS

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ("giunchedi-portrait.jpg", "flickr-2725x2225.jpg")
SIDE = 640


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.vision", description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=default_dir(), help="models folder (default %(default)s)")
    parser.add_argument("--corpus", type=Path, default=Path(os.environ.get("EDGEPROXY_CORPUS",
                                                                         ROOT.parent / "shared" / "corpus")))
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (default 1)")
    parser.add_argument("--no-write", action="store_true", help="print only; do not update bench/results.md")
    args = parser.parse_args(argv)
    missing = [str(p) for p in [args.corpus / name for name in IMAGES] if not p.is_file()]
    if missing:
        parser.error(f"corpus images missing: {', '.join(missing)}")
    images = {name: srgb(args.corpus / name) for name in IMAGES}
    lines = [
        "## Vision: inference per model (python -m bench.vision)",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with `python -m bench.vision` on "
        f"{os.cpu_count()} cores ({platform.machine()}, CPython {platform.python_version()}), onnxruntime "
        f"{onnxruntime.__version__} (the onnxruntime-gpu wheel; providers asked: {', '.join(DEFAULT_PROVIDERS)}), "
        f"{args.threads} ONNX Runtime thread(s), {args.repeat} runs after a warm-up. Each time is pre-processing + "
        "inference + post-processing on a 640-px sRGB copy, as in a request's analysis.",
        "",
        "| model | providers used | load ms | image | input | median ms | p90 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, cls, file, run in (("open_nsfw", NsfwModel, "open-nsfw.onnx", lambda m, a: m.score(a)),
                                  ("CenterFace", FaceModel, "centerface.onnx", lambda m, a: m.detect(a))):
        start = time.perf_counter()
        model = cls.load(args.models / file, providers=DEFAULT_PROVIDERS, threads=args.threads)
        load_ms = (time.perf_counter() - start) * 1000
        for name, array in images.items():
            median, p90 = timings_ms(lambda model=model, array=array, run=run: run(model, array), args.repeat)
            lines.append(f"| {label} | {', '.join(model.providers)} | {load_ms:.0f} | {name} | "
                         f"{array.shape[1]}×{array.shape[0]} | {median:.1f} | {p90:.1f} |")
    publish("\n".join(lines) + "\n", ROOT / "bench" / "results.md", not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
