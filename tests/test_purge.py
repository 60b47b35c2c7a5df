"""POST /purge and the purge hooks: authentication, bodies, the proxy's own caches, and the exact
requests each hook sends.

Fastly's and Cloudflare's APIs cannot be reached from here: their hooks are pointed (through the
``fastly_api_url`` / ``cloudflare_api_url`` settings) at a local server that records what it is
sent, and the test checks the request against the APIs' documented form. The Varnish hook is
proved against a real Varnish in ``tests/test_cdn_recipes.py``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from edgeproxy.responses import surrogate_key
from testkit.net import free_port, serving
from tests.conftest import ROOT, make_client, signed

TOKEN = "admin-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PHOTO = "giunchedi-portrait.jpg"


class Recorder:
    """Every request the hook server saw: (method, path, headers, body); ``fail`` maps a path to
    how many times it answers 500 before it answers 200 (-1: always)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        self.fail: dict[str, int] = {}


@pytest.fixture
def hooks() -> Iterator[tuple[Recorder, str]]:
    record = Recorder()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def answer(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            record.seen.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            left = record.fail.get(self.path, 0)
            status = 500 if left else 200
            if left > 0:
                record.fail[self.path] = left - 1
            reply = b'{"status": "ok"}'
            self.send_response(status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_POST = do_PURGE = answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with serving(server) as port:
        yield record, f"http://127.0.0.1:{port}"


def test_purge_is_404_without_an_admin_token(corpus: Path):
    with make_client({"demo": str(corpus)}) as c:
        for method in ("POST", "GET"):
            r = c.request(method, "/purge", json={"origin": "demo", "key": PHOTO}, headers=AUTH)
            assert (r.status_code, r.text) == (404, "no such route\n")


def test_purge_needs_the_token_and_a_well_formed_body(corpus: Path):
    with make_client({"demo": str(corpus)}, admin_token=TOKEN) as c:
        body = {"origin": "demo", "key": PHOTO}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                        {"Authorization": TOKEN}):
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
            (b'{"surrogate_key": "k123"}',
             "surrogate_key must be k followed by 16 hex digits (edgeproxy surrogate-key ORIGIN KEY)"),
        ]:
            r = c.post("/purge", content=bad, headers=AUTH)
            assert (r.status_code, r.json()) == (400, {"error": message}), bad
        assert c.post("/purge", content=b"x" * 5000, headers=AUTH).status_code == 413


def test_purge_drops_the_original_and_calls_every_hook(corpus: Path, tmp_path: Path, hooks):
    record, base = hooks
    (tmp_path / "a.jpg").write_bytes((corpus / PHOTO).read_bytes())
    settings = dict(
        admin_token=TOKEN,
        purge_hooks=[f"varnish:{base}/varnish", "fastly:SVC123", "cloudflare:ZONE9", f"webhook:{base}/hook"],
        fastly_api_token="fastly-secret", fastly_api_url=f"{base}/fastly",
        cloudflare_api_token="cf-secret", cloudflare_api_url=f"{base}/cf/client/v4",
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
        assert set(by_path) == {"/varnish/", f"/fastly/service/SVC123/purge/{tag}",
                                "/cf/client/v4/zones/ZONE9/purge_cache", "/hook"}
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


def test_a_failing_hook_is_retried_then_reported_as_502(corpus: Path, hooks):
    record, base = hooks
    record.fail = {"/flaky": 2, "/down": -1}
    closed = free_port()
    settings = dict(admin_token=TOKEN, purge_retries=2,
                    purge_hooks=[f"webhook:{base}/flaky", f"webhook:{base}/down", f"varnish:http://127.0.0.1:{closed}"])
    with make_client({"demo": str(corpus)}, **settings) as c:
        r = c.post("/purge", json={"origin": "demo", "key": PHOTO}, headers=AUTH)
    assert r.status_code == 502
    flaky, down, refused = r.json()["hooks"]
    assert (flaky["ok"], flaky["status"], flaky["attempts"]) == (True, 200, 3)
    assert (down["ok"], down["status"], down["attempts"], down["error"]) == (False, 500, 3, "answered 500")
    assert (refused["ok"], refused["status"], refused["attempts"]) == (False, None, 3)
    assert refused["error"].startswith("ConnectError")


def test_purge_hooks_are_checked_at_start_up(corpus: Path):
    from edgeproxy.settings import SettingsError, load_settings

    for hooks, message in [
        (["akamai:x"], "expected KIND:TARGET with KIND one of varnish, fastly, cloudflare, webhook"),
        (["varnish:127.0.0.1:6081"], "the target must be an http(s):// URL"),
        (["fastly:SVC"], "purge hook fastly: needs fastly_api_token (EDGEPROXY_FASTLY_API_TOKEN)"),
    ]:
        with pytest.raises(SettingsError, match=re.escape(message)):
            load_settings(origins={"demo": str(corpus)}, signing_key="k", purge_hooks=hooks)
    with pytest.raises(SettingsError, match="admin_token must not be the signing key"):
        load_settings(origins={"demo": str(corpus)}, signing_key="same-secret-16-bytes",
                      admin_token="same-secret-16-bytes")


def test_cli_surrogate_key_and_purge(corpus: Path):
    cli = [sys.executable, "-m", "edgeproxy"]
    tag = subprocess.run([*cli, "surrogate-key", "demo", PHOTO], capture_output=True, text=True, cwd=ROOT, check=True)
    assert tag.stdout.strip() == surrogate_key("demo", PHOTO)
    with make_client({"demo": str(corpus)}, admin_token=TOKEN) as c:
        env = {**os.environ, "EDGEPROXY_ADMIN_TOKEN": TOKEN}
        done = subprocess.run([*cli, "purge", "--url", str(c.base_url), "demo", PHOTO], capture_output=True,
                              text=True, cwd=ROOT, env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["surrogate_key"] == tag.stdout.strip()
        env["EDGEPROXY_ADMIN_TOKEN"] = "wrong"
        refused = subprocess.run([*cli, "purge", "--url", str(c.base_url), "demo", PHOTO], capture_output=True,
                                 text=True, cwd=ROOT, env=env, timeout=60)
        assert refused.returncode == 1
