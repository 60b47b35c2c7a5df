"""The formats libvips lacks here, decoded through Pillow (edgeproxy/render/pillow.py), and JPEG XL output.

Runs in both installs: the default one (BMP, ICO, PSD and JPEG 2000 decode; HEIC and JPEG XL are a
415 naming the extra) and with ``pip install '.[heif,jxl]'`` (everything decodes; ``f:jxl`` works).
.ci/run runs the tests marked ``extras`` (those whose answers depend on an extra) a second time with
the extras and ``EDGEPROXY_TEST_EXTRAS=1``, which makes a missing extra an error rather than the
default install's answers. Every 200 is decoded and checked
for size, orientation and alpha; hostile files must be a 413 or 422, not a hang, a 500 or a spike
in memory.
"""

from __future__ import annotations

import io
import itertools
import struct
import zlib
from pathlib import Path

import httpx
import pytest
import pyvips
from PIL import Image

from bench.servers import start_edgeproxy
from edgeproxy.render import pillow
from testkit.app import KEY, make_client, make_served, signed
from testkit.env import EXTRAS
from testkit.images import decode, loader_format
from testkit.net import free_port

#: Corpus files and what they are, checked by hand: upright width × height, an alpha band, and the
#: extra needed (None: every install).
FILES = {
    "bmp-24.bmp": (200, 200, False, None),
    "favicon-libvips.ico": (48, 48, True, None),
    "1x1.psd": (1, 1, False, None),
    "image.jp2": (300, 400, False, None),
    "image.heic": (256, 256, False, "heif"),
    "winter.heic": (1440, 960, False, "heif"),
    "gopher-alpha.heif": (202, 259, True, "heif"),
    "test.jxl": (1200, 720, False, "jxl"),
}
TRANSPARENT = {"gopher-alpha.heif"}  # its background is transparent (the icon's alpha band is all 255)
NEEDS = {
    "heif": "input format heif needs the [heif] extra: pip install 'edgeproxy[heif]'\n",
    "jxl": "input format jxl needs the [jxl] extra: pip install 'edgeproxy[jxl]'\n",
}
needs_heif = pytest.mark.skipif(
    not EXTRAS["heif"], reason="the [heif] extra (pillow-heif) is not installed; the second pass of .ci/run installs it"
)
needs_jxl = pytest.mark.skipif(
    not EXTRAS["jxl"],
    reason="the [jxl] extra (pillow-jxl-plugin) is not installed; the second pass of .ci/run installs it",
)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(client, folder, app): edgeproxy serving a folder the tests write files into as origin ``t``.
    (The corpus' files are origin ``demo`` of the ``client`` fixture.)"""
    folder = tmp_path_factory.mktemp("formats")
    with make_served({"t": str(folder)}) as (client, app):
        yield client, folder, app


def mean_difference(a: pyvips.Image, b: pyvips.Image) -> float:
    """Mean absolute difference per sample (0..255) of two images of one size, alpha dropped."""
    assert (a.width, a.height) == (b.width, b.height)
    a, b = (image.flatten() if image.hasalpha() else image for image in (a, b))
    return (a.colourspace("srgb") - b.colourspace("srgb")).abs().avg()


@pytest.mark.parametrize(
    "name", [pytest.param(name, marks=pytest.mark.extras) if FILES[name][3] else name for name in FILES]
)
def test_every_corpus_file_of_these_formats_renders_upright_with_its_alpha(client, corpus: Path, name):
    width, height, alpha, extra = FILES[name]
    r = client.get(signed(f"/w:120/f:png/demo/{name}"))
    if extra and not EXTRAS[extra]:
        assert (r.status_code, r.text) == (415, NEEDS[extra])
        assert r.headers["cache-control"] == "public, max-age=60"
        return
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    image = decode(r.content)
    expected = (120, round(height * 120 / width)) if width > 120 else (width, height)  # fit inside, no enlarge
    assert (loader_format(image), image.width, image.height) == ("png", *expected)
    assert image.hasalpha() == alpha
    if name in TRANSPARENT:  # transparent background, opaque subject: the alpha came through, not a flat 255
        band = image[image.bands - 1]
        assert (band.min(), band.max()) == (0, 255)


@pytest.mark.parametrize("name", ["bmp-24.bmp", "favicon-libvips.ico", "image.jp2", "1x1.psd"])
def test_lossless_output_is_the_decoders_pixels_exactly(client, corpus: Path, name):
    """At the original size into PNG, nothing may change a pixel: rows, bands, order and alpha."""
    r = client.get(signed(f"/f:png/demo/{name}"))
    assert r.status_code == 200, r.text
    with Image.open(corpus / name) as reference:
        reference = reference.convert("RGBA" if "A" in reference.getbands() else "RGB")
    ours = Image.open(io.BytesIO(r.content))
    assert ours.size == reference.size
    assert ours.convert(reference.mode).tobytes() == reference.tobytes()


def test_f_auto_picks_by_accept_and_keeps_the_icon_transparent_for_old_clients(client):
    modern = client.get(signed("/w:32/demo/favicon-libvips.ico"), headers={"Accept": "image/avif,image/webp,*/*"})
    assert (modern.status_code, modern.headers["content-type"], modern.headers["vary"]) == (200, "image/avif", "Accept")
    old = client.get(signed("/w:32/demo/favicon-libvips.ico"), headers={"Accept": "*/*"})
    image = decode(old.content)
    assert (old.headers["content-type"], image.width, image.height, image.hasalpha()) == ("image/png", 32, 32, True)


def test_crop_and_smart_gravity_work_on_pillow_decoded_sources(client):
    crop = decode(client.get(signed("/c:0.5:0:0.5:1/w:100/f:png/demo/image.jp2")).content)
    assert (crop.width, crop.height) == (100, 267)
    smart = decode(client.get(signed("/w:100/h:100/fit:cover/g:smart/f:png/demo/bmp-24.bmp")).content)
    assert (smart.width, smart.height) == (100, 100)


def test_sixteen_bit_grey_jpeg2000_is_scaled_not_clipped(served):
    client, folder, _ = served
    gradient = Image.new("I;16", (256, 4))
    gradient.putdata([x * 257 for x in range(256)] * 4)  # 0..65535 across
    gradient.save(folder / "grey16.jp2")
    image = decode(client.get(signed("/f:png/t/grey16.jp2")).content)
    assert (image.width, image.height, image.bands) == (256, 4, 1)
    row = [image(x, 0)[0] for x in (0, 64, 128, 255)]
    assert row == [0, 64, 128, 255]  # clipping 16 bits to 8 would give [0, 255, 255, 255]


@pytest.mark.extras
@needs_heif
def test_iphone_style_heic_in_display_p3_with_exif_orientation_6_renders_upright_and_colour_managed(
    served, client, corpus
):
    """The corpus has no iPhone HEIC, so one is made here from its iPhone JPEG as an iPhone writes it:
    HEVC, Display P3 profile, stored sideways with orientation 6 (pillow-heif writes it as irot)."""
    t, folder, _ = served
    with Image.open(corpus / "iphone-p3-orientation-6.jpg") as photo:
        exif, profile = photo.getexif(), photo.info["icc_profile"]
        assert exif[0x0112] == 6
        stored = photo.reduce(4)  # 1008 × 756, sideways
        stored.save(folder / "iphone.heic", quality=90, exif=exif.tobytes(), icc_profile=profile)
        stored.info.pop("icc_profile", None)
        stored.save(folder / "iphone-untagged.heic", quality=90, exif=exif.tobytes())
    reference = decode(client.get(signed("/w:300/f:png/demo/iphone-p3-orientation-6.jpg")).content)
    ours = decode(t.get(signed("/w:300/f:png/t/iphone.heic")).content)
    untagged = decode(t.get(signed("/w:300/f:png/t/iphone-untagged.heic")).content)
    assert (ours.width, ours.height) == (reference.width, reference.height) == (300, 400)  # upright
    # P3 pixels read as if they were sRGB are duller: the profile must have been applied.
    print("P3", mean_difference(ours, reference), mean_difference(untagged, reference))
    assert mean_difference(ours, reference) < 2.5 < mean_difference(untagged, reference)


@pytest.mark.extras
@needs_jxl
def test_jpeg_xl_transcoded_from_a_sideways_jpeg_renders_upright(served, client, corpus):
    t, folder, _ = served
    with Image.open(corpus / "landscape-orientation-6.jpg") as photo:
        assert (photo.size, photo.getexif()[0x0112]) == ((400, 600), 6)
        photo.save(folder / "sideways.jxl", lossless_jpeg=True)  # JPEG recompression: the JPEG inside
    reference = decode(client.get(signed("/w:300/f:png/demo/landscape-orientation-6.jpg")).content)
    ours = decode(t.get(signed("/w:300/f:png/t/sideways.jxl")).content)
    assert (ours.width, ours.height) == (reference.width, reference.height) == (300, 200)
    assert mean_difference(ours, reference) < 4  # 180° off (orientation 8 for 6) differs by about 50


@pytest.mark.extras
@needs_jxl
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA"])
@pytest.mark.parametrize("size", [(1, 1), (8, 8), (257, 100), (1200, 720), (640, 360), (333, 4000)])
def test_jpeg_xl_header_parser_agrees_with_libjxl(mode, size):
    """edgeproxy reads JPEG XL sizes itself (the plugin decodes everything while opening a file)."""
    out = io.BytesIO()
    Image.new(mode, size).save(out, "JXL", quality=50, effort=1, use_container=size[0] % 2 == 0)
    header = pillow.read_header(out.getvalue(), "jxl")
    assert (header.width, header.height, header.alpha) == (*size, mode.endswith("A"))
    assert pillow.decode(out.getvalue(), "jxl").width == size[0]


# -- JPEG XL output ------------------------------------------------------------------------------


@pytest.mark.extras
def test_f_jxl_answers_jpeg_xl_or_names_the_extra(photo_client):
    r = photo_client.get(signed("/w:200/f:jxl/demo/photo.jpg"))
    if not EXTRAS["jxl"]:
        message = "output format jxl needs the [jxl] extra: pip install 'edgeproxy[jxl]'\n"
        assert (r.status_code, r.text) == (415, message)
        return
    assert (r.status_code, r.headers["content-type"], r.content[:2]) == (200, "image/jxl", b"\xff\x0a")
    assert "vary" not in r.headers  # explicit format: the URL is the contract
    with Image.open(io.BytesIO(r.content)) as image:
        assert (image.size, image.mode) == ((200, 133), "RGB")


@pytest.mark.extras
@needs_jxl
def test_jpeg_xl_output_keeps_alpha(photo_client):
    r = photo_client.get(signed("/w:100/f:jxl/demo/alpha.png"))
    with Image.open(io.BytesIO(r.content)) as image:
        assert image.mode == "RGBA" and image.getextrema()[3] == (0, 255)


JXL_ACCEPT = "image/jxl,image/avif,image/webp,image/apng,*/*;q=0.8"  # what a JPEG XL browser sends


@pytest.mark.extras
def test_f_auto_chooses_jpeg_xl_only_when_enabled(photos: Path):
    path = signed("/w:200/demo/photo.jpg")
    with make_client({"demo": str(photos)}) as off:
        assert off.get(path, headers={"Accept": JXL_ACCEPT}).headers["content-type"] == "image/avif"
    if not EXTRAS["jxl"]:
        with make_client({"demo": str(photos)}, auto_jxl=True) as on:  # no encoder: AVIF, not an error
            assert on.get(path, headers={"Accept": JXL_ACCEPT}).headers["content-type"] == "image/avif"
        return
    with make_client({"demo": str(photos)}, auto_jxl=True) as on:
        jxl = on.get(path, headers={"Accept": JXL_ACCEPT})
        assert (jxl.headers["content-type"], jxl.headers["vary"]) == ("image/jxl", "Accept")
        refused = on.get(path, headers={"Accept": "image/jxl;q=0,image/avif,image/webp"})
        assert refused.headers["content-type"] == "image/avif"
        assert refused.headers["etag"] != jxl.headers["etag"]
        avif = on.get(path, headers={"Accept": "image/avif,image/webp,*/*"})
        assert avif.headers["etag"] == refused.headers["etag"]  # jxl;q=0 is the avif+webp bucket


# -- Hostile files -------------------------------------------------------------------------------


def bmp_header(width: int, height: int) -> bytes:
    """BITMAPFILEHEADER + BITMAPINFOHEADER for 24-bit pixels, and 16 bytes of them."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info) + 16, 0, 0, 14 + len(info)) + info + b"\x00" * 16


def png(width: int, height: int) -> bytes:
    """A PNG whose IHDR says ``width`` × ``height`` and whose data is a few bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def ico(entry_size: int, image: bytes) -> bytes:
    """An icon file with one entry saying ``entry_size`` (0 = 256) around ``image``."""
    return (
        struct.pack("<HHH", 0, 1, 1)
        + struct.pack("<BBBBHHII", entry_size, entry_size, 0, 0, 1, 32, len(image), 22)
        + image
    )


def psd(width: int, height: int) -> bytes:
    """A PSD header for 8-bit RGB, raw pixels, and almost no pixel data."""
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, height, width, 8, 3)
    return header + struct.pack(">III", 0, 0, 0) + struct.pack(">H", 0) + b"\x00" * 30


def jxl(width_minus_1: int) -> bytes:
    """A JPEG XL codestream whose SizeHeader says (w + 1)² with an 18-bit size, then garbage."""
    # small = 0; U32 selector 2 (18 bits), LSB first; ratio 1 (1:1); ImageMetadata.all_default = 1
    bits = [0] + [0, 1] + [(width_minus_1 >> i) & 1 for i in range(18)] + [1, 0, 0] + [1]
    data = bytearray(b"\xff\x0a")
    for start in range(0, len(bits), 8):
        data.append(sum(bit << i for i, bit in enumerate(bits[start : start + 8])))
    return bytes(data) + b"\x5a" * 64


def hostile(corpus: Path) -> dict[str, tuple[bytes, int, str]]:
    """name -> (bytes, status, answer) for files built to cost memory or time."""
    winter = (corpus / "winter.heic").read_bytes()
    bomb = "the original has 4294836225 pixels (65535x65535x1); the limit is 50000000\n"
    return {
        "bomb.bmp": (bmp_header(65535, 65535), 413, bomb),
        "top-down-bomb.bmp": (bmp_header(65535, -65535), 413, bomb),
        "bomb-png.ico": (ico(0, png(65535, 65535)), 413, bomb),
        "lying-png.ico": (
            ico(16, png(65535, 65535)),
            422,
            "the original could not be decoded: the icon directory says 16x16, its image 65535x65535\n",
        ),
        "bomb-dib.ico": (ico(0, struct.pack("<IiiHH", 40, 65535, 2 * 65535, 1, 32) + bytes(64)), 413, bomb),
        "huge.psd": (psd(30000, 30000), 413, bomb.replace("4294836225", "900000000").replace("65535", "30000")),
        "lying.psd": (psd(4000, 3000), 422, None),
        "truncated.jp2": ((corpus / "image.jp2").read_bytes()[:700], 422, None),
        "truncated.heic": (winter[: len(winter) // 3], 422, None),
        "bomb.jxl": (jxl(65534), 413, bomb),
        "truncated.jxl": ((corpus / "test.jxl").read_bytes()[:5000], 422, None),
    }


def check_hostile_answer(r: httpx.Response, name: str, status: int, text: str | None) -> None:
    """``r`` is the answer a hostile file ``name`` must get: ``status`` and ``text`` (None: any), or
    without its optional decoder a 415 naming the extra (a 422 when even libvips' header read fails)."""
    extra = "heif" if name.endswith(".heic") else "jxl" if name.endswith(".jxl") else None
    if extra and not EXTRAS[extra]:
        assert r.status_code in (415, 422), (name, r.status_code, r.text)
        assert r.status_code == 422 or r.text == NEEDS[extra], (name, r.text)
        return
    assert r.status_code == status, (name, r.status_code, r.text)
    assert text is None or r.text == text, (name, r.text)
    if status == 422:
        assert r.text.startswith("the original could not be decoded"), (name, r.text)
    assert r.headers["cache-control"] == "public, max-age=60"


@pytest.mark.extras
@pytest.mark.timeout(120)
def test_hostile_files_are_refused_from_the_header_or_fail_cleanly(served, corpus: Path):
    t, folder, _ = served
    for name in FILES:
        (folder / f"ok-{name}").write_bytes((corpus / name).read_bytes())
    cases = hostile(corpus)
    for name, (data, _, _) in cases.items():
        (folder / name).write_bytes(data)
    for name, (_, status, text) in cases.items():
        check_hostile_answer(t.get(signed(f"/w:100/f:png/t/{name}")), name, status, text)
    # Memory, in a proxy process of its own as deployed (this test process holds every earlier test's
    # state, which made its resident size drift by tens of MiB a round, hostile files or not).
    server = start_edgeproxy(folder, free_port(), KEY, {})
    try:
        with httpx.Client(base_url=server.base, timeout=30) as c:
            # Each decoder once first, on a real file, in the server's render threads: their set-up
            # (libraries' state, the threads' malloc arenas) is not what a hostile file costs.
            for name in FILES:
                assert c.get(signed(f"/w:100/f:png/bench/ok-{name}")).status_code in (200, 415)
            before = server.rss() / 2**20
            readings = []  # the server's resident MiB after each round
            for _ in range(4):
                for name, (_, status, text) in cases.items():
                    check_hostile_answer(c.get(signed(f"/w:100/f:png/bench/{name}")), name, status, text)
                readings.append(server.rss() / 2**20)
    finally:
        server.stop()
    # The first round may give render threads their malloc arenas (tens of MiB, once); a decoded bomb
    # would be GiB. After it, hostile files must cost nothing that stays: a leak grows every round, a
    # new arena or a fragmented heap is one step. So the median of the three rounds' growth must be
    # small, and the whole bounded.
    assert readings[0] - before < 256, f"the first round took {readings[0] - before:.0f} MiB: {readings}"
    steps = sorted(after - before for before, after in itertools.pairwise(readings))
    assert steps[1] < 12, f"memory grew by {steps[1]:.0f} MiB a round ({len(cases)} hostile requests): {readings}"
    assert readings[-1] - readings[0] < 96, f"memory grew over the rounds: {readings}"


def test_a_format_left_out_of_allowed_input_formats_never_reaches_pillow(tmp_path: Path):
    (tmp_path / "broken.psd").write_bytes(b"8BPS\x00\x01" + b"\xff" * 20)  # Pillow's header parser fails
    Image.new("RGB", (20, 10), (200, 100, 50)).save(tmp_path / "ok.bmp")
    with make_client({"t": str(tmp_path)}) as everything:
        assert everything.get(signed("/w:10/t/broken.psd")).status_code == 422
    with make_client({"t": str(tmp_path)}, allowed_input_formats=["jpeg", "png", "bmp"]) as narrow:
        refused = narrow.get(signed("/w:10/t/broken.psd"))
        assert (refused.status_code, refused.text) == (415, "input format psd is not allowed\n")
        assert narrow.get(signed("/w:10/f:png/t/ok.bmp")).status_code == 200
