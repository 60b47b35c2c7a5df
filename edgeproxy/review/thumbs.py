"""Blurred thumbnails of the originals the proxy withholds (451: blocked, or pending where pending
is blocked), so that a reviewer sees what an original roughly is before choosing to look closer.
The others' thumbnails are the proxy's own signed derivative URLs (``routes``).

The original is read as a render reads it (``pipeline.inspect``: the same 413, 415 and 422), decoded
at thumbnail size with shrink-on-load (``load.flat_srgb``), blurred with a Gaussian whose sigma is
``BLUR_FRACTION`` of the thumbnail's long side (libvips ``gaussblur``), and encoded as a JPEG.
"""

from __future__ import annotations

from edgeproxy.render import load, pipeline, vips

#: Gaussian sigma as a fraction of the thumbnail's long side (1/20: shapes and colours, no detail).
BLUR_FRACTION = 1 / 20
#: JPEG quality of thumbnails.
QUALITY = 70


def fitted(width: int, height: int, box: int) -> tuple[int, int]:
    """``width`` x ``height`` fitted in a ``box`` x ``box`` square, never enlarged, at least 1 x 1."""
    scale = min(1.0, box / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def thumbnail(data: bytes, limits: pipeline.Limits, box: int, *, blurred: bool) -> bytes:
    """A JPEG of ``data``'s first frame fitted in ``box`` x ``box`` pixels, upright, sRGB, alpha on
    white; ``blurred``: Gaussian-blurred (module docstring). Blocking: run it in the render pool.

    Raises:
        ProxyError: 413, 415, 422 as a render of the original would answer.
    """
    source = pipeline.inspect(data, limits)
    width, height = fitted(source.info.width, source.info.height, box)
    image = load.flat_srgb(source.data, source.info, width, height)
    if blurred:
        image = vips.blur(image, max(width, height) * BLUR_FRACTION)
    return bytes(image.jpegsave_buffer(Q=QUALITY, strip=True))
