"""``python -m bench.storm``: a cold storm of distinct variants, with the optimised tier off and on.

Issue 26's goals for the background tier: the first answer's latency unchanged (within 10 %) when
the optimisation runs in the background, and background work bounded: under a cold storm requests
keep their p99, and the queue drops (and counts) work it cannot do.

The workload: ``--urls`` distinct variants (default 400), every one a CDN miss: the corpus's photos
(MANIFEST.json, tag ``photo``, decodable) × widths 200..1580 px (step 20) × formats JPEG, WebP,
AVIF, without ``q`` (so under the default ``quality_policy = "target"`` each has an optimised
tier), shuffled with ``--seed``; sent once each by ``--clients`` concurrent clients (each takes the
next URL when its answer is in), Accept ``*/*`` (the URL names the format).

Scenarios, each a fresh ``edgeproxy serve`` (one process, default settings but these) in each of
``--rounds`` rounds (default 2; the order alternates, so that drift in a shared machine's speed hits
both alike; latencies are pooled):
- ``off``: ``optimise = "off"``: one answer per variant, the fast encoders, as before issue 26;
- ``background``: ``optimise = "background"`` with a fresh result storage folder: the same first
  answers, and each variant queued for the optimised tier (queue ``optimise_queue``, default 256).

Measured: client-side latency p50 and p99 (ms) and throughput of the storm, errors (non-200),
the server's CPU seconds during the storm; from the proxy's ``/metrics`` at the storm's end:
``edgeproxy_optimise_total`` queued, dropped (the queue was full), done and failed; then, after
waiting up to ``--drain`` seconds for the queue to empty, the optimised variants done and the
background's CPU seconds per variant (the server's CPU after the storm ÷ variants done after it).
The last rows are the ratios background ÷ off of p50, p99 and throughput (goal: within 10 %).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench import report as reporting
from bench.cdn import corpus_photos
from bench.servers import Server, start_edgeproxy
from edgeproxy import __version__
from edgeproxy.url.grammar import parse_options
from edgeproxy.url.signing import FULL_SIZE, sign_path
from edgeproxy.url.spec import build_path
from testkit.net import free_port

KEY = "bench-key"
ORIGIN = "bench"  # the origin name bench.servers.start_edgeproxy gives the image folder
TIMEOUT = 120.0  # seconds per request
WIDTHS = tuple(range(200, 1600, 20))
FORMATS = ("jpeg", "webp", "avif")
OUTCOMES = ("queued", "dropped", "done", "failed")
SCENARIOS = ("off", "background")


@dataclass(frozen=True)
class Storm:
    """One scenario's measurements (latencies in ms, CPU in seconds, counts of variants)."""

    name: str
    latencies: list[float]
    errors: int
    seconds: float
    cpu: float
    at_end: dict[str, float]
    drained: dict[str, float]
    background_cpu: float

    @property
    def done_after(self) -> float:
        return self.drained["done"] - self.at_end["done"]

    def __add__(self, other: Storm) -> Storm:
        """Two rounds of one scenario as one: latencies pooled, counts and seconds summed."""

        def add(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
            return {k: a[k] + b[k] for k in a}

        return Storm(
            self.name,
            self.latencies + other.latencies,
            self.errors + other.errors,
            self.seconds + other.seconds,
            self.cpu + other.cpu,
            add(self.at_end, other.at_end),
            add(self.drained, other.drained),
            self.background_cpu + other.background_cpu,
        )


def workload(photos: Sequence[str], n: int, seed: int) -> list[str]:
    """``n`` distinct signed variant paths (photo × width × format, canonical options), shuffled."""
    variants = [(p, w, f) for p in photos for w in WIDTHS for f in FORMATS]
    random.Random(seed).shuffle(variants)
    if n > len(variants):
        raise ValueError(f"only {len(variants)} distinct variants of {len(photos)} photos")
    return [
        sign_path(build_path(parse_options([f"w:{w}", f"f:{f}"]), ORIGIN, photo), KEY, FULL_SIZE)
        for photo, w, f in variants[:n]
    ]


async def storm(base_url: str, paths: Sequence[str], clients: int) -> tuple[list[float], int]:
    """Send every path once from ``clients`` concurrent clients: (latencies in ms, non-200 answers)."""
    latencies: list[float] = []
    errors = 0
    queue = iter(paths)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT, limits=limits) as client:

        async def worker() -> None:
            nonlocal errors
            for path in queue:
                start = time.perf_counter()
                try:
                    response = await client.get(path, headers={"Accept": "*/*"})
                except httpx.HTTPError:
                    errors += 1
                    continue
                latencies.append((time.perf_counter() - start) * 1000)
                errors += response.status_code != 200

        await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies, errors


def optimise_counts(proxy: Server) -> dict[str, float]:
    """``edgeproxy_optimise_total`` by outcome, from the proxy's ``/metrics``."""
    counts = dict.fromkeys(OUTCOMES, 0.0)
    for family in text_string_to_metric_families(httpx.get(proxy.base + "/metrics", timeout=TIMEOUT).text):
        for sample in family.samples:
            if sample.name == "edgeproxy_optimise_total":
                counts[sample.labels["outcome"]] = sample.value
    return counts


def run_scenario(name: str, corpus: Path, paths: Sequence[str], clients: int, drain: float) -> Storm:
    """A fresh proxy with ``optimise = name``, the storm, the counters, the drain; then stop it."""
    with tempfile.TemporaryDirectory(prefix="edgeproxy-storm-") as folder:
        env = {"EDGEPROXY_OPTIMISE": name, "EDGEPROXY_RESULT_STORAGE": str(Path(folder) / "results")}
        proxy = start_edgeproxy(corpus, free_port(), KEY, env)
        try:
            cpu = proxy.cpu_seconds()
            started = time.monotonic()
            latencies, errors = asyncio.run(storm(proxy.base, paths, clients))
            seconds = time.monotonic() - started
            cpu_end = proxy.cpu_seconds()
            at_end = optimise_counts(proxy)
            deadline = time.monotonic() + drain
            drained = at_end
            while time.monotonic() < deadline:
                drained = optimise_counts(proxy)
                if drained["done"] + drained["failed"] >= drained["queued"]:
                    break
                time.sleep(0.5)
            background = proxy.cpu_seconds() - cpu_end
        finally:
            proxy.stop()
    return Storm(name, latencies, errors, seconds, cpu_end - cpu, at_end, drained, background)


def percentile(values: Sequence[float], p: int) -> float:
    """The ``p``-th percentile (1-99) of ``values`` (linear interpolation); 0 for none."""
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def table(storms: Sequence[Storm]) -> str:
    """The Markdown table: one row per scenario, then the ratios of the last to the first."""
    lines = [
        "| scenario | requests | errors | p50 ms | p99 ms | req/s | CPU s (storm) | queued | dropped | "
        "done at the end | done after it | failed | background CPU s per variant |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in storms:
        per_variant = f"{s.background_cpu / s.done_after:.2f}" if s.done_after else "n/a"
        lines.append(
            f"| {s.name} | {len(s.latencies) + s.errors} | {s.errors} | {percentile(s.latencies, 50):.0f} | "
            f"{percentile(s.latencies, 99):.0f} | {len(s.latencies) / s.seconds:.1f} | {s.cpu:.1f} | "
            f"{s.at_end['queued']:.0f} | {s.at_end['dropped']:.0f} | {s.at_end['done']:.0f} | "
            f"{s.done_after:.0f} | {s.drained['failed']:.0f} | {per_variant} |"
        )
    if len(storms) >= 2:
        first, last = storms[0], storms[-1]

        def ratio(a: float, b: float) -> str:
            return f"{a / b:.2f}" if b else "n/a"

        lines += [
            "",
            f"{last.name} ÷ {first.name}: p50 "
            f"{ratio(percentile(last.latencies, 50), percentile(first.latencies, 50))}, p99 "
            f"{ratio(percentile(last.latencies, 99), percentile(first.latencies, 99))}, throughput "
            f"{ratio(len(last.latencies) / last.seconds, len(first.latencies) / first.seconds)}.",
        ]
    return "\n".join(lines)


def report(storms: Sequence[Storm], n: int, photos: int, clients: int, seed: int, rounds: int, command: str) -> str:
    """The ``## Cold storm`` section of bench/results.md."""
    return "\n".join(
        [
            "## Cold storm: the optimised tier in the background (python -m bench.storm)",
            "",
            f"{reporting.run_line(command)}; edgeproxy {__version__}, one process, default settings but "
            "`optimise`; the load generator on the same machine.",
            f"Workload (`bench/storm.py`): {n} distinct variants (every one a miss) of {photos} corpus photos, "
            f"widths {WIDTHS[0]}–{WIDTHS[-1]} px, JPEG, WebP and AVIF without `q` (a quality target: "
            f'`quality_policy = "target"`), seed {seed}, {clients} concurrent clients, {rounds} rounds (the '
            "scenarios' order alternating; latencies pooled, counts summed). `off`: no optimised "
            "tier; `background`: each variant also queued for it (`optimise_queue` 256; a full queue drops). "
            "Latency: client side. Queue counts: `edgeproxy_optimise_total` at the storm's end, then done after "
            "it (the queue drained); background CPU: the server's CPU after the storm ÷ variants done after it.",
            "",
            table(storms),
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = reporting.parser("bench.storm", __doc__, corpus=True)
    parser.add_argument("--urls", type=int, default=400, help="distinct variants in the storm (default %(default)s)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default %(default)s)")
    parser.add_argument("--seed", type=int, default=20261204, help="workload RNG seed (default %(default)s)")
    parser.add_argument(
        "--drain", type=float, default=300, help="seconds to wait for the queue after the storm (default %(default)s)"
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="rounds, the scenarios' order alternating (default %(default)s)"
    )
    args = parser.parse_args(argv)
    if not (args.corpus / "MANIFEST.json").exists():
        print(f"bench.storm: no corpus at {args.corpus} (MANIFEST.json): skipped", file=sys.stderr)
        return 0
    photos = corpus_photos(args.corpus)
    paths = workload(photos, args.urls, args.seed)
    pooled: dict[str, Storm] = {}
    for round_ in range(args.rounds):
        for name in SCENARIOS if round_ % 2 == 0 else SCENARIOS[::-1]:  # drift in the machine hits both alike
            started = time.monotonic()
            result = run_scenario(name, args.corpus, paths, args.clients, args.drain)
            pooled[name] = pooled[name] + result if name in pooled else result
            print(f"round {round_ + 1} {name}: done in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    command = reporting.command("bench.storm", argv)
    storms = [pooled[name] for name in SCENARIOS]
    section = report(storms, len(paths), len(photos), args.clients, args.seed, args.rounds, command)
    reporting.publish(section, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
