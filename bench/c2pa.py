"""Cost of C2PA Content Credentials (``python -m bench.c2pa``): bytes and milliseconds per derivative.

For a 640-px JPEG and WebP derivative of giunchedi-portrait.jpg and flickr-2725x2225.jpg (originals
without a manifest) and of c2pa-signed.jpg (an original whose manifest the derivative carries along):
the derivative's bytes before and after ``DerivativeSigner.sign`` (throwaway ES256 certificates made
here, no time-stamp), the ratio, and the median milliseconds of a signature; then the median
milliseconds of ``read_manifest`` on c2pa-signed.jpg and on a JPEG without a manifest. One thread.
Prints a table and writes it as the ``## C2PA`` section of bench/results.md (``--no-write``: print only).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import c2pa
import pyvips

from bench.sections import publish
from edgeproxy.provenance import DerivativeSigner, derivative_actions, read_manifest
from testkit.c2pa import make_credentials

ROOT = Path(__file__).resolve().parent.parent
ORIGINALS = ("giunchedi-portrait.jpg", "flickr-2725x2225.jpg", "c2pa-signed.jpg")
FORMATS = (("jpeg", "image/jpeg", ".jpg"), ("webp", "image/webp", ".webp"))


def median_ms(function: Callable[[], object], runs: int) -> float:
    """Median wall time of ``function`` over ``runs`` calls after one warm-up, in milliseconds."""
    function()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def rows(corpus: Path, width: int, runs: int) -> list[str]:
    credentials = make_credentials()
    chain, key = credentials.chain, credentials.key
    signer = DerivativeSigner.from_pem(chain, key)
    actions = derivative_actions(resized=True, cropped=False, transcoded=True, parameters={"width": width})
    out = []
    for name in ORIGINALS:
        original = (corpus / name).read_bytes()
        image = pyvips.Image.thumbnail_buffer(original, width).copy_memory()
        for fmt, mime, suffix in FORMATS:
            body = image.write_to_buffer(suffix)

            def sign(body=body, mime=mime, original=original, name=name) -> bytes:
                return signer.sign(body, mime, original=original, original_mime="image/jpeg", original_title=name,
                                   actions=actions)

            signed = sign()
            assert read_manifest(signed, mime)["validation_state"] == "Valid", (name, fmt)
            out.append(f"| {name} | {len(original):,} | {fmt} {image.width}×{image.height} | {len(body):,} | "
                       f"{len(signed):,} | +{len(signed) - len(body):,} | {len(signed) / len(body):.3f} | "
                       f"{median_ms(sign, runs):.2f} |")
    return out


def read_rows(corpus: Path, runs: int) -> list[str]:
    out = []
    for name, what in (("c2pa-signed.jpg", "manifest (Valid)"), ("giunchedi-portrait.jpg", "no manifest")):
        data = (corpus / name).read_bytes()
        out.append(f"| {name} | {len(data):,} | {what} | "
                   f"{median_ms(lambda data=data: read_manifest(data, 'image/jpeg'), runs):.2f} |")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.c2pa", description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path(os.environ.get("EDGEPROXY_CORPUS",
                                                                         ROOT.parent / "shared" / "corpus")))
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results.md")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if not all((args.corpus / name).is_file() for name in ORIGINALS):
        parser.error(f"no corpus with {', '.join(ORIGINALS)} at {args.corpus}")
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = "\n".join([
        "## C2PA (python -m bench.c2pa)",
        "",
        f"Run {now} with `python -m bench.c2pa --runs {args.runs}` on {os.cpu_count()} cores ({platform.machine()}, "
        f"CPython {platform.python_version()}), one thread; c2pa-python {c2pa.__version__} (c2pa-rs "
        f"{c2pa.sdk_version()}), libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}. "
        f"A {args.width}-px derivative (libvips defaults: JPEG Q75, WebP Q75) signed by `DerivativeSigner.sign`: "
        "ES256, a chain of two certificates, no time-stamp, no thumbnails, the original as `parentOf` ingredient, "
        "c2pa.opened + "
        "c2pa.resized + c2pa.transcoded. The c2pa-signed.jpg rows carry that original's manifest store (with its "
        f"thumbnail) into the derivative. Median of {args.runs} after one warm-up, milliseconds.",
        "",
        "| original | original bytes | derivative | bytes | signed bytes | added | ratio | sign ms |",
        "|---|---|---|---|---|---|---|---|",
        *rows(args.corpus, args.width, args.runs),
        "",
        "`read_manifest` (the `/info` summary; c2pa parses and validates, no network):",
        "",
        "| file | bytes | content | read ms |",
        "|---|---|---|---|",
        *read_rows(args.corpus, args.runs),
        "",
    ])
    publish(section, args.output, not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
