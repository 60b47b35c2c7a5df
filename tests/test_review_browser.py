"""The review page end to end, as a moderator uses it: an original uploaded to S3 (moto's server,
``testkit.moto``), whose object-created event reaches an SQS queue, where an ``edgeproxy ingest``
worker (``testkit.ingest.Running``: the face model only, so no nsfw score and the verdict pending)
analyses it and writes its analysis object beside it; edgeproxy with moderation on in front of it, the shipped
Varnish VCL in front of edgeproxy (``testkit.varnish``), and Debian's Chromium driven by Playwright
(as tests/test_browser.py: ``executable_path``, never a downloaded browser).

1. Through Varnish the original is withheld (451, cached: a second request is a hit).
2. In Chromium: the login form (and, in another context, HTTP Basic), then ``/review`` lists the
   original as pending with its blurred thumbnail (loaded with the session cookie); screenshot
   ``review-list.png``.
3. A click on Approve: the verdict lands in the object's S3 metadata, the original is purged from
   Varnish through the proxy's ``varnish:`` hook, and the very next request through Varnish is the
   image itself, immutable, its pixels those of the original (decoded and compared).
4. ``/review/log`` in Chromium shows the verdict; the audit file has its exact line; screenshot
   ``review-log.png``.

Screenshots go to ``$EDGEPROXY_TEST_ARTIFACTS/review`` (default ``.artifacts/browser/review``).
Without Chromium, Playwright or Varnish the module skips, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from edgeproxy.ingest.record import AnalysisRecord, analysis_key, content_hash
from edgeproxy.settings import load_settings
from edgeproxy.vision.moderation import Verdict
from testkit.app import KEY as SIGNING_KEY
from testkit.app import make_client, signed
from testkit.env import IN_CI, ROOT, require_varnish
from testkit.images import decode, encode, loader_format, photo
from testkit.ingest import RECORD_KEY, Running, notified_queue, sqs_client, wait_for
from testkit.moto import moto_s3
from testkit.net import free_port
from testkit.varnish import is_hit, start_varnish
from tests.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, browser_missing

pytestmark = pytest.mark.slow  # Chromium, Varnish and moto: not in the quick loop

TOKEN = "review-admin-token-for-browser"
SHIPPED_VCL = (ROOT / "config" / "varnish" / "default.vcl").read_text()
PICTURE = encode(photo(480, 320, seed=7), "jpeg", Q=92)
KEY = "uploads/portrait.jpg"
SHOTS = ARTIFACTS / "review"


def test_approve_in_chromium_makes_varnish_serve_the_image_at_once(tmp_path: Path, models: dict[str, Path]):
    require_varnish()
    why = browser_missing()
    if why:
        if IN_CI:
            pytest.fail(f"CI=true but the browser test cannot run: {why}")
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    audit = tmp_path / "audit.jsonl"
    url = signed(f"/w:300/f:png/s3/{KEY}")
    varnish_port = free_port()
    with moto_s3() as s3, contextlib.closing(sqs_client(s3)) as sqs:
        queue, _dlq = notified_queue(s3, sqs, s3.bucket, "uploads", visibility=2)
        worker = load_settings(
            origins={"s3": f"s3://{s3.bucket}"},
            signing_key=SIGNING_KEY,
            face_model=str(models["face"]),
            ingest_queue_url=queue,
            ingest_wait_time=1,
            ingest_visibility_timeout=2,
            **s3.settings(),
        )
        with Running(worker) as ingest:
            s3.put(KEY, PICTURE, model="sdxl-1.0")  # the upload: its event goes to the queue
            record = AnalysisRecord.from_json(wait_for(lambda: s3.get(analysis_key(KEY)), timeout=30), RECORD_KEY)
            assert ingest.jobs("analysed") == 1
        assert (record.key, record.verdict, record.nsfw, record.faces) == (KEY, Verdict.PENDING, None, ())
        assert record.sha256 == content_hash(PICTURE) and record.latency < 30
        with (
            make_client(
                {"s3": f"s3://{s3.bucket}"},
                **s3.settings(),
                moderation=True,
                moderation_max_age=60,
                admin_token=TOKEN,
                review=True,
                review_audit_log=str(audit),
                review_cache_seconds=0,
                purge_hooks=[f"varnish:http://127.0.0.1:{varnish_port}"],
            ) as proxy,
            start_varnish(proxy.base_url.host, proxy.base_url.port, vcl=SHIPPED_VCL, port=varnish_port) as varnish,
            httpx.Client(base_url=varnish.url, timeout=30) as cdn,
            sync_playwright() as playwright,
        ):
            withheld = cdn.get(url)
            assert withheld.status_code == 451, withheld.text
            assert is_hit(cdn.get(url))  # Varnish holds the 451 for moderation_max_age (60 s)

            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1100, "height": 520})
                base = str(proxy.base_url).rstrip("/")
                # A real browser asked for /review gets the 401's Basic challenge (a dialog; cancelled,
                # the login form under it); headless Chromium has no dialog, so the form is opened.
                page.goto(f"{base}/review/login")
                page.fill("input[name=name]", "ana")
                page.fill("input[name=token]", TOKEN)
                page.click("button[type=submit]")
                page.wait_for_url(f"{base}/review")
                row = page.locator("tr", has_text=f"s3/{KEY}")
                assert row.count() == 1, page.content()
                assert "human: none" in row.inner_text() and "withheld" in row.inner_text()
                thumbnail = row.locator("img.thumb")
                assert thumbnail.get_attribute("src") == f"/review/thumb/s3/{KEY}"
                page.wait_for_function("[...document.images].every((img) => img.complete)")
                assert thumbnail.evaluate("(img) => [img.naturalWidth, img.naturalHeight]") == [240, 160]
                SHOTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SHOTS / "review-list.png"), full_page=True)

                row.locator("input[name=reason]").fill("a portrait, nothing to hide")
                row.locator("button", has_text="Approve").click()
                page.wait_for_url(f"{base}/review?*")
                assert f"s3/{KEY}: approved, purged." in page.inner_text("p.notice")
                assert page.locator("tr", has_text=f"s3/{KEY}").count() == 0

                # Varnish serves the image at once: purged, fetched again, the original's pixels.
                served = cdn.get(url)
                assert served.status_code == 200, served.text
                assert not is_hit(served)
                assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
                image = decode(served.content)
                assert (loader_format(image), image.width, image.height) == ("png", 300, 200)
                expected = decode(PICTURE).thumbnail_image(300).numpy().astype(np.float64)
                got = image.numpy().astype(np.float64)
                assert float(np.abs(got - expected).mean()) < 3.0  # the original itself, not a blurred stand-in
                assert is_hit(cdn.get(url))

                page.goto(f"{base}/review/log")
                cells = page.locator("tbody tr").first.inner_text()
                assert "ana" in cells and "approved" in cells and "a portrait, nothing to hide" in cells
                page.screenshot(path=str(SHOTS / "review-log.png"), full_page=True)
                # HTTP Basic in the browser: the name given is the reviewer.
                context = browser.new_context(http_credentials={"username": "bo", "password": TOKEN})
                by_basic = context.new_page()
                by_basic.goto(f"{base}/review/log")
                assert "bo" in by_basic.inner_text("header")
                context.close()
            finally:
                browser.close()
        with contextlib.closing(s3.client()) as client:
            metadata = client.head_object(Bucket=s3.bucket, Key=KEY)["Metadata"]
        assert metadata == {"model": "sdxl-1.0", "moderation": "approved"}
    (line,) = audit.read_bytes().splitlines()
    entry = json.loads(line)
    assert entry == {
        "at": entry["at"],
        "hash": content_hash(PICTURE),
        "key": KEY,
        "origin": "s3",
        "previous": None,
        "reason": "a portrait, nothing to hide",
        "verdict": "approved",
        "who": "ana",
    }
