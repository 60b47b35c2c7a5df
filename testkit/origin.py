"""One reusable HTTP origin for the tests: a threaded HTTP/1.1 server on 127.0.0.1 (optionally TLS)
that serves a folder and an in-memory table of objects, logs every request, answers conditional GETs,
and misbehaves on request.

    with serve_origin(folder, prefix="/img") as origin:     # origin.url: http://127.0.0.1:PORT/img
        origin["gone.jpg"] = Reply(410)
        origin["slow.jpg"] = Reply(200, b"late", delay=3)
        origin["reset.jpg"] = Reply(200, b"\\xff\\xd8", headers={"Content-Length": "100000"},
                                    fault=Fault.RESET_AFTER_BODY)
        ...
        origin.gets()                                      # ["/img/photo.jpg", ...]

How a request is answered:

1. It is logged (``origin.requests``: method, path as sent, headers, body), then waits while
   ``origin.hold`` is cleared (a test holds concurrent requests at the origin that way).
2. GET and HEAD of a key under ``prefix`` (the path after it, percent-decoded): the object set with
   ``origin[key] = ...`` (bytes, a ``Reply``, or a function of the ``Request`` returning one),
   else the file ``folder / key`` (never outside ``folder``), with ``file_headers``.
3. Anything else: ``fallback(request)`` when given, else 404 (GET, HEAD) or 405.

A 200 with a body gets a strong ``ETag`` (the first 16 hex digits of the body's SHA-256:
``etag(body)``) unless its headers give one, and an ``If-None-Match`` naming it (weakly compared,
RFC 9110 §13.1.2) is answered 304. Bodies carry ``Content-Length`` unless the reply's headers set one
(which may lie) or its fault says otherwise (``Fault``).
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import http.client
import mimetypes
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from testkit.net import serving


class Fault(enum.Enum):
    """How the connection misbehaves while answering."""

    RESET_BEFORE_RESPONSE = "reset-before-response"  # a TCP reset before any byte of the response
    RESET_AFTER_BODY = "reset-after-body"  # status, headers and the reply's body, then a TCP reset
    CLOSE_AFTER_BODY = "close-after-body"  # status, headers and the body, then a clean close (a short body)
    UNDECLARED_LENGTH = "undeclared-length"  # no Content-Length: the body ends when the connection closes
    HANG = "hang"  # read the request, never answer (until the origin stops)


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer: ``status``, ``body`` bytes, extra ``headers``, ``delay`` seconds before the status
    line, and a ``fault``. A ``Content-Length`` in ``headers`` replaces the true one."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    fault: Fault | None = None


def redirect(location: str, status: int = 302) -> Reply:
    """A redirect to ``location`` (absolute URL or path)."""
    return Reply(status, headers={"Location": location})


def etag(body: bytes) -> str:
    """The strong ETag the origin gives ``body``: ``"`` + 16 hex digits of its SHA-256 + ``"``."""
    return '"' + hashlib.sha256(body).hexdigest()[:16] + '"'


@dataclass(frozen=True, slots=True)
class Request:
    """A request the origin received: method, path as sent (still percent-encoded), headers (all
    copies: ``headers.get_all(name)``) and body."""

    method: str
    path: str
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str | None:
        """The first ``name`` header, or None."""
        return self.headers.get(name)


Answer = bytes | Reply | Callable[[Request], Reply]


class Origin:
    """The origin's content and its request log; ``serve_origin`` runs it. ``url`` is the base URL
    of its ``prefix`` (what an edgeproxy origin setting points at)."""

    def __init__(
        self,
        folder: Path | None = None,
        *,
        prefix: str = "/",
        file_headers: Mapping[str, str] | None = None,
        fallback: Callable[[Request], Reply] | None = None,
    ):
        self.folder = folder.resolve() if folder is not None else None
        self.prefix = "/" + prefix.strip("/")
        self.file_headers = dict(file_headers or {})
        self.fallback = fallback
        self.objects: dict[str, Answer] = {}
        self.requests: list[Request] = []
        self.hold = threading.Event()  # cleared: requests wait at the origin until it is set again
        self.hold.set()
        self.released = threading.Event()  # set when the origin stops: hung requests end
        self.scheme, self.port = "http", 0
        #: TLS only: the client address of each accepted connection, the SNI name of each handshake.
        self.accepted: list[tuple[str, int]] = []
        self.sni: list[str | None] = []

    def __setitem__(self, key: str, answer: Answer) -> None:
        self.objects[key] = answer

    def __delitem__(self, key: str) -> None:
        del self.objects[key]

    @property
    def url(self) -> str:
        """``http(s)://127.0.0.1:PORT/prefix`` (no trailing slash for a prefix, ``/`` for none)."""
        return self.url_for("127.0.0.1")

    def url_for(self, host: str) -> str:
        """The base URL with ``host`` as its host (``localhost``, so that a TLS client sends SNI)."""
        return f"{self.scheme}://{host}:{self.port}{self.prefix if self.prefix != '/' else '/'}"

    def gets(self) -> list[str]:
        """The path of every GET received, in order."""
        return [r.path for r in self.requests if r.method == "GET"]

    def answer(self, request: Request) -> Reply:
        """The reply to ``request`` (see the module's docstring for the rules)."""
        path = request.path.split("?", 1)[0]
        under = path == self.prefix or path.startswith(self.prefix.rstrip("/") + "/")
        if request.method in ("GET", "HEAD") and under:
            key = unquote(path[len(self.prefix.rstrip("/")) :].lstrip("/"))
            found = self.objects.get(key)
            if isinstance(found, Reply):
                return found
            if isinstance(found, bytes):
                return Reply(body=found)
            if found is not None:
                return found(request)
            file = self._file(key)
            if file is not None:
                kind = mimetypes.guess_type(file.name)[0]
                headers = {
                    **({"Content-Type": kind} if kind else {}),
                    "Last-Modified": formatdate(file.stat().st_mtime, usegmt=True),
                    **self.file_headers,
                }
                return Reply(body=file.read_bytes(), headers=headers)
        if self.fallback is not None:
            return self.fallback(request)
        return Reply(404 if request.method in ("GET", "HEAD") else 405)

    def _file(self, key: str) -> Path | None:
        if self.folder is None or not key or "\x00" in key:
            return None
        file = (self.folder / key).resolve()
        if not file.is_relative_to(self.folder) or not file.is_file():
            return None
        return file


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, origin: Origin, tls: ssl.SSLContext | None):
        self.origin = origin
        self.tls = tls
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: origin.sni.append(name)
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        if self.tls is None:
            return sock, address
        self.origin.accepted.append(address)  # the handshake runs in the connection's own thread
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hang up on purpose (edgeproxy stops reading an oversized body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    #: TCP_NODELAY: headers and body go out as separate writes; with Nagle's algorithm the body of a
    #: kept-alive answer would wait for the client's delayed ACK (40 ms per request).
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        pass

    def _handle(self) -> None:
        origin = self.server.origin
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(self.command, self.path, self.headers, self.rfile.read(length) if length else b"")
        origin.requests.append(request)
        origin.hold.wait(30)
        reply = origin.answer(request)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.fault is Fault.HANG:
            origin.released.wait(30)
            self.close_connection = True
            return
        if reply.fault is Fault.RESET_BEFORE_RESPONSE:
            self._reset()
            return
        self._send(request, reply)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PURGE = _handle

    def _send(self, request: Request, reply: Reply) -> None:
        headers = dict(reply.headers)
        status = reply.status
        if status == 200 and reply.body and "ETag" not in headers:
            headers["ETag"] = etag(reply.body)
        tag = headers.get("ETag")
        body = reply.body
        if status == 200 and tag and _matches(request.header("If-None-Match"), tag):
            status, body = 304, b""
            headers = {"ETag": tag}
        if reply.fault is Fault.UNDECLARED_LENGTH:
            headers.pop("Content-Length", None)
            headers["Connection"] = "close"
        elif status != 304:
            headers.setdefault("Content-Length", str(len(body)))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if request.method != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()
        if reply.fault is Fault.RESET_AFTER_BODY:
            self._reset()
        elif reply.fault in (Fault.CLOSE_AFTER_BODY, Fault.UNDECLARED_LENGTH):
            self.close_connection = True

    def _reset(self) -> None:
        """Close the connection with a TCP reset (SO_LINGER 0) instead of a FIN."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True


def _matches(if_none_match: str | None, tag: str) -> bool:
    """Whether ``If-None-Match`` names ``tag``, compared weakly (``W/`` ignored)."""
    if not if_none_match:
        return False
    return any(part.strip().removeprefix("W/") == tag.removeprefix("W/") for part in if_none_match.split(","))


@contextlib.contextmanager
def serve_origin(
    folder: Path | None = None,
    *,
    prefix: str = "/",
    file_headers: Mapping[str, str] | None = None,
    fallback: Callable[[Request], Reply] | None = None,
    tls: ssl.SSLContext | None = None,
) -> Iterator[Origin]:
    """Run an ``Origin`` on 127.0.0.1 (over TLS with ``tls``, a server context with its certificate)
    in a thread; yields it, then releases held and hung requests and stops it."""
    origin = Origin(folder, prefix=prefix, file_headers=file_headers, fallback=fallback)
    server = _Server(origin, tls)
    origin.scheme = "https" if tls is not None else "http"
    try:
        with serving(server) as port:
            origin.port = port
            yield origin
            origin.hold.set()
            origin.released.set()
    finally:
        origin.hold.set()
        origin.released.set()
