"""``edgeproxy ingest`` against a real queue: moto's server (S3 and SQS on one port, in its own
process) with the bucket's object-created notifications going to an SQS queue whose RedrivePolicy
sends a message to a dead-letter queue after 3 receives, the real vision models, and a small HTTP
server standing in for the CDN (it records purge webhooks and prewarm requests).

One worker runs in a thread for the whole module (``work``: what each ``edgeproxy ingest`` process
runs); the SIGKILL test runs ``edgeproxy ingest`` as a process of its own. The proxy's side (it reads
the analysis objects instead of running the models) is checked through the real app.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edgeproxy.cli import main as cli
from edgeproxy.ingest.analyser import Analyser
from edgeproxy.ingest.events import Upload, s3_buckets, s3_uploads
from edgeproxy.ingest.record import AnalysisRecord, analysis_key
from edgeproxy.service.validators import surrogate_key
from edgeproxy.settings import Settings, load_settings
from edgeproxy.url.builders import UrlBuilder
from edgeproxy.vision.moderation import Action, Metadata, Policy, Verdict, decide
from testkit.app import KEY, make_client, signed
from testkit.images import decode, encode, face, photo
from testkit.ingest import RECORD_KEY, Running, notified_queue, sqs_client, wait_for
from testkit.metrics import value
from testkit.moto import MotoS3, moto_s3
from testkit.net import free_port
from testkit.origin import Origin, Reply, serve_origin

BUCKET = "ingest-originals"
PORTRAIT = "giunchedi-portrait.jpg"  # corpus: 800x533, one face
#: Seconds a received message stays hidden: short, so that a failure comes back quickly.
VISIBILITY = 1
WAIT = 10.0  # seconds to wait for a worker's result


def jpeg(seed: int, width: int = 320, height: int = 240) -> bytes:
    return encode(photo(width, height, seed=seed), "jpeg")


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoS3]:
    with moto_s3(BUCKET) as server:
        yield server


@pytest.fixture(scope="module")
def sqs(moto: MotoS3) -> Iterator[Any]:
    client = sqs_client(moto)
    yield client
    client.close()


@pytest.fixture(scope="module")
def queues(moto: MotoS3, sqs: Any) -> tuple[str, str]:
    return notified_queue(moto, sqs, BUCKET, "uploads", VISIBILITY)


@pytest.fixture(scope="module")
def cdn() -> Iterator[Origin]:
    """The CDN's stand-in: answers 200 to anything (purge webhooks, prewarm GETs) and logs it."""
    with serve_origin(fallback=lambda request: Reply(200, b"ok")) as server:
        yield server


def ingest_settings(
    moto: MotoS3, models: dict[str, Path], queue: str, origins: dict[str, str], **more: Any
) -> Settings:
    return load_settings(
        origins=origins,
        signing_key=KEY,
        nsfw_model=str(models["nsfw"]),
        face_model=str(models["face"]),
        ingest_queue_url=queue,
        ingest_wait_time=1,
        **moto.settings(),
        **{"ingest_visibility_timeout": VISIBILITY, **more},
    )


@pytest.fixture(scope="module")
def settings(moto: MotoS3, models: dict[str, Path], queues: tuple[str, str], cdn: Origin) -> Settings:
    return ingest_settings(
        moto,
        models,
        queues[0],
        {"media": f"s3://{BUCKET}", "sub": f"s3://{BUCKET}/sub"},
        purge_hooks=[f"webhook:{cdn.url}purge"],
        ingest_prewarm_variants=["w:100/f:png"],
        ingest_prewarm_base=cdn.url.rstrip("/"),
        original_cache_ttl=1,  # the proxies' staleness: the second purge comes a second later
    )


@pytest.fixture(scope="module")
def worker(settings: Settings) -> Iterator[Running]:
    with Running(settings) as running:
        yield running


@pytest.fixture(scope="module")
def fingerprint(settings: Settings) -> str:
    from edgeproxy.vision.analysis import Vision

    return Vision.load(settings).fingerprint()


def stored(moto: MotoS3, key: str, etag: str | None = None) -> AnalysisRecord | None:
    """The analysis object of ``key`` in the bucket (of the original whose ETag is ``etag``), or None."""
    with contextlib.closing(moto.client()) as s3:
        try:
            body = s3.get_object(Bucket=BUCKET, Key=analysis_key(key))["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None
    record = AnalysisRecord.from_json(body, RECORD_KEY)
    return record if etag is None or record.etag == etag else None


def s3_etag(moto: MotoS3, key: str) -> str:
    with contextlib.closing(moto.client()) as s3:
        return str(s3.head_object(Bucket=BUCKET, Key=key)["ETag"])


def test_an_upload_is_analysed_from_its_s3_event(moto, worker, fingerprint, settings):
    body = jpeg(1)
    moto.put("cats/tom cat.jpg", body)  # a space: the event's key is URL-encoded
    record = wait_for(lambda: stored(moto, "cats/tom cat.jpg"))
    assert (record.origin, record.key, record.width, record.height) == ("media", "cats/tom cat.jpg", 320, 240)
    assert record.etag == s3_etag(moto, "cats/tom cat.jpg")
    assert record.sha256 == hashlib.sha256(body).hexdigest()
    assert record.models == fingerprint
    assert record.nsfw is not None and 0 <= record.nsfw <= 1
    assert record.faces is not None and record.failures == ()
    policy = Policy(settings.moderation_block_threshold, settings.moderation_blur_threshold, Action.BLOCK)
    assert record.verdict == decide(Metadata(), record.nsfw, policy).verdict
    assert 0 <= record.latency < WAIT
    assert worker.jobs("analysed") >= 1
    assert worker.registry.get_sample_value("edgeproxy_ingest_latency_seconds_count") >= 1
    moto.put("sub/deep.jpg", jpeg(9))  # under an origin's prefix: that origin's key, its record beside it
    deeper = wait_for(lambda: stored(moto, "sub/deep.jpg"))
    assert (deeper.origin, deeper.key) == ("sub", "deep.jpg")
    with contextlib.closing(moto.client()) as s3:  # the record's own event and a sidecar's are not analysed
        s3.put_object(Bucket=BUCKET, Key="cats/tom cat.jpg.json", Body=b'{"model": "sdxl"}')
    time.sleep(1.5)
    assert worker.jobs("failed") == 0 and worker.jobs("skipped") == 0


def test_a_redelivered_event_is_not_analysed_again(moto, sqs, queues, worker):
    moto.put("again.jpg", jpeg(2))
    first = wait_for(lambda: stored(moto, "again.jpg"))
    analysed, skipped = worker.jobs("analysed"), worker.jobs("skipped")
    event = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "eventTime": "2026-12-04T10:00:00.000Z",
                "s3": {"bucket": {"name": BUCKET}, "object": {"key": "again.jpg"}},
            }
        ]
    }
    sqs.send_message(QueueUrl=queues[0], MessageBody=json.dumps(event))  # at-least-once: delivered twice
    wait_for(lambda: worker.jobs("skipped") == skipped + 1)
    assert worker.jobs("analysed") == analysed
    assert stored(moto, "again.jpg") == first


def test_a_replaced_original_is_analysed_again_its_derivatives_purged_and_prewarmed(moto, worker, cdn):
    moto.put("replaced.jpg", jpeg(3))
    first = wait_for(lambda: stored(moto, "replaced.jpg"))
    assert not [r for r in cdn.requests if r.path == "/purge"]  # a first upload purges nothing
    moto.put("replaced.jpg", jpeg(4, 240, 320))
    etag = s3_etag(moto, "replaced.jpg")
    second = wait_for(lambda: stored(moto, "replaced.jpg", etag))
    assert second.etag != first.etag and (second.width, second.height) == (240, 320)
    # Purged at once, and again once no proxy renders from its cached copy of the old original
    # (original_cache_ttl); prewarmed only then, so that the CDN gets the new original's derivatives.
    variant = UrlBuilder("", KEY).path("media", "replaced.jpg", w="100", f="png")
    wait_for(lambda: variant in cdn.gets())
    sent = [(r.method, r.path, json.loads(r.body) if r.method == "POST" else None) for r in cdn.requests]
    purge = {"surrogate_key": surrogate_key("media", "replaced.jpg"), "origin": "media", "key": "replaced.jpg"}
    assert sent == [("POST", "/purge", purge), ("POST", "/purge", purge), ("GET", variant, None)]


def test_a_long_analysis_keeps_its_message_hidden(moto, sqs, queues, worker, monkeypatch):
    """An analysis three times as long as the visibility timeout: the worker extends the message's
    visibility while it works, so no other consumer receives it meanwhile."""
    slow, started = Analyser._analyse, threading.Event()

    def slower(self, upload, *args):
        if upload.key == "slow.jpg":
            started.set()
            time.sleep(3 * VISIBILITY)
        return slow(self, upload, *args)

    monkeypatch.setattr(Analyser, "_analyse", slower)
    moto.put("slow.jpg", jpeg(8))
    assert started.wait(WAIT)
    seen = []  # what another consumer receives while the analysis runs (left visible: timeout 0)
    while stored(moto, "slow.jpg") is None:
        answer = sqs.receive_message(QueueUrl=queues[0], WaitTimeSeconds=1, VisibilityTimeout=0)
        seen += [r["s3"]["object"]["key"] for m in answer.get("Messages", []) for r in json.loads(m["Body"])["Records"]]
    assert "slow.jpg" not in seen


def test_an_undecodable_original_ends_in_the_dead_letter_queue(moto, sqs, queues, worker, caplog):
    caplog.set_level(logging.WARNING, logger="edgeproxy.ingest")
    failed = worker.jobs("failed")
    moto.put("broken.jpg", b"\xff\xd8 not a JPEG at all")
    found = wait_for(lambda: sqs.receive_message(QueueUrl=queues[1], WaitTimeSeconds=1).get("Messages"), timeout=20)
    event = json.loads(found[0]["Body"])
    assert [r["s3"]["object"]["key"] for r in event["Records"]] == ["broken.jpg"]
    assert worker.jobs("failed") - failed == 3  # received three times, failed three times
    assert stored(moto, "broken.jpg") is None
    lines = [r for r in caplog.records if r.getMessage() == "ingest failed"]
    assert [(r.fields["key"], r.fields["status"], r.fields["receives"]) for r in lines] == [
        ("broken.jpg", 422, 1),
        ("broken.jpg", 422, 2),
        ("broken.jpg", 422, 3),
    ]


def test_the_proxy_uses_the_stored_analysis(moto, worker, corpus, models, tmp_path):
    portrait = (corpus / PORTRAIT).read_bytes()
    moto.put("portrait.jpg", portrait)
    record = wait_for(lambda: stored(moto, "portrait.jpg"))
    assert record.faces is not None and len(record.faces) == 1
    (tmp_path / "portrait.jpg").write_bytes(portrait)  # the same original where nothing is stored
    options = {"nsfw_model": str(models["nsfw"]), "face_model": str(models["face"]), "moderation": True}
    with make_client({"media": f"s3://{BUCKET}", "plain": str(tmp_path)}, **options, **moto.settings()) as client:
        answers = {
            origin: client.get(signed(f"/w:300/redact:faces:pixelate/f:png/{origin}/portrait.jpg"))
            for origin in ("media", "plain")
        }
        metrics = client.get("/metrics").text
    assert value(metrics, "edgeproxy_analysis_total", source="stored") == 1  # media: no model ran
    assert value(metrics, "edgeproxy_analysis_total", source="inline") == 1  # plain: the models ran
    assert value(metrics, "edgeproxy_vision_seconds_count", stage="nsfw") == 1
    stored_answer, inline_answer = answers["media"], answers["plain"]
    assert stored_answer.status_code == inline_answer.status_code == 200
    for name in ("cache-control", "content-type"):
        assert stored_answer.headers[name] == inline_answer.headers[name]
    assert (decode(stored_answer.content).width, decode(stored_answer.content).height) == (300, 200)
    assert stored_answer.content == inline_answer.content  # the same pixels, the same moderation


KILL_BUCKET = "ingest-kill"
#: Runs ``edgeproxy ingest`` with the analysis held: it marks its start in the file named by argv[1],
#: then blocks, so that the test kills it mid-job.
HELD = """
import sys, time
from pathlib import Path
from edgeproxy.ingest.analyser import Analyser
def held(self, *args):
    Path(sys.argv[1]).write_text("started")
    time.sleep(600)
Analyser._analyse = held
from edgeproxy.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_a_worker_killed_mid_job_loses_nothing(moto, sqs, models, tmp_path):
    with contextlib.closing(moto.client()) as s3:
        s3.create_bucket(Bucket=KILL_BUCKET)
    queue, _dlq = notified_queue(moto, sqs, KILL_BUCKET, "kill", 2)
    config = tmp_path / "ingest.toml"
    config.write_text(
        f'signing_key = "{KEY}"\nnsfw_model = "{models["nsfw"]}"\nface_model = "{models["face"]}"\n'
        f'ingest_queue_url = "{queue}"\ningest_visibility_timeout = 2\ningest_wait_time = 1\n'
        + "".join(f'{k} = "{v}"\n' for k, v in moto.settings().items())
        + f'[origins]\nmedia = "s3://{KILL_BUCKET}"\n'
    )
    marker, port = tmp_path / "started", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGEPROXY_", "AWS_"))}
    args = ["ingest", "--config", str(config), "--metrics-port", str(port)]
    log = tmp_path / "held.log"
    with log.open("wb") as out:
        held = subprocess.Popen(
            [sys.executable, "-c", HELD, str(marker), *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        with contextlib.closing(moto.client()) as s3:
            s3.put_object(Bucket=KILL_BUCKET, Key="held.jpg", Body=jpeg(5))
        wait_for(lambda: marker.exists() or held.poll() is not None, timeout=30)
        assert held.poll() is None, log.read_text()
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert value(scraped, "edgeproxy_ingest_queue_depth") == 0  # the message is in flight, not waiting
        assert value(scraped, "edgeproxy_ingest_jobs_total", outcome="analysed") == 0
        held.send_signal(signal.SIGKILL)  # mid-job: the message was neither deleted nor finished
        held.wait(10)
    finally:
        if held.poll() is None:
            held.kill()
            held.wait(10)
    # Two other workers (one command, --processes 2): one of them gets the message once its
    # visibility times out, and their metrics are summed.
    port = free_port()
    with (tmp_path / "others.log").open("wb") as out:
        others = subprocess.Popen(
            [sys.executable, "-m", "edgeproxy", *args[:-1], str(port), "--processes", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        record = wait_for(lambda: _kill_record(moto), timeout=30)
        scrape = lambda: httpx.get(f"http://127.0.0.1:{port}/metrics").text  # noqa: E731
        wait_for(lambda: value(scrape(), "edgeproxy_ingest_jobs_total", outcome="analysed") == 1)
        assert value(scrape(), "edgeproxy_ingest_jobs_total", outcome="failed") == 0
        others.send_signal(signal.SIGTERM)  # each process finishes its message in hand, then exits
        assert others.wait(15) == 0, (tmp_path / "others.log").read_text()
    finally:
        if others.poll() is None:
            others.kill()
            others.wait(10)
    assert record.key == "held.jpg"
    depth = sqs.get_queue_attributes(
        QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert depth == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}  # deleted


def _kill_record(moto: MotoS3) -> AnalysisRecord | None:
    with contextlib.closing(moto.client()) as s3:
        try:
            return AnalysisRecord.from_json(
                s3.get_object(Bucket=KILL_BUCKET, Key="held.jpg.analysis.json")["Body"].read(), RECORD_KEY
            )
        except s3.exceptions.NoSuchKey:
            return None


def test_a_local_folder_is_watched(models, tmp_path):
    folder = tmp_path / "originals"
    (folder / "sub").mkdir(parents=True)
    settings = load_settings(
        origins={"local": str(folder)}, signing_key=KEY, nsfw_model=str(models["nsfw"]), face_model=str(models["face"])
    )
    with Running(settings, watch=True) as watcher:
        (folder / "sub" / "new.jpg").write_bytes(jpeg(6))
        (folder / "sub" / "new.jpg.json").write_text('{"moderation": "approved"}')  # a sidecar: not analysed
        path = folder / "sub" / analysis_key("new.jpg")
        record = AnalysisRecord.from_json(wait_for(lambda: path.is_file() and path.read_bytes()), RECORD_KEY)
        assert (record.origin, record.key, record.width, record.height) == ("local", "sub/new.jpg", 320, 240)
        first = record.etag
        (folder / "sub" / "new.jpg").write_bytes(jpeg(7, 200, 100))  # replaced in place
        wait_for(lambda: AnalysisRecord.from_json(path.read_bytes(), RECORD_KEY).etag != first)
        assert AnalysisRecord.from_json(path.read_bytes(), RECORD_KEY).width == 200
        assert watcher.jobs("failed") == 0
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == [
        "sub",
        "sub/new.jpg",
        "sub/new.jpg.analysis.json",
        "sub/new.jpg.json",
    ]


def _event(bucket: str, key: str, name: str = "ObjectCreated:Put") -> str:
    record = {
        "eventName": name,
        "eventTime": "2026-12-04T15:03:42.500Z",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key}},
    }
    return json.dumps({"Records": [record]})


WHEN = 1796396622.5  # 2026-12-04T15:03:42.500Z


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (_event("bkt", "a+b%2Fc%2Bd.jpg"), [Upload("all", "a b/c+d.jpg", WHEN)]),  # URL-encoded, + for a space
        (_event("bkt", "photos/x.jpg"), [Upload("photos", "x.jpg", WHEN)]),  # the longest prefix wins
        (_event("bkt", "photos"), [Upload("all", "photos", WHEN)]),
        (_event("bkt", "x.jpg.analysis.json"), []),  # edgeproxy's own objects are no uploads
        (_event("bkt", "x.jpg.json"), []),
        (_event("other", "x.jpg"), []),  # a bucket of no origin
        (_event("bkt", "x.jpg", "ObjectRemoved:Delete"), []),
        ('{"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "bkt"}', []),
    ],
)
def test_s3_events_name_the_uploads(body, expected):
    buckets = s3_buckets(
        {"all": "s3://bkt", "photos": "s3://bkt/photos", "local": "/tmp", "web": "https://example.com"}
    )
    assert s3_uploads(body, buckets) == expected


@pytest.mark.parametrize("body", ["not json", "[]", '{"Records": [{"eventName": "ObjectCreated:Put"}]}', "{}"])
def test_unreadable_messages_are_refused(body):
    with pytest.raises(ValueError):
        s3_uploads(body, {"b": [("", "all")]})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "set ingest_queue_url"),
        (["--watch", "--origin", "web=https://example.com"], "--watch needs a local-folder origin"),
        (["--queue-url", "https://sqs.example/1/q"], "configure an s3:// origin"),
        (["--watch", "--processes", "2"], "--watch runs in one process"),
        (["--watch"], "ingest_prewarm_variants: variant 'w400': 'w400' is not an option"),
    ],
)
def test_ingest_refuses_what_it_cannot_run(args, message, models, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEPROXY_SIGNING_KEY", KEY)
    monkeypatch.setenv("EDGEPROXY_NSFW_MODEL", str(models["nsfw"]))
    monkeypatch.setenv("EDGEPROXY_FACE_MODEL", str(models["face"]))
    if "ingest_prewarm_variants" in message:
        monkeypatch.setenv("EDGEPROXY_INGEST_PREWARM_VARIANTS", '["w:400", "w400"]')
        monkeypatch.setenv("EDGEPROXY_INGEST_PREWARM_BASE", "https://cdn.example")
    origin = [] if "--origin" in args else ["--origin", f"local={tmp_path}"]
    assert cli(["ingest", *origin, *args]) == 2
    assert message in capsys.readouterr().err


def test_ingest_names_the_extra_it_lacks(capsys, monkeypatch, tmp_path):
    """Without boto3 (the [ingest] extra), the command says what to install: no traceback."""
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "boto3" else find_spec(name, *a))
    monkeypatch.setenv("EDGEPROXY_SIGNING_KEY", KEY)
    args = ["--origin", f"local={tmp_path}", "--queue-url", "https://sqs.example/1/q"]
    assert cli(["ingest", *args]) == 2
    assert "the SQS queue needs boto3: pip install 'edgeproxy[ingest]'" in capsys.readouterr().err


def test_a_forged_analysis_object_is_not_trusted(models, tmp_path):
    """An uploader who can put objects beside their own (user uploads into a bucket) writes
    ``KEY.analysis.json`` saying "no faces, nsfw 0", with the right origin ETag and model
    fingerprint copied from the deployment: the proxy must not believe it, or redaction and
    moderation would be bypassed. Only objects authenticated with the deployment's key count."""
    from edgeproxy.vision.analysis import Vision

    picture = encode(face(640, 480), "jpeg")
    options = {"nsfw_model": str(models["nsfw"]), "face_model": str(models["face"]), "moderation": True}
    forged_folder, clean_folder = tmp_path / "forged", tmp_path / "clean"
    for folder in (forged_folder, clean_folder):
        folder.mkdir()
        (folder / "face.jpg").write_bytes(picture)
    fingerprint = Vision.load(load_settings(signing_key=KEY, **options)).fingerprint()
    forged = AnalysisRecord(
        origin="forged",
        key="face.jpg",
        etag=hashlib.blake2b(picture, digest_size=16).hexdigest(),  # the local origin's ETag
        sha256=hashlib.sha256(picture).hexdigest(),
        models=fingerprint,
        uploaded_at=time.time(),
        analysed_at=time.time(),
        width=640,
        height=480,
        nsfw=0.0,
        faces=(),
        verdict=Verdict.ALLOW,
    )
    (forged_folder / analysis_key("face.jpg")).write_bytes(forged.to_json(b"the uploader's own key"))
    with make_client({"forged": str(forged_folder), "clean": str(clean_folder)}, **options) as client:
        answers = {o: client.get(signed(f"/w:320/redact:faces/f:png/{o}/face.jpg")) for o in ("forged", "clean")}
        metrics = client.get("/metrics").text
    assert value(metrics, "edgeproxy_analysis_total", source="stored") == 0
    assert value(metrics, "edgeproxy_analysis_total", source="inline") == 2
    assert answers["forged"].status_code == answers["clean"].status_code == 200
    assert answers["forged"].content == answers["clean"].content  # the face redacted all the same
