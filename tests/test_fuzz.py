"""One request's failure stays that request's (issue 20): a hostile original is that request's 4xx,
never a 5xx, and leaves nothing behind in libvips (its error buffer) that fails the next request.

The crafted case first: two bytes of the ``pixi`` box of a valid AVIF set to 0xFF make libheif's
error text invalid UTF-8; pyvips raised ``UnicodeDecodeError`` before clearing libvips' error
buffer, and every later render of the process answered 500. Then a bounded, seeded fuzz: mutants
of corpus AVIF, HEIC, JPEG, PNG, WebP and GIF originals (byte flips, truncations, ISOBMFF box
fields), each served by a real edgeproxy and followed by a valid render that must answer 200.
"""

from __future__ import annotations

import collections
import random
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.app import make_client, signed

#: Corpus originals the mutants are made from (small ones: a mutant that still decodes costs a decode).
SEEDS = {
    "avif": ("image.avif", "pitm.avif", "street-3082x2048.avif"),
    "heic": ("image.heic", "winter.heic"),
    "jpeg": ("iptc-xmp.jpg", "landscape-orientation-6.jpg", "gamma-gray.jpg"),
    "png": ("paletted-transparent.png", "grey-alpha.png", "png-16bit-trns.png"),
    "webp": ("image.webp", "webp-alpha.webp", "animated-loop-3.webp"),
    "gif": ("animated.gif", "one-frame.gif", "dancing-banana.gif"),
}
MUTANTS_PER_FORMAT = 50
#: Boxes whose children are boxes (ISO/IEC 14496-12 §8.11, HEIF ISO/IEC 23008-12 §9.3); ``meta`` is a full box.
CONTAINERS = {b"meta": 4, b"iprp": 0, b"ipco": 0, b"dinf": 0, b"iref": 0}
#: Statuses a hostile original may get: decoded after all, over a limit, not an image format, undecodable.
CLIENT_ERRORS = {200, 413, 415, 422}


def boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int, int]]:
    """(offset, header length, size) of every ISOBMFF box in ``data[start:end]``, depth first."""
    end = len(data) if end is None else end
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        header = 8
        if size == 1 and offset + 16 <= end:
            size, header = struct.unpack(">Q", data[offset + 8 : offset + 16])[0], 16
        elif size == 0:
            size = end - offset
        if size < header:
            return
        yield offset, header, size
        if kind in CONTAINERS:
            yield from boxes(data, offset + header + CONTAINERS[kind], min(end, offset + size))
        offset += size


def mutate(data: bytes, fmt: str, rng: random.Random) -> tuple[str, bytes]:
    """One mutant of ``data``: (kind, bytes). Kinds: ``flip`` (1-8 bytes set at random, half of
    them in the first 1 KB where the headers are), ``truncate``, and for AVIF/HEIC ``box`` (a box's
    type, size or two payload bytes corrupted; two type bytes set to 0xFF is the issue's case)."""
    out = bytearray(data)
    kinds = ("flip", "truncate", "box", "box") if fmt in ("avif", "heic") else ("flip", "flip", "truncate")
    kind = rng.choice(kinds)
    if kind == "truncate":
        return kind, data[: rng.randrange(8, len(data))]
    if kind == "box":
        offset, header, size = rng.choice(list(boxes(data)))
        target = rng.randrange(3)
        if target == 0:  # the type
            i = offset + 4 + rng.randrange(3)
            out[i] = out[i + 1] = 0xFF
        elif target == 1:  # the size
            out[offset : offset + 4] = struct.pack(">I", rng.choice((0, 1, 7, size - 1, size + 1, 0xFFFFFFFF)))
        else:  # two bytes of the payload
            if size > header + 1:
                i = offset + header + rng.randrange(size - header - 1)
                out[i] = out[i + 1] = 0xFF
        return kind, bytes(out)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(min(1024, len(out))) if rng.random() < 0.5 else rng.randrange(len(out))
        out[i] = 0xFF if rng.random() < 0.5 else rng.randrange(256)
    return kind, bytes(out)


@pytest.fixture(scope="module")
def hostile(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, str, str]]]:
    """A folder of mutants (``{fmt}-{n}.bin``: the extension tells nothing) and a valid JPEG
    (``ok.jpg``); with the list of (key, format, kind)."""
    folder = tmp_path_factory.mktemp("fuzz")
    rng = random.Random(20)
    made = []
    for fmt, seeds in SEEDS.items():
        originals = [(corpus / name).read_bytes() for name in seeds]
        for n in range(MUTANTS_PER_FORMAT):
            kind, data = mutate(originals[n % len(originals)], fmt, rng)
            key = f"{fmt}-{n}.bin"
            (folder / key).write_bytes(data)
            made.append((key, fmt, kind))
    (folder / "ok.jpg").write_bytes((corpus / "giunchedi-portrait.jpg").read_bytes())
    return folder, made


def pixi_mutant(corpus: Path) -> bytes:
    """The corpus' street AVIF with the first two bytes of its ``pixi`` box type set to 0xFF (an
    essential property there: libheif names the unparsable type, raw, in its error text)."""
    data = bytearray((corpus / "street-3082x2048.avif").read_bytes())
    i = data.index(b"pixi")
    data[i] = data[i + 1] = 0xFF
    return bytes(data)


def test_a_crafted_avif_is_a_422_and_the_next_render_is_clean(corpus: Path, tmp_path: Path):
    (tmp_path / "bad.avif").write_bytes(pixi_mutant(corpus))
    (tmp_path / "ok.jpg").write_bytes((corpus / "giunchedi-portrait.jpg").read_bytes())
    with make_client({"h": str(tmp_path)}) as c:
        r = c.get(signed("/w:100/h/bad.avif"))
        assert (r.status_code, r.text) == (422, "the original could not be decoded\n")
        assert r.headers["cache-control"] == "public, max-age=60"
        info = c.get(signed("/info/h/bad.avif"))
        assert info.status_code == 422, info.text
        for width in range(101, 111):
            assert c.get(signed(f"/w:{width}/h/ok.jpg")).status_code == 200
        ready = c.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert all(ready.json()["encoders"].values())


def test_a_crafted_avif_is_a_422_in_the_vision_decode_too(corpus: Path, tmp_path: Path, models: dict[str, Path]):
    (tmp_path / "bad.avif").write_bytes(pixi_mutant(corpus))
    (tmp_path / "ok.jpg").write_bytes((corpus / "giunchedi-portrait.jpg").read_bytes())
    with make_client({"h": str(tmp_path)}, face_model=str(models["face"])) as c:
        r = c.get(signed("/g:face/w:100/h:100/fit:cover/h/bad.avif"))
        assert r.status_code == 422, r.text
        assert c.get(signed("/g:face/w:100/h:100/fit:cover/h/ok.jpg")).status_code == 200


def test_fuzzed_originals_are_never_5xx_and_leave_nothing_behind(hostile):
    """Every mutant answers 200/413/415/422 (never 5xx), and the valid render right after it (a new
    derivative each time, so no cache answers) is a 200; ``/readyz`` stays 200 throughout."""
    folder, made = hostile
    statuses: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    with make_client({"h": str(folder)}) as c:
        for i, (key, fmt, kind) in enumerate(made):
            options = ("w:64", "w:64/rot:90/f:png", "w:48/h:48/fit:cover/g:smart/f:webp", "flip:v/w:80/f:avif")[i % 4]
            r = c.get(signed(f"/{options}/h/{key}"))
            statuses[fmt][r.status_code] += 1
            assert r.status_code in CLIENT_ERRORS, (key, kind, r.status_code, r.text)
            if i % 10 == 0:
                info = c.get(signed(f"/info/h/{key}"))
                assert info.status_code in CLIENT_ERRORS, (key, kind, info.status_code, info.text)
            ok = c.get(signed(f"/w:{64 + i % 50}/v:{i}/h/ok.jpg"))
            assert ok.status_code == 200, (key, kind, ok.status_code, ok.text)
            if i % 25 == 0:
                assert c.get("/readyz").status_code == 200, key
    assert sum(sum(s.values()) for s in statuses.values()) == len(SEEDS) * MUTANTS_PER_FORMAT
    # the fuzz reaches the decoders: most mutants of every format are refused, some still decode
    for fmt, seen in statuses.items():
        assert seen[422] + seen[415] + seen[413] >= MUTANTS_PER_FORMAT // 5, (fmt, dict(seen))
