"""``edgeproxy prewarm``: request the critical derivatives of a list of originals ahead of traffic,
through the CDN (so it caches them) or directly, once per ``Accept`` bucket for ``f:auto`` variants.

Work: originals × variants × buckets signed URLs, fetched with GET (so every cache stores the
answer) by at most ``concurrency`` requests at a time, a progress bar on stderr (tqdm), and a
summary of what failed. Nothing is retried: a failure is reported, and the exit status says so.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from tqdm import tqdm

from edgeproxy.http.negotiate import ACCEPT_BUCKETS
from edgeproxy.url.builders import UrlBuilder


@dataclass(frozen=True, slots=True)
class Job:
    """One request: the signed path and the ``Accept`` it is sent with (a bucket's value)."""

    path: str
    accept: str
    bucket: str


@dataclass(slots=True)
class Summary:
    """What a prewarm did: requests sent, answered 200, and (path, bucket, why) for each failure."""

    total: int = 0
    ok: int = 0
    bytes: int = 0
    failures: list[tuple[str, str, str]] = field(default_factory=list)


def read_keys(lines: Iterable[str]) -> list[tuple[str, str]]:
    """(origin, key) pairs from ``ORIGIN/KEY`` lines (the part of a URL after the options, key not
    percent-encoded); blank lines and ``#`` comments are skipped.

    Raises:
        ValueError: a line without ``/`` or with an empty key, naming its line number.
    """
    pairs = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        origin, sep, key = line.partition("/")
        if not sep or not origin or not key:
            raise ValueError(f"line {number}: expected ORIGIN/KEY, got {line!r}")
        pairs.append((origin, key))
    return pairs


def variant_options(variant: str) -> dict[str, str]:
    """The options of a variant as ``UrlBuilder`` keywords: ``"pr:thumb/w:400/f:auto"`` ->
    ``{"pr": "thumb", "w": "400", "f": "auto"}`` (names as written, long or short; values as
    written, ``:`` kept between a value's parts).

    Raises:
        ValueError: a segment without ``name:value``, or an option given twice.
    """
    options: dict[str, str] = {}
    for segment in (s for s in variant.strip("/").split("/") if s):
        name, sep, value = segment.partition(":")
        if not sep or not name or not value:
            raise ValueError(f"variant {variant!r}: {segment!r} is not an option (name:value)")
        if name in options:
            raise ValueError(f"variant {variant!r}: option {name} is given twice")
        options[name] = value
    return options


def plan(keys: list[tuple[str, str]], variants: list[str], signing_key: str, signature_size: int) -> list[Job]:
    """Every request to send: for each original and variant (an option path such as
    ``w:400/f:auto`` or ``pr:thumb``), one per ``Accept`` bucket when the variant's format is
    ``auto`` or not given (the CDN stores one answer per bucket; a preset's own format is the
    server's to know), else one.

    Paths are built by ``edgeproxy.url.builders.UrlBuilder`` from the same options a page passes to it
    (``UrlBuilder.url("media", key, width=640, format="auto")`` is ``--variant w:640/f:auto``), so
    the CDN caches exactly the URLs pages request: the same options in the same order, the same
    signature.

    Raises:
        ValueError: a variant with a malformed or bad option (the message names it), or a key
            that the builder refuses.
    """
    builder = UrlBuilder("", signing_key, signature_size=signature_size)
    jobs: list[Job] = []
    for variant in variants:
        options = variant_options(variant)
        fmt = next((v for k, v in options.items() if k in ("f", "format")), "auto")
        buckets = ACCEPT_BUCKETS if fmt == "auto" else {"any": ACCEPT_BUCKETS["none"]}
        for origin, key in keys:
            try:
                path = builder.path(origin, key, **options)
            except (ValueError, TypeError) as error:
                raise ValueError(f"variant {variant!r}: {error}") from None
            jobs.extend(Job(path, accept, bucket) for bucket, accept in buckets.items())
    return jobs


#: What a prewarm sends the proxy itself (with the admin token) to wait for the optimised tier.
OPTIMISE_WAIT = {"X-Edgeproxy-Optimise": "wait"}


async def run(
    base_url: str,
    jobs: list[Job],
    *,
    concurrency: int,
    timeout: float,
    progress: bool = True,
    headers: dict[str, str] | None = None,
) -> Summary:
    """GET every job from ``base_url`` (with ``headers`` too), at most ``concurrency`` at a time;
    never raises for a failed request (it is counted in the summary)."""
    summary = Summary(total=len(jobs))
    slots = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with tqdm(total=len(jobs), unit="req", disable=not progress, file=sys.stderr) as bar:
        async with httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits) as client:

            async def one(job: Job) -> None:
                async with slots:
                    try:
                        response = await client.get(job.path, headers={**(headers or {}), "Accept": job.accept})
                    except httpx.HTTPError as error:
                        summary.failures.append((job.path, job.bucket, f"{type(error).__name__}: {error}"))
                    else:
                        if response.status_code == 200:
                            summary.ok += 1
                            summary.bytes += len(response.content)
                        else:
                            why = f"{response.status_code} {response.text.strip()[:200]}"
                            summary.failures.append((job.path, job.bucket, why))
                    bar.update()

            await asyncio.gather(*(one(job) for job in jobs))
    return summary


def main(
    base_url: str,
    keys_file: Path,
    variants: list[str],
    *,
    signing_key: str,
    signature_size: int,
    concurrency: int,
    timeout: float,
    progress: bool = True,
    optimise_url: str | None = None,
    admin_token: str | None = None,
) -> int:
    """The ``prewarm`` command: exit status 0 when every request answered 200, 1 when any failed,
    2 for bad arguments.

    With ``optimise_url`` (the proxy itself, not the CDN) and ``admin_token``, every job is first
    sent there with ``X-Edgeproxy-Optimise: wait``: the proxy makes and stores each quality target's
    optimised tier before the CDN asks, so the CDN caches the optimised, immutable answer at once."""
    try:
        jobs = plan(read_keys(keys_file.read_text().splitlines()), variants, signing_key, signature_size)
    except (OSError, ValueError) as error:
        print(f"edgeproxy prewarm: {error}", file=sys.stderr)
        return 2
    if optimise_url is not None:
        wait = {**OPTIMISE_WAIT, "Authorization": f"Bearer {admin_token}"}
        first = asyncio.run(
            run(optimise_url, jobs, concurrency=concurrency, timeout=timeout, progress=progress, headers=wait)
        )
        for path, bucket, why in first.failures[:20]:
            print(f"  NOT OPTIMISED {path} [{bucket}]: {why}")
    summary = asyncio.run(run(base_url, jobs, concurrency=concurrency, timeout=timeout, progress=progress))
    print(
        f"prewarmed {summary.ok} of {summary.total} derivatives ({summary.bytes} bytes); {len(summary.failures)} failed"
    )
    for path, bucket, why in summary.failures[:20]:
        print(f"  FAILED {path} [{bucket}]: {why}")
    if len(summary.failures) > 20:
        print(f"  ... and {len(summary.failures) - 20} more")
    return 1 if summary.failures else 0
