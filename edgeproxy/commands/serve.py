"""``edgeproxy serve`` and ``edgeproxy check-config``: the settings loaded and checked, the proxy run under uvicorn."""

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


def serve(args: argparse.Namespace) -> int:
    """Run the proxy under uvicorn with ``args``' settings (one process, or ``--workers N`` with the settings
    handed over as JSON); print an example signed URL. Returns the exit status: 0, or 2 on bad settings."""
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


def check_config(args: argparse.Namespace) -> int:
    """Validate ``args.file`` with the same model (and, unless ``--no-env``, the same environment) as
    ``serve``. A signing key that neither the file nor the environment gives is a warning, not an
    error: deployments give it through ``EDGEPROXY_SIGNING_KEY`` (a Kubernetes Secret, say)."""
    import tomllib

    from edgeproxy.settings import SettingsError, load_settings
    from edgeproxy.settings_env import env_allow_unsigned, env_signing_key
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
