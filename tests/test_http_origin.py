"""The HTTP origin against a real HTTP server on 127.0.0.1 that can misbehave on request, and the
SSRF guard that refuses non-public origin addresses after DNS resolution."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ipaddress
import socket
import struct
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpcore
import psutil
import pytest

from edgeproxy.origins.guard import ForbiddenAddress, GuardedBackend, refusal
from tests.conftest import decode, loader_format, make_client, raw_get, signed

LOOPBACK = ["127.0.0.0/8"]  # the test origin is on 127.0.0.1, which the guard refuses by default


def origin_handler(corpus: Path, other_port: int, requested: list[str] | None = None):
    requested = [] if requested is None else requested

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output clean
            pass

        def send_body(self, status: int, body: bytes, headers: dict[str, str] | None = None):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self):
            self.send_body(200, b"")

        def do_GET(self):
            requested.append(self.path)
            path = self.path.removeprefix("/img/")
            if path == "reset.jpg":  # headers, part of the body, then a TCP reset
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.wfile.write(b"\xff\xd8" + b"\x00" * 500)
                self.wfile.flush()
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
                return None
            if path == "reset-early.jpg":  # a reset before any response
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
                return None
            if path == "to-loopback.jpg":  # another service on this machine
                return self.send_body(302, b"", {"Location": "http://127.0.0.1:9/admin"})
            if path == "to-metadata.jpg":  # the cloud metadata service
                return self.send_body(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})
            if path == "slow.jpg":
                time.sleep(3)
                return self.send_body(200, b"late")
            if path == "error.jpg":
                return self.send_body(500, b"boom")
            if path == "gone.jpg":
                return self.send_body(410, b"gone")
            if path == "moved.jpg":
                return self.send_body(302, b"", {"Location": "/img/giunchedi-portrait.jpg"})
            if path == "offhost.jpg":
                return self.send_body(302, b"", {"Location": f"http://127.0.0.2:{other_port}/x.jpg"})
            if path == "loop.jpg":
                return self.send_body(302, b"", {"Location": "/img/loop.jpg"})
            if path == "big.jpg":
                return self.send_body(200, b"\xff" * 300_000)
            if path == "lying-length.jpg":  # declares a small body, streams a big one
                self.send_response(200)
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(b"\xff" * 300_000)
                return None
            if path == "truncated-body.jpg":
                data = (corpus / "giunchedi-portrait.jpg").read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[:1000])
                self.close_connection = True
                return None
            file = corpus / path
            if not file.is_file():
                return self.send_body(404, b"no")
            return self.send_body(200, file.read_bytes(), {"ETag": '"v1"', "Last-Modified":
                                                          "Tue, 01 Sep 2026 10:00:00 GMT"})

    return Handler


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # edgeproxy hangs up on oversized bodies
        pass


@contextlib.contextmanager
def http_origin(corpus: Path, requested: list[str] | None = None) -> Iterator[str]:
    """An origin server on 127.0.0.1; appends each requested path to ``requested``."""
    server = QuietServer(("127.0.0.1", 0), origin_handler(corpus, 9, requested))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/img"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def requested() -> list[str]:
    return []


@pytest.fixture(scope="module")
def remote(corpus: Path, requested: list[str]):
    with http_origin(corpus, requested) as base, make_client(
        {"web": base}, origin_timeout=1.0, max_source_bytes=250_000, origin_allowed_networks=LOOPBACK,
        origin_max_connections=4,
    ) as c:
        yield c


def test_fetches_and_transforms_from_http_origin(remote):
    r = remote.get(signed("/w:200/web/giunchedi-portrait.jpg"), headers={"Accept": "image/webp"})
    assert r.status_code == 200
    image = decode(r.content)
    assert (loader_format(image), image.width, image.height) == ("webp", 200, 133)
    assert r.headers["last-modified"] == "Tue, 01 Sep 2026 10:00:00 GMT"


def test_same_host_redirect_is_followed(remote):
    r = remote.get(signed("/w:100/f:png/web/moved.jpg"))
    assert r.status_code == 200
    assert decode(r.content).width == 100


@pytest.mark.parametrize(
    ("key", "status", "message"),
    [
        ("missing.jpg", 404, "original not found"),
        ("gone.jpg", 404, "original not found"),
        ("error.jpg", 502, "origin answered 500"),
        ("offhost.jpg", 502, "origin redirected off its host"),
        ("loop.jpg", 502, "origin redirected too many times"),
        ("slow.jpg", 504, "origin timed out"),
        ("big.jpg", 413, "the original is over the limit of 250000 bytes"),
        ("lying-length.jpg", 413, "the original is over the limit of 250000 bytes"),
        ("truncated-body.jpg", 502, "origin connection failed"),
        ("reset.jpg", 502, "origin connection failed"),
        ("reset-early.jpg", 502, "origin connection failed"),
        ("to-loopback.jpg", 502, "origin redirected off its host"),
        ("to-metadata.jpg", 502, "origin redirected off its host"),
    ],
)
def test_origin_failures_map_to_statuses(remote, key, status, message):
    r = remote.get(signed(f"/w:100/web/{key}"))
    assert (r.status_code, r.text) == (status, message + "\n")
    expected_age = 1 if status >= 500 else 60
    assert r.headers["cache-control"] == f"public, max-age={expected_age}"


def test_readyz_reports_http_origin(remote):
    assert remote.get("/readyz").json()["origins"] == {"web": True}


@pytest.mark.parametrize(
    "key",
    ["a/../../secret.jpg", "%2F%2Fevil.example/x.jpg", "/etc/passwd", "a%5C..%5Cb.jpg", "a/./b.jpg", "x%00.jpg",
     "..", "a//b.jpg"],
)
def test_keys_cannot_leave_the_base_url(remote, requested, key):
    before = len(requested)
    assert raw_get(remote, signed(f"/w:100/web/{key}")) == (404, b"original not found\n")
    assert requested[before:] == []  # nothing was fetched, from this host or any other


def _origin_sockets(origin_port: int) -> int:
    """This process's established client sockets to the origin (the proxy's pool runs in-process)."""
    return sum(1 for c in psutil.Process().net_connections("tcp")
               if c.raddr and c.raddr.port == origin_port and c.status == psutil.CONN_ESTABLISHED)


def test_faults_leave_no_connections_behind(corpus):
    """A burst of good and misbehaving fetches at concurrency 16: the proxy never holds more origin
    connections than its pool limit (4), and once the burst is over at most those 4 stay open."""
    keys = ["giunchedi-portrait.jpg", "reset.jpg", "error.jpg", "truncated-body.jpg", "lying-length.jpg",
            "big.jpg", "reset-early.jpg", "missing.jpg", "slow.jpg"] * 6
    with http_origin(corpus) as base, make_client(
        {"web": base}, origin_timeout=1.0, max_source_bytes=250_000, origin_allowed_networks=LOOPBACK,
        origin_max_connections=4,
    ) as remote:
        port = int(base.split(":")[2].split("/")[0])
        peak, stop = [0], threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], _origin_sockets(port))
                time.sleep(0.002)

        sampler = threading.Thread(target=sample)
        sampler.start()
        paths = [signed(f"/w:{100 + i}/web/{key}") for i, key in enumerate(keys)]
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            statuses = list(ex.map(lambda p: remote.get(p).status_code, paths))
        stop.set()
        sampler.join()
        assert sorted(set(statuses)) == [200, 404, 413, 502, 504]
        assert 1 <= peak[0] <= 4
        time.sleep(0.2)
        assert _origin_sockets(port) <= 4


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"), ("127.255.255.254", "loopback"), ("::1", "loopback"),
        ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("172.31.255.255", "private"),
        ("192.168.1.1", "private"), ("fd12:3456::1", "private"),
        ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
        ("100.64.0.1", "shared (CGNAT)"), ("100.127.255.254", "shared (CGNAT)"),
        ("224.0.0.251", "multicast"), ("239.1.2.3", "multicast"), ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"), ("::", "unspecified"),
        ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"), ("192.0.2.1", "private"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped (Python >= 3.13 also says loopback directly)
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:100.64.0.1", "shared (CGNAT) (embedded in IPv6)"),
        ("::10.0.0.1", "private (embedded in IPv6)"),  # IPv4-compatible (deprecated)
        ("64:ff9b::a00:1", "private (embedded in IPv6)"),  # NAT64 of 10.0.0.1
        ("64:ff9b::7f00:1", "loopback (embedded in IPv6)"),  # NAT64 of 127.0.0.1
        ("64:ff9b:1::808:808", "private"),  # local-use NAT64 (RFC 8215): refused whatever it embeds
        ("2002:7f00:1::1", "loopback (embedded in IPv6)"),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::1", "link-local (embedded in IPv6)"),  # 6to4 of 169.254.169.254
    ],
)
def test_guard_refuses_every_non_public_range(address, kind):
    got = refusal(ipaddress.ip_address(address))
    # Python versions differ on whether a few embedded forms are flagged directly or via the IPv4.
    assert got is not None and got.removesuffix(" (embedded in IPv6)") == kind.removesuffix(" (embedded in IPv6)")


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "64:ff9b::808:808",
                                     "2002:808:808::1"])
def test_guard_accepts_public_addresses(address):
    assert refusal(ipaddress.ip_address(address)) is None


def test_guard_accepts_explicitly_allowed_networks():
    allowed = [ipaddress.ip_network("10.20.0.0/16")]
    assert refusal(ipaddress.ip_address("10.20.3.4"), allowed) is None
    assert refusal(ipaddress.ip_address("10.21.3.4"), allowed) == "private"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "0x7f.1", "2130706433", "[::ffff:127.0.0.1]"])
def test_guard_checks_after_resolution(host):
    backend = GuardedBackend()
    with pytest.raises(ForbiddenAddress):
        asyncio.run(backend.connect_tcp(host.strip("[]"), 80, timeout=1))


def test_guard_reports_unresolvable_hosts():
    with pytest.raises(httpcore.ConnectError):
        asyncio.run(GuardedBackend().connect_tcp("no-such-host.invalid", 80, timeout=1))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_origin_is_refused_unless_allowed(corpus, host):
    with http_origin(corpus) as base:
        base = base.replace("127.0.0.1", host)
        with make_client({"web": base}) as c:
            r = c.get(signed("/w:100/web/giunchedi-portrait.jpg"))
            assert (r.status_code, r.text) == (502, "origin host resolves to a loopback address\n")
            assert r.headers["cache-control"] == "public, max-age=1"
            assert c.get("/readyz").json()["origins"] == {"web": False}
        with make_client({"web": base}, origin_allowed_networks=["127.0.0.1/32", "::1/128"]) as c:
            assert c.get(signed("/w:100/web/giunchedi-portrait.jpg")).status_code == 200
