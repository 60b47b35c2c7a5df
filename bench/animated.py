"""Animated WebP against AVIF image sequences on the corpus's animations (``python -m bench.animated``).

For each corpus animation (GIF and WebP of more than one frame): its frames decoded into libvips
memory, then encoded by the proxy's own encoder (``encoding.encode``) as animated WebP (libvips,
``quality_webp`` 75, ``webp_effort``) and as an AVIF image sequence (Pillow's libavif,
``quality_avif`` 60) at ``avif_effort`` 0 (the default: libavif speed 9) and 3 (speed 6); bytes and
encode time (one thread, best of ``--repeat`` after a warm-up). Why ``f:auto`` answers animated
WebP for an animation while ``f:avif`` answers the sequence (docs/formats.md, "Animations"). Prints
a table; with ``--write``, also puts it into bench/results.md as the ``## Animations`` section.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyvips

from bench import report
from edgeproxy.compose import encoder_options
from edgeproxy.render import encoding, pillow, vips
from edgeproxy.settings import Settings

FILES = ("animated.gif", "dancing-banana.gif", "full-colour.gif", "gif-dispose-previous.gif", "animated-loop-3.webp")


def rows(corpus: Path, repeat: int) -> list[str]:
    """One Markdown table row per animation found in ``corpus``."""
    settings = Settings(allow_unsigned=True)  # only its encoder defaults are read
    base = dataclasses.replace(encoder_options(settings), threads=1)
    out = []
    for name in FILES:
        path = corpus / name
        if not path.is_file():
            continue
        image = pyvips.Image.new_from_file(str(path), n=-1).copy_memory()
        height = vips.page_height(image)
        cells = [f"`{name}`", f"{image.width} × {height}", str(image.height // height)]
        for fmt, quality, effort in (("webp", settings.quality_webp, None), ("avif", 60, 0), ("avif", 60, 3)):
            options = base if effort is None else dataclasses.replace(base, avif_effort=effort)
            body = encoding.encode(image, fmt, quality, True, options)
            ms = report.best_ms(lambda: encoding.encode(image, fmt, quality, True, options), repeat)  # noqa: B023
            cells.append(f"{len(body):,} B, {ms:.0f} ms")
        out.append("| " + " | ".join(cells) + " |")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = report.parser("bench.animated", __doc__, corpus=True)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    vips.configure(1)
    section = "\n".join(
        [
            "## Animations (python -m bench.animated)",
            "",
            f"{report.run_line(report.command('bench.animated', argv))}; {pillow.versions()}. "
            f"`encoding.encode` of the decoded frames: bytes, best of {args.repeat} encode times after one warm-up.",
            "",
            "| original | size | frames | animated WebP (q 75) | AVIF sequence, effort 0 (speed 9) "
            "| AVIF sequence, effort 3 (speed 6) |",
            "|---|---|---|---|---|---|",
            *rows(args.corpus, args.repeat),
            "",
        ]
    )
    report.publish(section, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
