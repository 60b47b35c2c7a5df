"""The libvips adapter (``edgeproxy.render.vips``) function by function, on synthetic images: header
facts, decoding at size, per-frame operations on animations, colour, painting, encoding, and the one
place where decoder failures become a request's 422 or 504."""

from __future__ import annotations

import gc
import io
import subprocess
import sys
import time

import pytest
import pyvips
from PIL import Image

from edgeproxy.errors import ProxyError, too_large
from edgeproxy.render import encoding, failures, icc, load, pillow, source, vips
from edgeproxy.render.geometry import Box, Canvas
from edgeproxy.render.obscure import Grid, Placement
from testkit import coordinates, images

OPTIONS = encoding.EncodeOptions(
    avif_effort=0, webp_effort=0, jpeg_progressive=False, png_compression=1, jxl_effort=1, threads=1
)
PHOTO = images.photo(320, 200, seed=1)
JPEG = images.encode(PHOTO, "jpeg")


def diff(a: pyvips.Image, b: pyvips.Image) -> float:
    """Mean absolute difference of two images of one size, in levels."""
    assert (a.width, a.height, a.bands) == (b.width, b.height, b.bands)
    return (a.copy_memory().cast("float") - b.copy_memory().cast("float")).abs().avg()


def error_buffer() -> bytes:
    """What libvips' process-wide error buffer holds now."""
    return pyvips.ffi.string(pyvips.vips_lib.vips_error_buffer())


# -- probe ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (JPEG, ("jpeg", 320, 200, 1, False, False, False)),
        (images.encode(images.with_alpha(PHOTO), "png"), ("png", 320, 200, 1, True, False, False)),
        (images.encode(PHOTO, "webp"), ("webp", 320, 200, 1, False, False, False)),
        (images.encode(images.animation(60, 40, 3), "gif"), ("gif", 60, 40, 3, True, True, False)),
        (images.encode(images.animation(60, 40, 2, alpha=True), "webp"), ("webp", 60, 40, 2, True, True, False)),
        (images.encode(PHOTO, "avif"), ("avif", 320, 200, 1, False, False, True)),
        (images.encode(PHOTO, "tiff"), ("tiff", 320, 200, 1, False, False, False)),
        (images.svg(200, 100), ("svg", 200, 100, 1, True, False, False)),
        (images.oriented_jpeg(PHOTO, 8), ("jpeg", 320, 200, 1, False, False, False)),  # upright: sides swapped back
    ],
)
def test_probe_reads_format_size_frames_and_alpha(data: bytes, expected: tuple):
    info = source.probe(data)
    assert (info.format, info.width, info.height, info.pages, info.alpha, info.animated, info.pillow) == expected


def test_probe_reads_the_icc_profile_and_whether_it_needs_a_transform():
    plain = source.probe(JPEG)
    assert (plain.icc, plain.colour_manage) == (None, False)
    srgb = source.probe(PHOTO.icc_transform("srgb", input_profile="srgb").jpegsave_buffer())
    assert srgb.icc is not None and not srgb.colour_manage  # an sRGB profile: no costly no-op transform
    p3 = source.probe(images.encode(images.tagged(PHOTO, "p3"), "jpeg"))
    assert p3.icc is not None and p3.colour_manage


def test_probe_sends_the_formats_libvips_lacks_to_pillow_unless_not_allowed():
    buffer = io.BytesIO()
    Image.new("RGB", (30, 20), (10, 20, 30)).save(buffer, "BMP")
    info = source.probe(buffer.getvalue())
    assert (info.format, info.width, info.height, info.pillow, info.colour_manage) == ("bmp", 30, 20, True, True)
    with pytest.raises(ProxyError) as refused:
        source.probe(buffer.getvalue(), frozenset({"jpeg", "png"}))
    assert (refused.value.status, refused.value.message) == (415, "input format bmp is not allowed")


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (b"", 422, "the original is empty"),
        (b"not an image at all", 422, "the original could not be decoded"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", 415, "input format pdf is not supported"),
        (b"8BPS\x00\x02" + b"\x00" * 40, 415, "input format psb is not supported"),
    ],
)
def test_probe_refuses_clearly(data: bytes, status: int, message: str):
    with pytest.raises(ProxyError) as info:
        source.probe(data)
    assert (info.value.status, info.value.message) == (status, message)
    assert error_buffer() == b""


def test_icc_descriptions():
    srgb = pyvips.Image.black(1, 1, bands=3).icc_transform("srgb", input_profile="srgb").get("icc-profile-data")
    p3 = images.tagged(images.photo(4, 4), "p3").get("icc-profile-data")
    assert icc.is_srgb_profile(srgb) and "sRGB" in icc.icc_description(srgb)
    assert not icc.is_srgb_profile(p3) and icc.icc_description(p3)
    assert icc.icc_description(b"\x00" * 10) is None
    assert icc.icc_description(b"garbage" * 40) is None


# -- decoding at size ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("shrink", [0, 2])
def test_thumbnail_decodes_at_exactly_the_size_asked(shrink: int):
    image = vips.thumbnail(JPEG, 160, 100, animated=False, colour_manage=False, jpeg_shrink=shrink)
    assert (image.width, image.height) == (160, 100)
    assert diff(image, PHOTO.resize(0.5)) < 4  # the same picture, whichever decode scale


def test_thumbnail_turns_exif_orientation_upright_and_keeps_every_frame():
    upright = vips.thumbnail(images.oriented_jpeg(PHOTO, 6), 160, 100, animated=False, colour_manage=False)
    assert diff(upright, PHOTO.resize(0.5)) < 4
    strip = vips.thumbnail(
        images.encode(images.animation(60, 40, 3), "gif"), 30, 20, animated=True, colour_manage=False
    )
    assert (strip.width, strip.height, vips.page_height(strip)) == (30, 60, 20)


def test_thumbnail_transforms_a_wide_gamut_profile_to_srgb():
    vivid = coordinates.image(320, 200)  # saturated reds and greens, where P3 and sRGB differ most
    p3 = images.encode(images.tagged(vivid, "p3"), "jpeg")
    managed = vips.thumbnail(p3, 160, 100, animated=False, colour_manage=True).copy_memory()
    naive = vips.thumbnail(p3, 160, 100, animated=False, colour_manage=False).copy_memory()
    reference = vivid.resize(0.5)
    assert diff(managed, reference) < 3 and diff(naive, reference) > 2 * diff(managed, reference) + 3


def test_load_region_keeps_a_region_of_the_upright_original():
    picture = coordinates.image(400, 300)
    stored = coordinates.stored(picture, 6).jpegsave_buffer(Q=95, subsample_mode="off")
    region = vips.load_region(stored, Box(100, 50, 200, 100), animated=False)
    assert (region.width, region.height) == (200, 100)
    assert diff(region, picture.crop(100, 50, 200, 100)) < 3


def test_load_pillow_decodes_to_libvips_with_the_header_size():
    avif = images.encode(PHOTO, "avif")
    image = vips.load_pillow(avif, source.probe(avif))
    assert (image.width, image.height, image.bands, image.format) == (320, 200, 3, "uchar")
    assert diff(image, PHOTO) < 8  # AVIF at Q 70
    buffer = io.BytesIO()
    Image.new("RGB", (30, 20), (10, 20, 30)).save(buffer, "BMP")
    truncated = buffer.getvalue()[:100]
    with pytest.raises(ProxyError) as info:
        vips.load_pillow(truncated, source.SourceInfo("bmp", 30, 20, 1, False, 1, False, True, True))
    assert info.value.status == 422


def test_resize_works_per_frame():
    strip = coordinates.animation(80, 60, 3)
    out = vips.resize(strip, 40, 30, colour_manage=False)
    assert (out.width, out.height, vips.page_height(out)) == (40, 90, 30)
    for i, frame in enumerate(coordinates.frames(out)):  # frames in order, each resized whole
        assert abs(frame[..., 2].mean() - coordinates.FRAME_BLUE[i]) < 2


# -- geometry per frame --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("angle", "flip"), [(90, ""), (180, ""), (270, ""), (0, "h"), (0, "v"), (90, "hv")])
def test_rotate_flip_and_crop_act_on_every_frame(angle: int, flip: str):
    strip = coordinates.animation(80, 60, 3)
    turned = vips.rotate_flip(strip, angle, flip)
    width, height = (60, 80) if angle in (90, 270) else (80, 60)
    assert (turned.width, vips.page_height(turned), turned.height) == (width, height, 3 * height)
    options = "/".join(filter(None, [f"rot:{angle}" if angle else "", f"flip:{flip}" if flip else ""]))
    spec, plan = coordinates.planned(options, 80, 60)
    for i, frame in enumerate(coordinates.frames(turned)):
        assert coordinates.mismatch(frame, coordinates.expected(spec, plan, 80, 60, frame=i)) < 1
    cropped = vips.crop(strip, Box(10, 5, 40, 30))
    assert (cropped.width, cropped.height, vips.page_height(cropped)) == (40, 90, 30)


def test_rotate_flip_with_nothing_to_do_is_the_same_image():
    assert vips.rotate_flip(PHOTO, 0, "") is PHOTO


def test_page_height_ignores_a_page_height_that_does_not_divide_the_image():
    odd = PHOTO.copy()
    odd.set_type(pyvips.GValue.gint_type, "page-height", 77)
    assert vips.page_height(odd) == 200
    assert vips.page_height(coordinates.animation(10, 8, 4)) == 8


def test_blur_and_sharpen_keep_frames():
    strip = coordinates.animation(40, 30, 2)
    for out in (vips.blur(strip, 2), vips.sharpen(strip, 1)):
        assert (out.width, out.height, vips.page_height(out)) == (40, 60, 30)


# -- colour --------------------------------------------------------------------------------------------------


def test_pad_adds_alpha_for_a_see_through_background_and_greys_a_colour_for_grey_images():
    padded = vips.pad(PHOTO, Canvas(400, 300, 40, 50), (255, 0, 0, 128))
    assert (padded.width, padded.height, padded.bands) == (400, 300, 4)
    assert [round(v) for v in padded(0, 0)] == [255, 0, 0, 128]
    assert padded(200, 150)[3] == 255  # the image itself: opaque
    opaque = vips.pad(PHOTO, Canvas(400, 300, 40, 50), (0, 0, 255, 255))
    assert (opaque.bands, [round(v) for v in opaque(0, 0)]) == (3, [0, 0, 255])
    grey = vips.pad(images.grey(PHOTO), Canvas(400, 300, 40, 50), (255, 0, 0, 255))
    assert (grey.bands, round(grey(0, 0)[0])) == (1, 85)  # the mean of R, G and B


def test_flatten_and_to_srgb():
    alpha = images.with_alpha(PHOTO)
    flat = vips.flatten(alpha, (0, 255, 0, 255))
    assert (flat.bands, [round(v) for v in flat(0, 0)]) == (3, [0, 255, 0])
    assert vips.flatten(PHOTO, (0, 0, 0, 255)) is PHOTO
    assert vips.to_srgb(PHOTO) is PHOTO
    deep = vips.to_srgb(PHOTO.colourspace("rgb16"))
    assert (deep.format, deep.interpretation) == ("uchar", "srgb") and diff(deep, PHOTO) < 1
    grey16 = vips.to_srgb(images.grey(PHOTO).colourspace("grey16"))
    assert (grey16.format, grey16.interpretation, grey16.bands) == ("uchar", "b-w", 1)
    cmyk = vips.to_srgb(images.tagged(PHOTO, "cmyk"))
    assert (cmyk.format, cmyk.interpretation, cmyk.bands) == ("uchar", "srgb", 3)


def test_paint_draws_each_grid_where_its_placement_says_on_every_frame():
    strip = coordinates.animation(80, 60, 2)  # RGBA
    red = Grid(Box(0.0, 0.0, 1.0, 1.0), 1, 1, bytes([255, 0, 0]), smooth=False)
    at = Placement(left=10, top=10, width=20, height=15, x_scale=0.01, y_scale=0.01, x_offset=0.0, y_offset=0.0)
    painted = vips.paint(strip, [(red, at)])
    assert (painted.width, painted.height, painted.bands) == (80, 120, 4)
    for top in (0, 60):
        assert [round(v) for v in painted(15, top + 15)] == [255, 0, 0, 255]  # painted, alpha kept
        assert painted(5, top + 5)[:3] == strip(5, top + 5)[:3]  # outside: untouched
    assert vips.paint(strip, []) is strip


def test_cell_means_of_the_flat_srgb_decode_are_the_mean_colour_of_each_cell():
    two = images.flat(80, 40, (200, 40, 10)).insert(images.flat(40, 40, (0, 100, 250)), 40, 0)
    data = two.pngsave_buffer()
    cells = bytes(vips.cell_means(load.flat_srgb(data, source.probe(data), 32, 16), 16))
    assert len(cells) == 2 * 1 * 3
    assert all(abs(got - want) <= 1 for got, want in zip(cells, [200, 40, 10, 0, 100, 250], strict=True)), list(cells)
    alpha = images.with_alpha(images.flat(64, 64, (0, 0, 0))).pngsave_buffer()  # corners onto white
    corner = bytes(vips.cell_means(load.flat_srgb(alpha, source.probe(alpha), 64, 64), 16))[:3]
    assert min(corner) > 100


def test_attention_centre_and_rgb_array():
    subject = images.flat(300, 200, (40, 40, 40)).insert(images.flat(30, 30, (250, 180, 140)), 220, 40)
    x, y = vips.attention_centre(subject, 100, 100)
    assert 200 <= x <= 270 and 20 <= y <= 90  # the only thing to look at
    grey = vips.rgb_array(images.grey(PHOTO))
    rgba = vips.rgb_array(images.with_alpha(PHOTO))
    assert grey.shape == rgba.shape == (200, 320, 3) and str(grey.dtype) == "uint8"


# -- encoding ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "loader"), [("jpeg", "jpeg"), ("png", "png"), ("webp", "webp"), ("avif", "heif"), ("gif", "gif")]
)
def test_encode_every_format_and_strip_metadata(fmt: str, loader: str):
    tagged = PHOTO.copy()
    tagged.set_type(pyvips.GValue.gstr_type, "exif-ifd0-Artist", "someone")
    body = encoding.encode(tagged, fmt, 80, True, OPTIONS)
    decoded = images.decode(body)
    assert (images.loader_format(decoded), decoded.width, decoded.height) == (loader, 320, 200)
    assert not decoded.get_typeof("exif-data")


def test_encode_grey_to_avif_and_animations_to_webp_and_gif():
    avif = images.decode(encoding.encode(images.grey(PHOTO), "avif", 60, True, OPTIONS))
    assert (images.loader_format(avif), avif.width) == ("heif", 320)
    strip = images.animation(60, 40, 3)
    for fmt in ("webp", "gif"):
        decoded = images.decode(encoding.encode(strip, fmt, 80, True, OPTIONS))
        assert (decoded.get("n-pages"), images.page_height(decoded)) == (3, 40), fmt


@pytest.mark.extras
def test_encode_jxl_or_it_is_not_offered():
    if pillow.missing_extra("jxl") is not None:
        assert "jxl" not in encoding.check_encoders(OPTIONS)
        return
    body = encoding.encode(PHOTO, "jxl", 75, True, OPTIONS)
    assert body[:2] == b"\xff\x0a"
    with Image.open(io.BytesIO(body)) as decoded:
        assert decoded.size == (320, 200)


def test_encode_refuses_an_unknown_format():
    with pytest.raises(ValueError, match="unknown output format bmp"):
        encoding.encode(PHOTO, "bmp", 80, True, OPTIONS)


def test_check_encoders_reports_every_output_format_working():
    result = encoding.check_encoders(OPTIONS)
    assert {"avif", "webp", "jpeg", "png", "gif"} <= set(result) and all(result.values())


# -- failures and deadlines ----------------------------------------------------------------------------------


def test_failures_turns_decoder_errors_into_422_and_clears_libvips_errors():
    with pytest.raises(ProxyError) as info, failures.failures():
        pyvips.Image.new_from_buffer(images.truncated(JPEG, 0.3), "", fail_on="truncated").avg()
    assert (info.value.status, info.value.message) == (422, "the original could not be decoded")
    assert error_buffer() == b""


def test_failures_passes_proxy_errors_and_bugs_through_unchanged():
    with pytest.raises(ProxyError) as info, failures.failures():
        raise too_large("mine")
    assert (info.value.status, info.value.message) == (413, "mine")
    with pytest.raises(KeyError), failures.failures():
        raise KeyError("a bug, not a decoder's failure")


def test_a_deadline_cancels_libvips_work_and_failures_says_504():
    expensive = pyvips.Image.gaussnoise(3000, 3000).gaussblur(20)
    deadline = failures.Deadline(time.monotonic() - 1)
    assert deadline.expired
    started = time.monotonic()
    with pytest.raises(ProxyError) as info:
        vips.in_memory(expensive, deadline)
    assert (info.value.status, info.value.message) == (504, "render deadline exceeded")
    assert time.monotonic() - started < 2  # cancelled, not computed
    assert error_buffer() == b""


def test_an_infinite_deadline_watches_nothing_and_in_memory_computes():
    deadline = failures.Deadline()
    assert not deadline.expired and deadline.watch(PHOTO) is PHOTO
    lazy = PHOTO.resize(0.5)
    computed = vips.in_memory(lazy)
    assert (computed.width, computed.height) == (160, 100) and diff(computed, lazy) == 0


def test_a_deadline_lets_go_of_the_images_it_watched_with_no_gc_pass():
    """A render's watched images go when its ``Deadline`` does, by reference counting: their pixel
    memory does not wait for a cyclic-GC pass (nor is it freed by one, on whichever thread runs it)."""
    gc.collect()
    gc.disable()
    try:
        pixels = vips.in_memory(PHOTO.resize(4))  # 1280 x 800 x 3 bytes that libvips tracks
        deadline = failures.Deadline(time.monotonic() + 60)
        computed = vips.in_memory(pixels, deadline)  # watches them; no libvips operation (none is cached)
        assert (computed.width, computed.height, computed.bands) == (1280, 800, 3)
        held = vips.tracked_memory()
        del pixels, computed, deadline
        assert held - vips.tracked_memory() >= 1280 * 800 * 3
        assert gc.collect() == 0  # nothing was left for a GC pass to free
    finally:
        gc.enable()


def test_tracked_memory_and_version():
    assert vips.tracked_memory() >= 0
    assert vips.version().count(".") == 2 and vips.version().split(".")[0].isdigit()


# -- libvips' log messages -----------------------------------------------------------------------------------

#: A fresh interpreter (an abort is this test's failure, not a dead pytest). It decodes a JPEG that makes
#: libjpeg warn once, counting the warnings pyvips' logger receives; then takes edgeproxy's start-up
#: set-up (``vips.configure``) and has four threads decode, compute and encode that JPEG through the
#: render functions, leaving each image in cyclic garbage (as tracebacks, closures and signal handlers
#: do), with the cyclic GC forced often and pyvips' logger given a handler that runs a GC pass, as any
#: Python code may when its allocations cross the threshold (pytest's capture handler did, in CI).
#: It prints both counts: messages that reached Python before the set-up and after it.
MESSAGES_UNDER_GC = """
import gc, logging, sys, threading, time
import pyvips
from edgeproxy.render import encoding, vips
from edgeproxy.render.failures import Deadline

warned = sys.stdin.buffer.read()
options = encoding.EncodeOptions(0, 0, False, 1, 1, 1)


class Counting(logging.Handler):
    calls = 0

    def emit(self, record):
        Counting.calls += 1


class Collecting(Counting):
    def emit(self, record):
        Counting.calls += 1
        gc.collect()


logger = logging.getLogger("pyvips")
counting = Counting()
logger.addHandler(counting)
vips.thumbnail(warned, 40, 30, animated=False, colour_manage=False).copy_memory()
before = Counting.calls
logger.removeHandler(counting)

vips.configure(4)
Counting.calls = 0
logger.addHandler(Collecting())
gc.set_threshold(10)


def work():
    for _ in range(60):
        image = vips.thumbnail(warned, 40, 30, animated=False, colour_manage=False)
        deadline = Deadline(time.monotonic() + 60)
        encoding.encode(vips.in_memory(image, deadline), "png", 80, True, options, deadline)
        garbage = [image, deadline]
        garbage.append(garbage)


threads = [threading.Thread(target=work) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(before, Counting.calls)
"""


def test_libvips_messages_run_no_python_so_a_gc_pass_cannot_reenter_libvips_from_one():
    """GLib aborts the process when a thread logs while it is inside a log handler (recursion is
    fatal: ``gmessages.c``). pyvips' handler is Python: a GC pass in it (on a libvips worker thread,
    too) finalised an image whose JPEG loader then warned as it closed, and a corrupt original took
    the process down ("Fatal Python error: Aborted" in CI's fuzz run). After ``vips.configure`` no
    libvips message runs Python, and none reaches stderr."""
    sos = JPEG.index(b"\xff\xda")
    warned = JPEG[:sos] + b"\0\0\0\0" + JPEG[sos:]  # "Corrupt JPEG data: 4 extraneous bytes before marker 0xda"
    run = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", MESSAGES_UNDER_GC],
        input=warned,
        capture_output=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr.decode(errors="replace")[:3000]  # GLib's line, then the threads'
    before, after = (int(n) for n in run.stdout.split())
    assert before > 0, "the JPEG made libvips log nothing: the test would prove nothing"
    assert after == 0
    assert run.stderr == b""
