"""The review page (``edgeproxy.review``, docs/review.md) served for real: edgeproxy under uvicorn
on 127.0.0.1 with a local folder origin ``m`` and an S3 origin ``s3`` (moto's server,
``testkit.moto``), analysis objects written by the test (``AnalysisRecord``), and a webhook purge
hook recording what it is sent (``testkit.origin``). No mock: the verdicts land in real sidecars
and real S3 metadata, the audit log in a real file.

What a reviewer sees and does: who may look (bearer, Basic, the login cookie; 401 otherwise, a
tampered cookie refused), which originals are listed (ambiguous or pending, unsettled, newest
first), the CSRF check on every POST made with a browser's credential, a verdict written where the
origin keeps it (the sidecar's other members and the object's other metadata kept), the purge sent,
the audit line exact, and the metrics.
"""

from __future__ import annotations

import base64
import calendar
import contextlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from edgeproxy.ingest.record import AnalysisRecord, analysis_key, content_hash
from edgeproxy.render.geometry import Box, Face
from edgeproxy.service.validators import surrogate_key
from edgeproxy.settings import SettingsError, load_settings
from edgeproxy.vision.moderation import Action, Metadata, Policy, Verdict, decide
from testkit.app import KEY, make_client, make_served
from testkit.env import ROOT, require_tool
from testkit.images import decode, encode, loader_format, photo
from testkit.ingest import RECORD_KEY
from testkit.moto import moto_s3
from testkit.origin import Reply, serve_origin

TOKEN = "review-admin-token-for-tests"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
JSON = {**BEARER, "Accept": "application/json"}
NOW = 1_780_000_000.0
FORM = "application/x-www-form-urlencoded"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def record(origin: str, key: str, data: bytes, *, nsfw: float | None, age: float, **provenance: str) -> AnalysisRecord:
    """The analysis object of ``data`` uploaded ``age`` seconds before ``NOW``."""
    return AnalysisRecord(
        origin=origin,
        key=key,
        etag='"etag"',
        sha256=content_hash(data),
        models="nsfw=test|faces=test",
        uploaded_at=NOW - age,
        analysed_at=NOW - age + 2.5,
        width=320,
        height=240,
        nsfw=nsfw,
        faces=(Face(Box(0.1, 0.2, 0.05, 0.07), 0.91),),
        verdict=Verdict.PENDING if nsfw is None else Verdict.BLUR,
        provenance=provenance,
    )


class Stack:
    """The served proxy, its folder origin, moto, the hook's request log and the audit log."""

    def __init__(self, client: httpx.Client, folder: Path, s3, hook, audit: Path, app) -> None:
        self.client, self.folder, self.s3, self.hook, self.audit, self.app = client, folder, s3, hook, audit, app

    def hook_bodies(self) -> list[dict]:
        return [json.loads(r.body) for r in self.hook.requests if r.path == "/hook"]


PICTURE = encode(photo(320, 240, seed=3), "jpeg", Q=90)
# key -> (nsfw score, seconds before NOW, sidecar or None): what the queue must make of each.
LOCAL = {
    "pending.jpg": (None, 100, None),  # no score: pending, listed, withheld (moderation_pending=block)
    "ambiguous.jpg": (0.7, 50, {"model": "sdxl-1.0", "license": "CC-BY-4.0"}),  # between 0.6 and 0.85: listed
    "clean.jpg": (0.1, 10, None),  # under the blur threshold: not listed
    "explicit.jpg": (0.95, 20, None),  # over the block threshold: blocked by the score alone, not listed
    "settled.jpg": (0.7, 30, {"moderation": "approved"}),  # a human verdict settled it: not listed
    "asked-again.jpg": (0.7, 200, {"moderation": "pending"}),  # a human "pending" is unsettled: listed
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("review-origin")
    audit = tmp_path_factory.mktemp("review-audit") / "audit.jsonl"
    for key, (score, age, sidecar) in LOCAL.items():
        (folder / key).write_bytes(PICTURE)
        provenance = {k: v for k, v in (sidecar or {}).items() if k != "moderation"}  # as the worker reads it
        analysed = record("m", key, PICTURE, nsfw=score, age=age, **provenance)
        (folder / analysis_key(key)).write_bytes(analysed.to_json(RECORD_KEY))
        if sidecar is not None:
            (folder / f"{key}.json").write_text(json.dumps(sidecar))
    with (
        moto_s3() as s3,
        serve_origin(fallback=lambda request: Reply(200, b"{}")) as hook,
    ):
        s3.put("upload.jpg", PICTURE, model="flux", moderation="pending")
        # An origin under a prefix: keys are relative to it, for the analysis objects and the verdicts.
        s3.put("team/a/b.jpg", PICTURE)
        s3.put(
            "team/" + analysis_key("a/b.jpg"), record("p", "a/b.jpg", PICTURE, nsfw=0.8, age=400).to_json(RECORD_KEY)
        )
        # Copied beside another original: names another key, so it is not listed.
        s3.put("team/" + analysis_key("copy.jpg"), record("p", "a/b.jpg", PICTURE, nsfw=0.8, age=1).to_json(RECORD_KEY))
        s3.put(
            analysis_key("upload.jpg"),
            record("s3", "upload.jpg", PICTURE, nsfw=0.65, age=5, model="flux").to_json(RECORD_KEY),
        )
        with make_served(
            {"m": str(folder), "s3": f"s3://{s3.bucket}", "p": f"s3://{s3.bucket}/team"},
            **s3.settings(),
            moderation=True,
            admin_token=TOKEN,
            review=True,
            review_audit_log=str(audit),
            review_cache_seconds=0,
            review_page_size=3,
            purge_hooks=[f"webhook:{hook.url.rstrip('/')}/hook"],
        ) as (client, app):
            yield Stack(client, folder, s3, hook, audit, app)


def auth_errors(stack: Stack) -> float:
    text = stack.client.get("/metrics").text
    return float(re.search(r'^edgeproxy_errors_total\{category="auth"\} (\S+)$', text, re.M).group(1))


def login(client: httpx.Client, name: str = "ana", token: str = TOKEN) -> httpx.Response:
    """GET the login form, then POST it with its nonce cookie (sent by hand: httpx keeps Secure
    cookies for https only)."""
    form = client.get("/review/login")
    assert form.status_code == 200
    nonce = form.cookies["edgeproxy_review_login"]
    login_token = re.search(r'name="login" value="([^"]+)"', form.text).group(1)
    return client.post(
        "/review/login",
        content=f"login={login_token}&name={name}&token={token}",
        headers={"Content-Type": FORM, "Cookie": f"edgeproxy_review_login={nonce}"},
        follow_redirects=False,
    )


def session(client: httpx.Client) -> dict[str, str]:
    """Headers of a logged-in browser: the session cookie."""
    answer = login(client)
    assert answer.status_code == 303, answer.text
    return {"Cookie": f"edgeproxy_review={answer.cookies['edgeproxy_review']}"}


def csrf_of(client: httpx.Client, headers: dict[str, str]) -> str:
    page = client.get("/review", headers=headers)
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text).group(1)


def test_review_is_off_unless_enabled_and_needs_its_settings(tmp_path: Path):
    with make_client({"m": str(tmp_path)}, admin_token=TOKEN) as client:
        for path in ("/review", "/review/log", "/review/login"):
            answer = client.get(path, headers=BEARER)  # a transform URL with a bad signature, or no route
            assert (answer.status_code, answer.headers["content-type"]) in (
                (403, "text/plain; charset=utf-8"),
                (404, "text/plain; charset=utf-8"),
            )
    with pytest.raises(SettingsError, match="review needs admin_token"):
        load_settings(origins={"m": str(tmp_path)}, signing_key=KEY, review=True, review_audit_log="x.jsonl")
    with pytest.raises(SettingsError, match="review needs review_audit_log"):
        load_settings(origins={"m": str(tmp_path)}, signing_key=KEY, review=True, admin_token=TOKEN)


def test_who_may_look(stack: Stack):
    c = stack.client
    refused_before = auth_errors(stack)
    anonymous = c.get("/review")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith('Basic realm="edgeproxy review"')
    assert anonymous.headers["cache-control"] == "private, no-store"
    assert '<form method="post" action="/review/login">' in anonymous.text  # the login form as body
    assert "script-src" not in anonymous.headers["content-security-policy"]  # default-src 'none': no script
    assert "default-src 'none'" in anonymous.headers["content-security-policy"]
    assert c.get("/review", headers={"Accept": "application/json"}).json() == {"error": "log in with the admin token"}
    for wrong in ({"Authorization": "Bearer not-the-token"}, basic("ana", "not-the-token"), basic("ana", "")):
        refused = c.get("/review", headers={**wrong, "Accept": "application/json"})
        assert (refused.status_code, refused.json()) == (401, {"error": "wrong or expired credentials"})
    assert c.get("/review/log", headers={"Accept": "application/json"}).status_code == 401
    assert c.get("/review/thumb/m/pending.jpg").status_code == 401

    assert auth_errors(stack) == refused_before + 7  # every refusal counted
    assert c.get("/review", headers=BEARER).status_code == 200
    by_basic = c.get("/review", headers=basic("bo", TOKEN))
    assert by_basic.status_code == 200 and "bo" in by_basic.text

    assert login(c, token="wrong").status_code == 401
    answer = login(c, name="ana")
    assert answer.status_code == 303 and answer.headers["location"] == "/review"
    cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and v.startswith("edgeproxy_review="))
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")[1:]}
    assert set(attributes) == {"httponly", "max-age", "path", "samesite", "secure"}
    assert (attributes["max-age"], attributes["path"], attributes["samesite"]) == (
        "Max-Age=28800",
        "Path=/review",
        "SameSite=strict",
    )
    value = answer.cookies["edgeproxy_review"]
    page = c.get("/review", headers={"Cookie": f"edgeproxy_review={value}"})
    assert page.status_code == 200 and "ana" in page.text
    head, _, tail = value.rpartition(".")
    tampered = head + "." + ("A" if tail[0] != "A" else "B") + tail[1:]
    for bad in (tampered, value.replace(value[2], "x" if value[2] != "x" else "y", 1), "garbage"):
        assert c.get("/review", headers={"Cookie": f"edgeproxy_review={bad}"}).status_code == 401


def test_login_form_needs_its_own_nonce(stack: Stack):
    c = stack.client
    form = c.get("/review/login")
    token = re.search(r'name="login" value="([^"]+)"', form.text).group(1)
    body = f"login={token}&name=eve&token={TOKEN}"
    without = c.post("/review/login", content=body, headers={"Content-Type": FORM}, follow_redirects=False)
    assert without.status_code == 403  # a page elsewhere cannot post a login without the form's cookie
    other = c.post(
        "/review/login",
        content=body,
        headers={"Content-Type": FORM, "Cookie": "edgeproxy_review_login=someone-elses-nonce"},
        follow_redirects=False,
    )
    assert other.status_code == 403


def test_the_queue_lists_ambiguous_and_pending_originals_newest_first(stack: Stack):
    listing = stack.client.get("/review", headers=JSON)
    assert listing.status_code == 200 and listing.headers["cache-control"] == "private, no-store"
    body = listing.json()
    assert (body["total"], body["page"], body["pages"], body["csrf"]) == (5, 1, 2, "")  # 3 a page
    second = stack.client.get("/review?page=2", headers=JSON).json()
    assert (second["total"], second["page"], second["pages"], len(second["items"])) == (5, 2, 2, 2)
    rows = body["items"] + second["items"]
    assert [(r["origin"], r["key"]) for r in rows] == [
        ("s3", "upload.jpg"),  # 5 s old
        ("m", "ambiguous.jpg"),  # 50
        ("m", "pending.jpg"),  # 100
        ("m", "asked-again.jpg"),  # 200
        ("p", "a/b.jpg"),  # 400; listed by origin "s3" too as team/a/b.jpg, whose record names another key
    ]
    upload, ambiguous, pending, asked, _prefixed = rows
    assert (upload["score"], upload["faces"], upload["provenance"], upload["human"]) == (
        0.65,
        1,
        {"model": "flux"},
        "pending",
    )
    assert ambiguous["uploaded"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW - 50))
    assert (ambiguous["action"], ambiguous["withheld"]) == ("blur", False)
    # The proxy's own signed URL (the proxy blurs it where the policy blurs).
    assert re.fullmatch(r"/[A-Za-z0-9_-]{43}/w:240/f:jpeg/m/ambiguous\.jpg", ambiguous["thumbnail"])
    # Withheld ones (pending is blocked): the review page's blurred thumbnail.
    assert (pending["score"], pending["withheld"], pending["thumbnail"]) == (None, True, "/review/thumb/m/pending.jpg")
    assert (asked["human"], asked["withheld"]) == ("pending", True)

    paged = stack.client.get("/review?page=9", headers=JSON).json()
    assert (paged["page"], paged["items"]) == (2, second["items"])  # past the end: the last page
    for bad in ("x", "0", "-1"):
        assert stack.client.get(f"/review?page={bad}", headers=JSON).status_code == 400

    html = stack.client.get("/review", headers=BEARER).text
    assert html.index("s3/upload.jpg") < html.index("m/ambiguous.jpg") < html.index("m/pending.jpg")
    assert "asked-again.jpg" not in html and '<a href="/review?page=2">next</a>' in html
    assert "<span>page 1 of 2</span>" in html
    assert 'score <strong class="score">0.70</strong>' in html
    assert "<dt>license</dt><dd>CC-BY-4.0</dd>" in html


def listed(stack: Stack) -> list[dict]:
    """Every item of the queue, page after page."""
    first = stack.client.get("/review", headers=JSON).json()
    pages = [first] + [stack.client.get(f"/review?page={n}", headers=JSON).json() for n in range(2, first["pages"] + 1)]
    return [item for page in pages for item in page["items"]]


def detail(body: bytes) -> float:
    """Mean absolute difference between neighbouring pixels (blurring destroys it)."""
    a = decode(body).numpy().astype(np.float64)
    return float((np.abs(np.diff(a, axis=0)).mean() + np.abs(np.diff(a, axis=1)).mean()) / 2)


def test_withheld_thumbnails_are_blurred_unless_asked(stack: Stack):
    blurred = stack.client.get("/review/thumb/m/pending.jpg", headers=BEARER)
    clear = stack.client.get("/review/thumb/m/pending.jpg?clear=1", headers=BEARER)
    for answer in (blurred, clear):
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg"
        assert answer.headers["cache-control"] == "private, no-store"
        image = decode(answer.content)
        assert (loader_format(image), image.width, image.height) == ("jpeg", 240, 180)
    assert detail(blurred.content) < 1.0 < 3.0 < detail(clear.content)
    assert stack.client.get("/review/thumb/m/missing.jpg", headers=BEARER).status_code == 404
    assert stack.client.get("/review/thumb/nope/pending.jpg", headers=BEARER).status_code == 404


def post(stack: Stack, headers: dict[str, str], **fields: str) -> httpx.Response:
    return stack.client.post(
        "/review/decide",
        data=fields,
        headers={**headers, "Content-Type": FORM},
        follow_redirects=False,
    )


def test_every_browser_post_needs_the_sessions_csrf_token(stack: Stack):
    cookie = session(stack.client)
    target = {"origin": "m", "key": "pending.jpg", "verdict": "approve"}
    for fields in (target, {**target, "csrf": "0" * 64}, {**target, "csrf": ""}):
        assert post(stack, cookie, **fields).status_code == 403
        assert post(stack, basic("bo", TOKEN), **fields).status_code == 403
    other_session = session(stack.client)
    assert post(stack, cookie, **target, csrf=csrf_of(stack.client, other_session)).status_code == 403
    assert post(stack, cookie, csrf=csrf_of(stack.client, cookie)).status_code == 400  # passed CSRF: no verdict
    logout = stack.client.post("/review/logout", headers={**cookie, "Content-Type": FORM}, follow_redirects=False)
    assert logout.status_code == 403
    assert not (stack.folder / "pending.jpg.json").exists()  # nothing was written


def test_bad_verdicts_are_refused(stack: Stack):
    base = {"origin": "m", "key": "ambiguous.jpg", "verdict": "approve"}
    for fields, status in (
        ({**base, "verdict": "publish"}, 400),
        ({**base, "origin": "nope"}, 400),
        ({**base, "key": "../etc/passwd"}, 400),
        ({**base, "key": "no-analysis.jpg"}, 404),
        ({**base, "reason": "x" * 501}, 400),
    ):
        assert post(stack, JSON, **fields).status_code == status, fields
    wrong_type = stack.client.post("/review/decide", json=base, headers=JSON)
    assert wrong_type.status_code == 400


def audit_lines(stack: Stack) -> list[bytes]:
    return stack.audit.read_bytes().splitlines() if stack.audit.exists() else []


def test_approve_writes_the_sidecar_purges_and_audits(stack: Stack):
    cookie = session(stack.client)
    before, started = len(audit_lines(stack)), time.time()
    hooks = len(stack.hook_bodies())
    answer = post(
        stack,
        cookie,
        origin="m",
        key="ambiguous.jpg",
        verdict="approve",
        reason="a  painting",
        csrf=csrf_of(stack.client, cookie),
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/review?decided=m%2Fambiguous.jpg&verdict=approved&purge=ok"
    # The sidecar keeps its provenance; the verdict is added.
    assert json.loads((stack.folder / "ambiguous.jpg.json").read_text()) == {
        "model": "sdxl-1.0",
        "license": "CC-BY-4.0",
        "moderation": "approved",
    }
    assert stack.hook_bodies()[hooks:] == [
        {"surrogate_key": surrogate_key("m", "ambiguous.jpg"), "origin": "m", "key": "ambiguous.jpg"}
    ]
    lines = audit_lines(stack)
    assert len(lines) == before + 1
    at = json.loads(lines[-1])["at"]
    assert int(started) <= calendar.timegm(time.strptime(at, "%Y-%m-%dT%H:%M:%SZ")) <= time.time()
    expected = (
        f'{{"at":"{at}","hash":"{content_hash(PICTURE)}","key":"ambiguous.jpg","origin":"m","previous":null,'
        '"reason":"a painting","verdict":"approved","who":"ana"}'
    )
    assert lines[-1].decode() == expected
    # It left the queue; the page says what happened.
    page = stack.client.get(answer.headers["location"], headers=cookie)
    assert "m/ambiguous.jpg: approved, purged." in page.text
    keys = [r["key"] for r in listed(stack)]
    assert "ambiguous.jpg" not in keys
    log = stack.client.get("/review/log", headers=JSON)
    assert log.headers["content-type"] == "application/x-ndjson"
    assert log.content.splitlines()[-1] == lines[-1]
    table = stack.client.get("/review/log", headers=cookie)
    assert table.status_code == 200 and "<td>ana</td>" in table.text and "<td>a painting</td>" in table.text


def test_block_writes_s3_metadata_keeping_the_rest(stack: Stack):
    with contextlib.closing(stack.s3.client()) as s3:
        before = s3.head_object(Bucket=stack.s3.bucket, Key="upload.jpg")
        answer = post(stack, JSON, origin="s3", key="upload.jpg", verdict="block", reason="nudity")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["verdict"], body["previous"]) == ("rejected", "pending")
        assert [(h["ok"], h["status"]) for h in body["purge"]["hooks"]] == [(True, 200)]
        after = s3.head_object(Bucket=stack.s3.bucket, Key="upload.jpg")
        assert after["Metadata"] == {"model": "flux", "moderation": "rejected"}
        assert after["ETag"] == before["ETag"] and after["ContentType"] == before["ContentType"]
        assert s3.get_object(Bucket=stack.s3.bucket, Key="upload.jpg")["Body"].read() == PICTURE
        again = post(stack, JSON, origin="s3", key="upload.jpg", verdict="blur").json()
        assert (again["verdict"], again["previous"]) == ("blurred", "rejected")
        assert s3.head_object(Bucket=stack.s3.bucket, Key="upload.jpg")["Metadata"]["moderation"] == "blurred"
        prefixed = post(stack, JSON, origin="p", key="a/b.jpg", verdict="approve")
        assert prefixed.status_code == 200, prefixed.text
        assert s3.head_object(Bucket=stack.s3.bucket, Key="team/a/b.jpg")["Metadata"] == {"moderation": "approved"}
        assert post(stack, JSON, origin="s3", key="nothing.jpg", verdict="approve").status_code == 404
        s3.put_object(
            Bucket=stack.s3.bucket,
            Key=analysis_key("gone.jpg"),
            Body=record("s3", "gone.jpg", PICTURE, nsfw=0.7, age=1).to_json(RECORD_KEY),
        )
        assert post(stack, JSON, origin="s3", key="gone.jpg", verdict="approve").status_code == 404  # no original
    last = json.loads(audit_lines(stack)[-2])  # the blur; then the approval under the prefix
    assert (last["who"], last["origin"], last["verdict"], last["previous"], last["hash"]) == (
        "admin",
        "s3",
        "blurred",
        "rejected",
        content_hash(PICTURE),
    )


def test_metrics_count_the_backlog_and_the_decisions(stack: Stack):
    post(stack, JSON, origin="m", key="asked-again.jpg", verdict="blur")
    stack.client.get("/review", headers=JSON)  # a listing made after the verdict
    text = stack.client.get("/metrics").text
    backlog = stack.client.get("/review", headers=JSON).json()["total"]
    assert f"edgeproxy_review_backlog {float(backlog)}" in text
    oldest = float(re.search(r"^edgeproxy_review_oldest_seconds (\S+)$", text, re.M).group(1))
    assert oldest >= time.time() - NOW + 100 - 5  # pending.jpg, 100 s before NOW, if still waiting
    counts = dict(re.findall(r'^edgeproxy_review_decisions_total\{verdict="(\w+)"\} (\S+)$', text, re.M))
    promtool = require_tool("promtool", "apt-get install prometheus")
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert float(counts["blurred"]) >= 1 and set(counts) == {"approved", "blurred", "rejected"}


def test_blurred_is_a_human_verdict_that_blurs():
    policy = Policy(0.85, 0.6, Action.BLOCK)
    decision = decide(Metadata({"moderation": "blurred"}), 0.99, policy)
    assert (decision.verdict, decision.action) == (Verdict.BLUR, Action.BLUR)


def test_alert_rules_fire_on_a_growing_backlog_and_an_old_item():
    """``promtool test rules`` on config/prometheus/edgeproxy-rules.test.yml: the review and ingest
    alerts fire on a backlog growing for an hour, an original waiting over a day, a growing ingest
    queue, failing jobs and inline analyses, and stay quiet on a steady backlog."""
    promtool = require_tool("promtool", "apt-get install prometheus")
    result = subprocess.run(
        [promtool, "test", "rules", "edgeproxy-rules.test.yml"],
        cwd=ROOT / "config" / "prometheus",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_local_writer_the_review_uses(tmp_path: Path):
    """``origins.writer.LocalWriter`` as the review uses it: keys by suffix (its own temporary files
    never listed), atomic puts that leave no temporary file, None for a missing key, unsafe keys
    refused."""
    import asyncio

    from edgeproxy.origins.local import LocalOrigin
    from edgeproxy.origins.writer import LocalWriter, writer_for

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.jpg.analysis.json").write_text("{}")
    (tmp_path / "a" / ".edgeproxy-left.analysis.json").write_text("{}")  # a crashed write's temporary file
    writer = writer_for(LocalOrigin("m", str(tmp_path), max_bytes=1000))
    assert isinstance(writer, LocalWriter)

    async def run() -> None:
        assert await writer.keys(".analysis.json") == ["a/x.jpg.analysis.json"]
        await writer.put("a/x.jpg.json", b'{"moderation": "approved"}')
        await writer.put("a/x.jpg.json", b'{"moderation": "rejected"}')
        assert await writer.get("a/x.jpg.json") == b'{"moderation": "rejected"}'
        assert await writer.get("a/none.json") is None
        for unsafe in ("../x.json", "a//x.json", "/etc/passwd"):
            with pytest.raises(ValueError):
                await writer.put(unsafe, b"{}")

    asyncio.run(run())
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        ".edgeproxy-left.analysis.json",
        "x.jpg.analysis.json",
        "x.jpg.json",
    ]


def test_a_changed_analysis_object_is_read_again(stack: Stack):
    """The listing keeps parsed records while their stamp (mtime and size; S3: ETag) is unchanged,
    and reads an object again when it changes: a re-analysed original moves in and out of the queue."""

    def queued() -> set[tuple[str, str]]:
        return {(r["origin"], r["key"]) for r in listed(stack)}

    assert ("m", "clean.jpg") not in queued()
    (stack.folder / analysis_key("clean.jpg")).write_bytes(
        record("m", "clean.jpg", PICTURE, nsfw=0.7, age=10).to_json(RECORD_KEY)
    )
    assert ("m", "clean.jpg") in queued()
    (stack.folder / analysis_key("clean.jpg")).write_bytes(
        record("m", "clean.jpg", PICTURE, nsfw=0.1, age=10).to_json(RECORD_KEY)
    )
    assert ("m", "clean.jpg") not in queued()
    with contextlib.closing(stack.s3.client()) as s3:
        changed = record("p", "a/b.jpg", PICTURE, nsfw=0.7, age=401).to_json(RECORD_KEY)
        s3.put_object(Bucket=stack.s3.bucket, Key="team/" + analysis_key("a/b.jpg"), Body=changed)
        s3.put_object(Bucket=stack.s3.bucket, Key="team/a/b.jpg", Body=PICTURE, Metadata={"moderation": "pending"})
    assert ("p", "a/b.jpg") in queued()  # approved earlier; a human "pending" now, and a new analysis


@pytest.mark.slow
def test_the_review_bench_runs():
    """``python -m bench.review`` on a tiny workload prints a row per origin and request (timing is
    bench/'s business, not checked here)."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.review", "--items", "4", "--verdicts", "2", "--repeat", "1", "--no-s3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    rows = [line.split(" | ")[:2] for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[1:] == [
        [f"| {origin}", request]
        for origin in ("local folder",)  # --no-s3: moto's start is the tests' costliest second
        for request in ("first listing", "listing", "verdict", "cached")
    ]


def test_an_unreadable_sidecar_is_not_overwritten(stack: Stack):
    """A sidecar that is not JSON may hold provenance someone must repair: 409, nothing written; the
    original stays listed (an unreadable verdict settles nothing)."""
    (stack.folder / "broken.jpg").write_bytes(PICTURE)
    (stack.folder / analysis_key("broken.jpg")).write_bytes(
        record("m", "broken.jpg", PICTURE, nsfw=0.7, age=1).to_json(RECORD_KEY)
    )
    (stack.folder / "broken.jpg.json").write_text('{"model": "sdxl", ')
    assert ("m", "broken.jpg") in {(r["origin"], r["key"]) for r in listed(stack)}
    answer = post(stack, JSON, origin="m", key="broken.jpg", verdict="approve")
    assert (answer.status_code, answer.headers["cache-control"]) == (409, "no-store")
    assert answer.json()["error"].startswith("the sidecar of 'broken.jpg' is unusable: sidecar is not JSON: ")
    as_text = post(stack, BEARER, origin="m", key="broken.jpg", verdict="approve")
    assert as_text.status_code == 409 and as_text.headers["content-type"] == "text/plain; charset=utf-8"
    assert as_text.text == answer.json()["error"] + "\n"
    assert (stack.folder / "broken.jpg.json").read_text() == '{"model": "sdxl", '


def test_an_s3_origin_that_cannot_be_reached_is_a_502_of_the_store():
    """``S3Verdicts`` against a closed port: ``VerdictUnavailable`` naming the failure, not a
    botocore exception (the route answers it 502)."""
    import asyncio

    from edgeproxy.origins.s3 import S3Options, S3Origin
    from edgeproxy.review.verdicts import S3Verdicts, VerdictUnavailable
    from testkit.net import free_port

    options = S3Options(
        endpoint_url=f"http://127.0.0.1:{free_port()}", region="us-east-1", access_key_id="a", secret_access_key="b"
    )
    store = S3Verdicts(S3Origin("s3", "s3://bucket", options, max_bytes=1000), options, timeout=1.0)
    try:
        with pytest.raises(VerdictUnavailable, match="S3 could not be reached: EndpointConnectionError"):
            asyncio.run(store.write("a.jpg", "approved"))
    finally:
        store.close()
