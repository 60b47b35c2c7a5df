"""Visual regression: every golden derivative (``testkit.goldens``: widths 360-1920 × DPR 1-3 of a
photo, fewer of a chart, a transparent PNG, an animation and a redacted face, as Chrome, Safari and an
old client negotiate them) rendered again and compared with its stored reference by SSIMULACRA2, not
by bytes. A size, frame count or format change, or a drop of more than ``MAX_DROP`` points, fails and
writes the reference and the new image side by side into ``$EDGEPROXY_TEST_ARTIFACTS/visual/``
(default ``.artifacts/visual/``, as the browser tests' artifacts), named in the failure.
``scripts/update-goldens`` regenerates the set when a change is intended (docs/visual-regression.md)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import pyvips

from testkit import goldens
from testkit.env import FACE_MODEL, ROOT, missing
from testkit.images import encode

GOLDENS = goldens.load_index()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with goldens.serve(goldens.write_originals(tmp_path_factory.mktemp("goldens"))) as c:
        yield c


#: Where a failure's side-by-side images go.
ARTIFACTS = Path(os.environ.get("EDGEPROXY_TEST_ARTIFACTS") or ROOT / ".artifacts") / "visual"


def test_the_goldens_are_the_current_matrix() -> None:
    """The stored set is the one ``cases`` defines (a changed matrix needs scripts/update-goldens), and small."""
    stored = [(g.name, g.key, g.options, g.clients, g.covers) for g in GOLDENS]
    assert stored == [(c.name, c.key, c.options, c.clients, c.covers) for c in goldens.cases()]
    cells = {(g.key, cell) for g in GOLDENS for cell in g.covers}
    assert {cell for key, cell in cells if key == "photo.jpg"} == {
        f"w:{w}/dpr:{d}" for w in goldens.WIDTHS for d in goldens.DPRS
    }
    assert {client for g in GOLDENS for client in g.clients} == set(goldens.CLIENTS)
    files = sorted(p.name for p in goldens.GOLDENS.glob("*.webp"))
    assert files == sorted(g.reference for g in GOLDENS)
    assert sum(p.stat().st_size for p in goldens.GOLDENS.iterdir()) < 3_000_000


@pytest.mark.parametrize("golden", GOLDENS, ids=[g.name for g in GOLDENS])
def test_derivative_matches_its_golden(client: httpx.Client, golden: goldens.Golden) -> None:
    if golden.needs_face_model and not FACE_MODEL.is_file():
        missing(f"the face model {FACE_MODEL}", "edgeproxy models fetch")
    response = goldens.fetch(client, golden)
    verdict = goldens.compare(golden, response.content, ARTIFACTS)
    assert not verdict.problems, "\n".join(verdict.problems)
    assert verdict.score is not None and verdict.score > 100 - goldens.MAX_DROP


def test_a_visible_change_fails_with_a_side_by_side_image(client: httpx.Client, tmp_path: Path) -> None:
    """The comparison can fail: a slightly blurred, a colour-shifted and a resized derivative are each
    caught, and the failure names a side-by-side image of the reference and the new one."""
    golden = next(g for g in GOLDENS if g.name == "chart-720w-jpeg")
    image = pyvips.Image.new_from_buffer(goldens.fetch(client, golden).content, "")
    blurred = encode(image.gaussblur(1.5), "jpeg", Q=95)
    shifted = encode((image + [12, 0, -12]).cast("uchar"), "jpeg", Q=95)
    for body, expected in ((blurred, "SSIMULACRA2"), (shifted, "SSIMULACRA2")):
        verdict = goldens.compare(golden, body, tmp_path)
        assert any(expected in p for p in verdict.problems), verdict
        assert verdict.artifact is not None and verdict.artifact.is_file()
        side = pyvips.Image.new_from_file(str(verdict.artifact))
        assert (side.width, side.height) == (2 * 256 + 8, 171)
    smaller = goldens.compare(golden, encode(image.resize(0.5), "jpeg"), tmp_path)
    assert "got jpeg 360x240x1, the golden is jpeg 720x480x1" in smaller.problems[0]
    other = goldens.compare(replace(golden, format="avif"), encode(image, "jpeg", Q=95), tmp_path)
    assert "the golden is avif" in other.problems[0]
