"""Analysis at upload, measured: ``python -m bench.ingest``.

moto's server (S3 and SQS on one port, its own process) with the bucket's object-created events
going to an SQS queue, and ``edgeproxy ingest`` (the real command, one worker process, both models
on the CPU, one ONNX Runtime thread each) consuming it. Originals are copies of real corpus photos
(0.3 to 12 megapixels, cycled), each under a key of its own:

- ``latency``: ``--uploads`` originals put one at a time, ``--interval`` seconds apart (an idle
  worker each time): upload-to-verdict latency, from the event's time (S3's, when the PUT was
  stored) to the analysis object written (``AnalysisRecord.latency``), and as the uploader sees it
  (from its PUT returning to the analysis object readable, polled every 20 ms);
- ``throughput``: ``--batch`` originals put at once: originals analysed per second by the one
  worker process, from the first record to the last (``analysed_at``); and the worker's CPU time
  per original (user + system, every thread of the process: psutil), whose inverse is the
  throughput per core whatever else the machine runs.

Prints the numbers; the machine's cores are shared with whatever else runs (run it under ``nice``
on a quiet machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import psutil

from bench import report
from edgeproxy.ingest.record import AnalysisRecord, analysis_key, record_key
from edgeproxy.vision.models import default_dir
from testkit.moto import ACCESS_KEY, REGION, SECRET_KEY, MotoS3, moto_s3

PHOTOS = (
    "giunchedi-portrait.jpg",  # 800x533
    "flickr-2725x2225.jpg",
    "imaginary-large.jpg",  # 1920x1080
    "iphone-p3-orientation-6.jpg",  # 4032x3024
    "adobe-rgb-icc.jpg",  # 1900x1263
    "smart-crop.jpg",  # 700x1050
    "no-face.jpg",  # 640x480
    "c2pa-signed.jpg",  # 2048x1365, a C2PA manifest
)


def _record(s3: Any, bucket: str, key: str) -> AnalysisRecord | None:
    try:
        return AnalysisRecord.from_json(
            s3.get_object(Bucket=bucket, Key=analysis_key(key))["Body"].read(), record_key("bench")
        )
    except s3.exceptions.NoSuchKey:
        return None


def _wait(s3: Any, bucket: str, key: str, timeout: float = 300.0) -> AnalysisRecord:
    deadline = time.monotonic() + timeout
    while (found := _record(s3, bucket, key)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no analysis of {key} after {timeout} s")
        time.sleep(0.02)
    return found


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _queue(moto: MotoS3) -> str:
    import boto3

    sqs = boto3.client(
        "sqs", endpoint_url=moto.url, region_name=REGION, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY
    )
    url = str(sqs.create_queue(QueueName="bench", Attributes={"VisibilityTimeout": "60"})["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.close()
    with contextlib.closing(moto.client()) as s3:
        s3.put_bucket_notification_configuration(
            Bucket=moto.bucket,
            NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]},
        )
    return url


def main(argv: list[str] | None = None) -> int:
    parser = report.parser("bench.ingest", __doc__, corpus=True, output=False)
    parser.add_argument("--uploads", type=int, default=20, help="originals put one at a time (default %(default)s)")
    parser.add_argument("--interval", type=float, default=1.5, help="seconds between them (default %(default)s)")
    parser.add_argument("--batch", type=int, default=24, help="originals put at once (default %(default)s)")
    args = parser.parse_args(argv)
    photos = [(args.corpus / name).read_bytes() for name in PHOTOS]
    models = default_dir()
    with moto_s3("bench-ingest") as moto:
        queue = _queue(moto)
        settings = {
            "signing_key": "bench",
            "nsfw_model": str(models / "open-nsfw.onnx"),
            "face_model": str(models / "centerface.onnx"),
            "ingest_queue_url": queue,
            "log_level": "warning",
            "origins": json.dumps({"media": f"s3://{moto.bucket}"}),
            **{k: str(v) for k, v in moto.settings().items()},
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGEPROXY_", "AWS_"))}
        env.update({f"EDGEPROXY_{k.upper()}": v for k, v in settings.items()})  # the worker's settings
        worker = subprocess.Popen([sys.executable, "-m", "edgeproxy", "ingest"], env=env)
        try:
            with contextlib.closing(moto.client()) as s3:
                _wait_ready(s3, moto, photos[0])
                latencies, seen = [], []
                for n in range(args.uploads):
                    key = f"latency/{n}.jpg"
                    s3.put_object(Bucket=moto.bucket, Key=key, Body=photos[n % len(photos)])
                    put = time.monotonic()
                    record = _wait(s3, moto.bucket, key)
                    seen.append(time.monotonic() - put)
                    latencies.append(record.latency)
                    time.sleep(args.interval)
                keys = [f"batch/{n}.jpg" for n in range(args.batch)]
                process = psutil.Process(worker.pid)
                before = process.cpu_times()
                for n, key in enumerate(keys):
                    s3.put_object(Bucket=moto.bucket, Key=key, Body=photos[n % len(photos)])
                records = [_wait(s3, moto.bucket, key) for key in keys]
                after = process.cpu_times()
                cpu = (after.user + after.system) - (before.user + before.system)
        finally:
            worker.terminate()
            worker.wait(30)
    done = sorted(r.analysed_at for r in records)
    rate = (len(done) - 1) / (done[-1] - done[0])
    pixels = statistics.mean(r.width * r.height for r in records) / 1e6
    print(
        json.dumps(
            {
                "uploads": args.uploads,
                "latency_p50_s": round(statistics.median(latencies), 3),
                "latency_p95_s": round(_percentile(latencies, 0.95), 3),
                "latency_max_s": round(max(latencies), 3),
                "seen_by_uploader_p50_s": round(statistics.median(seen), 3),
                "seen_by_uploader_p95_s": round(_percentile(seen, 0.95), 3),
                "batch": args.batch,
                "originals_per_second_one_process": round(rate, 2),
                "worker_cpu_seconds_per_original": round(cpu / args.batch, 3),
                "originals_per_cpu_second": round(args.batch / cpu, 2),
                "mean_megapixels": round(pixels, 2),
                "cores": os.cpu_count(),
            },
            indent=1,
        )
    )
    return 0


def _wait_ready(s3: Any, moto: MotoS3, body: bytes) -> None:
    """Warm the worker up (models loaded, first inference done) with one original."""
    s3.put_object(Bucket=moto.bucket, Key="warm-up.jpg", Body=body)
    _wait(s3, moto.bucket, "warm-up.jpg", timeout=120)


if __name__ == "__main__":
    raise SystemExit(main())
