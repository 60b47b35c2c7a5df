"""A real Varnish in front of a backend, for the CDN tests and the CDN replay benchmark.

``start_varnish(host, port, vcl_body)`` writes a VCL 4.1 file whose default backend is
``host:port`` (plus ``vcl_body``), or, with ``vcl=TEXT``, a whole VCL file such as the shipped
``config/varnish/default.vcl`` with its ``backend default`` pointed at ``host:port``
(:func:`with_backend`) and, with ``more_backends=[(host, port), ...]``, one more backend per
pair added to the VCL's round-robin director (:func:`with_backends`), runs Debian's ``varnishd``
in the foreground on a free port of 127.0.0.1 and yields a :class:`Varnish` with its ``.url``
and ``.port``; on exit it stops it.

How varnishd is run:

- ``-F`` (foreground, so the test owns the process), ``-a 127.0.0.1:PORT``, ``-f VCL``,
  ``-n WORKDIR`` (its own working directory: shared-memory log, compiled VCL, CLI secret, so
  several instances never meet), ``-s malloc,32m``, ``-p default_grace=0`` and
  ``-p default_keep=0`` (an expired object is fetched again, never served stale, unless the VCL
  asks for it), one small thread pool (a 2-core machine).
- Run as root, varnishd's default ``unix`` jail already drops privileges: the manager compiles
  VCL as ``varnish`` and the cache process runs as ``vcache`` (users the Debian package
  creates), so no ``-j`` flag is needed. Those users must read the VCL and traverse the
  directories: the temporary directory is made 0o755 (``mkdtemp`` makes 0o700) and the VCL
  0o644; varnishd creates the ``-n`` work directory itself inside it, with the owners it needs.
  Run as another user, varnishd falls back to the ``none`` jail and every file is the user's own.
- Ready means ``varnishadm -n WORKDIR status`` reports the cache process running (nothing is
  sent to the backend to find out); the wait is bounded and a failure quotes varnishd's output.

``find_varnish()`` says whether varnishd is installed (``tests/varnish.py`` turns that into a skip,
or a failure under ``CI=true``). ``is_hit(response)`` reads Varnish's view
from ``X-Varnish`` (one transaction id on a miss or pass, two on a hit); ``age(response)``
reads ``Age``; ``counter(varnish, "MAIN.backend_req")`` reads a varnishstat counter (how many
requests Varnish sent to the backend, for instance); ``backend_health(varnish)`` says which
backends the VCL's health probe finds healthy.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from testkit.net import free_port

#: Debian installs varnishd in /usr/sbin, which is not on every user's PATH.
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def _which(tool: str) -> str | None:
    return shutil.which(tool, path=_SEARCH_PATH)


def find_varnish() -> tuple[str, str] | None:
    """Paths of ``varnishd`` and ``varnishadm``, or None where Varnish is not installed."""
    varnishd, varnishadm = _which("varnishd"), _which("varnishadm")
    return (varnishd, varnishadm) if varnishd and varnishadm else None


@dataclass(frozen=True)
class Varnish:
    url: str
    port: int
    workdir: Path
    vcl: str


def vcl_source(backend_host: str, backend_port: int, vcl_body: str = "") -> str:
    """The VCL varnishd loads: ``vcl 4.1``, the default backend, then ``vcl_body`` (the builtin
    VCL applies to every subroutine ``vcl_body`` does not end with a ``return``)."""
    return f'vcl 4.1;\n\nbackend default {{ .host = "{backend_host}"; .port = "{backend_port}"; }}\n\n{vcl_body}\n'


_BACKEND_DEFAULT = re.compile(r"backend\s+default\s*\{[^}]*\}")


def with_backend(vcl: str, backend_host: str, backend_port: int) -> str:
    """``vcl`` (a whole VCL file) with the ``.host`` and ``.port`` of its ``backend default``
    replaced by ``backend_host`` and ``backend_port``; the rest of the file is untouched."""
    block = _BACKEND_DEFAULT.search(vcl)
    if block is None:
        raise ValueError("the VCL has no `backend default { ... }` to point at the test backend")
    body = block.group(0)
    for name, value in (("host", backend_host), ("port", str(backend_port))):
        body, count = re.subn(rf'\.{name}\s*=\s*"[^"]*"', f'.{name} = "{value}"', body)
        if count != 1:
            raise ValueError(f"`backend default` must set .{name} exactly once (found {count})")
    return vcl[: block.start()] + body + vcl[block.end() :]


_ROUND_ROBIN = re.compile(r"new\s+(\w+)\s*=\s*directors\.round_robin\(\)\s*;")


def with_backends(vcl: str, backends: Sequence[tuple[str, int]]) -> str:
    """``vcl`` with its ``backend default`` pointed at ``backends[0]`` (:func:`with_backend`) and
    one more backend for each further ``(host, port)``: ``backend proxyN``, a copy of
    ``backend default`` (its probe and timeouts included) at that address, added to the VCL's
    round-robin director right after ``default``.

    Raises:
        ValueError: no backend given, no ``backend default``, or for more than one backend no
            ``directors.round_robin()`` director with an ``add_backend(default)`` line.
    """
    if not backends:
        raise ValueError("give at least one backend")
    vcl = with_backend(vcl, *backends[0])
    if len(backends) == 1:
        return vcl
    director = _ROUND_ROBIN.search(vcl)
    if director is None:
        raise ValueError("the VCL has no `new NAME = directors.round_robin();` to add backends to")
    adding = re.search(rf"^([ \t]*){director.group(1)}\.add_backend\(default\);[ \t]*\n", vcl, re.MULTILINE)
    if adding is None:
        raise ValueError(f"the VCL has no `{director.group(1)}.add_backend(default);` line")
    default = _BACKEND_DEFAULT.search(vcl)
    blocks, lines = [], []
    for number, (host, port) in enumerate(backends[1:], start=2):
        block = with_backend(default.group(0), host, port).replace("backend default", f"backend proxy{number}", 1)
        blocks.append(block)
        lines.append(f"{adding.group(1)}{director.group(1)}.add_backend(proxy{number});\n")
    vcl = vcl[: adding.end()] + "".join(lines) + vcl[adding.end() :]
    return vcl[: default.end()] + "\n\n" + "\n\n".join(blocks) + vcl[default.end() :]


def _output(log: Path) -> str:
    try:
        return log.read_text(errors="replace").strip() or "(no output)"
    except OSError:
        return "(no output)"


def _wait_ready(proc: subprocess.Popen, varnishadm: str, workdir: Path, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last = ""
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"varnishd exited with status {proc.returncode} before it was ready:\n{_output(log)}")
        status = subprocess.run(
            [varnishadm, "-n", str(workdir), "-t", "2", "status"], capture_output=True, text=True, timeout=10
        )
        last = (status.stdout + status.stderr).strip()
        if status.returncode == 0 and "running" in status.stdout:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"varnishd not ready after {START_TIMEOUT:.0f} s (varnishadm status: {last!r}):\n{_output(log)}"
            )
        time.sleep(0.1)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()  # the manager stops its cache process, then exits
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the manager and its cache process
        proc.wait(STOP_TIMEOUT)


@contextlib.contextmanager
def start_varnish(
    backend_host: str,
    backend_port: int,
    vcl_body: str = "",
    *,
    vcl: str | None = None,
    port: int | None = None,
    more_backends: Sequence[tuple[str, int]] = (),
) -> Iterator[Varnish]:
    """Run varnishd on 127.0.0.1 in front of ``backend_host:backend_port``; yields a
    :class:`Varnish`. ``vcl_body`` is appended to the VCL after the backend definition; or ``vcl``
    is the whole VCL file, whose ``backend default`` is pointed at the backend, and
    ``more_backends`` are added to its round-robin director (:func:`with_backends`)."""
    if vcl is not None and vcl_body:
        raise ValueError("give vcl_body or vcl, not both")
    if more_backends and vcl is None:
        raise ValueError("more_backends needs a whole VCL file (vcl=...) with a round-robin director")
    found = find_varnish()
    if found is None:
        raise RuntimeError("varnishd is not installed (apt-get install varnish varnish-modules)")
    varnishd, varnishadm = found
    with tempfile.TemporaryDirectory(prefix="edgeproxy-varnish-", ignore_cleanup_errors=True) as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # the varnish and vcache users traverse it
        if vcl is None:
            vcl = vcl_source(backend_host, backend_port, vcl_body)
        else:
            vcl = with_backends(vcl, [(backend_host, backend_port), *more_backends])
        vcl_file = root / "default.vcl"
        vcl_file.write_text(vcl)
        vcl_file.chmod(0o644)  # compiled by the varnish user
        workdir = root / "work"  # made by varnishd with the owners it needs
        log = root / "varnishd.log"
        port = port or free_port()
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    varnishd,
                    "-F",
                    "-a",
                    f"127.0.0.1:{port}",
                    "-f",
                    str(vcl_file),
                    "-n",
                    str(workdir),
                    "-s",
                    "malloc,32m",
                    "-p",
                    "default_grace=0",
                    "-p",
                    "default_keep=0",
                    "-p",
                    "thread_pools=1",
                    "-p",
                    "thread_pool_min=10",
                    "-p",
                    "thread_pool_max=100",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            _wait_ready(proc, varnishadm, workdir, log)
            yield Varnish(url=f"http://127.0.0.1:{port}", port=port, workdir=workdir, vcl=vcl)
        finally:
            _stop(proc)


def counter(varnish: Varnish, name: str) -> int:
    """The value of the varnishstat counter ``name`` (e.g. ``MAIN.backend_req``) of ``varnish``."""
    varnishstat = _which("varnishstat")
    if varnishstat is None:
        raise RuntimeError("varnishstat not found (Debian's varnish package installs it)")
    result = subprocess.run(
        [varnishstat, "-n", str(varnish.workdir), "-1", "-f", name],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    for line in result.stdout.splitlines():
        fields = line.split()
        if fields and fields[0] == name:
            return int(fields[1])
    raise LookupError(f"varnishstat has no counter {name!r}: {result.stdout!r} {result.stderr!r}")


def backend_health(varnish: Varnish) -> dict[str, bool]:
    """Each backend's health as its probe sees it (``varnishadm backend.list -j``): name (without
    the VCL's prefix, e.g. ``default``, ``proxy2``) -> healthy; a backend without a probe is
    healthy. Directors are left out."""
    found = find_varnish()
    if found is None:
        raise RuntimeError("varnishadm not found (Debian's varnish package installs it)")
    result = subprocess.run(
        [found[1], "-n", str(varnish.workdir), "backend.list", "-j"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    backends = json.loads(result.stdout)[3]
    return {
        name.rpartition(".")[2]: info.get("probe_message", [0, 0, "healthy"])[2] == "healthy"
        for name, info in backends.items()
        if info.get("type") == "backend"
    }  # not the directors


def varnish_ids(response: httpx.Response) -> list[str]:
    """Transaction ids in ``X-Varnish``: this request's, then (on a hit) the one that stored the object."""
    return response.headers.get("x-varnish", "").split()


def is_hit(response: httpx.Response) -> bool:
    """Whether Varnish answered from its cache (``X-Varnish`` carries two ids on a hit)."""
    ids = varnish_ids(response)
    if not ids:
        raise AssertionError(f"no X-Varnish header: the response did not come through Varnish ({response.headers})")
    return len(ids) == 2


def age(response: httpx.Response) -> int:
    """Varnish's ``Age`` of the object, in seconds."""
    return int(response.headers["age"])
