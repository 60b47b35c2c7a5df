"""``python -m bench.storm_isolation``: a storm that arrives while optimisations are already running,
with the background in the server's threads and in worker processes (``optimise_isolation``, issue 26).

The idle gate (``service.optimise``) keeps a new optimisation from starting while requests render,
but one already running goes on: in ``thread`` mode its libvips threads are the server's, as strong
as the requests'; in ``process`` mode the whole worker is at nice 19. This measures what that buys.

Each scenario is a fresh ``edgeproxy serve`` (``optimise = "background"``, a fresh result storage,
``optimise_isolation`` the scenario's), then:

1. warm-up: one optimisation, waited for (so that a worker process is already running in ``process``
   mode: its start is not measured; ``thread`` mode warms up alike);
2. ``--queue`` (default 20) AVIF optimisations queued (``q:auto``, widths 1000 px and up, the corpus's
   photos), each by one request answered with the fast tier; then ``--settle`` seconds (default 1),
   so that the first has started;
3. the storm: ``--urls`` (default 150) distinct JPEG and WebP variants with a fixed quality (``q:80``:
   no optimised tier of their own, so the storm adds nothing to the queue), from ``--clients``
   concurrent clients.

``--rounds`` rounds (the order alternating, latencies pooled). Printed: the storm's client-side p50
and p99 (ms), errors, the background's ``edgeproxy_optimise_total`` done, dropped and failed at the
storm's end, the worker's resident memory in ``process`` mode (the server's process tree minus the
server), and the ratios process ÷ thread of p50 and p99.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from bench import report as reporting
from bench.cdn import corpus_photos
from bench.servers import Server, start_edgeproxy
from bench.storm import KEY, ORIGIN, TIMEOUT, optimise_counts, percentile, storm
from edgeproxy import __version__
from edgeproxy.url.grammar import parse_options
from edgeproxy.url.signing import FULL_SIZE, sign_path
from edgeproxy.url.spec import build_path
from testkit.net import free_port

SCENARIOS = ("thread", "process")


@dataclass(frozen=True)
class Round:
    """One scenario's storm: latencies (ms), errors, background counts at its end, worker RSS (bytes)."""

    name: str
    latencies: list[float]
    errors: int
    counts: dict[str, float]
    worker_rss: int


def path(photo: str, options: list[str]) -> str:
    return sign_path(build_path(parse_options(options), ORIGIN, photo), KEY, FULL_SIZE)


def workloads(photos: Sequence[str], queued: int, urls: int, seed: int) -> tuple[str, list[str], list[str]]:
    """(the warm-up path, ``queued`` AVIF q:auto paths, ``urls`` storm paths with a fixed quality), distinct."""
    rng = random.Random(seed)
    big = [(p, w) for p in photos for w in range(1000, 1600, 20)]
    rng.shuffle(big)
    small = [(p, w, f) for p in photos for w in range(200, 1000, 20) for f in ("jpeg", "webp")]
    rng.shuffle(small)
    warm = path(big[0][0], ["w:200", "q:auto", "f:avif"])
    background = [path(p, [f"w:{w}", "q:auto", "f:avif"]) for p, w in big[1 : queued + 1]]
    return warm, background, [path(p, [f"w:{w}", "q:80", f"f:{f}"]) for p, w, f in small[:urls]]


def worker_rss(proxy: Server) -> int:
    """Resident bytes of the server's child processes (its optimise workers)."""
    try:
        return sum(c.memory_info().rss for c in psutil.Process(proxy.proc.pid).children(recursive=True))
    except psutil.Error:
        return 0


def run(
    name: str, corpus: Path, warm: str, queued: Sequence[str], paths: Sequence[str], clients: int, settle: float
) -> Round:
    """A fresh proxy with ``optimise_isolation = name``; warm-up, queue, storm; then stop it."""
    with tempfile.TemporaryDirectory(prefix="edgeproxy-isolation-") as folder:
        env = {
            "EDGEPROXY_OPTIMISE": "background",
            "EDGEPROXY_OPTIMISE_ISOLATION": name,
            "EDGEPROXY_RESULT_STORAGE": str(Path(folder) / "results"),
        }
        proxy = start_edgeproxy(corpus, free_port(), KEY, env)
        try:
            with httpx.Client(base_url=proxy.base, timeout=TIMEOUT) as client:
                client.get(warm)
                deadline = time.monotonic() + 120
                while optimise_counts(proxy)["done"] < 1 and time.monotonic() < deadline:
                    time.sleep(0.2)
                for p in queued:
                    client.get(p)
            time.sleep(settle)
            rss = worker_rss(proxy)
            latencies, errors = asyncio.run(storm(proxy.base, paths, clients))
            counts = optimise_counts(proxy)
        finally:
            proxy.stop()
    counts["done"] -= 1  # the warm-up's
    return Round(name, latencies, errors, counts, rss)


def table(pooled: dict[str, Round], rounds: int) -> str:
    lines = [
        "| isolation | requests | errors | p50 ms | p99 ms | background done | dropped | failed | worker RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in SCENARIOS:
        r = pooled[name]
        lines.append(
            f"| {name} | {len(r.latencies) + r.errors} | {r.errors} | {percentile(r.latencies, 50):.0f} | "
            f"{percentile(r.latencies, 99):.0f} | {r.counts['done']:.0f} | {r.counts['dropped']:.0f} | "
            f"{r.counts['failed']:.0f} | {r.worker_rss / rounds / 2**20:.0f} |"
        )
    t, p = pooled["thread"], pooled["process"]
    lines += [
        "",
        f"process ÷ thread: p50 {percentile(p.latencies, 50) / percentile(t.latencies, 50):.2f}, "
        f"p99 {percentile(p.latencies, 99) / percentile(t.latencies, 99):.2f}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = reporting.parser("bench.storm_isolation", __doc__, corpus=True)
    parser.add_argument("--queue", type=int, default=20, help="AVIF optimisations queued first (default %(default)s)")
    parser.add_argument("--urls", type=int, default=150, help="distinct variants in the storm (default %(default)s)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default %(default)s)")
    parser.add_argument(
        "--settle", type=float, default=1.0, help="seconds between queue and storm (default %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=20261204, help="workload RNG seed (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, the order alternating (default %(default)s)")
    args = parser.parse_args(argv)
    if not (args.corpus / "MANIFEST.json").exists():
        print(f"bench.storm_isolation: no corpus at {args.corpus} (MANIFEST.json): skipped", file=sys.stderr)
        return 0
    photos = corpus_photos(args.corpus)
    warm, queued, paths = workloads(photos, args.queue, args.urls, args.seed)
    pooled: dict[str, Round] = {}
    for round_ in range(args.rounds):
        for name in SCENARIOS if round_ % 2 == 0 else SCENARIOS[::-1]:
            r = run(name, args.corpus, warm, queued, paths, args.clients, args.settle)
            if name in pooled:
                o = pooled[name]
                counts = {k: o.counts[k] + r.counts[k] for k in o.counts}
                r = Round(name, o.latencies + r.latencies, o.errors + r.errors, counts, o.worker_rss + r.worker_rss)
            pooled[name] = r
            print(f"round {round_ + 1} {name}: done", file=sys.stderr, flush=True)
    command = reporting.command("bench.storm_isolation", argv)
    section = "\n".join(
        [
            "## Storm over running optimisations: thread vs process isolation (python -m bench.storm_isolation)",
            "",
            f"{reporting.run_line(command)}; edgeproxy {__version__}, one process, default settings but "
            '`optimise = "background"` and `optimise_isolation`; the load generator on the same machine.',
            f"Workload (`bench/storm_isolation.py`): one warm-up optimisation waited for, then {len(queued)} AVIF "
            f"`q:auto` optimisations queued (widths 1000–1580 px), {args.settle} s, then a storm of {len(paths)} "
            f"distinct JPEG/WebP `q:80` variants (no optimised tier) from {args.clients} clients; {args.rounds} "
            "rounds, order alternating, latencies pooled, counts summed. Background counts: "
            "`edgeproxy_optimise_total` at the storm's end (the warm-up not counted).",
            "",
            table(pooled, args.rounds),
            "",
        ]
    )
    reporting.publish(section, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
