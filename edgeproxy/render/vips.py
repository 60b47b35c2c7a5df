"""Every libvips call, and the only module that imports pyvips.

Functions take and return ``pyvips.Image`` (opaque to the rest of the code) or plain values. libvips
evaluates lazily: the pixel work of a whole pipeline happens inside ``encode``. All of these are
blocking and run in the render thread pool, never on the event loop.

Animated images are a vertical strip of frames (``page-height`` pixels each); operations that
move pixels between rows (crop, rotate, embed, blur) run frame by frame through ``_per_frame``.

Failures: ``failures`` is the one place where an exception out of pyvips, libvips or Pillow becomes
the request's error (422, or 504 past the deadline) and where libvips' process-wide error buffer is
cleared, so that nothing a hostile original left there reaches the next request. ``Deadline``
cancels pixel work inside libvips once a render's deadline has passed.
"""

from __future__ import annotations

import ctypes
import functools
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pyvips

from edgeproxy.errors import ProxyError, timed_out, undecodable, unsupported_format
from edgeproxy.render import pillow
from edgeproxy.render.obscure import Grid, Placement

#: libvips loader (without ``_buffer``/``_source``) -> input format name used in settings.
LOADER_FORMATS = {
    "jpegload": "jpeg",
    "uhdrload": "jpeg",
    "pngload": "png",
    "webpload": "webp",
    "gifload": "gif",
    "heifload": "heif",  # refined to "avif" by the compression field
    "tiffload": "tiff",
    "svgload": "svg",
}
#: Magic numbers of formats nothing here decodes: these are 415, not 422.
_UNSUPPORTED_SIGNATURES = ((b"%PDF", "pdf"), (b"8BPS\x00\x02", "psb"))
#: Fail on truncated data (a partial JPEG is a 422, not a half-grey image).
_LOAD_OPTIONS = "fail_on=truncated"


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """Facts read from the original's header, without decoding pixels.

    ``width``/``height`` are of one frame, upright (after EXIF orientation), in pixels.
    """

    format: str
    width: int
    height: int
    pages: int
    alpha: bool
    orientation: int
    animated: bool
    colour_manage: bool = False  # an embedded ICC profile that is not sRGB: transform to sRGB
    pillow: bool = False  # decoded by Pillow (edgeproxy.render.pillow), not libvips: see load_pillow
    icc: str | None = None  # the embedded ICC profile's description ("" when unnamed); None: no profile read


#: Top-level packages whose exceptions are a decoder's failure on the original's bytes (pyvips and
#: its compiled binding, Pillow and its plugins), as opposed to a bug in edgeproxy.
_DECODER_PACKAGES = frozenset({"pyvips", "_libvips", "cffi", "PIL", "pillow_heif", "pillow_jxl"})


class Deadline:
    """Cancels libvips' pixel work once ``at`` (a ``time.monotonic()`` value, seconds) has passed.

    ``watch(image)`` turns on libvips' progress signals for ``image`` (``vips_image_set_progress``):
    while its pixels, or those of an image made from it, are computed (a save, ``copy_memory``,
    ``smartcrop``'s measurement, a numpy export), libvips emits ``eval`` after each tile or strip,
    and past ``at`` the handler sets the image's kill flag (``vips_image_set_kill``); libvips then
    fails the computation at the next region it prepares or strip it writes (``vips_image_iskilled``
    also checks the image that signals progress: libvips ``iofuncs/image.c``, ``region.c``,
    ``sink.c``), so the render thread is free within one tile's work of the deadline. An infinite
    ``at`` watches nothing. Watched images are kept until the render ends: the signal handler must
    not outlive the Python object that pyvips keeps it in.

    Work outside libvips' tiles is not interrupted: a Pillow decode (AVIF, HEIC, ...), the AV1 or
    JPEG XL encoder once it has the pixels, ``smartcrop``'s attention measure (it reports progress
    once, at its end; its input is in memory and at most the output's size).
    """

    def __init__(self, at: float = math.inf):
        self.at = at
        self._watched: list[pyvips.Image] = []

    @property
    def expired(self) -> bool:
        """True once the deadline has passed."""
        return time.monotonic() > self.at

    def watch(self, image: pyvips.Image) -> pyvips.Image:
        """``image``, its pixel work now cancelled past the deadline."""
        if math.isinf(self.at):
            return image
        image.set_progress(True)
        image.signal_connect("eval", self._on_eval)
        self._watched.append(image)
        return image

    def _on_eval(self, image: pyvips.Image, _progress) -> None:
        if time.monotonic() > self.at:
            image.set_kill(True)


def clear_errors() -> None:
    """Empty libvips' error buffer (process-wide: ``vips_error_clear``)."""
    pyvips.vips_lib.vips_error_clear()


def _from_decoder(exc: BaseException) -> bool:
    """Whether ``exc`` is a decoder's failure: a pyvips or ``pillow.DecodeError``, or any exception
    raised inside pyvips or Pillow (pyvips raises ``UnicodeDecodeError`` reading an error text
    that is not UTF-8, e.g. a box type libheif quotes raw from a crafted AVIF)."""
    if isinstance(exc, pyvips.Error | pillow.DecodeError):
        return True
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    module = tb.tb_frame.f_globals.get("__name__", "") if tb is not None else ""
    return module.partition(".")[0] in _DECODER_PACKAGES


@contextmanager
def failures(deadline: Deadline | None = None) -> Iterator[None]:
    """Where failures inside pyvips, libvips and Pillow become the request's error, and libvips'
    error buffer is cleared (on entry, and after any failure) so that no request inherits text a
    previous one left there: pyvips reads that buffer on every attribute lookup, so an unreadable
    one failed every later render of the process (issue 20).

    Raises:
        ProxyError(504): a decoder failed after ``deadline`` passed (``Deadline`` killed its work).
        ProxyError(422): a decoder failed otherwise: the original's bytes are not a valid image.
        ProxyError: raised inside, unchanged; any other exception (a bug) unchanged.
    """
    clear_errors()
    try:
        yield
    except ProxyError:
        clear_errors()
        raise
    except Exception as exc:
        clear_errors()
        if not _from_decoder(exc):
            raise
        if deadline is not None and deadline.expired:
            raise timed_out("render deadline exceeded") from None
        raise undecodable() from None


def configure(concurrency: int) -> None:
    """Process-wide decoder set-up, once at start: threads per operation (libvips and the Pillow
    codecs, ``pillow.configure``), no libvips operation cache.

    The operation cache only helps when identical operations repeat on the same image object; a
    proxy decodes new buffers every time, so it would only hold memory.
    """
    pyvips.concurrency_set(concurrency)
    pillow.configure(concurrency)
    pyvips.cache_set_max(0)
    pyvips.cache_set_max_mem(0)
    pyvips.cache_set_max_files(0)


@functools.cache
def _tracked_mem() -> Callable[[], int]:
    # pyvips' cffi binding does not declare vips_tracked_get_mem; the symbol is in the same libvips
    # that pyvips has loaded, reached through its extension module.
    import _libvips

    function = ctypes.CDLL(_libvips.__file__).vips_tracked_get_mem
    function.restype = ctypes.c_size_t
    return function


def tracked_memory() -> int:
    """Bytes libvips currently has allocated for pixel buffers (``vips_tracked_get_mem``)."""
    try:
        return int(_tracked_mem()())
    except (ImportError, OSError, AttributeError):
        return 0


def check_encoders(options: EncodeOptions) -> dict[str, bool]:
    """Encode a small image in every output format: {format: worked} (for ``/readyz``)."""
    result = {}
    for fmt in ("avif", "webp", "jpeg", "png", "gif") + (("jxl",) if pillow.missing_extra("jxl") is None else ()):
        try:
            with failures():
                image = pyvips.Image.black(16, 16, bands=3).copy(interpretation="srgb")
                result[fmt] = len(encode(image, fmt, 50, True, options)) > 0
        except Exception:  # noqa: BLE001 - any failure means "not ready"
            result[fmt] = False
    return result


def version() -> str:
    """libvips version, e.g. ``"8.18.7"``."""
    return ".".join(str(pyvips.version(i)) for i in range(3))


def _field(image: pyvips.Image, name: str, default):
    return image.get(name) if image.get_typeof(name) else default


def probe(data: bytes, allowed: frozenset[str] | None = None) -> SourceInfo:
    """Read the header of ``data`` (bytes of an encoded image), without decoding pixels.

    libvips reads JPEG, PNG, WebP, GIF, AVIF, HEIF, TIFF and SVG headers; BMP, ICO, PSD, JPEG 2000,
    JPEG XL and HEIC (HEVC, which the wheel's libheif cannot decode) go to ``edgeproxy.render.pillow``,
    unless ``allowed`` (input format names) leaves them out: then no Pillow code sees the bytes.

    Raises:
        ProxyError(415): a format nothing here decodes (PDF, PSB, ...), a Pillow format not in
            ``allowed``, HEIC or JPEG XL without the extra that decodes it (the message names it),
            or a non-image format libvips happens to read (CSV, matrix, ...).
        ProxyError(422): empty or unrecognisable bytes, or a corrupt header.
    """
    if not data:
        raise undecodable("the original is empty")
    with failures():
        return _probe(data, allowed)


def _probe(data: bytes, allowed: frozenset[str] | None) -> SourceInfo:
    try:
        image = pyvips.Image.new_from_buffer(data, "", access="sequential")
    except Exception as exc:
        if not _from_decoder(exc):
            raise
        clear_errors()
        fmt = pillow.sniff(data)
        if fmt is not None:
            return _probe_pillow(data, fmt, allowed)
        for magic, name in _UNSUPPORTED_SIGNATURES:
            if data.startswith(magic):
                raise unsupported_format(f"input format {name} is not supported") from None
        raise undecodable() from None
    loader = image.get("vips-loader").removesuffix("_buffer").removesuffix("_source")
    fmt = LOADER_FORMATS.get(loader)
    if fmt is None:
        raise unsupported_format(f"input format {loader.removesuffix('load')} is not supported")
    if fmt == "heif":
        compression = _field(image, "heif-compression", "")
        if compression == "av1":
            fmt = "avif"
        elif compression == "hevc":
            return _probe_pillow(data, "heif", allowed)
    orientation = int(_field(image, "orientation", 1))
    width, height = image.width, image.height
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    pages = int(_field(image, "n-pages", 1))
    profile = _field(image, "icc-profile-data", None)
    return SourceInfo(
        format=fmt,
        width=width,
        height=height,
        pages=pages,
        alpha=bool(image.hasalpha()),
        orientation=orientation,
        animated=fmt in ("gif", "webp") and pages > 1,
        colour_manage=profile is not None and not is_srgb_profile(profile),
        pillow=fmt == "avif",
        icc=(icc_description(profile) or "") if profile is not None else None,
    )


def _probe_pillow(data: bytes, fmt: str, allowed: frozenset[str] | None) -> SourceInfo:
    """``probe`` for a format only ``edgeproxy.render.pillow`` reads. Whether the ICC profile is sRGB is
    known only once decoded (``load_pillow`` then keeps a profile only when it is not sRGB), so
    ``colour_manage`` is on."""
    if allowed is not None and fmt not in allowed:
        raise unsupported_format(f"input format {fmt} is not allowed")
    extra = pillow.missing_extra(fmt)
    if extra is not None:
        raise unsupported_format(f"input format {fmt} needs the [{extra}] extra: pip install 'edgeproxy[{extra}]'")
    try:
        header = pillow.read_header(data, fmt)
    except pillow.DecodeError as exc:
        raise undecodable(f"the original could not be decoded: {exc}") from None
    return SourceInfo(
        format=fmt,
        width=header.width,
        height=header.height,
        pages=1,
        alpha=header.alpha,
        orientation=1,
        animated=False,
        colour_manage=True,
        pillow=True,
    )


def is_srgb_profile(profile: bytes) -> bool:
    """Whether an ICC profile's description names sRGB (so transforming to sRGB would be a no-op).
    Skipping the no-op transform halves the cost of a typical camera JPEG (the lcms transform costs
    more than the decode)."""
    return "sRGB" in (icc_description(profile) or "")


def icc_description(profile: bytes) -> str | None:
    """An ICC profile's description (``"sRGB IEC61966-2.1"``), or None when it has none readable.

    Reads the ``desc`` tag (ICC.1:2001-04 ``textDescriptionType`` or ICC.1:2010 ``multiLocalizedUnicodeType``)
    from the tag table that follows the 128-byte header.
    """
    try:
        count = int.from_bytes(profile[128:132], "big")
        for i in range(min(count, 64)):
            entry = profile[132 + 12 * i : 144 + 12 * i]
            if entry[:4] != b"desc":
                continue
            offset = int.from_bytes(entry[4:8], "big")
            size = int.from_bytes(entry[8:12], "big")
            tag = profile[offset : offset + size]
            if tag[:4] == b"desc":
                return tag[12 : 12 + int.from_bytes(tag[8:12], "big")].decode("latin-1").rstrip("\x00")
            if tag[:4] == b"mluc":
                length = int.from_bytes(tag[20:24], "big")
                start = int.from_bytes(tag[24:28], "big")
                return tag[start : start + length].decode("utf-16-be", "replace").rstrip("\x00")
            return None
    except (IndexError, ValueError):
        return None
    return None


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


def load_region(data: bytes, region: tuple[int, int, int, int], *, animated: bool) -> pyvips.Image:
    """Decode ``data``, apply EXIF orientation, and keep ``region`` (left, top, width, height) of
    the upright image (of every frame when ``animated``). Colour is still the source's."""
    kwargs = {"n": -1} if animated else {}
    with failures():
        image = pyvips.Image.new_from_buffer(data, "", fail_on="truncated", **kwargs)
        if not animated:
            image = image.autorot()
        return crop(image, *region)


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
    except pillow.DecodeError as exc:
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


def rgb_array(image: pyvips.Image, deadline: Deadline | None = None):
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
        return (deadline.watch(rgb) if deadline else rgb).numpy()


def page_height(image: pyvips.Image) -> int:
    """Height of one frame in pixels (the whole height for a still)."""
    ph = _field(image, "page-height", image.height)
    return ph if 0 < ph <= image.height and image.height % ph == 0 else image.height


def _per_frame(image: pyvips.Image, op) -> pyvips.Image:
    """Apply ``op`` to each frame of an animated strip and restack; a still is one frame."""
    ph = page_height(image)
    if ph == image.height:
        return op(image)
    frames = [op(image.crop(0, top, image.width, ph)) for top in range(0, image.height, ph)]
    out = pyvips.Image.arrayjoin(frames, across=1)
    out = out.copy()
    out.set_type(pyvips.GValue.gint_type, "page-height", frames[0].height)
    return out


def crop(image: pyvips.Image, left: int, top: int, width: int, height: int) -> pyvips.Image:
    """Keep a region of every frame."""
    return _per_frame(image, lambda frame: frame.crop(left, top, width, height))


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


def wash_grid(data: bytes, info: SourceInfo, cols: int, rows: int) -> bytes:
    """The mean colour of each of ``cols`` x ``rows`` equal cells tiling the first frame of the
    original ``data`` (upright, sRGB, alpha flattened onto white), as ``rows * cols * 3`` bytes,
    row-major: the whole-original grid (``obscure.Grid``) of a render that has no analysis.

    Decoded with shrink-on-load to ``16 * cols`` x ``16 * rows`` (``thumbnail``; Pillow formats are
    decoded whole), then averaged 16 x 16 pixels per cell (``shrink``): a box filter over each cell.

    Raises:
        ProxyError(422): the original's pixels could not be decoded.
    """
    k = 16
    width, height = k * cols, k * rows
    if info.pillow:
        image = resize(load_pillow(data, info), width, height, colour_manage=info.colour_manage)
    else:
        image = thumbnail(data, width, height, animated=False, colour_manage=info.colour_manage)
    image = to_srgb(flatten(image, (255, 255, 255, 255)))
    if image.bands == 1:
        image = image.colourspace("srgb")
    means = image.cast("float").shrink(k, k)  # thumbnail's size=force: exactly cols x rows
    return (means + 0.5).cast("uchar").write_to_memory()  # failures: the caller's (pipeline.run's) guard


def sharpen(image: pyvips.Image, sigma: float) -> pyvips.Image:
    """Unsharp mask on lightness (``vips_sharpen``) with ``sigma`` pixels."""
    return _per_frame(image, lambda frame: frame.sharpen(sigma=sigma))


def pad(
    image: pyvips.Image, width: int, height: int, left: int, top: int, background: tuple[int, int, int, int]
) -> pyvips.Image:
    """Place every frame at (``left``, ``top``) on a ``width`` × ``height`` canvas of ``background``
    (RGBA 0..255). An alpha band is added when the background is not opaque."""
    image = to_srgb(image)
    if background[3] < 255 and not image.hasalpha():
        image = image.bandjoin(255)
    colour = _colour(image, background)
    return _per_frame(
        image, lambda frame: frame.embed(left, top, width, height, extend="background", background=colour)
    )


def flatten(image: pyvips.Image, background: tuple[int, int, int, int]) -> pyvips.Image:
    """Composite alpha onto ``background`` (its RGB part) and drop the alpha band."""
    if not image.hasalpha():
        return image
    return image.flatten(background=_colour(image, background)[: image.bands - 1])


def _colour(image: pyvips.Image, rgba: tuple[int, int, int, int]) -> list[float]:
    """``rgba`` as one value per band of ``image``: grey images get the mean of R, G and B."""
    colour = list(rgba[:3]) if image.bands >= 3 else [sum(rgba[:3]) / 3]
    return colour + [rgba[3]] if image.hasalpha() else colour


def to_srgb(image: pyvips.Image) -> pyvips.Image:
    """Ensure 8-bit sRGB (or 8-bit grey) pixels, as every encoder here expects."""
    if image.format == "uchar" and image.interpretation in ("srgb", "b-w"):
        return image
    if image.interpretation in ("b-w", "grey16"):
        return image.colourspace("b-w")
    return image.colourspace("srgb")


@dataclass(frozen=True, slots=True)
class EncodeOptions:
    """Encoder settings that come from configuration (``Settings``), not from the URL."""

    avif_effort: int  # 0..9
    webp_effort: int  # 0..6
    jpeg_progressive: bool
    png_compression: int  # zlib level 0..9
    jxl_effort: int  # 1..9 (libjxl)
    threads: int  # encoder threads outside libvips (libjxl)


def encode(
    image: pyvips.Image, fmt: str, quality: int, strip: bool, options: EncodeOptions, deadline: Deadline | None = None
) -> bytes:
    """Encode ``image`` as ``fmt`` (avif, webp, jpeg, png, gif, jxl); this is where pixels are computed.

    ``strip`` drops all metadata (the pixels are already sRGB, so no ICC profile is needed). JPEG XL
    goes through ``pillow.encode_jxl`` (the wheel's libvips has no ``jxlsave``): the first frame,
    computed into memory here.

    Raises:
        ProxyError(422): libvips failed while decoding the original (corrupt or truncated data).
        ProxyError(504): ``deadline`` passed while the pixels were computed (the work was cancelled).
    """
    keep = pyvips.enums.ForeignKeep.NONE if strip else pyvips.enums.ForeignKeep.ALL
    ph = page_height(image)
    if deadline:
        image = deadline.watch(image)
    with failures(deadline):
        if fmt == "jpeg":
            return image.jpegsave_buffer(Q=quality, interlace=options.jpeg_progressive, optimize_coding=True, keep=keep)
        if fmt == "webp":
            return image.webpsave_buffer(Q=quality, effort=options.webp_effort, keep=keep, page_height=ph)
        if fmt == "avif":
            if image.bands < 3:
                image = image.colourspace("srgb")
            return image.heifsave_buffer(
                Q=quality, effort=options.avif_effort, compression="av1", bitdepth=8, keep=keep
            )
        if fmt == "png":
            return image.pngsave_buffer(compression=options.png_compression, keep=keep)
        if fmt == "gif":
            return image.gifsave_buffer(keep=keep, page_height=ph)
        if fmt == "jxl":
            frame = image.crop(0, 0, image.width, ph) if ph != image.height else image
            exif = None if strip else _field(frame, "exif-data", None)
            return pillow.encode_jxl(
                frame.write_to_memory(),
                frame.width,
                frame.height,
                frame.bands,
                quality=quality,
                effort=options.jxl_effort,
                threads=options.threads,
                exif=exif,
            )
    raise ValueError(f"unknown output format {fmt}")
