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
