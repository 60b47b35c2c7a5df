"""Every Pillow call, and the only module that imports Pillow: decoders for the originals libvips
cannot read here, and the JPEG XL encoder.

The ``pyvips-binary`` wheel has no BMP, ICO, PSD, JPEG 2000 or JPEG XL loader and no HEVC decoder.
Pillow decodes BMP, ICO, PSD and JPEG 2000 (OpenJPEG) itself; HEIC/HEIF needs the ``heif`` extra
(``pillow-heif``: libheif + libde265, its wheel bundles x265, GPL-2.0) and JPEG XL the ``jxl`` extra
(``pillow-jxl-plugin``: libjxl, GPL-3.0-or-later). AVIF also decodes here (libavif + dav1d), faster
than the wheel's libaom (see ``vips.load_pillow``).

The contract is libvips' one: ``read_header`` gives the upright size and alpha **before any pixel is
decoded**, so that the pipeline applies its limits first (413); Pillow's own decompression-bomb
check comes too late for ICO (Pillow decodes an icon while opening it) and JPEG XL (the plugin
decodes the whole file while opening it), so their headers are parsed from the bytes
(``edgeproxy.render.headers``). ``decode`` returns
8- or 16-bit pixels, upright, with the embedded ICC profile, for ``vips.load_pillow`` to wrap
without another copy. Every Pillow failure is ``DecodeError`` (the caller's 422).

Multi-image files give one image: ICO its largest icon, PSD its flattened composite, HEIF its
primary image, JPEG XL its first frame (pillow-jxl-plugin 1.3 does not decode animation).

JPEG XL output (``f:jxl``) is encoded here too, since the wheel's libvips has no ``jxlsave``.
"""

from __future__ import annotations

import contextlib
import functools
import io
from dataclasses import dataclass
from importlib import util as importlib_util
from typing import TYPE_CHECKING

from edgeproxy.render.headers import DecodeError, Header, ico_header, jxl_header

if TYPE_CHECKING:
    import PIL.Image
    import PIL.ImageFile

#: Our format name -> (Pillow plugin's format name, extra that provides it or None).
FORMATS = {
    "bmp": ("BMP", None),
    "ico": ("ICO", None),
    "psd": ("PSD", None),
    "jp2": ("JPEG2000", None),
    "avif": ("AVIF", None),
    "heif": ("HEIF", "heif"),
    "jxl": ("JXL", "jxl"),
}
#: Extra -> the module it installs (pyproject ``[project.optional-dependencies]``).
EXTRAS = {"heif": "pillow_heif", "jxl": "pillow_jxl"}
#: Magic numbers of the formats only these decoders read (HEIC is recognised by libvips' header).
_SIGNATURES = (
    (b"BM", "bmp"),
    (b"\x00\x00\x01\x00", "ico"),
    (b"8BPS\x00\x01", "psd"),  # version 1; 2 is PSB, which Pillow does not read
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "jp2"),
    (b"\xff\x4f\xff\x51", "jp2"),  # a raw JPEG 2000 codestream (.j2k)
    (b"\xff\x0a", "jxl"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "jxl"),
)
#: EXIF orientation 2..8 (TIFF 6.0 / EXIF 2.32 tag 0x0112) -> the ``PIL.Image.Transpose`` that uprights it.
_ORIENT = {
    2: "FLIP_LEFT_RIGHT",
    3: "ROTATE_180",
    4: "FLIP_TOP_BOTTOM",
    5: "TRANSPOSE",
    6: "ROTATE_270",
    7: "TRANSVERSE",
    8: "ROTATE_90",
}


@dataclass(frozen=True, slots=True)
class Pixels:
    """Decoded, upright pixels: ``data`` is ``height`` rows of ``width`` × ``bands`` samples,
    ``depth`` bits each (8 or 16, native byte order); ``interpretation`` is a libvips one (``srgb``,
    ``b-w``, ``grey16``, ``cmyk``); ``icc`` the embedded ICC profile, if any."""

    data: bytes
    width: int
    height: int
    bands: int
    depth: int
    interpretation: str
    icc: bytes | None


def sniff(data: bytes) -> str | None:
    """The format of ``data`` among those only Pillow reads here (``bmp``, ``ico``, ``psd``, ``jp2``,
    ``jxl``), from its magic number; None otherwise."""
    for magic, name in _SIGNATURES:
        if data.startswith(magic):
            return name
    return None


def versions() -> str:
    """Versions of Pillow and the installed extras, e.g. ``"pillow 12.0.0, pillow-heif 1.8.1"`` (a
    decoder upgrade can change a derivative's bytes, so this goes into ETags)."""
    from importlib import metadata

    found = []
    for name in ("pillow", "pillow-heif", "pillow-jxl-plugin"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found.append(f"{name} {metadata.version(name)}")
    return ", ".join(found)


@functools.cache
def missing_extra(fmt: str) -> str | None:
    """The extra to install for ``fmt`` (``"heif"``, ``"jxl"``) when it is not installed, else None
    (looked up once per process: installed packages do not change under a running server)."""
    extra = FORMATS[fmt][1]
    if extra is None or importlib_util.find_spec(EXTRAS[extra]) is not None:
        return None
    return extra


@functools.cache
def _register(fmt: str) -> None:
    """Import the Pillow plugin for ``fmt`` once (registering it is Pillow's own, process-wide)."""
    if fmt == "heif":
        import pillow_heif

        pillow_heif.register_heif_opener(thumbnails=False)
    elif fmt == "jxl":
        import pillow_jxl  # noqa: F401 - registers the JXL plugin on import


def configure(threads: int) -> None:
    """Process-wide set-up, once at start: decoder threads per image (as libvips' concurrency), and
    Pillow's pixel limit off, since ``read_header`` and the pipeline's ``max_source_pixels`` check
    every file first (Pillow's fixed 89 Mpx would override the operator's limit)."""
    from PIL import AvifImagePlugin, Image

    Image.MAX_IMAGE_PIXELS = None
    AvifImagePlugin.DEFAULT_MAX_THREADS = threads
    if missing_extra("heif") is None:
        _register("heif")
        import pillow_heif

        pillow_heif.options.DECODE_THREADS = threads
    if missing_extra("jxl") is None:
        _register("jxl")
        from pillow_jxl import JpegXLImagePlugin

        JpegXLImagePlugin.DECODE_THREADS = threads


def _open(data: bytes, fmt: str) -> PIL.ImageFile.ImageFile:
    from PIL import Image

    _register(fmt)
    return Image.open(io.BytesIO(data), formats=[FORMATS[fmt][0]])


def read_header(data: bytes, fmt: str) -> Header:
    """Upright size and alpha of ``data`` in format ``fmt``, without decoding pixels.

    ICO and JPEG XL are parsed by ``edgeproxy.render.headers`` (ICO: the own PNG or BMP header of
    the icon Pillow will decode; JPEG XL: the codestream's SizeHeader and ImageMetadata, ISO/IEC
    18181-1 §A); the others through Pillow's lazy ``open`` (which reads the header only).

    Raises:
        DecodeError: not a well-formed header.
    """
    try:
        if fmt == "ico":
            return ico_header(data)
        if fmt == "jxl":
            return jxl_header(data)
        with _open(data, fmt) as picture:
            width, height = picture.size
            # libheif reports the size after its irot/imir transforms (and resets the Exif tag)
            orientation = 1 if fmt == "heif" else picture.getexif().get(0x0112, 1)
            if orientation in (5, 6, 7, 8):
                width, height = height, width
            return Header(width, height, _has_alpha(picture))
    except DecodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow plugins raise anything on hostile input
        raise DecodeError(str(exc)) from None


def _has_alpha(picture: PIL.Image.Image) -> bool:
    return picture.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in picture.info


def decode(data: bytes, fmt: str, expected: tuple[int, int] | None = None) -> Pixels:
    """Decode ``data`` (format ``fmt``) to upright pixels with their ICC profile.

    ``expected`` is the upright (width, height) the header promised: a file whose pixels disagree
    (a lying header) is a ``DecodeError`` rather than a surprise for the geometry already planned.

    Raises:
        DecodeError: corrupt or truncated data, an unsupported variant, or a size mismatch.
    """
    from PIL import Image

    try:
        with _open(data, fmt) as picture:
            picture.load()
            icc = picture.info.get("icc_profile") or None
            if fmt == "jxl" and not getattr(picture, "jpeg", False):
                orientation = 1  # libjxl applied the codestream's orientation; the Exif box is informative
            elif fmt == "heif":
                orientation = 1  # libheif applied irot/imir and reset the Exif orientation
            else:
                orientation = picture.getexif().get(0x0112, 1)
            image = _normalise(picture)
            if orientation in _ORIENT:
                image = image.transpose(Image.Transpose[_ORIENT[orientation]])
            depth = 16 if image.mode == "I;16" else 8
            pixels = Pixels(
                image.tobytes(),
                image.width,
                image.height,
                len(image.getbands()),
                depth,
                _INTERPRETATION[image.mode],
                icc if isinstance(icc, bytes) else None,
            )
    except DecodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow plugins raise anything on hostile input
        raise DecodeError(str(exc) or type(exc).__name__) from None
    if expected is not None and (pixels.width, pixels.height) != expected:
        raise DecodeError(f"the header says {expected[0]}x{expected[1]}, the data {pixels.width}x{pixels.height}")
    return pixels


_INTERPRETATION = {"L": "b-w", "LA": "b-w", "RGB": "srgb", "RGBA": "srgb", "CMYK": "cmyk", "I;16": "grey16"}


def _normalise(picture: PIL.Image.Image) -> PIL.Image.Image:
    """``picture`` in one of the modes libvips takes as is (``_INTERPRETATION``)."""
    mode = picture.mode
    if mode in _INTERPRETATION:
        return picture
    if mode == "1":
        return picture.convert("L")
    if mode in ("I;16L", "I;16N", "I;16B", "I", "F"):
        return picture.convert("I;16")
    if mode == "La":
        return picture.convert("LA")
    return picture.convert("RGBA" if _has_alpha(picture) else "RGB")


# -- JPEG XL output ----------------------------------------------------------------------------


def encode_jxl(
    data: bytes,
    width: int,
    height: int,
    bands: int,
    *,
    quality: int,
    effort: int,
    threads: int,
    exif: bytes | None = None,
) -> bytes:
    """Encode 8-bit sRGB (or grey) pixels as JPEG XL with libjxl (the ``jxl`` extra).

    ``data`` is ``height`` rows of ``width`` × ``bands`` bytes (1 grey, 2 grey + alpha, 3 RGB,
    4 RGBA); ``quality`` 1..100 is libjxl's quality scale (mapped to a Butteraugli distance: 90 is
    distance 1, visually lossless); ``effort`` 1..9 trades encode time for bytes (libjxl's default
    is 7; see bench/results.md for what a proxy should pick); ``exif`` is kept when given.

    Raises:
        RuntimeError: the ``jxl`` extra is not installed (the URL parser refuses ``f:jxl`` first).
    """
    if missing_extra("jxl") is not None:
        raise RuntimeError("JPEG XL output needs the [jxl] extra: pip install 'edgeproxy[jxl]'")
    from PIL import Image

    _register("jxl")
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[bands]
    picture = Image.frombuffer(mode, (width, height), data, "raw", mode, 0, 1)
    out = io.BytesIO()
    picture.save(out, "JXL", quality=quality, effort=effort, num_threads=threads, exif=exif or b"")
    return out.getvalue()


def encode_avif_sequence(
    data: bytes,
    width: int,
    page_height: int,
    bands: int,
    *,
    delays: list[int],
    loop: int,
    quality: int,
    speed: int,
    threads: int,
) -> bytes:
    """Encode an animation as an AVIF image sequence (ISO/IEC 23000-22 ``avis``: a ``moov`` track
    that browsers play) with Pillow's libavif: the wheel's libvips ``heifsave`` writes a multi-page
    image as a HEIF collection of stills, of which browsers show the first.

    ``data`` is the frames one above the other (libvips' animation layout): ``len(delays)`` frames
    of ``page_height`` rows of ``width`` × ``bands`` 8-bit sRGB bytes (3 RGB, 4 RGBA). ``delays``
    are each frame's display time in milliseconds, ``loop`` the repeat count (0: forever),
    ``quality`` libavif's 0..100, ``speed`` libavif's 0 (slowest, smallest) .. 10, ``threads`` its
    worker threads. Not interruptible once started (as every AV1 encode here).

    Raises:
        ValueError: ``data`` is not ``len(delays)`` frames of that size.
    """
    from PIL import Image

    mode = {3: "RGB", 4: "RGBA"}[bands]
    size = width * page_height * bands
    if not delays or len(data) != size * len(delays):
        raise ValueError(f"{len(data)} bytes are not {len(delays)} frames of {width}x{page_height}x{bands}")
    pictures = [
        Image.frombytes(mode, (width, page_height), data[i * size : (i + 1) * size]) for i in range(len(delays))
    ]
    out = io.BytesIO()
    pictures[0].save(
        out,
        "AVIF",
        save_all=True,
        append_images=pictures[1:],
        duration=delays,
        loop=loop,
        quality=quality,
        speed=speed,
        max_threads=threads,
    )
    return out.getvalue()
