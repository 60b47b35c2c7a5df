"""How soon a changed manifest is served (manifest reload latency), and what a reload costs.

    python -m bench.manifest [--ids 10000] [--ttl 1.0] [--runs 10] [--write]

Starts ``edgeproxy serve`` (one process) with a manifest origin ``catalog`` of ``--ids`` ids in a
local file, ``manifest_ttl`` = ``--ttl``. Each run points ``SKU-0`` at the other of two flat images
(red, blue), writes the manifest as a deployment would (a new file renamed over the old one), and
polls a tiny derivative of ``SKU-0`` every 5 ms until the new colour is served: the reload latency,
from the rename to the first answer with the new image; then waits a random fraction of ``ttl``
(seeded), so the changes land at every phase of the checks. The proxy checks the file's stamp every
``manifest_ttl`` seconds, so the latency is up to ``ttl`` (on average half of it) plus the reload
itself (read, parse and swap); the table prints both, and the parse of the manifest alone
(``edgeproxy.manifest.parse``, in this process). Writes the table as the ``## Manifest reload``
section of bench/results.md with ``--write``.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench import report
from bench.servers import Server
from edgeproxy import manifest
from edgeproxy.url.signing import sign_path
from testkit.images import decode, encode, flat
from testkit.net import free_port

KEY = "bench-manifest"
POLL = 0.005  # seconds between requests while waiting for the new image


def catalogue(ids: int, first: str) -> dict[str, dict[str, object]]:
    """``ids`` entries, ``SKU-0`` pointing at ``first``, the others at red.png, each with the
    optional fields a catalogue has (sha256, alt, size, focal)."""
    entries: dict[str, dict[str, object]] = {
        f"SKU-{i}": {
            "origin": "shots",
            "key": "red.png",
            "sha256": f"{i:064x}",
            "alt": f"Product {i}, front",
            "width": 40,
            "height": 20,
            "focal": [0.5, 0.4],
        }
        for i in range(ids)
    }
    entries["SKU-0"]["key"] = first
    return entries


def replace(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file beside ``path`` and rename it over ``path`` (atomic)."""
    temporary = path.with_suffix(".new")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def is_blue(body: bytes) -> bool:
    r, _g, b = decode(body)(1, 1)[:3]
    return b > r


def main(argv: list[str] | None = None) -> None:
    parser = report.parser("bench.manifest", __doc__)
    parser.add_argument("--ids", type=int, default=10_000, help="ids in the manifest")
    parser.add_argument("--ttl", type=float, default=1.0, help="manifest_ttl, seconds")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as root:
        folder = Path(root) / "shots"
        folder.mkdir()
        (folder / "red.png").write_bytes(encode(flat(40, 20, (220, 20, 20)), "png"))
        (folder / "blue.png").write_bytes(encode(flat(40, 20, (20, 20, 220)), "png"))
        path = Path(root) / "catalog.json"
        documents = {colour: json.dumps(catalogue(args.ids, f"{colour}.png")).encode() for colour in ("red", "blue")}
        replace(path, documents["red"])
        started = time.perf_counter()
        manifest.parse(documents["red"], max_bytes=1 << 30, origins={"shots"})
        parse_ms = (time.perf_counter() - started) * 1000
        port = free_port()
        env = {
            "EDGEPROXY_MANIFEST_ORIGINS": json.dumps({"catalog": str(path)}),
            "EDGEPROXY_MANIFEST_TTL": str(args.ttl),
            "EDGEPROXY_ACCESS_LOG": "false",
        }
        argv_serve = [sys.executable, "-m", "edgeproxy", "serve", "--port", str(port), "--signing-key", KEY]
        server = Server("edgeproxy", [*argv_serve, "--origin", f"shots={folder}"], port, env)
        url = sign_path("/w:8/f:png/catalog/SKU-0", KEY)
        latencies: list[float] = []
        try:
            server.wait_ready("/healthz")
            with httpx.Client(base_url=server.base, timeout=30) as client:
                blue = is_blue(client.get(url).content)
                phases = random.Random(25)
                for _run in range(args.runs):
                    blue = not blue
                    replace(path, documents["blue" if blue else "red"])
                    written = time.monotonic()
                    while is_blue(client.get(url).content) != blue:
                        if time.monotonic() - written > args.ttl + 60:
                            raise SystemExit("the changed manifest was not served within ttl + 60 s")
                        time.sleep(POLL)
                    latencies.append(time.monotonic() - written)
                    time.sleep(phases.uniform(0, args.ttl))  # the next change lands at a random phase of the checks
        finally:
            server.stop()
    ordered = sorted(latencies)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    median = statistics.median(ordered)
    section = "\n".join(
        [
            "## Manifest reload (python -m bench.manifest)",
            "",
            f"{report.run_line(report.command('bench.manifest', argv))}: a manifest origin of {args.ids} ids "
            f"in a local file ({len(documents['red']) / 2**20:.1f} MiB), `manifest_ttl` {args.ttl:g} s; each run "
            "renames a changed manifest over it and polls a derivative of the changed id every 5 ms until "
            "the new image is served.",
            "",
            "| runs | median s | p90 s | max s | median / ttl | parse of the manifest alone, ms |",
            "|---|---|---|---|---|---|",
            f"| {len(ordered)} | {median:.3f} | {p90:.3f} | {ordered[-1]:.3f} | {median / args.ttl:.2f} "
            f"| {parse_ms:.0f} |",
            "",
            "The latency is the wait for the next check (uniform in 0..ttl: half of it on average) plus the "
            "reload (read, parse in a worker thread, swap); at the default `manifest_ttl` of 30 s a change "
            "is served within 30 s plus the reload. `POST /manifest/NAME` serves its change at once.",
            "",
        ]
    )
    report.publish(section, args)


if __name__ == "__main__":
    main()
