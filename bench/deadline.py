"""How soon a render past its deadline lets go of its thread (the cancel latency).

    python -m bench.deadline [--runs 3] [--timeout 1.0] [--write]

Starts ``edgeproxy serve`` (one process, 2 render threads, ``request_timeout`` = ``--timeout``,
``max_blur_cost`` off) on a synthetic 6000 × 4000 JPEG, then per run sends two concurrent
``blur:100/sharpen:10`` renders of it at full size (seconds of work each), which answer 504 at the
deadline, and polls ``edgeproxy_worker_utilization`` on ``/metrics`` every few milliseconds until
both render threads are idle. Prints, per run, when the 504s came (after the requests were sent),
the cancel latency (idle threads minus the last 504), the server's CPU seconds spent after the last
504, and when a small render sent once the threads are idle had its 200 (after the last 504). Writes the table as the
``## Deadline`` section of bench/results.md with ``--write`` (default: print only).
"""

from __future__ import annotations

import re
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench import report
from bench.servers import Server
from edgeproxy.url.signing import sign_path
from testkit import coordinates
from testkit.net import free_port

KEY = "bench-deadline"
RUNAWAY = "/blur:100/sharpen:10/f:jpeg/v:{run}{k}/o/big.jpg"


def _utilization(client: httpx.Client) -> float:
    match = re.search(r"^edgeproxy_worker_utilization(?:\{[^}]*\})? (\S+)$", client.get("/metrics").text, re.M)
    return float(match.group(1)) if match else float("nan")


def run_once(server: Server, client: httpx.Client, run: int) -> dict[str, float]:
    answers: dict[int, tuple[int, float]] = {}

    def runaway(k: int) -> None:
        with httpx.Client(base_url=server.base, timeout=120) as own:
            status = own.get(sign_path(RUNAWAY.format(run=run, k=k), KEY)).status_code
        answers[k] = (status, time.monotonic())

    sent = time.monotonic()
    threads = [threading.Thread(target=runaway, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    last_504 = max(at for _status, at in answers.values())
    cpu_at_504 = server.cpu_seconds()
    while _utilization(client) > 0 and time.monotonic() - last_504 < 120:
        time.sleep(0.002)
    idle = time.monotonic()
    small = client.get(sign_path(f"/w:100/f:png/v:{run}/o/small.jpg", KEY))
    small_ms = (time.monotonic() - last_504) * 1000
    return {
        "statuses": sorted(status for status, _at in answers.values()),
        "answered_s": last_504 - sent,
        "cancel_ms": (idle - last_504) * 1000,
        "cpu_after_s": server.cpu_seconds() - cpu_at_504,
        "small_status": small.status_code,
        "small_ms": small_ms,
    }


def main(argv: list[str] | None = None) -> None:
    parser = report.parser("bench.deadline", __doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=1.0, help="request_timeout, seconds")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "big.jpg").write_bytes(coordinates.image(6000, 4000).jpegsave_buffer(Q=80))
        (Path(root) / "small.jpg").write_bytes(coordinates.image(300, 200).jpegsave_buffer(Q=80))
        port = free_port()
        env = {
            "EDGEPROXY_RENDER_THREADS": "2",
            "EDGEPROXY_REQUEST_TIMEOUT": str(args.timeout),
            "EDGEPROXY_MAX_BLUR_COST": str(10**9),
            "VIPS_CONCURRENCY": "1",
        }
        server = Server(
            "edgeproxy",
            [
                sys.executable,
                "-m",
                "edgeproxy",
                "serve",
                "--port",
                str(port),
                "--signing-key",
                KEY,
                "--origin",
                f"o={root}",
            ],
            port,
            env,
        )
        try:
            server.wait_ready("/healthz")
            with httpx.Client(base_url=server.base, timeout=120) as client:
                results = [run_once(server, client, run) for run in range(args.runs)]
        finally:
            server.stop()
    lines = [
        f"| {i + 1} | {' '.join(map(str, r['statuses']))} at {r['answered_s']:.2f} s | {r['cancel_ms']:.0f} | "
        f"{r['cpu_after_s']:.2f} | {r['small_status']} at {r['small_ms']:.0f} ms |"
        for i, r in enumerate(results)
    ]
    section = "\n".join(
        [
            "## Deadline (python -m bench.deadline)",
            "",
            f"{report.run_line(report.command('bench.deadline', argv))}: two concurrent `blur:100/sharpen:10` "
            "renders of a 6000×4000 JPEG, 2 render threads. Cancel latency: from "
            "the last 504 to both render threads idle (`edgeproxy_worker_utilization` 0, polled every 2 ms).",
            "",
            "| run | runaway answers | cancel latency ms | server CPU s after the 504s "
            "| small render, after the 504s |",
            "|---|---|---|---|---|",
            *lines,
            "",
        ]
    )
    report.publish(section, args)


if __name__ == "__main__":
    main()
