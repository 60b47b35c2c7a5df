"""What an original is, from its header: format, upright size, frames, alpha, colour profile, and
which decoder reads it (libvips, or Pillow for the formats the ``pyvips-binary`` wheel lacks or
decodes slowly). No pixel is decoded here, so the pipeline applies its limits first (413, 415).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyvips

from edgeproxy.errors import undecodable, unsupported_format
from edgeproxy.render import pillow
from edgeproxy.render.failures import clear_errors, failures, from_decoder
from edgeproxy.render.headers import DecodeError
from edgeproxy.render.icc import icc_description, is_srgb_profile
from edgeproxy.render.vips import header_field

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
#: Magic numbers of formats nothing here decodes: these are 415, not 422.
_UNSUPPORTED_SIGNATURES = ((b"%PDF", "pdf"), (b"8BPS\x00\x02", "psb"))


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
        if not from_decoder(exc):
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
        compression = header_field(image, "heif-compression", "")
        if compression == "av1":
            fmt = "avif"
        elif compression == "hevc":
            return _probe_pillow(data, "heif", allowed)
    orientation = int(header_field(image, "orientation", 1))
    width, height = image.width, image.height
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    pages = int(header_field(image, "n-pages", 1))
    profile = header_field(image, "icc-profile-data", None)
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
    except DecodeError as exc:
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
