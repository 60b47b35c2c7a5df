"""The queue of object-created events: an Amazon SQS queue (or any SQS-compatible server) through
boto3, the AWS SDK, its blocking calls run in a thread (``asyncio.to_thread``).

Delivery is at least once (SQS standard queues): a received message is hidden for the visibility
timeout, deleted by the worker once its analysis is stored, and received again (by any worker)
when it was not deleted in time: a worker died or failed. After ``maxReceiveCount`` receives the
queue's own RedrivePolicy moves it to the dead-letter queue (docs/ingest.md).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from edgeproxy.settings import Settings


@dataclass(frozen=True, slots=True)
class Message:
    """One received message: its ``body`` (an S3 event notification), the ``receipt`` handle that
    deletes it or extends its visibility, and how many times it was received (1 the first time)."""

    body: str
    receipt: str
    receives: int


class SqsQueue:
    """The queue at ``url`` through a boto3 SQS ``client`` (``from_settings`` builds one)."""

    def __init__(self, url: str, client: Any):
        self.url = url
        self.client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> SqsQueue:
        """The queue ``ingest_queue_url``, reached at ``ingest_sqs_endpoint_url`` (else
        ``s3_endpoint_url``, else AWS) in ``ingest_sqs_region`` (else ``s3_region``, else the AWS
        default), with the S3 credentials when they are set (else boto3's chain: AWS_* variables,
        web identity, instance roles).

        Raises:
            ValueError: ``ingest_queue_url`` is not set.
        """
        import boto3
        from botocore.config import Config

        if not settings.ingest_queue_url:
            raise ValueError("ingest_queue_url is not set")
        secret = settings.s3_secret_access_key
        token = settings.s3_session_token
        client = boto3.client(
            "sqs",
            endpoint_url=settings.ingest_sqs_endpoint_url or settings.s3_endpoint_url,
            region_name=settings.ingest_sqs_region or settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=secret.get_secret_value() if secret else None,
            aws_session_token=token.get_secret_value() if token else None,
            config=Config(
                connect_timeout=settings.origin_connect_timeout,
                read_timeout=settings.ingest_wait_time + 10,
                retries={"mode": "standard", "max_attempts": 3},
            ),
        )
        return cls(settings.ingest_queue_url, client)

    async def receive(self, *, wait: int, visibility: int, most: int = 1) -> list[Message]:
        """Up to ``most`` (1..10) messages, waiting at most ``wait`` seconds (long polling) for
        the first; each hidden from other receivers for ``visibility`` seconds.

        Raises:
            botocore.exceptions.BotoCoreError, ClientError: the queue cannot be reached or refused.
        """
        answer = await asyncio.to_thread(
            self.client.receive_message,
            QueueUrl=self.url,
            MaxNumberOfMessages=most,
            WaitTimeSeconds=wait,
            VisibilityTimeout=visibility,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        return [
            Message(m["Body"], m["ReceiptHandle"], int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)))
            for m in answer.get("Messages", [])
        ]

    async def delete(self, message: Message) -> None:
        """Delete ``message``: it is done."""
        await asyncio.to_thread(self.client.delete_message, QueueUrl=self.url, ReceiptHandle=message.receipt)

    async def extend(self, message: Message, seconds: int) -> None:
        """Hide ``message`` for ``seconds`` more from now (its analysis is still running)."""
        await asyncio.to_thread(
            self.client.change_message_visibility,
            QueueUrl=self.url,
            ReceiptHandle=message.receipt,
            VisibilityTimeout=seconds,
        )

    def depth(self) -> float:
        """Blocking: messages waiting (``ApproximateNumberOfMessages``), read at scrape time."""
        answer = self.client.get_queue_attributes(QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"])
        return float(answer["Attributes"]["ApproximateNumberOfMessages"])

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()
