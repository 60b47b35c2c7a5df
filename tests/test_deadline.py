"""The deadline stops the work (issue 20): a render past its deadline is cancelled inside libvips, so
its thread is free again right after the 504, and an expensive blur is refused before any work.

Before, two ``blur:100`` renders of a 24-megapixel original held both render threads long after
their 504s, and every small render behind them timed out too. The original here is synthetic
(``testkit.coordinates``, 6000 × 4000 JPEG).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from edgeproxy.compose import encoder_options, source_limits
from edgeproxy.errors import ProxyError
from edgeproxy.http.negotiate import Negotiated
from edgeproxy.render import pipeline
from edgeproxy.settings import load_settings
from edgeproxy.url.grammar import parse_options
from testkit import coordinates
from testkit.app import make_client, make_served, signed

#: Work that outlasts the short deadlines below on any machine: a full-size 24 MP blur and sharpen.
RUNAWAY = "/blur:100/sharpen:10/f:jpeg"
#: Off: the up-front bound would refuse RUNAWAY before it runs; these tests are about the deadline.
NO_BLUR_LIMIT = 10**9


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("deadline")
    (folder / "big.jpg").write_bytes(coordinates.image(6000, 4000).jpegsave_buffer(Q=80))
    (folder / "small.jpg").write_bytes(coordinates.image(300, 200).jpegsave_buffer(Q=80))
    return folder


def test_renders_past_their_deadline_free_their_threads(origin: Path):
    """Two runaway renders fill both render threads and answer 504 at the deadline; a small render
    right after them answers 200 within 2 s of their 504s (it would wait for, and time out behind,
    renders that kept working)."""
    with make_served({"o": str(origin)}, render_threads=2, request_timeout=1.0, max_blur_cost=NO_BLUR_LIMIT) as (c, _):
        answers: dict[int, tuple[httpx.Response, float]] = {}

        def runaway(k: int) -> None:
            response = c.get(signed(f"{RUNAWAY}/v:{k}/o/big.jpg"))
            answers[k] = (response, time.monotonic())

        threads = [threading.Thread(target=runaway, args=(k,)) for k in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert [answers[k][0].status_code for k in range(2)] == [504, 504], "the runaway work beat the deadline"
        last_504 = max(at for _response, at in answers.values())
        small = c.get(signed("/w:100/f:png/o/small.jpg"))
        assert small.status_code == 200, small.text
        assert time.monotonic() - last_504 < 2.0


def context(data: bytes, options: str, deadline: float, **overrides) -> pipeline.Context:
    settings = load_settings(signing_key="k", **overrides)
    spec = parse_options(options.strip("/").split("/"))
    limits = source_limits(settings)  # as the app builds them
    return pipeline.Context(
        data=data,
        negotiated=Negotiated(spec, frozenset(), ()),
        limits=limits,
        encode_options=encoder_options(settings),
        default_quality=settings.default_quality,
        deadline=deadline,
    )


def test_a_render_killed_at_its_deadline_is_a_504_within_a_second(origin: Path):
    """The render itself (no HTTP, no pool) raises 504, not 422, at most 1 s after its deadline."""
    data = (origin / "big.jpg").read_bytes()
    deadline = time.monotonic() + 0.5
    with pytest.raises(ProxyError) as error:
        pipeline.run(context(data, RUNAWAY, deadline, max_blur_cost=NO_BLUR_LIMIT))
    assert (error.value.status, error.value.message) == (504, "render deadline exceeded")
    assert time.monotonic() - deadline < 1.0


def test_an_expensive_blur_is_refused_before_any_work(origin: Path):
    """blur:100 on the whole 24 MP original is 2400 megapixel-sigma: a 413 naming the setting; the
    same blur on a 1000-px derivative (67) renders."""
    with make_client({"o": str(origin)}) as c:
        r = c.get(signed("/blur:100/f:jpeg/o/big.jpg"))
        assert (r.status_code, r.text) == (
            413,
            "blur:100 on a 6000x4000 output is 2400 megapixel-sigma of work; the limit is max_blur_cost=1000\n",
        )
        assert r.headers["cache-control"] == "public, max-age=60"
        ok = c.get(signed("/blur:100/w:1000/f:jpeg/o/big.jpg"))
        assert ok.status_code == 200, ok.text


@pytest.mark.slow
def test_the_deadline_bench_runs_and_reports_a_free_thread():
    """``python -m bench.deadline`` end to end (its figures are bench/'s business, not checked here);
    without ``--write`` it only prints: the tracked bench/results.md is left as it was."""
    root = Path(__file__).resolve().parent.parent
    published = (root / "bench" / "results.md").read_bytes()
    out = subprocess.run(
        [sys.executable, "-m", "bench.deadline", "--runs", "1"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    [row] = [line for line in out.splitlines() if line.startswith("| 1 |")]
    assert "504 504" in row and "| 200 at" in row, row
    assert "with `python -m bench.deadline --runs 1` on " in out
    assert (root / "bench" / "results.md").read_bytes() == published
