"""A step that reads out of order: the resized image computed into memory, or a random-access decode?

    python -m bench.access [--repeat 5] [--write]

For ``rot:90`` (it reads its input column by column) on JPEG and PNG originals of 2725 × 2225 (the
corpus' flickr photo) and 6000 × 4000 (the same, enlarged), at full size, half size and 600 px wide:

- ``in memory``: what edgeproxy does (``pipeline.materialise``): the sequential shrink-on-load
  decode, the resized image computed into memory (``vips.in_memory``), then rotated and encoded;
- ``random``: the original decoded for random access (``access="random"``: libvips decodes it whole
  into memory first; JPEG still at its DCT shrink), resized, rotated and encoded.

Prints the best of ``--repeat`` milliseconds (one thread, ``VIPS_CONCURRENCY`` 1) and the peak of
libvips' tracked pixel memory, each variant measured in a fresh process; writes the table as the
``## Access modes`` section of bench/results.md with ``--write`` (default: print only).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import time

import pyvips

from bench import report
from edgeproxy.render import encoding, vips
from edgeproxy.render.geometry import jpeg_shrink

CORPUS = report.default_corpus()
OPTIONS = encoding.EncodeOptions(
    avif_effort=0, webp_effort=2, jpeg_progressive=False, png_compression=6, jxl_effort=4, threads=1
)


def _originals() -> dict[str, bytes]:
    photo = pyvips.Image.new_from_file(str(CORPUS / "flickr-2725x2225.jpg"))
    big = photo.resize(6000 / photo.width, vscale=4000 / photo.height)
    return {
        "2725x2225 JPEG": photo.jpegsave_buffer(Q=85),
        "2725x2225 PNG": photo.pngsave_buffer(compression=1),
        "6000x4000 JPEG": big.jpegsave_buffer(Q=85),
    }


def _in_memory(data: bytes, fmt: str, size: tuple[int, int], out: tuple[int, int]) -> bytes:
    shrink = jpeg_shrink(*size, *out) if fmt == "JPEG" else 0
    image = vips.thumbnail(data, *out, animated=False, colour_manage=False, jpeg_shrink=shrink)
    return encoding.encode(vips.rotate_flip(vips.in_memory(image), 90, ""), "jpeg", 80, True, OPTIONS)


def _random(data: bytes, fmt: str, size: tuple[int, int], out: tuple[int, int]) -> bytes:
    if fmt == "JPEG":
        image = pyvips.Image.jpegload_buffer(data, shrink=jpeg_shrink(*size, *out), access="random")
    else:
        image = pyvips.Image.new_from_buffer(data, "", access="random")
    image = image.thumbnail_image(out[0], height=out[1], size="force")
    return encoding.encode(vips.rotate_flip(image, 90, ""), "jpeg", 80, True, OPTIONS)


VARIANTS = {"in memory": _in_memory, "random": _random}


def _measure(args: tuple[str, str, bytes, tuple[int, int], tuple[int, int], int]) -> tuple[float, float]:
    """(best ms, peak tracked MB) of one variant, in this (fresh) process."""
    variant, fmt, data, size, out, repeat = args
    vips.configure(1)
    highwater = ctypes.CDLL(__import__("_libvips").__file__).vips_tracked_get_mem_highwater
    highwater.restype = ctypes.c_size_t
    function = VARIANTS[variant]
    times = []
    for _ in range(repeat + 1):
        start = time.perf_counter()
        function(data, fmt, size, out)
        times.append(time.perf_counter() - start)
    return min(times[1:]) * 1000, highwater() / 1e6


def rows(repeat: int) -> list[str]:
    out = []
    context = multiprocessing.get_context("spawn")
    for name, data in _originals().items():
        size = tuple(int(v) for v in name.split()[0].split("x"))
        fmt = name.split()[1]
        for label, target in (
            ("full", size),
            ("half", (size[0] // 2, size[1] // 2)),
            ("600 px", (600, round(600 * size[1] / size[0]))),
        ):
            results = {}
            for variant in VARIANTS:
                with context.Pool(1) as pool:
                    results[variant] = pool.map(_measure, [(variant, fmt, data, size, target, repeat)])[0]
            (mem_ms, mem_mb), (rnd_ms, rnd_mb) = results["in memory"], results["random"]
            out.append(
                f"| {name} | {label} {target[0]}×{target[1]} | {mem_ms:.0f} | {rnd_ms:.0f} | "
                f"{mem_ms / rnd_ms:.2f} | {mem_mb:.0f} | {rnd_mb:.0f} |"
            )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = report.parser("bench.access", __doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    lines = rows(args.repeat)
    section = "\n".join(
        [
            "## Access modes (python -m bench.access)",
            "",
            f"{report.run_line(report.command('bench.access', argv))}, one thread: `rot:90` then JPEG q80; best of "
            f"{args.repeat} after a warm-up, ms; peak libvips tracked memory, MB, each in a fresh process.",
            "",
            "| original | output | in memory ms | random ms | ratio | in memory MB | random MB |",
            "|---|---|---|---|---|---|---|",
            *lines,
            "",
        ]
    )
    report.publish(section, args)


if __name__ == "__main__":
    main()
