"""The bounded render pool (``edgeproxy.render.pool.RenderPool``) on its own: results and errors come
back to the caller, work runs off the event loop, the load it reports, a deadline that passes while a
job runs, and closing. Earliest-deadline-first order and cancellation are in ``test_scheduling.py``."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from edgeproxy.errors import ProxyError
from edgeproxy.render.pool import RenderPool

T = TypeVar("T")


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(scenario())


class Gate:
    """A job that holds a render thread until ``release``; ``entered`` once it runs."""

    def __init__(self) -> None:
        self.entered, self.released = threading.Event(), threading.Event()

    def hold(self) -> str:
        self.entered.set()
        assert self.released.wait(10)
        return "held"

    def release(self) -> None:
        self.released.set()

    async def wait_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, 10)


def test_a_job_runs_in_a_render_thread_and_its_result_comes_back():
    async def scenario() -> tuple[float, tuple[str, int]]:
        pool = RenderPool(threads=2, queue=0, retry_after=1)
        try:
            return await pool.run(lambda x: (threading.current_thread().name, x * 2), 21, deadline=time.monotonic() + 5)
        finally:
            pool.close()

    waited, (thread, value) = run(scenario)
    assert thread.startswith("render-") and value == 42
    assert 0 <= waited < 1  # an idle pool starts the job at once


def test_an_exception_reaches_the_caller_unchanged_and_frees_the_slot():
    async def scenario() -> str:
        pool = RenderPool(threads=1, queue=0, retry_after=1)
        try:
            with pytest.raises(KeyError, match="boom"):
                await pool.run(lambda: {}["boom"], deadline=time.monotonic() + 5)
            _waited, result = await pool.run(str, "next", deadline=time.monotonic() + 5)  # capacity 1 is free
            return result
        finally:
            pool.close()

    assert run(scenario) == "next"


def test_queue_depth_and_utilization_report_the_load():
    async def scenario() -> list[tuple[int, float]]:
        pool = RenderPool(threads=2, queue=2, retry_after=1)
        gates = [Gate(), Gate()]
        seen = [(pool.queue_depth(), pool.utilization())]
        now = time.monotonic()
        running = [asyncio.ensure_future(pool.run(g.hold, deadline=now + 30)) for g in gates]
        for gate in gates:
            await gate.wait_entered()
        seen.append((pool.queue_depth(), pool.utilization()))
        waiting = asyncio.ensure_future(pool.run(str, "queued", deadline=now + 30))
        await asyncio.sleep(0.05)
        seen.append((pool.queue_depth(), pool.utilization()))
        for gate in gates:
            gate.release()
        await asyncio.gather(*running, waiting)
        await asyncio.sleep(0.05)
        seen.append((pool.queue_depth(), pool.utilization()))
        pool.close()
        return seen

    assert run(scenario) == [(0, 0.0), (0, 1.0), (1, 1.0), (0, 0.0)]


def test_a_running_job_past_its_deadline_is_a_504_but_keeps_its_slot_until_it_ends():
    """The caller stops waiting at its deadline; the job itself cannot be interrupted from here, so
    its thread stays busy and capacity stays honest: the next job is refused (503) until it ends."""

    async def scenario() -> tuple[int, int, int, str]:
        pool = RenderPool(threads=1, queue=0, retry_after=2)
        gate = Gate()
        try:
            with pytest.raises(ProxyError) as late:
                await pool.run(gate.hold, deadline=time.monotonic() + 0.2)
            with pytest.raises(ProxyError) as full:
                await pool.run(str, "refused", deadline=time.monotonic() + 5)
            gate.release()
            for _ in range(100):  # the held job ends and frees its slot
                if pool.utilization() == 0:
                    break
                await asyncio.sleep(0.01)
            _waited, result = await pool.run(str, "after", deadline=time.monotonic() + 5)
            return late.value.status, full.value.status, full.value.retry_after, result
        finally:
            gate.release()
            pool.close()

    assert run(scenario) == (504, 503, 2, "after")


def test_close_cancels_waiting_jobs_and_refuses_new_ones():
    async def scenario() -> tuple[bool, int, list[str]]:
        pool = RenderPool(threads=1, queue=4, retry_after=1)
        gate = Gate()
        ran: list[str] = []
        now = time.monotonic()
        holding = asyncio.ensure_future(pool.run(gate.hold, deadline=now + 30))
        await gate.wait_entered()
        waiting = asyncio.ensure_future(pool.run(ran.append, "never", deadline=now + 30))
        await asyncio.sleep(0.05)
        pool.close()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        with pytest.raises(ProxyError) as closed:
            await pool.run(ran.append, "refused", deadline=now + 30)
        gate.release()
        _waited, held = await holding  # the running job finishes
        return held == "held", closed.value.status, ran

    assert run(scenario) == (True, 503, [])
