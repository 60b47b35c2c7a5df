"""The HTTP edge: every route (transform, ``/info``, ``/purge``, the probes, ``/metrics``) answers
its errors through one handler and is traced by one wrapper: ``X-Request-ID`` on every answer, the
request metrics and the access log for the routes that answer clients (transform, ``/info``,
``/purge``), and an unexpected exception is a logged 500 with no details, whatever the route.

Every test talks to a real edgeproxy (uvicorn in a thread) on 127.0.0.1.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from edgeproxy import boundedjson
from edgeproxy.http.metrics import Metrics
from edgeproxy.origins.local import LocalOrigin
from edgeproxy.service.validators import surrogate_key
from edgeproxy.url.signing import PathSigner
from testkit.app import KEY, make_client, signed
from testkit.metrics import value

PHOTO = "giunchedi-portrait.jpg"
TOKEN = "admin-token-for-edge-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def info_url(origin: str, key: str) -> str:
    """``/info/{signature}/{origin}/{key}``, signed over ``/info/{origin}/{key}``."""
    return f"/info/{PathSigner([KEY]).sign(f'/info/{origin}/{key}')}/{origin}/{key}"


@pytest.fixture
def folder(corpus: Path, tmp_path: Path) -> Path:
    """An origin with the portrait and an original that cannot be decoded."""
    shutil.copyfile(corpus / PHOTO, tmp_path / PHOTO)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    return tmp_path


def test_every_route_echoes_the_request_id(folder: Path):
    requests = [
        ("GET", signed(f"/w:50/f:png/demo/{PHOTO}"), {}, 200),
        ("GET", signed("/w:50/f:png/demo/missing.jpg"), {}, 404),
        ("GET", info_url("demo", PHOTO), {}, 200),
        ("GET", info_url("demo", "missing.jpg"), {}, 404),
        ("POST", "/purge", {"json": {"origin": "demo", "key": PHOTO}, "headers": AUTH}, 200),
        ("POST", "/purge", {"json": {"origin": "demo", "key": PHOTO}}, 401),
        ("GET", "/purge", {"headers": AUTH}, 405),
        ("GET", "/healthz", {}, 200),
        ("GET", "/readyz", {}, 200),
        ("GET", "/metrics", {}, 200),
        ("POST", signed(f"/w:50/f:png/demo/{PHOTO}"), {}, 405),
    ]
    with make_client({"demo": str(folder)}, admin_token=TOKEN) as c:
        for i, (method, url, kwargs, status) in enumerate(requests):
            headers = {**kwargs.pop("headers", {}), "X-Request-ID": f"edge-{i}"}
            r = c.request(method, url, headers=headers, **kwargs)
            assert r.status_code == status, (method, url, r.text)
            assert r.headers["x-request-id"] == f"edge-{i}", (method, url)
            fresh = c.request(method, url, headers={k: v for k, v in headers.items() if k != "X-Request-ID"}, **kwargs)
            assert len(fresh.headers["x-request-id"]) == 32, (method, url)  # a new UUID4 when none is sent


def test_a_method_a_route_does_not_take_is_a_405_naming_the_ones_it_does(folder: Path):
    with make_client({"demo": str(folder)}, admin_token=TOKEN) as c:
        transform = c.post(signed(f"/w:50/f:png/demo/{PHOTO}"))
        purge = c.get("/purge", headers=AUTH)
    assert (transform.status_code, transform.text, transform.headers["allow"]) == (
        405,
        "method not allowed\n",
        "GET, HEAD",
    )
    assert (purge.status_code, purge.text, purge.headers["allow"]) == (405, "method not allowed\n", "POST")
    for answer in (transform, purge):
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["content-type"] == "text/plain; charset=utf-8"


def test_info_and_purge_count_in_the_metrics_and_the_access_log(folder: Path, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="edgeproxy.access")
    with make_client({"demo": str(folder)}, admin_token=TOKEN) as c:
        info = c.get(info_url("demo", PHOTO))
        missing = c.get(info_url("demo", "missing.jpg"))
        purged = c.post("/purge", json={"origin": "demo", "key": PHOTO}, headers=AUTH)
        refused = c.post("/purge", json={"origin": "demo", "key": PHOTO}, headers={"Authorization": "Bearer nope"})
        for _ in range(3):  # neither the probes nor the scrapes count as requests
            assert c.get("/healthz").status_code == c.get("/readyz").status_code == 200
        text = c.get("/metrics").text
    assert [r.status_code for r in (info, missing, purged, refused)] == [200, 404, 200, 401]
    assert value(text, "edgeproxy_requests_total", status_class="2xx", format="none") == 2
    assert value(text, "edgeproxy_requests_total", status_class="4xx", format="none") == 2
    assert value(text, "edgeproxy_request_duration_seconds_count", status_class="2xx") == 2
    assert value(text, "edgeproxy_request_duration_seconds_count", status_class="4xx") == 2
    assert value(text, "edgeproxy_errors_total", category="origin") == 1
    assert value(text, "edgeproxy_errors_total", category="auth") == 1
    assert value(text, "edgeproxy_bytes_out_total") == 0  # JSON answers are no derivatives
    lines = {r.fields["request_id"]: r.fields for r in caplog.records if hasattr(r, "fields")}
    assert len(lines) == 4
    seen = [lines[r.headers["x-request-id"]] for r in (info, missing, purged, refused)]
    assert [(f["method"], f["path"], f["status"], f["origin"], f["error"]) for f in seen] == [
        ("GET", f"/info/demo/{PHOTO}", 200, "demo", None),
        ("GET", "/info/demo/missing.jpg", 404, "demo", "origin"),
        ("POST", "/purge", 200, None, None),
        ("POST", "/purge", 401, None, "auth"),
    ]


def test_an_unexpected_exception_is_a_logged_500_on_every_route(
    folder: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    """mocked: a bug, as an exception raised where none is expected (nothing real can be made to
    fail so): an origin's fetch and readiness check, the purge body parser, the metrics exposition."""

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug: /secret/path in its message")

    async def aboom(*args: object, **kwargs: object) -> None:
        boom()

    caplog.set_level(logging.INFO, logger="edgeproxy")
    with make_client({"demo": str(folder)}, admin_token=TOKEN) as c:
        monkeypatch.setattr(LocalOrigin, "fetch", aboom)
        monkeypatch.setattr(LocalOrigin, "ready", aboom)
        monkeypatch.setattr(boundedjson, "loads", boom)
        monkeypatch.setattr(Metrics, "exposition", boom)
        answers = {
            "transform": c.get(signed(f"/w:50/f:png/demo/{PHOTO}")),
            "info": c.get(info_url("demo", PHOTO)),
            "purge": c.post("/purge", json={"origin": "demo", "key": PHOTO}, headers=AUTH),
            "readyz": c.get("/readyz"),
            "metrics": c.get("/metrics"),
        }
    purge = answers.pop("purge")  # the admin API answers in JSON, never stored
    assert (purge.status_code, purge.json(), purge.headers["cache-control"]) == (
        500,
        {"error": "internal error"},
        "no-store",
    )
    for route, answer in answers.items():
        assert (answer.status_code, answer.text) == (500, "internal error\n"), route
        assert answer.headers["cache-control"] == "public, max-age=1", route
    for route, answer in {**answers, "purge": purge}.items():
        assert "secret" not in answer.text
        rid = answer.headers["x-request-id"]
        logged = [
            r
            for r in caplog.records
            if r.levelno == logging.ERROR and getattr(r, "fields", {}).get("request_id") == rid and r.exc_info
        ]
        assert len(logged) == 1, route


def test_info_errors_about_the_original_carry_its_surrogate_key(folder: Path):
    """Every answer about an original is purgeable, on /info too: a 404 cached by a CDN is cleared
    by the purge that follows the upload."""
    with make_client({"demo": str(folder)}) as c:
        missing = c.get(info_url("demo", "missing.jpg"))
        broken = c.get(info_url("demo", "broken.jpg"))
        unknown = c.get(info_url("nope", PHOTO))
    for answer, key, status in ((missing, "missing.jpg", 404), (broken, "broken.jpg", 422)):
        assert answer.status_code == status
        assert answer.headers["cache-control"] == "public, max-age=60"
        assert answer.headers["surrogate-key"] == answer.headers["cache-tag"] == surrogate_key("demo", key)
    assert unknown.status_code == 404 and "surrogate-key" not in unknown.headers  # no such origin: no original
