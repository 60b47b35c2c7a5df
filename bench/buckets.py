"""Bytes of ``w:auto`` answers under the old and the new width buckets (``python -m bench.buckets``).

Issue 22: a 665-device-pixel grid slot got the 960 bucket (69 KiB against 43 KiB for a ``srcset``
candidate of the slot's width). For each photo, ``Sec-CH-Width: SLOT`` is sent to ``w:auto`` and to
``w:auto/ar:1:1/fit:cover`` (a square slot) in AVIF and WebP, through a proxy with the buckets used
before issue 22 and one with the defaults (``edgeproxy.http.negotiate.DEFAULT_WIDTH_BUCKETS``), and
the answers' sizes are compared. It also prints each bucket list's worst and mean overshoot (width
served over width asked, widths spread evenly on a log scale over 320..2560). Bytes, not time: one
render per row, on 127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path

from bench import report
from edgeproxy.http.negotiate import DEFAULT_WIDTH_BUCKETS, round_up
from testkit.app import make_client, signed
from testkit.images import decode

#: ``auto_width_buckets`` before issue 22.
OLD_BUCKETS = (160, 320, 480, 640, 960, 1280, 1920, 2560, 3840)
PHOTOS = ("flickr-2725x2225.jpg", "adobe-rgb-icc.jpg", "progressive-2560x1600.jpg", "giunchedi-portrait.jpg")
OPTIONS = ("w:auto/f:avif", "w:auto/f:webp", "w:auto/ar:1:1/fit:cover/f:avif", "w:auto/ar:1:1/fit:cover/f:webp")


def overshoot(
    buckets: tuple[int, ...], low: int = 320, high: int = 2560, steps: int = 10_000
) -> tuple[float, float, float]:
    """(mean, mean of the square, worst) of bucket ÷ width for widths spread evenly on a log scale
    over ``low..high`` device pixels: the width served over the width asked, and the pixels (for a
    fixed aspect ratio)."""
    ratios = [round_up(w, buckets) / w for w in (low * (high / low) ** (i / steps) for i in range(steps + 1))]
    return sum(ratios) / len(ratios), sum(r * r for r in ratios) / len(ratios), max(ratios)


def answers(corpus: Path, buckets: tuple[int, ...], slot: int) -> dict[tuple[str, str], tuple[int, int, int]]:
    """(photo, options) -> (bytes, width, height) of the proxy's answer to ``Sec-CH-Width: slot``."""
    found = {}
    with make_client({"c": str(corpus)}, client_hints=True, auto_width_buckets=list(buckets)) as client:
        for photo in PHOTOS:
            for options in OPTIONS:
                response = client.get(signed(f"/{options}/c/{photo}"), headers={"Sec-CH-Width": str(slot)})
                response.raise_for_status()
                image = decode(response.content)
                found[(photo, options)] = (len(response.content), image.width, image.height)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = report.parser("bench.buckets", __doc__, corpus=True)
    parser.add_argument("--slot", type=int, default=665, help="Sec-CH-Width sent, device pixels (default 665)")
    args = parser.parse_args(argv)
    if not (args.corpus / "MANIFEST.json").is_file():
        parser.error(f"no corpus at {args.corpus}")
    old, new = answers(args.corpus, OLD_BUCKETS, args.slot), answers(args.corpus, DEFAULT_WIDTH_BUCKETS, args.slot)
    rows = []
    for (photo, options), (old_bytes, ow, oh) in old.items():
        new_bytes, nw, nh = new[(photo, options)]
        rows.append(
            f"| {photo} | `{options}` | {old_bytes} ({ow}×{oh}) | {new_bytes} ({nw}×{nh}) "
            f"| {new_bytes / old_bytes:.2f} |"
        )
    for options in OPTIONS:
        before = sum(old[(p, options)][0] for p in PHOTOS)
        after = sum(new[(p, options)][0] for p in PHOTOS)
        rows.append(f"| all {len(PHOTOS)} | `{options}` | {before} | {after} | {after / before:.2f} |")
    stats = []
    for name, buckets in (("before issue 22", OLD_BUCKETS), ("default", DEFAULT_WIDTH_BUCKETS)):
        mean, pixels, worst = overshoot(buckets)
        stats.append(
            f"| {name} | {len(buckets)} | {mean - 1:+.1%} ({pixels - 1:+.1%}) | {worst - 1:+.1%} | "
            f"{len([b for b in buckets if 320 <= b <= 2560])} |"
        )
    section = "\n".join(
        [
            "## Width buckets (python -m bench.buckets)",
            "",
            f"{report.run_line(report.command('bench.buckets', argv))}. `Sec-CH-Width: {args.slot}`, "
            "bytes of each answer (pixels), old buckets against the default ones.",
            "",
            "| original | options | old buckets | default buckets | default / old |",
            "|---|---|---|---|---|",
            *rows,
            "",
            "| buckets | count | mean overshoot 320..2560: width (pixels) | worst | in 320..2560 |",
            "|---|---|---|---|---|",
            *stats,
            "",
        ]
    )
    report.publish(section, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
