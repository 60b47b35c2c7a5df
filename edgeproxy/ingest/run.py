"""``edgeproxy ingest``: the worker processes, built from the settings.

Each process loads the models once (``Vision.load``), builds the origins and their writers, the
purge hooks and the queue client, and runs one ``Worker`` loop: over the SQS queue
(``ingest_queue_url``) or, with ``--watch``, over the local folders' changes. ``--processes N``
starts N such processes on one queue (spawned: each its own models and ONNX Runtime sessions) and
serves their summed metrics; running the command N times, on one host or many, is the same.
SIGTERM or SIGINT: each process finishes the message in hand, then exits (a message it could not
finish comes back to another worker after the visibility timeout).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import logging.config
import multiprocessing
import os
import shutil
import signal
import tempfile
from collections.abc import Callable

import httpx
from prometheus_client import CollectorRegistry

from edgeproxy import prewarm
from edgeproxy.ingest.analyser import Analyser, Prewarm
from edgeproxy.ingest.events import s3_buckets
from edgeproxy.ingest.metrics import IngestMetrics, serve_metrics
from edgeproxy.ingest.sqs import SqsQueue
from edgeproxy.ingest.worker import Worker
from edgeproxy.origins.writer import Writer, writer_for
from edgeproxy.settings import Settings
from edgeproxy.settings_io import serialize
from edgeproxy.settings_values import analysis_record_key, moderation_policy, purge_hooks, s3_options, source_limits
from edgeproxy.settings_values import origins as origins_of

_log = logging.getLogger("edgeproxy.ingest")


class IngestError(Exception):
    """The settings cannot run ``edgeproxy ingest`` (the message says what to set)."""


def check(settings: Settings, *, watch: bool, processes: int) -> None:
    """What ``edgeproxy ingest`` needs, checked before anything starts.

    Raises:
        IngestError: the SQS client (boto3) or the watcher (watchfiles) not installed (the
            ``ingest`` extra), no models (``nsfw_model``, ``face_model``), no queue and no ``--watch``,
            ``--watch`` with several processes, a variant to prewarm that is malformed or without
            ``ingest_prewarm_base`` or ``signing_key``, or no origin to ingest (an S3 origin for a
            queue, a local folder for ``--watch``; HTTP origins, read-only, are never ingested).
    """
    needed = "watchfiles" if watch else "boto3"
    if importlib.util.find_spec(needed) is None:
        raise IngestError(f"{'--watch' if watch else 'the SQS queue'} needs {needed}: pip install 'edgeproxy[ingest]'")
    if not (settings.nsfw_model and settings.face_model):
        raise IngestError("ingest needs both models: set nsfw_model and face_model (edgeproxy models fetch)")
    if not watch and not settings.ingest_queue_url:
        raise IngestError(
            "set ingest_queue_url (an SQS queue of the bucket's events), or give --watch for local folders"
        )
    if watch and processes > 1:
        raise IngestError("--watch runs in one process: a folder's changes are seen by every watcher")
    if settings.ingest_prewarm_variants and not (settings.ingest_prewarm_base and settings.signing_key):
        raise IngestError("ingest_prewarm_variants needs ingest_prewarm_base (the CDN's URL) and signing_key")
    try:
        prewarm.plan([("origin", "key.jpg")], settings.ingest_prewarm_variants, "key", settings.signature_size)
    except ValueError as error:
        raise IngestError(f"ingest_prewarm_variants: {error}") from None
    kinds = {
        name: location.split("://")[0] if "://" in location else "folder" for name, location in settings.origins.items()
    }
    wanted = "folder" if watch else "s3"
    if wanted not in kinds.values():
        raise IngestError(
            "--watch needs a local-folder origin" if watch else "the queue carries S3 events: configure an s3:// origin"
        )


async def work(
    settings: Settings,
    *,
    watch: bool,
    metrics: IngestMetrics,
    stop: asyncio.Event,
    ready: Callable[[], None] | None = None,
) -> None:
    """One worker process's loop until ``stop`` is set, counted in ``metrics``; ``ready`` is
    called once it listens (the models loaded, the folders watched).

    Raises:
        ModelError: a model cannot be loaded.
    """
    from edgeproxy.vision.analysis import Vision

    vision = Vision.load(settings.model_copy(update={"vision_cache_entries": 0}))
    s3 = s3_options(settings)
    client = httpx.AsyncClient(timeout=settings.origin_timeout, trust_env=False)
    origins = origins_of(settings, client, s3)
    writers: dict[str, Writer] = {}
    for name, origin in origins.items():
        writer = writer_for(origin)
        if writer is not None:
            writers[name] = writer
    hooks = purge_hooks(settings)  # redirects not followed, as the proxy's
    warm = None
    if settings.ingest_prewarm_variants and settings.ingest_prewarm_base and settings.signing_key:
        warm = Prewarm(
            settings.ingest_prewarm_base,
            tuple(settings.ingest_prewarm_variants),
            settings.signing_key.get_secret_value(),
            settings.signature_size,
            settings.ingest_prewarm_timeout,
        )
    try:
        from edgeproxy.provenance.context import C2paContexts

        contexts: C2paContexts | None = C2paContexts()
    except ImportError:
        contexts = None
    analyser = Analyser(
        origins=origins,
        writers=writers,
        vision=vision,
        policy=moderation_policy(settings),
        limits=source_limits(settings),
        hooks=hooks,
        c2pa=contexts,
        prewarm=warm,
        sidecar_max_bytes=settings.sidecar_max_bytes,
        settle=settings.original_cache_ttl,
        record_key=analysis_record_key(settings),
    )
    worker = Worker(analyser, metrics)
    try:
        if watch:
            await worker.watch(origins, stop=stop, ready=ready)
        else:
            queue = SqsQueue.from_settings(settings)
            if ready is not None:
                ready()
            try:
                await worker.consume(
                    queue,
                    s3_buckets(settings.origins),
                    visibility=settings.ingest_visibility_timeout,
                    wait=settings.ingest_wait_time,
                    stop=stop,
                )
            finally:
                queue.close()
    finally:
        await analyser.close()
        for origin in origins.values():
            await origin.aclose()
        await client.aclose()
        await hooks.aclose()


def _process(settings: Settings, watch: bool, registry: CollectorRegistry | None) -> None:
    """Run one worker in this process until SIGTERM or SIGINT."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await work(settings, watch=watch, metrics=IngestMetrics(registry), stop=stop)

    asyncio.run(main())


def _logging(settings: Settings) -> None:
    """The proxy's log format (JSON lines by default) on stderr, at ``log_level``."""
    from edgeproxy.http.logs import logging_config

    logging.config.dictConfig(logging_config(settings.log_level, settings.log_format))


def _child(serialized: str) -> None:
    """A spawned worker process (``--processes``) with the settings ``settings_io.serialize``
    gave it: its metrics go to the multiprocess folder."""
    settings = Settings.model_validate_json(serialized)
    _logging(settings)
    _process(settings, False, None)


def main(settings: Settings, *, watch: bool, processes: int, metrics_port: int | None, metrics_host: str) -> int:
    """Run ``processes`` workers (this process alone when 1) and serve their metrics on
    ``metrics_host:metrics_port`` (none when None); returns the exit status.

    Raises:
        IngestError: as ``check``.
    """
    check(settings, watch=watch, processes=processes)
    _logging(settings)
    depth = None if watch else SqsQueue.from_settings(settings).depth
    if processes == 1:
        registry = CollectorRegistry()
        if metrics_port is not None:
            serve_metrics(metrics_port, metrics_host, registry=registry, depth=depth)
        _process(settings, watch, registry)
        return 0
    folder = tempfile.mkdtemp(prefix="edgeproxy-ingest-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    try:
        if metrics_port is not None:
            serve_metrics(metrics_port, metrics_host, registry=None, depth=depth, multiprocess_dir=folder)
        spawn = multiprocessing.get_context("spawn")
        children = [
            spawn.Process(target=_child, args=(serialize(settings),), name=f"ingest-{n}") for n in range(processes)
        ]
        for child in children:
            child.start()

        def forward(signum: int, _frame: object) -> None:
            for child in children:
                if child.pid is not None and child.is_alive():
                    os.kill(child.pid, signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        for child in children:
            child.join()
        return max((child.exitcode or 0) for child in children)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
