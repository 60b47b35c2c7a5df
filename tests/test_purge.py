"""POST /purge and the purge hooks: authentication, bodies, the proxy's own caches, and the exact
requests each hook sends.

Fastly's and Cloudflare's APIs cannot be reached from here: their hooks are pointed (through the
``fastly_api_url`` / ``cloudflare_api_url`` settings) at a local server that records what it is
sent, and the test checks the request against the APIs' documented form. The Varnish hook is
proved against a real Varnish in ``tests/test_cdn_recipes.py``.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from edgeproxy.http.app import create_app
from edgeproxy.http.logs import JsonFormatter
from edgeproxy.service.validators import surrogate_key
from edgeproxy.settings import SettingsError, load_settings
from testkit.app import KEY, make_client, serve_app, signed
from testkit.env import ROOT
from testkit.net import free_port
from testkit.origin import Origin, Reply, Request, serve_origin

TOKEN = "admin-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PHOTO = "photo.jpg"  # the synthetic library's 800 x 533 JPEG


class Recorder:
    """The hook server's log and behaviour: ``fail`` maps a path to how many times it answers 500
    before it answers 200 (-1: always); ``seen`` is every request as (method, path, headers, body)."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.fail: dict[str, int] = {}

    @property
    def seen(self) -> list[tuple[str, str, dict[str, str], bytes]]:
        return [(r.method, r.path, {k.lower(): v for k, v in r.headers.items()}, r.body) for r in self.origin.requests]

    def answer(self, request: Request) -> Reply:
        left = self.fail.get(request.path, 0)
        if left > 0:
            self.fail[request.path] = left - 1
        return Reply(500 if left else 200, b'{"status": "ok"}')


@pytest.fixture
def hooks() -> Iterator[tuple[Recorder, str]]:
    """The purge APIs' stand-in: every request is recorded and answered by ``Recorder.answer``."""
    record: Recorder
    with serve_origin(fallback=lambda request: record.answer(request)) as origin:
        record = Recorder(origin)
        yield record, origin.url.rstrip("/")


def test_purge_is_404_without_an_admin_token(photos: Path):
    with make_client({"demo": str(photos)}) as c:
        for method in ("POST", "GET"):
            r = c.request(method, "/purge", json={"origin": "demo", "key": PHOTO}, headers=AUTH)
            assert (r.status_code, r.text) == (404, "no such route\n")


def test_purge_needs_the_token_and_a_well_formed_body(photos: Path):
    with make_client({"demo": str(photos)}, admin_token=TOKEN) as c:
        body = {"origin": "demo", "key": PHOTO}
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": f"Basic {TOKEN}"},
            {"Authorization": TOKEN},
        ):
            r = c.post("/purge", json=body, headers=headers)
            assert r.status_code == 401, headers
            assert r.headers["www-authenticate"] == 'Bearer realm="edgeproxy"'
            assert r.headers["cache-control"] == "no-store"
        assert c.get("/purge", headers=AUTH).status_code == 405
        for bad, message in [
            (b"not json", 'body must be JSON: {"origin": NAME, "key": KEY} or {"surrogate_key": TAG}'),
            (b'{"origin": "demo"}', 'body must be {"origin": NAME, "key": KEY} or {"surrogate_key": TAG}'),
            (b'{"origin": "nope", "key": "x.jpg"}', "unknown origin 'nope'"),
            (b'{"origin": "demo", "key": ""}', "origin and key must be non-empty strings"),
            (
                b'{"surrogate_key": "k123"}',
                "surrogate_key must be k followed by 16 hex digits (edgeproxy surrogate-key ORIGIN KEY)",
            ),
        ]:
            r = c.post("/purge", content=bad, headers=AUTH)
            assert (r.status_code, r.json()) == (400, {"error": message}), bad
        assert c.post("/purge", content=b"x" * 5000, headers=AUTH).status_code == 413


def test_purge_drops_the_original_and_calls_every_hook(photos: Path, tmp_path: Path, hooks):
    record, base = hooks
    (tmp_path / "a.jpg").write_bytes((photos / PHOTO).read_bytes())
    settings = dict(
        admin_token=TOKEN,
        purge_hooks=[f"varnish:{base}/varnish", "fastly:SVC123", "cloudflare:ZONE9", f"webhook:{base}/hook"],
        fastly_api_token="fastly-secret",
        fastly_api_url=f"{base}/fastly",
        cloudflare_api_token="cf-secret",
        cloudflare_api_url=f"{base}/cf/client/v4",
    )
    tag = surrogate_key("t", "a.jpg")
    with make_client({"t": str(tmp_path)}, **settings) as c:
        assert c.get(signed("/w:50/f:png/t/a.jpg")).status_code == 200
        r = c.post("/purge", json={"origin": "t", "key": "a.jpg"}, headers=AUTH)
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store"
        answer = r.json()
        assert (answer["surrogate_key"], answer["origin"], answer["key"], answer["dropped"]) == (tag, "t", "a.jpg", 1)
        assert [(h["hook"], h["ok"], h["status"], h["attempts"], h["error"]) for h in answer["hooks"]] == [
            (f"varnish:{base}/varnish", True, 200, 1, None),
            ("fastly:SVC123", True, 200, 1, None),
            ("cloudflare:ZONE9", True, 200, 1, None),
            (f"webhook:{base}/hook", True, 200, 1, None),
        ]
        assert "secret" not in r.text
        # The next request fetches the original again instead of serving it from memory.
        assert c.get(signed("/w:51/f:png/t/a.jpg")).status_code == 200
        by_path = {path: (method, headers, body) for method, path, headers, body in record.seen}
        assert set(by_path) == {
            "/varnish/",
            f"/fastly/service/SVC123/purge/{tag}",
            "/cf/client/v4/zones/ZONE9/purge_cache",
            "/hook",
        }
        method, headers, _ = by_path["/varnish/"]
        assert (method, headers["xkey-purge"]) == ("PURGE", tag)
        method, headers, _ = by_path[f"/fastly/service/SVC123/purge/{tag}"]
        assert (method, headers["fastly-key"]) == ("POST", "fastly-secret")
        method, headers, body = by_path["/cf/client/v4/zones/ZONE9/purge_cache"]
        assert (method, headers["authorization"], json.loads(body)) == ("POST", "Bearer cf-secret", {"tags": [tag]})
        method, headers, body = by_path["/hook"]
        assert (method, json.loads(body)) == ("POST", {"surrogate_key": tag, "origin": "t", "key": "a.jpg"})
        # By surrogate key alone (a takedown by tag): the same hooks, nothing left in memory to drop.
        r = c.post("/purge", json={"surrogate_key": tag}, headers=AUTH)
        assert (r.status_code, r.json()["dropped"]) == (200, 1)  # the request after the first purge cached it
        metrics = c.get("/metrics").text
    assert 'edgeproxy_cache_lookups_total{cache="original",outcome="miss"} 2.0' in metrics


def test_a_failing_hook_is_retried_then_reported_as_502(photos: Path, hooks):
    record, base = hooks
    record.fail = {"/flaky": 2, "/down": -1}
    closed = free_port()
    settings = dict(
        admin_token=TOKEN,
        purge_retries=2,
        purge_hooks=[f"webhook:{base}/flaky", f"webhook:{base}/down", f"varnish:http://127.0.0.1:{closed}"],
    )
    with make_client({"demo": str(photos)}, **settings) as c:
        r = c.post("/purge", json={"origin": "demo", "key": PHOTO}, headers=AUTH)
    assert r.status_code == 502
    flaky, down, refused = r.json()["hooks"]
    assert (flaky["ok"], flaky["status"], flaky["attempts"]) == (True, 200, 3)
    assert (down["ok"], down["status"], down["attempts"], down["error"]) == (False, 500, 3, "answered 500")
    assert (refused["ok"], refused["status"], refused["attempts"]) == (False, None, 3)
    assert refused["error"].startswith("ConnectError")


def test_purge_hooks_are_checked_at_start_up(photos: Path):
    for hooks, message in [
        (["akamai:x"], "expected KIND:TARGET with KIND one of varnish, fastly, cloudflare, webhook"),
        (["varnish:127.0.0.1:6081"], "the target must be an http(s):// URL"),
        (["fastly:SVC"], "purge hook fastly: needs fastly_api_token (EDGEPROXY_FASTLY_API_TOKEN)"),
    ]:
        with pytest.raises(SettingsError, match=re.escape(message)):
            load_settings(origins={"demo": str(photos)}, signing_key="k", purge_hooks=hooks)
    with pytest.raises(SettingsError, match="admin_token must not be the signing key"):
        load_settings(
            origins={"demo": str(photos)}, signing_key="same-secret-16-bytes", admin_token="same-secret-16-bytes"
        )


def test_cli_surrogate_key_and_purge(photos: Path):
    cli = [sys.executable, "-m", "edgeproxy"]
    tag = subprocess.run([*cli, "surrogate-key", "demo", PHOTO], capture_output=True, text=True, cwd=ROOT, check=True)
    assert tag.stdout.strip() == surrogate_key("demo", PHOTO)
    with make_client({"demo": str(photos)}, admin_token=TOKEN) as c:
        env = {**os.environ, "EDGEPROXY_ADMIN_TOKEN": TOKEN}
        done = subprocess.run(
            [*cli, "purge", "--url", str(c.base_url), "demo", PHOTO],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["surrogate_key"] == tag.stdout.strip()
        env["EDGEPROXY_ADMIN_TOKEN"] = "wrong"
        refused = subprocess.run(
            [*cli, "purge", "--url", str(c.base_url), "demo", PHOTO],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=60,
        )
        assert refused.returncode == 1


# --- attacks: an empty admin token, hostile bodies, secrets in hook targets ------------------------------------------


def test_an_empty_admin_token_is_no_open_door(photos: Path):
    """EDGEPROXY_ADMIN_TOKEN="" once meant: ``Authorization: Bearer`` (empty) purges anything."""
    with (
        pytest.raises(SettingsError, match="admin_token: must be at least 16 bytes"),
        make_client({"demo": str(photos)}, admin_token="") as c,
    ):
        answer = c.post("/purge", json={"origin": "demo", "key": PHOTO}, headers={"Authorization": "Bearer"})
        pytest.fail(f"started with an empty admin_token; an empty bearer got {answer.status_code}")


def test_an_empty_or_short_admin_token_stops_start_up_with_every_other_problem(photos: Path, monkeypatch):
    for token in ("", " ", "x" * 15, "é" * 7):  # "é" is two bytes in UTF-8: 14 bytes
        with pytest.raises(SettingsError) as info:
            load_settings(origins={"demo": str(photos)}, signing_key=KEY, admin_token=token, quality_jpeg=0)
        lines = str(info.value).splitlines()
        assert (
            '  admin_token: must be at least 16 bytes (a random value: python -c "import secrets; '
            'print(secrets.token_urlsafe(32))"), or unset to turn POST /purge off' in lines
        ), token
        assert "  quality_jpeg: Input should be greater than or equal to 1" in lines
    assert load_settings(origins={"demo": str(photos)}, signing_key=KEY, admin_token="x" * 16).admin_token
    # From the environment as operators set it, and through `edgeproxy serve`, which says why it stops.
    monkeypatch.setenv("EDGEPROXY_ADMIN_TOKEN", "")
    with pytest.raises(SettingsError, match="admin_token: must be at least 16 bytes"):
        load_settings(origins={"demo": str(photos)}, signing_key=KEY)
    serve = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgeproxy",
            "serve",
            "--signing-key",
            KEY,
            "--port",
            str(free_port()),
            "--origin",
            f"demo={photos}",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={**os.environ},
    )
    assert serve.returncode == 2
    assert "admin_token: must be at least 16 bytes" in serve.stderr


def test_an_empty_bearer_never_matches_even_an_empty_token(photos: Path):
    """Defence in depth: settings that skipped validation (an empty token) still refuse an empty bearer."""
    settings = load_settings(origins={"demo": str(photos)}, signing_key=KEY, admin_token=TOKEN)
    unchecked = settings.model_copy(update={"admin_token": SecretStr("")})
    with serve_app(create_app(unchecked)) as base, httpx.Client(base_url=base, timeout=30) as c:
        for authorization in ("Bearer", "bearer", ""):
            answer = c.post("/purge", json={"origin": "demo", "key": PHOTO}, headers={"Authorization": authorization})
            assert answer.status_code == 401, authorization
    with make_client({"demo": str(photos)}, admin_token=TOKEN) as c:
        for authorization in ("Bearer", f"Bearer {TOKEN} extra", f"Bearer {TOKEN[:-1]}", f"Bearer  {TOKEN}x"):
            answer = c.post("/purge", json={"origin": "demo", "key": PHOTO}, headers={"Authorization": authorization})
            assert answer.status_code == 401, authorization


def test_deeply_nested_purge_bodies_are_400_not_500(photos: Path):
    with make_client({"demo": str(photos)}, admin_token=TOKEN) as c:
        for body in (
            b"[" * 2000 + b"]" * 2000,
            b'{"origin": ' + b"[" * 1500 + b"]" * 1500 + b', "key": "x"}',
            b'{"surrogate_key": ' + b'{"a":' * 600 + b"1" + b"}" * 600 + b"}",
        ):
            assert len(body) <= 4096
            answer = c.post("/purge", content=body, headers=AUTH)
            assert answer.status_code == 400, (answer.status_code, answer.text[:200])
            assert answer.headers["cache-control"] == "no-store"
            assert answer.json() == {
                "error": "body must be JSON nested at most 4 deep: "
                '{"origin": NAME, "key": KEY} or {"surrogate_key": TAG}'
            }


def secret_hooks(base: str) -> dict[str, tuple[str, str, list[str]]]:
    """name -> (hook as configured, as it must be shown, its secrets) for webhooks on ``base``."""
    host = base.removeprefix("http://")
    return {
        "userinfo": (
            f"webhook:http://hookuser:hunter2-pass@{host}/userinfo",
            f"webhook:http://***@{host}/userinfo",
            ["hookuser", "hunter2-pass"],
        ),
        "query": (
            f"webhook:{base}/query?token=tok-abc123456&team=ops",
            f"webhook:{base}/query?token=***&team=***",
            ["tok-abc123456"],
        ),
        "path": (
            f"webhook:{base}/services/T0001/B0002/Xk3hQ9zLmP4rT8vW2yN6aB1c",
            f"webhook:{base}/services/T0001/B0002/***",
            ["Xk3hQ9zLmP4rT8vW2yN6aB1c"],
        ),
        "down": (
            f"webhook:http://purger:down-secret-42@{host}/down?key=vk-55501234",
            f"webhook:http://***@{host}/down?key=***",
            ["purger", "down-secret-42", "vk-55501234"],
        ),
    }


def test_hook_secrets_are_masked_in_answers_and_logs_but_sent(photos: Path, hooks, caplog):
    record, base = hooks
    configured = secret_hooks(base)
    record.fail = {"/down?key=vk-55501234": -1}
    secrets = [secret for _hook, _shown, found in configured.values() for secret in found]
    caplog.set_level(logging.INFO, logger="edgeproxy")
    with make_client(
        {"demo": str(photos)},
        admin_token=TOKEN,
        purge_retries=0,
        purge_hooks=[hook for hook, _shown, _secrets in configured.values()],
    ) as c:
        answer = c.post("/purge", json={"origin": "demo", "key": PHOTO}, headers=AUTH)
    assert answer.status_code == 502  # the "down" hook answers 500
    assert [h["hook"] for h in answer.json()["hooks"]] == [shown for _hook, shown, _secrets in configured.values()]
    lines = "\n".join(JsonFormatter().format(r) for r in caplog.records if r.name.startswith("edgeproxy"))
    assert '"purge hook failed"' in lines and '"message":"purge"' in lines
    for secret in secrets:
        assert secret not in answer.text, secret
        assert secret not in lines, secret
    # Masking is for people: each hook was called with its credentials.
    seen = {path: headers for _method, path, headers, _body in record.seen}
    assert seen["/userinfo"]["authorization"] == "Basic " + base64.b64encode(b"hookuser:hunter2-pass").decode()
    assert "/query?token=tok-abc123456&team=ops" in seen
    assert "/services/T0001/B0002/Xk3hQ9zLmP4rT8vW2yN6aB1c" in seen
    assert (
        seen["/down?key=vk-55501234"]["authorization"] == "Basic " + base64.b64encode(b"purger:down-secret-42").decode()
    )


def test_check_config_masks_hook_secrets(tmp_path: Path):
    configured = secret_hooks("http://hooks.example.com:8443")
    config = tmp_path / "edgeproxy.toml"
    hooks = ", ".join(json.dumps(hook) for hook, _shown, _secrets in configured.values())
    config.write_text(f'signing_key = "{KEY}"\npurge_hooks = [{hooks}]\n[origins]\nmedia = "{tmp_path}"\n')
    result = subprocess.run(
        [sys.executable, "-m", "edgeproxy", "check-config", "--no-env", str(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    shown = ", ".join(json.dumps(shown) for _hook, shown, _secrets in configured.values())
    assert f"purge_hooks = [{shown}]" in result.stdout.splitlines()
    for secret in [secret for _hook, _shown, found in configured.values() for secret in found]:
        assert secret not in result.stdout + result.stderr, secret
