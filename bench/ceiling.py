"""The ceiling: the same decode-resize-encode done directly, no HTTP, no server.

``threads`` threads loop over the workload's files for ``seconds``, each calling the same libvips
operations edgeproxy's pipeline calls for that URL: its decode-at-size, ``edgeproxy.render.load.load_at_size``
(JPEG DCT shrink-on-load + Lanczos, AVIF through libavif, ``thumbnail_buffer`` for the rest), then
the encoder with the same settings, with libvips' concurrency set as edgeproxy sets it. What
edgeproxy adds on top (HTTP, parsing, signing, negotiation, the pipeline's Python) is the gap.
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

from bench.workload import Workload
from edgeproxy.compose import encoder_options
from edgeproxy.render import encoding, load, source, vips
from edgeproxy.settings import Settings


def render(data: bytes, info: source.SourceInfo, workload: Workload, options: encoding.EncodeOptions) -> bytes:
    w, h = workload.box
    scale = min(w / info.width, h / info.height) if h else w / info.width
    width, height = max(1, round(info.width * scale)), max(1, round(info.height * scale))
    image = load.load_at_size(data, info, width, height).image  # the pipeline's own decode-at-size
    return encoding.encode(image, workload.out_format, workload.quality or 100, True, options)


def run(workload: Workload, folder: Path, threads: int, seconds: float, settings: Settings) -> dict:
    """Images per second over ``seconds`` with ``threads`` threads; also CPU seconds per image."""
    vips.configure(settings.vips_concurrency)
    options = encoder_options(settings)
    inputs = []
    for f in workload.files:
        data = (folder / f).read_bytes()
        inputs.append((data, source.probe(data)))  # header reads happen once, outside the loop
    counts = [0] * threads
    stop = time.monotonic() + seconds

    def loop(index: int) -> None:
        for data, info in itertools.cycle(inputs):
            if time.monotonic() >= stop:
                return
            render(data, info, workload, options)
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
