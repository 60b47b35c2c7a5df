"""Each step of the render pipeline (``edgeproxy.render.pipeline``) on its own, without HTTP, on
synthetic originals (``testkit.images``, ``testkit.coordinates``): the steps before it run to set the
context up, then the step runs and its effect is checked on the context: the header facts, the
format chosen, the plan, the decoded image's size and pixels, the encoded bytes.

The HTTP tests (``test_app``, ``test_images``, ``test_render_matrix``) check the same behaviour end
to end; these say which step is wrong when one of them fails.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace

import pytest
import pyvips

from edgeproxy.errors import ProxyError
from edgeproxy.http.negotiate import Negotiated
from edgeproxy.render import encoding, failures, pipeline, vips
from edgeproxy.render.geometry import Box, Canvas
from edgeproxy.render.obscure import Grid
from edgeproxy.url.grammar import parse_options
from edgeproxy.url.spec import Format, Redact
from testkit import bombs, coordinates, images

ALL_INPUTS = frozenset({"jpeg", "png", "webp", "gif", "avif", "heif", "tiff", "svg", "bmp", "ico", "psd", "jp2"})
LIMITS = pipeline.Limits(
    max_source_bytes=10_000_000,
    max_source_pixels=50_000_000,
    max_frames=256,
    max_output_dimension=8192,
    allowed_formats=ALL_INPUTS - {"svg"},
    max_blur_cost=1000,
    trim_max_side=1024,
)
ENCODE = encoding.EncodeOptions(
    avif_effort=0, webp_effort=0, jpeg_progressive=False, png_compression=1, jxl_effort=1, threads=1
)
QUALITY = {"jpeg": 80, "webp": 80, "avif": 60, "jxl": 75}

Step = Callable[[pipeline.Context], None]


def context(
    data: bytes,
    options: str = "",
    *,
    accepts: frozenset[str] = frozenset(),
    limits: pipeline.Limits = LIMITS,
    deadline: float | None = None,
    **analysis: object,
) -> pipeline.Context:
    """A render context for ``data`` and the URL ``options`` (``"w:300/f:png"``), negotiated with
    ``accepts`` (what ``Accept`` allowed for ``f:auto``); ``analysis`` sets the vision fields."""
    spec = parse_options([o for o in options.split("/") if o])
    return pipeline.Context(
        data=data,
        negotiated=Negotiated(spec, accepts, ()),
        limits=limits,
        encode_options=ENCODE,
        default_quality=lambda fmt: QUALITY.get(fmt, 100),
        deadline=time.monotonic() + 30 if deadline is None else deadline,
        **analysis,
    )


def upto(ctx: pipeline.Context, step: Step) -> pipeline.Context:
    """Run the pipeline's steps before ``step`` over ``ctx`` (under ``failures.failures``, as ``run`` does)."""
    for earlier in pipeline.STEPS[: pipeline.STEPS.index(step)]:
        with failures.failures(ctx.watchdog):
            earlier(ctx)
    return ctx


def apply(ctx: pipeline.Context, step: Step) -> pipeline.Context:
    """Run the steps before ``step``, then ``step``."""
    upto(ctx, step)
    with failures.failures(ctx.watchdog):
        step(ctx)
    return ctx


def error_of(ctx: pipeline.Context, step: Step) -> tuple[int, str]:
    """(status, message) of the ProxyError ``step`` raises once the steps before it have run."""
    upto(ctx, step)
    with pytest.raises(ProxyError) as info, failures.failures(ctx.watchdog):
        step(ctx)
    return info.value.status, info.value.message


def diff(a: pyvips.Image, b: pyvips.Image) -> float:
    """Mean absolute difference of two images of one size, in levels (each computed in memory first:
    a step's image may still be a sequential read of the original)."""
    assert (a.width, a.height) == (b.width, b.height)
    return (a.copy_memory().cast("float") - b.copy_memory().cast("float")).abs().avg()


def edges(image: pyvips.Image) -> float:
    """Mean Sobel edge strength of an image's lightness: detail, whatever its colours."""
    return image.copy_memory().colourspace("b-w").sobel().avg()


PHOTO = images.encode(images.photo(800, 533, seed=2), "jpeg")
ALPHA = images.encode(images.with_alpha(images.photo(300, 225)), "png")
GIF = images.encode(images.animation(100, 80, 3), "gif")
#: A coordinate picture (red: the column, green: the row), lossless.
COORDS = coordinates.encode(coordinates.image(400, 300), "png")


# -- probe ---------------------------------------------------------------------------------------------------


def test_probe_reads_the_header_upright():
    info = apply(context(PHOTO), pipeline.probe).info
    assert (info.format, info.width, info.height, info.pages, info.alpha, info.animated) == (
        "jpeg",
        800,
        533,
        1,
        False,
        False,
    )
    sideways = images.oriented_jpeg(images.photo(600, 400), 6)  # stored 400 x 600, shown 600 x 400
    info = apply(context(sideways), pipeline.probe).info
    assert (info.width, info.height, info.orientation) == (600, 400, 6)
    info = apply(context(GIF), pipeline.probe).info
    assert (info.format, info.width, info.height, info.pages, info.animated) == ("gif", 100, 80, 3, True)
    info = apply(context(images.encode(images.photo(64, 48), "avif")), pipeline.probe).info
    assert (info.format, info.pillow) == ("avif", True)  # AVIF decodes through Pillow
    info = apply(context(images.encode(images.tagged(images.photo(64, 48), "p3"), "jpeg")), pipeline.probe).info
    assert info.colour_manage and info.icc is not None


def test_probe_refuses_svg_unless_allowed_and_sanitises_it_when_it_is():
    document = images.svg(200, 100).replace(b"</svg>", b'<script>alert("x")</script></svg>')
    assert error_of(context(document), pipeline.probe) == (415, "input format svg is not allowed")
    allowed = replace(LIMITS, allowed_formats=ALL_INPUTS)
    ctx = apply(context(document, limits=allowed), pipeline.probe)
    assert (ctx.info.format, ctx.info.width, ctx.info.height) == ("svg", 200, 100)
    assert b"script" not in ctx.data and b"circle" in ctx.data  # rebuilt before libvips parsed it


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (b"", 422, "the original is empty"),
        (b"\x00" * 100, 422, "the original could not be decoded"),
        (b"%PDF-1.7\n" + b"\x00" * 100, 415, "input format pdf is not supported"),
    ],
)
def test_probe_refuses_what_it_cannot_read(data: bytes, status: int, message: str):
    assert error_of(context(data), pipeline.probe) == (status, message)


# -- check_limits --------------------------------------------------------------------------------------------


def test_check_limits_refuses_by_pixels_frames_and_format():
    apply(context(PHOTO), pipeline.check_limits)  # within every limit
    bomb = bombs.png(10_000, 6_000)
    assert error_of(context(bomb), pipeline.check_limits) == (
        413,
        "the original has 60000000 pixels (10000x6000x1); the limit is 50000000",
    )
    two_frames = replace(LIMITS, max_frames=2)
    assert error_of(context(GIF, limits=two_frames), pipeline.check_limits) == (
        413,
        "the original has 3 frames; the limit is 2",
    )
    pixels = replace(LIMITS, max_source_pixels=100 * 80 * 3 - 1)  # every frame counts
    assert error_of(context(GIF, limits=pixels), pipeline.check_limits) == (
        413,
        "the original has 24000 pixels (100x80x3); the limit is 23999",
    )
    no_gif = replace(LIMITS, allowed_formats=ALL_INPUTS - {"svg", "gif"})
    assert error_of(context(GIF, limits=no_gif), pipeline.check_limits) == (415, "input format gif is not allowed")


# -- choose_format -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "options", "accepts", "expected", "animated"),
    [
        (PHOTO, "", {"avif", "webp"}, Format.AVIF, False),
        (PHOTO, "", {"webp"}, Format.WEBP, False),
        (PHOTO, "", set(), Format.JPEG, False),
        (ALPHA, "", set(), Format.PNG, False),  # alpha, no modern format accepted: PNG keeps it
        (GIF, "", {"avif", "webp"}, Format.WEBP, True),  # AVIF sequences: larger at the fast tier's effort
        (GIF, "f:avif", {"avif", "webp"}, Format.AVIF, True),  # the URL is the contract: an AVIF sequence
        (GIF, "", set(), Format.GIF, True),
        (GIF, "f:png", {"avif", "webp"}, Format.PNG, False),  # an explicit still format: the first frame
        (PHOTO, "f:webp", set(), Format.WEBP, False),  # the URL is the contract
    ],
)
def test_choose_format(data: bytes, options: str, accepts: set[str], expected: Format, animated: bool):
    ctx = apply(context(data, options, accepts=frozenset(accepts)), pipeline.choose_format)
    assert (ctx.format, ctx.animated) == (expected, animated)


# -- plan_geometry and check_cost ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "resize", "final_crop", "canvas"),
    [
        ("w:300", (300, 200), None, None),
        ("w:300/h:300/fit:cover", (450, 300), Box(75, 0, 300, 300), None),
        ("w:300/h:300/fit:pad", (300, 200), None, Canvas(300, 300, 0, 50)),
        ("w:300/rot:90", (300, 450), None, None),  # the box applies to the rotated image
        ("w:2000", (800, 533), None, None),  # no enlarging
    ],
)
def test_plan_geometry(options: str, resize: tuple[int, int], final_crop, canvas):
    plan = apply(context(PHOTO, options), pipeline.plan_geometry).plan
    assert (plan.resize, plan.final_crop, plan.canvas) == (resize, final_crop, canvas)


def test_check_cost_counts_output_megapixels_frames_and_sigma():
    apply(context(PHOTO, "blur:100/w:1000"), pipeline.check_cost)  # 800 x 533 x 100 / 1e6 = 43
    cheap = replace(LIMITS, max_blur_cost=40)
    assert error_of(context(PHOTO, "blur:100", limits=cheap), pipeline.check_cost) == (
        413,
        "blur:100 on a 800x533 output is 43 megapixel-sigma of work; the limit is max_blur_cost=40",
    )
    tiny = replace(LIMITS, max_blur_cost=1)
    animated = context(GIF, "blur:100", accepts=frozenset({"webp"}), limits=tiny)  # 100 x 80 x 3 frames
    assert error_of(animated, pipeline.check_cost) == (
        413,
        "blur:100 on a 100x80 output of 3 frames is 2 megapixel-sigma of work; the limit is max_blur_cost=1",
    )
    apply(context(PHOTO, "sharpen:5", limits=tiny), pipeline.check_cost)  # sharpen costs what any step does


# -- load_and_resize and materialise -------------------------------------------------------------------------


def test_load_and_resize_decodes_at_the_planned_size():
    ctx = apply(context(PHOTO, "w:200"), pipeline.load_and_resize)
    assert (ctx.image.width, ctx.image.height, ctx.random_access) == (200, 133, False)  # shrink-on-load, sequential
    reference = pyvips.Image.thumbnail_buffer(PHOTO, 200, height=133, size="force")
    assert diff(ctx.image, reference) < 2
    turned = apply(context(PHOTO, "w:200/rot:90"), pipeline.load_and_resize)
    assert (turned.image.width, turned.image.height) == (300, 200)  # loaded before the rotation: sides swapped


def test_load_and_resize_with_a_source_crop_keeps_that_region():
    ctx = apply(context(COORDS, "c:100:50:200:100/w:100"), pipeline.load_and_resize)
    assert (ctx.image.width, ctx.image.height, ctx.random_access) == (100, 50, True)
    spec, plan = coordinates.planned("c:100:50:200:100/w:100", 400, 300)
    actual = coordinates.frames(ctx.image)[0]
    assert coordinates.mismatch(actual, coordinates.expected(spec, plan, 400, 300)) < 2


def test_load_and_resize_through_pillow_is_random_access():
    avif = images.encode(images.photo(300, 400), "avif")
    ctx = apply(context(avif, "w:150"), pipeline.load_and_resize)
    assert (ctx.image.width, ctx.image.height, ctx.random_access) == (150, 200, True)


def test_load_and_resize_keeps_every_frame_of_an_animation():
    ctx = apply(context(GIF, "w:50", accepts=frozenset({"webp"})), pipeline.load_and_resize)
    assert (ctx.image.width, ctx.image.height, vips.page_height(ctx.image)) == (50, 120, 40)


@pytest.mark.parametrize(
    ("options", "materialised"),
    [
        ("w:200", False),
        ("w:200/flip:h", False),  # reads top to bottom: streams
        ("w:200/rot:90", True),
        ("w:200/flip:v", True),  # rows bottom up
        ("w:200/c:0:0:400:300/rot:90", False),  # a source crop decodes whole: already random access
    ],
)
def test_materialise_only_for_out_of_order_reads(options: str, materialised: bool):
    ctx = apply(context(PHOTO, options), pipeline.materialise)
    assert ctx.materialised == materialised
    assert ctx.random_access == (materialised or "c:" in options)


def test_materialise_for_redaction():
    ctx = apply(context(PHOTO, "w:200", redact=Redact.BLUR), pipeline.materialise)
    assert ctx.materialised


# -- redact --------------------------------------------------------------------------------------------------


def grid(box: tuple[float, float, float, float], rgb: tuple[int, int, int]) -> Grid:
    """A one-cell grid of ``rgb`` over ``box`` (x, y, w, h: fractions of the original), pixelated."""
    return Grid(Box(*box), 1, 1, bytes(rgb), smooth=False)


def test_redact_paints_each_face_grid_where_it_lies_in_the_original():
    red = grid((0.25, 0.25, 0.5, 0.5), (255, 0, 0))
    ctx = apply(context(PHOTO, "w:200", redact=Redact.PIXELATE, face_grids=(red,)), pipeline.redact)
    assert [round(v) for v in ctx.image(100, 66)] == [255, 0, 0]  # the middle: inside the box
    assert ctx.image(10, 10)[:3] != [255, 0, 0]  # a corner: outside it
    painted = (ctx.image == [255, 0, 0]).bandand()
    assert painted.avg() / 255 == pytest.approx(0.25, abs=0.02)  # half the width x half the height


def test_redact_washes_the_whole_image_when_moderation_blurs_or_the_detector_failed():
    plain = apply(context(PHOTO, "w:200"), pipeline.redact).image.copy_memory()
    for analysis in ({"moderation_blur": True}, {"redact": Redact.BLUR, "face_grids": None}):
        washed = apply(context(PHOTO, "w:200", **analysis), pipeline.redact).image.copy_memory()
        assert edges(washed) < edges(plain) / 4, analysis  # no detail left, only a colour wash
        assert abs(washed.avg() - plain.avg()) < 10, analysis  # the same colours overall


def test_redact_without_faces_or_moderation_changes_nothing():
    ctx = upto(context(PHOTO, "w:200"), pipeline.redact)
    before = ctx.image
    pipeline.redact(ctx)
    assert ctx.image is before


# -- rotate_flip and final_crop ------------------------------------------------------------------------------


@pytest.mark.parametrize("options", ["rot:90", "rot:180", "rot:270", "flip:h", "flip:v", "rot:90/flip:hv"])
def test_rotate_flip_moves_every_pixel_where_the_plan_says(options: str):
    ctx = apply(context(COORDS, f"w:200/{options}"), pipeline.rotate_flip)
    spec, plan = coordinates.planned(f"w:200/{options}", 400, 300)
    assert (ctx.image.width, ctx.image.height) == plan.resize
    actual = coordinates.frames(ctx.image)[0]
    assert coordinates.mismatch(actual, coordinates.expected(spec, plan, 400, 300)) < 2, options


@pytest.mark.parametrize("gravity", ["north", "se", "west", "fp:0.8:0.3"])
def test_final_crop_keeps_the_planned_window(gravity: str):
    options = f"w:100/h:100/fit:cover/g:{gravity}"
    ctx = apply(context(COORDS, options), pipeline.final_crop)
    spec, plan = coordinates.planned(options, 400, 300)
    assert (ctx.image.width, ctx.image.height) == (100, 100)
    actual = coordinates.frames(ctx.image)[0]
    assert coordinates.mismatch(actual, coordinates.expected(spec, plan, 400, 300)) < 2, gravity


def test_final_crop_with_smart_gravity_moves_the_window_where_libvips_attention_looks():
    # 700 x 1050: fitted to 200 x 300, then a 200 x 200 window is kept (centred: rows 50-249).
    tall = images.encode(images.photo(700, 1050, seed=9, focus=(0.5, 0.2)), "jpeg")
    centred = apply(context(tall, "w:200/h:200/fit:cover"), pipeline.final_crop).image
    smart = apply(context(tall, "w:200/h:200/fit:cover/g:smart"), pipeline.final_crop).image.copy_memory()
    resized = pyvips.Image.thumbnail_buffer(tall, 200, height=300, size="force").copy_memory()
    assert diff(centred, resized.crop(0, 50, 200, 200)) < 2
    attention = pyvips.Image.thumbnail_buffer(tall, 200, height=200, crop="attention")
    assert diff(smart, attention) < 3  # libvips' own attention crop of the same image
    offset = min(range(101), key=lambda top: diff(smart, resized.crop(0, top, 200, 200)))
    assert offset != 50 and diff(smart, resized.crop(0, offset, 200, 200)) < 2  # a window of the resized image, moved


def test_final_crop_of_an_animation_cuts_every_frame_alike():
    ctx = apply(context(GIF, "w:40/h:40/fit:cover", accepts=frozenset({"webp"})), pipeline.final_crop)
    assert (ctx.image.width, ctx.image.height, vips.page_height(ctx.image)) == (40, 120, 40)


# -- effects, pad, flatten -----------------------------------------------------------------------------------


def test_effects_blur_and_sharpen():
    plain = apply(context(PHOTO, "w:200"), pipeline.effects)
    blurred = apply(context(PHOTO, "w:200/blur:4"), pipeline.effects)
    sharpened = apply(context(PHOTO, "w:200/sharpen:2"), pipeline.effects)
    strength = [edges(c.image) for c in (plain, blurred, sharpened)]
    assert strength[1] < strength[0] / 2 and strength[2] > strength[0] * 1.2  # blur removes edges, sharpen adds
    ctx = upto(context(PHOTO, "w:200"), pipeline.effects)
    before = ctx.image
    pipeline.effects(ctx)
    assert ctx.image is before


@pytest.mark.parametrize(
    ("options", "letterbox"),
    [
        ("w:300/h:300/fit:pad/f:jpeg", [255, 255, 255]),  # JPEG: white by default
        ("w:300/h:300/fit:pad/f:png", [0, 0, 0, 0]),  # alpha formats: transparent by default
        ("w:300/h:300/fit:pad/bg:00ff00/f:png", [0, 255, 0]),  # opaque: no alpha band is added
        ("w:300/h:300/fit:pad/bg:ff000080/f:webp", [255, 0, 0, 128]),
    ],
)
def test_pad_places_the_image_on_the_background(options: str, letterbox: list[int]):
    ctx = apply(context(PHOTO, options), pipeline.pad)
    assert (ctx.image.width, ctx.image.height) == (300, 300)
    assert [round(v) for v in ctx.image(150, 10)] == letterbox  # the top band (the image is 300 x 200)
    assert ctx.image(150, 150)[:3] != letterbox[:3]


def test_flatten_drops_alpha_onto_the_background_for_jpeg_only():
    jpeg = apply(context(ALPHA, "f:jpeg/bg:ff0000"), pipeline.flatten).image
    assert (jpeg.bands, jpeg.format, [round(v) for v in jpeg(0, 0)]) == (3, "uchar", [255, 0, 0])
    png = apply(context(ALPHA, "f:png"), pipeline.flatten).image
    assert (png.bands, png(0, 0)[3]) == (4, 0)
    deep = images.encode(images.photo(64, 48).cast("ushort") * 256, "png")  # 16-bit PNG
    out = apply(context(deep, "f:png"), pipeline.flatten).image
    assert (out.format, out.interpretation) == ("uchar", "srgb")


# -- encode and run ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "loader"),
    [("f:jpeg", "jpeg"), ("f:png", "png"), ("f:webp", "webp"), ("f:avif", "heif"), ("f:gif", "gif")],
)
def test_encode_writes_the_chosen_format(options: str, loader: str):
    ctx = apply(context(PHOTO, f"w:120/{options}"), pipeline.encode)
    decoded = images.decode(ctx.body)
    assert (images.loader_format(decoded), decoded.width, decoded.height) == (loader, 120, 80)


def test_encode_uses_the_urls_quality_else_the_configured_one():
    asked: list[str] = []
    ctx = context(PHOTO, "w:300/f:jpeg")
    ctx.default_quality = lambda fmt: asked.append(fmt) or 80
    configured = apply(ctx, pipeline.encode).body
    low = apply(context(PHOTO, "w:300/f:jpeg/q:20"), pipeline.encode).body
    assert asked == ["jpeg"] and len(low) < len(configured) / 2


def test_encode_keeps_the_frames_of_an_animation():
    body = apply(context(GIF, "w:50", accepts=frozenset({"webp"})), pipeline.encode).body
    decoded = images.decode(body)
    assert (images.loader_format(decoded), decoded.get("n-pages"), images.page_height(decoded)) == ("webp", 3, 40)


def test_run_returns_the_rendered_derivative_with_every_step_timed():
    rendered = pipeline.run(context(PHOTO, "w:300/h:300/fit:cover/f:webp"))
    assert (rendered.format, rendered.mime, rendered.width, rendered.height, rendered.frames) == (
        Format.WEBP,
        "image/webp",
        300,
        300,
        1,
    )
    assert list(rendered.timings) == [step.__name__ for step in pipeline.STEPS]
    assert all(seconds >= 0 for seconds in rendered.timings.values())
    stages = rendered.stage_times()
    assert set(stages) == {"decode", "transform", "encode"}
    assert math.isclose(sum(stages.values()), sum(rendered.timings.values()))
    assert (rendered.source.width, rendered.plan.final_crop) == (800, Box(75, 0, 300, 300))
    decoded = images.decode(rendered.body)
    assert (decoded.width, decoded.height) == (300, 300)


def test_run_stops_at_the_deadline_between_steps():
    ran: list[str] = []

    def slow(ctx: pipeline.Context) -> None:
        ran.append("slow")
        time.sleep(0.3)

    def later(ctx: pipeline.Context) -> None:
        ran.append("later")

    with pytest.raises(ProxyError) as info:
        pipeline.run(context(PHOTO, "w:300", deadline=time.monotonic() + 0.1), (slow, later))
    assert (info.value.status, info.value.message, ran) == (504, "render deadline exceeded", ["slow"])
    with pytest.raises(ProxyError) as late:  # already past it: libvips' work is cancelled too
        pipeline.run(context(PHOTO, "w:300", deadline=time.monotonic() - 1))
    assert (late.value.status, late.value.message) == (504, "render deadline exceeded")


def test_run_turns_a_decoder_failure_into_a_422_and_leaves_no_libvips_error_behind():
    truncated = images.truncated(PHOTO, 0.3)
    with pytest.raises(ProxyError) as info:
        pipeline.run(context(truncated, "w:300/f:png"))
    assert (info.value.status, info.value.message) == (422, "the original could not be decoded")
    assert pyvips.ffi.string(pyvips.vips_lib.vips_error_buffer()) == b""
    assert pipeline.run(context(PHOTO, "w:50/f:png")).width == 50  # the next render is clean
