"""What the review page costs: ``python -m bench.review``.

edgeproxy in this process (uvicorn in a thread, ``testkit.app.make_served``) with ``review`` on over
two origins holding N analysis objects each (``KEY.analysis.json``, every one ambiguous, so every one
is listed): a local folder, and an S3 bucket on moto's server (``testkit.moto``: a local stand-in,
slower per request than S3 itself, so its numbers are an upper bound for the requests made, not a
prediction of S3's latency). Requests one at a time:

- ``first listing``: the first ``GET /review`` (JSON): lists the origin, reads every analysis object
  and every listed original's verdict;
- ``listing``: ``GET /review`` again with ``review_cache_seconds = 0``: lists the origin, reuses the
  unchanged analysis objects' records, reads every listed original's verdict (the work the
  background refresh does every ``review_cache_seconds``);
- ``cached``: the same with the listing reused (what a reviewer's page view costs between refreshes);
- ``verdict``: ``POST /review/decide`` (Approve, by bearer token): the verdict written (a sidecar's
  atomic rename, or S3 HeadObject + CopyObject), the original purged (no CDN hook configured),
  the audit line appended with ``fsync``.

Prints medians in milliseconds.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench import report
from edgeproxy.ingest.record import AnalysisRecord, analysis_key
from edgeproxy.vision.moderation import Verdict
from testkit.app import make_served
from testkit.ingest import RECORD_KEY
from testkit.moto import moto_s3

TOKEN = "bench-review-admin-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
ORIGINAL = b"\xff\xd8\xff\xe0 not decoded by the review page"


def _record(origin: str, key: str, index: int) -> bytes:
    now = time.time()
    return AnalysisRecord(
        origin=origin,
        key=key,
        etag='"e"',
        sha256="0" * 64,
        models="bench",
        uploaded_at=now - index,
        analysed_at=now - index + 1,
        width=1000,
        height=800,
        nsfw=0.7,
        faces=(),
        verdict=Verdict.BLUR,
    ).to_json(RECORD_KEY)


def _ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _measure(client: httpx.Client, origin: str, items: int, verdicts: int, repeat: int) -> dict[str, float]:
    def listing() -> None:
        answer = client.get("/review", headers=HEADERS)
        answer.raise_for_status()

    listed = _ms(listing, repeat)
    keys = iter(f"k{i:06d}.jpg" for i in range(verdicts))

    def verdict() -> None:
        answer = client.post(
            "/review/decide", data={"origin": origin, "key": next(keys), "verdict": "approve"}, headers=HEADERS
        )
        answer.raise_for_status()

    return {"listing": listed, "verdict": _ms(verdict, verdicts)}


def main() -> None:
    parser = report.parser("bench.review", __doc__, output=False)
    parser.add_argument("--items", type=int, default=2000, help="analysis objects per origin")
    parser.add_argument("--verdicts", type=int, default=30, help="verdicts given per origin")
    parser.add_argument("--repeat", type=int, default=5, help="listings timed")
    parser.add_argument("--no-s3", action="store_true", help="the local folder only (no moto server)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-review-") as tmp, contextlib.ExitStack() as stack:
        folder = Path(tmp) / "m"
        folder.mkdir()
        origins: list[tuple[str, str, dict[str, str]]] = [("m", str(folder), {})]
        for i in range(args.items):
            key = f"k{i:06d}.jpg"
            (folder / analysis_key(key)).write_bytes(_record("m", key, i))
            if i < args.verdicts:
                (folder / key).write_bytes(ORIGINAL)
        if not args.no_s3:
            s3 = stack.enter_context(moto_s3())
            with contextlib.closing(s3.client()) as client:
                for i in range(args.items):
                    key = f"k{i:06d}.jpg"
                    client.put_object(Bucket=s3.bucket, Key=analysis_key(key), Body=_record("s3", key, i))
                    if i < args.verdicts:
                        client.put_object(Bucket=s3.bucket, Key=key, Body=ORIGINAL, ContentType="image/jpeg")
            origins.append(("s3", f"s3://{s3.bucket}", s3.settings()))
        for origin, location, extra in origins:
            for cache, ttl in (("listing", 0.0), ("cached", 3600.0)):
                with make_served(
                    {origin: location},
                    **extra,
                    moderation=True,
                    admin_token=TOKEN,
                    review=True,
                    review_audit_log=str(Path(tmp) / f"audit-{origin}-{cache}.jsonl"),
                    review_cache_seconds=ttl,
                ) as (client, _app):
                    if cache == "listing":
                        rows.append((origin, "first listing", _ms(lambda: client.get("/review", headers=HEADERS), 1)))
                        found = _measure(client, origin, args.items, args.verdicts, args.repeat)
                        rows.append((origin, "listing", found["listing"]))
                        rows.append((origin, "verdict", found["verdict"]))
                    else:
                        rows.append(
                            (origin, "cached", _ms(lambda: client.get("/review", headers=HEADERS), args.repeat))
                        )
    kinds = {"m": "local folder", "s3": "S3 (moto)"}
    print(f"Review page, {args.items} analysis objects per origin (all listed), medians:\n")
    print("| origin | request | ms |")
    print("|---|---|---:|")
    for origin, what, ms in rows:
        print(f"| {kinds[origin]} | {what} | {ms:.1f} |")


if __name__ == "__main__":
    main()
