"""A real S3-compatible server for the tests: moto's server mode in its own process on 127.0.0.1.

``moto_s3()`` starts ``python -m moto.server`` on a free port, creates a bucket and yields a
:class:`MotoS3`; on exit it stops the process. Unlike moto's in-process ``ThreadedMotoServer``,
this is a separate process, so an outage is a real one: ``stop()`` kills it (connections are
refused), ``start()`` runs a new one on the same port. moto keeps objects in memory, so a
restarted server is empty: ``start()`` creates the bucket again and puts back every object put
through :meth:`MotoS3.put` (the same bytes, so the same MD5 ETag; a new LastModified).

Credentials are not checked (moto's default); :data:`SETTINGS` are proxy settings that reach it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from testkit.net import free_port

ACCESS_KEY = "AKIAEDGEPROXYTEST000"
SECRET_KEY = "s3-secret-that-must-never-be-logged"
REGION = "us-east-1"
START_TIMEOUT = 30.0


@dataclass
class MotoS3:
    """A moto server process on 127.0.0.1:``port`` holding ``bucket``."""

    port: int
    bucket: str
    log: Path
    proc: subprocess.Popen | None = None
    objects: dict[str, tuple[bytes, dict[str, str]]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self, **overrides) -> dict:
        """edgeproxy settings that reach this server."""
        return {
            "s3_endpoint_url": self.url,
            "s3_region": REGION,
            "s3_access_key_id": ACCESS_KEY,
            "s3_secret_access_key": SECRET_KEY,
            **overrides,
        }

    def client(self):
        """A boto3 S3 client of this server (close it after use)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def put(self, key: str, body: bytes, **metadata: str) -> None:
        """Put an object (kept here too, to be put back after a restart)."""
        self.objects[key] = (body, metadata)
        with contextlib.closing(self.client()) as s3:
            s3.put_object(Bucket=self.bucket, Key=key, Body=body, Metadata=metadata)

    def get(self, key: str) -> bytes | None:
        """The object ``key`` as the bucket holds it now, or None when there is none."""
        with contextlib.closing(self.client()) as s3:
            try:
                return bytes(s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
            except s3.exceptions.NoSuchKey:
                return None

    def start(self) -> None:
        """Run the server (again) on ``port``, wait until it answers, then create the bucket and put
        back the objects.

        Raises:
            RuntimeError: the process exited, or did not answer within ``START_TIMEOUT`` seconds
                (the message quotes its output).
        """
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"moto server did not start on port {self.port}:\n{self.log.read_text(errors='replace')[-3000:]}"
                )
            time.sleep(0.05)
        with contextlib.closing(self.client()) as s3:
            s3.create_bucket(Bucket=self.bucket)
            for key, (body, metadata) in self.objects.items():
                s3.put_object(Bucket=self.bucket, Key=key, Body=body, Metadata=metadata)

    def stop(self) -> None:
        """Kill the server process and wait for it: from now on connections are refused."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def answers(self) -> bool:
        """Whether the server answers HTTP (moto's own API root)."""
        try:
            with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1):
                return True
        except urllib.error.HTTPError:
            return True  # an HTTP answer all the same
        except OSError:
            return False


@contextlib.contextmanager
def moto_s3(bucket: str = "edgeproxy-originals") -> Iterator[MotoS3]:
    """A running moto S3 server with ``bucket``; stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="edgeproxy-moto-") as tmp:
        server = MotoS3(port=free_port(), bucket=bucket, log=Path(tmp) / "moto.log")
        server.start()
        try:
            yield server
        finally:
            server.stop()
