"""libvips' image operations: decoding (shrink-on-load, regions, Pillow's pixels wrapped), resizing,
cropping, rotating, painting, effects, colour. The process-wide set-up of libvips (``configure``,
``silence_messages``, ``tracked_memory``, ``version``, importable from here) is ``vips_process``'s.

Functions take and return ``pyvips.Image`` (opaque to the rest of the code) or plain values. libvips
evaluates lazily: the pixel work of a whole pipeline happens when the image is encoded
(``edgeproxy.render.encoding``). All of these are blocking and run in the render thread pool, never on
the event loop. pyvips is imported only in the render package's libvips modules: this one,
``vips_process`` (set-up), ``source`` (headers), ``encoding`` (savers) and ``failures`` (errors and
cancellation).

Animated images are a vertical strip of frames (``page-height`` pixels each); operations that
move pixels between rows (crop, rotate, embed, blur) run frame by frame through ``_per_frame``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pyvips

from edgeproxy.errors import undecodable
from edgeproxy.render import pillow
from edgeproxy.render.failures import Deadline, failures
from edgeproxy.render.geometry import Box, Canvas
from edgeproxy.render.headers import DecodeError
from edgeproxy.render.icc import is_srgb_profile
from edgeproxy.render.obscure import Grid, Placement
from edgeproxy.render.vips_process import configure as configure
from edgeproxy.render.vips_process import silence_messages as silence_messages
from edgeproxy.render.vips_process import tracked_memory as tracked_memory
from edgeproxy.render.vips_process import version as version

if TYPE_CHECKING:
    import numpy as np

    from edgeproxy.render.source import SourceInfo

#: Fail on truncated data (a partial JPEG is a 422, not a half-grey image).
_LOAD_OPTIONS = "fail_on=truncated"
#: RGBA colours (0..255) of backgrounds: opaque white (JPEG's flattening, the vision models' copy)
#: and transparent (padding formats with alpha).
WHITE = (255, 255, 255, 255)
TRANSPARENT = (0, 0, 0, 0)


def header_field(image: pyvips.Image, name: str, default: Any) -> Any:
    """The header field ``name`` of ``image`` (``"orientation"``, ``"page-height"``...), or ``default``
    when it has none."""
    return image.get(name) if image.get_typeof(name) else default


def thumbnail(
    data: bytes,
    width: int,
    height: int,
    *,
    animated: bool,
    colour_manage: bool,
    size: str = "force",
    jpeg_shrink: int = 0,
) -> pyvips.Image:
    """Decode and resize in one step, with shrink-on-load, EXIF autorotation and ICC → sRGB.

    With ``colour_manage`` (an embedded profile other than sRGB), the profile is imported and the
    pixels exported as sRGB; CMYK always goes to sRGB (through libvips' fallback CMYK profile when
    it has none). Images without a profile are taken as sRGB, as browsers do.

    ``jpeg_shrink`` (1, 2, 4, 8; 0 for other formats) decodes a JPEG at that DCT scale, chosen by
    ``geometry.jpeg_shrink``, and resamples the rest: 11.5 ms against 18 ms for libvips'
    ``thumbnail_buffer`` on a 2040 px photo fitted into 512 px.

    ``width`` × ``height`` is the output size in pixels (per frame when ``animated``, which keeps
    every frame).
    """
    options = "n=-1," + _LOAD_OPTIONS if animated else _LOAD_OPTIONS
    profile = {"output_profile": "srgb"} if colour_manage else {}
    with failures():
        if jpeg_shrink:
            image = pyvips.Image.jpegload_buffer(data, shrink=jpeg_shrink, access="sequential", fail_on="truncated")
            return image.thumbnail_image(width, height=height, size=size, **profile)
        return pyvips.Image.thumbnail_buffer(data, width, height=height, size=size, option_string=options, **profile)


def load_region(data: bytes, region: Box[int], *, animated: bool) -> pyvips.Image:
    """Decode ``data``, apply EXIF orientation, and keep ``region`` (pixels) of the upright image (of
    every frame when ``animated``). Colour is still the source's."""
    kwargs = {"n": -1} if animated else {}
    with failures():
        image = pyvips.Image.new_from_buffer(data, "", fail_on="truncated", **kwargs)
        if not animated:
            image = image.autorot()
        return crop(image, region)


def load_pillow(data: bytes, info: SourceInfo) -> pyvips.Image:
    """Decode through ``edgeproxy.render.pillow``: upright, 8- or 16-bit, the ICC profile attached.

    The pixels are handed to libvips without another copy (``new_from_memory`` keeps a reference).
    AVIF comes here too: the ``pyvips-binary`` build decodes AV1 through libheif with libaom, which
    on a 2040×1666 photo costs 159 ms of CPU against 59 ms for Pillow's libavif with dav1d
    (``python -m bench`` workload, one thread each); an AVIF that Pillow cannot decode, or whose size
    Pillow and libvips disagree on (an exotic transform), goes back to libvips.

    Raises:
        ProxyError(422): corrupt or truncated data, or pixels that disagree with the header.
    """
    try:
        pixels = pillow.decode(data, info.format, (info.width, info.height))
    except DecodeError as exc:
        if info.format == "avif":
            return _load_libvips(data)
        raise undecodable(f"the original could not be decoded: {exc}") from None
    band_format = "ushort" if pixels.depth == 16 else "uchar"
    image = pyvips.Image.new_from_memory(pixels.data, pixels.width, pixels.height, pixels.bands, band_format)
    image = image.copy(interpretation=pixels.interpretation)
    if pixels.icc and not is_srgb_profile(pixels.icc):  # an sRGB profile would be a costly no-op
        image.set_type(pyvips.GValue.blob_type, "icc-profile-data", pixels.icc)
    return image


def _load_libvips(data: bytes) -> pyvips.Image:
    with failures():
        return pyvips.Image.new_from_buffer(data, "", fail_on="truncated").autorot()


def find_trim(
    image: pyvips.Image, threshold: float, colour: tuple[int, int, int] | None
) -> tuple[Box[int] | None, tuple[int, int, int, int]]:
    """(the box inside ``image`` left when its uniform borders are removed, the borders' RGBA colour).

    libvips ``find_trim`` (a 3x3 median, then the first row and column from each edge with a pixel
    more than ``threshold``, 0..255, from the border colour), on the 8-bit sRGB (or grey) pixels.
    The border colour is ``colour`` (sRGB) or the top-left pixel's, as imgproxy's ``trim``. On an
    image with alpha, no ``colour`` given and a transparent top-left pixel, the border is the
    transparent pixels: ``find_trim`` runs on the alpha band against 0, and the colour returned is
    transparent. Otherwise alpha is flattened onto the border colour first.

    The box is None when nothing is trimmed, or when the image is all border (libvips finds an
    empty box): an image is never trimmed away.
    """
    image = to_srgb(image)
    corner = [round(v) for v in image.crop(0, 0, 1, 1).getpoint(0, 0)]
    if colour is None and image.hasalpha() and corner[-1] == 0:
        left, top, width, height = image[image.bands - 1].find_trim(threshold=threshold, background=[0])
        rgba = TRANSPARENT
    else:
        if colour is None:
            grey = image.bands - (1 if image.hasalpha() else 0) < 3
            colour = (corner[0],) * 3 if grey else (corner[0], corner[1], corner[2])
        rgba = (*colour, 255)
        flat = flatten(image, rgba)
        left, top, width, height = flat.find_trim(threshold=threshold, background=_colour(flat, rgba))
    if width <= 0 or height <= 0 or (width, height) == (image.width, image.height):
        return None, rgba
    return Box(left, top, width, height), rgba


def resize(image: pyvips.Image, width: int, height: int, *, colour_manage: bool) -> pyvips.Image:
    """Resize a decoded image (per frame) to ``width`` × ``height``; colour as in ``thumbnail``, when
    ``image`` carries a profile to transform from (untagged pixels are sRGB or grey already)."""
    profile = {"output_profile": "srgb"} if colour_manage and image.get_typeof("icc-profile-data") else {}
    with failures():
        return _per_frame(image, lambda frame: frame.thumbnail_image(width, height=height, size="force", **profile))


def in_memory(image: pyvips.Image, deadline: Deadline | None = None) -> pyvips.Image:
    """Compute ``image`` now into memory (width × height × bands bytes), so that it can be read
    again, and out of order, without decoding the original again: the loaders here read the
    original sequentially (top to bottom, once), which rotation, a vertical flip, redaction and
    ``smartcrop`` do not (``pipeline.materialise``).

    Raises:
        ProxyError(422): the original's pixels could not be decoded.
        ProxyError(504): ``deadline`` passed while they were (the work was cancelled).
    """
    with failures(deadline):
        return (deadline.watch(image) if deadline else image).copy_memory()


def attention_centre(image: pyvips.Image, width: int, height: int, deadline: Deadline | None = None) -> tuple[int, int]:
    """(x, y) in pixels of the first frame's attention centre, for a ``width`` × ``height`` crop.

    libvips' ``smartcrop`` with ``interesting=attention`` (after sharp: edges, skin tones and
    saturated colours on a downsized copy) reports where it would centre that crop. Only the first
    frame is measured, so every frame of an animation can be cropped to one window.

    Raises:
        ProxyError(422): the original's pixels could not be decoded.
        ProxyError(504): ``deadline`` passed while they were.
    """
    frame = image.crop(0, 0, image.width, page_height(image))
    with failures(deadline):
        if deadline:
            deadline.watch(frame)
        _cropped, found = frame.smartcrop(width, height, interesting="attention", attention_x=True, attention_y=True)
    return found["attention_x"], found["attention_y"]


def rgb_array(image: pyvips.Image, deadline: Deadline | None = None) -> np.ndarray:
    """The pixels of ``image`` (8-bit sRGB or grey, any alpha already flattened) as a numpy array,
    height × width × 3 ``uint8``: what the vision models take (``edgeproxy.vision``).

    Raises:
        ProxyError(422): the original's pixels could not be decoded.
        ProxyError(504): ``deadline`` passed while they were.
    """
    with failures(deadline):
        if image.bands == 1:
            image = image.colourspace("srgb")
        rgb = image.extract_band(0, n=3)
        pixels: np.ndarray = (deadline.watch(rgb) if deadline else rgb).numpy()
        return pixels


def page_height(image: pyvips.Image) -> int:
    """Height of one frame in pixels (the whole height for a still)."""
    ph: int = header_field(image, "page-height", image.height)
    return ph if 0 < ph <= image.height and image.height % ph == 0 else image.height


def _per_frame(image: pyvips.Image, op: Callable[[pyvips.Image], pyvips.Image]) -> pyvips.Image:
    """Apply ``op`` to each frame of an animated strip and restack; a still is one frame."""
    ph = page_height(image)
    if ph == image.height:
        return op(image)
    frames = [op(image.crop(0, top, image.width, ph)) for top in range(0, image.height, ph)]
    out = pyvips.Image.arrayjoin(frames, across=1)
    out = out.copy()
    out.set_type(pyvips.GValue.gint_type, "page-height", frames[0].height)
    return out


def crop(image: pyvips.Image, box: Box[int]) -> pyvips.Image:
    """Keep ``box`` (pixels) of every frame."""
    return _per_frame(image, lambda frame: frame.crop(box.x, box.y, box.w, box.h))


def rotate_flip(image: pyvips.Image, angle: int, flip: str) -> pyvips.Image:
    """Rotate clockwise by ``angle`` (0/90/180/270), then flip (``h``, ``v``, ``hv`` or ``""``)."""

    def op(frame: pyvips.Image) -> pyvips.Image:
        if angle:
            frame = frame.rot(f"d{angle}")
        if "h" in flip:
            frame = frame.fliphor()
        if "v" in flip:
            frame = frame.flipver()
        return frame

    return _per_frame(image, op) if angle or flip else image


def blur(image: pyvips.Image, sigma: float) -> pyvips.Image:
    """Gaussian blur with ``sigma`` pixels."""
    return _per_frame(image, lambda frame: frame.gaussblur(sigma))


def paint(image: pyvips.Image, layers: list[tuple[Grid, Placement]]) -> pyvips.Image:
    """``image`` with each ``Grid`` painted where its ``Placement`` says, in every frame: pixel
    (left + i, top + j) takes the grid's colour at (x_scale * i + x_offset, y_scale * j + y_offset)
    (``obscure.Placement``), through libvips' ``affine`` with the ``nearest`` interpolator for a
    pixelated grid (the cell the point lies in) or ``bilinear`` for a blurred one, on the grid's
    cells as floats, with ``extend=copy`` (beyond the outer cell centres a blur is constant).

    The image becomes 8-bit sRGB (or grey: the cells' band mean) when it was not; alpha is kept as
    it was. Later layers paint over earlier ones.
    """
    if not layers:
        return image
    image = to_srgb(image)
    colours = 1 if image.bands in (1, 2) else 3
    patches = []
    for grid, at in layers:
        cells = pyvips.Image.new_from_memory(grid.cells, grid.cols, grid.rows, 3, "uchar").cast("float")
        patch = cells.affine(
            [1 / at.x_scale, 0, 0, 1 / at.y_scale],
            idx=-at.x_offset,
            idy=-at.y_offset,
            odx=0,
            ody=0,
            oarea=[0, 0, at.width, at.height],
            extend="copy",
            interpolate=pyvips.Interpolate.new("bilinear" if grid.smooth else "nearest"),
        )
        if colours == 1:
            patch = patch.bandmean()
        patches.append(((patch + 0.5).cast("uchar"), at))

    def op(frame: pyvips.Image) -> pyvips.Image:
        for patch, at in patches:
            if frame.hasalpha():
                patch = patch.bandjoin(frame.extract_band(frame.bands - 1).crop(at.left, at.top, at.width, at.height))
            frame = frame.insert(patch.copy(interpretation=frame.interpretation), at.left, at.top)
        return frame

    return _per_frame(image, op)


def cell_means(image: pyvips.Image, k: int) -> bytes:
    """The mean of each ``k`` x ``k`` block of ``image`` (8-bit, 3 bands; its sides multiples of
    ``k``), rounded to 8 bits, row-major: a box filter over each cell of a grid
    (``obscure.Grid.cells``). Computes the pixels, inside the caller's ``failures``."""
    means = image.cast("float").shrink(k, k)
    cells: bytes = (means + 0.5).cast("uchar").write_to_memory()
    return cells


def sharpen(image: pyvips.Image, sigma: float) -> pyvips.Image:
    """Unsharp mask on lightness (``vips_sharpen``) with ``sigma`` pixels."""
    return _per_frame(image, lambda frame: frame.sharpen(sigma=sigma))


def pad(image: pyvips.Image, canvas: Canvas, background: tuple[int, int, int, int]) -> pyvips.Image:
    """Place every frame at (``canvas.left``, ``canvas.top``) on a ``canvas.width`` ×
    ``canvas.height`` canvas of ``background`` (RGBA 0..255). An alpha band is added when the
    background is not opaque."""
    image = to_srgb(image)
    if background[3] < 255 and not image.hasalpha():
        image = image.bandjoin(255)
    colour = _colour(image, background)
    return _per_frame(
        image,
        lambda frame: frame.embed(
            canvas.left, canvas.top, canvas.width, canvas.height, extend="background", background=colour
        ),
    )


def flatten(image: pyvips.Image, background: tuple[int, int, int, int]) -> pyvips.Image:
    """Composite alpha onto ``background`` (its RGB part) and drop the alpha band."""
    if not image.hasalpha():
        return image
    return image.flatten(background=_colour(image, background)[: image.bands - 1])


def _colour(image: pyvips.Image, rgba: tuple[int, int, int, int]) -> list[float]:
    """``rgba`` as one value per band of ``image``: grey images get the mean of R, G and B."""
    colour: list[float] = [*rgba[:3]] if image.bands >= 3 else [sum(rgba[:3]) / 3]
    return colour + [rgba[3]] if image.hasalpha() else colour


def to_srgb(image: pyvips.Image) -> pyvips.Image:
    """Ensure 8-bit sRGB (or 8-bit grey) pixels, as every encoder here expects."""
    if image.format == "uchar" and image.interpretation in ("srgb", "b-w"):
        return image
    if image.interpretation in ("b-w", "grey16"):
        return image.colourspace("b-w")
    return image.colourspace("srgb")


def grey(image: pyvips.Image) -> pyvips.Image:
    """8-bit sRGB (or grey) ``image`` as 8-bit grey, alpha kept: libvips' ``colourspace("b-w")``,
    the CIE luminance Y of the sRGB pixels (Rec. 709 weights, linear light) written back with
    sRGB's curve, so encoders write a grey JPEG, PNG or GIF (one channel, or two with alpha), and
    WebP and AVIF, which have no grey mode, R = G = B."""
    return image if image.interpretation == "b-w" else image.colourspace("b-w")
