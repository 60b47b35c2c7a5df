"""edgeproxy served for real: the test signing key, signed paths, the app under uvicorn on 127.0.0.1
in a thread, an httpx client bound to it, and a byte-exact GET."""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp

from edgeproxy.http.app import create_app
from edgeproxy.settings import load_settings
from edgeproxy.url.signing import sign_path
from testkit.net import free_port

#: The signing key of every proxy the tests start.
KEY = "test-signing-key"


def signed(path: str, key: str = KEY) -> str:
    """``/{signature}{path}`` signed with the test key."""
    return sign_path(path, key)


@contextlib.contextmanager
def serve_app(app: ASGIApp, port: int | None = None) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread on 127.0.0.1; yields its base URL."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextlib.contextmanager
def make_served(origins: dict[str, str], **overrides: Any) -> Iterator[tuple[httpx.Client, Starlette]]:
    """(httpx client, app) of a running edgeproxy with ``origins`` and settings ``overrides``; the
    app's objects are on ``app.state.components`` (``edgeproxy.compose.Components``) once it serves.

    Unless ``overrides`` say otherwise, the optimised tier is off (``optimise = "off"``, no result
    storage): every derivative is one answer, immutable, as a test of anything else expects; the
    tests of the tiers (tests/test_optimise.py) turn them on with a result storage of their own."""
    overrides.setdefault("optimise", "off")
    overrides.setdefault("result_storage", "off")
    settings = load_settings(origins=origins, signing_key=KEY, **overrides)
    app = create_app(settings)
    with serve_app(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        yield client, app


@contextlib.contextmanager
def make_client(origins: dict[str, str], **overrides: Any) -> Iterator[httpx.Client]:
    """An httpx client bound to a running edgeproxy with ``origins`` and settings ``overrides``."""
    with make_served(origins, **overrides) as (client, _app):
        yield client


def raw_get(client: httpx.Client, path: str) -> tuple[int, bytes]:
    """GET ``path`` byte for byte through http.client (httpx would normalise dot segments away)."""
    conn = http.client.HTTPConnection(client.base_url.host, client.base_url.port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
