"""Overload: clients that go away take their queued work with them; shared work survives them."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

import httpx

from edgeproxy.cache import SingleFlight
from edgeproxy.url.spec import Format
from testkit.app import make_served, signed
from testkit.metrics import value

SLOW = "/w:200/f:webp/demo/giunchedi-portrait.jpg"  # held in its render thread until the test releases it


def test_disconnected_clients_leave_the_render_queue(corpus: Path):
    with make_served({"demo": str(corpus)}, render_threads=1, render_queue=8) as (c, app):
        service = app.state.components.service
        entered, release = threading.Event(), threading.Event()
        render = service.render

        def gated(data, negotiated, deadline, *treatment):  # the WebP render holds the only render thread
            if negotiated.spec.format is Format.WEBP:
                entered.set()
                assert release.wait(30), "the test never released the render"
            return render(data, negotiated, deadline, *treatment)

        service.render = gated
        slow: dict[str, httpx.Response] = {}
        holder = threading.Thread(target=lambda: slow.update(r=c.get(signed(SLOW))))
        holder.start()
        try:
            assert entered.wait(10), "the slow render never started"
            sockets = []
            for width in range(100, 104):  # four quick renders, queued behind it
                sock = socket.create_connection((c.base_url.host, c.base_url.port))
                sock.sendall(
                    f"GET {signed(f'/w:{width}/f:png/demo/giunchedi-portrait.jpg')} HTTP/1.1\r\n"
                    f"Host: x\r\n\r\n".encode()
                )
                sockets.append(sock)
            wait_for(lambda: value(c.get("/metrics").text, "edgeproxy_render_queue_depth") == 4, "queued")
            for sock in sockets:
                sock.close()
            wait_for(
                lambda: value(c.get("/metrics").text, "edgeproxy_client_disconnects_total") == 4, "disconnects noticed"
            )
            metrics = c.get("/metrics").text
            assert value(metrics, "edgeproxy_render_jobs_dropped_total") == 4
            assert value(metrics, "edgeproxy_render_queue_depth") == 0
        finally:
            release.set()
            holder.join(30)
        assert slow["r"].status_code == 200
        after = c.get("/metrics").text
        # Only the slow render ran: the four dropped ones never reached a render thread.
        assert value(after, "edgeproxy_requests_total", status_class="2xx", format="webp") == 1
        assert value(after, "edgeproxy_requests_total", status_class="2xx", format="png") == 0
        assert c.get(signed("/w:100/f:png/demo/giunchedi-portrait.jpg")).status_code == 200


def wait_for(condition, what: str, timeout: float = 10) -> None:
    """Poll ``condition`` until it holds (bounded by ``timeout`` seconds, else fail naming ``what``)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not {what} within {timeout} s"
        time.sleep(0.02)


def test_single_flight_cancels_shared_work_only_when_every_caller_left():
    async def scenario() -> tuple[str, bool, bool]:
        flights = SingleFlight()
        started = asyncio.Event()
        outcome = {"cancelled": False}

        async def work() -> str:
            started.set()
            try:
                await asyncio.sleep(0.2)
            except asyncio.CancelledError:
                outcome["cancelled"] = True
                raise
            return "done"

        first = asyncio.ensure_future(flights.run("k", work))
        second = asyncio.ensure_future(flights.run("k", work))
        await started.wait()
        first.cancel()  # one caller leaves: the other still gets the result
        result, shared = await second
        kept = not outcome["cancelled"]

        third = asyncio.ensure_future(flights.run("k2", work))
        await asyncio.sleep(0.01)
        third.cancel()  # the only caller leaves: the work is cancelled
        await asyncio.sleep(0.01)
        return result, shared and kept, outcome["cancelled"]

    assert asyncio.run(scenario()) == ("done", True, True)
