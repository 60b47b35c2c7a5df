"""Shared fixtures: the corpus, a signed-URL helper, and the app served by a real uvicorn on 127.0.0.1.

The corpus is read from ``../shared/corpus`` (beside the repository); tests that need it skip
cleanly where it is absent.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import pyvips
import uvicorn
from starlette.applications import Starlette

from edgeproxy.http.app import create_app
from edgeproxy.render import pillow
from edgeproxy.settings import load_settings
from edgeproxy.url.signing import sign_path
from testkit.net import free_port

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("EDGEPROXY_CORPUS", ROOT.parent / "shared" / "corpus"))
KEY = "test-signing-key"
IN_CI = os.environ.get("CI") == "true"
#: Optional extras this install has (pip install '.[heif,jxl]'); tests expect what the install can
#: do. ``EDGEPROXY_TEST_EXTRAS=1`` (the second pass of .ci/run) says they must all be there.
EXTRAS = {extra: pillow.missing_extra(fmt) is None for extra, fmt in (("heif", "heif"), ("jxl", "jxl"))}
if os.environ.get("EDGEPROXY_TEST_EXTRAS") == "1" and not all(EXTRAS.values()):
    raise RuntimeError(f"EDGEPROXY_TEST_EXTRAS=1 but extras are missing: {EXTRAS}")


#: Where `edgeproxy models fetch` puts the vision models by default (edgeproxy.vision.models.default_dir).
MODELS_DIR = Path(
    os.environ.get("EDGEPROXY_MODELS_DIR")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgeproxy" / "models"
)
NSFW_MODEL, FACE_MODEL = MODELS_DIR / "open-nsfw.onnx", MODELS_DIR / "centerface.onnx"


@pytest.fixture(scope="session")
def models() -> dict[str, Path]:
    """The real vision models, ``{"nsfw": path, "face": path}``: installed by the README's test
    command (``edgeproxy models fetch``). Missing: a skip locally, a failure under ``CI=true``."""
    missing = [str(p) for p in (NSFW_MODEL, FACE_MODEL) if not p.is_file()]
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        missing.append("the onnxruntime module (pip install '.[vision]')")
    if missing:
        message = f"vision models missing: {', '.join(missing)}; run `edgeproxy models fetch`"
        if IN_CI:
            pytest.fail("CI=true but " + message)
        pytest.skip(message)
    return {"nsfw": NSFW_MODEL, "face": FACE_MODEL}


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not (CORPUS / "MANIFEST.json").is_file():
        if IN_CI:
            pytest.fail(f"CI=true but the corpus is missing at {CORPUS}")
        pytest.skip(f"image corpus not found at {CORPUS}")
    return CORPUS


def signed(path: str, key: str = KEY) -> str:
    """``/{signature}{path}`` signed with the test key."""
    return sign_path(path, key)


@contextlib.contextmanager
def serve_app(app, port: int | None = None) -> Iterator[str]:
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
def make_served(origins: dict[str, str], **overrides) -> Iterator[tuple[httpx.Client, Starlette]]:
    """(httpx client, app) of a running edgeproxy with ``origins`` and settings ``overrides``; the
    app's objects are on ``app.state.components`` (``edgeproxy.compose.Components``) once it serves."""
    settings = load_settings(origins=origins, signing_key=KEY, **overrides)
    app = create_app(settings)
    with serve_app(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        yield client, app


@contextlib.contextmanager
def make_client(origins: dict[str, str], **overrides) -> Iterator[httpx.Client]:
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


@pytest.fixture(scope="module")
def client(corpus: Path) -> Iterator[httpx.Client]:
    """A client of edgeproxy serving the corpus as origin ``demo``."""
    with make_client({"demo": str(corpus)}) as c:
        yield c


def decode(body: bytes) -> pyvips.Image:
    """Decode a response body, every frame (so ``n-pages``/``page-height`` are visible)."""
    image = pyvips.Image.new_from_buffer(body, "")
    loader = image.get("vips-loader")
    if loader.startswith(("gifload", "webpload")):
        image = pyvips.Image.new_from_buffer(body, "", n=-1)
    return image


def loader_format(image: pyvips.Image) -> str:
    """Format that decoded ``image``: jpeg, png, webp, gif or heif (AVIF decodes through heifload)."""
    return image.get("vips-loader").removesuffix("_buffer").removesuffix("load")


def pytest_addoption(parser):
    parser.addoption(
        "--soak-seconds",
        type=float,
        default=20.0,
        help="duration of tests/test_soak.py after its warm-up (CI: 20; full run: 120)",
    )


@pytest.fixture
def soak_seconds(request) -> float:
    return request.config.getoption("--soak-seconds")


def node_or_skip(untested: str) -> str:
    """Path of ``node``; the test skips without it, naming what goes ``untested`` (and fails under
    ``CI=true``, where .ci/run installs Debian's nodejs)."""
    node = shutil.which("node")
    if node is None:
        if IN_CI:
            pytest.fail("CI=true but node is missing (.ci/run installs Debian's nodejs)")
        pytest.skip(f"node not installed (apt-get install nodejs): {untested} is untested")
    return node


def run_node_tests(folder: Path, untested: str) -> subprocess.CompletedProcess:
    """``node --test`` over ``folder``'s ``*.test.js``, run from the repository root, asserted to pass.
    The files are named rather than the folder: Node 21+ reads a folder argument as a module path."""
    node = node_or_skip(untested)
    files = sorted(str(path.relative_to(ROOT)) for path in folder.glob("*.test.js"))
    assert files, f"no *.test.js in {folder}"
    result = subprocess.run([node, "--test", *files], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"node --test failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    return result
