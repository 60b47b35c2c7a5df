"""The optimised tier's background work in worker processes of its own (``optimise_isolation = "process"``).

Each of the ``optimise_threads`` background slots (``service.optimise``) owns one worker process,
started at its first job and kept. A worker lowers its whole process to ``nice`` 19 before libvips
is loaded, so every thread libvips makes in it (its worker threads, the AV1 encoder's) has that
priority: unlike the background threads of ``optimise_isolation = "thread"``, whose libvips threads
are the server's, shared with requests and as strong as theirs. It configures libvips as the server
does (``vips_process.configure``) and builds its own ``Renderer`` from the same ``Settings`` with
the same helpers (``settings_values.source_limits``, ``encoder_options``, ``compose.derivative_signer``),
so its bytes, and the ETags naming them, are those the thread mode makes.

What a process gives that a thread cannot:

- a hard bound: a job still running ``grace`` seconds past its deadline (an AV1 encode cannot be
  interrupted once it has its pixels) is ended with SIGKILL, and its worker started again at the next job;
- a crash of a decoder or encoder on a hostile original (a segmentation fault, an abort, the kernel's
  OOM killer) ends the worker and fails only its job; the server never goes down with it.

A job crosses the pipe as a picklable callable ``job(renderer, until)`` (``tiers.BackgroundRender``:
the original's bytes, the ``Negotiated``, the ``Treatment``, title and target) with its deadline
``until`` (``time.monotonic()``: one clock for every process on Linux, ``CLOCK_MONOTONIC``); it comes
back as ``(body, mime)``, or a ``ProxyError``'s status, message and category. Workers are started
with ``multiprocessing``'s "spawn" (a fresh interpreter: never a fork of a process whose libvips
has threads).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnProcess
from typing import TYPE_CHECKING, Any

from edgeproxy.errors import ProxyError

if TYPE_CHECKING:
    from edgeproxy.service.renderer import Renderer
    from edgeproxy.settings import Settings

#: A job as a worker runs it: ``job(renderer, until)`` -> (body, media type); picklable.
Job = Callable[["Renderer", float], tuple[bytes, str]]
#: The CPU priority (``nice``) of a worker process.
WORKER_NICE = 19
#: Seconds past a job's deadline before its worker is killed (libvips' own cancellation comes first).
GRACE = 2.0
#: Seconds a new worker may take to start (an interpreter, libvips, the C2PA signer).
START_TIMEOUT = 60.0


class WorkerLost(Exception):
    """A worker ended before it answered: killed past its job's deadline, or died (a signal, the OOM
    killer); the message says which, with the exit code."""


def serve(settings: Settings, conn: Connection) -> None:
    """The worker process's main: ``nice`` ``WORKER_NICE`` for the whole process, then libvips
    configured and a ``Renderer`` built from ``settings``; answers ``("ready",)``, then each
    ``(job, until)`` received on ``conn`` with ``("ok", body, mime)``, ``("error", status, message,
    category)`` (a ``ProxyError``) or ``("bug", text)``, until the parent's end closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the server's to handle
    with contextlib.suppress(OSError):  # one thread so far: every thread made later inherits it
        os.setpriority(os.PRIO_PROCESS, 0, WORKER_NICE)
    from edgeproxy.compose import derivative_signer
    from edgeproxy.render.vips_process import configure
    from edgeproxy.service.renderer import Renderer
    from edgeproxy.settings_values import encoder_options, source_limits

    configure(settings.vips_concurrency)
    renderer = Renderer(settings, source_limits(settings), encoder_options(settings), derivative_signer(settings))
    conn.send(("ready",))
    while True:
        try:
            job, until = conn.recv()
        except (EOFError, OSError):  # the server has gone (or closed us)
            return
        reply: tuple[Any, ...]
        try:
            body, mime = job(renderer, until)
        except ProxyError as error:
            reply = ("error", error.status, error.message, error.category)
        except Exception as exc:  # noqa: BLE001 - a bug: told to the server, which logs it
            reply = ("bug", f"{type(exc).__name__}: {exc}")
        else:
            reply = ("ok", body, mime)
        conn.send(reply)


class _Worker:
    """One worker process and the server's end of its pipe."""

    def __init__(self, settings: Settings) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process: SpawnProcess = context.Process(
            target=serve, args=(settings, child), name="edgeproxy-optimise-worker", daemon=True
        )
        self.process.start()
        child.close()
        self._reply(time.monotonic() + START_TIMEOUT, "starting")

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def run(self, job: Job, until: float, grace: float) -> tuple[bytes, str]:
        try:
            self.conn.send((job, until))
        except OSError:
            self.kill()
            raise WorkerLost(f"worker died before its job (exit code {self.process.exitcode})") from None
        reply = self._reply(until + grace, "past its deadline")
        if reply[0] == "ok":
            return reply[1], reply[2]
        if reply[0] == "error":
            raise ProxyError(reply[1], reply[2], reply[3])
        raise RuntimeError(f"optimise worker: {reply[1]}")

    def _reply(self, by: float, late: str) -> tuple[Any, ...]:
        ready = wait([self.conn, self.process.sentinel], timeout=max(0.0, by - time.monotonic()))
        if not ready:
            self.kill()
            raise WorkerLost(f"worker killed {late} (SIGKILL)")
        with contextlib.suppress(EOFError, OSError):
            if self.conn in ready or self.conn.poll():
                reply: tuple[Any, ...] = self.conn.recv()
                return reply
        self.kill()
        raise WorkerLost(f"worker died (exit code {self.process.exitcode})")

    def kill(self) -> None:
        """SIGKILL; reaped at once (its pipe is left to the thread that may be waiting on it)."""
        with contextlib.suppress(OSError, ValueError):
            self.process.kill()
            self.process.join(1)


class Workers:
    """``count`` worker slots for the background threads of ``service.optimise`` (slot ``n`` is used
    by thread ``n`` only), each a worker process started at its first job (``serve`` with
    ``settings``), kept, and started again after it was killed or died. ``grace``: seconds past a
    job's deadline before its worker is killed."""

    def __init__(self, settings: Settings, count: int, *, grace: float = GRACE) -> None:
        self.settings = settings
        self.grace = grace
        self._slots: list[_Worker | None] = [None] * count
        self._closed = threading.Event()  # set by close (from another thread)

    def pids(self) -> list[int]:
        """The process ids of the workers that are running."""
        return [w.process.pid for w in self._slots if w is not None and w.alive and w.process.pid is not None]

    def ready(self, slot: int) -> None:
        """Blocking: slot ``slot``'s worker running, started if it is not (seconds: an interpreter and
        libvips).

        Raises:
            WorkerLost: it did not start within ``START_TIMEOUT`` seconds, or died starting, or the
                workers are closed.
        """
        worker = self._slots[slot]
        if worker is not None and worker.alive:
            return
        if self._closed.is_set():
            raise WorkerLost("closed")
        self._slots[slot] = None
        self._slots[slot] = worker = _Worker(self.settings)
        if self._closed.is_set():  # closed while it started
            worker.kill()
            raise WorkerLost("closed")

    def run(self, slot: int, job: Job, until: float) -> tuple[bytes, str]:
        """Blocking: ``job`` in slot ``slot``'s worker (started if need be), by ``until``
        (``time.monotonic()``) plus ``grace``.

        Raises:
            ProxyError: the job's own (504 past its deadline, 422 ...).
            WorkerLost: the worker was killed past the deadline, or died; it is started again at the
                slot's next job.
            RuntimeError: the job raised something else (a bug), with its type and message.
        """
        self.ready(slot)
        worker = self._slots[slot]
        assert worker is not None
        return worker.run(job, until, self.grace)

    def close(self) -> None:
        """Kill every worker (at shutdown: what they were doing is not stored; nothing waits for it)."""
        self._closed.set()
        for worker in self._slots:
            if worker is not None:
                worker.kill()
