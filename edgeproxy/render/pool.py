"""The bounded render pool: libvips work off the event loop, a bounded queue in front, and the
earliest deadline first.

Threads, not processes: libvips releases the GIL while it computes, so N threads use N cores. A
request beyond ``threads + queue`` in flight is refused at once with 503 and ``Retry-After``, so a
burst cannot grow memory without bound (imgproxy's queue/worker semaphores do the same).

Waiting jobs are served earliest deadline first (EDF; Liu and Layland, "Scheduling algorithms for
multiprogramming in a hard-real-time environment", JACM 20(1), 1973), not in the order they were
submitted. Every job of a request carries the request's deadline (its start plus
``request_timeout``), so a request's later jobs overtake the earlier jobs of requests that came
after it: with N cold originals at once, the first request's render runs as soon as its analysis
is done instead of behind every other request's analysis, and answers come spread over the batch
rather than all at its end. With one job per request (a render of an analysed original), EDF is
first come, first served.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, TypeVarTuple

from edgeproxy.errors import overloaded, timed_out

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


@dataclass(order=True, slots=True)
class _Job:
    """A waiting job, ordered by (``deadline``, submission order)."""

    deadline: float
    seq: int
    fn: Callable[..., Any] = field(compare=False)  # jobs of every result type share the heap
    args: tuple[Any, ...] = field(compare=False)
    submitted: float = field(compare=False)
    future: concurrent.futures.Future[tuple[float, Any]] = field(compare=False)  # (waited seconds, fn's result)


class RenderPool:
    """``threads`` render threads and up to ``queue`` waiting jobs, served earliest deadline first.

    A caller cancelled while its job waits for a thread (its client went away) takes the job out of
    the queue at once: ``dropped`` counts those. A running job cannot be interrupted from here; the
    render pipeline stops itself at its deadline, and until then the job keeps its slot, so
    capacity stays honest.

    Raises (from ``run``):
        ProxyError(503): ``threads + queue`` jobs already in flight.
        ProxyError(504): the job did not finish by its deadline (a waiting job is dropped).
    """

    def __init__(self, threads: int, queue: int, retry_after: int):
        self.threads = threads
        self.capacity = threads + queue
        self.retry_after = retry_after
        self.dropped = 0  # jobs cancelled before they started
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._in_flight = 0
        self._busy = 0
        self._closed = False
        self._cond = threading.Condition()  # an RLock: a future's callbacks may run while it is held
        self._workers = [threading.Thread(target=self._work, name=f"render-{i}", daemon=True) for i in range(threads)]
        for worker in self._workers:
            worker.start()

    def queue_depth(self) -> int:
        """Jobs waiting for a thread."""
        return max(0, self._in_flight - self._busy)

    def busy(self) -> bool:
        """Whether any job is running or waiting (what background work gives way to)."""
        return self._in_flight > 0

    def utilization(self) -> float:
        """Busy threads / threads, 0..1."""
        return self._busy / self.threads

    def _work(self) -> None:
        """A render thread: the waiting job with the earliest deadline, one at a time, until closed."""
        while True:
            with self._cond:
                while not self._heap and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job = heapq.heappop(self._heap)
                if not job.future.set_running_or_notify_cancel():  # cancelled while it waited
                    continue
                self._busy += 1
            try:
                started = time.monotonic()
                result = job.fn(*job.args)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                job.future.set_exception(exc)
            else:
                job.future.set_result((started - job.submitted, result))
            finally:
                with self._cond:
                    self._busy -= 1
                del job  # the original's bytes go with it, not with the next wait

    async def run(self, fn: Callable[[*Ts], T], *args: *Ts, deadline: float) -> tuple[float, T]:
        """(seconds the job waited for a thread, ``fn(*args)``), run in a render thread.

        ``deadline`` (a ``time.monotonic()`` value: the request's) is the job's priority and when the
        caller stops waiting (504).
        """
        now = time.monotonic()
        with self._cond:
            if self._closed or self._in_flight >= self.capacity:
                raise overloaded(self.retry_after)
            self._in_flight += 1
            future: concurrent.futures.Future[tuple[float, T]] = concurrent.futures.Future()
            future.add_done_callback(self._release)  # done, failed or cancelled: the slot is free
            job = _Job(deadline, next(self._seq), fn, args, now, future)
            heapq.heappush(self._heap, job)
            self._cond.notify()
        try:
            async with asyncio.timeout(max(0.001, deadline - now)):
                return await asyncio.wrap_future(future)
        except TimeoutError:
            self._cancel(job)  # dropped if it is still waiting; a running render stops at its deadline
            raise timed_out("render deadline exceeded") from None
        except asyncio.CancelledError:
            if self._cancel(job):
                self.dropped += 1
            raise

    def _release(self, _future: concurrent.futures.Future[Any]) -> None:
        with self._cond:
            self._in_flight -= 1

    def _cancel(self, job: _Job) -> bool:
        """Take ``job`` out of the queue if it has not started (True), releasing its bytes at once."""
        with self._cond:
            if not job.future.cancel():
                return False
            try:
                self._heap.remove(job)
            except ValueError:
                return True  # already taken out
            heapq.heapify(self._heap)
            return True

    def close(self) -> None:
        """Stop the threads once their current job is done; waiting jobs are cancelled."""
        with self._cond:
            self._closed = True
            waiting, self._heap = self._heap, []
            for job in waiting:
                job.future.cancel()
            self._cond.notify_all()
