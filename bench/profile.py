"""``python -m bench.profile``: CPU milliseconds per stage (decode, resize, encode) for each workload,
edgeproxy's libvips operations next to the Pillow operations thumbor runs for the same URL.

One thread, one image at a time, libvips evaluated stage by stage (``copy_memory`` after decode and
after resize), so the columns add up to the work of one request. It shows where the time goes and
which stages the two servers share (the same libjpeg-turbo, libavif/dav1d and zlib underneath).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

import pyvips
from PIL import Image

from bench import report
from bench.workload import Workload, prepare
from edgeproxy.compose import encoder_options
from edgeproxy.render import encoding, source, vips
from edgeproxy.render.geometry import jpeg_shrink
from edgeproxy.settings import load_settings

PIL_SAVE = {
    "jpeg": ("JPEG", {"quality": 80, "progressive": True}),
    "png": ("PNG", {"compress_level": 6}),
    "webp": ("WEBP", {"quality": 75}),
    "avif": ("AVIF", {"quality": 65, "speed": 10}),
}


def cpu_ms(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    fn()
    start = time.process_time()
    for _ in range(repeat):
        result = fn()
    return (time.process_time() - start) / repeat * 1000, result


def edgeproxy_stages(data: bytes, w: Workload, repeat: int) -> list[float]:
    info = source.probe(data)
    bw, bh = w.box
    scale = min(bw / info.width, bh / info.height) if bh else bw / info.width
    width, height = round(info.width * scale), round(info.height * scale)
    if info.pillow:
        decode_ms, decoded = cpu_ms(lambda: vips.load_pillow(data, info).copy_memory(), repeat)
    elif info.format == "jpeg":
        shrink = jpeg_shrink(info.width, info.height, width, height)
        decode_ms, decoded = cpu_ms(lambda: pyvips.Image.jpegload_buffer(data, shrink=shrink).copy_memory(), repeat)
    elif info.format == "webp":  # libwebp's scaled decode, as thumbnail_buffer does
        decode_ms, decoded = cpu_ms(lambda: pyvips.Image.webpload_buffer(data, scale=scale).copy_memory(), repeat)
    else:
        decode_ms, decoded = cpu_ms(lambda: pyvips.Image.new_from_buffer(data, "").copy_memory(), repeat)
    resize_ms, resized = cpu_ms(lambda: vips.resize(decoded, width, height, colour_manage=False).copy_memory(), repeat)
    options = encoder_options(load_settings(allow_unsigned=True, jpeg_progressive=True))
    encode_ms, _ = cpu_ms(lambda: encoding.encode(resized, w.out_format, w.quality or 100, True, options), repeat)
    return [decode_ms, resize_ms, encode_ms]


def pillow_stages(data: bytes, w: Workload, repeat: int) -> list[float]:
    bw, bh = w.box

    def decode() -> Image.Image:
        image = Image.open(io.BytesIO(data))
        image.draft("RGB", (bw, bh or 100_000))
        image.load()
        return image

    decode_ms, decoded = cpu_ms(decode, repeat)
    scale = min(bw / decoded.width, bh / decoded.height) if bh else bw / decoded.width
    size = (round(decoded.width * scale), round(decoded.height * scale))
    resize_ms, resized = cpu_ms(lambda: decoded.resize(size, Image.Resampling.LANCZOS), repeat)
    fmt, options = PIL_SAVE[w.out_format]
    encode_ms, _ = cpu_ms(lambda: resized.save(io.BytesIO(), fmt, **options), repeat)
    return [decode_ms, resize_ms, encode_ms]


def main(argv: list[str] | None = None) -> int:
    parser = report.parser("bench.profile", __doc__, corpus=True, output=False)  # prints its table only
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/edgeproxy-bench"))
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args(argv)
    vips.configure(1)
    folder = args.workdir / "images"
    print("| workload | libvips decode | resize | encode | total | Pillow decode | resize | encode | total |")
    print("|---|---|---|---|---|---|---|---|---|")
    for w in prepare(args.corpus, folder):
        ours, theirs = [0.0] * 3, [0.0] * 3
        for file in w.files:
            data = (folder / file).read_bytes()
            ours = [a + b / len(w.files) for a, b in zip(ours, edgeproxy_stages(data, w, args.repeat), strict=True)]
            theirs = [a + b / len(w.files) for a, b in zip(theirs, pillow_stages(data, w, args.repeat), strict=True)]
        cells = [f"{v:.1f}" for v in [*ours, sum(ours), *theirs, sum(theirs)]]
        print(f"| {w.name} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
