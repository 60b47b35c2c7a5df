"""A bounded soak: mixed good and hostile requests at concurrency 32 against one `edgeproxy serve`
process. Afterwards it still answers, its memory is where it was after warm-up, no request took
longer than the deadline, and no answer was a 5xx.

CI runs 20 seconds; the full two minutes run on demand: ``pytest -m soak --soak-seconds 120 -s``.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from testkit import bombs
from testkit.app import KEY, signed
from testkit.net import free_port

pytestmark = pytest.mark.slow  # a timed load: not in the quick loop (pytest -m 'not slow')

CONCURRENCY = 32
DEADLINE = 10.0  # request_timeout of the process under test, seconds


def _requests(corpus: Path) -> list[tuple[str, int]]:
    """(path, expected status) kinds, cycled through by the clients. Widths vary per request so
    renders are not all served by single-flight."""
    photos = ["giunchedi-portrait.jpg", "flickr-2725x2225.jpg", "gopher-alpha.png", "animated.gif"]
    good = [(f"/w:{{w}}/f:{fmt}/demo/{photo}", 200) for photo in photos for fmt in ("webp", "jpeg", "avif")]
    hostile = [
        ("/w:{w}/f:png/hostile/bomb.png", 413),
        ("/w:{w}/f:png/hostile/bomb.jpg", 413),
        ("/w:{w}/f:png/hostile/truncated.jpg", 422),
        ("/w:{w}/f:png/demo/commons-logo.svg", 415),
        ("/w:{w}/f:png/demo/no-such-file.jpg", 404),
        ("/w:{w}/f:png/nowhere/x.jpg", 404),
        ("/w:{w}/f:png/hostile/%2e%2e/%2e%2e/etc/passwd", 404),
    ]
    return good + hostile


async def _client(base: str, kinds, counter, stop_at: float, log: list) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=DEADLINE + 30) as client:
        while time.monotonic() < stop_at:
            n = next(counter)
            template, expected = kinds[n % len(kinds)]
            path = template.format(w=50 + n % 400)
            url = signed(path)
            if n % 11 == 0:
                url, expected = "/" + "A" * 43 + path, 403  # a bad signature
            elif n % 13 == 0:
                url, expected = signed(path.replace("/w:", "/w:-")), 400  # a malformed option
            start = time.monotonic()
            response = await client.get(url, headers={"Accept": "image/avif,image/webp,*/*"})
            log.append((path, expected, response.status_code, time.monotonic() - start))


def _run(base: str, kinds, seconds: float) -> list:
    log: list = []
    counter = itertools.count()
    stop_at = time.monotonic() + seconds

    async def main():
        await asyncio.gather(*(_client(base, kinds, counter, stop_at, log) for _ in range(CONCURRENCY)))

    asyncio.run(main())
    return log


@pytest.mark.soak
def test_soak(corpus: Path, tmp_path: Path, soak_seconds: float):
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    (hostile / "bomb.png").write_bytes(bombs.png(50000, 50000))
    (hostile / "bomb.jpg").write_bytes(bombs.jpeg(65000, 65000))
    (hostile / "truncated.jpg").write_bytes((corpus / "giunchedi-portrait.jpg").read_bytes()[:5000])
    port = free_port()
    config = tmp_path / "soak.toml"
    config.write_text(
        f'request_timeout = {DEADLINE}\naccess_log = false\nlog_level = "warning"\n'
        f'[origins]\ndemo = "{corpus}"\nhostile = "{hostile}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEPROXY_")}
    with open(tmp_path / "server.log", "w") as server_log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edgeproxy",
                "serve",
                "--config",
                str(config),
                "--port",
                str(port),
                "--signing-key",
                KEY,
            ],
            stdout=server_log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        process = psutil.Process(proc.pid)
        kinds = _requests(corpus)
        warm_up = _run(base, kinds, max(3.0, soak_seconds / 5))
        rss_warm = process.memory_info().rss
        log = warm_up + _run(base, kinds, soak_seconds)
        rss_end = process.memory_info().rss
        health = httpx.get(base + "/healthz", timeout=5)
    finally:
        proc.terminate()
        proc.wait(10)

    statuses = collections.Counter(status for _, _, status, _ in log)
    wrong = [(path, expected, got) for path, expected, got, _ in log if got != expected]
    slowest = max(seconds for *_, seconds in log)
    print(
        f"\nsoak: {len(log)} requests in {soak_seconds + max(3.0, soak_seconds / 5):.0f} s at concurrency "
        f"{CONCURRENCY}; statuses {dict(sorted(statuses.items()))}; slowest {slowest:.2f} s; "
        f"RSS after warm-up {rss_warm / 1e6:.0f} MB, at the end {rss_end / 1e6:.0f} MB"
    )
    assert health.status_code == 200
    assert wrong == [], wrong[:10]
    assert sum(n for status, n in statuses.items() if status >= 500) == 0
    assert slowest < DEADLINE
    assert rss_end <= 1.5 * rss_warm
    assert len(log) > 10 * CONCURRENCY  # it did real work
