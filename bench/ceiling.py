"""The ceiling: the same decode-resize-encode done directly with pyvips, no HTTP, no Python server.

``threads`` threads loop over the workload's files for ``seconds``, each doing what edgeproxy's
pipeline does for that URL (``thumbnail_buffer`` with shrink-on-load and sRGB export, then the
encoder with the same settings), with libvips' own concurrency set as edgeproxy sets it.
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pyvips

from bench.workload import Workload


def encode(image: pyvips.Image, fmt: str, quality: int | None, settings: dict) -> bytes:
    if fmt == "jpeg":
        return image.jpegsave_buffer(Q=quality, interlace=settings["jpeg_progressive"], optimize_coding=True,
                                     keep="none")
    if fmt == "webp":
        return image.webpsave_buffer(Q=quality, effort=settings["webp_effort"], keep="none")
    if fmt == "avif":
        return image.heifsave_buffer(Q=quality, effort=settings["avif_effort"], compression="av1", bitdepth=8,
                                     keep="none")
    return image.pngsave_buffer(compression=settings["png_compression"], keep="none")


def run(workload: Workload, folder: Path, threads: int, seconds: float, settings: dict) -> dict:
    """Images per second over ``seconds`` with ``threads`` threads; also CPU seconds per image."""
    pyvips.concurrency_set(settings["vips_concurrency"])
    pyvips.cache_set_max(0)
    data = [(folder / f).read_bytes() for f in workload.files]
    w, h = workload.box
    counts = [0] * threads
    stop = time.monotonic() + seconds

    def loop(index: int) -> None:
        for blob in itertools.cycle(data):
            if time.monotonic() >= stop:
                return
            image = pyvips.Image.thumbnail_buffer(blob, w, height=h or 100_000, size="down",
                                                  output_profile="srgb", option_string="fail_on=truncated")
            encode(image, workload.out_format, workload.quality, settings)
            counts[index] += 1

    cpu0 = time.process_time()
    start = time.monotonic()
    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    elapsed = time.monotonic() - start
    total = sum(counts)
    return {"rps": total / elapsed, "requests": total, "cpu_per_request": (time.process_time() - cpu0) / max(total, 1)}
