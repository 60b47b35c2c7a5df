"""Start the servers under test on 127.0.0.1 and measure their process trees (CPU, RSS)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import psutil

THUMBOR_CONF = """
LOADER = 'thumbor.loaders.file_loader'
FILE_LOADER_ROOT_PATH = {root!r}
STORAGE = 'thumbor.storages.no_storage'
RESULT_STORAGE = None
ALLOW_UNSAFE_URL = True
ENGINE_THREADPOOL_SIZE = {threads}
PROGRESSIVE_JPEG = True
PILLOW_RESAMPLING_FILTER = 'LANCZOS'
QUALITY = 80
WEBP_QUALITY = 75
AVIF_QUALITY = 65
AVIF_SPEED = 10
RESPECT_ORIENTATION = True
MAX_AGE = 0
"""


def install_thumbor(venv: Path) -> Path:
    """thumbor 7.8 with pillow-avif-plugin in its own virtualenv (outside the repository)."""
    exe = venv / "bin" / "thumbor"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", "thumbor==7.8.0", "pillow-avif-plugin"], check=True
        )
    return exe


def versions(venv: Path) -> dict[str, str]:
    out = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import thumbor, PIL, pillow_avif; print(thumbor.__version__, PIL.__version__, pillow_avif.__version__)",
        ],
        capture_output=True,
        text=True,
    )
    parts = out.stdout.split()
    return dict(zip(["thumbor", "pillow", "pillow-avif-plugin"], parts, strict=False))


class Server:
    """A server process on 127.0.0.1:port; ``sample()`` in a thread records the tree's peak RSS."""

    def __init__(self, name: str, argv: list[str], port: int, env: dict[str, str] | None = None):
        self.name, self.port = name, port
        self.proc = subprocess.Popen(
            argv, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.base = f"http://127.0.0.1:{port}"
        self.peak_rss = 0
        self._sampling = False

    def wait_ready(self, probe_path: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
            try:
                if httpx.get(self.base + probe_path, timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer {probe_path}")

    def _tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self) -> float:
        total = 0.0
        for p in self._tree():
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    def rss(self) -> int:
        total = 0
        for p in self._tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += p.memory_info().rss
        return total

    def start_sampling(self) -> None:
        self.peak_rss = 0
        self._sampling = True

        def loop() -> None:
            while self._sampling:
                self.peak_rss = max(self.peak_rss, self.rss())
                time.sleep(0.05)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop_sampling(self) -> int:
        self._sampling = False
        self._thread.join()
        return self.peak_rss

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_thumbor(
    venv: Path, images: Path, port: int, threads: int, workdir: Path, overrides: Mapping[str, object] | None = None
) -> Server:
    """thumbor from ``venv`` on 127.0.0.1:``port``, serving the files of ``images``, with
    ``THUMBOR_CONF`` (its ``threads`` engine threads) written into ``workdir``; ``overrides`` are
    settings appended to it (``{"AVIF_SPEED": None}``: thumbor's own default), which win."""
    conf = workdir / "thumbor.conf"
    extra = "".join(f"{name} = {value!r}\n" for name, value in (overrides or {}).items())
    conf.write_text(THUMBOR_CONF.format(root=str(images), threads=threads) + extra)
    server = Server(
        "thumbor",
        [str(venv / "bin" / "thumbor"), "-p", str(port), "-i", "127.0.0.1", "-c", str(conf), "-l", "error"],
        port,
    )
    server.wait_ready("/healthcheck")
    return server


def start_edgeproxy(images: Path, port: int, key: str, env: dict[str, str]) -> Server:
    argv = [
        sys.executable,
        "-m",
        "edgeproxy",
        "serve",
        "--port",
        str(port),
        "--origin",
        f"bench={images}",
        "--signing-key",
        key,
    ]
    server = Server("edgeproxy", argv, port, env={"EDGEPROXY_LOG_LEVEL": "warning", **env})
    server.wait_ready("/healthz")
    return server
