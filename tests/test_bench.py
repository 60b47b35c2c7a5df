"""The benchmark runs end to end on a tiny workload (timing is not checked: that is bench/'s job)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_bench_runs_end_to_end(corpus: Path, tmp_path: Path):
    if shutil.which("wrk") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but wrk is missing (.ci/run installs it)")
        pytest.skip("wrk not installed (apt-get install wrk)")
    output = tmp_path / "results.md"
    subprocess.run(
        [sys.executable, "-m", "bench", "--corpus", str(corpus), "--workdir", str(tmp_path), "--seconds", "1",
         "--concurrency", "2", "--workloads", "jpeg", "--servers", "edgeproxy", "--no-storm",
         "--output", str(output)],
        cwd=ROOT, check=True, capture_output=True, text=True, timeout=300,
    )
    rows = [line for line in output.read_text().splitlines() if line.startswith("| jpeg | 2 |")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert float(cells[2]) > 0  # edgeproxy req/s
    assert float(cells[4]) > 0  # ceiling img/s
    assert cells[10] == "0"  # errors


def test_attack_bench_runs_and_reports_every_case():
    out = subprocess.run([sys.executable, "-m", "bench.attacks", "--repeat", "3"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    rows = [line for line in out.splitlines() if line.startswith("| ") and "median" not in line]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == [
        "/healthz", "render 10-1199 px WebP (200)", "PNG 50000² bomb (413)", "GIF 50000² bomb (413)",
        "JPEG 65000² bomb (413)", "WebP 16383² bomb (413)", "truncated JPEG (422)", "bad signature (403)",
        "saturated (503)",
    ]
