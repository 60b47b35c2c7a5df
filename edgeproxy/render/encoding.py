"""Encoding: a computed image to the bytes of an output format, and the encoders' health check.

AVIF (a still), WebP, JPEG, PNG and GIF are libvips' savers; an animated AVIF is an image
sequence written by Pillow's libavif (``pillow.encode_avif_sequence``: libvips' ``heifsave`` writes
frames as a collection of stills, which browsers show as one); JPEG XL goes through Pillow's plugin
(``pillow.encode_jxl``: the wheel's libvips has no ``jxlsave``). libvips evaluates lazily, so this
is where the pixel work of a whole pipeline happens. Blocking: it runs in a render thread.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pyvips

from edgeproxy.render import pillow
from edgeproxy.render.failures import Deadline, failures
from edgeproxy.render.vips import header_field, page_height


@dataclass(frozen=True, slots=True)
class EncodeOptions:
    """Encoder settings that come from configuration (``Settings``), not from the URL."""

    avif_effort: int  # 0..9
    webp_effort: int  # 0..6
    jpeg_progressive: bool
    png_compression: int  # zlib level 0..9
    jxl_effort: int  # 1..9 (libjxl)
    threads: int  # encoder threads outside libvips (libjxl)
    # The slower, smaller encodes of the optimised tier (``optimised``): WebP's smart chroma
    # subsampling, and mozjpeg's trellis quantisation, overshoot deringing and optimised progressive
    # scans (libvips ``jpegsave`` options; a libvips built without mozjpeg ignores them).
    webp_smart_subsample: bool = False
    jpeg_trellis: bool = False
    # The largest output (pixels of one frame) whose quality is searched for a target; a larger one
    # gets the format's typical quality (``edgeproxy.quality.encode``): a search costs several slow encodes.
    search_max_pixels: int = 0

    def optimised(self, avif_effort: int, webp_effort: int, search_max_pixels: int) -> EncodeOptions:
        """These options for the optimised tier: AVIF ``avif_effort`` and WebP ``webp_effort`` (or
        this tier's own when higher), smart subsampling, mozjpeg's trellis and progressive scans, and
        quality searches up to ``search_max_pixels``."""
        return replace(
            self,
            avif_effort=max(self.avif_effort, avif_effort),
            webp_effort=max(self.webp_effort, webp_effort),
            jpeg_progressive=True,
            webp_smart_subsample=True,
            jpeg_trellis=True,
            search_max_pixels=search_max_pixels,
        )


def encode(
    image: pyvips.Image, fmt: str, quality: int, strip: bool, options: EncodeOptions, deadline: Deadline | None = None
) -> bytes:
    """Encode ``image`` as ``fmt`` (avif, webp, jpeg, png, gif, jxl); this is where pixels are computed.

    PNG is lossless at ``quality`` 100 (the default); below it, an 8-bit palette image quantised to
    that quality (libvips ``pngsave`` ``palette``, libimagequant): what a URL's ``q`` on PNG asks for.

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
    body: bytes | None = None
    with failures(deadline):
        if fmt == "jpeg":
            trellis = options.jpeg_trellis
            body = image.jpegsave_buffer(
                Q=quality,
                interlace=options.jpeg_progressive,
                optimize_coding=True,
                keep=keep,
                trellis_quant=trellis,
                overshoot_deringing=trellis,
                optimize_scans=trellis and options.jpeg_progressive,
            )
        elif fmt == "webp":
            body = image.webpsave_buffer(
                Q=quality,
                effort=options.webp_effort,
                smart_subsample=options.webp_smart_subsample,
                keep=keep,
                page_height=ph,
            )
        elif fmt == "avif" and ph != image.height:  # an animation: an AVIF sequence, through Pillow
            body = _avif_sequence(image, ph, quality, options)
        elif fmt == "avif":
            if image.bands < 3:
                image = image.colourspace("srgb")
            body = image.heifsave_buffer(
                Q=quality, effort=options.avif_effort, compression="av1", bitdepth=8, keep=keep
            )
        elif fmt == "png":
            if quality < 100:  # a URL's q on PNG: 8-bit palette, quantised (libimagequant) at that quality
                body = image.pngsave_buffer(
                    compression=options.png_compression, keep=keep, palette=True, Q=quality, effort=7
                )
            else:
                body = image.pngsave_buffer(compression=options.png_compression, keep=keep)
        elif fmt == "gif":
            body = image.gifsave_buffer(keep=keep, page_height=ph)
        elif fmt == "jxl":
            frame = image.crop(0, 0, image.width, ph) if ph != image.height else image
            exif = None if strip else header_field(frame, "exif-data", None)
            body = pillow.encode_jxl(
                frame.write_to_memory(),
                frame.width,
                frame.height,
                frame.bands,
                quality=quality,
                effort=options.jxl_effort,
                threads=options.threads,
                exif=exif,
            )
    if body is None:
        raise ValueError(f"unknown output format {fmt}")
    return body


def _avif_sequence(image: pyvips.Image, page_height: int, quality: int, options: EncodeOptions) -> bytes:
    """The animation ``image`` (frames of ``page_height`` rows, one above the other) as an AVIF
    image sequence (``pillow.encode_avif_sequence``): computed into memory here (libvips can still
    cancel that), each frame shown for its ``delay`` (GIF's 0 or 10 ms shown as 100 ms, as browsers
    do), repeated ``loop`` times; libavif's speed is ``9 - avif_effort`` (libheif's mapping of
    libvips' effort onto the same AV1 encoders: effort 0 is speed 9)."""
    if image.bands < 3:
        image = image.colourspace("srgb")
    image = image.cast("uchar") if image.format != "uchar" else image
    frames = image.height // page_height
    given = header_field(image, "delay", None)
    delays = [d if d > 10 else 100 for d in (list(given) if given else [100] * frames)][:frames]
    delays += [100] * (frames - len(delays))
    return pillow.encode_avif_sequence(
        image.write_to_memory(),
        image.width,
        page_height,
        image.bands,
        delays=delays,
        loop=int(header_field(image, "loop", 0)),
        quality=quality,
        speed=max(0, min(10, 9 - options.avif_effort)),
        threads=options.threads,
    )


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
