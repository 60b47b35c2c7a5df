"""What attacks cost the proxy: time to refuse each kind, as a ratio to a trivial request.

    python -m bench.attacks [--repeat 200]

Starts ``edgeproxy serve`` (one process) on a folder of hostile files (``testkit/bombs.py``) and
the bundled samples, and times sequential requests from one keep-alive client: ``/healthz`` (the
floor: HTTP + routing), a small real render, each bomb (413 from the header), a truncated JPEG
(422), a bad signature (403), and 503s while the only render thread is busy and the queue is 0.
Prints median and p99 milliseconds and the ratio of each median to ``/healthz``'s.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench import report
from bench.servers import Server
from edgeproxy.settings import SAMPLES_DIR
from edgeproxy.url.signing import sign_path
from testkit import bombs
from testkit.net import free_port

KEY = "bench-attacks"


def _url(template: str, i: int) -> str:
    """``template`` with ``{i}`` filled in, signed unless it is a plain route or carries a bad signature."""
    path = template.replace("{i}", str(i))
    return path if path.startswith(("/healthz", "/AAAA")) else sign_path(path, KEY)


def _times(client: httpx.Client, template: str, repeat: int, expect: int) -> list[float]:
    times = []
    for i in range(repeat):
        url = _url(template, i)
        start = time.perf_counter()
        status = client.get(url).status_code
        times.append(time.perf_counter() - start)
        if status != expect:
            raise RuntimeError(f"{url}: {status}, expected {expect}")
    return times


def main(argv: list[str] | None = None) -> int:
    parser = report.parser("bench.attacks", __doc__, output=False)  # prints its table only
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "png.png").write_bytes(bombs.png(50000, 50000))
        (root / "gif.gif").write_bytes(bombs.gif(50000, 50000))
        (root / "jpeg.jpg").write_bytes(bombs.jpeg(65000, 65000))
        (root / "webp.webp").write_bytes(bombs.webp(16383, 16383))
        (root / "truncated.jpg").write_bytes((SAMPLES_DIR / "chart.jpg").read_bytes()[:4000])
        port = free_port()
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
                f"h={root}",
                "--origin",
                f"samples={SAMPLES_DIR}",
            ],
            port,
            env={
                "EDGEPROXY_LOG_LEVEL": "warning",
                "EDGEPROXY_ACCESS_LOG": "false",
                "EDGEPROXY_RENDER_THREADS": "1",
                "EDGEPROXY_RENDER_QUEUE": "0",
                # No tiers: every render request renders (by default a derivative's optimised tier,
                # once stored, is answered without a render, also while the render threads are all
                # busy, so the saturation case would get 200s), and no background optimisation
                # shares the CPU with the timed requests.
                "EDGEPROXY_OPTIMISE": "off",
                "EDGEPROXY_RESULT_STORAGE": "off",
            },
        )
        server.wait_ready("/healthz")
        rows = []
        try:
            with httpx.Client(base_url=server.base, timeout=60) as client:
                cases = [
                    ("/healthz", "/healthz", 200),
                    ("render 10-1199 px WebP (200)", "/w:1{i}/f:webp/samples/chart.jpg", 200),
                    ("PNG 50000² bomb (413)", "/w:1{i}/f:png/h/png.png", 413),
                    ("GIF 50000² bomb (413)", "/w:1{i}/f:png/h/gif.gif", 413),
                    ("JPEG 65000² bomb (413)", "/w:1{i}/f:png/h/jpeg.jpg", 413),
                    ("WebP 16383² bomb (413)", "/w:1{i}/f:png/h/webp.webp", 413),
                    ("truncated JPEG (422)", "/w:1{i}/f:png/h/truncated.jpg", 422),
                    ("bad signature (403)", "/" + "A" * 43 + "/w:1{i}/samples/chart.jpg", 403),
                ]
                for name, path, expect in cases:
                    _times(client, path, 5, expect)  # warm-up
                    rows.append((name, _times(client, path, args.repeat, expect)))
                # Saturation: the only render thread busy with a slow render, no queue.
                slow = _url("/w:4000/enlarge:1/blur:60/f:webp/samples/chart.jpg", 0)
                holder = threading.Thread(target=lambda: httpx.get(server.base + slow, timeout=120))
                holder.start()
                time.sleep(0.5)
                refused = "/w:1{i}/f:webp/samples/chart.jpg"
                rows.append(("saturated (503)", _times(client, refused, min(args.repeat, 100), 503)))
                holder.join()
        finally:
            server.proc.terminate()
            server.proc.wait(10)
    floor = statistics.median(rows[0][1])
    print("| request | median ms | p99 ms | median / healthz |\n|---|---|---|---|")
    for name, times in rows:
        times = sorted(times)
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        print(
            f"| {name} | {statistics.median(times) * 1000:.2f} | {p99 * 1000:.2f} | "
            f"{statistics.median(times) / floor:.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
