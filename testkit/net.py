"""Local network helpers: every server the tests and benchmarks start listens on 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Iterator


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS's choice)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[int]:
    """Run ``server`` (bound on 127.0.0.1) in a daemon thread; yields its port, then shuts it down
    and closes its socket."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts connections, reads a request and never answers (a hung
    origin or S3 endpoint, for timeout tests); yields its port. Held connections are released on exit."""
    release = threading.Event()

    class Silent(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.recv(65536)
            release.wait(30)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Silent)
    server.daemon_threads = True
    try:
        with serving(server) as port:
            yield port
    finally:
        release.set()


class Stall:
    """A switch for ``stalling_proxy``: while ``stalled`` is set, new connections are held unanswered."""

    def __init__(self) -> None:
        self.stalled = threading.Event()
        self.release = threading.Event()


@contextlib.contextmanager
def stalling_proxy(target_port: int) -> Iterator[tuple[int, Stall]]:
    """A TCP proxy on 127.0.0.1 to ``target_port`` that can play a store in trouble: yields (its port,
    a ``Stall``). While ``stall.stalled`` is set, each new connection is accepted, read and never
    answered (a hung endpoint); otherwise bytes are passed both ways. Held connections are released
    on exit."""
    stall = Stall()

    def pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            if stall.stalled.is_set():
                self.request.recv(65536)
                stall.release.wait(30)
                return
            with socket.create_connection(("127.0.0.1", target_port)) as upstream:
                back = threading.Thread(target=pump, args=(upstream, self.request), daemon=True)
                back.start()
                pump(self.request, upstream)
                back.join(30)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    try:
        with serving(server) as port:
            yield port, stall
    finally:
        stall.release.set()
