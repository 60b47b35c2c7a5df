"""The optimised tier's background in worker processes (``optimise_isolation = "process"``, issue 26).

What a worker process gives that a background thread cannot: the whole worker, every libvips thread
in it, at nice 19; a job past its deadline killed; a crash that fails one job, not the server; and
the bytes (and ETags) the thread mode makes. Workers are real processes started with "spawn"; the
jobs that hang or crash are test functions sent to them as a server sends ``tiers.BackgroundRender``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from edgeproxy.errors import ProxyError
from edgeproxy.results import from_location
from edgeproxy.results.store import ResultStore
from edgeproxy.service.optimise import Optimisation, Optimiser
from edgeproxy.service.optimise_process import Workers
from edgeproxy.settings import load_settings
from testkit.app import KEY, make_client, make_served, signed
from testkit.images import decode, loader_format
from testkit.metrics import standalone, value
from testkit.tiers import ACCEPT_ALL, FAST, IMMUTABLE, optimised


def until(condition: Any, seconds: float = 30) -> None:
    """Poll ``condition()`` until it is true; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def counted(client: httpx.Client, outcome: str) -> float:
    return value(client.get("/metrics").text, "edgeproxy_optimise_total", outcome=outcome)


@pytest.fixture(scope="module")
def served(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Starlette]]:
    """One server in process mode, with a slow optimised AVIF encoder (effort 9: a job of seconds to kill)."""
    storage = tmp_path_factory.mktemp("results")
    with make_served(
        {"demo": str(photos)},
        optimise="background",
        optimise_isolation="process",
        optimise_avif_effort=9,
        result_storage=str(storage),
    ) as found:
        yield found


def started_workers(client: httpx.Client, app: Starlette) -> Workers:
    """The server's workers, one started (by an optimisation, if no earlier test made one)."""
    workers = app.state.components.service.optimiser.workers
    assert isinstance(workers, Workers)
    if not workers.pids():
        optimised(client, signed("/w:100/q:auto:70/f:avif/demo/photo.jpg"))
    return workers


def test_the_optimised_tier_made_in_a_worker_is_the_thread_modes_bytes(served, photos, tmp_path):
    client, _app = served
    path = signed("/w:160/q:auto:70/f:avif/demo/photo.jpg")
    fast = client.get(path, headers=ACCEPT_ALL)
    assert (fast.status_code, fast.headers["cache-control"], fast.headers["content-type"]) == (200, FAST, "image/avif")
    best = optimised(client, path)
    assert best.headers["cache-control"] == IMMUTABLE
    image = decode(best.content)
    assert (loader_format(image), image.width, image.height) == ("heif", 160, 107)
    with make_client(
        {"demo": str(photos)},
        optimise="background",
        optimise_isolation="thread",
        optimise_avif_effort=9,
        result_storage=str(tmp_path / "results"),
    ) as threads:
        in_thread = optimised(threads, path)
    assert (in_thread.headers["etag"], in_thread.content) == (best.headers["etag"], best.content)


def stat(pid: int | str, task: str = "") -> list[str]:
    """The fields of /proc/<pid>[/task/<tid>]/stat after the command's name (proc(5): index 0 is field 3)."""
    where = Path(f"/proc/{pid}") / (f"task/{task}" if task else "") / "stat"
    return where.read_text().rsplit(") ", 1)[1].split()


def cpu_ticks(pid: int) -> int:
    """utime + stime of process ``pid`` (fields 14 and 15), in clock ticks."""
    fields = stat(pid)
    return int(fields[11]) + int(fields[12])


def test_every_thread_of_a_worker_runs_at_nice_19_and_the_server_at_its_own(served):
    client, app = served
    pids = started_workers(client, app).pids()
    assert len(pids) == 1 and pids[0] != os.getpid()
    tasks = [task.name for task in Path(f"/proc/{pids[0]}/task").iterdir()]
    nices = {int(stat(pids[0], task)[16]) for task in tasks}  # field 19: nice
    assert len(tasks) > 1 and nices == {19}  # libvips' and the encoder's threads too
    assert os.getpriority(os.PRIO_PROCESS, os.getpid()) == os.nice(0)  # the server's own, untouched


def test_a_worker_killed_mid_job_fails_that_job_only_and_the_next_job_gets_a_new_worker(served):
    client, app = served
    workers = started_workers(client, app)
    (victim,) = workers.pids()
    failed, done, idle = counted(client, "failed"), counted(client, "done"), cpu_ticks(victim)
    path = signed("/w:800/q:auto:90/f:avif/demo/photo.jpg")  # effort 9 at 800 px: seconds of encoding
    assert client.get(path, headers=ACCEPT_ALL).headers["cache-control"] == FAST
    until(lambda: cpu_ticks(victim) > idle + 10)  # the job is in the worker: 0.1 s of its CPU (at 100 Hz)
    os.kill(victim, signal.SIGKILL)
    until(lambda: counted(client, "failed") > failed)
    assert (counted(client, "failed"), counted(client, "done")) == (failed + 1, done)
    best = optimised(client, signed("/w:120/q:auto:70/f:avif/demo/photo.jpg"))  # the server answers 200s
    assert best.headers["cache-control"] == IMMUTABLE and decode(best.content).width == 120
    assert len(workers.pids()) == 1 and workers.pids() != [victim]


def hang(_renderer: Any, _until: float) -> tuple[bytes, str]:
    """A job that never ends by itself (as an AV1 encode that cannot be interrupted)."""
    time.sleep(3600)
    raise AssertionError("not reached")


def crash(_renderer: Any, _until: float) -> tuple[bytes, str]:
    """A job that dies as a decoder on a hostile image may: a segmentation fault."""
    os.kill(os.getpid(), signal.SIGSEGV)
    raise AssertionError("not reached")


def works(_renderer: Any, until: float) -> tuple[bytes, str]:
    return f"made by {os.getpid()} before {until}".encode(), "image/webp"


def refuses(_renderer: Any, _until: float) -> tuple[bytes, str]:
    raise ProxyError(422, "cannot decode", "decode")


def never(_until: float) -> tuple[bytes, str]:
    raise AssertionError("the thread's render runs only for a job without a worker form")


def run_jobs(tmp_path: Path, jobs: list[Any], timeout: float) -> tuple[list[bytes | None], dict[str, float]]:
    """``jobs`` one after another through an ``Optimiser`` with one worker process (grace 0.2 s):
    what each stored, the outcome counts."""
    settings = load_settings(origins={"demo": str(tmp_path)}, signing_key=KEY)
    metrics = standalone()
    store: ResultStore = from_location(str(tmp_path / "results"), max_bytes=1 << 20)

    async def go() -> list[bytes | None]:
        workers = Workers(settings, 1, grace=0.2)
        optimiser = Optimiser(store, metrics, queue=8, threads=1, timeout=timeout, workers=workers)
        stored: list[bytes | None] = []
        for n, job in enumerate(jobs):
            optimiser.submit(Optimisation(f'"{n}"', never, "k", job))
            while optimiser.pending:
                await asyncio.sleep(0.02)
            found = await store.get(f'"{n}"')
            stored.append(found.body if found else None)
        await optimiser.aclose()
        assert workers.pids() == []  # closed: killed, not waited for
        return stored

    stored = asyncio.run(go())
    text = metrics.exposition().decode()
    return stored, {o: value(text, "edgeproxy_optimise_total", outcome=o) for o in ("done", "failed")}


def test_a_job_past_its_deadline_is_killed_and_counted_failed(tmp_path):
    started = time.monotonic()
    stored, outcomes = run_jobs(tmp_path, [hang, works], timeout=0.3)
    assert stored[0] is None and stored[1] is not None and stored[1].startswith(b"made by")
    assert outcomes == {"done": 1, "failed": 1}
    assert time.monotonic() - started < 20  # the hour's sleep was cut at its deadline


def test_a_job_that_crashes_its_worker_fails_alone_and_the_server_goes_on(tmp_path):
    stored, outcomes = run_jobs(tmp_path, [works, crash, refuses, works], timeout=30)
    assert [s is not None for s in stored] == [True, False, False, True]
    assert outcomes == {"done": 2, "failed": 2}
    assert stored[0] != stored[3]  # another worker process made the last one (the crashed one was replaced)
