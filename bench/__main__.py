"""``python -m bench``: edgeproxy vs thumbor vs the libvips ceiling, side by side, in one run.

Prints a report; ``--write`` also puts it at the head of ``bench/results.md`` (the other benchmarks'
``## `` sections there are kept). Every load is bounded in time and targets
127.0.0.1 only. Needs wrk (Debian package ``wrk``); installs thumbor into its own virtualenv under
``--workdir`` on first use.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from bench import ceiling, load, report, servers
from bench.workload import prepare
from edgeproxy import __version__
from edgeproxy.settings import Settings, load_settings
from edgeproxy.url.signing import sign_path

KEY = "bench-key"
#: Output settings shared by edgeproxy and the ceiling in the benchmark, matching imgproxy's
#: harness (progressive JPEG) and otherwise edgeproxy's defaults.
BENCH_ENV = {"EDGEPROXY_JPEG_PROGRESSIVE": "true"}
DISTINCT_URLS = 200  # per workload: every request renders (no single-flight sharing between clients)


def edgeproxy_settings() -> Settings:
    """edgeproxy's settings as the benchmark runs it (defaults + ``BENCH_ENV``)."""
    return load_settings(signing_key=KEY, jpeg_progressive=True)


def edgeproxy_paths(workload) -> list[str]:
    paths = []
    for i in range(DISTINCT_URLS):
        file = workload.files[i % len(workload.files)]
        paths.append(sign_path(f"/v:{i}" + workload.edgeproxy_path(file), KEY))
    return paths


def measure(server: servers.Server, paths: list[str], connections: int, seconds: float) -> dict:
    load.run(server.base, paths[: max(4, connections)], connections, 1)  # warm-up
    cpu0 = server.cpu_seconds()
    server.start_sampling()
    result = load.run(server.base, paths, connections, seconds)
    result["peak_rss_mb"] = server.stop_sampling() / 2**20
    result["cpu_per_request_ms"] = (server.cpu_seconds() - cpu0) / max(result["requests"], 1) * 1000
    return result


def main(argv: list[str] | None = None) -> int:
    parser = report.parser("bench", __doc__, corpus=True)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/edgeproxy-bench"))
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument("--concurrency", default="2,16")
    parser.add_argument("--workloads", default="jpeg,png,webp,avif,12mp-webp800")
    parser.add_argument("--servers", default="edgeproxy,thumbor")
    parser.add_argument("--no-storm", action="store_true", help="skip the single-URL storm")
    args = parser.parse_args(argv)
    if not load.wrk_available():
        print("bench: wrk not found (apt-get install wrk)", file=sys.stderr)
        return 2
    cores = os.cpu_count() or 2
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    wanted = args.workloads.split(",")
    workloads = [w for w in prepare(args.corpus, args.workdir / "images") if w.name in wanted]
    images = args.workdir / "images"
    settings = edgeproxy_settings()
    results: dict[tuple[str, str, int], dict] = {}

    # Both servers run from the start (an idle one costs nothing); each workload then measures the
    # ceiling, edgeproxy and thumbor back to back, so that drift in the machine's speed (a shared VM)
    # hits all three of a workload alike.
    running: dict[str, servers.Server] = {}
    storm = None
    try:
        for port, name in enumerate(args.servers.split(","), start=18080):
            if name == "thumbor":
                venv = args.workdir / "thumbor-venv"
                servers.install_thumbor(venv)
                running[name] = servers.start_thumbor(venv, images, port, cores, args.workdir)
            else:
                running[name] = servers.start_edgeproxy(images, port, KEY, BENCH_ENV)
        for w in workloads:
            before = ceiling.run(w, images, cores, args.seconds / 2, settings)
            print(f"ceiling    {w.name:14} {before['rps']:7.1f} img/s (before)", flush=True)
            for name, server in running.items():
                paths = edgeproxy_paths(w) if name == "edgeproxy" else [w.thumbor_path(f) for f in w.files]
                for c in concurrencies:
                    r = results[(name, w.name, c)] = measure(server, paths, c, args.seconds)
                    print(
                        f"{name:10} {w.name:14} c={c:<3} {r['rps']:7.1f} req/s  p50 {r['p50_ms']:7.1f} ms  "
                        f"p99 {r['p99_ms']:7.1f} ms  errors {r['errors']}  rss {r['peak_rss_mb']:.0f} MB  "
                        f"cpu {r['cpu_per_request_ms']:.1f} ms/req",
                        flush=True,
                    )
            after = ceiling.run(w, images, cores, args.seconds / 2, settings)
            print(f"ceiling    {w.name:14} {after['rps']:7.1f} img/s (after)", flush=True)
            # The ceiling brackets the servers' measurements; its drift shows how steady the machine was.
            results[("ceiling", w.name, cores)] = {
                "rps": (before["rps"] + after["rps"]) / 2,
                "drift": abs(after["rps"] - before["rps"]) / ((before["rps"] + after["rps"]) / 2),
            }
        if "edgeproxy" in running and not args.no_storm and workloads:
            w = workloads[0]
            one = [sign_path("/v:storm" + w.edgeproxy_path(w.files[0]), KEY)]
            storm = measure(running["edgeproxy"], one, 16, args.seconds)
            print(
                f"storm      {w.name:14} c=16  {storm['rps']:7.1f} req/s  cpu {storm['cpu_per_request_ms']:.2f} ms/req",
                flush=True,
            )
    finally:
        for server in running.values():
            server.stop()

    head = render_report(results, workloads, concurrencies, storm, args, report.command("bench", argv))
    print(head)
    if args.write:  # the head of the file; the "## " sections other benchmarks wrote are kept
        report.write_head(args.output, head)
        print(f"written to {args.output}")
    return 0


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "n/a"


def render_report(results, workloads, concurrencies, storm, args, command: str) -> str:
    """The head of bench/results.md: how it was run, then the table of every workload and concurrency."""
    cores = os.cpu_count() or 2
    thumbor_versions = {}
    venv = args.workdir / "thumbor-venv"
    if (venv / "bin" / "python").exists():
        thumbor_versions = servers.versions(venv)
    lines = [
        "# Benchmark results",
        "",
        f"{report.run_line(command)}.",
        f"edgeproxy {__version__} (libvips from pyvips-binary)"
        + "".join(f", {k} {v}" for k, v in thumbor_versions.items())
        + ".",
        "Ceiling: the libvips operations edgeproxy runs for each URL (`bench/ceiling.py`), in as many threads "
        "as cores, measured right before and right after the servers on that workload (mean shown; "
        "'ceiling drift' is the change between the two, a measure of how steady the machine was), "
        "no HTTP. Load: wrk, one thread, on the same machine (it takes some CPU from the server "
        "under test, for both servers alike; the ceiling runs without it). Both servers are up for the whole run "
        "and measured one at a time, workload by workload, between that workload's two ceiling runs, so drift "
        "in the machine's speed affects the columns of a row alike. Inputs: `bench/workload.py`.",
        "",
        "| workload | c | edgeproxy req/s | thumbor req/s | ceiling img/s | edgeproxy/thumbor | edgeproxy/ceiling "
        "| p50 ms | p99 ms | p99/p50 | errors | peak RSS MB | CPU ms/req | thumbor p50/p99 ms | thumbor CPU ms/req "
        "| ceiling drift |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w in workloads:
        ceil = results.get(("ceiling", w.name, cores), {}).get("rps")
        drift = results.get(("ceiling", w.name, cores), {}).get("drift", 0.0)
        for c in concurrencies:
            e = results.get(("edgeproxy", w.name, c), {})
            t = results.get(("thumbor", w.name, c), {})
            lines.append(
                f"| {w.name} | {c} | {e.get('rps', 0):.1f} | {t.get('rps', 0):.1f} | {ceil or 0:.1f} | "
                f"{_ratio(e.get('rps'), t.get('rps'))} | {_ratio(e.get('rps'), ceil)} | "
                f"{e.get('p50_ms', 0):.0f} | {e.get('p99_ms', 0):.0f} | {_ratio(e.get('p99_ms'), e.get('p50_ms'))} | "
                f"{e.get('errors', 'n/a')} | {e.get('peak_rss_mb', 0):.0f} | {e.get('cpu_per_request_ms', 0):.1f} | "
                f"{t.get('p50_ms', 0):.0f}/{t.get('p99_ms', 0):.0f} | {t.get('cpu_per_request_ms', 0):.1f} | "
                f"{drift:.0%} |"
            )
    if storm:
        diverse = results.get(("edgeproxy", workloads[0].name, 16), {}).get("cpu_per_request_ms")
        lines += [
            "",
            f"Single-URL storm ({workloads[0].name}, 16 clients, one URL): {storm['rps']:.1f} req/s, "
            f"{storm['cpu_per_request_ms']:.2f} CPU ms/req against {diverse or 0:.1f} for distinct URLs "
            f"(ratio {_ratio(storm['cpu_per_request_ms'], diverse)}; target <= 0.125).",
        ]
    lines += ["", f"Generated {time.strftime('%Y-%m-%d')} by `python -m bench`; see docs/performance.md.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
