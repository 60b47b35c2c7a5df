"""Fair scheduling: the render pool serves the earliest deadline first, so a request's render is not
queued behind the analyses of every request that came after it (issue: "cold originals finish all
at the end")."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
import pyvips

from edgeproxy.errors import ProxyError
from edgeproxy.render.pool import RenderPool
from testkit.app import make_served, signed


def _gate_pool(pool: RenderPool) -> tuple[threading.Event, threading.Event, object]:
    """Occupy the pool's only thread until ``release`` is set; ``entered`` once it holds it."""
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        entered.set()
        assert release.wait(10)

    return entered, release, hold


def test_waiting_jobs_run_earliest_deadline_first():
    async def scenario() -> list[str]:
        pool = RenderPool(threads=1, queue=8, retry_after=1)
        entered, release, hold = _gate_pool(pool)
        order: list[str] = []
        now = time.monotonic()
        gate = asyncio.ensure_future(pool.run(hold, deadline=now + 30))
        await asyncio.to_thread(entered.wait, 10)
        jobs = [
            asyncio.ensure_future(pool.run(order.append, name, deadline=now + offset))
            for name, offset in (("late", 9), ("early", 5), ("middle", 7), ("early-too", 5))
        ]
        await asyncio.sleep(0.05)  # all four are waiting behind the gate
        release.set()
        await asyncio.gather(gate, *jobs)
        pool.close()
        return order

    # Submitted late, early, middle, early-too: run by deadline, equal deadlines in submission order.
    assert asyncio.run(scenario()) == ["early", "early-too", "middle", "late"]


def test_a_job_cancelled_while_waiting_frees_its_slot_at_once():
    async def scenario() -> tuple[int, int, str]:
        pool = RenderPool(threads=1, queue=1, retry_after=3)
        entered, release, hold = _gate_pool(pool)
        now = time.monotonic()
        gate = asyncio.ensure_future(pool.run(hold, deadline=now + 30))
        await asyncio.to_thread(entered.wait, 10)
        waiting = asyncio.ensure_future(pool.run(str, "never", deadline=now + 30))
        await asyncio.sleep(0.02)
        with pytest.raises(ProxyError) as full:  # threads + queue in flight: 503 with Retry-After
            await pool.run(str, "refused", deadline=now + 30)
        waiting.cancel()  # its client went away
        await asyncio.sleep(0.02)
        depth = pool.queue_depth()
        accepted = asyncio.ensure_future(pool.run(str, "accepted", deadline=now + 30))  # the slot is free again
        await asyncio.sleep(0.02)
        release.set()
        await gate
        _queued, result = await accepted
        pool.close()
        return full.value.status * 10 + full.value.retry_after, depth, pool.dropped, result

    status, depth, dropped, result = asyncio.run(scenario())
    assert (status, depth, dropped, result) == (503 * 10 + 3, 0, 1, "accepted")


def test_a_job_past_its_deadline_while_waiting_is_a_504_and_never_runs():
    async def scenario() -> tuple[int, list[str]]:
        pool = RenderPool(threads=1, queue=4, retry_after=1)
        entered, release, hold = _gate_pool(pool)
        ran: list[str] = []
        now = time.monotonic()
        gate = asyncio.ensure_future(pool.run(hold, deadline=now + 30))
        await asyncio.to_thread(entered.wait, 10)
        with pytest.raises(ProxyError) as late:
            await pool.run(ran.append, "late", deadline=time.monotonic() + 0.05)
        release.set()
        await gate
        await pool.run(ran.append, "next", deadline=time.monotonic() + 5)
        pool.close()
        return late.value.status, ran

    assert asyncio.run(scenario()) == (504, ["next"])


def test_cold_originals_are_answered_across_the_batch_not_at_its_end(tmp_path: Path, models):
    """N requests for N cold originals at once, moderation on (each original needs its analysis
    before its render), one render thread: each request's render must come before the analyses of
    the requests that arrived well after it. Served first come first served (the pool before this
    change), every analysis ran before the first render, and the first answer came at the end."""
    count = 6
    for i in range(count + 1):  # distinct originals (distinct bytes): each is cold and analysed once
        image = (
            pyvips.Image.gaussnoise(1200, 900, mean=128 + 10 * i, sigma=40)
            .cast("uchar")
            .bandjoin([pyvips.Image.black(1200, 900) + 40 * i, pyvips.Image.black(1200, 900) + 200 - 20 * i])
            .cast("uchar")
        )
        image.copy(interpretation="srgb").write_to_file(str(tmp_path / f"cold-{i}.jpg"))
    with make_served(
        {"media": str(tmp_path)},
        render_threads=1,
        render_queue=32,
        moderation=True,
        nsfw_model=str(models["nsfw"]),
        moderation_pending="serve",
    ) as (client, app):
        service = app.state.components.service
        events: list[str] = []
        analyse, render = service.vision.analyse, service.render

        def recorded_analyse(key, data, limits):
            events.append(f"analysis {key[1]}")
            return analyse(key, data, limits)

        def recorded_render(data, negotiated, deadline, *treatment):
            events.append(f"render cold-{negotiated.spec.width - 100}.jpg")
            return render(data, negotiated, deadline, *treatment)

        service.vision.analyse, service.render = recorded_analyse, recorded_render
        # Warm up the models outside the measured batch (their first run is slow).
        assert client.get(signed(f"/w:50/f:png/media/cold-{count}.jpg")).status_code == 200
        events.clear()
        statuses: dict[int, int] = {}

        def get(i: int) -> None:
            statuses[i] = client.get(signed(f"/w:{100 + i}/f:png/media/cold-{i}.jpg")).status_code

        threads = [threading.Thread(target=get, args=(i,)) for i in range(count)]
        for thread in threads:  # arrival order = deadline order
            thread.start()
            time.sleep(0.005)
        for thread in threads:
            thread.join(60)
    assert statuses == dict.fromkeys(range(count), 200)
    assert sorted(events) == sorted(
        [f"analysis cold-{i}.jpg" for i in range(count)] + [f"render cold-{i}.jpg" for i in range(count)]
    ), events
    for i in range(count - 3):
        assert events.index(f"render cold-{i}.jpg") < events.index(f"analysis cold-{i + 3}.jpg"), events
