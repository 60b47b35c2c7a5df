"""Visual regression: golden derivatives for common device sizes, compared by SSIMULACRA2, not by bytes.

The matrix (``cases``): CSS widths 360, 768, 1280, 1920 × DPR 1, 2, 3 of a synthetic photo (all twelve),
fewer of the others (the repository's sample chart, its transparent PNG, a synthetic animation and a
synthetic face redacted with ``redact:faces:pixelate``), each as Chrome, Safari and an old client
negotiate it (``Accept``). Requests that give the same pixels are made once: pairs whose device width
is the same (``w:1280/dpr:3`` and ``w:1920/dpr:2``) or reaches the original's width (no ``enlarge``),
and clients that negotiate the same format (Chrome and Safari both get AVIF, or WebP for the
animation); each golden lists the matrix cells and clients it stands for.

A golden is the derivative's format, size and frame count, and a reference image: the decoded
derivative scaled (``comparable``) to at most ``REFERENCE_SIDE`` pixels on its long side (frame by
frame), stored as lossless WebP in ``tests/goldens/``, so the whole set stays small. ``compare`` then
requires the same format, size and frames exactly, and a SSIMULACRA2 score of the new derivative
(scaled the same way) against the reference of at least ``100 - MAX_DROP`` (100: the same pixels).
Images with alpha are scored on dark and on light grey, the lower score kept (as the reference tool
does), so a change of transparency counts. A failure writes the reference and the new image side by
side into the artifacts folder and names it.

``scripts/update-goldens`` regenerates the set (``update``) for review when a change is intended.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import pyvips

from edgeproxy.http.negotiate import accepted_image_types
from edgeproxy.quality.ssimulacra2 import score
from testkit.app import make_client, signed
from testkit.env import FACE_MODEL, ROOT
from testkit.images import animation, decode, encode, face, loader_format, photo

GOLDENS = ROOT / "tests" / "goldens"
INDEX = GOLDENS / "goldens.json"
SAMPLES = ROOT / "edgeproxy" / "samples"
#: Long side of a stored reference, pixels: big enough to see a crop, a colour or a blur change,
#: small enough that ~40 references stay under 3 MB.
REFERENCE_SIDE = 256
#: A new derivative may score this many SSIMULACRA2 points below its reference (100): an encoder
#: upgrade's noise passes, a visible change (a colour shift, a crop, a lost redaction) does not.
MAX_DROP = 5.0
#: The ``Accept`` each client sends for an <img>: Chrome 120+, Safari 17+, and an old client.
CLIENTS = {
    "chrome": "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
    "safari": (
        "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,"
        "image/svg+xml,image/*;q=0.8,*/*;q=0.5"
    ),
    "old": "*/*",
}
WIDTHS = (360, 768, 1280, 1920)
DPRS = (1, 2, 3)
#: The originals: origin key -> (width, height, what it is for). Written by ``write_originals``.
ORIGINALS = {
    "photo.jpg": (2560, 1707, "a synthetic photo: every width x DPR"),
    "chart.jpg": (1200, 800, "the repository's sample chart (edgeproxy/samples)"),
    "disc-alpha.png": (400, 400, "the repository's transparent PNG (edgeproxy/samples)"),
    "animation.gif": (480, 320, "a synthetic animation, 3 frames"),
    "face.jpg": (800, 600, "a synthetic face, redacted (redact:faces:pixelate; needs the face model)"),
}
#: Which cells of the matrix each original gets: (widths, DPRs, extra options).
MATRIX = {
    "photo.jpg": (WIDTHS, DPRS, ""),
    "chart.jpg": ((360, 1280), (1, 2), ""),
    "disc-alpha.png": ((360, 768), (1,), ""),
    "animation.gif": ((360, 768), (1,), ""),
    "face.jpg": ((360, 768), (1,), "/redact:faces:pixelate"),
}
#: Originals that have an alpha band or several frames (what negotiation looks at).
_ALPHA = {"disc-alpha.png"}
_ANIMATED = {"animation.gif"}


@dataclass(frozen=True, slots=True)
class Golden:
    """One golden derivative: ``options`` of ``key`` requested with the first of ``clients``'
    ``Accept``; ``covers`` the matrix cells (``w:W/dpr:D``) it stands for; what it must be
    (``format``, ``width`` × ``height`` per frame, ``frames``), and its reference file."""

    name: str
    key: str
    options: str
    clients: tuple[str, ...]
    covers: tuple[str, ...]
    format: str = ""
    width: int = 0
    height: int = 0
    frames: int = 1
    reference: str = ""

    @property
    def accept(self) -> str:
        return CLIENTS[self.clients[0]]

    @property
    def needs_face_model(self) -> bool:
        return "redact:" in self.options


def _negotiated(key: str, accept: str) -> str:
    """The format ``f:auto`` gives ``key`` for ``accept`` (``negotiate``'s rules, ``auto_jxl`` off)."""
    allowed = accepted_image_types(accept, False)
    if key in _ANIMATED:
        return "webp" if "webp" in allowed else "gif"
    for fmt in ("avif", "webp"):
        if fmt in allowed:
            return fmt
    return "png" if key in _ALPHA else "jpeg"


def cases() -> list[Golden]:
    """The golden set's cases (no results yet): one per original, distinct device width and
    negotiated format, in a fixed order."""
    found: dict[tuple[str, int, str], dict[str, list[str]]] = {}
    for key, (widths, dprs, _extra) in MATRIX.items():
        original_width = ORIGINALS[key][0]
        for width in widths:
            for dpr in dprs:
                device = min(width * dpr, original_width)
                for client, accept in CLIENTS.items():
                    entry = found.setdefault((key, device, _negotiated(key, accept)), {"covers": [], "clients": []})
                    cell = f"w:{width}/dpr:{dpr}"
                    if cell not in entry["covers"]:
                        entry["covers"].append(cell)
                    if client not in entry["clients"]:
                        entry["clients"].append(client)
    goldens = []
    for (key, device, fmt), entry in found.items():
        extra = MATRIX[key][2]
        stem = key.rsplit(".", 1)[0]
        goldens.append(
            Golden(
                name=f"{stem}-{device}w-{fmt}",
                key=key,
                options=entry["covers"][0] + extra,
                clients=tuple(entry["clients"]),
                covers=tuple(entry["covers"]),
            )
        )
    return goldens


def write_originals(folder: Path) -> Path:
    """The originals of ``ORIGINALS`` in ``folder`` (synthetic ones made, samples copied)."""
    (folder / "photo.jpg").write_bytes(encode(photo(2560, 1707, seed=7), "jpeg", Q=90))
    for sample in ("chart.jpg", "disc-alpha.png"):
        shutil.copyfile(SAMPLES / sample, folder / sample)
    (folder / "animation.gif").write_bytes(encode(animation(480, 320, 3), "gif"))
    (folder / "face.jpg").write_bytes(encode(face(800, 600), "jpeg", Q=90))
    return folder


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[httpx.Client]:
    """A proxy serving ``folder`` as origin ``g``, with the face model when it is installed."""
    vision = {"face_model": str(FACE_MODEL)} if FACE_MODEL.is_file() else {}
    with make_client({"g": str(folder)}, **vision) as client:
        yield client


def fetch(client: httpx.Client, golden: Golden) -> httpx.Response:
    """The derivative of ``golden`` as its first client gets it.

    Raises:
        AssertionError: the answer is not a 200.
    """
    response = client.get(signed(f"/{golden.options}/g/{golden.key}"), headers={"Accept": golden.accept})
    assert response.status_code == 200, f"{golden.name}: {response.status_code} {response.text[:200]}"
    return response


def _frames(image: pyvips.Image) -> tuple[int, int]:
    page = image.get("page-height") if image.get_typeof("page-height") else image.height
    return page, image.height // page


def comparable(image: pyvips.Image) -> pyvips.Image:
    """``image`` (decoded, every frame) as it is compared: 8-bit sRGB (alpha kept), each frame scaled
    to at most ``REFERENCE_SIDE`` pixels on its long side (never enlarged), the frames stacked."""
    page, frames = _frames(image)
    image = image.colourspace("srgb") if image.interpretation != "srgb" else image
    scale = min(1.0, REFERENCE_SIDE / max(image.width, page))
    if scale == 1.0:
        return image.cast("uchar")
    pages = [image.crop(0, i * page, image.width, page).resize(scale) for i in range(frames)]
    return pyvips.Image.arrayjoin(pages, across=1).cast("uchar").copy(interpretation="srgb")


def similarity(reference: pyvips.Image, current: pyvips.Image) -> float:
    """SSIMULACRA2 of ``current`` against ``reference`` (both ``comparable``, one size): images with
    alpha are flattened onto dark grey (64) and light grey (192) and the lower score kept."""
    if not reference.hasalpha() and not current.hasalpha():
        return score(reference, current)
    scores = []
    for grey in (64, 192):
        flat = [_flat(image, grey) for image in (reference, current)]
        scores.append(score(*flat))
    return min(scores)


def _flat(image: pyvips.Image, grey: int) -> pyvips.Image:
    image = image.flatten(background=[grey] * (image.bands - 1)) if image.hasalpha() else image
    if image.bands == 1:
        image = image.bandjoin([image, image])
    return image.cast("uchar").copy(interpretation="srgb")


def side_by_side(reference: pyvips.Image, current: pyvips.Image, path: Path) -> Path:
    """``reference`` (left) and ``current`` (right), alpha on light grey, 8 px apart, as PNG at ``path``."""
    left, right = _flat(reference, 192), _flat(current, 192)
    height = max(left.height, right.height)
    canvas = pyvips.Image.black(left.width + 8 + right.width, height, bands=3) + 255
    canvas = canvas.insert(left, 0, 0).insert(right, left.width + 8, 0).cast("uchar")
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.pngsave(str(path))
    return path


@dataclass(slots=True)
class Verdict:
    """What ``compare`` found: the problems (empty: it passes), the score, the side-by-side image."""

    problems: list[str] = field(default_factory=list)
    score: float | None = None
    artifact: Path | None = None


def compare(golden: Golden, body: bytes, artifacts: Path) -> Verdict:
    """``body`` (a derivative's bytes) against ``golden``: format, size and frames exactly, then the
    score against the stored reference; a side-by-side image in ``artifacts`` when they differ."""
    verdict = Verdict()
    image = decode(body)
    page, frames = _frames(image)
    fmt = loader_format(image).replace("heif", "avif")
    seen = (fmt, image.width, page, frames)
    wanted = (golden.format, golden.width, golden.height, golden.frames)
    if seen != wanted:
        got, was = "{} {}x{}x{}".format(*seen), "{} {}x{}x{}".format(*wanted)
        verdict.problems.append(f"{golden.name}: got {got}, the golden is {was}")
    reference = pyvips.Image.new_from_file(str(GOLDENS / golden.reference))
    current = comparable(image)
    if (current.width, current.height) == (reference.width, reference.height):
        verdict.score = similarity(reference, current)
        if verdict.score < 100 - MAX_DROP:
            verdict.problems.append(
                f"{golden.name}: SSIMULACRA2 {verdict.score:.1f} against the reference, below {100 - MAX_DROP:g}"
            )
    if verdict.problems:
        verdict.artifact = side_by_side(reference, current, artifacts / f"{golden.name}-side-by-side.png")
        verdict.problems.append(f"reference | now: {verdict.artifact}")
    return verdict


def load_index() -> list[Golden]:
    """The stored goldens (``tests/goldens/goldens.json``)."""
    rows = json.loads(INDEX.read_text(encoding="utf-8"))["goldens"]
    return [Golden(**{**row, "clients": tuple(row["clients"]), "covers": tuple(row["covers"])}) for row in rows]


def update(folder: Path) -> list[tuple[Golden, float | None]]:
    """Render every case on a proxy serving ``write_originals(folder)`` and write the references and
    the index into ``tests/goldens/`` (old references removed); returns each new golden with the
    score of its new reference against the old one (None where there was none or the size changed),
    for review.

    Raises:
        RuntimeError: the face model is missing (the redacted face cannot be made).
    """
    if not FACE_MODEL.is_file():
        raise RuntimeError(f"the face model is missing at {FACE_MODEL}: run edgeproxy models fetch")
    old = {g.name: g for g in load_index()} if INDEX.is_file() else {}
    made: list[tuple[Golden, pyvips.Image]] = []
    with serve(write_originals(folder)) as client:
        for case in cases():
            image = decode(fetch(client, case).content)
            page, frames = _frames(image)
            fmt = loader_format(image).replace("heif", "avif")
            golden = Golden(**{**asdict(case), "format": fmt, "width": image.width, "height": page, "frames": frames,
                               "reference": f"{case.name}.webp"})  # fmt: skip
            made.append((golden, comparable(image).copy_memory()))
    reviewed: list[tuple[Golden, float | None]] = []
    for golden, reference in made:
        before = old.get(golden.name)
        previous = GOLDENS / before.reference if before else None
        change = None
        if previous is not None and previous.is_file():
            stored = pyvips.Image.new_from_file(str(previous))
            if (stored.width, stored.height) == (reference.width, reference.height):
                change = similarity(stored, reference)
        reviewed.append((golden, change))
    for stale in GOLDENS.glob("*.webp"):
        stale.unlink()
    GOLDENS.mkdir(parents=True, exist_ok=True)
    for golden, reference in made:
        reference.webpsave(str(GOLDENS / golden.reference), lossless=True, effort=6, strip=True)
    index = {
        "about": "Visual regression goldens (testkit/goldens.py); regenerate with scripts/update-goldens.",
        "reference_side": REFERENCE_SIDE,
        "max_drop": MAX_DROP,
        "goldens": [{**asdict(g), "clients": list(g.clients), "covers": list(g.covers)} for g, _ in made],
    }
    INDEX.write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
    return reviewed
