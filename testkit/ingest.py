"""``edgeproxy ingest`` in tests: an SQS queue (moto's server, ``testkit.moto``) receiving a bucket's
object-created notifications with a dead-letter queue, a worker (``edgeproxy.ingest.run.work``) in
a thread of its own, and polling for what it writes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from edgeproxy.ingest.metrics import IngestMetrics
from edgeproxy.ingest.record import record_key
from edgeproxy.ingest.run import work
from edgeproxy.settings import Settings
from testkit.app import KEY
from testkit.moto import MotoS3

#: The key of the analysis objects of a deployment signed with testkit's ``KEY`` (every test proxy's).
RECORD_KEY = record_key(KEY)


def wait_for(what: Callable[[], Any], timeout: float = 10.0, step: float = 0.05) -> Any:
    """``what()``'s first truthy value, polled every ``step`` seconds.

    Raises:
        AssertionError: none within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = what()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing after {timeout} s")
        time.sleep(step)


def sqs_client(moto: MotoS3) -> Any:
    import boto3

    from testkit.moto import ACCESS_KEY, REGION, SECRET_KEY

    return boto3.client(
        "sqs", endpoint_url=moto.url, region_name=REGION, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY
    )


def notified_queue(moto: MotoS3, sqs: Any, bucket: str, name: str, visibility: int) -> tuple[str, str]:
    """(queue URL, dead-letter queue URL): a queue receiving ``bucket``'s object-created events,
    with a RedrivePolicy (maxReceiveCount 3) to its dead-letter queue, as docs/ingest.md sets up."""
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})
    queue = sqs.create_queue(
        QueueName=name, Attributes={"VisibilityTimeout": str(visibility), "RedrivePolicy": redrive}
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    with contextlib.closing(moto.client()) as s3:
        s3.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]},
        )
    return queue, dlq


class Running:
    """A worker (``edgeproxy.ingest.run.work``) in a thread with its own event loop and metrics."""

    def __init__(self, settings: Settings, *, watch: bool = False):
        self.registry = CollectorRegistry()
        self.metrics = IngestMetrics(self.registry)
        self.settings = settings
        self.watch = watch
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop: asyncio.Event | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self.loop, self.stop = asyncio.get_running_loop(), asyncio.Event()
            await work(self.settings, watch=self.watch, metrics=self.metrics, stop=self.stop, ready=self.ready.set)

        try:
            asyncio.run(main())
        except BaseException as error:  # reported by jobs() and close()
            self.error = error
            self.ready.set()

    def jobs(self, outcome: str) -> float:
        assert self.error is None, self.error
        return self.registry.get_sample_value("edgeproxy_ingest_jobs_total", {"outcome": outcome}) or 0.0

    def __enter__(self) -> Running:
        self.thread.start()
        assert self.ready.wait(30) and self.error is None, self.error
        return self

    def __exit__(self, *exc: object) -> None:
        if self.loop is not None and self.stop is not None:
            self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(30)
        assert not self.thread.is_alive()
