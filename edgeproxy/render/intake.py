"""What an original must be before any render: its header read (``read_source``; SVG refused or
rebuilt by ``svg.sanitize`` first) and checked against the source limits (``check_source``), as a
render's first two steps do (``pipeline.probe``, ``pipeline.check_limits``) and as ``inspect`` does
for ``/info``, the review thumbnails and the vision models' copy. No pixel is decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeproxy.errors import too_large, unsupported_format
from edgeproxy.render import source, svg
from edgeproxy.render.source import SourceInfo


@dataclass(frozen=True, slots=True)
class Limits:
    """Source limits (bytes are checked by the origin; these from the header). Values come from
    ``Settings``; there are no defaults here, so configuration lives in one place."""

    max_source_bytes: int  # bytes of a decompressed SVGZ (the origin caps the bytes it fetches)
    max_source_pixels: int  # width × height × frames
    max_frames: int
    max_output_dimension: int  # pixels per side
    allowed_formats: frozenset[str]
    max_blur_cost: int  # output megapixels × frames × blur sigma
    trim_max_side: int  # pixels: the long side of the copy ``trim`` searches (``find_trim``)


@dataclass(frozen=True, slots=True)
class Source:
    """An original as the decoders see it: ``data``, the bytes every decoder reads (the original's,
    or for SVG the document ``svg.sanitize`` rebuilt: no parser ever sees the original's), and
    ``info``, the facts its header gives (``source.SourceInfo``)."""

    data: bytes
    info: SourceInfo


def read_source(data: bytes, limits: Limits) -> Source:
    """The header of ``data``. SVG is refused (415) before any parser sees it unless allowed, and
    then rebuilt by ``svg.sanitize`` first, as libvips parses the whole document to read its header.

    Raises:
        ProxyError: 415 (a format not allowed, or not supported), 413 (an SVGZ over
            ``max_source_bytes`` decompressed), 422 (unreadable).
    """
    sanitized = False
    if svg.looks_like_svg(data):
        if "svg" not in limits.allowed_formats:
            raise unsupported_format("input format svg is not allowed")
        data = svg.sanitize(data, limits.max_source_bytes)
        sanitized = True
    info = source.probe(data, limits.allowed_formats)
    if info.format == "svg" and not sanitized:  # libvips and looks_like_svg disagree: refuse
        raise unsupported_format("input format svg is not allowed")
    return Source(data, info)


def check_source(info: SourceInfo, limits: Limits) -> None:
    """413 for sources over the pixel or frame limits, 415 for formats not allowed; from the header.

    Raises:
        ProxyError(413): over ``max_frames`` or ``max_source_pixels`` (width × height × frames).
        ProxyError(415): a format not in ``allowed_formats``.
    """
    if info.format not in limits.allowed_formats:
        raise unsupported_format(f"input format {info.format} is not allowed")
    frames = info.pages if info.animated else 1
    if frames > limits.max_frames:
        raise too_large(f"the original has {frames} frames; the limit is {limits.max_frames}")
    pixels = info.width * info.height * frames
    if pixels > limits.max_source_pixels:
        raise too_large(
            f"the original has {pixels} pixels ({info.width}x{info.height}x{frames}); "
            f"the limit is {limits.max_source_pixels}"
        )


def inspect(data: bytes, limits: Limits) -> Source:
    """What a render's first two steps (``probe``, ``check_limits``) learn of an original, without a
    render: for ``/info`` and the vision models' copy, so that they answer exactly as a render would
    (the same 413, 415 and 422, in the same order). No pixel is decoded.

    Raises:
        ProxyError: as ``read_source`` and ``check_source``.
    """
    found = read_source(data, limits)
    check_source(found.info, limits)
    return found
