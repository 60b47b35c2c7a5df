"""The optimised tier's background work: a bounded queue of optimisations done by low-priority threads
(in worker processes of their own under ``optimise_isolation = "process"``: ``optimise_process``).

A derivative with a quality target (``q:auto``) is answered first by the fast encoders; its optimised
twin (the quality searched to the target with the slow encoders: ``edgeproxy.quality``) is made here,
off the request path, and put in the result storage (``edgeproxy.results``), where the next request
finds it (``Service.derive``). The seeds' delivery playbook: "edge transformation for interactive
previews while queuing production quality derivatives for background generation and caching".

Bounds, so that background work never takes what requests need:

- at most ``queue`` optimisations waiting or running (each named by the optimised derivative's ETag:
  a second request for one already queued adds nothing); more are dropped and counted, and the next
  request for that derivative queues it again;
- ``threads`` threads of their own (not the render pool's), each lowered to the weakest CPU priority
  the kernel has (``nice`` 19, Linux ``setpriority`` on the thread: POSIX leaves per-thread nice to
  the system; on Linux each thread is a task of its own). That orders only these threads: libvips'
  worker threads are the process's, reused by any render, and keep the priority of the thread that
  created them (a worker made for a background render may later run a request's, and the other way
  round), so the gate below is what keeps the background off the requests' CPU;
- each optimisation has ``timeout`` seconds from when it starts (its render's deadline: libvips' work
  is cancelled past it); waiting in the queue does not count;
- a background thread starts an optimisation only when ``busy()`` (the render pool: requests' renders
  running or waiting) says no, polling every ``IDLE_POLL`` seconds: nice only orders threads that
  want a core at once, and the background also holds the GIL and memory bandwidth, so under a storm
  of requests it waits (the queue fills and drops) and catches up when they are done. A started
  optimisation runs to its end (seconds at most for an AVIF search).

With ``optimise_isolation = "process"`` each thread hands its optimisations to a worker process of
its own and waits (``optimise_process.Workers``): the whole worker is at nice 19, libvips' threads
in it included, a worker past ``timeout`` plus a grace is killed, and one that crashes fails only
its optimisation (both counted ``failed`` and logged); the gate above stays in the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from edgeproxy.errors import ProxyError
from edgeproxy.http.metrics import Metrics
from edgeproxy.results.store import ResultStore
from edgeproxy.service.optimise_process import Job, WorkerLost, Workers

_log = logging.getLogger("edgeproxy.optimise")

T = TypeVar("T")
#: The weakest CPU priority (``nice``) of a background thread.
BACKGROUND_NICE = 19
#: Seconds between two looks at whether requests are rendering, while an optimisation waits.
IDLE_POLL = 0.05


def _lower_priority() -> None:
    """Run in each background thread as it starts: ``nice`` ``BACKGROUND_NICE`` for this thread only
    (Linux: ``setpriority(PRIO_PROCESS, tid)`` names one thread). Elsewhere nothing is changed."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not permitted: run at normal priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)


class _Threads:
    """``count`` daemon threads at background priority running submitted calls one at a time each,
    each call only once ``busy()`` is False, given the number of the thread running it (0 to
    ``count - 1``: its worker slot under ``optimise_isolation = "process"``).

    Daemon threads, unlike ``concurrent.futures``' (which the interpreter joins at exit): a shutdown
    never waits for an optimisation to finish (an AV1 encode cannot be interrupted once it has its
    pixels); whatever one was doing is simply not stored."""

    def __init__(self, count: int, busy: Callable[[], bool]) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[int], Any], Callable[[Any, BaseException | None], None]] | None]
        self._jobs = queue.SimpleQueue()
        self._count = count
        self._busy = busy
        self._closing = False
        for n in range(count):
            threading.Thread(target=self._work, args=(n,), name=f"edgeproxy-optimise-{n}", daemon=True).start()

    def _work(self, slot: int) -> None:
        _lower_priority()
        while (job := self._jobs.get()) is not None:
            fn, done = job
            while self._busy() and not self._closing:  # requests first: wait until they are rendered
                time.sleep(IDLE_POLL)
            if self._closing:  # shutting down: what is still queued never starts
                continue
            try:
                result = fn(slot)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting task
                done(None, exc)
            else:
                done(result, None)

    async def run(self, fn: Callable[[int], T]) -> T:
        """``fn(slot)`` in a background thread (``slot``: its number), awaited."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def done(result: Any, error: BaseException | None) -> None:
            def settle() -> None:
                if future.cancelled():
                    return
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(result)

            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (shutdown): nobody waits
                loop.call_soon_threadsafe(settle)

        self._jobs.put((fn, done))
        return await future

    def close(self) -> None:
        """Let the threads end after their current call (queued calls never start: their tasks are cancelled)."""
        self._closing = True
        for _ in range(self._count):
            self._jobs.put(None)


@dataclass(frozen=True, slots=True)
class Optimisation:
    """One optimisation: ``name`` (the optimised derivative's ETag: its name in the result storage),
    ``render`` (blocking: the optimised bytes and their media type, given a ``time.monotonic()``
    deadline), the original's ``surrogate_key`` (a purge of the original deletes it), and ``job``,
    the same work as a worker process runs it (picklable: ``tiers.BackgroundRender``); without
    one, ``render`` runs in the background thread whatever the isolation."""

    name: str
    render: Callable[[float], tuple[bytes, str]]
    surrogate_key: str
    job: Job | None = None


class Optimiser:
    """Queues optimisations and stores what they make in ``store`` (see the module's docstring).

    ``queue``: optimisations waiting or running at most; ``threads``: background threads;
    ``timeout``: seconds per optimisation, from its start; ``busy``: whether requests are rendering
    (then no optimisation starts; ``RenderPool.busy``); ``metrics``: ``edgeproxy_optimise*`` (the
    store counts its own: ``StoreStats``); ``workers``: the threads' worker processes
    (``optimise_isolation = "process"``: ``optimise_process.Workers``), None to render in the threads.
    """

    def __init__(
        self,
        store: ResultStore,
        metrics: Metrics,
        *,
        queue: int,
        threads: int,
        timeout: float,
        busy: Callable[[], bool] = lambda: False,
        workers: Workers | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.queue = queue
        self.timeout = timeout
        self._threads = _Threads(threads, busy)
        self.workers = workers
        self._pending: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    @property
    def pending(self) -> int:
        """Optimisations waiting or running."""
        return len(self._pending)

    def submit(self, job: Optimisation) -> bool:
        """Queue ``job`` unless the same one is queued already; False (and counted as dropped) when the
        queue is full. Call from the event loop."""
        if self._closed:
            return False
        if job.name in self._pending:
            return True
        if len(self._pending) >= self.queue:
            self.metrics.optimise.labels("dropped").inc()
            return False
        task = asyncio.get_running_loop().create_task(self._run(job))
        self._pending[job.name] = task
        self.metrics.optimise.labels("queued").inc()
        self.metrics.optimise_pending.inc()
        task.add_done_callback(lambda _task: self._done(job.name))
        return True

    def _done(self, name: str) -> None:
        self._pending.pop(name, None)
        self.metrics.optimise_pending.dec()

    async def _render(self, job: Optimisation) -> tuple[bytes, str]:
        def render(slot: int) -> tuple[bytes, str]:  # in the background thread, when it starts
            if self.workers is not None and job.job is not None:
                self.workers.ready(slot)  # a worker's start is not the job's time
                start = time.monotonic()
                made = self.workers.run(slot, job.job, start + self.timeout)
            else:
                start = time.monotonic()
                made = job.render(start + self.timeout)
            self.metrics.optimise_duration.observe(time.monotonic() - start)
            return made

        return await self._threads.run(render)

    async def _run(self, job: Optimisation) -> None:
        try:
            body, mime = await self._render(job)
        except ProxyError as error:
            self.metrics.optimise.labels("failed").inc()
            _log.info("optimise failed", extra={"fields": {"surrogate_key": job.surrogate_key, "error": error.message}})
            return
        except WorkerLost as lost:  # killed past its deadline, or crashed: its worker starts again
            self.metrics.optimise.labels("failed").inc()
            _log.warning("optimise failed", extra={"fields": {"surrogate_key": job.surrogate_key, "error": str(lost)}})
            return
        except Exception:  # a bug: logged, never raised into the event loop
            self.metrics.optimise.labels("failed").inc()
            _log.exception("optimise failed")
            return
        # A failure to store is the store's to log and count: the next request optimises again.
        await self.store.put(job.name, body, mime=mime, surrogate_keys=tuple(job.surrogate_key.split()))
        self.metrics.optimise.labels("done").inc()

    async def aclose(self) -> None:
        """Cancel what is queued and let the threads go (at shutdown; nothing waits for a running
        optimisation: it is not stored)."""
        self._closed = True
        for task in list(self._pending.values()):
            task.cancel()
        await asyncio.gather(*self._pending.values(), return_exceptions=True)
        self._threads.close()
        if self.workers is not None:
            self.workers.close()
