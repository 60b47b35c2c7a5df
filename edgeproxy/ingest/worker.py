"""The ingest worker: one process's loop over a queue of S3 event notifications (``consume``), or
over a local folder's changes (``watch``), handing each upload to the ``Analyser`` and counting it.

A message is deleted only after every upload it announces has its analysis object stored (or was
skipped); while it is analysed its visibility is extended every half ``ingest_visibility_timeout``,
so that another worker receives it only when this one died. A failure is logged with the message's
receive count and counted; the message is left to come back (after three receives the queue's
RedrivePolicy moves it to the dead-letter queue). Several workers, in one or several processes or
hosts, share a queue safely: the work is idempotent (``Analyser.process``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

from edgeproxy.errors import ProxyError
from edgeproxy.ingest.analyser import Analyser, Outcome
from edgeproxy.ingest.events import Upload, is_original, s3_uploads
from edgeproxy.ingest.metrics import IngestMetrics
from edgeproxy.ingest.sqs import Message, SqsQueue
from edgeproxy.origins import Origin
from edgeproxy.origins.local import LocalOrigin
from edgeproxy.url.keys import is_safe_key

_log = logging.getLogger("edgeproxy.ingest")
#: Seconds to wait after the queue could not be reached before receiving again.
QUEUE_RETRY = 5.0


class Worker:
    """Handles uploads with ``analyser``, counting them in ``metrics``."""

    def __init__(self, analyser: Analyser, metrics: IngestMetrics):
        self.analyser = analyser
        self.metrics = metrics

    async def handle(self, upload: Upload, *, receives: int = 1) -> Outcome:
        """Analyse one upload: its outcome, counted (``failed`` for any error, logged with the
        upload, the receive count and the error; never raised)."""
        try:
            outcome, record = await self.analyser.process(upload)
        except Exception as error:  # any failure: logged, counted, the message comes back
            status = error.status if isinstance(error, ProxyError) else None
            _log.warning(
                "ingest failed",
                extra={
                    "fields": {
                        "origin": upload.origin,
                        "key": upload.key[:256],
                        "receives": receives,
                        "status": status,
                        "error": f"{type(error).__name__}: {error}"[:500],
                    }
                },
            )
            self.metrics.jobs.labels(Outcome.FAILED).inc()
            return Outcome.FAILED
        self.metrics.jobs.labels(outcome).inc()
        if outcome is Outcome.ANALYSED and record is not None:
            self.metrics.latency.observe(record.latency)
            _log.info(
                "original analysed",
                extra={
                    "fields": {
                        "origin": upload.origin,
                        "key": upload.key[:256],
                        "verdict": record.verdict.value,
                        "nsfw": record.nsfw,
                        "faces": None if record.faces is None else len(record.faces),
                        "latency": round(record.latency, 3),
                    }
                },
            )
        return outcome

    async def consume(
        self,
        queue: SqsQueue,
        buckets: Mapping[str, list[tuple[str, str]]],
        *,
        visibility: int,
        wait: int,
        stop: asyncio.Event,
    ) -> None:
        """Receive and handle messages from ``queue`` until ``stop`` is set (the message in hand is
        finished first, and a long poll in progress ends first: at most ``wait`` seconds).
        ``buckets``: the S3 origins by bucket (``events.s3_buckets``)."""
        while not stop.is_set():
            try:
                messages = await queue.receive(wait=wait, visibility=visibility)
            except Exception as error:  # the queue is unreachable: say so, try again
                _log.warning(
                    "ingest queue receive failed", extra={"fields": {"error": f"{type(error).__name__}: {error}"}}
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), QUEUE_RETRY)
                continue
            for message in messages:
                await self._message(queue, message, buckets, visibility)

    async def _message(
        self, queue: SqsQueue, message: Message, buckets: Mapping[str, list[tuple[str, str]]], visibility: int
    ) -> None:
        try:
            uploads = s3_uploads(message.body, buckets)
        except ValueError as error:  # left to the dead-letter queue
            _log.warning(
                "ingest message unreadable",
                extra={"fields": {"receives": message.receives, "error": str(error)[:500]}},
            )
            self.metrics.jobs.labels(Outcome.FAILED).inc()
            return
        async with _extending(queue, message, visibility):
            outcomes = [await self.handle(upload, receives=message.receives) for upload in uploads]
        if Outcome.FAILED not in outcomes:
            await queue.delete(message)

    async def watch(
        self, origins: Mapping[str, Origin], *, stop: asyncio.Event, ready: Callable[[], None] | None = None
    ) -> None:
        """Handle every original added or changed under the local origins among ``origins``
        (``watchfiles``: inotify, FSEvents...) until ``stop`` is set; ``ready`` is called once the
        folders are watched. Each is analysed once it is complete (changes are grouped until the
        folder is quiet for 50 ms); a failure is logged and counted, and tried again at its next
        change (a folder has no queue to redeliver it)."""
        from watchfiles import Change, awatch

        roots = {origin.root: name for name, origin in origins.items() if isinstance(origin, LocalOrigin)}
        if not roots:
            raise ValueError("--watch needs at least one local-folder origin")
        started = asyncio.Event()
        changes = awatch(*roots, stop_event=stop, yield_on_timeout=True, rust_timeout=200, recursive=True)
        async for batch in changes:
            if not started.is_set():
                started.set()
                if ready is not None:
                    ready()
            for change, raw in sorted(batch, key=lambda item: item[1]):
                if change is Change.deleted:
                    continue
                upload = _local_upload(Path(raw), roots)
                if upload is not None:
                    await self.handle(upload)


def _local_upload(path: Path, roots: Mapping[Path, str]) -> Upload | None:
    """The upload a changed ``path`` is, or None: not a file, hidden, not an original, outside."""
    for root, name in roots.items():
        if path.is_relative_to(root):
            key = path.relative_to(root).as_posix()
            if path.name.startswith(".") or not is_safe_key(key) or not is_original(key):
                return None
            try:
                stat = path.stat()
            except OSError:
                return None
            return Upload(name, key, stat.st_mtime) if path.is_file() else None
    return None


@contextlib.asynccontextmanager
async def _extending(queue: SqsQueue, message: Message, visibility: int) -> AsyncIterator[None]:
    """While the body runs, keep ``message`` hidden: every ``visibility / 2`` seconds, another
    ``visibility`` seconds (SQS ChangeMessageVisibility)."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(visibility / 2)
            try:
                await queue.extend(message, visibility)
            except Exception as error:  # the message may come back to another worker: harmless
                _log.warning(
                    "ingest visibility not extended", extra={"fields": {"error": f"{type(error).__name__}: {error}"}}
                )

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
