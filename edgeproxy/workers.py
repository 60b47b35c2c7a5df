"""The bounded render pool: libvips work off the event loop, with a bounded queue in front.

Threads, not processes: libvips releases the GIL while it computes, so N threads use N cores. A
request beyond ``threads + queue`` in flight is refused at once with 503 and ``Retry-After``, so a
burst cannot grow memory without bound (imgproxy's queue/worker semaphores do the same).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from edgeproxy.errors import overloaded, timed_out

T = TypeVar("T")


class RenderPool:
    """``threads`` render threads and up to ``queue`` waiting jobs.

    A caller cancelled while its job waits for a thread (its client went away) takes the job out of
    the queue: ``dropped`` counts those. A running job cannot be interrupted and finishes.

    Raises (from ``run``):
        ProxyError(503): ``threads + queue`` jobs already in flight.
        ProxyError(504): the job did not finish within its timeout (a queued job is cancelled; a
            running one finishes in the background, still holding its slot, so capacity stays honest).
    """

    def __init__(self, threads: int, queue: int, retry_after: int):
        self.threads = threads
        self.capacity = threads + queue
        self.retry_after = retry_after
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="render")
        self._slots = threading.BoundedSemaphore(self.capacity)
        self._in_flight = 0
        self._busy = 0
        self.dropped = 0  # jobs cancelled before they started
        self._lock = threading.Lock()

    def queue_depth(self) -> int:
        """Jobs waiting for a thread."""
        return max(0, self._in_flight - self._busy)

    def utilization(self) -> float:
        """Busy threads / threads, 0..1."""
        return self._busy / self.threads

    def _job(self, submitted: float, fn: Callable[..., T], args: tuple) -> tuple[float, T]:
        started = time.monotonic()
        with self._lock:
            self._busy += 1
        try:
            return started - submitted, fn(*args)
        finally:
            with self._lock:
                self._busy -= 1

    def _release(self, _future) -> None:
        with self._lock:
            self._in_flight -= 1
        self._slots.release()

    async def run(self, fn: Callable[..., T], *args, timeout: float) -> tuple[float, T]:
        """(seconds the job waited for a thread, ``fn(*args)``), run in a render thread."""
        if not self._slots.acquire(blocking=False):
            raise overloaded(self.retry_after)
        with self._lock:
            self._in_flight += 1
        try:
            future = self._executor.submit(self._job, time.monotonic(), fn, args)
        except BaseException:
            self._release(None)
            raise
        future.add_done_callback(self._release)
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.wrap_future(future)
        except TimeoutError:
            future.cancel()
            raise timed_out("render deadline exceeded") from None
        except asyncio.CancelledError:
            if future.cancel():
                self.dropped += 1
            raise

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
