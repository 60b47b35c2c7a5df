"""Where the tests run: the repository, the corpus, CI or not, the optional extras and models, and the
gate that turns a missing component into a skip locally and a failure under ``CI=true``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

from edgeproxy.render import pillow

ROOT = Path(__file__).resolve().parent.parent
#: The real-world images (``../shared/corpus`` beside the repository, or ``$EDGEPROXY_CORPUS``).
CORPUS = Path(os.environ.get("EDGEPROXY_CORPUS", ROOT.parent / "shared" / "corpus"))
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


def missing(what: str, how: str) -> NoReturn:
    """Skip the test because ``what`` is missing (``how``: how to get it); under ``CI=true``, where
    ``.ci/run`` installs every component, fail it instead."""
    if IN_CI:
        pytest.fail(f"CI=true but {what} is missing ({how})")
    pytest.skip(f"{what} not available ({how})")


def require_tool(tool: str, how: str) -> str:
    """Path of the executable ``tool``; ``missing`` when it is not on PATH."""
    path = shutil.which(tool)
    if path is None:
        missing(tool, how)
    return path


def require_varnish() -> tuple[str, str]:
    """Paths of ``varnishd`` and ``varnishadm``; skips the test where they are missing, fails it
    under ``CI=true`` (``.ci/run`` installs Debian's varnish)."""
    from testkit.varnish import find_varnish

    found = find_varnish()
    if found is None:
        if IN_CI:
            pytest.fail("CI=true but varnishd is missing (.ci/run installs Debian's varnish)")
        pytest.skip("varnishd not installed (apt-get install varnish varnish-modules)")
    return found


def node_or_skip(untested: str) -> str:
    """Path of ``node``; the test skips without it, naming what goes ``untested`` (and fails under
    ``CI=true``, where .ci/run installs Debian's nodejs)."""
    node = shutil.which("node")
    if node is None:
        if IN_CI:
            pytest.fail("CI=true but node is missing (.ci/run installs Debian's nodejs)")
        pytest.skip(f"node not installed (apt-get install nodejs): {untested} is untested")
    return node


def run_node_tests(folder: Path, untested: str) -> subprocess.CompletedProcess[str]:
    """``node --test`` over ``folder``'s ``*.test.js``, run from the repository root, asserted to pass.
    The files are named rather than the folder: Node 21+ reads a folder argument as a module path."""
    node = node_or_skip(untested)
    files = sorted(str(path.relative_to(ROOT)) for path in folder.glob("*.test.js"))
    assert files, f"no *.test.js in {folder}"
    result = subprocess.run([node, "--test", *files], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"node --test failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    return result
