"""The render pipeline: an ordered list of small steps over one ``Context``, deadline checked between.

``render(original bytes, negotiated spec) -> Rendered``. Runs in a render thread (blocking). The
steps, in order:

    probe -> check_limits -> choose_format -> find_trim -> plan_geometry -> check_cost -> load_and_resize
    -> materialise -> redact -> rotate_flip -> final_crop -> effects -> pad -> flatten -> encode

Only ``vips`` touches pyvips; the geometry is ``geometry.plan``; the header read and the source
limits (``Limits``, ``inspect``, importable from here too) are ``intake``'s. As in imgproxy's processing
pipeline, each step is a function of the context, so a step can be added without touching others.

Access: libvips decodes lazily, and the shrink-on-load path reads the original sequentially (top to
bottom, once), which streams a plain resize with little memory. Steps that read their input out of
order (a rotation, a vertical flip, redaction, the attention measure of ``g:smart``) get the resized
image computed into memory first (``materialise``): that costs the output's pixels in memory, no
more than a random-access decode of the (shrunk) original would (PNG: 16 MB against 24 MB), in
0.84-1.16 × its time (``python -m bench.access``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgeproxy.errors import timed_out, too_large
from edgeproxy.http.negotiate import Negotiated
from edgeproxy.quality import encode as choose
from edgeproxy.render import load, vips
from edgeproxy.render.encoding import EncodeOptions
from edgeproxy.render.failures import Deadline, failures
from edgeproxy.render.geometry import Box, Face, Plan, focal_window, map_box, outward, plan
from edgeproxy.render.intake import Limits as Limits
from edgeproxy.render.intake import Source as Source
from edgeproxy.render.intake import check_source as check_source
from edgeproxy.render.intake import inspect as inspect
from edgeproxy.render.intake import read_source as read_source
from edgeproxy.render.obscure import Grid, place
from edgeproxy.render.source import SourceInfo
from edgeproxy.url.media import OUTPUT_MIME
from edgeproxy.url.spec import Format, Redact, TransformSpec

#: Formats that keep an alpha band; JPEG output is flattened onto the background.
ALPHA_FORMATS = {Format.AVIF, Format.WEBP, Format.PNG, Format.GIF, Format.JXL}


@dataclass(frozen=True, slots=True)
class Rendered:
    """An encoded derivative: ``body`` bytes of ``mime`` type, ``width`` × ``height`` pixels (one
    frame), ``frames`` frames, and stage times in seconds."""

    body: bytes
    format: Format
    width: int
    height: int
    frames: int
    timings: dict[str, float]
    source: SourceInfo  # the original's header facts
    plan: Plan  # what was done to it (crop, resize, pad)
    quality: int | None = None  # the encoder quality used (None: lossless, GIF)
    score: float | None = None  # SSIMULACRA2 reached, when the quality was searched

    @property
    def mime(self) -> str:
        return OUTPUT_MIME[self.format]

    def stage_times(self) -> dict[str, float]:
        """Seconds per metrics stage (decode, transform, encode), summed over the steps."""
        stages: dict[str, float] = {}
        for step, seconds in self.timings.items():
            stage = STAGE_OF.get(step, "transform")
            stages[stage] = stages.get(stage, 0.0) + seconds
        return stages


@dataclass(slots=True)
class Context:
    """Mutable state of one render; lives in one thread for one request."""

    data: bytes
    negotiated: Negotiated
    limits: Limits
    encode_options: EncodeOptions
    default_quality: Callable[[str], int]
    deadline: float  # time.monotonic() value; past it libvips' work is cancelled (``watchdog``)
    # From the analysis of the original (edgeproxy.vision), not the URL: the faces found (boxes in
    # fractions 0..1 of the upright original), None when no detector ran or it failed; how to
    # redact them (the URL's redact, or the origin's redact_origins) and each face's grid in that
    # mode (None: no detector result, so the whole image is obscured); whether moderation asks for
    # the whole derivative blurred; and the whole original's grid when the analysis has it (else
    # ``redact`` computes it).
    faces: tuple[Face, ...] | None = None
    redact: Redact | None = None
    face_grids: tuple[Grid, ...] | None = None
    moderation_blur: bool = False
    wash: Grid | None = None
    # A SSIMULACRA2 target for the encode (``edgeproxy.quality.encode``): searched when ``search``,
    # else the format's typical quality for it. None: the URL's q, or the format's default.
    target: float | None = None
    search: bool = False
    format: Format = Format.JPEG
    animated: bool = False
    image: Any = None  # pyvips.Image, opaque here
    random_access: bool = False  # ``image`` may be read out of order (its source is not read sequentially)
    materialised: bool = False  # ``image`` is computed in memory, or made from such an image by cheap steps
    body: bytes = b""
    quality: int | None = None  # set by ``encode``
    score: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    watchdog: Deadline = field(init=False)
    # Set by the steps that learn them (``probe``, ``plan_geometry``); a step before them that read
    # them would raise AttributeError.
    info: SourceInfo = field(init=False)
    plan: Plan = field(init=False)
    # ``trim``: the box the original's uniform borders leave (None: nothing trimmed, or no trim
    # asked) and the borders' RGBA colour (None: no trim asked), ``pad``'s default colour.
    trim: Box[int] | None = None
    margin: tuple[int, int, int, int] | None = None

    def __post_init__(self) -> None:
        self.watchdog = Deadline(self.deadline)

    @property
    def spec(self) -> TransformSpec:
        return self.negotiated.spec


def probe(ctx: Context) -> None:
    """Read the header (``read_source``): SVG is sanitised first, or refused."""
    found = read_source(ctx.data, ctx.limits)
    ctx.data, ctx.info = found.data, found.info


def check_limits(ctx: Context) -> None:
    """413 for sources over the pixel or frame limits, 415 for formats not allowed (``check_source``)."""
    check_source(ctx.info, ctx.limits)


def choose_format(ctx: Context) -> None:
    """The output format (``f:auto`` negotiated: never AVIF for an animation, see
    ``Negotiated.resolve_format``), and whether every frame is kept: an animated original stays
    animated as GIF, WebP and AVIF (an image sequence: ``encoding.encode``); other formats get its
    first frame."""
    ctx.format = ctx.negotiated.resolve_format(ctx.info.animated, ctx.info.alpha)
    ctx.animated = ctx.info.animated and ctx.format in (Format.GIF, Format.WEBP, Format.AVIF)


def find_trim(ctx: Context) -> None:
    """``trim``: the box the original's uniform borders leave (``vips.find_trim`` on its first
    frame, upright, sRGB; an animation's every frame gets that box), which becomes the source
    region that ``crop`` and the resize apply to; and the borders' colour, which ``pad`` re-adds.
    An image that is all border is kept whole.

    The search runs on a copy at most ``trim_max_side`` pixels on its long side (``load_at_size``:
    shrink-on-load): exact to the pixel for originals up to that size; for larger ones the box is
    mapped back rounded outwards (``geometry.outward``), within one copy pixel: a sliver of border
    may stay, nothing of the image is cut. libvips' median filter over a full 4.4 MP original alone
    costs about 0.5 s; on a 1024-px copy, under a tenth of that."""
    trim = ctx.spec.trim
    if trim is None:
        return
    info = ctx.info
    scale = min(1.0, ctx.limits.trim_max_side / max(info.width, info.height))
    copy = (max(1, round(info.width * scale)), max(1, round(info.height * scale)))
    image = load.load_at_size(ctx.data, info, *copy).image
    box, ctx.margin = vips.find_trim(image, trim.threshold, trim.colour)
    if box is not None and scale < 1.0:
        box = outward(box, copy, (info.width, info.height))
        box = None if (box.w, box.h) == (info.width, info.height) else box
    ctx.trim = box


def plan_geometry(ctx: Context) -> None:
    ctx.plan = plan(ctx.spec, ctx.info.width, ctx.info.height, ctx.limits.max_output_dimension, ctx.trim)


def check_cost(ctx: Context) -> None:
    """413 for a blur whose work is over ``max_blur_cost``: a Gaussian blur's cost grows with the
    output's pixels and with its sigma (libvips' mask is about 3.6 × sigma wide), so it is counted
    as output megapixels × frames × sigma: ``blur:100`` at the full size of a 24 MP original is
    2400, on a 1000-px derivative 67. Sharpen's sigma is capped at 10 by the URL grammar: its cost
    grows with the pixels only, as every other step's does."""
    if not ctx.spec.blur:
        return
    width, height = ctx.plan.output_size
    frames = ctx.info.pages if ctx.animated else 1
    cost = width * height * frames / 1e6 * ctx.spec.blur
    if cost > ctx.limits.max_blur_cost:
        output = f"{width}x{height}" + (f" output of {frames} frames" if frames > 1 else " output")
        raise too_large(
            f"blur:{ctx.spec.blur:g} on a {output} is {round(cost)} megapixel-sigma of work; "
            f"the limit is max_blur_cost={ctx.limits.max_blur_cost}"
        )


def load_and_resize(ctx: Context) -> None:
    """Decode at the planned size (``load.load_at_size``): shrink-on-load unless a source crop is
    asked for (then decode, crop, resize); AVIF and the formats libvips lacks decode through
    ``vips.load_pillow`` (no shrink-on-load there). Only the shrink-on-load path reads the original
    sequentially; the others decode it whole, so may be read in any order (``random_access``)."""
    p = ctx.plan
    width, height = p.resize
    if ctx.spec.rotate in (90, 270):
        width, height = height, width
    loaded = load.load_at_size(ctx.data, ctx.info, width, height, region=p.source_crop, animated=ctx.animated)
    ctx.image, ctx.random_access = loaded.image, loaded.random_access


def _materialise(ctx: Context) -> None:
    """Compute ``ctx.image`` into memory (once): it can then be read in any order, and again."""
    if not ctx.materialised:
        ctx.image = vips.in_memory(ctx.image, ctx.watchdog)
        ctx.materialised = ctx.random_access = True


def materialise(ctx: Context) -> None:
    """Compute the resized image into memory when a later step reads it out of order and its source
    is read sequentially: a rotation (by 90, 180 or 270: columns, or rows bottom up), a vertical
    flip (rows bottom up), redaction (each face's box, then the rows around it). Otherwise libvips
    fails with "out of order read" (issue 20). A plain resize, a horizontal flip, crops, padding and
    effects read top to bottom and stream."""
    out_of_order = ctx.spec.rotate or "v" in ctx.spec.flip.value or ctx.redact is not None
    if out_of_order and not ctx.random_access:
        _materialise(ctx)


def redact(ctx: Context) -> None:
    """Obscure what must not be seen, on the image as loaded (upright, source-cropped, resized),
    before any rotation, flip or final crop: the whole image when moderation blurs it or when
    redaction is asked for but the face detector failed (``face_grids`` None: redaction fails
    closed, never open), else each face's grid when redaction is asked for.

    Every grid lies in the original's coordinates (``obscure``): each pixel shows the grid at its
    own position in the original, so any crop, tile, rotation or scale of the derivative shows the
    same obscured pixels. The whole-image grid comes from the analysis (``wash``) or, when none ran,
    from a small decode of the original here (``wash``). An animation gets the first
    frame's grids on every frame.
    """
    grids: tuple[Grid, ...]
    if ctx.moderation_blur or (ctx.redact is not None and ctx.face_grids is None):
        grids = (ctx.wash or load.wash(ctx.data, ctx.info),)
    elif ctx.redact is not None and ctx.face_grids is not None:
        grids = ctx.face_grids
    else:
        return
    original = (ctx.info.width, ctx.info.height)
    size = (ctx.image.width, vips.page_height(ctx.image))
    layers = [(grid, at) for grid in grids if (at := place(grid, original, ctx.plan.source_crop, size)) is not None]
    ctx.image = vips.paint(ctx.image, layers)


def faces_centre(ctx: Context) -> tuple[float, float] | None:
    """(x, y) in pixels of the current image: the centre of the union of the detected faces after
    the source crop, rotation and flip; None when there is no face (or no detector)."""
    if not ctx.faces:
        return None
    size = (ctx.info.width, ctx.info.height)
    mapped = (map_box(f.box, size, ctx.plan.source_crop, ctx.spec.rotate, ctx.spec.flip.value) for f in ctx.faces)
    boxes = [b for b in mapped if b is not None]
    if not boxes:
        return None
    x0, y0 = min(b.x for b in boxes), min(b.y for b in boxes)
    x1, y1 = max(b.right for b in boxes), max(b.bottom for b in boxes)
    return (x0 + x1) / 2 * ctx.image.width, (y0 + y1) / 2 * vips.page_height(ctx.image)


def rotate_flip(ctx: Context) -> None:
    ctx.image = vips.rotate_flip(ctx.image, ctx.spec.rotate, ctx.spec.flip.value)


def final_crop(ctx: Context) -> None:
    """Crop every frame to the planned window; for ``g:smart``, the window is first centred on the
    attention centre of the first frame, so an animation keeps one window for all its frames; for
    ``g:face``, on the centre of the union of the faces found, or as ``smart`` where none was."""
    box = ctx.plan.final_crop
    if box is None:
        return
    if ctx.plan.smart:
        size = (ctx.image.width, vips.page_height(ctx.image))
        centre = faces_centre(ctx) if ctx.spec.gravity.kind == "face" else None
        if centre is None:  # measured, then cropped: keep the resized pixels so the source decodes once
            _materialise(ctx)
            centre = vips.attention_centre(ctx.image, box.w, box.h, ctx.watchdog)
        box = focal_window(size, (box.w, box.h), centre)
    ctx.image = vips.crop(ctx.image, box)


def effects(ctx: Context) -> None:
    if ctx.spec.blur:
        ctx.image = vips.blur(ctx.image, ctx.spec.blur)
    if ctx.spec.sharpen:
        ctx.image = vips.sharpen(ctx.image, ctx.spec.sharpen)


def pad(ctx: Context) -> None:
    """Place the image on the planned canvas (``fit:pad``): of ``background`` when given, else of
    the trimmed borders' colour (``trim``: the margin re-added), else transparent for formats with
    alpha and white for the others."""
    if ctx.plan.canvas:
        default = vips.TRANSPARENT if ctx.format in ALPHA_FORMATS else vips.WHITE
        ctx.image = vips.pad(ctx.image, ctx.plan.canvas, ctx.spec.background or ctx.margin or default)


def flatten(ctx: Context) -> None:
    """Alpha onto ``background`` (default white) for formats without alpha; then 8-bit sRGB, or
    8-bit grey (alpha kept) for ``gray:1``, the background and padding included."""
    if ctx.format not in ALPHA_FORMATS:
        ctx.image = vips.flatten(ctx.image, ctx.spec.background or vips.WHITE)
    ctx.image = vips.to_srgb(ctx.image)
    if ctx.spec.grayscale:
        ctx.image = vips.grey(ctx.image)


def encode(ctx: Context) -> None:
    """The URL's fixed ``q``, a target's quality (typical or searched), or the format's default."""
    spec = ctx.spec
    encoded = choose.encode(
        ctx.image,
        ctx.format.value,
        quality=None if spec.quality_auto else spec.quality,
        target=ctx.target,
        search=ctx.search,
        default_quality=ctx.default_quality,
        options=ctx.encode_options,
        strip=spec.strip,
        deadline=ctx.watchdog,
        max_bytes=spec.max_bytes,
    )
    ctx.body, ctx.quality, ctx.score = encoded.body, encoded.quality, encoded.score


STEPS: tuple[Callable[[Context], None], ...] = (
    probe,
    check_limits,
    choose_format,
    find_trim,
    plan_geometry,
    check_cost,
    load_and_resize,
    materialise,
    redact,
    rotate_flip,
    final_crop,
    effects,
    pad,
    flatten,
    encode,
)


#: Step -> metrics stage. libvips is lazy, so most decoding is counted where pixels are pulled: encode.
STAGE_OF = {
    "probe": "decode",
    "find_trim": "decode",
    "load_and_resize": "decode",
    "materialise": "decode",
    "encode": "encode",
}


def run(ctx: Context, steps: tuple[Callable[[Context], None], ...] = STEPS) -> Rendered:
    """Run ``steps`` over ``ctx``, checking the deadline before each; record each step's time. Any
    failure of pyvips, libvips or Pillow is the request's 422 (``failures``, which also leaves
    libvips' error buffer empty for the next request).

    Raises:
        ProxyError: 413/415/422 from the steps, 400 for a crop outside the image, 504 when the
            deadline passes between steps or inside libvips (``Context.watchdog`` cancels the work).
    """
    for step in steps:
        start = time.monotonic()
        if start > ctx.deadline:
            raise timed_out("render deadline exceeded")
        with failures(ctx.watchdog):
            step(ctx)
        ctx.timings[step.__name__] = time.monotonic() - start
    width, height = ctx.plan.output_size
    frames = ctx.info.pages if ctx.animated else 1
    return Rendered(
        ctx.body, ctx.format, width, height, frames, ctx.timings, ctx.info, ctx.plan, ctx.quality, ctx.score
    )
