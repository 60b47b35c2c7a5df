"""Shared fixtures: the real-world corpus and the synthetic library, the vision models, and edgeproxy
serving them on 127.0.0.1. Helpers live in ``testkit/`` (``testkit.app``: signed URLs and served apps;
``testkit.images``: synthetic images and decoding; ``testkit.env``: paths and the CI gate;
``testkit.origin``: an HTTP origin).

The corpus is read from ``../shared/corpus`` (beside the repository); tests that need it skip
cleanly where it is absent, and fail under ``CI=true``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edgeproxy.render import vips
from testkit.app import make_client
from testkit.env import CORPUS, FACE_MODEL, IN_CI, NSFW_MODEL
from testkit.images import write_library


@pytest.fixture(scope="session", autouse=True)
def quiet_libvips() -> None:
    """libvips' messages handled in C from the first test on, as the app does at start-up
    (``vips.silence_messages``: in Python, a GC pass inside pyvips' handler can abort the process)."""
    vips.silence_messages()


@pytest.fixture(scope="session", autouse=True)
def result_storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A result storage of this test session's own for every server started with the default one
    (``edgeproxy serve`` in a subprocess, the container, the docs' commands): what one run stores
    (optimised tiers) is never found by the next run (``EDGEPROXY_RESULT_STORAGE``)."""
    folder = tmp_path_factory.mktemp("results")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EDGEPROXY_RESULT_STORAGE", str(folder))
        yield folder


@pytest.fixture(scope="session")
def models() -> dict[str, Path]:
    """The real vision models, ``{"nsfw": path, "face": path}``: installed by the README's test
    command (``edgeproxy models fetch``). Missing: a skip locally, a failure under ``CI=true``."""
    absent = [str(p) for p in (NSFW_MODEL, FACE_MODEL) if not p.is_file()]
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        absent.append("the onnxruntime module (pip install '.[vision]')")
    if absent:
        message = f"vision models missing: {', '.join(absent)}; run `edgeproxy models fetch`"
        if IN_CI:
            pytest.fail("CI=true but " + message)
        pytest.skip(message)
    return {"nsfw": NSFW_MODEL, "face": FACE_MODEL}


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The real-world corpus folder (its MANIFEST.json lists the files)."""
    if not (CORPUS / "MANIFEST.json").is_file():
        if IN_CI:
            pytest.fail(f"CI=true but the corpus is missing at {CORPUS}")
        pytest.skip(f"image corpus not found at {CORPUS}")
    return CORPUS


@pytest.fixture(scope="module")
def client(corpus: Path) -> Iterator[httpx.Client]:
    """A client of edgeproxy serving the corpus as origin ``demo``."""
    with make_client({"demo": str(corpus)}) as c:
        yield c


@pytest.fixture(scope="session")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of synthetic originals (``testkit.images.library``), made once per session: for the
    tests that need "a photo" in some format, not a particular real-world file."""
    return write_library(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def photo_client(photos: Path) -> Iterator[httpx.Client]:
    """A client of edgeproxy serving the synthetic library as origin ``demo``."""
    with make_client({"demo": str(photos)}) as c:
        yield c


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak-seconds",
        type=float,
        default=20.0,
        help="duration of tests/test_soak.py after its warm-up (CI: 20; full run: 120)",
    )


@pytest.fixture
def soak_seconds(request: pytest.FixtureRequest) -> float:
    return request.config.getoption("--soak-seconds")
