"""Cost of C2PA Content Credentials (``python -m bench.c2pa``): bytes and milliseconds per derivative.

For a 640-px JPEG and WebP derivative of giunchedi-portrait.jpg and flickr-2725x2225.jpg (originals
without a manifest), of c2pa-signed.jpg (an original with a C2PA 1.x manifest: claim thumbnail and
CreativeWork) and of a camera -> editor chain made here from giunchedi-portrait.jpg
(``testkit.c2pa.sign_original``: two manifests, each with a 1024-px claim thumbnail and a
``stds.exif`` assertion, the editor's with an ingredient thumbnail too), whose stores the derivative
carries redacted: the derivative's bytes before and after ``DerivativeSigner.sign`` (throwaway ES256
certificates made here, no time-stamp), the ratio, and the median milliseconds of a signature
(``redactions`` included); then the median milliseconds of ``read_manifest`` and of ``redactions`` on
the originals with a manifest and on a JPEG without one. One thread. Prints a table and writes it as
the ``## C2PA`` section of bench/results.md with ``--write`` (default: print only).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import c2pa
import pyvips

from bench import report
from edgeproxy.provenance.context import C2paContexts
from edgeproxy.provenance.read import read_manifest
from edgeproxy.provenance.redact import redactions
from edgeproxy.provenance.sign import DerivativeSigner, derivative_actions
from testkit.c2pa import make_credentials, sign_original

ORIGINALS = ("giunchedi-portrait.jpg", "flickr-2725x2225.jpg", "c2pa-signed.jpg")
CHAIN = "camera -> editor chain"  # made from giunchedi-portrait.jpg by :func:`originals`
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


def originals(corpus: Path) -> dict[str, bytes]:
    """The corpus originals, and the camera -> editor chain signed here (see the module docstring)."""
    out = {name: (corpus / name).read_bytes() for name in ORIGINALS}
    credentials = make_credentials()
    exif = {
        "@context": {"exif": "http://ns.adobe.com/exif/1.0/"},
        "exif:GPSLatitude": "39,21.102N",
        "exif:BodySerialNumber": "4711",
    }
    camera = sign_original(
        out["giunchedi-portrait.jpg"],
        "image/jpeg",
        credentials,
        title="camera.jpg",
        assertions=[{"label": "stds.exif", "data": exif}],
    )
    out[CHAIN] = sign_original(
        camera,
        "image/jpeg",
        credentials,
        title="editor.jpg",
        parent=camera,
        assertions=[{"label": "stds.exif", "data": exif}],
    )
    return out


def rows(sources: dict[str, bytes], width: int, runs: int, contexts: C2paContexts) -> list[str]:
    credentials = make_credentials()
    chain, key = credentials.chain, credentials.key
    signer = DerivativeSigner.from_pem(chain, key, contexts=contexts)
    actions = derivative_actions(resized=True, cropped=False, transcoded=True, parameters={"width": width})
    out = []
    for name, original in sources.items():
        image = pyvips.Image.thumbnail_buffer(original, width).copy_memory()
        for fmt, mime, suffix in FORMATS:
            body = image.write_to_buffer(suffix, strip=True)

            def sign(body=body, mime=mime, original=original, name=name) -> bytes:
                return signer.sign(
                    body, mime, original=original, original_mime="image/jpeg", original_title=name, actions=actions
                )

            signed = sign()
            assert read_manifest(signed, mime, contexts)["validation_state"] == "Valid", (name, fmt)
            out.append(
                f"| {name} | {len(original):,} | {fmt} {image.width}×{image.height} | {len(body):,} | "
                f"{len(signed):,} | +{len(signed) - len(body):,} | {len(signed) / len(body):.3f} | "
                f"{median_ms(sign, runs):.2f} |"
            )
    return out


def read_rows(sources: dict[str, bytes], runs: int, contexts: C2paContexts) -> list[str]:
    out = []
    for name, what in (
        ("c2pa-signed.jpg", "manifest (Valid)"),
        (CHAIN, "2 manifests (Valid)"),
        ("giunchedi-portrait.jpg", "no manifest"),
    ):
        data = sources[name]
        read = median_ms(lambda data=data: read_manifest(data, "image/jpeg", contexts), runs)
        listed = median_ms(lambda data=data: redactions(data, "image/jpeg", contexts), runs)
        out.append(f"| {name} | {len(data):,} | {what} | {read:.2f} | {listed:.2f} |")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = report.parser("bench.c2pa", __doc__, corpus=True)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    if not all((args.corpus / name).is_file() for name in ORIGINALS):
        parser.error(f"no corpus with {', '.join(ORIGINALS)} at {args.corpus}")
    sources = originals(args.corpus)
    contexts = C2paContexts()  # as the app builds them at start-up
    section = "\n".join(
        [
            "## C2PA (python -m bench.c2pa)",
            "",
            f"{report.run_line(report.command('bench.c2pa', argv))}, one thread; c2pa-python {c2pa.__version__} "
            f"(c2pa-rs {c2pa.sdk_version()}). "
            f"A {args.width}-px derivative (libvips defaults: JPEG Q75, WebP Q75) signed by `DerivativeSigner.sign`: "
            "ES256, a chain of two certificates, no time-stamp, no thumbnails, the original as `parentOf` ingredient, "
            "c2pa.opened + c2pa.redacted (one per redacted assertion) + c2pa.resized + c2pa.transcoded. The "
            "c2pa-signed.jpg and chain rows carry that original's manifest store into the derivative, redacted: "
            "its thumbnails, EXIF and every other assertion but actions, hashes and ingredients removed. The chain is "
            'giunchedi-portrait.jpg signed by a "camera" then an "editor" (`testkit.c2pa.sign_original`: '
            f"1024-px claim thumbnails, `stds.exif`). Median of {args.runs} after one warm-up, milliseconds.",
            "",
            "| original | original bytes | derivative | bytes | signed bytes | added | ratio | sign ms |",
            "|---|---|---|---|---|---|---|---|",
            *rows(sources, args.width, args.runs, contexts),
            "",
            "`read_manifest` (the `/info` summary; c2pa parses and validates, no network) and `redactions` (what "
            "`sign` removes from the original's store; part of each sign ms above):",
            "",
            "| file | bytes | content | read ms | redactions ms |",
            "|---|---|---|---|---|",
            *read_rows(sources, args.runs, contexts),
            "",
        ]
    )
    report.publish(section, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
