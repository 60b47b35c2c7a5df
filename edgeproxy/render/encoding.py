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

#: The optimised tier's JPEG tables by SSIMULACRA2 target (``EncodeOptions.jpeg_by_target``), from
#: ``python -m bench.encoders`` (bench/results.md): against the JPEG standard's tables with libvips'
#: auto subsampling, on 8 corpus photos at 800 px, at equal scores, mozjpeg's table 5 with 4:2:0
#: always saves 11 to 12 % from target 60 to 80 (4:2:0 above Q 90 avoids auto's step to 4:4:4), and
#: table 8 (auto subsampling) 17 % at 85.
OPTIMISED_JPEG: tuple[tuple[float, int, str], ...] = ((0.0, 5, "on"), (85.0, 8, "auto"))
#: The optimised tier's AVIF bit depth by SSIMULACRA2 target (``EncodeOptions.avif_bitdepth_by_target``),
#: from ``python -m bench.encoders --formats avif --avif-photos 4`` (bench/results.md; effort 4, 4:4:4,
#: each AVIF judged on libheif's and libavif's decode, the lower): 10-bit takes 4.5 % off 8-bit's
#: bytes at equal scores at target 80 and 9 % at 85, nothing at 60 and 70 (within ±1.2 %), for 1.23
#: times the encode's CPU; so 10-bit from 75.
OPTIMISED_AVIF_BITDEPTH: tuple[tuple[float, int], ...] = ((0.0, 8), (75.0, 10))


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
    # mozjpeg's quantisation table (libvips ``quant_table`` 0..8; 0: the JPEG standard's Annex K
    # tables) and the chroma subsampling (libvips ``subsample_mode``: auto, 4:2:0 below Q 90 and
    # 4:4:4 from it; on, 4:2:0 always; off, 4:4:4 always).
    jpeg_quant_table: int = 0
    jpeg_subsample: str = "auto"
    # The optimised tier's JPEG tables by SSIMULACRA2 target: ``(from_target, quant_table,
    # subsample)`` rows, ascending; a search for a target uses the last row at or below it
    # (``for_target``). Empty: ``jpeg_quant_table`` and ``jpeg_subsample`` whatever the target.
    jpeg_by_target: tuple[tuple[float, int, str], ...] = ()
    # AVIF's chroma subsampling (libvips ``heifsave`` ``subsample_mode``: auto, 4:2:0 below Q 90;
    # off, 4:4:4): the optimised tier's is off (``bench.encoders``: 5 to 8 % fewer bytes at equal
    # SSIMULACRA2 from target 60 to 85 for 1.2 times the encode's CPU).
    avif_subsample: str = "auto"
    # AVIF's bit depth (libvips ``heifsave`` ``bitdepth``: 8, 10 or 12; every browser that decodes
    # AVIF decodes 10-bit), and the optimised tier's by SSIMULACRA2 target: ``(from_target,
    # bitdepth)`` rows, ascending, the last at or below the target applying (``for_target``;
    # ``OPTIMISED_AVIF_BITDEPTH``: 10-bit from 75, where AV1's finer precision saves bytes).
    avif_bitdepth: int = 8
    avif_bitdepth_by_target: tuple[tuple[float, int], ...] = ()
    # The largest output (pixels of one frame) whose quality is searched for a target; a larger one
    # gets the format's typical quality (``edgeproxy.quality.encode``): a search costs several slow encodes.
    search_max_pixels: int = 0
    # The lowest quality a byte budget (``mb:N``) goes down to (``edgeproxy.quality.budget``).
    max_bytes_floor: int = 10

    def optimised(self, avif_effort: int, webp_effort: int, search_max_pixels: int) -> EncodeOptions:
        """These options for the optimised tier: AVIF ``avif_effort`` (or this tier's own when
        higher) in 4:4:4 with bit depths by target (``OPTIMISED_AVIF_BITDEPTH``), WebP
        ``webp_effort`` (idem) with smart subsampling, mozjpeg's trellis, progressive scans and
        tables by target (``OPTIMISED_JPEG``), and quality searches up to ``search_max_pixels``."""
        return replace(
            self,
            avif_effort=max(self.avif_effort, avif_effort),
            webp_effort=max(self.webp_effort, webp_effort),
            jpeg_progressive=True,
            webp_smart_subsample=True,
            jpeg_trellis=True,
            jpeg_by_target=OPTIMISED_JPEG,
            avif_subsample="off",
            avif_bitdepth_by_target=OPTIMISED_AVIF_BITDEPTH,
            search_max_pixels=search_max_pixels,
        )

    def for_target(self, target: float) -> EncodeOptions:
        """These options for encodes aiming at SSIMULACRA2 ``target``: the JPEG table and
        subsampling of ``jpeg_by_target``'s last row at or below it, and the AVIF bit depth of
        ``avif_bitdepth_by_target``'s (each unchanged without one)."""
        options = self
        rows = [row for row in self.jpeg_by_target if row[0] <= target]
        if rows:
            options = replace(options, jpeg_quant_table=rows[-1][1], jpeg_subsample=rows[-1][2])
        depths = [row for row in self.avif_bitdepth_by_target if row[0] <= target]
        if depths:
            options = replace(options, avif_bitdepth=depths[-1][1])
        return options


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
                quant_table=options.jpeg_quant_table,
                subsample_mode=options.jpeg_subsample,
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
                Q=quality,
                effort=options.avif_effort,
                compression="av1",
                bitdepth=options.avif_bitdepth,
                keep=keep,
                subsample_mode=options.avif_subsample,
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
