"""The S3 origin against a real S3-compatible server on 127.0.0.1 (moto's server mode, started and
stopped here), through the running proxy and, where the proxy hides it, by calling the origin."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import boto3
import obstore
import pytest
from moto.server import ThreadedMotoServer

from edgeproxy.errors import ProxyError
from edgeproxy.origins.s3 import S3Options, S3Origin, parse_location
from edgeproxy.service.validators import surrogate_key
from edgeproxy.settings import SettingsError, load_settings
from testkit.app import KEY, make_client, raw_get, signed
from testkit.images import decode, loader_format
from testkit.net import free_port, silent_server

BUCKET = "edgeproxy-originals"
PREFIX = "media"
ACCESS_KEY = "AKIAEDGEPROXYTEST000"
SECRET_KEY = "s3-secret-that-must-never-be-logged"
PORTRAIT = "photo.jpg"  # the synthetic library's 800 x 533 JPEG (over 50,000 bytes)
OTHER = "grey.jpg"
S3_LOGGER = "edgeproxy.origins.s3"


@dataclass
class S3:
    url: str
    client: object  # boto3 S3 client (as the test's own user)

    def settings(self, **overrides) -> dict:
        """Proxy settings that reach this server as the test's user."""
        return {
            "s3_endpoint_url": self.url,
            "s3_region": "us-east-1",
            "s3_access_key_id": ACCESS_KEY,
            "s3_secret_access_key": SECRET_KEY,
            **overrides,
        }

    def origin(
        self, location: str = f"s3://{BUCKET}/{PREFIX}", *, max_bytes: int = 32 << 20, timeout: float = 5.0, **options
    ) -> S3Origin:
        opts = {
            "endpoint_url": self.url,
            "region": "us-east-1",
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
            **options,
        }
        return S3Origin("s3", location, S3Options(**opts), max_bytes=max_bytes, timeout=timeout)

    def put(self, key: str, body: bytes, **metadata: str) -> None:
        self.client.put_object(Bucket=BUCKET, Key=key, Body=body, Metadata=metadata)

    def set_auth(self, enabled: bool) -> None:
        """moto checks signatures against its IAM users only when told to (``reset-auth``)."""
        request = urllib.request.Request(
            f"{self.url}/moto-api/reset-auth",
            data=b"0" if enabled else b"inf",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200


@pytest.fixture(scope="module")
def s3(photos: Path) -> Iterator[S3]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        url = f"http://127.0.0.1:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        client.create_bucket(Bucket=BUCKET)
        store = S3(url, client)
        store.put(
            f"{PREFIX}/portrait.jpg", (photos / PORTRAIT).read_bytes(), Moderation="pending", provenance="camera:x100"
        )
        store.put(f"{PREFIX}/dir/my photo+é%.jpg", (photos / PORTRAIT).read_bytes())
        store.put("outside.jpg", (photos / PORTRAIT).read_bytes())  # beside the prefix, not under it
        yield store
        client.close()
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def no_aws_environment(monkeypatch):
    """The machine's AWS_* variables (a profile, AWS_ENDPOINT_URL_S3...) must not steer these tests."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)


@contextlib.contextmanager
def s3_log() -> Iterator[list[logging.LogRecord]]:
    """Records of the S3 origin's logger (attached directly: the app's logging config may stop
    propagation to the root logger that caplog watches)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger(S3_LOGGER)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def log_text(records: list[logging.LogRecord]) -> str:
    return "\n".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in records)


class Spy:
    """Wraps ``obstore.get_async``: records each request's options and counts the body bytes the
    origin pulled; ``hide_size`` reports no declared size (to prove the streaming cap)."""

    def __init__(self, real, hide_size: bool = False):
        self.real, self.hide_size = real, hide_size
        self.calls: list[tuple[str, dict]] = []
        self.streamed = 0

    async def __call__(self, store, path, *, options=None):
        self.calls.append((path, dict(options or {})))
        return Spy.Result(await self.real(store, path, options=options), self)

    class Result:
        def __init__(self, result, spy: Spy):
            self.result, self.spy = result, spy

        @property
        def meta(self):
            return {**self.result.meta, "size": 0} if self.spy.hide_size else self.result.meta

        @property
        def attributes(self):
            return self.result.attributes

        async def stream(self, min_chunk_size: int):
            async for chunk in self.result.stream(min_chunk_size=min_chunk_size):
                self.spy.streamed += len(chunk)
                yield chunk


@pytest.fixture
def spy(monkeypatch) -> Spy:
    spy = Spy(obstore.get_async)
    monkeypatch.setattr(obstore, "get_async", spy)
    return spy


def test_signed_request_renders_an_s3_original(s3, photos):
    with make_client({"s3": f"s3://{BUCKET}/{PREFIX}"}, **s3.settings()) as client:
        response = client.get(signed("/w:200/f:webp/s3/portrait.jpg"))
        assert response.status_code == 200, response.text
        image = decode(response.content)
        assert (loader_format(image), image.width, image.height) == ("webp", 200, 133)
        assert response.headers["content-type"] == "image/webp"
        assert response.headers["last-modified"].endswith(" GMT")
        assert response.headers["etag"].startswith('"')
        # A key with a space, +, % and non-ASCII, percent-encoded in the URL, is the same S3 key.
        response = client.get(signed("/w:100/f:jpeg/s3/" + quote("dir/my photo+é%.jpg")))
        assert response.status_code == 200, response.text
        assert decode(response.content).width == 100


def test_etag_follows_the_object(s3, photos):
    key = f"{PREFIX}/changing.jpg"
    s3.put(key, (photos / PORTRAIT).read_bytes())
    with make_client({"s3": f"s3://{BUCKET}/{PREFIX}"}, original_cache_ttl=0, **s3.settings()) as client:
        path = signed("/w:100/f:jpeg/s3/changing.jpg")
        first = client.get(path)
        again = client.get(path)  # revalidated (304 from S3): the same derivative
        s3.put(key, (photos / OTHER).read_bytes())
        changed = client.get(path)
    assert first.status_code == again.status_code == changed.status_code == 200
    assert first.headers["etag"] == again.headers["etag"]
    assert changed.headers["etag"] != first.headers["etag"]
    assert changed.content != first.content  # the other picture


def test_missing_key_is_404(s3):
    with make_client({"s3": f"s3://{BUCKET}/{PREFIX}"}, **s3.settings()) as client:
        response = client.get(signed("/w:100/s3/no/such/key.jpg"))
    assert response.status_code == 404
    assert response.text.strip() == "original not found"


def test_keys_stay_under_the_prefix(s3):
    """``outside.jpg`` is in the bucket but not under the prefix: no key reaches it."""
    with make_client({"s3": f"s3://{BUCKET}/{PREFIX}", "all": f"s3://{BUCKET}"}, **s3.settings()) as client:
        assert client.get(signed("/w:50/all/outside.jpg")).status_code == 200  # it exists
        assert client.get(signed("/w:50/s3/outside.jpg")).status_code == 404
        for key in ("../outside.jpg", "a/../../outside.jpg", "./portrait.jpg", "%2E%2E/outside.jpg"):
            status, _ = raw_get(client, signed(f"/w:50/s3/{key}"))
            assert status == 404, key


@pytest.mark.parametrize(
    "key",
    [
        "a/../b.jpg",
        "../outside.jpg",
        "./portrait.jpg",
        "a//portrait.jpg",
        "/portrait.jpg",
        "a\\b.jpg",
        "nul\x00.jpg",
        "",
    ],
)
def test_unsafe_keys_are_404_without_a_request(s3, spy, key):
    async def go():
        origin = s3.origin()
        with pytest.raises(ProxyError) as info:
            await origin.fetch(key)
        await origin.aclose()
        return info.value

    error = asyncio.run(go())
    assert (error.status, error.message) == (404, "original not found")
    assert spy.calls == []


def test_object_over_max_source_bytes_is_413(s3, spy):
    with make_client({"s3": f"s3://{BUCKET}/{PREFIX}"}, max_source_bytes=50_000, **s3.settings()) as client:
        response = client.get(signed("/w:100/s3/portrait.jpg"))
    assert response.status_code == 413
    assert "over the limit of 50000 bytes" in response.text
    assert spy.calls and spy.streamed == 0  # refused on the declared size, before reading the body


def test_streaming_cap_holds_without_a_declared_size(s3, spy):
    """Were the declared size missing or wrong, the stream is cut at the cap, not read whole."""
    s3.put(f"{PREFIX}/big.bin", b"\0" * (8 << 20))
    spy.hide_size = True

    async def go():
        origin = s3.origin(max_bytes=300_000)
        with pytest.raises(ProxyError) as info:
            await origin.fetch("big.bin")
        return info.value

    error = asyncio.run(go())
    assert error.status == 413
    assert 300_000 < spy.streamed < 1 << 20  # at most the cap and one chunk of the 8 MiB object


def test_conditional_fetch_returns_the_cached_original_itself(s3, photos, spy):
    key = f"{PREFIX}/revalidated.jpg"
    s3.put(key, (photos / PORTRAIT).read_bytes())

    async def go():
        origin = s3.origin()
        first = await origin.fetch("revalidated.jpg")
        same = await origin.fetch("revalidated.jpg", cached=first)
        s3.put(key, (photos / OTHER).read_bytes())
        changed = await origin.fetch("revalidated.jpg", cached=first)
        return origin, first, same, changed

    origin, first, same, changed = asyncio.run(go())
    assert first.data == (photos / PORTRAIT).read_bytes()
    assert first.stamp == first.etag and first.etag.startswith('"')  # the ETag as S3 sent it
    assert first.last_modified.endswith(" GMT")
    assert origin.unchanged("revalidated.jpg", first) is None  # only a conditional GET can tell
    assert same is first
    assert spy.calls[1] == ("revalidated.jpg", {"head": True})  # attributes without the body
    assert [path for path, _ in spy.calls] == ["revalidated.jpg"] * 4  # GET, HEAD, HEAD, GET
    assert spy.calls[3] == ("revalidated.jpg", {})  # the ETag changed: the new body
    assert changed is not first and changed.data == (photos / OTHER).read_bytes()
    assert changed.etag != first.etag


def test_metadata_only_change_is_seen_at_revalidation(s3, photos, spy):
    """A verdict changed in place (``copy_object`` onto itself with ``MetadataDirective=REPLACE``,
    what a moderation tool does): the bytes and so the ETag stay the same, LastModified and the user
    metadata change. Revalidation sees the new metadata (issue 19, item 4: a conditional GET with
    ``If-None-Match`` answered 304 and the proxy kept the old verdict) without fetching the body
    again; an unchanged object is still the cached original itself."""
    key = f"{PREFIX}/verdict.jpg"
    s3.put(key, (photos / PORTRAIT).read_bytes(), moderation="rejected", model="sdxl-1.0")

    async def go():
        origin = s3.origin()
        first = await origin.fetch("verdict.jpg")
        streamed = spy.streamed
        same = await origin.fetch("verdict.jpg", cached=first)
        time.sleep(1.05)  # S3's LastModified has one-second resolution
        s3.client.copy_object(
            Bucket=BUCKET,
            Key=key,
            CopySource={"Bucket": BUCKET, "Key": key},
            Metadata={"moderation": "approved", "model": "sdxl-1.0"},
            MetadataDirective="REPLACE",
        )
        approved = await origin.fetch("verdict.jpg", cached=first)
        return first, same, approved, spy.streamed - streamed

    first, same, approved, streamed_again = asyncio.run(go())
    assert s3.client.head_object(Bucket=BUCKET, Key=key)["ETag"] == first.etag  # S3 kept the ETag
    assert same is first
    assert dict(first.metadata) == {"moderation": "rejected", "model": "sdxl-1.0"}
    assert dict(approved.metadata) == {"moderation": "approved", "model": "sdxl-1.0"}
    assert approved.etag == approved.stamp == first.etag
    assert approved.last_modified != first.last_modified
    assert approved.data is first.data and streamed_again == 0  # the body was not fetched again


def test_user_metadata_reaches_the_original(s3):
    original = asyncio.run(s3.origin().fetch("portrait.jpg"))
    assert dict(original.metadata) == {"moderation": "pending", "provenance": "camera:x100"}
    with pytest.raises(TypeError):
        original.metadata["moderation"] = "approved"  # read-only


def test_unreachable_endpoint_is_502_with_a_clear_log_line(s3):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with (
        s3_log() as records,
        make_client({"s3": f"s3://{BUCKET}/{PREFIX}"}, **s3.settings(s3_endpoint_url=closed)) as client,
    ):
        response = client.get(signed("/w:100/s3/portrait.jpg"))
        ready = client.get("/readyz")
    assert response.status_code == 502
    assert response.text.strip() == "origin connection failed"
    assert SECRET_KEY not in response.text
    text = log_text(records)
    assert "S3 origin 's3'" in text and f"bucket '{BUCKET}'" in text and closed in text, text
    assert "connection failed" in text and "Connection refused" in text, text
    assert SECRET_KEY not in text
    # Readiness is about the pod: the origin is reported, the answer stays 200 (tests/test_origin_faults.py).
    assert ready.status_code == 200 and ready.json()["origins"] == {"s3": False}
    assert ready.json()["status"] == "degraded"


def test_refused_credentials_are_502_and_unset_settings_use_the_aws_variables(s3, monkeypatch):
    """moto checks signatures once auth is on (``reset-auth``): a reader created in its IAM gets
    the picture through the standard AWS variables alone; a wrong secret or an unknown key id is
    refused by S3 (403) and answered 502, logged without the secret."""
    iam = boto3.client(
        "iam",
        endpoint_url=s3.url,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    iam.create_user(UserName="edgeproxy-reader")
    iam.put_user_policy(
        UserName="edgeproxy-reader",
        PolicyName="read",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}],
            }
        ),
    )
    reader = iam.create_access_key(UserName="edgeproxy-reader")["AccessKey"]
    iam.close()
    for name, value in {
        "AWS_ACCESS_KEY_ID": reader["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": reader["SecretAccessKey"],
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3.url,
    }.items():
        monkeypatch.setenv(name, value)
    wrong = "wrong-secret-also-never-logged"
    s3.set_auth(True)
    try:
        with make_client({"s3": f"s3://{BUCKET}/{PREFIX}"}) as client:  # no s3_* setting: AWS_* apply
            assert client.get(signed("/w:100/s3/portrait.jpg")).status_code == 200
            assert client.get("/readyz").json()["origins"] == {"s3": True}
        with (
            s3_log() as records,
            make_client(
                {"s3": f"s3://{BUCKET}/{PREFIX}"}, s3_access_key_id=reader["AccessKeyId"], s3_secret_access_key=wrong
            ) as client,
        ):  # settings win over the variables
            bad_secret = client.get(signed("/w:100/s3/portrait.jpg"))
            ready_refused = client.get("/readyz")
        with (
            s3_log() as unknown_records,
            make_client(
                {"s3": f"s3://{BUCKET}/{PREFIX}"}, **s3.settings(s3_access_key_id="AKIANOSUCHKEY0000000")
            ) as client,
        ):
            unknown_key = client.get(signed("/w:100/s3/portrait.jpg"))
    finally:
        s3.set_auth(False)
    assert (bad_secret.status_code, bad_secret.text.strip()) == (502, "origin refused access")
    assert (unknown_key.status_code, unknown_key.text.strip()) == (502, "origin refused access")
    assert ready_refused.status_code == 200 and ready_refused.json()["origins"] == {"s3": False}
    text = log_text(records)
    assert "S3 origin 's3'" in text and "access refused" in text and "SignatureDoesNotMatch" in text, text
    assert "InvalidAccessKeyId" in log_text(unknown_records)
    for secret in (wrong, reader["SecretAccessKey"], SECRET_KEY):
        assert secret not in text + log_text(unknown_records)


def test_missing_bucket_is_502_not_404(s3):
    """A bucket that does not exist is the origin's configuration, not a missing original: 502
    (cached 1 s, logged, /readyz reports it), where a 404 would be cached for a minute for every key."""
    with s3_log() as records, make_client({"s3": "s3://no-such-bucket/media"}, **s3.settings()) as client:
        response = client.get(signed("/w:100/s3/portrait.jpg"))
        ready = client.get("/readyz")
    assert (response.status_code, response.text.strip()) == (502, "origin bucket not found")
    assert "bucket 'no-such-bucket'" in log_text(records) and "NoSuchBucket" in log_text(records)
    assert ready.status_code == 200 and ready.json()["origins"] == {"s3": False}


def test_endpoint_that_never_answers_is_504_within_the_deadline(s3):
    with (
        silent_server() as port,
        s3_log() as records,
        make_client(
            {"s3": f"s3://{BUCKET}/{PREFIX}"},
            origin_timeout=1,
            **s3.settings(s3_endpoint_url=f"http://127.0.0.1:{port}"),
        ) as client,
    ):
        start = time.monotonic()
        response = client.get(signed("/w:100/s3/portrait.jpg"))
        elapsed = time.monotonic() - start
    assert (response.status_code, response.text.strip()) == (504, "origin timed out")
    assert 0.9 < elapsed < 5, elapsed
    assert "timed out after 1 s" in log_text(records)


def test_readyz_reports_the_s3_origin_ready(s3):
    with make_client({"s3": f"s3://{BUCKET}/{PREFIX}"}, **s3.settings()) as client:
        response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["origins"] == {"s3": True}


@pytest.mark.parametrize(
    "location",
    [
        "s3://ab",
        "s3://Upper-Case",
        "s3://under_score",
        "s3://-dash",
        "s3://bucket..dots",
        "s3://192.168.1.1",
        "s3://",
        "s3://bucket/a/../b",
        "s3://bucket//x",
        "s3://" + "b" * 64,
    ],
)
def test_bad_s3_locations_stop_start_up(location):
    with pytest.raises(SettingsError, match="origin media: .*"):
        load_settings(origins={"media": location}, signing_key=KEY)


def test_s3_locations_and_settings():
    assert parse_location("s3://bucket") == ("bucket", "")
    assert parse_location("s3://my.bucket-1/a/b/") == ("my.bucket-1", "a/b")
    settings = load_settings(
        origins={"media": "s3://bucket/prefix"},
        signing_key=KEY,
        s3_access_key_id="AKIA",
        s3_secret_access_key="hidden-secret",
        s3_session_token="hidden-token",
    )
    assert "hidden" not in repr(settings) and "hidden" not in repr(S3Options(secret_access_key="hidden"))
    with pytest.raises(SettingsError, match="s3_access_key_id and s3_secret_access_key go together"):
        load_settings(signing_key=KEY, s3_access_key_id="AKIA")
    with pytest.raises(SettingsError, match="s3_endpoint_url"):
        load_settings(signing_key=KEY, s3_endpoint_url="ftp://example.com")
    with pytest.raises(SettingsError, match="s3_region"):
        load_settings(signing_key=KEY, s3_region="Mars 1")


def test_moderation_reads_the_verdict_from_object_metadata(s3, photos, tmp_path):
    """x-amz-meta-moderation is the human verdict (S3 has no sidecars); the other x-amz-meta-*
    members are provenance in /info; a changed verdict reaches the proxy after a purge."""
    body = (photos / PORTRAIT).read_bytes()
    s3.put(f"{PREFIX}/moderated/rejected.jpg", body, moderation="rejected", model="sdxl-1.0")
    s3.put(
        f"{PREFIX}/moderated/approved.jpg",
        body,
        moderation="approved",
        model="sdxl-1.0",
        **{"created-at": "2026-11-02T10:00:00Z"},
    )
    s3.put(f"{PREFIX}/moderated/unmoderated.jpg", body)
    s3.put(f"{PREFIX}/moderated/unmoderated.jpg.json", b'{"moderation": "approved"}')  # never read on S3
    with make_client(
        {"s3": f"s3://{BUCKET}/{PREFIX}"},
        moderation=True,
        moderation_pending="block",
        admin_token="purge-token-for-s3-tests",
        **s3.settings(),
    ) as client:
        rejected = client.get(signed("/w:200/f:webp/s3/moderated/rejected.jpg"))
        assert rejected.status_code == 451
        assert rejected.headers["cache-control"] == "public, max-age=60"
        assert rejected.headers["surrogate-key"] == surrogate_key("s3", "moderated/rejected.jpg")
        approved = client.get(signed("/w:200/f:webp/s3/moderated/approved.jpg"))
        assert approved.status_code == 200
        assert approved.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert decode(approved.content).width == 200
        # no verdict and no classifier: pending, blocked; the .json object beside it is not a sidecar
        assert client.get(signed("/w:200/f:webp/s3/moderated/unmoderated.jpg")).status_code == 451
        info = client.get(signed("/info/s3/moderated/approved.jpg")).json()
        assert info["moderation"] == {"verdict": "allow", "score": None, "source": "metadata"}
        assert info["provenance"] == {"source": "metadata", "model": "sdxl-1.0", "created-at": "2026-11-02T10:00:00Z"}
        # the verdict changes: the cached original still says rejected until it is purged
        s3.put(f"{PREFIX}/moderated/rejected.jpg", body, moderation="approved")
        assert client.get(signed("/w:200/f:webp/s3/moderated/rejected.jpg")).status_code == 451
        purged = client.post(
            "/purge",
            json={"origin": "s3", "key": "moderated/rejected.jpg"},
            headers={"Authorization": "Bearer purge-token-for-s3-tests"},
        )
        assert purged.status_code == 200
        assert client.get(signed("/w:200/f:webp/s3/moderated/rejected.jpg")).status_code == 200
