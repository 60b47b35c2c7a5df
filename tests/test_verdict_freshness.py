"""A moderation verdict changed in S3 object metadata reaches the CDN without a purge (issue 19,
item 4; README "Moderation": blocked, blurred and pending answers are cached ``moderation_max_age``
and originals are revalidated within ``original_cache_ttl``).

End to end: a real moto S3 server process (``testkit.moto``), edgeproxy (uvicorn in a thread) with
moderation on and no classifier, and a real Varnish running the shipped VCL in front of it. The
verdict is changed the way a moderation tool does it, ``copy_object`` onto the same key with
``MetadataDirective=REPLACE``: the bytes, and so the ETag, stay the same (S3 does the same), only
the user metadata and LastModified change. Nobody purges. Skipped where varnishd is missing (a
failure under ``CI=true``).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from testkit.app import make_client, signed
from testkit.env import ROOT, require_varnish
from testkit.images import decode, loader_format
from testkit.moto import moto_s3
from testkit.varnish import is_hit, start_varnish

pytestmark = pytest.mark.slow  # a real Varnish: not in the quick loop (pytest -m 'not slow')

SHIPPED_VCL = (ROOT / "config" / "varnish" / "default.vcl").read_text()
PORTRAIT = "giunchedi-portrait.jpg"  # 800 x 533
MODERATION_MAX_AGE = 2  # seconds
ORIGINAL_CACHE_TTL = 1  # seconds
IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture(autouse=True)
def _varnish_installed() -> None:
    require_varnish()


@pytest.fixture(autouse=True)
def no_aws_environment(monkeypatch):
    """The machine's AWS_* variables must not steer the proxy's S3 client."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)


def detail(body: bytes) -> float:
    """Mean absolute difference between neighbouring pixels of a PNG body (a blur destroys it)."""
    image = decode(body)
    assert loader_format(image) == "png"
    a = image.numpy().astype(np.float64)
    return float((np.abs(np.diff(a, axis=0)).mean() + np.abs(np.diff(a, axis=1)).mean()) / 2)


def test_verdict_in_s3_metadata_reaches_varnish_within_max_age_without_a_purge(corpus: Path):
    """``rejected.jpg`` (verdict rejected: 451) and ``pending.jpg`` (no verdict, no classifier:
    pending, blurred with ``moderation_pending = "blur"``) are cached by Varnish for
    ``moderation_max_age`` (2 s). Both are then approved in S3 metadata. Without any purge (no
    admin token, no hook), each URL answers the clear image, immutable, within
    ``moderation_max_age + original_cache_ttl`` (3 s) plus a margin for the polling."""
    body = (corpus / PORTRAIT).read_bytes()
    urls = {"rejected": signed("/w:200/f:png/s3/rejected.jpg"), "pending": signed("/w:200/f:png/s3/pending.jpg")}
    timeline: list[str] = []
    with contextlib.ExitStack() as stack:
        s3 = stack.enter_context(moto_s3())
        s3.put("media/rejected.jpg", body, moderation="rejected")
        s3.put("media/pending.jpg", body)
        proxy = stack.enter_context(
            make_client(
                {"s3": f"s3://{s3.bucket}/media"},
                moderation=True,
                moderation_pending="blur",
                moderation_max_age=MODERATION_MAX_AGE,
                original_cache_ttl=ORIGINAL_CACHE_TTL,
                **s3.settings(),
            )
        )
        varnish = stack.enter_context(start_varnish(proxy.base_url.host, proxy.base_url.port, vcl=SHIPPED_VCL))
        cdn = stack.enter_context(httpx.Client(base_url=varnish.url, timeout=30))
        s3_client = stack.enter_context(contextlib.closing(s3.client()))

        first = {name: cdn.get(url) for name, url in urls.items()}
        assert first["rejected"].status_code == 451, first["rejected"].text
        assert first["rejected"].headers["cache-control"] == f"public, max-age={MODERATION_MAX_AGE}"
        assert first["pending"].status_code == 200, first["pending"].text
        assert first["pending"].headers["cache-control"] == f"public, max-age={MODERATION_MAX_AGE}"
        blurred = detail(first["pending"].content)
        assert blurred < 2.0  # the whole derivative is blurred
        assert all(is_hit(cdn.get(url)) for url in urls.values())  # Varnish holds both

        etags = {}
        for name in urls:
            key = f"media/{name}.jpg"
            etags[name] = s3_client.head_object(Bucket=s3.bucket, Key=key)["ETag"]
            s3_client.copy_object(
                Bucket=s3.bucket,
                Key=key,
                CopySource={"Bucket": s3.bucket, "Key": key},
                Metadata={"moderation": "approved"},
                MetadataDirective="REPLACE",
            )
            assert s3_client.head_object(Bucket=s3.bucket, Key=key)["ETag"] == etags[name]  # same bytes, same ETag
        changed = time.monotonic()

        flipped: dict[str, float] = {}
        last: dict[str, httpx.Response] = {}
        deadline = changed + 15
        while len(flipped) < len(urls) and time.monotonic() < deadline:
            for name, url in urls.items():
                if name in flipped:
                    continue
                response = last[name] = cdn.get(url)
                at = time.monotonic() - changed
                timeline.append(
                    f"+{at:5.2f} s {name}: {response.status_code} "
                    f"{'hit' if is_hit(response) else 'miss'} {response.headers['cache-control']}"
                )
                if response.status_code == 200 and response.headers["cache-control"] == IMMUTABLE:
                    flipped[name] = at
            time.sleep(0.25)
    print("\nverdict freshness timeline (seconds after the metadata change):\n" + "\n".join(timeline))

    bound = MODERATION_MAX_AGE + ORIGINAL_CACHE_TTL + 1.5  # + polling and a slow machine's margin
    for name in urls:
        assert name in flipped, f"{name} never reached the CDN without a purge:\n" + "\n".join(timeline)
        assert flipped[name] <= bound, f"{name} took {flipped[name]:.2f} s:\n" + "\n".join(timeline)
        image = decode(last[name].content)
        assert (loader_format(image), image.width, image.height) == ("png", 200, 133)
        assert detail(last[name].content) > 2 * blurred, name  # the clear photo, not a blur
